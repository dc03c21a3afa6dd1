// A forged S3 Inventory report on the real S3 server (docs/scale-out.md "What a report is trusted
// for"): whoever may write to the destination bucket writes the backup's listing. Reports are
// written with the project's report writer (test/helpers/inventory-report.ts, real CSV); runs are
// in-process (backupGroup) with S3 Inventory's lag margin at 0, so that a report made now speaks
// for objects written a moment before it. A report that leaves out a partition the bucket holds,
// or lists a rewritten object with its old ETag, is refused before the run records anything; a
// storage class the report makes up does not keep an object from being read.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestPage } from '../../src/catalog/backup-lookups.js';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { initRepo, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';
import { rowsOf, writeInventoryReport, type ReportRow } from '../helpers/inventory-report.js';
import { S3_TEST, createTestBucket, emptyAndDeleteBucket, testS3Store } from '../helpers/s3-env.js';

describe('a forged S3 Inventory report', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let reports: string;
  let repo: Repository;
  let catalog: Catalog;
  const group = { name: 'lake', sources: [] };

  beforeAll(async () => {
    dir = tempDir('it-inventory-forged');
    [source, reports] = await Promise.all([createTestBucket('lg-invf-src'), createTestBucket('lg-invf-rep')]);
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: null });
    catalog = openCatalog(join(dir.path, 'host'), repo);
  });

  afterAll(async () => {
    catalog?.close();
    await Promise.all([source, reports].filter((b) => b !== undefined).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('that leaves out keys or hides a change is refused; a made-up storage class does not stop a read', async () => {
    const bucket = testS3Store(source);
    const url = `s3://${reports}/reports/${source}/daily/`;
    const credentials = async () => ({ accessKeyId: S3_TEST.accessKeyId, secretAccessKey: S3_TEST.secretAccessKey });
    const opened = (inventory: boolean): OpenedSource => ({
      bucket: source,
      objectStore: testS3Store(source),
      prefixes: [''],
      isExcluded: () => false,
      ...(inventory ? { inventory: { url, endpoint: S3_TEST.endpoint, region: S3_TEST.region, credentials } } : {}),
    });
    const backup = (src: OpenedSource) => backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [src], inventoryLagMs: 0 });
    // A second ahead: S3's times have whole seconds, and the report must be after the writes it lists.
    const report = (rows: ReportRow[]) =>
      writeInventoryReport(testS3Store(reports), rows, { sourceBucket: source, destinationBucket: reports, prefix: `reports/${source}/daily/`, created: new Date(Date.now() + 1000), format: 'CSV', files: 2 });

    // 5 partitions of 5 keys, all backed up (LIST).
    const keys = Array.from({ length: 25 }, (_, i) => `p${Math.floor(i / 5)}/k${i % 5}.csv`);
    for (const key of keys) await bucket.put(key, Buffer.from(`a,b\n${key},1\n`));
    expect((await backup(opened(false))).counters.objectsNew).toBe(25);
    const seed = await rowsOf(bucket, false);

    // Without p2/, which the bucket holds: the run would record 5 keys deleted.
    await report(seed.filter((r) => !r.key.startsWith('p2/')));
    await expect(backup(opened(true))).rejects.toThrow(new RegExp(`does not list s3://${source}/p2/k\\d\\.csv, which the bucket holds .*: this run would record it deleted; S3 Inventory lists every such object as it is, so the report was altered or is damaged$`));

    // p1/k0 rewritten, listed with its old ETag: the run would not read it.
    await bucket.put('p1/k0.csv', Buffer.from('a,b\nrewritten,2\n'));
    await report(seed);
    await expect(backup(opened(true))).rejects.toThrow(new RegExp(`lists s3://${source}/p1/k0\\.csv with ETag [0-9a-f]{32} and size \\d+, but the bucket holds it with ETag [0-9a-f]{32} and size 16 .*: this run would not read it`));
    const latest = (key: string) => latestPage(catalog, source, key, true, `${key}\0`, 1)[0]!;
    expect(catalog.listRuns({ group: 'lake' }).length).toBe(1); // nothing recorded by the refused runs
    expect(latest('p2/k0.csv').deleteMarker).toBe(false);

    // A report as the bucket is, but p3/k0 (rewritten too) said to be in GLACIER: it is read all
    // the same (a GET of an archived object fails by itself), and recorded with its real ETag.
    await bucket.put('p3/k0.csv', Buffer.from('a,b\nrewritten,3\n'));
    await report((await rowsOf(bucket, false)).map((r) => (r.key === 'p3/k0.csv' ? { ...r, storageClass: 'GLACIER' } : r)));
    const run = await backup(opened(true));
    expect([run.status, run.counters.objectsChanged, run.counters.objectsFailed, run.counters.objectsDeleted]).toEqual(['complete', 2, 0, 0]);
    expect(latest('p3/k0.csv').etag).toBe((await bucket.head('p3/k0.csv')).etag);
  });
});
