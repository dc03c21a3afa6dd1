// A run set's plan: balanced boundaries from the catalog or from a bounded sample of a listing,
// every key in exactly one shard, and the plan document written create-only (the loser of the
// race uses the winner's plan).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import type { VersionRecord } from '../../src/catalog/types.js';
import { catalogBounds, groupBounds, groupSegments, KeySample, sampledBounds, type KeySource } from '../../src/engine/shard-bounds.js';
import { planRunSet, readPlan, runSetPlan } from '../../src/engine/shard-plan.js';
import { compareBucketKeys, inShardRange, shardRange, type BucketKey } from '../../src/engine/shards.js';
import { describePlanned } from '../../src/commands/backup-shards.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { IntegrityError, UsageError } from '../../src/errors.js';
import type { Repository } from '../../src/repository/repository.js';
import { MemStore } from '../../src/storage/mem-store.js';
import type { Group } from '../../src/policy/types.js';
import { initRepo, tempDir, testPolicy } from '../helpers/fixtures.js';
import { writeShardAttempt } from '../helpers/shards.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { readRecordedRuns } from '../../src/engine/shard-scope.js';

/** A skewed lake: one partition of `big` keys, then `tiny` partitions of 3 keys each, in two buckets. */
function skewedKeys(big: number, tiny: number): BucketKey[] {
  const keys: BucketKey[] = [];
  for (let i = 0; i < tiny; i++) for (let j = 0; j < 3; j++) keys.push(['lake-a', `events/dt=2026-${String(i).padStart(4, '0')}/part-${j}.parquet`]);
  for (let i = 0; i < big; i++) keys.push(['lake-a', `events/dt=9999/part-${String(i).padStart(7, '0')}.parquet`]);
  for (let i = 0; i < tiny; i++) keys.push(['lake-b', `t/${String(i).padStart(5, '0')}`]);
  return keys.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
}

function source(bucket: string, prefixes: string[] = ['']): OpenedSource {
  return { bucket, objectStore: new MemStore(), prefixes, isExcluded: () => false };
}

/** Keys per shard; fails unless every key is in exactly one shard's range. */
function shardSizes(keys: readonly BucketKey[], bounds: readonly BucketKey[]): number[] {
  const n = bounds.length + 1;
  const ranges = [...Array(n).keys()].map((i) => shardRange(bounds, i));
  const sizes = Array.from({ length: n }, () => 0);
  const notOnce: string[] = [];
  for (const key of keys) {
    const owners = ranges.flatMap((r, i) => (inShardRange(r, key) ? [i] : []));
    if (owners.length === 1) sizes[owners[0]!]!++;
    else notOnce.push(`${key.join('/')} in ${owners.length} shards`);
  }
  expect(notOnce).toEqual([]);
  return sizes;
}

describe('shard boundaries', () => {
  let dir: ReturnType<typeof tempDir>;
  let catalog: Catalog;

  beforeEach(() => {
    dir = tempDir('shard-plan');
    catalog = Catalog.open(join(dir.path, 'catalog.db'), randomBytes(16).toString('hex'));
  });
  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  const catalogue = (keys: readonly BucketKey[]): void => {
    const seq = catalog.beginRun({ id: '20261206T000000Z-000001', group: 'g', started: 0, host: 'h' });
    const records: VersionRecord[] = keys.map(([bucket, key]) => ({ bucket, key, versionId: null, deleteMarker: false, size: 0, etag: 'e', lastModified: 1, validFrom: 1, blobs: [] }));
    catalog.transaction(() => catalog.insertVersions(seq, records));
  };

  it('from the catalog: one huge partition among many tiny ones is split inside, within one key', () => {
    const keys = skewedKeys(6000, 400);
    catalogue(keys);
    const sources = [source('lake-b', ['t/']), source('lake-a', ['events/'])];
    const bounds = catalogBounds(catalog, groupSegments(sources), 7)!;
    expect(bounds).toHaveLength(6);
    const sizes = shardSizes(keys, bounds);
    const even = keys.length / 7;
    for (const size of sizes) expect(Math.abs(size - even)).toBeLessThanOrEqual(1);
    // The huge partition holds most boundaries: it is split inside.
    expect(bounds.filter(([, key]) => key.startsWith('events/dt=9999/')).length).toBeGreaterThanOrEqual(4);
  });

  it('from the catalog: keys outside the group`s prefixes are not counted', () => {
    catalogue([...skewedKeys(100, 10), ['lake-a', 'other/x'], ['lake-a', 'zzz']]);
    const bounds = catalogBounds(catalog, groupSegments([source('lake-a', ['events/'])]), 3)!;
    for (const [bucket, key] of bounds) expect(bucket === 'lake-a' && key.startsWith('events/')).toBe(true);
  });

  it('a group the catalog does not know is planned from a bounded sample of one listing', async () => {
    const keys = skewedKeys(40_000, 1000);
    const lister: KeySource = async function* (segment) {
      for (const [bucket, key] of keys) if (bucket === segment.bucket && key.startsWith(segment.prefix)) yield { key, weight: 1 };
    };
    const sources = [source('lake-a', ['events/']), source('lake-b', ['t/'])];
    expect(catalogBounds(catalog, groupSegments(sources), 8)).toBeNull();
    const planned = await groupBounds(catalog, sources, 8, lister);
    expect(planned.from).toBe('listing');
    const sizes = shardSizes(keys, planned.bounds);
    // Tolerance: the sample keeps >= 4096 points, so a boundary is at most keys/4096 keys early.
    const even = keys.length / 8;
    for (const size of sizes) expect(Math.abs(size - even) / even).toBeLessThan(0.02);
  });

  it('an incremental: a new partition after the last catalogued key is spread over the shards, not left to the last', async () => {
    // A time-partitioned table: five catalogued days of 600 keys, then a sixth day of 300 new keys.
    const day = (d: number, n: number): BucketKey[] => Array.from({ length: n }, (_, i) => ['lake-a', `events/dt=2026-12-0${d}/part-${String(i).padStart(4, '0')}.parquet`]);
    const catalogued = [1, 2, 3, 4, 5].flatMap((d) => day(d, 600));
    const fresh = day(6, 300);
    catalogue(catalogued);
    const lake = source('lake-a', ['events/']);
    for (const [, key] of [...catalogued, ...fresh]) await lake.objectStore.put(key, Buffer.from('x'));
    const listsBefore = lake.objectStore.stats.list;
    const planned = await groupBounds(catalog, [lake], 3);
    expect(planned.from).toBe('catalog');
    // The tail was listed after the last catalogued key: one LIST request for 300 keys.
    expect(lake.objectStore.stats.list - listsBefore).toBe(1);
    const newPerShard = shardSizes(fresh, planned.bounds);
    shardSizes([...catalogued, ...fresh], planned.bounds); // still every key in exactly one shard
    // By keys alone all 300 new keys would go to the last shard; weighted by the work of copying
    // them, no shard gets more than half of them, and every shard gets its part of the new day.
    expect(Math.max(...newPerShard)).toBeLessThanOrEqual(150);
    expect(newPerShard.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(catalogBounds(catalog, groupSegments([lake]), 3)!.every(([, key]) => key < 'events/dt=2026-12-06/')).toBe(true);
  });

  it('fewer keys than shards: the first shards are empty, every key still has one shard', async () => {
    const keys: BucketKey[] = [['b', 'x'], ['b', 'y']];
    const lister: KeySource = async function* () {
      yield* [
        { key: 'x', weight: 1 },
        { key: 'y', weight: 1 },
      ];
    };
    const bounds = await sampledBounds(groupSegments([source('b')]), 4, lister);
    expect(shardSizes(keys, bounds).reduce((a, b) => a + b, 0)).toBe(2);
    expect(shardSizes([['b', 'a'], ['b', 'zzz'], ['a', 'q'], ['c', '']], bounds).reduce((a, b) => a + b, 0)).toBe(4);
  });

  it('weighted keys (an inventory report`s row groups) balance by the keys they stand for', async () => {
    // 40 row groups of 1,000 keys in big/, then 40,000 keys sampled one by one in small/.
    const report: KeySource = async function* (segment) {
      if (segment.prefix === 'big/') for (let i = 0; i < 40; i++) yield { key: `big/${String(i * 1000).padStart(6, '0')}`, weight: 1000 };
      else for (let i = 0; i < 40_000; i++) yield { key: `small/${String(i).padStart(6, '0')}`, weight: 1 };
    };
    const bounds = await sampledBounds(groupSegments([source('b', ['big/', 'small/'])]), 4, report);
    expect(bounds.slice(0, 2)).toEqual([
      ['b', 'big/019000'],
      ['b', 'big/039000'],
    ]);
    expect(bounds[2]![1]).toMatch(/^small\/0(19|20)\d{3}$/);
  });

  it('a sample holds at most its capacity, evenly spaced', () => {
    const sample = new KeySample(16);
    for (let i = 0; i < 1000; i++) sample.add(['b', String(i).padStart(4, '0')]);
    const bounds = sample.bounds(4, ['b', '']);
    expect(sample.seen).toBe(1000);
    const positions = bounds.map(([, k]) => Number(k));
    // Each boundary at most one sample step (64 keys) below the exact quarter.
    positions.forEach((p, i) => {
      const exact = ((i + 1) * 1000) / 4 - 1;
      expect(p).toBeLessThanOrEqual(exact);
      expect(exact - p).toBeLessThan(64);
    });
  });
});

describe('run-set plan document', () => {
  let repo: Repository;
  beforeEach(async () => {
    repo = await initRepo(new MemStore(), { password: null });
  });
  const shard = (index: number, of = 3) => ({ index, of, runSet: 'nightly-1' });
  const bounds = async (): Promise<BucketKey[]> => [
    ['b', 'k1'],
    ['b', 'k2'],
  ];

  it('is written create-only by the first shard and read by the others', async () => {
    const first = await runSetPlan(repo, shard(2), ['g'], bounds, { write: true });
    expect(first.created).toBe(true);
    expect(first.plan).toMatchObject({ version: 1, name: 'nightly-1', shards: 3, groups: { g: { bounds: [['b', 'k1'], ['b', 'k2']] } } });
    expect(first.plan.groups.g!.run).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    let asked = 0;
    const second = await runSetPlan(repo, shard(0), ['g'], async () => (asked++, [['b', 'other'], ['b', 'z']]), { write: true });
    expect(second).toEqual({ plan: first.plan, created: false, reuse: new Map() });
    expect(asked).toBe(0);
  });

  it('a new day past the last boundary: the plan is made anew, but keeps each earlier boundary that leaves every shard within ±25%', async () => {
    // A time-partitioned group as a plan weighs it: each day's 100 keys, the newest day's (listed after the catalog) at 25 each.
    const key = (d: number, i: number): BucketKey => ['b', `t/dt=${String(d).padStart(2, '0')}/part-${String(i).padStart(3, '0')}`];
    const weighing = (days: number) => {
      const items: [BucketKey, number][] = [];
      for (let d = 1; d <= days; d++) for (let i = 0; i < 100; i++) items.push([key(d, i), d === days ? 25 : 1]);
      const total = items.reduce((a, [, w]) => a + w, 0);
      const shares = (bounds: readonly BucketKey[]) => {
        const parts = Array.from({ length: bounds.length + 1 }, () => 0);
        for (const [k, w] of items) parts[bounds.filter((b) => compareBucketKeys(k, b) > 0).length]! += w;
        return parts.map((x) => x / total);
      };
      const bounds = (): BucketKey[] => [1, 2, 3].map((i) => {
        let seen = 0;
        return items.find(([, w]) => (seen += w) >= (i * total) / 4)![0];
      });
      return { bounds, shares };
    };
    const four = (runSet: string) => ({ index: 0, of: 4, runSet });
    const one = await runSetPlan(repo, four('n1'), ['g'], async () => weighing(9), { write: true });
    const two = await runSetPlan(repo, four('n2'), ['g'], async () => weighing(10), { write: true });
    const [old, fresh, made] = [one.plan.groups.g!.bounds, weighing(10).bounds(), two.plan.groups.g!.bounds];
    // The boundary in the old days stays; those the new day's keys pull along move to where a new plan puts them.
    expect(made).toEqual([old[0], fresh[1], fresh[2]]);
    expect(fresh[0]).not.toEqual(old[0]);
    expect(two.plan.groups.g!.boundsFrom).toBeUndefined();
    expect(two.reuse.get('g')).toEqual({ why: expect.stringMatching(/^run set n1's boundaries would give shard 3 \d+\.\d% of the work/), kept: 1 });
    for (const share of weighing(10).shares(made)) expect(Math.abs(share * 4 - 1)).toBeLessThanOrEqual(0.25);
    expect(describePlanned('g', 'records', two.reuse.get('g'))).toMatch(/; 1 of its boundaries kept, every shard still within ±25%$/);
    // Without an earlier plan of 4 shards: the new boundaries as they are.
    const other = await runSetPlan(repo, { index: 0, of: 3, runSet: 'n3' }, ['g'], async () => ({ bounds: () => fresh.slice(0, 2), shares: () => [1 / 3, 1 / 3, 1 / 3] }), { write: false });
    expect(other.plan.groups.g!.bounds).toEqual(fresh.slice(0, 2));
  });

  it('the loser of a race to write it takes the winner`s plan', async () => {
    // Both find no plan and compute their own; only one write can land.
    const [a, b] = await Promise.all([
      runSetPlan(repo, shard(0), ['g'], async () => [['b', 'A1'], ['b', 'A2']], { write: true }),
      runSetPlan(repo, shard(1), ['g'], async () => [['b', 'B1'], ['b', 'B2']], { write: true }),
    ]);
    expect(a.plan).toEqual(b.plan);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(await readPlan(repo, 'nightly-1')).toEqual(a.plan);
  });

  it('a dry run plans without writing', async () => {
    await runSetPlan(repo, shard(0), ['g'], bounds, { write: false });
    expect(await readPlan(repo, 'nightly-1')).toBeNull();
  });

  it('refuses another shard count, or a group it was not planned for', async () => {
    await runSetPlan(repo, shard(0), ['g'], bounds, { write: true });
    const count = await runSetPlan(repo, shard(0, 4), ['g'], bounds, { write: true }).catch((e: unknown) => e);
    expect(count).toBeInstanceOf(UsageError);
    expect((count as UsageError).message).toBe('run set nightly-1 was planned for 3 shards, not 4');
    const group = await runSetPlan(repo, shard(0), ['g', 'h'], bounds, { write: true }).catch((e: unknown) => e);
    expect(group).toBeInstanceOf(UsageError);
    expect((group as UsageError).message).toBe('run set nightly-1 was planned for group g, not for group h');
  });

  it('refuses a shard whose policy selects other keys of a group than the plan was made for', async () => {
    const dir = tempDir('shard-plan-sources');
    const catalog = Catalog.open(join(dir.path, 'catalog.db'), repo.id);
    try {
      const group = (prefixes: string[], exclude: string[] = []): Group => ({ name: 'g', sources: [{ kind: 'path', path: '/x/lake', prefixes, exclude }] });
      const start = (g: Group, runSet = 'nightly-1') =>
        planRunSet({ repo, catalog, policy: testPolicy('mem://', [g]), groups: [g], shard: { index: 0, of: 1, runSet }, dryRun: false }).then(
          (r) => r.plan,
          (e: unknown) => e as Error,
        );
      const planned = await start(group(['a/', 'b/']));
      expect(planned).toMatchObject({ groups: { g: { sources: [{ bucket: 'lake', prefixes: ['a/', 'b/'], exclude: [] }] } } });
      // The same key set written another way is the same plan.
      expect(await start(group(['b/', 'a/', 'a/x/', 'b/']))).toEqual(planned);
      // A prefix removed, or an exclude added: another key set than the siblings back up.
      const removed = await start(group(['a/']));
      expect(removed).toBeInstanceOf(UsageError);
      expect((removed as UsageError).message).toBe('run set nightly-1 was planned for other sources of group g: source lake has prefixes ["a/","b/"] exclude [] in the plan, prefixes ["a/"] exclude [] in this policy');
      expect((removed as UsageError).hint).toMatch(/the same sources, prefixes and exclude\), or name a new run set/);
      expect(await start(group(['a/', 'b/'], ['*.tmp']))).toBeInstanceOf(UsageError);
      const moved: Group = { name: 'g', sources: [{ kind: 'path', path: '/y/other', prefixes: ['a/', 'b/'], exclude: [] }] };
      expect(((await start(moved)) as Error).message).toMatch(/: source lake has prefixes \["a\/","b\/"\] exclude \[\] in the plan, no entry in this policy$/);
      // A plan written before plans recorded their sources is used as it is.
      await repo.writeDocument('runsets', 'older', { version: 1, name: 'older', shards: 1, created: '', host: 'h', groups: { g: { run: '20261206T000000Z-abcdef', bounds: [] } } });
      expect(await start(group(['z/']), 'older')).toMatchObject({ name: 'older' });
    } finally {
      catalog.close();
      dir.cleanup();
    }
  });

  it('a plan deleted while its run set runs is not made anew: the remaining shards would start a second run set', async () => {
    const dir = tempDir('shard-plan-deleted');
    const catalog = Catalog.open(join(dir.path, 'catalog.db'), repo.id);
    try {
      const g: Group = { name: 'g', sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }] };
      // On a fresh host (a new pod) the catalog is not synced when the plan is read: the run manifests say it.
      const start = (index: number, fresh?: Catalog) =>
        planRunSet({
          repo,
          catalog: fresh ?? catalog,
          policy: testPolicy('mem://', [g]),
          groups: [g],
          shard: { index, of: 2, runSet: 'nightly-1' },
          dryRun: false,
          keys: async function* () {},
          ...(fresh === undefined ? {} : { recorded: () => readRecordedRuns(repo, 2) }),
        }).then(
          (r) => r.shards.get('g')!,
          (e: unknown) => e as Error,
        );
      const first = await start(0);
      expect(first).toMatchObject({ name: 'nightly-1', index: 0, of: 2 });
      const set = (first as { set: string }).set;
      await writeShardAttempt(repo, { group: 'g', set, name: 'nightly-1', index: 0, of: 2, started: Date.now(), objects: [{ bucket: 'lake', key: 'a', body: 'x' }] });
      await syncCatalog({ repo, catalog });
      await repo.deleteObject('runsets/nightly-1');
      const second = await start(1);
      expect(second).toBeInstanceOf(IntegrityError);
      expect((second as IntegrityError).message).toBe(`${repo.location}runsets/nightly-1 is missing, but run set nightly-1 (${set}) is still running: shards 1 of it have not finished`);
      expect((second as IntegrityError).hint).toMatch(/^put the plan back \(an earlier object version, or a copy\) and start the shard again, or name a new run set \(--run-set\)/);
      const pod = Catalog.open(':memory:', repo.id);
      const fromManifests = await start(1, pod).finally(() => pod.close());
      expect(fromManifests).toBeInstanceOf(IntegrityError);
      expect((fromManifests as IntegrityError).message).toBe((second as IntegrityError).message);
      expect(await readPlan(repo, 'nightly-1')).toBeNull();
      // Once every shard has finished, a re-run after the plan was deleted makes a new plan (as documented).
      await writeShardAttempt(repo, { group: 'g', set, name: 'nightly-1', index: 1, of: 2, started: Date.now(), objects: [{ bucket: 'lake', key: 'z', body: 'y' }] });
      await syncCatalog({ repo, catalog });
      expect(await start(1)).toMatchObject({ name: 'nightly-1', index: 1 });
    } finally {
      catalog.close();
      dir.cleanup();
    }
  });

  it('a plan stored under another name, or malformed, is refused', async () => {
    await repo.writeDocument('runsets', 'other', { version: 1, name: 'nightly-1', shards: 1, created: '', host: 'h', groups: {} });
    await expect(readPlan(repo, 'other')).rejects.toThrow(IntegrityError);
    await repo.writeDocument('runsets', 'broken', { version: 1, name: 'broken', shards: 3, created: '', host: 'h', groups: { g: { run: '20261206T000000Z-abcdef', bounds: [['b', 'k']] } } });
    await expect(readPlan(repo, 'broken')).rejects.toThrow(/2 boundaries expected/);
  });
});
