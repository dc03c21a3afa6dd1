// A second SIGTERM (or Ctrl-C) while serve or watch waits out its stop's grace: the grace is
// cut (serve's requests in flight closed, watch's run abandoned), and the command still ends
// its own way, exit 130 with its repository lock released, instead of Node's default death by
// signal that left the lock behind (a prune then waits for it to go stale).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { EMPTY_SHA256, amzDate, signV4 } from '../../src/storage/s3-sigv4.js';
import { freePort } from '../helpers/free-port.js';
import { prng, tempDir, writeTree } from '../helpers/fixtures.js';
import { inProcessCli } from '../helpers/in-process-cli.js';
import { SERVE_KEYS, startServe } from '../helpers/serve-process.js';

const BIN = fileURLToPath(new URL('../../bin/lakeguard', import.meta.url));

/** Resolves once `read()` holds `text`, looking again at every chunk of `stream`. */
function whenPrinted(stream: NodeJS.ReadableStream, read: () => string, text: string): Promise<void> {
  return new Promise((resolve) => {
    const look = (): void => {
      if (!read().includes(text)) return;
      stream.off('data', look);
      resolve();
    };
    stream.on('data', look);
    look();
  });
}

/** Repository locks left in a file repository. */
const locksIn = (repo: string): string[] => (existsSync(join(repo, 'locks')) ? readdirSync(join(repo, 'locks'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : []);

describe('a second stop signal', () => {
  const dir = tempDir('second-signal');
  afterAll(() => dir.cleanup());

  it('cuts serve\'s requests in flight: exit 130, the lock released', async () => {
    const root = join(dir.path, 'serve');
    const policy = join(root, 'lakeguard.yaml');
    writeTree(join(root, 'lake'), { 'big.bin': prng(3)(16 * 1024 * 1024) });
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    const args = ['--policy', policy, '--catalog', join(root, 'catalog.db')];
    const env = { ...SERVE_KEYS, LAKEGUARD_CACHE_DIR: join(root, 'cache') };
    expect((await inProcessCli([...args, 'init'], env)).code).toBe(0);
    expect((await inProcessCli([...args, 'backup', '--quiet'], env)).code).toBe(0);
    const served = await startServe(args, env);
    onTestFinished(() => {
      if (served.child.exitCode === null && served.child.signalCode === null) served.child.kill('SIGKILL');
    });
    // A client that asks for 16 MiB and reads only the status line: its request stays in flight.
    const { host, port } = new URL(served.url);
    const headers = { host, 'x-amz-date': amzDate(new Date()), 'x-amz-content-sha256': EMPTY_SHA256 };
    const credentials = { accessKeyId: SERVE_KEYS.LAKEGUARD_SERVE_ACCESS_KEY_ID, secretAccessKey: SERVE_KEYS.LAKEGUARD_SERVE_SECRET_ACCESS_KEY };
    const authorization = signV4({ method: 'GET', path: '/lake/big.bin', query: '', headers, region: 'us-east-1', service: 's3', credentials });
    const client: Socket = connect(Number(port), '127.0.0.1');
    client.on('error', () => {});
    client.write(`GET /lake/big.bin HTTP/1.1\r\n${Object.entries({ ...headers, authorization }).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
    const first = await new Promise<string>((resolve) => client.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
    client.pause();
    expect(first).toMatch(/^HTTP\/1\.1 200 OK/);
    served.child.kill('SIGTERM');
    await whenPrinted(served.child.stdout!, served.stdout, '"phase":"stopping"');
    const code = await served.stop();
    client.destroy();
    expect(code).toBe(ExitCode.interrupted);
    expect(locksIn(join(root, 'repo'))).toEqual([]);
  });

  it('abandons watch\'s run at once: exit 130, the lock released', async () => {
    const root = join(dir.path, 'watch');
    // An S3 endpoint that takes connections and never answers: the seed run waits on its first request.
    const requests: Socket[] = [];
    const blackHole = createServer((s) => requests.push(s));
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const reached = new Promise<void>((resolve) => blackHole.once('connection', () => resolve()));
    try {
      const policy = join(root, 'lakeguard.yaml');
      const s3 = `http://127.0.0.1:${(blackHole.address() as { port: number }).port}`;
      writeTree(root, { 'lakeguard.yaml': `version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ns3:\n  endpoint: ${s3}\ngroups:\n  - name: lake\n    sources:\n      - bucket: raw\n        events: http://127.0.0.1:${await freePort()}/\n` });
      const args = ['--policy', policy, '--catalog', join(root, 'catalog.db')];
      const env = { LAKEGUARD_CACHE_DIR: join(root, 'cache'), LAKEGUARD_WATCH_TOKEN: 'a-push-token-of-some-length', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' };
      expect((await inProcessCli([...args, 'init'], env)).code).toBe(0);
      const child = spawn(process.execPath, ['--expose-gc', BIN, ...args, 'watch', '--stop-grace', '1h'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.resume();
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      onTestFinished(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      await reached;
      child.kill('SIGTERM');
      await whenPrinted(child.stdout, () => stdout, 'lakeguard watch: stopping');
      child.kill('SIGTERM');
      expect(await exited).toBe(ExitCode.interrupted);
      expect(stdout).toContain('the current run was abandoned, its changes stay journaled');
      expect(locksIn(join(root, 'repo'))).toEqual([]);
    } finally {
      for (const s of requests) s.destroy();
      await new Promise((resolve) => blackHole.close(resolve));
    }
  });
});
