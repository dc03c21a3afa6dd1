// A shard attempt killed after some checkpoints (no manifest) and re-run on a fresh host (an
// empty catalog, synced to its range as `backup --shards` does) resumes: it reads and stores only
// what the dead attempt had not checkpointed, its manifest stands alone (a fresh host sees one
// complete run set, restores it byte-identical, verifies clean, finds no version twice), and a
// prune afterwards keeps everything restorable. docs/scale-out.md "Re-runs, kills and resume".
// The kill is in-process: from the moment the attempt's k-th checkpoint document is written,
// the repository accepts no more writes (what a SIGKILL there leaves), and its catalog is dropped.
// (Without checkpoint documents the dead attempt's source waits for them for ever: the tests
// then fail by their timeout.)
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { runSetCut, runSetsOf } from '../../src/catalog/run-sets.js';
import { backupGroup } from '../../src/engine/backup.js';
import { forget } from '../../src/engine/forget.js';
import { prune } from '../../src/engine/prune.js';
import { runIdTime } from '../../src/catalog/forget.js';
import { ABANDONED_SHARD_MS, checkpointName, obsoleteCheckpoints, parseCheckpointName, type CheckpointDocument } from '../../src/engine/resume.js';
import { restore } from '../../src/engine/restore.js';
import { shardCatalogScope } from '../../src/engine/shard-scope.js';
import { planRunSet } from '../../src/engine/shard-plan.js';
import { listedKeys, type KeySource } from '../../src/engine/shard-bounds.js';
import type { RunShard, ShardIdentity } from '../../src/engine/shards.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { verify } from '../../src/engine/verify.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import { getBytes, type ListItem, type ListOptions, type ObjectStore, type PutOptions, type PutResult } from '../../src/storage/types.js';
import { initRepo, tempDir, TEST_KDF, testPolicy } from '../helpers/fixtures.js';

/**
 * The repository as a process killed right after its k-th checkpoint document sees it: nothing
 * more lands (nor a manifest). The run is stopped there too (`stop`); `checkpoints(n)` waits for
 * the n-th checkpoint document, for the source's gate.
 */
class KilledAfterCheckpoints extends StoreDecorator {
  written = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(
    inner: StoreDecorator['inner'],
    private readonly k: number,
    private readonly stop: AbortController,
  ) {
    super(inner);
  }
  override async put(key: string, body: Parameters<StoreDecorator['put']>[1], opts?: PutOptions): Promise<PutResult> {
    if ((this.written >= this.k && !key.startsWith('locks/')) || key.startsWith('runs/')) throw new Error('killed');
    const r = await this.inner.put(key, body, opts);
    if (key.startsWith('checkpoints/')) {
      if (++this.written >= this.k) this.stop.abort();
      this.waiting.splice(0).forEach((wake) => wake());
    }
    return r;
  }
  /** Resolves once `n` checkpoint documents are written (without them, never: the test times out). */
  async checkpoints(n: number): Promise<void> {
    while (this.written < n) await new Promise<void>((wake) => this.waiting.push(wake));
  }
}

/**
 * The lake as the dead attempt reads it: its i-th GET waits for checkpoint floor(i / 20), so the
 * attempt has read at most 20 objects more per checkpoint when it dies (no timing involved).
 */
class GatedLake extends StoreDecorator {
  private gets = 0;
  constructor(
    inner: StoreDecorator['inner'],
    private readonly repo: KilledAfterCheckpoints,
  ) {
    super(inner);
  }
  override async get(key: string, opts?: Parameters<StoreDecorator['get']>[1]): ReturnType<StoreDecorator['get']> {
    await this.repo.checkpoints(Math.floor(this.gets++ / 20));
    return this.inner.get(key, opts);
  }
}

/** Counts the bytes written to packs/, and the checkpoint documents read. */
class CountingPuts extends StoreDecorator {
  packBytes = 0;
  checkpointReads = 0;
  override get(key: string, opts?: Parameters<StoreDecorator['get']>[1]): ReturnType<StoreDecorator['get']> {
    if (key.startsWith('checkpoints/')) this.checkpointReads++;
    return this.inner.get(key, opts);
  }
  override put(key: string, body: Parameters<StoreDecorator['put']>[1], opts?: PutOptions): Promise<PutResult> {
    if (key.startsWith('packs/') && Buffer.isBuffer(body)) this.packBytes += body.length;
    return this.inner.put(key, body, opts);
  }
}

const SIZE = 1500;

describe('a killed shard attempt resumes on a fresh host', { timeout: 30_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let store: ObjectStore;
  let repo: Repository;
  let policy: Policy;
  let lake: MemStore;
  const group: Group = { name: 'g', sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }], retention: { keepLast: 10 } };
  const catalogs: Catalog[] = [];
  const bodies = new Map<string, Buffer>();
  const host = (name: string): Catalog => {
    const c = Catalog.open(join(dir.path, `${name}.db`), repo.id);
    catalogs.push(c);
    return c;
  };
  const source = (): OpenedSource => ({ bucket: 'lake', objectStore: lake, prefixes: [''], isExcluded: () => false });
  const keys: KeySource = (segment, signal, after) => listedKeys({ ...segment, source: source() }, signal, after);

  /** One shard as `backup --shards 2 --shard <index> --run-set nightly` runs it on a fresh host. */
  let checkpointRecords: number | undefined;
  /** --shards: 2, or 1 for a single worker that wants resume (docs/scale-out.md). */
  let shardCount = 2;
  async function shardRun(catalog: Catalog, index: number, on: Repository = repo, from: OpenedSource = source(), signal?: AbortSignal, runSet = 'nightly') {
    const shard: ShardIdentity = { index, of: shardCount, runSet };
    // One shard of one: a whole catalog, synced, then the plan (as backup does with --shards 1).
    const scoped = shardCount === 1 ? { scopeTo: undefined, planned: undefined } : await shardCatalogScope({ repo: on, catalog, policy, groups: [group], shard, dryRun: false, concurrency: 2, keys });
    await syncCatalog({ repo: on, catalog, ...(scoped.scopeTo === undefined ? {} : { scopeTo: scoped.scopeTo }) });
    const planned = scoped.planned ?? (await planRunSet({ repo: on, catalog, policy, groups: [group], shard, dryRun: false, keys }));
    const runShard = planned.shards.get('g')!;
    const gets = lake.stats.get;
    const summary = await backupGroup({ repo: on, catalog, policy, group, sources: [from], shard: runShard, checkpointPacks: 4, ...(checkpointRecords === undefined ? {} : { checkpointRecords }), ...(signal === undefined ? {} : { signal }) });
    return { summary, gets: lake.stats.get - gets, shard: runShard };
  }

  /** Shard 0's checkpoint documents (shard 1's complete attempt wrote some too). */
  async function shard0Checkpoints(): Promise<string[]> {
    return (await repo.listNames('checkpoints')).filter((name) => parseCheckpointName(name)?.index === 0).sort();
  }

  async function checkpointDocs(): Promise<CheckpointDocument[]> {
    const docs: CheckpointDocument[] = [];
    for (const name of await shard0Checkpoints()) docs.push(await repo.readDocument<CheckpointDocument>('checkpoints', name));
    return docs;
  }

  /** Restores run set `name` (of `count`) and compares every key with the lake's bytes. */
  async function restoresAll(catalog: Catalog, count = 1, name = 'nightly'): Promise<void> {
    const sets = runSetsOf(catalog);
    expect(sets).toHaveLength(count);
    const target = new MemStore({ name: 'restored' });
    const r = await restore({ repo, catalog, scopes: [{ bucket: 'lake' }], cut: runSetCut(catalog, sets.find((x) => x.name === name)!), target, bucketDirs: false, concurrency: 2 });
    expect(r.failures).toEqual([]);
    for (const [key, body] of bodies) {
      const chunks: Buffer[] = [];
      for await (const chunk of (await target.get(key)).body) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(body), key).toBe(true);
    }
  }

  /** Shard 0's first attempt, on its own host, dies right after its k-th checkpoint document. */
  async function killShard0(k: number, on: Catalog = host('dead')): Promise<void> {
    const stop = new AbortController();
    const killed = new KilledAfterCheckpoints(store, k, stop);
    const killedRepo = await Repository.open(killed, { password: async () => 'test-password' });
    const gated: OpenedSource = { ...source(), objectStore: new GatedLake(lake, killed) };
    await expect(shardRun(on, 0, killedRepo, gated, stop.signal)).rejects.toThrow();
  }

  beforeEach(async () => {
    checkpointRecords = undefined;
    shardCount = 2;
    dir = tempDir('shard-resume');
    store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    // Packs of ~2 objects: the dead attempt writes a checkpoint every 4 packs.
    repo = await initRepo(store, { packSize: 4096 });
    policy = testPolicy(store.location, [group], { concurrency: { list: 2, transfer: 2 } });
    lake = new MemStore({ name: 'lake' });
    bodies.clear();
    for (let i = 0; i < 160; i++) {
      // Four keys anomaly detection flags (a ransomware extension), among the first shard 0 reads.
      const key = `p${String(i % 8)}/${String(i).padStart(4, '0')}.${i % 40 === 0 ? 'encrypted' : 'bin'}`;
      bodies.set(key, randomBytes(SIZE));
      await lake.put(key, bodies.get(key)!);
    }
  });
  afterEach(() => {
    for (const c of catalogs.splice(0)) c.close();
    dir.cleanup();
  });

  it('a run set cancelled before any shard wrote its manifest: forget keeps its checkpoints for a re-run, then takes them for abandoned', async () => {
    await killShard0(2);
    const left = await shard0Checkpoints();
    expect(left).toHaveLength(2);
    // No catalog knows the run set (no manifest anywhere): young checkpoints stay, a re-run may come.
    const admin = host('admin');
    await syncCatalog({ repo, catalog: admin });
    const done = await forget(repo, admin, policy, { dryRun: false });
    expect(done.checkpointsDeleted).toEqual([]);
    expect(await shard0Checkpoints()).toEqual(left);
    // By the attempt's start (its run id), not by when forget looks.
    const started = runIdTime(parseCheckpointName(left[0]!)!.run)!;
    expect((await obsoleteCheckpoints(repo, admin, new Set(), started + ABANDONED_SHARD_MS)).sort()).toEqual([]);
    expect((await obsoleteCheckpoints(repo, admin, new Set(), started + ABANDONED_SHARD_MS + 1000)).sort()).toEqual(left);
  });

  it('reads and stores only what the dead attempt had not checkpointed; one complete run set, restorable, verified, no version twice, also after a prune', async () => {
    // Shard 1 completes; shard 0 dies after its third checkpoint.
    expect((await shardRun(host('b'), 1)).summary.status).toBe('complete');
    await killShard0(2);
    const docs = await checkpointDocs();
    expect(docs.map((d) => d.seq)).toEqual([1, 2]);
    const checkpointed = new Set(docs.flatMap((d) => d.records.map((r) => r.key)));
    // GETs from the 41st on waited for the second checkpoint, after which nothing more landed.
    expect([checkpointed.size > 0, checkpointed.size <= 40]).toEqual([true, true]);

    // The re-run on a fresh host: only the rest of its range is read and stored.
    const counting = new CountingPuts(store);
    const rerunRepo = await Repository.open(counting, { password: async () => 'test-password' });
    const freshHost = host('fresh');
    const rerun = await shardRun(freshHost, 0, rerunRepo);
    expect(rerun.summary.status).toBe('complete');
    const inRange = rerun.summary.counters.objectsNew;
    expect(inRange).toBeGreaterThan(checkpointed.size);
    expect(rerun.summary.counters.objectsCarried).toBe(checkpointed.size);
    // The verdict counts carried versions as read ones, with the signals the dead attempt judged.
    expect([...checkpointed].some((key) => key.endsWith('.encrypted'))).toBe(true);
    expect(rerun.summary.anomalies?.flaggedObjects).toBe(4);
    expect(rerun.summary.anomalies?.partitions.reduce((n, p) => n + (p.signals['extension-swap'] ?? 0), 0)).toBe(4);
    expect(rerun.gets).toBe(inRange - checkpointed.size);
    // Objects read again: stored anew, or found in the dead attempt's packs that its checkpoints' index files list.
    const { blobsNew, blobsDeduplicated } = rerun.summary.counters;
    expect(blobsNew + blobsDeduplicated).toBe(inRange - checkpointed.size);
    // Packs hold the new blobs' bytes (incompressible), the run's record blobs and pack headers: nothing carried.
    expect(counting.packBytes).toBeGreaterThanOrEqual(blobsNew * SIZE);
    expect(counting.packBytes).toBeLessThan(blobsNew * SIZE + 40_000);
    // A backup deletes nothing (its role may only create): the checkpoints stay until a forget.
    const left = await repo.listNames('checkpoints');
    expect(left.length).toBeGreaterThan(docs.length);

    // A fresh host sees one complete run set of two shards, each key once.
    const fresh = host('whole');
    expect((await syncCatalog({ repo, catalog: fresh })).damage).toEqual([]);
    expect(runSetsOf(fresh).map((s) => [s.status, s.attempts.map((a) => a.run.status)])).toEqual([['complete', ['complete', 'complete']]]);
    const twice = sqlite(fresh).prepare('SELECT count(*) FROM (SELECT object FROM versions GROUP BY object HAVING count(*) > 1)').pluck().get();
    expect(twice).toBe(0);
    expect(sqlite(fresh).prepare('SELECT count(*) FROM versions').pluck().get()).toBe(bodies.size);
    expect((await verify({ repo, catalog: fresh, readData: 1, concurrency: 2 })).damage).toEqual([]);
    await restoresAll(fresh);

    // A prune removes the dead attempt's unlisted packs and keeps every blob the carried versions use.
    const pruned = await prune({ repo, catalog: fresh, maxUnused: 0 });
    expect([pruned.missing, pruned.damaged]).toEqual([[], []]);
    const after = host('after-prune');
    expect((await syncCatalog({ repo, catalog: after })).damage).toEqual([]);
    expect((await verify({ repo, catalog: after, readData: 1, concurrency: 2 })).damage).toEqual([]);
    await restoresAll(after);
    // forget deletes every checkpoint: each shard has a complete attempt.
    const done = await forget(repo, after, policy, { dryRun: false });
    expect(done.checkpointsDeleted.sort()).toEqual(left.sort());
    expect(await repo.listNames('checkpoints')).toEqual([]);

    // The next night on the re-run's host (its range catalog kept, and the index files it took
    // over known to it, some pruned since): one changed object is read, nothing else.
    bodies.set('p0/0008.bin', randomBytes(SIZE));
    await lake.put('p0/0008.bin', bodies.get('p0/0008.bin')!);
    const next = await shardRun(freshHost, 0, repo, source(), undefined, 'nightly-2');
    expect([next.summary.status, next.gets, next.summary.counters.objectsChanged, next.summary.counters.objectsCarried ?? 0]).toEqual(['complete', 1, 1, 0]);
    const later = host('later');
    expect((await syncCatalog({ repo, catalog: later })).damage).toEqual([]);
    expect((await verify({ repo, catalog: later, readData: 1, concurrency: 2 })).damage).toEqual([]);
  });

  it('a single worker (--shards 1) killed on a fresh host resumes the same way', async () => {
    shardCount = 1;
    await killShard0(2);
    const checkpointed = new Set((await checkpointDocs()).flatMap((d) => d.records.map((r) => r.key)));
    expect(checkpointed.size).toBeGreaterThan(0);
    const rerun = await shardRun(host('fresh'), 0);
    expect([rerun.summary.status, rerun.summary.counters.objectsCarried, rerun.gets]).toEqual(['complete', checkpointed.size, bodies.size - checkpointed.size]);
    const fresh = host('whole');
    expect((await syncCatalog({ repo, catalog: fresh })).damage).toEqual([]);
    expect(runSetsOf(fresh).map((s) => s.status)).toEqual(['complete']);
    expect(sqlite(fresh).prepare('SELECT count(*) FROM versions').pluck().get()).toBe(bodies.size);
    await restoresAll(fresh);
  });

  it('a planted or replayed checkpoint injects nothing: verify reports it, the re-run reads those objects', async () => {
    expect((await shardRun(host('b'), 1)).summary.status).toBe('complete');
    await killShard0(2);
    const [first, second] = await shard0Checkpoints();
    const doc = await repo.readDocument<CheckpointDocument>('checkpoints', first!);
    const shard: RunShard = doc.shard;
    // Replayed: the first checkpoint's bytes under a later attempt's name (its seal names its own).
    const replayed = checkpointName(shard, '20991231T000000Z-aaaaaa', 1);
    await store.put(`checkpoints/${replayed}`, await getBytes(store, `checkpoints/${first!}`));
    // Planted by a key holder: the second checkpoint's versions with blobs no index file of this
    // repository lists (nor the catalog knows), naming an index file that does not exist.
    const planted = checkpointName(shard, '20991231T000000Z-bbbbbb', 1);
    const second2 = await repo.readDocument<CheckpointDocument>('checkpoints', second!);
    await repo.writeDocument('checkpoints', planted, { ...second2, name: planted, run: '20991231T000000Z-bbbbbb', seq: 1, indexes: ['20991231T000000Z-0000000000000000'], records: second2.records.map((r) => ({ ...r, blobs: [randomBytes(32).toString('hex')] })) });
    // The genuine checkpoints are gone (a prune, say): only the planted ones remain.
    await store.delete(`checkpoints/${first!}`);
    await store.delete(`checkpoints/${second!}`);

    const warnings: string[] = [];
    const freshCatalog = host('fresh');
    const scoped = await shardCatalogScope({ repo, catalog: freshCatalog, policy, groups: [group], shard: { index: 0, of: 2, runSet: 'nightly' }, dryRun: false, concurrency: 2, keys });
    await syncCatalog({ repo, catalog: freshCatalog, scopeTo: scoped.scopeTo! });
    const gets = lake.stats.get;
    const rerun = await backupGroup({ repo, catalog: freshCatalog, policy, group, sources: [source()], shard: scoped.planned!.shards.get('g')!, events: (e) => void (e.type === 'warning' && warnings.push(e.message)) });
    expect(rerun.status).toBe('complete');
    expect(rerun.counters.objectsCarried ?? 0).toBe(0);
    expect(lake.stats.get - gets).toBe(rerun.counters.objectsNew);
    expect(warnings.filter((w) => w.includes(replayed))).toEqual([expect.stringMatching(/^\S+checkpoints\/\S+aaaaaa\.000001: failed authentication \(corrupted or tampered\); not resumed from/)]);
    expect(warnings.filter((w) => w.includes('20991231T000000Z-bbbbbb'))).toEqual([
      expect.stringMatching(/^1 index file named by the checkpoints of run 20991231T000000Z-bbbbbb could not be read \(.*index\/20991231T000000Z-0000000000000000: .*\): the objects it located are read again$/),
      expect.stringMatching(/^not resuming from attempt 20991231T000000Z-bbbbbb of shard 0 \(killed without a manifest\): no index file of this repository lists the blobs/),
    ]);

    const fresh = host('whole');
    await syncCatalog({ repo, catalog: fresh });
    await restoresAll(fresh);
    // verify authenticates checkpoints: the replayed one is damage (the planted one, sealed with the key, is well-formed).
    const report = await verify({ repo, catalog: fresh, readData: 0, concurrency: 2 });
    expect(report.damage.map((d) => [d.what, d.problem.includes('failed authentication')])).toEqual([[`checkpoints/${replayed}`, true]]);
    // forget deletes the checkpoints no re-run needs (each shard has a complete attempt), damaged or not.
    const left = await repo.listNames('checkpoints');
    expect(left).toEqual(expect.arrayContaining([replayed, planted]));
    const done = await forget(repo, fresh, policy, { dryRun: false });
    expect(done.checkpointsDeleted.sort()).toEqual(left.sort());
  });

  it('under Object Lock: resumes the same way; forget keeps the retained checkpoints and deletes them once free', async () => {
    const locked = new MemStore({ objectLock: true });
    store = locked;
    // Checkpoints of at most 3 records each: one checkpoint is several documents, and the kill comes inside one.
    checkpointRecords = 3;
    repo = await Repository.init(locked, { password: 'test-password', kdf: { ...TEST_KDF }, objectLock: { mode: 'GOVERNANCE', retentionDays: 1 }, packSize: 4096 });
    expect((await shardRun(host('b'), 1)).summary.status).toBe('complete');
    await killShard0(2);
    const docs = await checkpointDocs();
    expect([docs.length, docs.every((d) => d.records.length <= 3)]).toEqual([2, true]);
    const rerun = await shardRun(host('fresh'), 0);
    expect(rerun.summary.status).toBe('complete');
    expect(rerun.summary.counters.objectsCarried).toBe(docs.reduce((n, d) => n + d.records.length, 0));
    expect(rerun.summary.counters.objectsCarried).toBeGreaterThan(0);
    expect(rerun.gets).toBe(rerun.summary.counters.objectsNew - rerun.summary.counters.objectsCarried!);

    const whole = host('whole');
    expect((await syncCatalog({ repo, catalog: whole })).damage).toEqual([]);
    await restoresAll(whole);
    const checkpoints = (await repo.listNames('checkpoints')).sort();
    const first = await forget(repo, whole, policy, { dryRun: false });
    expect(first.checkpointsDeleted).toEqual([]);
    expect(first.manifestsLocked.map((l) => l.name).sort()).toEqual(checkpoints.map((n) => `checkpoints/${n}`));
    for (const l of first.manifestsLocked) await locked.putRetention(l.name, { mode: 'GOVERNANCE', retainUntil: new Date(Date.now() - 1000) }, {});
    const second = await forget(repo, whole, policy, { dryRun: false });
    expect(second.checkpointsDeleted.sort()).toEqual(checkpoints);
    expect(await repo.listNames('checkpoints')).toEqual([]);
  });

  it("content of the dead attempt's packs that its re-run did not carry, pruned since, is never deduplicated against on the re-run's host", async () => {
    expect((await shardRun(host('b'), 1)).summary.status).toBe('complete');
    await killShard0(2);
    // A checkpointed object changes before the re-run: its checkpointed content is in the dead
    // attempt's listed packs, which the re-run's catalog now locates, but no version uses it.
    const docs = await checkpointDocs();
    const key = docs[0]!.records[0]!.key;
    const old = bodies.get(key)!;
    bodies.set(key, randomBytes(SIZE));
    await lake.put(key, bodies.get(key)!);
    const freshHost = host('fresh');
    const rerun = await shardRun(freshHost, 0);
    expect(rerun.summary.counters.objectsCarried).toBe(docs.reduce((n, d) => n + d.records.length, 0) - 1);

    // Another host prunes: the dead attempt's unused content goes.
    const pruner = host('pruner');
    await syncCatalog({ repo, catalog: pruner });
    const pruned = await prune({ repo, catalog: pruner, maxUnused: 0 });
    expect([pruned.missing, pruned.damaged]).toEqual([[], []]);

    // Next night the object is back to its old content: the re-run's host must store it again.
    bodies.set(key, old);
    await lake.put(key, old);
    const next = await shardRun(freshHost, 0, repo, source(), undefined, 'nightly-2');
    expect([next.summary.status, next.summary.counters.objectsChanged]).toEqual(['complete', 1]);
    const whole = host('whole');
    expect((await syncCatalog({ repo, catalog: whole })).damage).toEqual([]);
    expect((await verify({ repo, catalog: whole, readData: 1, concurrency: 2 })).damage).toEqual([]);
    await restoresAll(whole, 2, 'nightly-2');
  });

  it("on the dead attempt's own host, the re-run records it from the catalog and reads none of its checkpoints", async () => {
    expect((await shardRun(host('b'), 1)).summary.status).toBe('complete');
    const deadHost = host('dead');
    await killShard0(2, deadHost);
    // A SIGKILL leaves the run `running` with a dead pid (the refused writes ended it failed, without a manifest: undo that).
    sqlite(deadHost).prepare("UPDATE runs SET status = 'running', finished = NULL, pid = 2147483646 WHERE seq IN (SELECT run FROM unrecorded_runs)").run();
    sqlite(deadHost).prepare('DELETE FROM unrecorded_runs').run();
    // What the dead attempt recorded in its host's catalog (its range only: the catalog is scoped to it).
    const recorded = sqlite(deadHost).prepare('SELECT count(*) FROM versions').pluck().get() as number;
    expect(recorded).toBeGreaterThan(0);
    const counting = new CountingPuts(store);
    const warnings: string[] = [];
    const again = await Repository.open(counting, { password: async () => 'test-password' });
    const scoped = await shardCatalogScope({ repo: again, catalog: deadHost, policy, groups: [group], shard: { index: 0, of: 2, runSet: 'nightly' }, dryRun: false, concurrency: 2, keys });
    await syncCatalog({ repo: again, catalog: deadHost, ...(scoped.scopeTo === undefined ? {} : { scopeTo: scoped.scopeTo }) });
    const gets = lake.stats.get;
    const rerun = await backupGroup({ repo: again, catalog: deadHost, policy, group, sources: [source()], shard: scoped.planned!.shards.get('g')!, events: (e) => void (e.type === 'warning' && warnings.push(e.message)) });
    expect(rerun.status).toBe('complete');
    expect(warnings).toEqual([expect.stringMatching(/^run \S+ \(group g\) was interrupted; recording what it stored as interrupted run/)]);
    expect([counting.checkpointReads, rerun.counters.objectsCarried ?? 0]).toEqual([0, 0]);
    expect(lake.stats.get - gets).toBe(rerun.counters.objectsNew);
    expect(rerun.counters.objectsNew).toBe(rerun.counters.objectsSeen - recorded);
    const whole = host('whole');
    expect((await syncCatalog({ repo, catalog: whole })).damage).toEqual([]);
    await restoresAll(whole);
  });

  it('a versioned bucket whose versions share a millisecond: carried versions keep their order', async () => {
    // Concurrent writers stamp every version of a key with one time (S3 lists them newest first):
    // the older one must start before the newer one, carried or read.
    shardCount = 1;
    const stamp = new Date('2026-11-20T10:00:00Z');
    lake = new (class extends MemStore {
      override async *list(prefix: string, opts?: ListOptions): AsyncGenerator<ListItem> {
        for await (const item of super.list(prefix, opts)) yield item.kind === 'object' ? { ...item, lastModified: stamp } : item;
      }
    })({ name: 'lake', versioning: true });
    bodies.clear();
    for (let i = 0; i < 80; i++) {
      const key = `p${String(i % 4)}/${String(i).padStart(4, '0')}.bin`;
      await lake.put(key, randomBytes(SIZE));
      bodies.set(key, randomBytes(SIZE));
      await lake.put(key, bodies.get(key)!);
    }
    await killShard0(2);
    const carried = (await checkpointDocs()).flatMap((d) => d.records).length;
    expect(carried).toBeGreaterThan(0);
    const rerun = await shardRun(host('fresh'), 0);
    expect([rerun.summary.status, rerun.summary.counters.objectsCarried]).toEqual(['complete', carried]);
    const fresh = host('whole');
    expect((await syncCatalog({ repo, catalog: fresh })).damage).toEqual([]);
    expect(sqlite(fresh).prepare('SELECT count(*) FROM versions').pluck().get()).toBe(2 * bodies.size);
    const tied = sqlite(fresh).prepare('SELECT count(*) FROM (SELECT object FROM versions GROUP BY object, valid_from HAVING count(*) > 1)').pluck().get();
    expect(tied).toBe(0);
    await restoresAll(fresh);
  });
});

