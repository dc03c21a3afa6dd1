// What a script sees of a backup that fails after its run started (README "Exit codes",
// docs/output.md "--json"): the recorded run's `summary` (its id, status, the counters so far)
// on stdout before the `exit_error` on stderr, and every line one JSON message. The CLI runs in
// this process (main() with a wrapped repository store that delivers SIGTERM to the command
// once its first pack is written): deterministic, no server, no timing.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli.js';
import { ExitCode, StorageError } from '../../src/errors.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { initRepo, prng, tempDir, writeTree } from '../helpers/fixtures.js';

/**
 * The repository store, except that once its first pack is written, the command gets SIGTERM
 * (its own SIGTERM listener is called, as the signal would call it: vitest's are left alone).
 */
function terminateAfterFirstPack(store: ObjectStore, before: ReadonlySet<unknown>, packs = 1): ObjectStore {
  let sent = false;
  let written = 0;
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      if (prop !== 'put') return value.bind(target);
      return async (key: string, ...rest: unknown[]) => {
        const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, [key, ...rest]);
        if (!sent && key.startsWith('packs/') && ++written >= packs) {
          sent = true;
          for (const listener of process.listeners('SIGTERM')) if (!before.has(listener)) (listener as () => void)();
        }
        return result;
      };
    },
  });
}

/** main() in this process with stdout and stderr captured; every line must be JSON. */
async function cli(argv: string[], wrap?: (s: ObjectStore) => ObjectStore): Promise<{ code: number; out: Record<string, any>[]; err: Record<string, any>[] }> {
  const saved = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
  let stdout = '';
  let stderr = '';
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  try {
    const code = await main(['node', 'lakeguard', ...argv], wrap === undefined ? {} : { wrapStore: (s) => wrap(s) });
    const parse = (text: string): Record<string, any>[] => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, any>);
    return { code, out: parse(stdout), err: parse(stderr) };
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
  }
}

describe('backup --json of a run that fails', () => {
  const dir = tempDir('backup-json-failure');
  afterAll(() => dir.cleanup());

  it('prints the recorded run\'s summary (status interrupted, its id and counters) before the exit_error', async () => {
    const policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    // Packs of 1 KiB: the first is written while the scan still has files to read.
    const files = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}.bin`, prng(i + 1)(2000)]));
    writeTree(join(dir.path, 'lake'), files);
    await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: null, packSize: 1024 });
    const base = ['--policy', policy, '--catalog', join(dir.path, 'catalog.db'), '--json'];

    const before = new Set(process.listeners('SIGTERM'));
    const failed = await cli([...base, 'backup'], (s) => terminateAfterFirstPack(s, before));
    expect(failed.code).toBe(ExitCode.interrupted);
    expect(failed.err.at(-1)).toMatchObject({ message_type: 'exit_error', code: 130 });
    const summary = failed.out.at(-1)!;
    expect(summary).toMatchObject({ message_type: 'summary', group: 'local', status: 'interrupted', dryRun: false });
    expect(summary.counters.packsWritten).toBeGreaterThan(0);

    // The id is the run's as recorded: `runs` says the same status.
    const runs = await cli([...base, 'runs']);
    const run = runs.out.find((m) => m.message_type === 'run' && m.id === summary.runId);
    expect(run).toMatchObject({ status: 'interrupted' });
  });
});

describe('a first backup stopped half-way, then run again', () => {
  const dir = tempDir('first-backup-resumed');
  afterAll(() => dir.cleanup());

  it('is still the bucket\'s baseline: the rest of the lake is not a flood of new keys (exit 0, not suspect)', async () => {
    const policy = join(dir.path, 'lakeguard.yaml');
    // Two transfers at a time: what is in flight when the signal comes is a few files, not a queue.
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\nconcurrency: { transfer: 2 }\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    // One partition of 1,500 files; packs of 1 KiB, one file each: stopped after 40 packs, the
    // run recorded over min_partition_objects keys there, and the rest is many times more (the
    // `added` rule's 200 %).
    writeTree(join(dir.path, 'lake'), Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`p/f${String(i).padStart(4, '0')}.bin`, prng(i + 1)(2000)])));
    await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: null, packSize: 1024 });
    const base = ['--policy', policy, '--catalog', join(dir.path, 'catalog.db'), '--json'];
    const before = new Set(process.listeners('SIGTERM'));
    const stopped = await cli([...base, 'backup'], (s) => terminateAfterFirstPack(s, before, 40));
    expect(stopped.code).toBe(ExitCode.interrupted);
    const recorded = stopped.out.at(-1)!.counters.objectsNew as number;
    expect(recorded).toBeGreaterThanOrEqual(40);
    expect(recorded).toBeLessThan(500);
    // Its counters count what it recorded, not what it read and could not store before it stopped.
    const shown = await cli([...base, 'runs', 'show', stopped.out.at(-1)!.runId as string]);
    expect(shown.out.at(-1)).toMatchObject({ status: 'interrupted', versionsRecorded: recorded });

    const resumed = await cli([...base, 'backup']);
    expect(resumed.code).toBe(0);
    expect(resumed.out.at(-1)).toMatchObject({ message_type: 'summary', status: 'complete', suspect: false });
  });
});

describe('a shard re-run after its complete attempt', () => {
  const dir = tempDir('shard-rerun-verdict');
  afterAll(() => dir.cleanup());

  it('exits 4 while that attempt is suspect and not acknowledged, 0 once acknowledged', async () => {
    const policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    writeTree(join(dir.path, 'lake'), { 'a.csv': 'a,1\n', 'b.csv': 'b,2\n' });
    await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: null });
    const base = ['--policy', policy, '--catalog', join(dir.path, 'catalog.db'), '--json'];
    expect((await cli([...base, 'backup'])).code).toBe(0);
    // A ransom note: the shard's run is complete and suspect (exit 4).
    writeTree(join(dir.path, 'lake'), { 'HOW_TO_DECRYPT.txt': 'pay' });
    const shard = [...base, 'backup', '--shards', '1', '--shard', '0', '--run-set', 'nightly-1'];
    const first = await cli(shard);
    expect(first.code).toBe(ExitCode.suspect);
    expect(first.out.find((m) => m.message_type === 'status' && m.phase === 'plan')?.detail).toBe('shard 0 of 1 (0-based) of run set nightly-1: planned it (one shard: the whole key space, no boundaries)');
    const runId = first.out.at(-1)!.runId as string;

    // The engine retries it (its pod was lost after the manifest): the verdict stays.
    const again = await cli(shard);
    expect(again.code).toBe(ExitCode.suspect);
    expect(again.out.at(-1)).toMatchObject({ message_type: 'summary', runId, alreadyComplete: true, status: 'complete', suspect: true });
    const reused = (r: { err: Record<string, any>[] }) => r.err.filter((m) => m.message_type === 'warning' && / completed at /.test(m.message as string));
    expect(reused(again)).toEqual([]);

    expect((await cli([...base, 'runs', 'ack', runId, '--note', 'test'])).code).toBe(0);
    // Two hours later no engine retries it: a schedule passing the same --run-set again is told it copies nothing.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 2 * 3_600_000 });
    const acked = await cli(shard).finally(() => vi.useRealTimers());
    expect(acked.code).toBe(0);
    expect(acked.out.at(-1)).toMatchObject({ runId, alreadyComplete: true, suspect: false });
    expect(reused(acked).map((m) => m.message)).toEqual([expect.stringMatching(new RegExp(`^shard 0 of 1 \\(0-based\\) of run set nightly-1 completed at [-\\d]+ [:.\\d]+Z \\(run ${runId}\\): this backup copies nothing; .*a run-set name of its own`))]);
  });
});

describe('a backup whose credentials cannot delete its lock file', () => {
  const dir = tempDir('backup-lock-left');
  afterAll(() => dir.cleanup());

  it('completes (exit 0) and warns that its lock file stays', async () => {
    const policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    writeTree(join(dir.path, 'lake'), { 'a.csv': 'a,1\n' });
    await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: null });
    const base = ['--policy', policy, '--catalog', join(dir.path, 'catalog.db')];
    const createOnly = (store: ObjectStore): ObjectStore =>
      new Proxy(store, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target) as unknown;
          if (typeof value !== 'function') return value;
          if (prop !== 'delete') return value.bind(target);
          return (key: string) => Promise.reject(new StorageError('AccessDenied', `DELETE ${target.location}${key}: AccessDenied (403)`, { backendCode: 'AccessDenied' }));
        },
      });
    const json = await cli([...base, '--json', 'backup'], createOnly);
    expect(json.code).toBe(0);
    expect(json.out.at(-1)).toMatchObject({ message_type: 'summary', status: 'complete' });
    expect(json.err).toEqual([{ message_type: 'warning', message: expect.stringMatching(/^could not remove the repository lock locks\/\S+: .*AccessDenied.*; it holds off prune and forget until it goes stale/) }]);
    expect(readdirSync(join(dir.path, 'repo', 'locks'))).toHaveLength(1);
  });
});
