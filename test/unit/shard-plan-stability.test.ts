// Plan stability (docs/scale-out.md "The plan: where the key space is split"): a new run set of
// the same group, sources and shard count keeps the boundaries of the newest earlier plan while
// they still balance the work within ±25% of an even share (weighed as the planner weighs it), so
// a shard's persistent range catalog syncs incrementally instead of being emptied and imported
// anew every night; a tail grown beyond that, or another shard count, is planned afresh.
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { catalogScope } from '../../src/catalog/scope.js';
import { describePlanned } from '../../src/commands/backup-shards.js';
import { backupGroup } from '../../src/engine/backup.js';
import { listedKeys, type KeySource } from '../../src/engine/shard-bounds.js';
import { planRunSet, readPlan, REUSE_TOLERANCE } from '../../src/engine/shard-plan.js';
import { shardCatalogScope } from '../../src/engine/shard-scope.js';
import type { ShardIdentity } from '../../src/engine/shards.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { syncCatalog } from '../../src/engine/sync.js';
import type { Group, Policy } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import type { GetOptions } from '../../src/storage/types.js';
import { initRepo, tempDir, testPolicy } from '../helpers/fixtures.js';

/** The repository directory, counting GETs of packs/ (record blobs here) and index/. */
class CountingFs extends FsStore {
  reads = { packs: 0, index: 0 };
  /** Keys of the runsets/ GETs. */
  plansRead: string[] = [];
  override async get(key: string, opts?: GetOptions) {
    const dir = key.split('/')[0]!;
    if (dir === 'packs' || dir === 'index') this.reads[dir]++;
    if (dir === 'runsets') this.plansRead.push(key);
    return super.get(key, opts);
  }
}

describe('a new run set keeps the last plan while it still balances', { timeout: 60_000 }, () => {
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
  const keys: KeySource = (segment, signal, after) => listedKeys({ ...segment, source: source() }, signal, after);
  const day = (d: number): string => `dt=${String(d).padStart(2, '0')}/`;
  const addDay = async (d: number): Promise<void> => {
    for (let i = 0; i < 20; i++) await lake.put(`${day(d)}part-${String(i).padStart(3, '0')}.json`, Buffer.from(JSON.stringify({ d, i, pad: 'x'.repeat(i * 5) })));
  };
  /** One shard as `backup --shards` runs it on a host with a range catalog: plan (or read it), scope and sync, back up. */
  const shardRun = async (catalog: Catalog, index: number, runSet: string, of = 2) => {
    const shard: ShardIdentity = { index, of, runSet };
    const scoped = await shardCatalogScope({ repo, catalog, policy, groups: [group], shard, dryRun: false, concurrency: 2, keys });
    const warnings: string[] = [];
    const before = { ...store.reads };
    const sync = await syncCatalog({ repo, catalog, scopeTo: scoped.scopeTo!, events: (e) => void (e.type === 'warning' && warnings.push(e.message)) });
    const reads = { packs: store.reads.packs - before.packs, index: store.reads.index - before.index };
    const summary = await backupGroup({ repo, catalog, policy, group, sources: [source()], shard: scoped.planned!.shards.get('lake')! });
    expect(summary.status).toBe('complete');
    return { planned: scoped.planned!, sync, warnings, reads, summary };
  };
  /** Night 1: run set n1, shard 1 first (it plans from the record ranges), each shard on its own persistent file. */
  const night1 = async () => {
    const one = await shardRun(host('shard-1'), 1, 'n1');
    expect(one.planned.created).toBe(true);
    expect(one.planned.reuse.get('lake')).toEqual({ why: 'no earlier plan of 2 shards for these sources' });
    expect(one.reads.packs).toBe(4); // a range import: days 5 to 8 of 8 record blobs
    await shardRun(host('shard-0'), 0, 'n1');
    return (await readPlan(repo, 'n1'))!;
  };

  beforeEach(async () => {
    dir = tempDir('shard-plan-stability');
    store = new CountingFs({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store, { packSize: 64 * 1024 });
    policy = testPolicy(store.location, [group], { concurrency: { list: 2, transfer: 2 } });
    lake = new MemStore({ name: 'lake' });
    // A history on a whole-catalog host: eight runs, each adding a day (a record blob per day).
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

  it('two nights with small changes: the second plan reuses the boundaries, and the persistent shard file syncs incrementally', async () => {
    const n1 = await night1();
    // Night 2: a few changes, and a small tail (the next day's first file). It weighs 25 recorded
    // versions: planned afresh, the boundary would move a record blob on (after day 5, not day 4),
    // while under n1's boundary shard 1 takes about 58% of the work, inside the tolerance.
    await lake.put(`${day(2)}part-004.json`, Buffer.from('{"changed":2}'));
    await lake.put(`${day(6)}part-004.json`, Buffer.from('{"changed":6}'));
    await lake.put(`${day(9)}part-000.json`, Buffer.from('{"new":0}'));

    const b = catalogs.find((c) => c.path.endsWith('shard-1.db'))!;
    const scopeBefore = catalogScope(b);
    const two = await shardRun(b, 1, 'n2');
    const n2 = (await readPlan(repo, 'n2'))!;
    expect(n2.groups.lake!.bounds).toEqual(n1.groups.lake!.bounds);
    expect(n2.groups.lake!.boundsFrom).toEqual({ runSet: 'n1', run: n1.groups.lake!.run });
    expect(n2.groups.lake!.run).not.toBe(n1.groups.lake!.run); // a run set of its own all the same
    const reuse = two.planned.reuse.get('lake')!;
    expect(reuse).toMatchObject({ from: { runSet: 'n1', run: n1.groups.lake!.run } });
    expect((reuse as { worst: number }).worst).toBeGreaterThan(0.1); // shard 1 busier, as the tail lies in its range
    expect((reuse as { worst: number }).worst).toBeLessThanOrEqual(REUSE_TOLERANCE);
    // The same range: no re-import, no warning; only new runs' record blobs in range would be read (none here), no index file.
    expect(two.sync.scopeChanged).toBe(false);
    expect(two.warnings.filter((w) => w.includes('imported anew'))).toEqual([]);
    expect(catalogScope(b)).toEqual(scopeBefore);
    expect(two.reads).toEqual({ packs: 0, index: 0 });
    expect([two.summary.counters.objectsChanged, two.summary.counters.objectsNew]).toEqual([1, 1]);
    // The phase message says where the boundaries came from.
    expect(describePlanned('lake', two.planned.planned.get('lake')!, reuse)).toMatch(
      new RegExp(`^group lake: the boundaries of run set n1 \\(${n1.groups.lake!.run}\\) reused, every shard within ±25% of an even share by the run manifests' record ranges \\(the farthest [+-]\\d+\\.\\d%\\)$`),
    );
    // Shard 0 reads the plan, keeps its file too.
    const zero = await shardRun(catalogs.find((c) => c.path.endsWith('shard-0.db'))!, 0, 'n2');
    expect([zero.planned.created, zero.sync.scopeChanged, zero.reads.packs]).toEqual([false, false, 0]);
    expect(zero.summary.counters.objectsChanged).toBe(1);

    // A whole catalog weighs by its key counts and keeps the boundaries too (run set n2 holds n1's).
    const a = catalogs.find((c) => c.path.endsWith('a.db'))!;
    await syncCatalog({ repo, catalog: a });
    const whole = await planRunSet({ repo, catalog: a, policy, groups: [group], shard: { index: 0, of: 2, runSet: 'n3' }, dryRun: true, keys });
    expect([whole.planned.get('lake'), whole.plan.groups.lake!.bounds, whole.plan.groups.lake!.boundsFrom?.runSet]).toEqual(['catalog', n1.groups.lake!.bounds, 'n2']);
  });

  it('a tail beyond the tolerance is planned afresh, and says why', async () => {
    const n1 = await night1();
    // Two new days: 40 new keys, each weighing 25 catalogued ones, all after shard 1's boundary.
    await addDay(9);
    await addDay(10);
    const two = await shardRun(catalogs.find((c) => c.path.endsWith('shard-1.db'))!, 1, 'n2');
    const n2 = (await readPlan(repo, 'n2'))!;
    expect(n2.groups.lake!.boundsFrom).toBeUndefined();
    expect(n2.groups.lake!.bounds).not.toEqual(n1.groups.lake!.bounds);
    expect(n2.groups.lake!.bounds[0]![1] > day(9)).toBe(true); // the new days are split
    const reuse = two.planned.reuse.get('lake')!;
    expect(reuse).toEqual({ why: expect.stringMatching(/^run set n1's boundaries would give shard 1 \d+\.\d% of the work, not 50\.0% ± 25%$/) });
    const share = Number(/shard 1 (\d+\.\d)%/.exec((reuse as { why: string }).why)![1]);
    expect(share).toBeGreaterThan(62.5);
    // Its range moved: the file is resized in place (docs/scale-out.md), not imported anew.
    expect([two.sync.scopeChanged, two.sync.full, two.sync.resized === null]).toEqual([true, false, false]);
    expect(two.warnings).toEqual([]);
  });

  it('another shard count is planned afresh', async () => {
    const n1 = await night1();
    const three = await planRunSet({ repo, catalog: host('fresh'), policy, groups: [group], shard: { index: 0, of: 3, runSet: 'n2' }, dryRun: false, keys, recorded: async () => ({ ranges: new Map(), attempts: [] }) });
    expect(three.reuse.get('lake')).toEqual({ why: 'no earlier plan of 3 shards for these sources' });
    expect(three.plan.groups.lake!.bounds).toHaveLength(2);
    expect(three.plan.groups.lake!.boundsFrom).toBeUndefined();
    // And the 2-shard plan after it still finds n1 (the newest plan of 2 shards), not the 3-shard one.
    const two = await planRunSet({ repo, catalog: host('fresh2'), policy, groups: [group], shard: { index: 0, of: 2, runSet: 'n3' }, dryRun: true, keys, recorded: async () => ({ ranges: new Map(), attempts: [] }) });
    expect(two.plan.groups.lake!.boundsFrom).toEqual({ runSet: 'n1', run: n1.groups.lake!.run });
  });

  it('a new plan reads the newest earlier plans only, not every plan kept (one GET here, with 20 older ones)', async () => {
    const n1 = await night1();
    // Twenty older nights' plans of the same shards and sources, written two days and more before n1.
    for (let i = 0; i < 20; i++) {
      const name = `old-${String(i).padStart(2, '0')}`;
      const created = new Date(Date.parse(n1.created) - (2 + i) * 86_400_000);
      await repo.writeDocument('runsets', name, { ...n1, name, created: created.toISOString() });
      utimesSync(join(dir.path, 'repo', 'runsets', name), created, created);
    }
    store.plansRead = [];
    const two = await planRunSet({ repo, catalog: host('fresh'), policy, groups: [group], shard: { index: 0, of: 2, runSet: 'n2' }, dryRun: true, keys, recorded: async () => ({ ranges: new Map(), attempts: [] }) });
    expect(two.plan.groups.lake!.boundsFrom).toEqual({ runSet: 'n1', run: n1.groups.lake!.run });
    expect(store.plansRead.sort()).toEqual(['runsets/n1', 'runsets/n2']); // n2: is there a plan already?
  });
});

