// `lakeguard watch` and a nightly backup listed from S3 Inventory on the same group, on the real
// S3 server (docs/scale-out.md "Watch and reports"): watch's key-driven runs record
// changes made after the report (a create, an overwrite, a delete); the inventory backup after
// them must not be refused for them, must not take what they recorded back to the report's
// older state, and must still record what the report says changed before it was made. Runs
// are in-process (backupGroup with `keys`, as watch calls it); the reports are written with the
// project's report writer (test/helpers/inventory-report.ts).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestPage } from '../../src/catalog/backup-lookups.js';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { getBytes, type ObjectStore } from '../../src/storage/types.js';
import { initRepo, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';
import { rowsOf, writeInventoryReport, type ReportRow } from '../helpers/inventory-report.js';
import { S3_TEST, createTestBucket, emptyAndDeleteBucket, testS3Store } from '../helpers/s3-env.js';


/** Every current key of a store and its bytes. */
async function contentOf(store: ObjectStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const item of store.list('')) if (item.kind === 'object') out.set(item.key, (await getBytes(store, item.key)).toString());
  return out;
}

describe.each([
  ['an unversioned bucket', false, false],
  ['a versioned bucket (the versions of changed keys)', true, false],
  ['a versioned bucket (every version)', true, true],
] as const)('watch runs after the report, then a backup listed from it, in %s', (_, versioned, fullVersions) => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let reports: string;
  let repo: Repository;
  let catalog: Catalog;
  const group = { name: 'lake', sources: [] };

  beforeAll(async () => {
    dir = tempDir('it-inventory-watch');
    [source, reports] = await Promise.all([createTestBucket('lg-invw-src', versioned ? { versioning: true } : {}), createTestBucket('lg-invw-rep')]);
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: null });
    catalog = openCatalog(join(dir.path, 'host'), repo);
  });

  afterAll(async () => {
    catalog?.close();
    await Promise.all([source, reports].filter((b) => b !== undefined).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('records the changes watch saw after the report as they are, and the deletion before it', async () => {
    const bucket = testS3Store(source);
    const put = (key: string, body: string) => bucket.put(key, Buffer.from(body));
    const url = `s3://${reports}/reports/${source}/daily/`;
    const credentials = async () => ({ accessKeyId: S3_TEST.accessKeyId, secretAccessKey: S3_TEST.secretAccessKey });
    /** The source as a run opens it; `listed` is its own store (the run wraps it when it lists from the report). */
    const opened = (inventory: boolean): OpenedSource & { listed: ObjectStore } => {
      const listed = testS3Store(source);
      return { bucket: source, objectStore: listed, listed, prefixes: [''], isExcluded: () => false, ...(inventory ? { inventory: { url, endpoint: S3_TEST.endpoint, region: S3_TEST.region, credentials } } : {}) };
    };
    const backup = (src: OpenedSource, keys?: string[], full = false) =>
      // S3 Inventory's lag margin is 0 here: the report's time splits what the catalog knew before it from what watch saw after.
      backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [src], inventoryLagMs: 0, fullVersions: full, ...(keys === undefined ? {} : { keys: new Map([[source, keys]]) }) });

    // The seed (LIST) knows every key.
    const keys = ['a-keep', 'd-gone', 'o-report', 'o-watch', 'w-rolled', 'x-watch', 'z-keep', ...(versioned ? ['u-back'] : [])];
    for (const key of keys) await put(key, `${key} v1`);
    expect((await backup(opened(false))).counters.objectsNew).toBe(keys.length);

    // Before the report: a deletion and an overwrite, which the report shows. Versioned: u-back
    // deleted (watch records its delete marker), then the marker removed: v1 is current again.
    await bucket.delete('d-gone');
    await put('o-report', 'o-report v2');
    if (versioned) {
      await bucket.delete('u-back');
      expect((await backup(opened(false), ['u-back'])).counters.objectsDeleted).toBe(1);
      const marker = (await rowsOf(bucket, true)).find((r) => r.key === 'u-back' && r.isDeleteMarker === true)!;
      await bucket.delete('u-back', { versionId: marker.versionId! });
    }
    // The report: the bucket as it is now.
    const created = new Date();
    const beforeWatch = await rowsOf(bucket, versioned);

    // watch, after the report: a create, an overwrite, a delete and an overwrite, in one run by key.
    await put('c-new', 'c-new v1');
    await put('o-watch', 'o-watch v2');
    await bucket.delete('x-watch');
    await put('w-rolled', 'w-rolled v2');
    const watched = await backup(opened(false), ['c-new', 'o-watch', 'x-watch', 'w-rolled']);
    expect([watched.status, watched.counters.objectsNew, watched.counters.objectsChanged, watched.counters.objectsDeleted]).toEqual(versioned ? ['complete', 3, 0, 1] : ['complete', 1, 2, 1]);

    // The report's scan reached w-rolled after yet another overwrite (a rolling snapshot): newer than the catalog.
    await put('w-rolled', 'w-rolled v3');
    const rolled = (await rowsOf(bucket, versioned)).filter((r) => r.key === 'w-rolled');
    const rows: ReportRow[] = [...beforeWatch.filter((r) => r.key !== 'w-rolled'), ...rolled];
    await writeInventoryReport(testS3Store(reports), rows, { sourceBucket: source, destinationBucket: reports, prefix: `reports/${source}/daily/`, created, format: 'CSV', allVersions: versioned, files: 1 });

    const src = opened(true);
    const nightly = await backup(src, undefined, fullVersions);
    const c = nightly.counters;
    expect(nightly.status).toBe('complete');
    expect(c.inventory).toEqual({ [source]: created.toISOString() });
    // d-gone deleted, o-report and w-rolled read (new versions, in a versioned bucket); c-new,
    // o-watch, x-watch kept as watch recorded them.
    expect({ new: c.objectsNew, changed: c.objectsChanged, deleted: c.objectsDeleted, kept: c.objectsNewerThanReport, gone: c.objectsGoneSinceReport ?? 0, failed: c.objectsFailed }).toEqual({
      new: versioned ? 2 : 0,
      changed: versioned ? 0 : 2,
      deleted: 1,
      kept: 3,
      gone: 0,
      failed: 0,
    });
    expect(c.objectsReinstated ?? 0).toBe(versioned ? 1 : 0);
    expect(src.listed.stats.list).toBe(0);
    // What the report run found is valid from the report's time, before anything watch saw after
    // it (records of another host meet by time): d-gone's deletion (a versioned bucket's delete
    // marker has its own time), u-back's v1 current again.
    const latest = (key: string) => latestPage(catalog, source, key, true, `${key}\0`, 1)[0]!;
    expect([latest('d-gone').deleteMarker, versioned || latest('d-gone').validFrom === created.getTime()]).toEqual([true, true]);
    if (versioned) expect([latest('u-back').deleteMarker, latest('u-back').validFrom]).toEqual([false, created.getTime()]);

    // The latest state restores byte-identical to the bucket.
    const target = new MemStore({ name: 'restored' });
    const restored = await restore({ repo, catalog, scopes: [{ bucket: source, prefix: '' }], cut: { runSeq: catalog.latestRun({ statuses: ['complete'] })!.seq }, target, bucketDirs: false, concurrency: 4 });
    expect(restored.failures).toEqual([]);
    const want = await contentOf(bucket);
    expect([...want.keys()].sort()).toEqual(['a-keep', 'c-new', 'o-report', 'o-watch', ...(versioned ? ['u-back'] : []), 'w-rolled', 'z-keep']);
    expect(await contentOf(target)).toEqual(want);
  });
});
