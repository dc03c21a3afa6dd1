// Long listings wait for their reader (rule: stream, never hold a whole listing). The pages of
// `find`, `ls`, `diff --details`, `runs show --versions`, `runs show --anomalies` and the plan of
// `restore --dry-run` come from synchronous catalog reads (the plans of `backup --dry-run` and
// `rollback --dry-run` from listings that outpace a slow reader): written to a pipe without waiting for 'drain', the whole listing
// queues in the process (measured: `find '**' --json | cat` at 250,000 keys 424 MiB, 114 MiB
// into a file). Here the CLI runs in this process with a reader that takes what was written
// only once per turn of the event loop, as a pipe does, and signals 'drain': the output may run
// at most about a page (1,000 entries) ahead of it, and must still be the whole listing in order.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { main } from '../../src/cli.js';
import { backupGroup } from '../../src/engine/backup.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group } from '../../src/policy/types.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { initRepo, tempDir, testPolicy } from '../helpers/fixtures.js';

const BIN = fileURLToPath(new URL('../../bin/lakeguard', import.meta.url));

/** Keys in the lake: four pages of every listing below. */
const KEYS = 4000;
const keyOf = (i: number) => `dt=2026-01-01/part-${String(i).padStart(5, '0')}.parquet`;

interface SlowRead {
  code: number;
  stdout: string;
  /** The most bytes written and not yet taken by the reader at any moment. */
  maxAhead: number;
}

/**
 * main() with process.stdout replaced by a pipe-like reader: write() queues, answers false (and
 * writableNeedDrain is true) once 16 KiB wait, and the reader empties the queue on the next turn
 * of the event loop, then emits 'drain'.
 */
async function readSlowly(argv: string[]): Promise<SlowRead> {
  const out = process.stdout;
  const saved = out.write.bind(out);
  let stdout = '';
  let pending = 0;
  let maxAhead = 0;
  let reading = false;
  Object.defineProperty(out, 'writableNeedDrain', { configurable: true, get: () => pending >= 16 * 1024 });
  out.write = (chunk: string | Uint8Array) => {
    const text = String(chunk);
    stdout += text;
    pending += Buffer.byteLength(text);
    maxAhead = Math.max(maxAhead, pending);
    if (!reading) {
      reading = true;
      setImmediate(() => {
        reading = false;
        const full = pending >= 16 * 1024;
        pending = 0;
        if (full) out.emit('drain');
      });
    }
    return pending < 16 * 1024;
  };
  try {
    const code = await main(['node', 'lakeguard', ...argv]);
    return { code, stdout, maxAhead };
  } finally {
    out.write = saved;
    delete (out as { writableNeedDrain?: boolean }).writableNeedDrain;
  }
}

/** Runs node with `nodeArgs` whose reader goes away, as `| head -c 1`: the first bytes read, then the pipe closed while output is still coming. Exit 0, no error. */
async function finishesWithoutReader(nodeArgs: string[]): Promise<void> {
  const child = spawn(process.execPath, nodeArgs, { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code, stderr).toBe(0);
  expect(stderr).not.toContain('exit_error');
}

describe('long listings wait for their reader', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let args: string[];
  const runs: string[] = [];

  beforeAll(async () => {
    dir = tempDir('backpressure');
    const repoDir = join(dir.path, 'repo');
    const repo = await initRepo(new FsStore({ root: repoDir, fsync: false }), { password: null });
    const policyFile = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policyFile, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: lake\n    sources:\n      - bucket: lake\n');
    const group: Group = { name: 'lake', sources: [{ kind: 'path', path: '/lake', prefixes: [''], exclude: [] }], retention: {} };
    const policy = testPolicy(repo.location, [group], { repository: { url: repo.location, encryption: 'none' } });
    const catalogFile = join(dir.path, 'catalog.db');
    const catalog = Catalog.open(catalogFile, repo.id);
    const lake = new MemStore({ name: 'lake' });
    const sources = [{ bucket: 'lake', objectStore: lake, prefixes: [''], isExcluded: compileExcludes([]) }];
    for (let i = 0; i < KEYS; i++) await lake.put(keyOf(i), Buffer.from(`first ${i}`));
    runs.push((await backupGroup({ repo, catalog, policy, group, sources })).runId);
    // Every key overwritten: a diff of KEYS changes, and a run anomaly detection flags.
    for (let i = 0; i < KEYS; i++) await lake.put(keyOf(i), Buffer.from(`second ${i}`));
    runs.push((await backupGroup({ repo, catalog, policy, group, sources })).runId);
    catalog.close();
    args = ['--policy', policyFile, '--catalog', catalogFile];
  }, 60_000);

  afterAll(() => dir.cleanup());

  const lines = (r: SlowRead, type: string) =>
    r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((m) => m.message_type === type);
  const keys = Array.from({ length: KEYS }, (_, i) => keyOf(i));

  /** The whole listing arrived, and no more than about a page (a quarter of it) ever waited for the reader. */
  const streamed = (r: SlowRead): void => {
    expect(r.code).toBe(0);
    expect(r.maxAhead).toBeLessThan(Buffer.byteLength(r.stdout) / 3);
  };

  it('find --json', async () => {
    const r = await readSlowly([...args, '--json', 'find', '**']);
    streamed(r);
    expect(lines(r, 'match').map((m) => m.key)).toEqual(keys);
    expect(lines(r, 'summary')).toHaveLength(1);
  });

  it('ls (a table)', async () => {
    const r = await readSlowly([...args, 'ls', 's3://lake/dt=2026-01-01/', '--at', runs[0]!]);
    streamed(r);
    const rows = r.stdout.split('\n').filter((l) => l.includes('part-'));
    expect(rows.map((l) => l.split(/\s+/).at(-1))).toEqual(keys.map((k) => k.slice('dt=2026-01-01/'.length)));
  });

  it('diff --details --json', async () => {
    const r = await readSlowly([...args, '--json', 'diff', runs[0]!, runs[1]!, '--details']);
    streamed(r);
    expect(lines(r, 'change').map((m) => m.key)).toEqual(keys);
  });

  it('runs show --versions --json', async () => {
    const r = await readSlowly([...args, '--json', 'runs', 'show', runs[1]!, '--versions']);
    streamed(r);
    expect(lines(r, 'version').map((m) => m.key)).toEqual(keys);
  });

  it('runs show --anomalies, as JSON and as CSV', async () => {
    const r = await readSlowly([...args, '--json', 'runs', 'show', runs[1]!, '--anomalies']);
    streamed(r);
    expect(lines(r, 'flagged_object').map((m) => m.key)).toEqual(keys);
    const csv = await readSlowly([...args, 'runs', 'show', runs[1]!, '--anomalies', '--csv']);
    streamed(csv);
    expect(csv.stdout.trimEnd().split('\n')).toHaveLength(KEYS + 1);
  });

  it('restore --dry-run --json (one line per key, from the engine)', async () => {
    const r = await readSlowly([...args, '--json', 'restore', '--dry-run', '--bucket', 'lake', '--to-dir', join(dir.path, 'restored')]);
    streamed(r);
    const actions = lines(r, 'restore_action');
    expect(actions.every((a) => a.action === 'write')).toBe(true);
    expect(actions.map((a) => a.key as string).sort()).toEqual(keys);
  });

  it('restore --dry-run whose reader goes away still finishes (docs/output.md): no wait for a drain that never comes', async () => {
    await finishesWithoutReader(['--expose-gc', BIN, ...args, '--json', 'restore', '--dry-run', '--bucket', 'lake', '--to-dir', join(dir.path, 'restored')]);
  });
});

describe('dry runs of backup and rollback wait for their reader', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let args: string[];
  const keys = Array.from({ length: KEYS }, (_, i) => keyOf(i));
  const lake = () => join(dir.path, 'lake');
  const write = (text: string) => {
    mkdirSync(join(lake(), 'dt=2026-01-01'), { recursive: true });
    for (const [i, key] of keys.entries()) writeFileSync(join(lake(), key), `${text} ${i}`);
  };
  const lines = (r: SlowRead, type: string) =>
    r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((m) => m.message_type === type);
  const streamed = (r: SlowRead): void => {
    expect(r.code).toBe(0);
    expect(r.maxAhead).toBeLessThan(Buffer.byteLength(r.stdout) / 3);
  };

  beforeAll(async () => {
    dir = tempDir('backpressure-dry');
    await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: null });
    const policyFile = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policyFile, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: lake\n    sources:\n      - path: ./lake\n');
    args = ['--policy', policyFile, '--catalog', join(dir.path, 'catalog.db')];
    write('first');
  }, 60_000);

  afterAll(() => dir.cleanup());

  it('backup --dry-run --json (one would_back_up line per object), then rollback --dry-run --json (one rollback_action line per key)', async () => {
    const dry = await readSlowly([...args, '--json', 'backup', '--dry-run']);
    streamed(dry);
    expect(lines(dry, 'would_back_up').map((m) => m.key as string).sort()).toEqual(keys);
    const backup = await readSlowly([...args, '--json', 'backup']);
    expect(backup.code).toBe(0);
    const run = lines(backup, 'summary')[0]!.runId as string;
    write('second');
    const plan = await readSlowly([...args, '--json', 'rollback', '--bucket', 'lake', '--at', run, '--dry-run']);
    streamed(plan);
    expect(lines(plan, 'rollback_action').map((m) => m.key as string).sort()).toEqual(keys);
  });

  it('backup --dry-run whose reader goes away still finishes: no wait for a drain that never comes', async () => {
    await finishesWithoutReader([BIN, ...args, '--json', 'backup', '--dry-run']);
  });
});
