// watch's HTTP push endpoint on its own (test/integration/watch.test.ts drives it from Ceph RGW):
// what a sender without the token, or with a body that is no delivery, gets, and that a body too
// large (its rest never read) leaves the connection usable for the sender's next push.
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { startPushEndpoint, type PushEndpoint } from '../../src/engine/watch-http.js';
import type { ChangeEvent } from '../../src/engine/watch-events.js';
import { tempDir } from '../helpers/fixtures.js';

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
