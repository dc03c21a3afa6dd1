// A shard catalog whose plan moved its range is resized in place (docs/scale-out.md "A shard on a
// fresh host syncs only its key range"): it imports only the key slices it gains, reading only the
// record blobs overlapping them, and drops what falls outside the new range. The result must be
// the catalog a fresh sync of the new range makes (as catalog-widen.test.ts checks for an added
// prefix), for a range that grows, shrinks or moves, with delete markers, failures, forgets and
// a prune, boundaries inside a partition; and an interrupted resize leaves the old range whole.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { catalogScope, scopeDifference, type CatalogPrefix } from '../../src/catalog/scope.js';
import type { ShardRange } from '../../src/catalog/types.js';
import { backupGroup } from '../../src/engine/backup.js';
import { forget } from '../../src/engine/forget.js';
import { prune } from '../../src/engine/prune.js';
import { shardScope } from '../../src/engine/shard-scope.js';
import type { RunShard } from '../../src/engine/shards.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { syncCatalog } from '../../src/engine/sync.js';
import type { Group, Policy } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { CountingFs, DenyingLake, catalogDump, recordBlobsOverlapping } from '../helpers/catalog-equivalence.js';
import { initRepo, tempDir, testPolicy } from '../helpers/fixtures.js';

/** catalogDump, the buckets, shard memberships and partition stats a catalog holds. */
function dump(cat: Catalog) {
  const all = (sql: string) => sqlite(cat).prepare(sql).all();
  return {
    ...catalogDump(cat, { indexFile: 'whether' }),
    buckets: all('SELECT name FROM buckets ORDER BY name'),
    shards: all('SELECT r.id AS run, s.set_run, s.shard_index, s.shard_range FROM run_shards s JOIN runs r ON r.seq = s.run ORDER BY 1'),
    stats: all('SELECT r.id AS run, b.name AS bucket, ps.partition, ps.added FROM partition_stats ps JOIN runs r ON r.seq = ps.run JOIN buckets b ON b.id = ps.bucket ORDER BY 1, 2, 3'),
  };
}

const key = (d: number, p: number): string => `t/dt=2026-01-0${d}/part-${String(p).padStart(5, '0')}.json`;
const at = (d: number, p: number): [string, string] => ['lake', key(d, p)];

/** Night 1's range and night 2's, each boundary inside a day's partition. */
const CASES: { name: string; one: ShardRange; two: ShardRange }[] = [
  { name: 'grows at both ends', one: { after: at(3, 5), upTo: at(4, 6) }, two: { after: at(2, 5), upTo: at(5, 6) } },
  { name: 'shrinks at both ends', one: { after: at(2, 5), upTo: at(5, 6) }, two: { after: at(3, 5), upTo: at(4, 6) } },
  { name: 'moves (both ends later)', one: { after: at(2, 5), upTo: at(4, 6) }, two: { after: at(3, 5), upTo: at(5, 6) } },
  { name: 'the last shard loses the start of its range', one: { after: at(3, 5) }, two: { after: at(4, 8) } },
  { name: 'the first shard gains the end of its range', one: { upTo: at(2, 5) }, two: { upTo: at(3, 9) } },
];

describe('a shard catalog whose range moved is resized in place', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let store: CountingFs;
  let repo: Repository;
  let lake: DenyingLake;
  let policy: Policy;
  let a: Catalog;
  const opened: Catalog[] = [];
  const group: Group = { name: 'lake', sources: [{ kind: 'path', path: '/x/lake', prefixes: ['t/'], exclude: [] }], retention: { keepLast: 4 } };
  const source = (): OpenedSource => ({ bucket: 'lake', objectStore: lake, prefixes: ['t/'], isExcluded: () => false });
  const open = (name: string): Catalog => {
    const c = Catalog.open(join(dir.path, `${name}.db`), repo.id);
    opened.push(c);
    return c;
  };
  const shard = (set: string, range: ShardRange): RunShard => ({ set, name: set, index: 1, of: 3, range });
  const scopeOf = (range: ShardRange): CatalogPrefix[] => shardScope([group], new Map([['lake', shard('x', range)]]));
  const backup = (catalog: Catalog, s?: RunShard) => backupGroup({ repo, catalog, policy, group, sources: [source()], ...(s === undefined ? {} : { shard: s }) });
  const addDay = async (d: number): Promise<void> => {
    for (let p = 0; p < 12; p++) await lake.put(key(d, p), Buffer.from(JSON.stringify({ d, p, pad: 'x'.repeat(p * 9) })));
  };

  beforeEach(async () => {
    dir = tempDir('shard-resize');
    store = new CountingFs({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store, { packSize: 64 * 1024 });
    policy = testPolicy(store.location, [group], { concurrency: { list: 2, transfer: 2 } });
    lake = new DenyingLake({ name: 'lake' });
    a = open('a');
    // A day a night on a whole catalog, with rewrites, deletions (delete markers) and a failure near the new day.
    for (let d = 1; d <= 6; d++) {
      await addDay(d);
      if (d === 3) {
        await lake.put(key(2, 4), Buffer.from('{"rewritten":24}'));
        lake.denied.add(key(3, 7));
      }
      if (d === 4) {
        lake.denied.clear();
        await lake.delete(key(3, 2));
        await lake.put(key(3, 6), Buffer.from('{"rewritten":36}'));
      }
      if (d === 5) {
        await lake.delete(key(4, 9));
        await lake.delete(key(4, 1));
      }
      await backup(a);
    }
    // keep_last 4: the first two runs are forgotten (their versions still current move on, rewritten ones are dropped); a prune repacks.
    expect((await forget(repo, a, policy, { dryRun: false })).forgotten.length).toBe(2);
    expect((await prune({ repo, catalog: a, maxUnused: 0 })).damaged).toEqual([]);
  });
  afterEach(() => {
    for (const c of opened.splice(0)) c.close();
    dir.cleanup();
  });

  /** Night 1 of shard file S: its range synced, changes inside it backed up as the shard; then a plain run, a forget and a prune it syncs. */
  const nightOne = async (range: ShardRange): Promise<Catalog> => {
    const s = open('s');
    expect((await syncCatalog({ repo, catalog: s, scopeTo: scopeOf(range) })).damage).toEqual([]);
    await lake.put(key(3, 8), Buffer.from('{"rewritten":38}'));
    await lake.put(key(4, 3), Buffer.from('{"rewritten":43}'));
    await lake.delete(key(5, 1));
    await lake.delete(key(2, 9));
    expect((await backup(s, shard('n1', range))).status).toBe('complete');
    // The rest of the lake on the whole catalog (its plain run records what the shard did not), then retention.
    await syncCatalog({ repo, catalog: a });
    await addDay(7);
    await lake.put(key(2, 1), Buffer.from('{"rewritten":21}'));
    await lake.put(key(4, 7), Buffer.from('{"rewritten":47}'));
    lake.denied.add(key(4, 7));
    await backup(a);
    lake.denied.clear();
    expect((await forget(repo, a, policy, { dryRun: false })).forgotten.length).toBeGreaterThan(0);
    expect((await prune({ repo, catalog: a, maxUnused: 0 })).damaged).toEqual([]);
    expect((await syncCatalog({ repo, catalog: s })).damage).toEqual([]);
    return s;
  };

  for (const c of CASES) {
    it(`a range that ${c.name}: a fresh sync's catalog of the new range, reading only the record blobs of the slices it gains`, async () => {
      const s = await nightOne(c.one);
      const before = scopeOf(c.one);
      const after = scopeOf(c.two);
      const added = scopeDifference(after, before);
      const reads = { ...store.reads };
      const warnings: string[] = [];
      const resized = await syncCatalog({ repo, catalog: s, scopeTo: after, events: (e) => void (e.type === 'warning' && warnings.push(e.message)) });
      expect(resized).toMatchObject({ scope: after, scopeChanged: true, damage: [], missingCount: 0, runs: 0 });
      expect(resized.resized).not.toBeNull();
      expect(warnings).toEqual([]);
      // Only the record blobs overlapping the slices it gains, no index file.
      const expected = added.length === 0 ? 0 : await recordBlobsOverlapping(repo, added);
      expect({ packs: store.reads.packs - reads.packs, index: store.reads.index - reads.index }).toEqual({ packs: expected, index: 0 });
      expect(expected).toBeLessThan(await recordBlobsOverlapping(repo, after));

      const f = open('f');
      expect((await syncCatalog({ repo, catalog: f, scopeTo: after })).damage).toEqual([]);
      const moved = dump(s);
      expect(moved).toEqual(dump(f));
      // Something of each kind is there to compare.
      expect(moved.versions.filter((v) => (v as { dm: number }).dm === 1).length).toBeGreaterThan(0);
      expect(moved.forgotten.length).toBeGreaterThan(2);
      expect(moved.shards.length).toBe(1);
      // The old range's own keys are gone, the new range's are there.
      const keys = new Set(moved.objects.map((o) => (o as { key: string }).key));
      const inTwo = (k: string) => (c.two.after === undefined || k > c.two.after[1]) && (c.two.upTo === undefined || k <= c.two.upTo[1]);
      for (const k of keys) expect(inTwo(k), k).toBe(true);
      // The plain run's failure: there when its key is in the new range, dropped (or never imported) when not.
      expect(moved.failures.length).toBe(inTwo(key(4, 7)) ? 1 : 0);
      expect(keys.size).toBeGreaterThan(10);

      // The next night's shard run and a later plain run reach both the same way.
      expect((await backup(s, shard('n2', c.two))).status).toBe('complete');
      await lake.put(key(4, 4), Buffer.from('{"rewritten":44}'));
      await syncCatalog({ repo, catalog: a });
      await backup(a);
      for (const cat of [s, f]) expect((await syncCatalog({ repo, catalog: cat })).damage).toEqual([]);
      const g = open('g');
      await syncCatalog({ repo, catalog: g, scopeTo: after });
      expect(dump(s)).toEqual(dump(g));
    });
  }

  it('scopes of other prefixes (the group changed its sources): the keys both hold stay, the rest moves, as a fresh sync has it', async () => {
    const s = open('s');
    const before: CatalogPrefix[] = [{ bucket: 'lake', prefix: '', after: key(2, 5), upTo: key(4, 6) }];
    const after: CatalogPrefix[] = [{ bucket: 'lake', prefix: 't/', after: key(3, 5), upTo: key(5, 6) }];
    await syncCatalog({ repo, catalog: s, scopeTo: before });
    const moved = await syncCatalog({ repo, catalog: s, scopeTo: after });
    expect(moved).toMatchObject({ scope: after, damage: [] });
    expect(moved.resized!.objects).toBeGreaterThan(0);
    const f = open('f');
    await syncCatalog({ repo, catalog: f, scopeTo: after });
    expect(dump(s)).toEqual(dump(f));
    expect(dump(s).objects.length).toBeGreaterThan(20);
  });

  it('a resize interrupted half-way leaves the old range whole; the next one completes it', async () => {
    const c = CASES[2]!;
    const s = await nightOne(c.one);
    const before = dump(s);
    const stop = new AbortController();
    store.onPackRead = () => stop.abort();
    await expect(syncCatalog({ repo, catalog: s, scopeTo: scopeOf(c.two), signal: stop.signal })).rejects.toThrow(/interrupted/);
    store.onPackRead = null;
    expect(catalogScope(s)).toEqual(scopeOf(c.one));
    expect(dump(s)).toEqual(before);
    expect((await syncCatalog({ repo, catalog: s, scopeTo: scopeOf(c.two) })).resized).not.toBeNull();
    const f = open('f');
    await syncCatalog({ repo, catalog: f, scopeTo: scopeOf(c.two) });
    expect(dump(s)).toEqual(dump(f));
  });

  it('a shard file holding a run whose manifest was never written (its process died) is imported anew, as before', async () => {
    const c = CASES[2]!;
    const s = await nightOne(c.one);
    // A run of this host that never wrote its manifest.
    s.beginRun({ id: '29990101T000000Z-dead00', group: 'lake', started: Date.now(), host: 'h' });
    const warnings: string[] = [];
    const sync = await syncCatalog({ repo, catalog: s, scopeTo: scopeOf(c.two), events: (e) => void (e.type === 'warning' && warnings.push(e.message)) });
    expect([sync.scopeChanged, sync.resized, sync.full]).toEqual([true, null, true]);
    expect(warnings.some((w) => w.startsWith("this catalog held another shard's key range"))).toBe(true);
    const f = open('f');
    await syncCatalog({ repo, catalog: f, scopeTo: scopeOf(c.two) });
    expect(dump(s)).toEqual(dump(f));
  });
});

describe('the key slices two shard scopes differ by', () => {
  const part = (after?: string, upTo?: string, prefix = 't/'): CatalogPrefix => ({ bucket: 'lake', prefix, ...(after === undefined ? {} : { after }), ...(upTo === undefined ? {} : { upTo }) });
  it('exact for ranges of one prefix: below and above, open ends, disjoint, contained', () => {
    expect(scopeDifference([part('t/c', 't/m')], [part('t/e', 't/k')])).toEqual([part('t/c', 't/e'), part('t/k', 't/m')]);
    expect(scopeDifference([part(undefined, 't/m')], [part('t/e')])).toEqual([part(undefined, 't/e')]);
    expect(scopeDifference([part('t/e')], [part('t/c', 't/k')])).toEqual([part('t/k')]);
    expect(scopeDifference([part('t/a', 't/c')], [part('t/e', 't/k')])).toEqual([part('t/a', 't/c')]);
    expect(scopeDifference([part('t/e', 't/k')], [part('t/c', 't/m')])).toEqual([]);
    expect(scopeDifference([part('t/e', 't/k')], [])).toEqual([part('t/e', 't/k')]);
    // Another bucket or prefix: the whole part (wider than the difference; keys are checked one by one).
    expect(scopeDifference([part('t/c', 't/m')], [part('t/e', 't/k', 't/x')])).toEqual([part('t/c', 't/m')]);
    expect(scopeDifference([{ bucket: 'other', prefix: '' }], [part()])).toEqual([{ bucket: 'other', prefix: '' }]);
  });
});
