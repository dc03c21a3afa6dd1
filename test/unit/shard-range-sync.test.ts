// A shard on a fresh host syncs only its key range (issue 20 section 3; docs/scale-out.md "A shard
// syncs only its key range"): it plans from the run manifests' record ranges when no plan exists,
// reads only the record blobs that overlap its range and no index file, backs up its range (changes
// and deletions in it found, nothing outside it touched), and a fresh whole catalog then sees one
// complete run set that restores byte-identical and verifies, also after a prune.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { runSetCut, runSetsOf } from '../../src/catalog/run-sets.js';
import { catalogScope, isRangeScope, setCatalogScope, scopeCoversPart, scopeHoldsKey, scopeOverlapsRange, type CatalogPrefix } from '../../src/catalog/scope.js';
import { requireInScope } from '../../src/commands/catalog-scope-guard.js';
import { backupGroup } from '../../src/engine/backup.js';
import { prune } from '../../src/engine/prune.js';
import { restore } from '../../src/engine/restore.js';
import { listedKeys, recordedBounds, type KeySource, type RecordedRange } from '../../src/engine/shard-bounds.js';
import { readPlan } from '../../src/engine/shard-plan.js';
import { readRecordedRuns, shardCatalogScope, shardScope } from '../../src/engine/shard-scope.js';
import type { BucketKey, ShardIdentity } from '../../src/engine/shards.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { verify } from '../../src/engine/verify.js';
import { ExitCode, UsageError } from '../../src/errors.js';
import type { Group, Policy } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import type { GetOptions } from '../../src/storage/types.js';
import { messagesOf, runCli, summaryOf } from '../helpers/cli.js';
import { initRepo, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';

/** The repository directory, counting GETs by directory. */
class CountingFs extends FsStore {
  reads = { packs: 0, index: 0, runs: 0, runsets: 0 };
  override async get(key: string, opts?: GetOptions) {
    const dir = key.split('/')[0] as keyof CountingFs['reads'];
    if (dir in this.reads) this.reads[dir]++;
    return super.get(key, opts);
  }
  resetReads(): void {
    this.reads = { packs: 0, index: 0, runs: 0, runsets: 0 };
  }
}

const SHARED = Buffer.from(JSON.stringify({ schema: 'events', columns: ['a', 'b', 'c'] }).repeat(40));

describe('a shard on a fresh host syncs only its key range', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let store: CountingFs;
  let repo: Repository;
  let lake: MemStore;
  let policy: Policy;
  const group: Group = { name: 'lake', sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }], retention: { keepLast: 10 } };
  const catalogs: Catalog[] = [];
  const host = (name: string): Catalog => {
    const c = Catalog.open(join(dir.path, `${name}.db`), repo.id);
    catalogs.push(c);
    return c;
  };
  const source = (): OpenedSource => ({ bucket: 'lake', objectStore: lake, prefixes: [''], isExcluded: () => false });
  /** Planning lists the lake (the test's source) for keys after the last recorded one. */
  const keys: KeySource = (segment, signal, after) => listedKeys({ ...segment, source: source() }, signal, after);
  const day = (d: number): string => `dt=0${d}/`;
  const addDay = async (d: number): Promise<void> => {
    await lake.put(`${day(d)}_schema.json`, d === 1 ? SHARED : Buffer.from(`{"day":${d}}`));
    for (let i = 0; i < 20; i++) await lake.put(`${day(d)}part-${String(i).padStart(3, '0')}.json`, Buffer.from(JSON.stringify({ d, i, pad: 'x'.repeat(i * 5) })));
  };
  /** The shard's catalog scoped and synced as `backup --shards` does on this host, then its backup. */
  const shardRun = async (catalog: Catalog, index: number) => {
    const shard: ShardIdentity = { index, of: 2, runSet: 'nightly' };
    const before = { ...store.reads };
    const scoped = await shardCatalogScope({ repo, catalog, policy, groups: [group], shard, dryRun: false, concurrency: 2, keys });
    const sync = await syncCatalog({ repo, catalog, ...(scoped.scopeTo === undefined ? {} : { scopeTo: scoped.scopeTo }) });
    const reads = { packs: store.reads.packs - before.packs, index: store.reads.index - before.index };
    const runShard = scoped.planned?.shards.get('lake');
    const summary = await backupGroup({ repo, catalog, policy, group, sources: [source()], ...(runShard === undefined ? {} : { shard: runShard }) });
    return { scoped, sync, reads, summary };
  };
  const recordBlobs = async (): Promise<number> => [...(await readRecordedRuns(repo, 2)).ranges.values()].reduce((n, r) => n + r.length, 0);

  beforeEach(async () => {
    dir = tempDir('shard-range-sync');
    store = new CountingFs({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store, { packSize: 64 * 1024 });
    policy = testPolicy(store.location, [group], { concurrency: { list: 2, transfer: 2 } });
    lake = new MemStore({ name: 'lake' });
    // A prior history on a whole-catalog host: eight runs, each adding a day (each run's record blob covers its day).
    const a = host('a');
    for (let d = 1; d <= 8; d++) {
      await addDay(d);
      await backupGroup({ repo, catalog: a, policy, group, sources: [source()] });
    }
  });
  afterEach(() => {
    for (const c of catalogs.splice(0)) c.close();
    dir.cleanup();
  });

  it('plans from record ranges, syncs only overlapping record blobs (no index file), backs up its range; a whole catalog restores and verifies the run set', async () => {
    expect(await recordBlobs()).toBe(8);
    // Changes on both sides of the split: day 1 (shard 0), days 5 and 6 (shard 1), and a new file
    // in day 5 whose bytes equal day 1's schema (shard 1's catalog does not know them: a second copy).
    await lake.put(`${day(1)}part-005.json`, Buffer.from('{"changed":1}'));
    await lake.put(`${day(5)}part-007.json`, Buffer.from('{"changed":5}'));
    await lake.delete(`${day(6)}part-011.json`);
    await lake.put(`${day(5)}extra.json`, SHARED);

    // Shard 1 starts first, on a fresh host: it plans without a catalog.
    store.resetReads();
    const b = host('b');
    const one = await shardRun(b, 1);
    expect(one.scoped.planned?.created).toBe(true);
    expect(one.scoped.planned?.planned.get('lake')).toBe('records');
    const plan = (await readPlan(repo, 'nightly'))!;
    const bound = plan.groups.lake!.bounds[0]!;
    // Eight record blobs of about equal size: the split falls after day 4's last recorded key.
    expect(bound).toEqual(['lake', `${day(4)}part-019.json`]);
    expect(catalogScope(b)).toEqual([{ bucket: 'lake', prefix: '', after: bound[1] }]);
    // Only the record blobs whose range reaches past the boundary; no index file.
    expect(one.reads.index).toBe(0);
    expect(one.reads.packs).toBe(4); // days 5 to 8, of 8 record blobs
    expect(one.sync.requests.get).toBe(8 + 4); // the manifests and those four
    // Every catalogued key in range, nothing outside it.
    const keysOf = (c: Catalog) => (sqlite(c).prepare('SELECT o.key FROM objects o ORDER BY o.key').pluck().all() as string[]);
    expect(keysOf(b).every((k) => k > bound[1])).toBe(true);
    expect(one.summary.status).toBe('complete');
    const c1 = one.summary.counters;
    expect([c1.objectsChanged, c1.objectsDeleted, c1.objectsNew]).toEqual([1, 1, 1]);
    expect(c1.blobsDeduplicated).toBe(0); // SHARED is stored again: this catalog does not know day 1's copy
    // Its index files list what it stored (3 new blobs and its record blob), not the blobs its sync located from run records.
    const manifest = await repo.readDocument<{ indexes: string[] }>('runs', one.summary.runId);
    let listed = 0;
    for (const name of manifest.indexes) for (const p of (await repo.readDocument<{ packs: { blobs: unknown[] }[] }>('index', name)).packs) listed += p.blobs.length;
    expect(listed).toBe(c1.blobsNew + 1);
    expect([...b.knownIndexFiles()].sort()).toEqual([...manifest.indexes].sort()); // only those it wrote

    // Shard 0 on another fresh host: reads the plan, its own range only.
    const c = host('c');
    const zero = await shardRun(c, 0);
    expect(zero.scoped.planned?.created).toBe(false);
    expect(catalogScope(c)).toEqual([{ bucket: 'lake', prefix: '', upTo: bound[1] }]);
    expect(zero.reads.index).toBe(0);
    expect(zero.reads.packs).toBe(4); // days 1 to 4, of 9 record blobs now (shard 1's run wrote one)
    expect([zero.summary.counters.objectsChanged, zero.summary.counters.objectsDeleted, zero.summary.counters.objectsNew]).toEqual([1, 0, 0]);

    // A fresh whole catalog sees one complete run set of both shards, restores it byte-identical, and verifies; so after a prune.
    const d = host('d');
    store.resetReads();
    await syncCatalog({ repo, catalog: d });
    expect(store.reads.packs).toBe(10); // every record blob
    expect(store.reads.index).toBeGreaterThan(0);
    const sets = runSetsOf(d);
    expect(sets.map((s) => [s.id, s.status])).toEqual([[plan.groups.lake!.run, 'complete']]);
    const restoresAll = async (catalog: Catalog): Promise<void> => {
      const target = new MemStore({ name: 'restored' });
      const r = await restore({ repo, catalog, scopes: [{ bucket: 'lake', prefix: '' }], cut: runSetCut(catalog, runSetsOf(catalog)[0]!), target, bucketDirs: false, concurrency: 2 });
      expect(r.failures).toEqual([]);
      const want: string[] = [];
      for await (const item of lake.list('')) if (item.kind === 'object') want.push(item.key);
      const got: string[] = [];
      for await (const item of target.list('')) if (item.kind === 'object') got.push(item.key);
      expect(got.sort()).toEqual(want.sort());
      for (const key of want) {
        const read = async (s: MemStore) => {
          const chunks: Buffer[] = [];
          for await (const chunk of (await s.get(key)).body) chunks.push(chunk as Buffer);
          return Buffer.concat(chunks);
        };
        expect((await read(target)).equals(await read(lake)), key).toBe(true);
      }
    };
    await restoresAll(d);
    expect((await verify({ repo, catalog: d, readData: 1, concurrency: 2 })).damage).toEqual([]);
    const pruned = await prune({ repo, catalog: d, maxUnused: 0 });
    expect([pruned.missing, pruned.damaged]).toEqual([[], []]);
    expect((await verify({ repo, catalog: d, readData: 1, concurrency: 2 })).damage).toEqual([]);
    await restoresAll(d);
    // The shard hosts' catalogs follow the prune (their range's blobs relocated, none lost).
    for (const shardHost of [b, c]) expect((await syncCatalog({ repo, catalog: shardHost })).damage).toEqual([]);
  });

  it('a range-scoped catalog refuses every command outside its range, and a later run with another range moves it in place', async () => {
    const b = host('b');
    await shardRun(b, 1);
    const bound = (await readPlan(repo, 'nightly'))!.groups.lake!.bounds[0]!;
    const scope = catalogScope(b)!;
    // A whole backup, and the other shard's backup, are refused in one line (exit 2).
    await expect(backupGroup({ repo, catalog: b, policy, group, sources: [source()] })).rejects.toThrow(UsageError);
    await expect(backupGroup({ repo, catalog: b, policy, group, sources: [source()], shard: { set: 'x', name: 'nightly', index: 0, of: 2, range: { upTo: bound } } })).rejects.toThrow(
      /backup needs every version of its shard range; this catalog holds only s3:\/\/lake\/ \(keys after ".*"\) \(scoped\)/,
    );
    // Key selections: inside the range answered, outside or overlapping refused.
    // One exact key (`restore --key`, `versions`) is checked as a key, not as a prefix: shard 0's
    // range ends at the boundary key itself, which it holds, though keys starting with it are not in range.
    const zero = host('zero');
    setCatalogScope(zero, [{ bucket: 'lake', prefix: '', upTo: bound[1] }]);
    expect(() => requireInScope(zero, 'restore', [{ bucket: 'lake', prefix: bound[1], exact: true }])).not.toThrow();
    expect(() => requireInScope(zero, 'restore', [{ bucket: 'lake', prefix: bound[1] }])).toThrow(/reaches outside the catalog's scope/);
    expect(() => requireInScope(b, 'versions', [{ bucket: 'lake', prefix: bound[1], exact: true }])).toThrow(/reaches outside the catalog's scope/);
    expect(() => requireInScope(b, 'restore', [{ bucket: 'lake', prefix: day(6) }])).not.toThrow();
    expect(() => requireInScope(b, 'restore', [{ bucket: 'lake', prefix: day(1) }])).toThrow(/reaches outside the catalog's scope/);
    expect(() => requireInScope(b, 'ls', [{ bucket: 'lake', prefix: '' }])).toThrow(UsageError);
    await expect(prune({ repo, catalog: b, maxUnused: 0 })).rejects.toThrow(/prune needs every version of the repository/);

    // The next run set plans otherwise (here: shard 0 of a new one on this host): its range moves in place.
    const warnings: string[] = [];
    const shard0: ShardIdentity = { index: 0, of: 2, runSet: 'nightly-2' };
    const scoped = await shardCatalogScope({ repo, catalog: b, policy, groups: [group], shard: shard0, dryRun: false, concurrency: 2, keys });
    // Not while another process has the file open (another shard on this host): it would be emptied under it.
    const other = Catalog.open(join(dir.path, 'b.db'), repo.id);
    try {
      await expect(syncCatalog({ repo, catalog: b, scopeTo: scoped.scopeTo! })).rejects.toThrow(/b\.db holds another shard's key range and is in use by another lakeguard process/);
      expect(catalogScope(other)).toEqual(scope);
    } finally {
      other.close();
    }
    const sync = await syncCatalog({ repo, catalog: b, scopeTo: scoped.scopeTo!, events: (e) => void (e.type === 'warning' && warnings.push(e.message)) });
    expect(sync.scopeChanged).toBe(true);
    // Moved in place (docs/scale-out.md): the other range's keys dropped, this one's imported; nothing emptied.
    expect(sync.resized).toMatchObject({ objects: expect.any(Number) });
    expect(sync.resized!.objects).toBeGreaterThan(0);
    expect(warnings.some((w) => w.startsWith("this catalog held another shard's key range"))).toBe(false);
    expect(catalogScope(b)).not.toEqual(scope);
    const newBound = (await readPlan(repo, 'nightly-2'))!.groups.lake!.bounds[0]!;
    expect(catalogScope(b)).toEqual([{ bucket: 'lake', prefix: '', upTo: newBound[1] }]);
    const keys0 = sqlite(b).prepare('SELECT o.key FROM objects o ORDER BY o.key').pluck().all() as string[];
    expect(keys0.length).toBeGreaterThan(0);
    expect(keys0.every((k) => k <= newBound[1])).toBe(true);
    // The same range again: nothing changes.
    expect((await syncCatalog({ repo, catalog: b, scopeTo: scoped.scopeTo! })).scopeChanged).toBe(false);
    // Too few record blobs for 4 shards (8, not 16): planned from a listing, not from this catalog's one range.
    const four = await shardCatalogScope({ repo, catalog: b, policy, groups: [group], shard: { index: 0, of: 4, runSet: 'four' }, dryRun: true, concurrency: 2, keys });
    expect(four.planned?.planned.get('lake')).toBe('listing');
    const all: string[] = [];
    for await (const item of lake.list('')) if (item.kind === 'object') all.push(item.key);
    all.sort();
    expect(four.planned!.plan.groups.lake!.bounds).toEqual([all[41], all[83], all[125]].map((k) => ['lake', k]));
    // A fresh catalog that another process has open (a shard's own file: an engine's retry of that
    // shard while the attempt still runs, or `catalog info` on it) is scoped all the same, not synced whole.
    const shared = host('shared');
    const sharer = Catalog.open(join(dir.path, 'shared.db'), repo.id);
    try {
      const told: string[] = [];
      const ranged = await syncCatalog({ repo, catalog: shared, scopeTo: scoped.scopeTo!, events: (e) => void (e.type === 'warning' && told.push(e.message)) });
      expect([ranged.scope, ranged.scopeChanged]).toEqual([scoped.scopeTo, true]);
      expect(told).toEqual([]);
    } finally {
      sharer.close();
    }
    // A whole catalog is never narrowed by a shard.
    const a = catalogs[0]!;
    expect((await shardCatalogScope({ repo, catalog: a, policy, groups: [group], shard: shard0, dryRun: false, concurrency: 2, keys })).scopeTo).toBeUndefined();
  });
});

describe('planning and scoping by key range', () => {
  it('range scope parts: a key, a prefix and a record blob range against (after, upTo]', () => {
    const scope: CatalogPrefix[] = [{ bucket: 'lake', prefix: 'dt=', after: 'dt=02/x', upTo: 'dt=04/b' }];
    expect(scopeHoldsKey(scope, 'lake', 'dt=02/x')).toBe(false);
    expect(scopeHoldsKey(scope, 'lake', 'dt=02/y')).toBe(true);
    expect(scopeHoldsKey(scope, 'lake', 'dt=04/b')).toBe(true);
    expect(scopeHoldsKey(scope, 'lake', 'dt=04/ba')).toBe(false);
    expect(scopeHoldsKey(scope, 'other', 'dt=03/a')).toBe(false);
    expect(scopeCoversPart(scope, { bucket: 'lake', prefix: 'dt=03/' })).toBe(true);
    expect(scopeCoversPart(scope, { bucket: 'lake', prefix: 'dt=04/' })).toBe(false);
    expect(scopeCoversPart(scope, { bucket: 'lake', prefix: 'dt=02/' })).toBe(false);
    expect(scopeCoversPart(scope, { bucket: 'lake', prefix: 'dt=02/', after: 'dt=02/x' })).toBe(true);
    expect(scopeCoversPart(scope, { bucket: 'lake', prefix: 'dt=', after: 'dt=02/w', upTo: 'dt=04/b' })).toBe(false);
    expect(scopeOverlapsRange(scope, ['lake', 'dt=01/a'], ['lake', 'dt=02/x'])).toBe(false);
    expect(scopeOverlapsRange(scope, ['lake', 'dt=01/a'], ['lake', 'dt=02/y'])).toBe(true);
    expect(scopeOverlapsRange(scope, ['lake', 'dt=04/b'], ['lake', 'dt=09/a'])).toBe(true);
    expect(scopeOverlapsRange(scope, ['lake', 'dt=04/ba'], ['lake', 'dt=09/a'])).toBe(false);
    // A shard whose range holds none of its prefixes: a range scope of no part, which holds nothing.
    const none = shardScope([{ name: 'g', sources: [{ kind: 's3', bucket: 'lake', prefixes: ['x/'], exclude: [] }], retention: {} }], new Map([['g', { set: 's', name: 'n', index: 1, of: 2, range: { after: ['lake', 'y'] as BucketKey } }]]));
    expect(none).toEqual([]);
    expect(isRangeScope(none)).toBe(true);
    expect(scopeHoldsKey(none, 'lake', 'x/a')).toBe(false);
  });

  it('recordedBounds: record blobs weighted by size and new tail keys balance a plan; too few record blobs give null', async () => {
    const at = (k: string): BucketKey => ['lake', k];
    const letters = 'abcdefghijklmnop'.split('');
    const ranges: RecordedRange[] = letters.map((p) => ({ first: at(`${p}/0`), last: at(`${p}/9`), weight: 100 }));
    const none: KeySource = async function* () {};
    const segments = [{ bucket: 'lake', prefix: '', source: {} as OpenedSource }];
    // A boundary falls after the last key of the blob that holds its share.
    expect(await recordedBounds(ranges, segments, 4, none)).toEqual([at('d/9'), at('h/9'), at('l/9')]);
    // Too coarse: fewer than 4 record blobs per shard (a listing plans it then).
    expect(await recordedBounds(ranges.slice(0, 7), segments, 2, none)).toBeNull();
    expect(await recordedBounds(ranges.slice(0, 8), segments, 2, none)).toEqual([at('d/9')]);
    // 64 new keys after the last recorded one (each counts as 25 recorded ones) take half the weight: two shards' worth.
    const tail: KeySource = async function* (_s, _signal, after) {
      expect(after).toBe('p/9');
      for (let i = 0; i < 64; i++) yield { key: `q/${String(i).padStart(2, '0')}`, weight: 1 };
    };
    const bounds = (await recordedBounds(ranges, segments, 4, tail))!;
    expect(bounds.slice(0, 2)).toEqual([at('h/9'), at('p/9')]);
    expect(bounds[2]![1]).toMatch(/^q\/3[0-2]$/); // the middle of the new keys
  });
});

describe('backup --shards on a fresh catalog (the command)', { timeout: 120_000 }, () => {
  it('plans from the run manifests, scopes the catalog to its range, backs it up; other commands outside the range exit 2', async () => {
    const dir = tempDir('shard-range-cli');
    try {
      const env = { LAKEGUARD_CACHE_DIR: join(dir.path, 'cache'), TZ: 'UTC' };
      const policy = join(dir.path, 'lakeguard.yaml');
      writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
      const files: Record<string, string> = {};
      for (const d of ['a', 'b', 'c', 'd']) for (let i = 0; i < 5; i++) files[`${d}/${i}.csv`] = `${d},${i}\n`;
      writeTree(join(dir.path, 'lake'), files);
      const cli = (catalog: string, args: string[]) => runCli(['--policy', policy, '--catalog', join(dir.path, catalog), ...args], env);
      expect((await cli('whole.db', ['init'])).code).toBe(0);
      expect((await cli('whole.db', ['backup', '--quiet'])).code).toBe(0);
      writeTree(join(dir.path, 'lake'), { 'd/0.csv': 'changed\n' });

      const r = await cli('shard.db', ['backup', '--shards', '2', '--shard', '1', '--run-set', 'n', '--json']);
      expect(r.code, r.stderr).toBe(0);
      // One record blob is too coarse to split at: planned from a listing, as a seed is.
      expect(messagesOf(r, 'status').map((m) => m.detail as string)).toContain('shard 1 of 2 (0-based) of run set n: planned it (group local from a listing; not reused: no earlier plan of 2 shards for these sources)');
      expect(summaryOf(r).counters).toMatchObject({ objectsSeen: 10, objectsChanged: 1, objectsUnchanged: 9 });
      const info = summaryOf(await cli('shard.db', ['catalog', 'info', '--json']));
      expect(info.scope).toEqual([{ bucket: 'lake', prefix: '', after: 'b/4.csv' }]);
      expect(info.objects).toBe(10);
      const outside = await cli('shard.db', ['ls', 's3://lake/a/']);
      expect([outside.code, outside.stderr]).toEqual([ExitCode.usage, expect.stringMatching(/^lakeguard: ls: s3:\/\/lake\/a\/ reaches outside the catalog's scope: this catalog holds only s3:\/\/lake\/ \(keys after "b\/4.csv"\) \(scoped\)/)]);
      const whole = await cli('shard.db', ['backup']);
      expect(whole.code).toBe(ExitCode.usage);
    } finally {
      dir.cleanup();
    }
  });
});
