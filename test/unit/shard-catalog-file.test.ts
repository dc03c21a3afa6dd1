// Shards that share one cache directory (a HOME over NFS on a Slurm cluster, several array tasks
// on one node, a CI runner; docs/scale-out.md "A shard on a fresh host syncs only its key range"):
// a shard whose host has no whole catalog keeps its key range in its own file beside catalog.db,
// `shard-<I>-of-<N>.db`, so two shards run one after the other on one cache directory each sync
// only their range (counted: record blobs read, no index file), neither narrows catalog.db, a
// re-run reuses its file, and plain commands keep using catalog.db. A catalog.db that a plain
// command filled (a login node on a shared HOME) is not used by shards; one made whole with
// `catalog sync --all` is (also after `catalog rebuild`); a named catalog (--catalog) is scoped as
// before; shard files nobody wrote for a week go. `catalog info` says what catalog.db holds (also
// nothing yet) and lists the shard files. The CLI runs in this process (main() with a store that
// counts GETs by directory): deterministic, no server.
import { existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { catalogScope } from '../../src/catalog/scope.js';
import { shardCatalogFile } from '../../src/catalog/shard-catalogs.js';
import { catalogHoldsNothing } from '../../src/catalog/sync.js';
import { main } from '../../src/cli.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

type Message = Record<string, any>;

describe('shards sharing one cache directory', { timeout: 120_000 }, () => {
  const dir = tempDir('shard-catalog-file');
  const policy = join(dir.path, 'lakeguard.yaml');
  let reads: Record<string, number> = {};
  let repoId = '';

  /** The repository's store, counting GETs by top directory (packs: record blobs here; index). */
  const counting = (store: ObjectStore): ObjectStore =>
    new Proxy(store, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        if (prop !== 'get') return value.bind(target);
        return (key: string, ...rest: unknown[]) => {
          const top = key.split('/')[0]!;
          reads[top] = (reads[top] ?? 0) + 1;
          return (value as (...a: unknown[]) => unknown).apply(target, [key, ...rest]);
        };
      },
    });

  /** main() in this process with the cache directory `cache` (a host's HOME); stdout and stderr captured. */
  const cli = async (cache: string, argv: string[], policyFile = policy): Promise<{ code: number; out: Message[]; err: string; text: string }> => {
    const saved = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr), cache: process.env.LAKEGUARD_CACHE_DIR };
    let stdout = '';
    let stderr = '';
    process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
    process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
    process.env.LAKEGUARD_CACHE_DIR = join(dir.path, cache);
    reads = {};
    try {
      const code = await main(['node', 'lakeguard', '--policy', policyFile, ...argv], { wrapStore: counting });
      const out = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Message);
      return { code, out, err: stderr, text: stdout };
    } finally {
      process.stdout.write = saved.out;
      process.stderr.write = saved.err;
      if (saved.cache === undefined) delete process.env.LAKEGUARD_CACHE_DIR;
      else process.env.LAKEGUARD_CACHE_DIR = saved.cache;
    }
  };
  const ok = <R extends { code: number; err: string }>(r: R): R => {
    expect(r.code, r.err).toBe(0);
    return r;
  };
  const summary = (r: { out: Message[] }): Message => r.out.findLast((m) => m.message_type === 'summary')!;
  const shard = (cache: string, index: number, runSet: string, ...more: string[]) => cli(cache, ['backup', '--json', '--shards', '2', '--shard', String(index), '--run-set', runSet, ...more]);
  const repoDir = (cache: string): string => join(dir.path, cache, repoId);
  /** What a catalog file holds, read as it is (null: no such file). */
  const holding = (path: string): { scope: unknown; empty: boolean } | null => {
    if (!existsSync(path)) return null;
    const c = Catalog.open(path, repoId);
    try {
      return { scope: catalogScope(c), empty: catalogHoldsNothing(c) };
    } finally {
      c.close();
    }
  };

  const holding2 = (path: string, id: string): { scope: unknown; empty: boolean } | null => {
    if (!existsSync(path)) return null;
    const c = Catalog.open(path, id);
    try {
      return { scope: catalogScope(c), empty: catalogHoldsNothing(c) };
    } finally {
      c.close();
    }
  };

  beforeAll(async () => {
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    const whole = ['--catalog', join(dir.path, 'whole.db')];
    ok(await cli('admin', [...whole, 'init']));
    // Eight runs on a whole-catalog host, each adding a day: eight record blobs, split 4 + 4 by two shards.
    for (let d = 1; d <= 8; d++) {
      const files: Record<string, string> = {};
      for (let i = 0; i < 10; i++) files[`dt=0${d}/part-${i}.csv`] = `${d},${i},${'x'.repeat(i)}\n`;
      writeTree(join(dir.path, 'lake'), files);
      ok(await cli('admin', [...whole, 'backup', '--quiet']));
    }
    repoId = (await Repository.open(new FsStore({ root: join(dir.path, 'repo') }), { password: async () => '' })).id;
    // A change on each side of the split.
    writeTree(join(dir.path, 'lake'), { 'dt=01/part-3.csv': 'changed\n', 'dt=07/part-3.csv': 'changed\n' });
  });
  afterAll(() => dir.cleanup());

  it('two shards one after the other: each its own file and range, catalog.db untouched, a re-run reuses its file', async () => {
    // Shard 1 first, on a cache directory that holds nothing of the repository.
    const one = ok(await shard('shared', 1, 'n'));
    expect([reads.packs, reads.index ?? 0]).toEqual([4, 0]); // days 5 to 8 of 8 record blobs; no index file
    expect(summary(one).counters).toMatchObject({ objectsChanged: 1, objectsSeen: 40 });
    const file1 = join(repoDir('shared'), 'shard-1-of-2.db');
    expect(holding(file1)).toMatchObject({ scope: [{ bucket: 'lake', prefix: '', after: 'dt=04/part-9.csv' }], empty: false });
    expect(existsSync(join(repoDir('shared'), 'catalog.db'))).toBe(false);

    // Shard 0 after it, on the same cache directory: its own file, its own range, no re-import of another's.
    const zero = ok(await shard('shared', 0, 'n'));
    expect([reads.packs, reads.index ?? 0]).toEqual([4, 0]); // days 1 to 4 (shard 1's record blob lies outside)
    expect(zero.err).not.toMatch(/held another shard's key range/);
    expect(summary(zero).counters).toMatchObject({ objectsChanged: 1, objectsSeen: 40 });
    expect(holding(join(repoDir('shared'), 'shard-0-of-2.db'))).toMatchObject({ scope: [{ bucket: 'lake', prefix: '', upTo: 'dt=04/part-9.csv' }], empty: false });
    expect(existsSync(join(repoDir('shared'), 'catalog.db'))).toBe(false);

    // A re-run of shard 1 (an engine's retry) reuses its file: only the new manifest is read, no record blob, and it writes nothing.
    const again = ok(await shard('shared', 1, 'n'));
    expect(summary(again)).toMatchObject({ alreadyComplete: true, status: 'complete' });
    expect([reads.packs ?? 0, reads.index ?? 0]).toEqual([0, 0]);
    expect(holding(file1)!.scope).toEqual([{ bucket: 'lake', prefix: '', after: 'dt=04/part-9.csv' }]);

    // A plain command on that host uses catalog.db: the run set complete 2/2. `runs` reads the
    // manifests only (on demand: the runs and no key, docs/catalog.md "On-demand catalogs").
    const runs = ok(await cli('shared', ['runs', '--json'])).out.filter((m) => m.message_type === 'run');
    expect(runs.at(-1)).toMatchObject({ runSet: 'n', status: 'complete', shards: { of: 2, complete: 2 } });
    expect(holding(join(repoDir('shared'), 'catalog.db'))).toEqual({ scope: [], empty: false });
    // catalog info there names the shard files beside it.
    const info = summary(ok(await cli('shared', ['catalog', 'info', '--json'])));
    expect(info).toMatchObject({ scope: [], scopeOnDemand: true });
    expect((info.shardCatalogs as { path: string }[]).map((f) => f.path)).toEqual([join(repoDir('shared'), 'shard-0-of-2.db'), file1]);

    // The next night, after that plain command filled catalog.db: the shard goes on with its own
    // file (not every shard of the array at once on catalog.db): catalog.db does not learn the run.
    const runsBefore = ok(await cli('shared', ['runs', '--json'])).out.filter((m) => m.message_type === 'run').length;
    const next = summary(ok(await shard('shared', 1, 'n-next')));
    const host = Catalog.open(join(repoDir('shared'), 'catalog.db'), repoId);
    try {
      expect(host.listRuns().some((r) => r.id === next.runId)).toBe(false);
    } finally {
      host.close();
    }
    const own = Catalog.open(file1, repoId);
    try {
      expect(own.listRuns().some((r) => r.id === next.runId)).toBe(true);
    } finally {
      own.close();
    }
    expect(runsBefore).toBeGreaterThan(0);
  });

  it('a catalog.db a plain command filled before the first shard night (a shared HOME) is not used by any shard; --all makes it so', async () => {
    // A login node on the cluster's shared HOME syncs first: catalog.db holds the whole repository, not made whole on purpose.
    ok(await cli('login', ['catalog', 'sync', '--json']));
    const hostDb = join(repoDir('login'), 'catalog.db');
    expect(holding(hostDb)).toEqual({ scope: null, empty: false });
    const learned = (path: string, runId: string): boolean => {
      const c = Catalog.open(path, repoId);
      try {
        return c.listRuns().some((r) => r.id === runId);
      } finally {
        c.close();
      }
    };
    // Both shards of the array, on that HOME: each syncs only its range into its own file; catalog.db learns nothing from them.
    // (A range sync: no index file read, as a whole sync would.)
    const boundary = 'dt=04/part-9.csv'; // the run set's plan keeps the boundaries of the earlier ones (stable boundaries)
    for (const index of [0, 1]) {
      const run = summary(ok(await shard('login', index, 'array')));
      expect(reads.index ?? 0).toBe(0);
      const own = join(repoDir('login'), `shard-${index}-of-2.db`);
      expect(holding(own)!.scope).toEqual([{ bucket: 'lake', prefix: '', ...(index === 0 ? { upTo: boundary } : { after: boundary }) }]);
      expect(learned(own, run.runId)).toBe(true);
      expect(learned(hostDb, run.runId)).toBe(false);
    }
    // catalog info lists the shard files for automation: path, index, count, group, range, size, last write.
    const info = summary(ok(await cli('login', ['catalog', 'info', '--json', '--offline'])));
    expect(info).toMatchObject({ holds: 'whole', scope: null, wholeByRequest: false });
    expect(info.shardCatalogs).toEqual([
      { path: join(repoDir('login'), 'shard-0-of-2.db'), index: 0, of: 2, group: null, range: [{ bucket: 'lake', prefix: '', upTo: 'dt=04/part-9.csv' }], bytes: expect.any(Number), modified: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
      { path: join(repoDir('login'), 'shard-1-of-2.db'), index: 1, of: 2, group: null, range: [{ bucket: 'lake', prefix: '', after: 'dt=04/part-9.csv' }], bytes: expect.any(Number), modified: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    ]);
    expect((info.shardCatalogs as { bytes: number }[]).every((f) => f.bytes > 0)).toBe(true);
    const text = ok(await cli('login', ['catalog', 'info', '--offline'])).text;
    expect(text).toContain('shard backups on this host (--shards N) keep their key ranges in their own files beside it');
    expect(text).toMatch(/shard-0-of-2\.db: shard 0 of 2, s3:\/\/lake\/ \(keys up to "dt=04\/part-9\.csv"\) \(/);
    expect(text).toMatch(/shard-1-of-2\.db: shard 1 of 2, s3:\/\/lake\/ \(keys after "dt=04\/part-9\.csv"\) \(/);

    // The operator makes it whole on purpose: from then on the shard uses catalog.db, also after a
    // rebuild of it (its own file is left to age out).
    ok(await cli('login', ['catalog', 'sync', '--all']));
    expect(summary(ok(await cli('login', ['catalog', 'info', '--json', '--offline'])))).toMatchObject({ holds: 'whole', wholeByRequest: true });
    // `catalog rebuild` replaces the file and keeps the mark.
    ok(await cli('login', ['catalog', 'rebuild']));
    expect(summary(ok(await cli('login', ['catalog', 'info', '--json', '--offline'])))).toMatchObject({ holds: 'whole', wholeByRequest: true });
    const after = summary(ok(await shard('login', 1, 'array-2')));
    expect(learned(hostDb, after.runId)).toBe(true);
    expect(learned(join(repoDir('login'), 'shard-1-of-2.db'), after.runId)).toBe(false);
  });

  it("a whole catalog.db is used, an empty one is left alone, a named catalog is scoped as before; week-old shard files go", async () => {
    // A host whose catalog.db was made whole with `catalog sync --all`: the shard uses it (no file of its own), and it stays whole.
    ok(await cli('whole-host', ['catalog', 'sync', '--all']));
    // Files of shards it ran before it was whole: the week-old one goes, as on a host without a whole catalog.
    const eightDays = Date.now() / 1000 - 8 * 24 * 3600;
    writeFileSync(join(repoDir('whole-host'), 'shard-3-of-4.db'), '');
    utimesSync(join(repoDir('whole-host'), 'shard-3-of-4.db'), eightDays, eightDays);
    writeFileSync(join(repoDir('whole-host'), 'shard-2-of-4.db'), '');
    ok(await shard('whole-host', 0, 'w'));
    expect(holding(join(repoDir('whole-host'), 'catalog.db'))).toEqual({ scope: null, empty: false });
    expect(readdirSync(repoDir('whole-host')).filter((n) => n.startsWith('shard-'))).toEqual(['shard-2-of-4.db']);

    // A named catalog: scoped to the range, as before; nothing made in the cache directory.
    const named = join(dir.path, 'named.db');
    ok(await shard('named-host', 1, 'w', '--catalog', named));
    expect(holding(named)!.scope).toEqual([{ bucket: 'lake', prefix: '', after: expect.any(String) }]);
    expect(existsSync(join(dir.path, 'named-host'))).toBe(false);

    // A host whose catalog.db holds nothing yet (`catalog info` made it): left whole and empty; the
    // shard's own file is made, and the shard files no process wrote for a week are removed.
    // `catalog info` on it says it holds nothing yet, not "the whole repository".
    const fresh = summary(ok(await cli('stale-host', ['catalog', 'info', '--json'])));
    expect(fresh).toMatchObject({ holds: 'nothing', scope: null, marker: null, runs: 0, wholeByRequest: false, shardCatalogs: [] });
    const freshText = ok(await cli('stale-host', ['catalog', 'info'])).text;
    expect(freshText).toContain("holds: nothing yet (never synced; the next command imports only the keys it selects (ls, restore, ...) or else the whole repository)");
    expect(freshText).not.toContain('the whole repository\n');
    const d = repoDir('stale-host');
    const old = Date.now() / 1000 - 8 * 24 * 3600;
    for (const [name, when] of [['shard-5-of-8.db', old], ['shard-5-of-8.db-wal', old], ['shard-1-of-8.db', Date.now() / 1000 - 24 * 3600], ['notes.db', old]] as const) {
      writeFileSync(join(d, name), '');
      utimesSync(join(d, name), when, when);
    }
    ok(await shard('stale-host', 1, 'w'));
    expect(holding(join(d, 'catalog.db'))).toEqual({ scope: null, empty: true });
    expect(holding(join(d, 'shard-1-of-2.db'))!.scope).toEqual([{ bucket: 'lake', prefix: '', after: expect.any(String) }]);
    expect(readdirSync(d).filter((n) => !n.startsWith('catalog.db')).sort()).toEqual(['notes.db', 'shard-1-of-2.db', 'shard-1-of-8.db']);
  });

  it('a host made whole with `catalog sync --all` before the first run set uses catalog.db for its shard, and keeps it whole', async () => {
    // A new repository (no run yet): `catalog sync --all` on the host that will also prune and verify.
    const empty = join(dir.path, 'empty.yaml');
    writeFileSync(empty, 'version: 1\nrepository:\n  url: file://./repo-new\n  encryption: none\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    ok(await cli('new-admin', ['init'], empty));
    const id = (await Repository.open(new FsStore({ root: join(dir.path, 'repo-new') }), { password: async () => '' })).id;
    ok(await cli('new-whole', ['catalog', 'sync', '--all'], empty));
    const d = join(dir.path, 'new-whole', id);
    expect(holding2(join(d, 'catalog.db'), id)).toEqual({ scope: null, empty: true });
    // Its shard of the seed uses catalog.db (no file of its own), which stays whole and learns the run.
    ok(await cli('new-whole', ['backup', '--json', '--shards', '2', '--shard', '0', '--run-set', 'seed'], empty));
    expect(readdirSync(d).filter((n) => n.startsWith('shard-'))).toEqual([]);
    expect(holding2(join(d, 'catalog.db'), id)).toEqual({ scope: null, empty: false });
  });

  it('names a file per index, count and selected group, never outside the cache directory', () => {
    expect([shardCatalogFile({ index: 1, of: 2 }), shardCatalogFile({ index: 0, of: 64, group: 'lake.raw-1' })]).toEqual(['shard-1-of-2.db', 'shard-0-of-64.lake.raw-1.db']);
    expect(() => shardCatalogFile({ index: 0, of: 2, group: '../x' })).toThrow();
  });
});
