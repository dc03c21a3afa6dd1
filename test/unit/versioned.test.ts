// Every version, any point in time, on an in-memory versioned bucket with a controlled clock:
// each version and delete marker is captured once, and the state at any instant is exact.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog, StateCut } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { initRepo, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';
import { selectState, statePage } from '../../src/catalog/restore-selection.js';
import { Catalog as CatalogClass } from '../../src/catalog/catalog.js';
import { CatalogQueries } from '../../src/catalog/queries.js';
import { forget } from '../../src/engine/forget.js';
import { rebuildCatalog } from '../../src/engine/rebuild.js';
import type { ListItem, ListOptions, ObjectEntry } from '../../src/storage/types.js';
import { StorageError } from '../../src/errors.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';

describe('versioned sources', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  let clock: number;
  let bucket: MemStore;
  const group: Group = { name: 'v', sources: [] };

  beforeEach(async () => {
    dir = tempDir('versioned');
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
  const backup = () =>
    backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source()] });
  const tick = (minutes: number) => (clock += minutes * 60_000);
  const restoreAt = async (cut: StateCut, name: string) => {
    const target = join(dir.path, name);
    const summary = await restore({ repo, catalog, scopes: [{ bucket: 'lake' }], cut, target: new FsStore({ root: target, fsync: false }), bucketDirs: false, concurrency: 4 });
    const path = join(target, 'orders/o.json');
    return { summary, content: existsSync(path) ? readFileSync(path, 'utf8') : null };
  };

  it('captures every version and delete marker once, across runs and within one run, and restores each instant', async () => {
    const instants: { at: number; want: string | null }[] = [{ at: clock - 1, want: null }];
    const put = async (body: string) => {
      tick(10);
      await bucket.put('orders/o.json', Buffer.from(body), { contentType: 'application/json' });
      instants.push({ at: clock + 1, want: body });
    };
    await bucket.put('other/keep.txt', Buffer.from('unrelated'));

    await put('v1');
    const r1 = await backup();
    expect(r1.counters).toMatchObject({ objectsNew: 2, objectsDeleted: 0 });

    await put('v2');
    await put('v3'); // two versions between runs: both captured
    const r2 = await backup();
    expect(r2.counters).toMatchObject({ objectsNew: 2, objectsUnchanged: 2 });

    tick(10);
    await bucket.delete('orders/o.json');
    instants.push({ at: clock + 1, want: null });
    await put('v4');
    const r3 = await backup();
    expect(r3.counters).toMatchObject({ objectsNew: 1, objectsDeleted: 1 });

    // Nothing new: no version is fetched again.
    const r4 = await backup();
    expect(r4.counters).toMatchObject({ objectsNew: 0, objectsDeleted: 0, bytesRead: 0, packsWritten: 0 });

    expect(instants.map((i) => i.want)).toEqual([null, 'v1', 'v2', 'v3', null, 'v4']);
    // Before the first version nothing existed: an empty selection is refused, never "0 of 0".
    await expect(restoreAt({ time: instants[0]!.at }, 'at-0')).rejects.toThrow(/nothing to restore: lake\/ held no objects/);
    for (const [n, { at, want }] of instants.entries()) {
      if (n === 0) continue;
      const { content } = await restoreAt({ time: at }, `at-${n}`);
      expect(content, `instant ${n}`).toBe(want);
    }
    // By run: run 2 recorded v2 and v3, so its state is v3.
    expect((await restoreAt({ runSeq: catalog.findRun(r2.runId)!.seq }, 'run2')).content).toBe('v3');
  });

  it('reads the null version of a key overwritten after versioning was enabled, not the current one', async () => {
    // Written before versioning was enabled: S3's "null" version. A GET without a version id
    // answers with the current version, which was recorded in its place: the null version was lost.
    bucket = new MemStore({ versioning: false, now: () => new Date(clock), name: 'lake' });
    await bucket.put('orders/o.json', Buffer.from('before versioning'), { tags: { era: 'old' } });
    const before = clock + 1;
    tick(10);
    bucket.setVersioning(true);
    await bucket.put('orders/o.json', Buffer.from('v2'), { tags: { era: 'new' } });
    const r1 = await backup();
    expect(r1.counters).toMatchObject({ objectsNew: 2, bytesRead: 'before versioning'.length + 2 });
    expect((await restoreAt({ time: before }, 'null')).content).toBe('before versioning');
    expect((await restoreAt({ time: clock + 1 }, 'now')).content).toBe('v2');
    selectState(catalog, [{ bucket: 'lake', key: 'orders/o.json' }], { time: before });
    expect(statePage(catalog, 0, 10).items.map((i) => [i.versionId, i.meta])).toEqual([[null, { tags: { era: 'old' } }]]);
    // `--version-id null` names it, as S3 does.
    selectState(catalog, [{ bucket: 'lake', key: 'orders/o.json', versionId: 'null' }], { time: clock + 1 });
    expect(statePage(catalog, 0, 10).items.map((i) => [i.versionId, i.size])).toEqual([[null, 'before versioning'.length]]);
  });

  it('a bucket whose versioning state is refused (s3:GetBucketVersioning) makes the run partial, never silently unversioned', async () => {
    await bucket.put('orders/o.json', Buffer.from('v1'));
    await bucket.put('orders/o.json', Buffer.from('v2'));
    const refusing = new (class extends StoreDecorator {
      override versioningEnabled(): Promise<boolean> {
        return Promise.reject(new StorageError('AccessDenied', 'GET versioning mem://lake/: AccessDenied (403)', { backendCode: 'AccessDenied' }));
      }
    })(bucket);
    const failures: string[] = [];
    const summary = await backupGroup({
      repo,
      catalog,
      policy: testPolicy(repo.location, [group]),
      group,
      sources: [{ bucket: 'lake', objectStore: refusing, prefixes: [''], isExcluded: () => false }],
      events: (e) => void (e.type === 'failure' && failures.push(e.message)),
    });
    // Listed as unversioned (v1 is not seen), and said so: partial, with the reason and the fix.
    expect(summary.status).toBe('partial');
    expect(summary.counters).toMatchObject({ objectsNew: 1, objectsFailed: 1 });
    expect(failures).toEqual([expect.stringMatching(/cannot tell whether bucket lake keeps versions.*grant s3:GetBucketVersioning/)]);
  });

  it('versions stamped with the same millisecond: the current one is the state, in the run and at that instant', async () => {
    // Concurrent writers: S3 lists them newest first, with one time (here every version of the
    // bucket). Another key ends deleted by a delete marker of that millisecond too.
    const stamp = new Date(clock);
    const sameTime = new (class extends StoreDecorator {
      override async *list(prefix: string, opts?: ListOptions): AsyncGenerator<ListItem> {
        for await (const item of this.inner.list(prefix, opts)) yield item.kind === 'object' ? { ...item, lastModified: stamp } : item;
      }
    })(bucket);
    for (const body of ['t1', 't2', 't3']) await bucket.put('orders/o.json', Buffer.from(body));
    await bucket.put('orders/gone.json', Buffer.from('g1'));
    await bucket.delete('orders/gone.json');
    const run = () => backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [{ ...source(), objectStore: sameTime }] });
    expect((await run()).counters).toMatchObject({ objectsNew: 4, objectsDeleted: 1 });
    const last = catalog.latestRun({ statuses: ['complete'] })!;
    for (const cut of [{ runSeq: last.seq }, { time: stamp.getTime() }]) {
      selectState(catalog, [{ bucket: 'lake', prefix: 'orders/' }], cut);
      expect(statePage(catalog, 0, 10).items.map((i) => i.key)).toEqual(['orders/o.json']);
      expect((await restoreAt(cut, `tie-${'time' in cut ? 'time' : 'run'}`)).content).toBe('t3');
    }
    // The catalog's newest version is the bucket's current one: nothing to reinstate.
    const again = await run();
    expect(again.counters).toMatchObject({ objectsNew: 0 });
    expect(again.counters.objectsReinstated ?? 0).toBe(0);
    // An incremental (the changed key's versions only) finds two more of that millisecond.
    for (const body of ['t4', 't5']) await bucket.put('orders/o.json', Buffer.from(body));
    expect((await run()).counters).toMatchObject({ versionListing: 'changed', objectsNew: 2 });
    expect((await restoreAt({ runSeq: catalog.latestRun({ statuses: ['complete'] })!.seq }, 'tie-incremental')).content).toBe('t5');
  });

  it('records the S3 version id, metadata and tags of each version', async () => {
    await bucket.put('t/a.csv', Buffer.from('a,b\n'), { contentType: 'text/csv', cacheControl: 'max-age=60', metadata: { owner: 'finance' }, tags: { pii: 'no' } });
    const head = await bucket.head('t/a.csv');
    await backup();
    const run = catalog.latestRun({ statuses: ['complete'] })!;
    selectState(catalog, [{ bucket: 'lake', key: 't/a.csv' }], { runSeq: run.seq });
    const [item] = statePage(catalog, 0, 10).items;
    expect(item!.versionId).toBe(head.versionId);
    expect(item!.meta).toEqual({ contentType: 'text/csv', cacheControl: 'max-age=60', metadata: { owner: 'finance' }, tags: { pii: 'no' } });
  });

  describe('the catalog follows the bucket\'s current state', () => {
    const listVersions = async (key: string): Promise<ObjectEntry[]> => {
      const out: ObjectEntry[] = [];
      for await (const e of bucket.list(key, { versions: true })) if (e.kind === 'object' && e.key === key) out.push(e);
      return out;
    };
    /** The key's records: [versionId, deleteMarker] oldest first. */
    const records = (cat: Catalog, key: string) =>
      new CatalogQueries(cat).versionsOf('lake', key, { limit: 100 }).items.map((v) => [v.versionId, v.deleteMarker]).reverse();
    const contentAtRun = async (runId: string, key: string, name: string) => {
      const target = join(dir.path, name);
      await restore({ repo, catalog, scopes: [{ bucket: 'lake', key }], cut: { runSeq: catalog.findRun(runId)!.seq }, target: new FsStore({ root: target, fsync: false }), bucketDirs: false, concurrency: 2 }).catch(() => undefined);
      const path = join(target, key);
      return existsSync(path) ? readFileSync(path, 'utf8') : null;
    };

    it('a removed delete marker reinstates the version it hid: recorded again, nothing read, and a rebuild agrees', async () => {
      await bucket.put('d/a.txt', Buffer.from('alpha'));
      await bucket.put('d/b.txt', Buffer.from('beta'));
      await backup();
      tick(1);
      await bucket.delete('d/a.txt');
      expect((await backup()).counters).toMatchObject({ objectsNew: 0, objectsDeleted: 1 });
      const marker = (await listVersions('d/a.txt')).find((v) => v.isDeleteMarker)!;
      await bucket.delete('d/a.txt', { versionId: marker.versionId! });

      const r3 = await backup();
      expect(r3.counters).toMatchObject({ objectsNew: 0, objectsChanged: 0, objectsDeleted: 0, objectsReinstated: 1, bytesRead: 0 });
      expect(await contentAtRun(r3.runId, 'd/a.txt', 'r3')).toBe('alpha');
      const [v1] = await listVersions('d/a.txt');
      expect(records(catalog, 'd/a.txt')).toEqual([[v1!.versionId, false], [marker.versionId, true], [v1!.versionId, false]]);

      // Nothing changed since: nothing recorded, nothing reinstated again.
      const r4 = await backup();
      expect(r4.counters).toMatchObject({ objectsNew: 0, objectsDeleted: 0, bytesRead: 0 });
      expect(r4.counters.objectsReinstated ?? 0).toBe(0);
      expect(records(catalog, 'd/a.txt')).toHaveLength(3);

      // The run's records carry the reinstatement: a catalog rebuilt from the repository has the same history.
      const rebuilt = join(dir.path, 'rebuilt.db');
      await rebuildCatalog({ repo, catalogPath: rebuilt });
      const other = CatalogClass.open(rebuilt, repo.id);
      try {
        expect(records(other, 'd/a.txt')).toEqual(records(catalog, 'd/a.txt'));
      } finally {
        other.close();
      }
    });

    it('forget drops the first record of a reinstated version, keeps the reinstatement; nothing is captured again; a rebuild agrees', async () => {
      await bucket.put('f/a.txt', Buffer.from('alpha'));
      await backup();
      tick(1);
      await bucket.delete('f/a.txt');
      await backup();
      const marker = (await listVersions('f/a.txt')).find((v) => v.isDeleteMarker)!;
      await bucket.delete('f/a.txt', { versionId: marker.versionId! });
      const r3 = await backup();
      expect(r3.counters.objectsReinstated).toBe(1);

      const done = await forget(repo, catalog, testPolicy(repo.location, [{ ...group, retention: { keepLast: 1 }, sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }] }]), { dryRun: false });
      expect(done.dropped.length).toBe(2); // the first record and the delete marker; the reinstatement stays
      const [v1] = await listVersions('f/a.txt');
      expect(records(catalog, 'f/a.txt')).toEqual([[v1!.versionId, false]]);
      expect(await contentAtRun(r3.runId, 'f/a.txt', 'f-r3')).toBe('alpha');

      const r4 = await backup();
      expect(r4.counters).toMatchObject({ objectsNew: 0, objectsDeleted: 0, bytesRead: 0 });
      expect(r4.counters.objectsReinstated ?? 0).toBe(0);

      const rebuilt = join(dir.path, 'rebuilt-f.db');
      await rebuildCatalog({ repo, catalogPath: rebuilt });
      const other = CatalogClass.open(rebuilt, repo.id);
      try {
        expect(records(other, 'f/a.txt')).toEqual([[v1!.versionId, false]]);
      } finally {
        other.close();
      }
    });

    it('a permanently deleted newest version reinstates the previous one; a delete marker current again deletes the key', async () => {
      await bucket.put('k/x.txt', Buffer.from('x1'));
      await backup();
      tick(1);
      await bucket.put('k/x.txt', Buffer.from('x2'));
      await backup();
      const [newest] = await listVersions('k/x.txt');
      await bucket.delete('k/x.txt', { versionId: newest!.versionId! });
      const r3 = await backup();
      expect(r3.counters).toMatchObject({ objectsNew: 0, objectsReinstated: 1, bytesRead: 0 });
      expect(await contentAtRun(r3.runId, 'k/x.txt', 'x-r3')).toBe('x1');

      // Delete (a marker), back up, write again, back up, then remove the new version: the marker is current again.
      tick(1);
      await bucket.delete('k/x.txt');
      await backup();
      tick(1);
      await bucket.put('k/x.txt', Buffer.from('x3'));
      await backup();
      const [x3] = await listVersions('k/x.txt');
      await bucket.delete('k/x.txt', { versionId: x3!.versionId! });
      const r6 = await backup();
      expect(r6.counters).toMatchObject({ objectsNew: 0, objectsReinstated: 1 });
      expect(await contentAtRun(r6.runId, 'k/x.txt', 'x-r6')).toBeNull();
      expect(records(catalog, 'k/x.txt').at(-1)).toEqual([(await listVersions('k/x.txt'))[0]!.versionId, true]);
    });

    it('a live key with no version left in the listing is recorded as deleted, also when its whole prefix vanished', async () => {
      await bucket.put('p/keep.txt', Buffer.from('keep'));
      await bucket.put('p/gone.txt', Buffer.from('gone'));
      await bucket.put('p/sub/only.txt', Buffer.from('only'));
      await backup();
      for (const key of ['p/gone.txt', 'p/sub/only.txt']) for (const v of await listVersions(key)) await bucket.delete(key, { versionId: v.versionId! });
      const r2 = await backup();
      expect(r2.counters).toMatchObject({ objectsNew: 0, objectsDeleted: 2 });
      expect(await contentAtRun(r2.runId, 'p/gone.txt', 'g')).toBeNull();
      expect(await contentAtRun(r2.runId, 'p/sub/only.txt', 's')).toBeNull();
      expect(await contentAtRun(r2.runId, 'p/keep.txt', 'k')).toBe('keep');
      // Recorded once: the next run sees nothing to do.
      const r3 = await backup();
      expect(r3.counters).toMatchObject({ objectsNew: 0, objectsDeleted: 0 });
      expect(r3.counters.objectsReinstated ?? 0).toBe(0);
    });
  });
});
