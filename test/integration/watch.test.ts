// `lakeguard watch` on the real S3 server: a bucket whose RGW topic pushes to watch's HTTP
// endpoint. 40 PUTs and 5 DELETEs are backed up in one run at the (short) interval and the
// catalog shows them; a smaller batch waits (max_interval 1h), watch is killed (SIGKILL) with
// it journaled, and after a restart (max_interval 2s) that batch runs for max_interval with
// nothing lost; pushes without the token are refused.
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestPage } from '../../src/catalog/backup-lookups.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { deleteTopic, notifyBucket, pushSink, stopNotifications } from '../helpers/rgw-topics.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

const BIN = join(fileURLToPath(new URL('../..', import.meta.url)), 'bin/lakeguard');
const TOKEN = randomBytes(16).toString('hex');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A running `lakeguard watch --json`: its messages as they come. */
class WatchProcess {
  readonly child: ChildProcess;
  private out = '';
  private err = '';
  private waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, ['--expose-gc', BIN, 'watch', '--json', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.out += d;
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.err += d));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => {
      resolve(code);
      for (const w of this.waiters.splice(0)) w();
    }));
  }

  messages(type: string): Record<string, unknown>[] {
    return this.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((m) => m.message_type === type);
  }

  /** Waits until `count` messages of `type` came (fails if the process exits first). */
  async waitFor(type: string, count = 1): Promise<Record<string, unknown>[]> {
    for (;;) {
      const found = this.messages(type);
      if (found.length >= count) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`watch exited before ${count} ${type} messages:\n${this.out}\n${this.err}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  stderr(): string {
    return this.err;
  }
}

describe('lakeguard watch on the real S3 server (RGW HTTP push)', () => {
  let dir: ReturnType<typeof tempDir>;
  let lake: string;
  let repo: string;
  let topic: string | undefined;
  let port: number;
  let env: Record<string, string>;
  let policy: string;
  const catalogPath = (): string => join(dir.path, 'catalog.db');
  const s3 = testS3Client();
  const watches: WatchProcess[] = [];

  beforeAll(async () => {
    dir = tempDir('watch');
    lake = await createTestBucket('watch-lake');
    repo = await createTestBucket('watch-repo');
    port = await freePort();
    policy = writePolicy('1h');
    env = { ...testEnv(), LAKEGUARD_WATCH_TOKEN: TOKEN, LAKEGUARD_METRICS_TOKEN: TOKEN, LAKEGUARD_CATALOG: catalogPath(), XDG_CACHE_HOME: join(dir.path, 'cache') };
    const init = await runCli(['--policy', policy, 'init'], env);
    expect(init.code, init.stderr).toBe(0);
    topic = await notifyBucket(lake, `lgwatch-${randomBytes(4).toString('hex')}`, `http://127.0.0.1:${port}/?token=${TOKEN}`);
  });
  afterAll(async () => {
    // Notifications off before watch goes: radosgw 16 aborts when a push endpoint refuses connections.
    await stopNotifications(lake);
    if (topic !== undefined) await deleteTopic(topic);
    for (const w of watches) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await Promise.all(watches.map((w) => w.exited));
    // And a live endpoint on the port during the cleanup, should the removal not have taken.
    const sink = await pushSink(port).catch(() => undefined);
    await emptyAndDeleteBucket(lake);
    sink?.close();
    await emptyAndDeleteBucket(repo);
    dir.cleanup();
  });

  /** The policy: 45 changes make a batch at 1 s; fewer wait for `maxInterval`. */
  const writePolicy = (maxInterval: string): string =>
    writeS3Policy(join(dir.path, 'policy.yaml'), {
      repo,
      buckets: [`${lake}\n        events: http://127.0.0.1:${port}/`],
      repositoryExtra: ['encryption: none'],
      extra: [`continuous: { interval: 1s, min_updates: 45, max_interval: ${maxInterval}, reconcile: off }`],
    });

  const start = async (args: string[] = []): Promise<WatchProcess> => {
    const w = new WatchProcess(['--policy', policy, ...args], env);
    watches.push(w);
    await w.waitFor('listening');
    return w;
  };
  const put = (key: string) => s3.send(new PutObjectCommand({ Bucket: lake, Key: key, Body: `body of ${key}` }));
  const del = (key: string) => s3.send(new DeleteObjectCommand({ Bucket: lake, Key: key }));
  const catalogState = (): Map<string, boolean> => {
    const db = new Database(catalogPath(), { readonly: true });
    const repoId = (db.prepare("SELECT value FROM catalog_info WHERE name = 'repository'").get() as { value: string }).value;
    db.close();
    const catalog = Catalog.open(catalogPath(), repoId);
    try {
      return new Map(latestPage(catalog, lake, '', true, null, 10_000).map((r) => [r.key, r.deleteMarker]));
    } finally {
      catalog.close();
    }
  };

  it('backs up pushed changes in batches by the thresholds, and resumes a killed watch from its journal', async () => {
    // Five objects before the seed run; they are deleted later.
    await Promise.all(Array.from({ length: 5 }, (_, i) => put(`old/${i}`)));
    const w1 = await start();
    const [seed] = await w1.waitFor('watch_run');
    expect(seed).toMatchObject({ reason: 'seed', status: 'complete' });

    // A push without the token, or with a wrong one, is refused and journals nothing.
    const noToken = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: JSON.stringify({ Records: [] }) });
    const wrong = await fetch(`http://127.0.0.1:${port}/?token=x${TOKEN}`, { method: 'POST', body: JSON.stringify({ Records: [] }) });
    expect([noToken.status, wrong.status]).toEqual([401, 403]);

    // 40 PUTs and 5 DELETEs: 45 = min_updates, one run at the interval.
    await Promise.all([...Array.from({ length: 40 }, (_, i) => put(`new/${String(i).padStart(2, '0')}`)), ...Array.from({ length: 5 }, (_, i) => del(`old/${i}`))]);
    const [, first] = await w1.waitFor('watch_run', 2);
    expect(first).toMatchObject({ reason: 'min_updates', changes: 45, status: 'complete' });
    expect(first!.counters).toMatchObject({ objectsNew: 40, objectsDeleted: 5 });

    // Seven more, below min_updates: with max_interval 1h they wait. Watch is killed with them
    // journaled (each push was acknowledged). No write reaches the bucket while it is down
    // (radosgw 16 would abort on the refused push).
    const late = ['late/a', 'late/b', 'late/c', 'late/d', 'late/e', 'late/f', 'late/g'];
    await Promise.all(late.map(put));
    w1.child.kill('SIGKILL');
    await w1.exited;
    expect(w1.messages('watch_run')).toHaveLength(2);

    // Restarted with max_interval 2s: the journal's seven are the next batch, below min_updates.
    writePolicy('2s');
    const w2 = await start(['--metrics-listen', '127.0.0.1:0']);
    expect((await w2.waitFor('listening'))[0]).toMatchObject({ pending: 7 });
    const [resumed] = await w2.waitFor('watch_run');
    expect(resumed).toMatchObject({ reason: 'max_interval', changes: 7, status: 'complete' });
    expect(resumed!.counters).toMatchObject({ objectsNew: 7 });
    // /metrics on its own address, with the bearer token (ops' module).
    const [metrics] = await w2.waitFor('metrics_listening');
    const scrape = await fetch(metrics!.url as string, { headers: { authorization: `Bearer ${TOKEN}` } });
    const text = await scrape.text();
    expect(text).toContain('lakeguard_watch_pending_changes{group="lake"} 0');
    expect(text).toContain('lakeguard_watch_runs_total{group="lake",reason="max_interval",status="complete"} 1');
    expect((await fetch(metrics!.url as string)).status).toBe(401);
    w2.child.kill('SIGTERM');
    expect(await w2.exited).toBe(0);

    const state = catalogState();
    const live = [...state].filter(([, deleted]) => !deleted).map(([k]) => k);
    expect(live.filter((k) => k.startsWith('new/'))).toHaveLength(40);
    expect([...state].filter(([k, deleted]) => k.startsWith('old/') && deleted)).toHaveLength(5);
    expect(live.filter((k) => k.startsWith('late/'))).toEqual(late);
  });
});
