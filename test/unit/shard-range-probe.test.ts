// Probes of shard backups on range catalogs (docs/scale-out.md "A shard on a fresh host syncs only
// its key range"): the same changes backed up by 2 and 3 shards on fresh range catalogs, and by one
// unsharded process on a whole catalog, must leave the same versions in the repository.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { runSetsOf } from '../../src/catalog/run-sets.js';
import { backupGroup } from '../../src/engine/backup.js';
import { forget } from '../../src/engine/forget.js';
import { prune } from '../../src/engine/prune.js';
import { restore } from '../../src/engine/restore.js';
import { verify } from '../../src/engine/verify.js';
import { newRunId } from '../../src/engine/run-id.js';
import { shardScope } from '../../src/engine/shard-scope.js';
import { shardRange, type BucketKey, type RunShard } from '../../src/engine/shards.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { syncCatalog } from '../../src/engine/sync.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { Repository } from '../../src/repository/repository.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import type { PutOptions, PutResult } from '../../src/storage/types.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { initRepo, tempDir, testPolicy } from '../helpers/fixtures.js';

const group: Group = {
  name: 'g',
  sources: [
    { kind: 's3', bucket: 'lake-a', prefixes: [''], exclude: [] },
    { kind: 's3', bucket: 'lake-v', prefixes: [''], exclude: [] },
  ],
  retention: { keepLast: 10 },
};

/** The repository as a process killed after its first index file sees it: later index files and the manifest never land. */
class KilledAfterFirstCheckpoint extends StoreDecorator {
  private indexes = 0;
  override put(key: string, body: Parameters<StoreDecorator['put']>[1], opts?: PutOptions): Promise<PutResult> {
    if (key.startsWith('runs/') || (key.startsWith('index/') && ++this.indexes > 1)) return Promise.reject(new Error('killed'));
    return this.inner.put(key, body, opts);
  }
}

/** Every version each catalog holds, in (bucket, key, version) order, without catalog-local numbers. */
function versionsOf(c: Catalog): string[] {
  return (
    sqlite(c)
      .prepare(
        `SELECT b.name AS bucket, o.key AS key, v.version_id AS vid, v.delete_marker AS dm, v.size AS size, hex(v.etag) AS etag
         FROM versions v JOIN objects o ON o.id = v.object JOIN buckets b ON b.id = o.bucket ORDER BY b.name, o.key, v.valid_from, v.id`,
      )
      .all() as { bucket: string; key: string; vid: string | null; dm: number; size: number; etag: string | null }[]
  ).map((r) => JSON.stringify([r.bucket, r.key, r.vid, r.dm, r.size, r.etag]));
}

describe('shards on range catalogs back up what one process would', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  const catalogs: Catalog[] = [];
  let a: MemStore;
  let v: MemStore;
  const sources = (): OpenedSource[] => [
    { bucket: 'lake-a', objectStore: a, prefixes: [''], isExcluded: () => false, versioned: false },
    { bucket: 'lake-v', objectStore: v, prefixes: [''], isExcluded: () => false, versioned: true },
  ];
  const open = (name: string, repo: Repository): Catalog => {
    const c = Catalog.open(join(dir.path, `${name}.db`), repo.id);
    catalogs.push(c);
    return c;
  };
  let sharded: { repo: Repository; policy: Policy };
  let plain: { repo: Repository; policy: Policy; catalog: Catalog };
  let hosts = 0;
  let storeS: FsStore;
  let shardHosts: Catalog[] = [];
  let shardSuspect: boolean[] = [];
  let plainSuspect = false;

  /** A run set of bounds.length + 1 shards, each on a fresh host's range catalog; returns the counters summed. */
  const shardedRun = async (bounds: BucketKey[], name: string, fullVersions = false) => {
    const set = newRunId(new Date());
    const sum = { objectsNew: 0, objectsChanged: 0, objectsDeleted: 0 };
    shardHosts = [];
    shardSuspect = [];
    for (let index = 0; index <= bounds.length; index++) {
      const shard: RunShard = { set, name, index, of: bounds.length + 1, range: shardRange(bounds, index) };
      const c = open(`host-${hosts++}`, sharded.repo);
      shardHosts.push(c);
      await syncCatalog({ repo: sharded.repo, catalog: c, scopeTo: shardScope([group], new Map([[group.name, shard]])) });
      const s = await backupGroup({ repo: sharded.repo, catalog: c, policy: sharded.policy, group, sources: sources(), shard, fullVersions });
      expect(s.status).toBe('complete');
      shardSuspect.push(s.anomalies?.suspect ?? false);
      for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += s.counters[k];
    }
    return sum;
  };
  const plainRun = async (fullVersions = false) => {
    const s = await backupGroup({ repo: plain.repo, catalog: plain.catalog, policy: plain.policy, group, sources: sources(), fullVersions });
    plainSuspect = s.anomalies?.suspect ?? false;
    return { objectsNew: s.counters.objectsNew, objectsChanged: s.counters.objectsChanged, objectsDeleted: s.counters.objectsDeleted };
  };
  const both = async (bounds: BucketKey[], name: string, fullVersions = false) => {
    const s = await shardedRun(bounds, name, fullVersions);
    const p = await plainRun(fullVersions);
    expect(s).toEqual(p);
    const whole = open(`whole-${hosts++}`, sharded.repo);
    await syncCatalog({ repo: sharded.repo, catalog: whole });
    expect(runSetsOf(whole).find((r) => r.name === name)?.status).toBe('complete');
    expect(versionsOf(whole)).toEqual(versionsOf(plain.catalog));
    return s;
  };

  beforeEach(async () => {
    dir = tempDir('shard-range-probe');
    storeS = new FsStore({ root: join(dir.path, 'repo-s'), fsync: false });
    const repoS = await initRepo(storeS, { password: null, packSize: 4096 });
    const repoP = await initRepo(new FsStore({ root: join(dir.path, 'repo-p'), fsync: false }), { password: null });
    sharded = { repo: repoS, policy: testPolicy(repoS.location, [group], { concurrency: { list: 2, transfer: 2 } }) };
    plain = { repo: repoP, policy: testPolicy(repoP.location, [group], { concurrency: { list: 2, transfer: 2 } }), catalog: undefined as unknown as Catalog };
    plain.catalog = open('plain', repoP);
    a = new MemStore({ name: 'lake-a' });
    v = new MemStore({ name: 'lake-v', versioning: true });
    for (let i = 0; i < 10; i++) await a.put(`p/k0${i}`, Buffer.from(`a${i}`));
    // Sorting traps: U+FFFD sorts before an astral character in UTF-8 (S3) order, after it in UTF-16 (JS) order.
    for (const k of ['p/é', 'p/\uFFFD', 'p/\u{1F600}', 'p/\u{1F600}x']) await a.put(k, Buffer.from(k));
    for (let i = 0; i < 7; i++) for (let n = 0; n < 2; n++) await v.put(`q/k0${i}`, Buffer.from(`v${i}.${n}`));
    // History on both repositories: one whole run each.
    const seed = open('seed', repoS);
    await backupGroup({ repo: repoS, catalog: seed, policy: sharded.policy, group, sources: sources() });
    await plainRun();
  });
  afterEach(() => {
    for (const c of catalogs.splice(0)) c.close();
    dir.cleanup();
  });

  it('boundary keys, deletions either side of a boundary, delete markers and versions: 2 then 3 shards', async () => {
    // Night 1, 2 shards split at p/k05 (which belongs to shard 0).
    await a.put('p/k05', Buffer.from('changed-boundary'));
    await a.put('p/k06', Buffer.from('changed-after'));
    await a.delete('p/k04'); // in shard 0's range
    await a.delete('p/k07'); // just outside it: shard 1's
    await a.put('p/\u{1F600}', Buffer.from('astral changed'));
    await v.put('q/k03', Buffer.from('v3.new'));
    await v.delete('q/k04');
    const one = await both([['lake-a', 'p/k05']], 'n1');
    expect(one).toEqual({ objectsNew: 1, objectsChanged: 3, objectsDeleted: 3 }); // a versioned bucket's new version counts new

    // Night 2, 3 shards: one boundary at U+FFFD (the astral keys after it, in S3 order), one at a versioned key.
    await a.put('p/\uFFFD', Buffer.from('fffd changed'));
    await a.put('p/\u{1F600}x', Buffer.from('astral x changed'));
    await a.put('p/k04', Buffer.from('back'));
    await a.delete('p/k09');
    await v.delete('q/k03'); // a delete marker on the boundary key
    await v.put('q/k02', Buffer.from('v2.a'));
    await v.put('q/k02', Buffer.from('v2.b'));
    await v.delete('q/k05');
    await both(
      [
        ['lake-a', 'p/\uFFFD'],
        ['lake-v', 'q/k03'],
      ],
      'n2',
    );
  });

  it("a forget between nights: versions it dropped in a shard's range are not captured again, nor any outside it", async () => {
    await a.put('p/k05', Buffer.from('changed'));
    await a.delete('p/k07');
    await v.put('q/k01', Buffer.from('v1.new'));
    await v.put('q/k05', Buffer.from('v5.new'));
    await both([['lake-v', 'q/k03']], 'n1');
    // Keep only the newest run (set): the seed run goes, and the versions only it held are dropped.
    const keepOne: Group = { ...group, retention: { keepLast: 1 } };
    const whole = open('forgetter', sharded.repo);
    await syncCatalog({ repo: sharded.repo, catalog: whole });
    const f1 = await forget(sharded.repo, whole, { ...sharded.policy, groups: [keepOne] }, { dryRun: false });
    const f2 = await forget(plain.repo, plain.catalog, { ...plain.policy, groups: [keepOne] }, { dryRun: false });
    expect(f1.dropped.length).toBeGreaterThan(0); 
    expect(f1.dropped.length).toBe(f2.dropped.length);
    // Night 2 lists every version of the versioned bucket (the dropped ones are still there), on fresh range catalogs.
    await v.put('q/k03', Buffer.from('v3.new'));
    const two = await both([['lake-v', 'q/k01']], 'n2', true);
    expect(two.objectsNew).toBe(1);
  });

  it('content stored by two shards (a second copy), a prune on a whole host, then each range catalog restores its keys', async () => {
    const big = Buffer.from(JSON.stringify({ shared: 'x'.repeat(4000) }));
    await a.put('p/k01', big); // shard 0
    await v.put('q/k06', big); // shard 1: its range catalog does not know shard 0's copy
    const one = await both([['lake-a', 'p/k05']], 'n1');
    expect(one.objectsChanged + one.objectsNew).toBe(2);
    const [zero, first] = shardHosts as [Catalog, Catalog];
    const whole = open('pruner', sharded.repo);
    await syncCatalog({ repo: sharded.repo, catalog: whole });
    const pruned = await prune({ repo: sharded.repo, catalog: whole, maxUnused: 0 });
    expect([pruned.missing, pruned.damaged]).toEqual([[], []]);
    const read = async (s: MemStore, key: string): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      for await (const chunk of (await s.get(key)).body) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    };
    for (const [catalog, bucket, key] of [
      [zero, 'lake-a', 'p/k01'],
      [first, 'lake-v', 'q/k06'],
    ] as const) {
      // Synced before the prune: a command syncs first, and the sync follows the prune.
      expect((await syncCatalog({ repo: sharded.repo, catalog })).damage).toEqual([]);
      const target = new MemStore({ name: 'restored' });
      const r = await restore({ repo: sharded.repo, catalog, scopes: [{ bucket, key }], cut: { time: Date.now() }, target, bucketDirs: false, concurrency: 2 });
      expect(r.failures).toEqual([]);
      expect((await read(target, key)).equals(big)).toBe(true);
    }
    expect((await verify({ repo: sharded.repo, catalog: whole, readData: 1, concurrency: 2 })).damage).toEqual([]);
  });

  it('anomalies: a mass deletion inside a shard range makes it suspect; one of a partition the boundary cuts', async () => {
    const part = (d: number, i: number) => `m/d=${d}/f${String(i).padStart(2, '0')}.bin`;
    for (let i = 0; i < 30; i++) await a.put(part(1, i), Buffer.from(`one ${i}`));
    for (let i = 0; i < 60; i++) await a.put(part(2, i), Buffer.from(`two ${i}`));
    await both([['lake-a', part(1, 14)]], 'n1');
    expect([shardSuspect, plainSuspect]).toEqual([[false, false], false]);
    // A tenth of d=2 deleted (shard 1's range): suspect on its range catalog, as on a whole one.
    for (let i = 0; i < 6; i++) await a.delete(part(2, i));
    await both([['lake-a', part(1, 14)]], 'n2');
    expect([shardSuspect, plainSuspect]).toEqual([[false, true], true]);
    // One key of d=1 deleted (1 of 30; 1 of shard 1's 15): not suspect, as for one process.
    await a.delete(part(1, 20));
    await both([['lake-a', part(1, 14)]], 'n3');
    expect([shardSuspect, plainSuspect]).toEqual([[false, false], false]);
    // d=1 deleted whole (29 keys), the boundary cutting it 15/14: each shard's part is below
    // min_partition_objects (20), so each judges its deletions as a share of the whole partition.
    for (let i = 0; i < 30; i++) await a.delete(part(1, i));
    await both([['lake-a', part(1, 14)]], 'n4');
    expect(plainSuspect).toBe(true);
    expect(shardSuspect).toEqual([true, true]);
  });

  it('a shard killed on its range catalog, re-run on the same file, then a prune: one complete run set, nothing lost', async () => {
    for (let i = 0; i < 40; i++) await a.put(`r/${String(i).padStart(3, '0')}.bin`, Buffer.from(`${i}:`.padEnd(1500, String(i % 10))));
    await v.put('q/k05', Buffer.from('v5.new'));
    const bounds: BucketKey[] = [['lake-a', 'p/k05']];
    const set = newRunId(new Date());
    const shardOf = (index: number): RunShard => ({ set, name: 'n1', index, of: 2, range: shardRange(bounds, index) });
    const scopeOf = (index: number) => shardScope([group], new Map([[group.name, shardOf(index)]]));
    // Shard 1's first attempt dies after its first index file (SIGKILL: no manifest, its process gone).
    const file = open('shard-1-of-2', sharded.repo);
    await syncCatalog({ repo: sharded.repo, catalog: file, scopeTo: scopeOf(1) });
    const killedRepo = await Repository.open(new KilledAfterFirstCheckpoint(storeS), { password: async () => 'unused (no encryption)' });
    await expect(backupGroup({ repo: killedRepo, catalog: file, policy: sharded.policy, group, sources: sources(), shard: shardOf(1) })).rejects.toThrow('killed');
    sqlite(file).prepare("UPDATE runs SET status = 'running', finished = NULL WHERE seq IN (SELECT run FROM unrecorded_runs)").run();
    sqlite(file).prepare('DELETE FROM unrecorded_runs').run();
    sqlite(file).prepare("UPDATE runs SET pid = 2147483646 WHERE status = 'running'").run();
    // The engine retries it on the same shard file; shard 0 runs on a fresh host.
    for (const [index, catalog] of [
      [1, file],
      [0, open('shard-0-of-2', sharded.repo)],
    ] as const) {
      await syncCatalog({ repo: sharded.repo, catalog, scopeTo: scopeOf(index) });
      expect((await backupGroup({ repo: sharded.repo, catalog, policy: sharded.policy, group, sources: sources(), shard: shardOf(index) })).status).toBe('complete');
    }
    await plainRun();
    const whole = open('whole', sharded.repo);
    expect((await syncCatalog({ repo: sharded.repo, catalog: whole })).damage).toEqual([]);
    expect(runSetsOf(whole).find((r) => r.name === 'n1')?.status).toBe('complete');
    expect(versionsOf(whole)).toEqual(versionsOf(plain.catalog));
    const pruned = await prune({ repo: sharded.repo, catalog: whole, maxUnused: 0 });
    expect([pruned.missing, pruned.damaged]).toEqual([[], []]);
    expect((await verify({ repo: sharded.repo, catalog: whole, readData: 1, concurrency: 2 })).damage).toEqual([]);
    expect((await syncCatalog({ repo: sharded.repo, catalog: file })).damage).toEqual([]);
    const target = new MemStore({ name: 'restored' });
    const r = await restore({ repo: sharded.repo, catalog: file, scopes: [{ bucket: 'lake-a', prefix: 'r/' }], cut: { time: Date.now() }, target, bucketDirs: false, concurrency: 2 });
    expect([r.failures, r.restored]).toEqual([[], 40]);
  });
});
