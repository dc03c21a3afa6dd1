// forget on a versioned in-memory bucket: kept runs restore exactly as before, dropped versions
// are gone from the catalog and are not captured again, and a rebuilt catalog agrees.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { setPendingDeletion } from '../../src/catalog/forget.js';
import { lastCleanRun, recordRunAnomalies } from '../../src/catalog/anomalies.js';
import { acknowledgeRun } from '../../src/engine/ack.js';
import { backupGroup } from '../../src/engine/backup.js';
import { forget } from '../../src/engine/forget.js';
import { prune } from '../../src/engine/prune.js';
import { rebuildCatalog } from '../../src/engine/rebuild.js';
import { restore } from '../../src/engine/restore.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { verify } from '../../src/engine/verify.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import type { PutOptions } from '../../src/storage/types.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { hashTree, initRepo, openCatalog, tempDir, TEST_KDF, testPolicy } from '../helpers/fixtures.js';

describe('forget', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  let clock: number;
  let bucket: MemStore;

  beforeEach(async () => {
    dir = tempDir('forget');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    catalog = openCatalog(dir.path, repo);
    clock = Date.parse('2026-11-20T10:00:00Z');
    bucket = new MemStore({ versioning: true, now: () => new Date(clock), name: 'lake' });
  });
  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  const source = (): OpenedSource => ({ bucket: 'lake', objectStore: bucket, prefixes: [''], isExcluded: () => false });
  const backup = (group: Group) => backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source()] });
  const put = async (key: string, body: string) => {
    clock += 60_000;
    await bucket.put(key, Buffer.from(body));
  };
  const del = async (key: string) => {
    clock += 60_000;
    await bucket.delete(key);
  };
  const restoreRun = async (cat: Catalog, runId: string, name: string) => {
    const run = cat.findRun(runId)!;
    const target = join(dir.path, name);
    await restore({ repo, catalog: cat, scopes: [{ bucket: 'lake' }], cut: { runSeq: run.seq }, target: new FsStore({ root: target, fsync: false }), bucketDirs: false, concurrency: 4 });
    return Object.fromEntries(hashTree(target));
  };
  const count = (cat: Catalog, sql: string): number => sqlite(cat).prepare(sql).pluck().get() as number;
  const policyFor = (group: Group): Policy => testPolicy(repo.location, [{ ...group, sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }] }]);

  /** Five runs: a has five versions, b is deleted, c arrives late. */
  async function history(group: Group): Promise<string[]> {
    const ids: string[] = [];
    await put('a.txt', 'a1');
    await put('b.txt', 'b1');
    ids.push((await backup(group)).runId);
    await put('a.txt', 'a2');
    await put('a.txt', 'a3');
    ids.push((await backup(group)).runId);
    await put('a.txt', 'a4');
    await del('b.txt');
    ids.push((await backup(group)).runId);
    await put('c.txt', 'c1');
    ids.push((await backup(group)).runId);
    await put('a.txt', 'a5');
    ids.push((await backup(group)).runId);
    return ids;
  }

  it('two groups backing up one bucket: a version one group keeps is not dropped by the other', async () => {
    const src = [{ kind: 'path' as const, path: '/x/lake', prefixes: [''], exclude: [] }];
    const g1: Group = { name: 'g1', sources: src, retention: { keepLast: 1 } };
    const g2: Group = { name: 'g2', sources: src, retention: { keepLast: 2 } };
    const policy = testPolicy(repo.location, [g1, g2]);
    const ids: string[] = [];
    for (const [body, group] of [['a1', g1], ['a2', g2], ['a3', g1], ['a4', g2], ['a5', g1]] as const) {
      await put('a.txt', body);
      ids.push((await backup(group)).runId);
    }
    const before = { r2: await restoreRun(catalog, ids[1]!, 'before-2'), r4: await restoreRun(catalog, ids[3]!, 'before-4') };

    const dry = await forget(repo, catalog, policy, { dryRun: true });
    expect(dry.verdicts.map((v) => (v.keep ? v.reasons.join(',') : 'remove'))).toEqual(['remove', 'last-2', 'remove', 'latest,last-1', 'latest,last-1']);
    // g1 alone needs only a5; g2 keeps runs 2 and 4, whose states are a2 and a4. a1 and a3 go.
    expect(dry.dropped).toHaveLength(2);
    const done = await forget(repo, catalog, policy, { dryRun: false });
    expect(done.dropped).toEqual(dry.dropped);
    expect(count(catalog, 'SELECT count(*) FROM versions')).toBe(3);
    expect(await restoreRun(catalog, ids[1]!, 'after-2')).toEqual(before.r2);
    expect(await restoreRun(catalog, ids[3]!, 'after-4')).toEqual(before.r4);
  });

  it('keeps what the kept runs need, drops the rest, and never captures a dropped version again', async () => {
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 2 } };
    const ids = await history(group);
    const before = { r4: await restoreRun(catalog, ids[3]!, 'before-4'), r5: await restoreRun(catalog, ids[4]!, 'before-5') };
    expect(Object.keys(before.r4).sort()).toEqual(['a.txt', 'c.txt']);
    expect(count(catalog, 'SELECT count(*) FROM versions')).toBe(8); // a1-a5, b1, b's delete marker, c1

    const dry = await forget(repo, catalog, policyFor(group), { dryRun: true });
    expect(dry.verdicts.map((v) => [v.run.id, v.keep ? v.reasons.join(',') : 'remove'])).toEqual([
      [ids[0], 'remove'],
      [ids[1], 'remove'],
      [ids[2], 'remove'],
      [ids[3], 'last-2'],
      [ids[4], 'latest,last-1'],
    ]);
    // Run 4's state needs a4 (recorded by run 3), b's delete marker and c1; run 5 adds a5.
    // a1, a2, a3 and b1 are current at no kept run.
    expect(dry.dropped).toHaveLength(4);
    expect(dry.emptyRuns).toEqual([ids[0], ids[1]]);
    expect(count(catalog, 'SELECT count(*) FROM versions')).toBe(8);
    expect(await repo.listNames('forgets')).toEqual([]);

    const done = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(done.documents).toHaveLength(1);
    expect(done.manifestsDeleted).toEqual([ids[0], ids[1]]);
    expect((await repo.listNames('runs')).sort()).toEqual([ids[2]!, ids[3]!, ids[4]!].sort());
    expect(catalog.listRuns().map((r) => r.id)).toEqual([ids[3], ids[4]]);
    expect(count(catalog, 'SELECT count(*) FROM versions')).toBe(4);
    expect(count(catalog, 'SELECT count(*) FROM forgotten_runs')).toBe(3);
    expect(count(catalog, 'SELECT count(*) FROM dropped_versions')).toBe(4);

    expect(await restoreRun(catalog, ids[3]!, 'after-4')).toEqual(before.r4);
    expect(await restoreRun(catalog, ids[4]!, 'after-5')).toEqual(before.r5);

    // The dropped versions are still in the bucket: the next backup must not take them again.
    const next = await backup(group);
    expect(next.counters).toMatchObject({ objectsNew: 0, bytesRead: 0 });

    // Forget again: nothing more to do (the new run is the latest; the old last-2 goes).
    const again = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(again.forgotten.map((r) => r.id)).toEqual([ids[3]]);

    // A catalog rebuilt from the repository alone replays the forget documents.
    const rebuiltPath = join(dir.path, 'rebuilt.db');
    await rebuildCatalog({ repo, catalogPath: rebuiltPath });
    const rebuilt = Catalog.open(rebuiltPath, repo.id);
    try {
      expect(rebuilt.listRuns().map((r) => r.id)).toEqual(catalog.listRuns().map((r) => r.id));
      const versions = (cat: Catalog) =>
        sqlite(cat)
          .prepare('SELECT o.key, v.version_id, v.valid_from, r.id AS run FROM versions v JOIN objects o ON o.id = v.object JOIN runs r ON r.seq = v.run ORDER BY 1, 3')
          .all();
      expect(versions(rebuilt)).toEqual(versions(catalog));
      expect(count(rebuilt, 'SELECT count(*) FROM dropped_versions')).toBe(count(catalog, 'SELECT count(*) FROM dropped_versions'));
      expect(await restoreRun(rebuilt, ids[4]!, 'rebuilt-5')).toEqual(before.r5);
    } finally {
      rebuilt.close();
    }
  }, 30_000);

  it('forget then prune: the dropped versions\' data is freed, the kept runs still restore and verify', async () => {
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 2 } };
    const ids = await history(group);
    const before = await restoreRun(catalog, ids[4]!, 'before-5');
    const before4 = await restoreRun(catalog, ids[3]!, 'before-4');
    await forget(repo, catalog, policyFor(group), { dryRun: false });
    const report = await prune({ repo, catalog, maxUnused: 0 });
    // Runs 1 and 2 stored only versions that were dropped (and their record blobs, whose
    // manifests forget deleted): their packs go entirely.
    expect(report.packs.removed + report.packs.repacked).toBeGreaterThanOrEqual(2);
    expect(report.bytes.freed).toBeGreaterThan(0);
    expect(report.bytes.unusedAfter).toBe(0);
    expect(report.damaged).toEqual([]);
    expect(await restoreRun(catalog, ids[3]!, 'after-4')).toEqual(before4);
    expect(await restoreRun(catalog, ids[4]!, 'after-5')).toEqual(before);
    const checked = await verify({ repo, catalog, readData: 1, concurrency: 2 });
    expect(checked.damage).toEqual([]);
  }, 30_000);

  it('a manifest under Object Lock is kept, remembered, and deleted by a later forget once it expires', async () => {
    catalog.close();
    const store = new MemStore({ objectLock: true });
    repo = await Repository.init(store, { password: 'pw', kdf: { ...TEST_KDF }, objectLock: { mode: 'GOVERNANCE', retentionDays: 1 } });
    mkdirSync(join(dir.path, 'locked'));
    catalog = openCatalog(join(dir.path, 'locked'), repo);
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 2 } };
    const ids = await history(group);
    const first = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(first.manifestsDeleted).toEqual([]);
    expect(first.manifestsLocked.map((l) => l.name).sort()).toEqual([`runs/${ids[0]}`, `runs/${ids[1]}`].sort());
    expect(count(catalog, 'SELECT count(*) FROM pending_deletions')).toBe(2);

    // A key file `key remove` found retained waits in the same list; forget never deletes it
    // (only `key remove`, which checks that another password remains).
    const keyId = await repo.addPassword('second', { ...TEST_KDF });
    await store.putRetention(`keys/${keyId}`, { mode: 'GOVERNANCE', retainUntil: new Date(Date.now() - 1000) }, {});
    setPendingDeletion(catalog, `keys/${keyId}`, Date.now() - 1000);

    // The retention ends (a governance date can be shortened): the next forget deletes them.
    for (const l of first.manifestsLocked) await store.putRetention(l.name, { mode: 'GOVERNANCE', retainUntil: new Date(Date.now() - 1000) }, {});
    const second = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(second.manifestsDeleted.sort()).toEqual([ids[0], ids[1]].sort());
    expect(second.manifestsLocked).toEqual([]);
    expect(await repo.listNames('keys')).toEqual([keyId]);
    expect(sqlite(catalog).prepare('SELECT name FROM pending_deletions').pluck().all()).toEqual([`keys/${keyId}`]);
    expect((await repo.listNames('runs')).sort()).toEqual(ids.slice(2).sort());
  }, 30_000);

  it('a manifest forget kept for needed versions is required by verify, prune, rebuild and sync', async () => {
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 2 } };
    const ids = await history(group);
    const before = await restoreRun(catalog, ids[3]!, 'before-4');
    const done = await forget(repo, catalog, policyFor(group), { dryRun: false });
    // Run 3 is forgotten, but its records hold a4 and b's delete marker, which run 4's state needs.
    const doc = await repo.readDocument<{ forgotten: string[]; manifestsKept: string[] }>('forgets', done.documents[0]!);
    expect(doc.forgotten).toEqual(ids.slice(0, 3));
    expect(doc.manifestsKept).toEqual([ids[2]]);
    const store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    const key = `runs/${ids[2]}`;
    const saved = (await store.getBytes(key, 1 << 20))!.bytes;
    await store.delete(key);

    const checked = await verify({ repo, catalog, readData: 0, concurrency: 2 });
    expect(checked.damage.map((d) => d.what)).toEqual([key]);
    expect(checked.damage[0]!.problem).toMatch(/kept its manifest, whose records hold versions kept runs still need/);
    await expect(prune({ repo, catalog, maxUnused: 0 })).rejects.toThrow(`lacks the manifest of forgotten run ${ids[2]}, which forget kept`);
    const rebuilt = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'rebuilt.db') });
    expect(rebuilt.installed).toBe(false);
    expect(rebuilt.damage.map((d) => d.what)).toEqual([key]);
    // Given up (--accept-damage): that catalog lacks the versions and requires the manifest no more.
    const accepted = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'accepted.db'), acceptDamage: true });
    expect(accepted.installed).toBe(true);
    const givenUp = Catalog.open(join(dir.path, 'accepted.db'), repo.id);
    const fresh = Catalog.open(join(dir.path, 'fresh.db'), repo.id);
    try {
      expect((await verify({ repo, catalog: givenUp, readData: 0, concurrency: 2 })).damage).toEqual([]);
      const synced = await syncCatalog({ repo, catalog: fresh });
      expect(synced.damage.map((d) => d.what)).toEqual([key]);
      // Restored from a copy: the repository is whole again, but the catalog synced without it
      // says, at every sync and in verify, that it lacks those versions until it is rebuilt, and
      // prune from it (which would take their data for unused) refuses.
      await store.put(key, saved);
      const warnings: string[] = [];
      await syncCatalog({ repo, catalog: fresh, events: (e) => e.type === 'warning' && warnings.push(e.message) });
      expect(warnings).toEqual([expect.stringMatching(`^this catalog lacks versions kept runs need: forget ${done.documents[0]} kept the manifest of run ${ids[2]}`)]);
      expect((await verify({ repo, catalog: fresh, readData: 0, concurrency: 2 })).damage.map((d) => d.what)).toEqual(['catalog']);
      await expect(prune({ repo, catalog: fresh, maxUnused: 0 })).rejects.toThrow(`lacks the versions only run ${ids[2]}'s manifest holds`);
      // So does the catalog that gave them up, now that the manifest is back.
      const back = await verify({ repo, catalog: givenUp, readData: 0, concurrency: 2 });
      expect(back.damage.map((d) => [d.what, d.problem])).toEqual([['catalog', expect.stringContaining(`${key} is back in the repository: run \`lakeguard catalog rebuild\``)]]);
      await expect(prune({ repo, catalog: givenUp, maxUnused: 0 })).rejects.toThrow(`gave up the versions only run ${ids[2]}'s manifest holds`);
    } finally {
      fresh.close();
      givenUp.close();
    }

    // Restored, everything else agrees again.
    expect((await verify({ repo, catalog, readData: 0, concurrency: 2 })).damage).toEqual([]);
    const again = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'rebuilt.db') });
    expect(again.installed).toBe(true);
    const cat = Catalog.open(join(dir.path, 'rebuilt.db'), repo.id);
    try {
      expect(await restoreRun(cat, ids[3]!, 'rebuilt-4')).toEqual(before);
    } finally {
      cat.close();
    }
  }, 30_000);

  it('a kept manifest goes with the forget that drops the last version only its records hold', async () => {
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 2 } };
    const ids = await history(group);
    const first = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(first.manifestsDeleted).toEqual([ids[0], ids[1]]); // run 3's stays: a4 and b's delete marker
    // Run 3's versions are moved to run 4; so is the state of later runs.
    await put('b.txt', 'b2');
    ids.push((await backup(group)).runId);
    await put('a.txt', 'a6');
    ids.push((await backup(group)).runId);
    const before = { r6: await restoreRun(catalog, ids[5]!, 'before-6'), r7: await restoreRun(catalog, ids[6]!, 'before-7') };
    // Keeping runs 6 and 7 drops a4 and b's delete marker (b2 is b's newest): run 3's manifest holds
    // nothing kept any more and goes; runs 4 and 5 are forgotten, but their c1 and a5 are in run 6's state.
    const dry = await forget(repo, catalog, policyFor(group), { dryRun: true });
    expect(dry.released).toEqual([ids[2]]);
    const store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    const saved = (await store.getBytes(`runs/${ids[2]}`, 1 << 20))!.bytes;
    const second = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(second.forgotten.map((r) => r.id)).toEqual([ids[3], ids[4]]);
    expect(second.dropped).toHaveLength(2);
    expect(second.manifestsDeleted).toEqual([ids[2]]);
    const doc = await repo.readDocument<{ manifestsKept: string[]; manifestsReleased: string[] }>('forgets', second.documents.at(-1)!);
    expect(doc).toMatchObject({ manifestsKept: [ids[3], ids[4]], manifestsReleased: [ids[2]] });
    expect((await repo.listNames('runs')).sort()).toEqual(ids.slice(3).sort());
    expect((await verify({ repo, catalog, readData: 0, concurrency: 2 })).damage).toEqual([]);
    // Its records are freed by prune; the kept runs restore as before, here and from a rebuilt catalog.
    const pruned = await prune({ repo, catalog, maxUnused: 0 });
    expect(pruned.damaged).toEqual([]);
    expect(await restoreRun(catalog, ids[5]!, 'after-6')).toEqual(before.r6);
    const rebuilt = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'rebuilt.db') });
    expect(rebuilt.damage).toEqual([]);
    expect(rebuilt.runs).toBe(2); // runs 6 and 7; the kept manifests of 4 and 5 are read, their runs forgotten
    const cat = Catalog.open(join(dir.path, 'rebuilt.db'), repo.id);
    try {
      const versions = (c: Catalog) =>
        sqlite(c).prepare('SELECT o.key, v.version_id, v.valid_from, r.id AS run FROM versions v JOIN objects o ON o.id = v.object JOIN runs r ON r.seq = v.run ORDER BY 1, 3').all();
      expect(versions(cat)).toEqual(versions(catalog));
      const kept = (c: Catalog) => sqlite(c).prepare('SELECT id, manifest_kept FROM forgotten_runs ORDER BY id').all();
      expect(kept(cat)).toEqual(kept(catalog));
      expect(await restoreRun(cat, ids[6]!, 'rebuilt-7')).toEqual(before.r7);
      // A new host's first sync reaches the same catalog.
      const fresh = Catalog.open(join(dir.path, 'fresh.db'), repo.id);
      try {
        expect((await syncCatalog({ repo, catalog: fresh })).damage).toEqual([]);
        expect(versions(fresh)).toEqual(versions(catalog));
        expect(kept(fresh)).toEqual(kept(catalog));
      } finally {
        fresh.close();
      }
    } finally {
      cat.close();
    }
    // Back from an older copy: named as needed no more by the forget that released it.
    await store.put(`runs/${ids[2]}`, saved);
    expect((await verify({ repo, catalog, readData: 0, concurrency: 2 })).notes).toEqual([
      `runs/${ids[2]}: the manifest of a forgotten run, needed no more since forget ${second.documents.at(-1)} (Object Lock still retains it, a forget was interrupted before deleting it, or it was restored from an older copy); nothing imports it, and a later \`lakeguard forget\` deletes it`,
    ]);
  }, 30_000);

  it('a forget stopped between its document parts leaves every catalog the same, and later forgets finish it', async () => {
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 2 } };
    const ids = await history(group);
    const want = await forget(repo, catalog, policyFor(group), { dryRun: true });
    expect(want.emptyRuns.length).toBeGreaterThan(0);
    expect(want.dropped.length).toBeGreaterThan(2);
    // One dropped version per document; the repository refuses the second part (a kill there).
    const refusing = new (class extends StoreDecorator {
      override put(key: string, body: Buffer | Readable, opts?: PutOptions) {
        if (/^forgets\/.*-0002$/.test(key)) return Promise.reject(new Error('killed'));
        return super.put(key, body, opts);
      }
    })(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    const stopped = await Repository.open(refusing, { password: async () => 'test-password' });
    await expect(forget(stopped, catalog, policyFor(group), { dryRun: false, dropsPerDocument: 1 })).rejects.toThrow('killed');
    // Part 1 forgot every run of the operation but dropped one version: each manifest still
    // records versions the later parts were to drop, so all are kept, and required.
    expect((await repo.listNames('runs')).sort()).toEqual([...ids].sort());
    const versions = (c: Catalog) =>
      sqlite(c).prepare('SELECT o.key, v.version_id, v.valid_from, r.id AS run FROM versions v JOIN objects o ON o.id = v.object JOIN runs r ON r.seq = v.run ORDER BY 1, 3').all();
    const manifests = (c: Catalog) => sqlite(c).prepare('SELECT id, manifest_kept FROM forgotten_runs ORDER BY id').all() as { id: string; manifest_kept: number }[];
    const sameAsFreshHost = async (name: string) => {
      const fresh = Catalog.open(join(dir.path, name), repo.id);
      try {
        expect((await syncCatalog({ repo, catalog: fresh })).damage).toEqual([]);
        expect(versions(fresh)).toEqual(versions(catalog));
        expect(manifests(fresh)).toEqual(manifests(catalog));
      } finally {
        fresh.close();
      }
    };
    expect(manifests(catalog)).toEqual(want.forgotten.map((r) => ({ id: r.id, manifest_kept: 1 })).sort((a, b) => a.id.localeCompare(b.id)));
    await sameAsFreshHost('fresh-1.db');
    expect((await verify({ repo, catalog, readData: 0, concurrency: 2 })).damage).toEqual([]);
    expect((await prune({ repo, catalog, maxUnused: 0 })).damaged).toEqual([]);
    await sameAsFreshHost('fresh-2.db');

    // What the later parts were to drop now belongs to the oldest kept run, so the next forget keeps
    // it too; it goes, with the manifests that record it, once retention moves past that run.
    expect((await forget(repo, catalog, policyFor(group), { dryRun: false, dropsPerDocument: 1 })).dropped).toEqual([]);
    await put('a.txt', 'a6');
    ids.push((await backup(group)).runId);
    await put('a.txt', 'a7');
    ids.push((await backup(group)).runId);
    const later = await forget(repo, catalog, policyFor(group), { dryRun: false, dropsPerDocument: 1 });
    expect(later.documents.length).toBeGreaterThan(1);
    const runsLeft = await repo.listNames('runs');
    expect(runsLeft.filter((id) => want.emptyRuns.includes(id))).toEqual([]);
    // Every manifest still kept records a version a kept run needs (b's delete marker, c1).
    const keptLeft = manifests(catalog).filter((m) => m.manifest_kept === 1).map((m) => m.id);
    const recording = sqlite(catalog).prepare('SELECT DISTINCT m.run FROM kept_versions k JOIN kept_manifests m ON m.id = k.manifest ORDER BY 1').pluck().all();
    expect(keptLeft.length).toBeGreaterThan(0);
    expect(recording).toEqual(keptLeft);
    expect(runsLeft.sort()).toEqual([...keptLeft, ...ids.slice(-2)].sort());
    expect((await verify({ repo, catalog, readData: 0, concurrency: 2 })).damage).toEqual([]);
    await sameAsFreshHost('fresh-3.db');
  }, 30_000);

  it("an earlier lakeguard's kept manifest is released too, once a rebuilt catalog knows what it holds", async () => {
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 2 } };
    const ids = await history(group);
    const first = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(first.manifestsDeleted).toEqual([ids[0], ids[1]]); // run 3's stays: a4 and b's delete marker
    // Its document as an earlier lakeguard wrote it: without manifestsKept.
    const store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    const name = first.documents[0]!;
    const { manifestsKept: _, ...legacy } = await repo.readDocument<Record<string, unknown>>('forgets', name);
    await store.delete(`forgets/${name}`);
    await repo.writeDocument('forgets', name, legacy);
    catalog.close();
    expect((await rebuildCatalog({ repo, catalogPath: join(dir.path, 'rebuilt.db') })).damage).toEqual([]);
    catalog = Catalog.open(join(dir.path, 'rebuilt.db'), repo.id);
    const states = () => sqlite(catalog).prepare('SELECT id, manifest_kept AS kept FROM forgotten_runs ORDER BY id').all();
    expect(states()).toEqual([ids[0], ids[1], ids[2]].sort().map((id) => ({ id, kept: null })));
    await put('b.txt', 'b2');
    ids.push((await backup(group)).runId);
    await put('a.txt', 'a6');
    ids.push((await backup(group)).runId);
    // Keeping runs 6 and 7 drops a4 and b's delete marker: run 3's manifest holds nothing kept any more.
    const second = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(second.manifestsDeleted).toContain(ids[2]);
    expect(await repo.listNames('runs')).not.toContain(ids[2]);
    expect(states()).toContainEqual({ id: ids[2], kept: 0 });
    expect((await verify({ repo, catalog, readData: 0, concurrency: 2 })).damage).toEqual([]);
  }, 30_000);

  it('names its documents to sort after every forget document applied, also within one second', async () => {
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 2 } };
    await history(group);
    // A forget applied this very second whose random part is the greatest there is.
    const second = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const latest = `${second}-ffffff-0001`;
    sqlite(catalog).prepare('INSERT INTO forgets (name, created) VALUES (?, ?)').run(latest, Date.now());
    const done = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(done.documents).toHaveLength(1);
    expect(done.documents[0]! > latest).toBe(true);
  });

  it('a manifest forget deleted that comes back is named, not imported, and deleted by the next forget', async () => {
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 2 } };
    const ids = await history(group);
    const store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    const key = `runs/${ids[0]}`;
    const saved = (await store.getBytes(key, 1 << 20))!.bytes;
    await forget(repo, catalog, policyFor(group), { dryRun: false });
    await prune({ repo, catalog, maxUnused: 0 }); // its record blobs go with the dropped versions
    await store.put(key, saved); // "restored" from an older copy

    const checked = await verify({ repo, catalog, readData: 0, concurrency: 2 });
    expect(checked.damage).toEqual([]);
    expect(checked.notes.filter((n) => n.startsWith(key))).toHaveLength(1);
    const rebuilt = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'rebuilt.db') });
    expect(rebuilt.damage).toEqual([]);
    expect(rebuilt.installed).toBe(true);
    const fresh = Catalog.open(join(dir.path, 'rebuilt.db'), repo.id);
    try {
      expect(fresh.listRuns().map((r) => r.id)).toEqual([ids[3], ids[4]]);
    } finally {
      fresh.close();
    }
    await prune({ repo, catalog, maxUnused: 0 });
    const next = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(next.manifestsDeleted).toContain(ids[0]);
    expect(await repo.listNames('runs')).not.toContain(ids[0]);
  }, 30_000);

  it('keeps every version between consecutive kept runs, so --at stays exact there', async () => {
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 4 } };
    const ids = await history(group);
    // Runs 2-5 kept. Run 2 recorded a2 and a3, but its predecessor (run 1) is forgotten, so only
    // its state stays: a3 (and b1, still current at run 2). Every version from run 3 on stays.
    const result = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(result.forgotten.map((r) => r.id)).toEqual([ids[0]]);
    const left = sqlite(catalog).prepare("SELECT count(*) FROM versions v JOIN objects o ON o.id = v.object WHERE o.key = 'a.txt'").pluck().get();
    expect(left).toBe(3); // a3, a4, a5
    expect(result.dropped).toHaveLength(2); // a1, a2
  }, 30_000);

  it('a policy without rules, a group not selected, and min_age_days keep everything', async () => {
    const group: Group = { name: 'g', sources: [] };
    const ids = await history(group);
    expect((await forget(repo, catalog, policyFor(group), { dryRun: true })).dropped).toHaveLength(0);
    const ruled: Group = { ...group, retention: { keepLast: 1 } };
    const other = await forget(repo, catalog, policyFor(ruled), { dryRun: true, group: 'elsewhere' });
    expect(other.forgotten).toHaveLength(0);
    expect(other.dropped).toHaveLength(0);
    const young = await forget(repo, catalog, policyFor({ ...group, retention: { keepLast: 1, minAgeDays: 7 } }), { dryRun: true });
    expect(young.verdicts.every((v) => v.keep)).toBe(true);
    expect(young.verdicts.map((v) => v.reasons.at(-1))).toEqual(ids.map(() => 'min-age'));
    expect(young.dropped).toHaveLength(0);
  }, 30_000);

  it('keeps the last clean run before an unacknowledged suspect run (pre-anomaly) with keep_last 1, until it is acknowledged', async () => {
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 1 } };
    await put('a.txt', 'a1');
    await put('b.txt', 'b1');
    const clean = (await backup(group)).runId;
    const before = await restoreRun(catalog, clean, 'before');
    await put('a.txt', 'ENCRYPTED');
    await del('b.txt');
    const incident = (await backup(group)).runId;
    // The verdict as the backup records it (detection itself is tested in anomaly-*.test.ts).
    recordRunAnomalies(catalog, catalog.findRun(incident)!.seq, {
      suspect: true,
      findings: [{ bucket: 'lake', partition: '', rules: ['overwritten', 'deleted'], reasons: ['overwrote 1 of 2 keys', 'deleted 1 of 2 keys'] }],
      partitions: [],
      flaggedObjects: 1,
    });
    await put('c.txt', 'c1');
    const after = (await backup(group)).runId;

    const dry = await forget(repo, catalog, policyFor(group), { dryRun: true });
    expect(dry.verdicts.map((v) => [v.run.id, v.keep, v.reasons])).toEqual([
      [clean, true, ['pre-anomaly']],
      [incident, true, ['suspect']],
      [after, true, ['latest', 'last-1']],
    ]);
    expect(dry.documents).toEqual([]);
    // Twice: a forget never ends the protection it gives (the suspect run is not forgotten).
    for (let i = 0; i < 2; i++) await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(catalog.listRuns().map((r) => r.id)).toEqual([clean, incident, after]);
    // Every version the clean state needs is still there: it restores as it did.
    expect(await restoreRun(catalog, clean, 'kept')).toEqual(before);

    // Once a person acknowledged the incident, the rules alone decide again.
    await acknowledgeRun(repo, catalog, catalog.findRun(incident)!, { note: 'restored by rollback' });
    const later = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(later.verdicts.map((v) => [v.run.id, v.keep])).toEqual([
      [clean, false],
      [incident, false],
      [after, true],
    ]);
    expect(catalog.listRuns().map((r) => r.id)).toEqual([after]);
  }, 30_000);

  it('keeps the last clean run after an incident acknowledgement until a clean run follows', async () => {
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 1 } };
    await put('a.txt', 'a1');
    const clean = (await backup(group)).runId;
    const before = await restoreRun(catalog, clean, 'before');
    await put('a.txt', 'ENCRYPTED');
    const incident = (await backup(group)).runId;
    recordRunAnomalies(catalog, catalog.findRun(incident)!.seq, {
      suspect: true,
      findings: [{ bucket: 'lake', partition: '', rules: ['overwritten'], reasons: ['overwrote 1 of 1 keys'] }],
      partitions: [],
      flaggedObjects: 1,
    });
    // Rolled back and acknowledged as an incident: its state is damage, so the clean one stays.
    await acknowledgeRun(repo, catalog, catalog.findRun(incident)!, { incident: true });
    const kept = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(kept.verdicts.map((v) => [v.run.id, v.keep, v.reasons])).toEqual([
      [clean, true, ['pre-anomaly']],
      [incident, true, ['latest', 'last-1']],
    ]);
    expect(await restoreRun(catalog, clean, 'kept')).toEqual(before);

    // A clean run follows: the rules alone decide again.
    await put('a.txt', 'a1');
    const after = (await backup(group)).runId;
    await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(catalog.listRuns().map((r) => r.id)).toEqual([after]);
  }, 30_000);

  it('an incident run forgotten still marks the runs that carried its damage: the clean run stays last-clean and kept', async () => {
    const group: Group = { name: 'g', sources: [], retention: { keepLast: 2 } };
    const suspect = (runId: string) =>
      recordRunAnomalies(catalog, catalog.findRun(runId)!.seq, {
        suspect: true,
        findings: [{ bucket: 'lake', partition: '', rules: ['overwritten'], reasons: ['overwrote 1 of 1 keys'] }],
        partitions: [],
        flaggedObjects: 1,
      });
    await put('a.txt', 'a1');
    const clean = (await backup(group)).runId;
    const before = await restoreRun(catalog, clean, 'before');
    await put('a.txt', 'ENCRYPTED');
    const incident = (await backup(group)).runId;
    suspect(incident);
    // Backed up before the incident was dealt with: it holds the damage, though nothing in it was flagged.
    await put('b.txt', 'b1');
    const carrier = (await backup(group)).runId;
    await acknowledgeRun(repo, catalog, catalog.findRun(incident)!, { incident: true });
    await put('note.txt', 'pay');
    const second = (await backup(group)).runId;
    suspect(second);
    const lastClean = () => lastCleanRun(catalog, ['g']).lastClean?.id;
    expect(lastClean()).toBe(clean);
    // keep_last 2 keeps the second suspect run and the carrier; the incident run goes.
    const first = await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(first.forgotten.map((r) => r.id)).toEqual([incident]);
    // Its acknowledgement still says the carrier's state is damage: the clean run stays last-clean, and kept.
    expect(lastClean()).toBe(clean);
    for (let i = 0; i < 2; i++) await forget(repo, catalog, policyFor(group), { dryRun: false });
    expect(catalog.listRuns().map((r) => r.id)).toEqual([clean, carrier, second]);
    expect(await restoreRun(catalog, clean, 'kept')).toEqual(before);
    // A host that never saw the incident's run learns its group and start from the acknowledgement.
    const fresh = Catalog.open(join(dir.path, 'fresh.db'), repo.id);
    try {
      await syncCatalog({ repo, catalog: fresh });
      expect(fresh.listRuns().map((r) => r.id)).toEqual([clean, carrier, second]);
      // The second run's verdict as its manifest would carry it (set above on this catalog only).
      recordRunAnomalies(fresh, fresh.findRun(second)!.seq, { suspect: true, findings: [{ bucket: 'lake', partition: '', rules: ['overwritten'], reasons: ['overwrote 1 of 1 keys'] }], partitions: [], flaggedObjects: 1 });
      expect(lastCleanRun(fresh, ['g']).lastClean?.id).toBe(clean);
    } finally {
      fresh.close();
    }
  }, 30_000);
});
