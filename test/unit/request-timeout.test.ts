// A server that accepts connections and never answers (seen with a full Ceph cluster) must not
// hang a command: every request has an idle timeout (--timeout), a timed-out write is tried
// twice, a read three times, and the error names the endpoint and the request.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const env = { AWS_ACCESS_KEY_ID: 'AKIDTIMEOUTTEST', AWS_SECRET_ACCESS_KEY: 'secret', AWS_REGION: 'us-east-1', LAKEGUARD_PASSWORD: 'pw-timeout', LAKEGUARD_CACHE_DIR: '/nonexistent-cache' };

describe('a server that never answers', () => {
  const servers: (Server | HttpServer)[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => { (s as HttpServer).closeAllConnections?.(); s.close(r); });
  });

  const listen = async (server: Server | HttpServer): Promise<string> => {
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  it('accepting connections and never answering: a read (lean path and SDK) fails after 3 attempts of --timeout each, naming the endpoint', async () => {
    const requests: string[] = [];
    const sockets: Socket[] = [];
    const endpoint = await listen(
      createServer((socket) => {
        sockets.push(socket);
        socket.on('data', (d) => requests.push(...d.toString('latin1').split('\r\n').filter((l) => /^[A-Z]+ \//.test(l))));
      }),
    );
    // `runs` reads config with the lean GET; `init` asks with a HEAD, through the SDK's request handler.
    for (const [command, method] of [['runs', 'GET'], ['init', 'HEAD']] as const) {
      requests.length = 0;
      const r = await runCli(['--repo', 's3://hung-bucket/repo', '--endpoint', endpoint, '--timeout', '0.5', command], env);
      expect(r.code, r.stderr).toBe(1);
      const [message, hint] = r.stderr.trim().split('\n');
      expect(message).toBe(`lakeguard: no answer from ${endpoint} within 0.5 s (${method} s3://hung-bucket/repo/config, 3 attempts)`);
      expect(hint).toMatch(/hint: check the server .*raise --timeout/);
      expect(requests).toEqual(Array(3).fill(`${method} /hung-bucket/repo/config HTTP/1.1`));
    }
    for (const s of sockets) s.destroy();
  });

  it('answering reads but never a PUT: init fails after 2 attempts of the PUT, naming it', async () => {
    const puts: string[] = [];
    const endpoint = await listen(
      createHttpServer((req, res) => {
        if (req.method === 'PUT') {
          puts.push(req.url ?? '');
          req.resume(); // and never answer
          return;
        }
        res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code><Message>none</Message></Error>');
      }),
    );
    const r = await runCli(['--repo', 's3://hung-bucket/repo', '--endpoint', endpoint, '--timeout', '1', 'init'], env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.trim().split('\n')[0]).toBe(`lakeguard: no answer from ${endpoint} within 1 s (PUT s3://hung-bucket/repo/config, 2 attempts)`);
    expect(puts).toEqual(['/hung-bucket/repo/config', '/hung-bucket/repo/config']);
  });

  it('--timeout must be a positive number of seconds', async () => {
    const r = await runCli(['--repo', 's3://hung-bucket/repo', '--endpoint', 'http://127.0.0.1:9', '--timeout', 'soon', 'runs'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^lakeguard: --timeout "soon": expected a number of seconds/);
  });
});
