// watch's HTTP push endpoint on its own (test/integration/watch.test.ts drives it from Ceph RGW):
// what a sender without the token, or with a body that is no delivery, gets, and that a body too
// large (its rest never read) leaves the connection usable for the sender's next push.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { startPushEndpoint, type PushEndpoint } from '../../src/engine/watch-http.js';
import type { ChangeEvent } from '../../src/engine/watch-events.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { connectWhenListening, freePort } from '../helpers/free-port.js';

const BIN = fileURLToPath(new URL('../../bin/lakeguard', import.meta.url));
const TOKEN = 'a-push-token-of-some-length';
const EVENT = JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'lake' }, object: { key: 'a%20b', sequencer: '01' } } }] });
const ingested: ChangeEvent[] = [];
let endpoint: PushEndpoint;
// One kept-alive connection at a time: a second push goes on the socket of the first.
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

beforeAll(async () => {
  endpoint = await startPushEndpoint({ host: '127.0.0.1', port: 0, token: TOKEN, ingest: async (changes) => void ingested.push(...changes) });
});
afterAll(async () => {
  agent.destroy();
  await endpoint.stop();
});

function push(path: string, body: string | Buffer, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: '127.0.0.1', port: endpoint.port, method: opts.method ?? 'POST', path, headers: opts.headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

it('reads a token in the URL as written: a base64 token\'s + is no space', async () => {
  const base64 = 'q+Zt/9w+Lk0a7Hc2pQ==';
  const taken: ChangeEvent[] = [];
  const own = await startPushEndpoint({ host: '127.0.0.1', port: 0, token: base64, ingest: async (changes) => void taken.push(...changes) });
  try {
    const status = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: own.port, method: 'POST', path }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end(EVENT);
      });
    // As an RGW topic's push-endpoint holds it, and percent-encoded.
    expect(await status(`/?token=${base64}`)).toBe(200);
    expect(await status(`/?token=${encodeURIComponent(base64)}`)).toBe(200);
    expect(await status(`/?token=${base64.replace(/\+/g, '%20')}`)).toBe(403);
    expect(taken).toHaveLength(2);
  } finally {
    await own.stop();
  }
});

it('refuses a push without the token (401), with a wrong one (403), a GET (405), a body that is no delivery (400)', async () => {
  expect((await push('/', EVENT)).status).toBe(401);
  expect((await push('/', EVENT, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status).toBe(403);
  expect((await push(`/?token=x${TOKEN}`, EVENT)).status).toBe(403);
  expect((await push(`/?token=${TOKEN}`, '', { method: 'GET' })).status).toBe(405);
  expect((await push(`/?token=${TOKEN}`, '{"Records": [')).status).toBe(400);
  expect((await push('/', '[]', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(400);
  expect(ingested).toEqual([]);
});

it('answers a body too large with 413, and takes the next push on the same connection', async () => {
  const tooLarge = await push(`/?token=${TOKEN}`, Buffer.alloc(5 * 1024 * 1024, 0x20));
  expect(tooLarge.status).toBe(413);
  expect(await push(`/?token=${TOKEN}`, EVENT)).toEqual({ status: 200, text: '' });
  expect(ingested).toEqual([{ bucket: 'lake', key: 'a b', kind: 'created', id: 'lake\0a b\x0001' }]);
});

it('drops a record whose key no S3 object can have, says so, and keeps the others of the push', async () => {
  const warnings: string[] = [];
  const taken: ChangeEvent[] = [];
  const own = await startPushEndpoint({ host: '127.0.0.1', port: 0, token: TOKEN, ingest: async (changes) => void taken.push(...changes), onWarning: (m) => warnings.push(m) });
  try {
    // A lone surrogate (JSON may hold one; UTF-8 cannot), Ceph's form (the key as it is), beside a good key.
    const body = `{"Records":[{"eventSource":"ceph:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"lake"},"object":{"key":"data/\\udc80x","sequencer":"01"}}},{"eventSource":"ceph:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"lake"},"object":{"key":"data/ok","sequencer":"02"}}}]}`;
    const r = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: own.port, method: 'POST', path: `/?token=${TOKEN}` }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(r).toBe(200);
    expect(taken.map((c) => c.key)).toEqual(['data/ok']);
    expect(warnings).toEqual(['watch: a push named a key no S3 object can have ("data/\\udc80x"): dropped, the other changes are kept']);
  } finally {
    await own.stop();
  }
});

/** Runs `lakeguard watch` in this process with a policy whose repository does not exist: exit code and stderr. */
async function watchRefused(events: string, token: string | undefined): Promise<{ code: number; stderr: string }> {
  const { main } = await import('../../src/cli.js');
  const dir = tempDir('watch-refused');
  const policy = join(dir.path, 'policy.yaml');
  writeFileSync(policy, `version: 1\nrepository:\n  url: file://${dir.path}/no-repository\ngroups:\n  - name: lake\n    sources:\n      - bucket: raw\n        events: ${events}\n`);
  vi.stubEnv('LAKEGUARD_WATCH_TOKEN', token);
  const stderr: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => stderr.push(String(chunk)) > 0);
  try {
    return { code: await main(['node', 'lakeguard', '--policy', policy, 'watch']), stderr: stderr.join('') };
  } finally {
    spy.mockRestore();
    vi.unstubAllEnvs();
    dir.cleanup();
  }
}

it('refuses a push address that is not loopback, or no push token, as bad usage before it opens the repository', async () => {
  const open = await watchRefused('http://0.0.0.0:8085/', TOKEN);
  expect(open.code).toBe(2);
  expect(open.stderr).toContain('is not a loopback address');
  const tokenless = await watchRefused('http://127.0.0.1:8085/', undefined);
  expect(tokenless.code).toBe(2);
  expect(tokenless.stderr).toContain('needs a push token');
});

/** Raw bytes to a port; resolves with the status line of the answer once the server closes the connection. */
function rawStatus(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write(text));
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => resolve(out.split('\r\n')[0]!));
  });
}

it('authenticates a request whose target is no URL before answering it 400, and warns of nothing', async () => {
  const warnings: string[] = [];
  const own = await startPushEndpoint({ host: '127.0.0.1', port: 0, token: TOKEN, ingest: async () => {}, onWarning: (m) => warnings.push(m) });
  try {
    const target = 'POST //[ HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\n';
    expect(await rawStatus(own.port, `${target}\r\n{}`)).toBe('HTTP/1.1 401 Unauthorized');
    expect(await rawStatus(own.port, `${target}authorization: Bearer wrong-token-wrong-token\r\n\r\n{}`)).toBe('HTTP/1.1 403 Forbidden');
    expect(await rawStatus(own.port, `${target}authorization: Bearer ${TOKEN}\r\n\r\n{}`)).toBe('HTTP/1.1 400 Bad Request');
    expect(warnings).toEqual([]);
  } finally {
    await own.stop();
  }
});

it('closes connections over its cap as they arrive, and answers a slow header sender 408', async () => {
  const own = await startPushEndpoint({ host: '127.0.0.1', port: 0, token: TOKEN, ingest: async () => {}, bounds: { maxConnections: 1, headersTimeoutMs: 300 } });
  try {
    const accepted = once(own.server, 'connection');
    const first = connect(own.port, '127.0.0.1');
    first.on('error', () => {});
    await accepted;
    const dropped = once(own.server, 'drop');
    const second = connect(own.port, '127.0.0.1');
    second.on('error', () => {});
    const secondClosed = once(second, 'close');
    second.resume();
    await dropped;
    await secondClosed;
    // The connection it kept: a request that never finishes its headers is answered 408.
    let out = '';
    first.on('data', (d: Buffer) => (out += d.toString('latin1')));
    const firstClosed = once(first, 'close');
    first.write(`POST /?token=${TOKEN} HTTP/1.1\r\nhost: x\r\n`);
    await firstClosed;
    expect(out.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
  } finally {
    await own.stop();
  }
});

it('under --quiet, watch still prints its own warnings: a push whose key no S3 object can have', async () => {
  const dir = tempDir('watch-quiet');
  try {
    const port = await freePort();
    const policy = join(dir.path, 'policy.yaml');
    // No S3 server: the seed run of the bucket cannot list it (it is abandoned at the stop).
    writeFileSync(policy, `version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ns3:\n  endpoint: http://127.0.0.1:1\ngroups:\n  - name: lake\n    sources:\n      - bucket: raw\n        events: http://127.0.0.1:${port}/\n`);
    const args = ['--policy', policy, '--catalog', join(dir.path, 'catalog.db')];
    const env = { LAKEGUARD_CACHE_DIR: join(dir.path, 'cache'), LAKEGUARD_WATCH_TOKEN: TOKEN, AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' };
    expect((await runCli([...args, 'init'], env)).code).toBe(0);
    const child = spawn(process.execPath, ['--expose-gc', BIN, ...args, '--quiet', 'watch', '--stop-grace', '1s'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = once(child, 'exit');
    (await connectWhenListening(port)).destroy();
    const body = `{"Records":[{"eventSource":"ceph:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"raw"},"object":{"key":"","sequencer":"01"}}}]}`;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: `/?token=${TOKEN}` }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(status).toBe(200);
    child.kill('SIGTERM');
    await exited;
    expect(stderr).toContain('warning: watch: a push named a key no S3 object can have (""): dropped, the other changes are kept\n');
  } finally {
    dir.cleanup();
  }
});
