// Listing without LIST (issue 20, section 2), end to end on the real S3 server through the CLI:
// a small Hive-partitioned Parquet lake (test/helpers/parquet-lake.ts) in a source bucket whose
// bucket policy DENIES ListBucket to everyone (the server enforces it: any LIST of the source
// would fail and make the run partial), an S3 Inventory report in AWS's format written by the
// test into another bucket (CSV gzip in one test, Parquet from hyparquet-writer in the other),
// `inventory:` in the policy. The seed and an incremental after an ordinary day (a new
// partition, rewrites, a compaction's deletions) both complete with exit 0 and record exactly
// the day's changes (a key deleted after the report counted as the report's lag); the restore
// is byte-identical to the lake, and a report older than the last run's is refused.
import { DeleteBucketPolicyCommand, DeleteObjectCommand, PutBucketPolicyCommand } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { reportFolder, writeInventoryReport, type ReportRow } from '../helpers/inventory-report.js';
import { createLake, modelSnapshot, ordinaryDay, snapshotBucket, type LiveObject } from '../helpers/parquet-lake.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, testS3Store, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();

/** What S3 Inventory would list for these keys now (HEAD each: the test may not LIST the source either). */
async function reportRows(bucket: string, keys: Iterable<string>): Promise<ReportRow[]> {
  const store = testS3Store(bucket);
  const rows: ReportRow[] = [];
  for (const key of keys) {
    const m = await store.head(key);
    rows.push({ key, size: m.size, lastModified: m.lastModified, etag: m.etag });
  }
  return rows;
}

function denyListing(bucket: string): Promise<unknown> {
  const statement = { Effect: 'Deny', Principal: '*', Action: ['s3:ListBucket', 's3:ListBucketVersions'], Resource: [`arn:aws:s3:::${bucket}`] };
  return s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [statement] }) }));
}

function differences(want: Map<string, LiveObject>, got: Map<string, LiveObject>): string[] {
  const out: string[] = [];
  for (const [k, w] of want) if (JSON.stringify(got.get(k)) !== JSON.stringify(w)) out.push(`${k}: ${JSON.stringify(got.get(k))}`);
  for (const k of got.keys()) if (!want.has(k)) out.push(`${k}: extra`);
  return out;
}

// The format-specific part is reading the report: the Parquet run stops after the incremental
// (restore and the stale report do not depend on the format, and the suite's time is tight).
describe.each([
  ['CSV', true],
  ['Parquet', false],
] as const)('backup listed from a %s S3 Inventory report', (format, full) => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let inventory: string;
  let repo: string;
  let policyFile: string;
  const buckets: string[] = [];
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'lake', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  beforeAll(async () => {
    dir = tempDir(`it-inventory-${format}`);
    [source, inventory, repo] = await Promise.all([createTestBucket('lg-inv-src'), createTestBucket('lg-inv-reports'), createTestBucket('lg-inv-repo')]);
    buckets.push(source, inventory, repo);
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repo}/lakeguard`, buckets: [source], extra: [`        inventory: s3://${inventory}/reports/${source}/daily/`] });
  });

  afterAll(async () => {
    await s3.send(new DeleteBucketPolicyCommand({ Bucket: source })).catch(() => {});
    await Promise.all(buckets.map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('backs up with zero LIST requests to the source and records the next report\'s changes', async () => {
    const lake = await createLake(s3, source, { seed: 20, days: 2, regions: ['eu'], salesFilesMax: 2, eventsFilesMax: 7 });
    await denyListing(source);
    // The test cannot wait for S3 Inventory's lag (an hour: what the catalog learnt within it of
    // a report is not contradicted by it), nor date a report in the future (refused): its reports
    // are dated two hours apart, the first in the past, and list every object as last modified
    // three hours before it was (the same shift in both, so an unchanged object stays unchanged).
    const SHIFT = 3 * 3_600_000;
    const report = (created: Date, keys: Iterable<string>) =>
      reportRows(source, keys).then((rows) =>
        writeInventoryReport(
          testS3Store(inventory),
          rows.map((r) => ({ ...r, lastModified: new Date(r.lastModified.getTime() - SHIFT) })),
          { sourceBucket: source, destinationBucket: inventory, prefix: `reports/${source}/daily/`, created, format, files: 2, rowGroupSize: 4 },
        ),
      );
    const minute = (): Date => new Date(Math.floor(Date.now() / 60_000) * 60_000);
    const firstReport = new Date(minute().getTime() - 2 * 3_600_000);
    await report(firstReport, lake.model.files.keys());
    expect((await cli('init')).code).toBe(0);

    // The Parquet seed runs as two shards: the plan is made from the report (no LIST either),
    // and each shard loads only its part of it.
    const seeds = full ? [await cli('backup', '--json')] : [await cli('backup', '--json', '--shards', '2', '--shard', '0', '--run-set', 'seed'), await cli('backup', '--json', '--shards', '2', '--shard', '1', '--run-set', 'seed')];
    for (const seed of seeds) {
      expect(seed.code, seed.stderr).toBe(0);
      const s = summaryOf(seed);
      expect(s.status).toBe('complete');
      expect(s.counters.objectsFailed).toBe(0);
      expect(s.counters.inventory).toEqual({ [source]: firstReport.toISOString() });
    }
    const perSeed = seeds.map((seed) => summaryOf(seed).counters.objectsNew as number);
    expect(perSeed.reduce((a, b) => a + b, 0)).toBe(lake.model.files.size);
    if (!full) expect(Math.min(...perSeed)).toBeGreaterThan(lake.model.files.size / 4);

    // An ordinary day, and the next report (two hours after the first).
    const before = modelSnapshot(lake.model);
    const day = await ordinaryDay(lake);
    const after = modelSnapshot(lake.model);
    const added = [...after.keys()].filter((k) => !before.has(k)).length;
    const deleted = [...before.keys()].filter((k) => !after.has(k)).length;
    const changed = [...after.keys()].filter((k) => before.has(k) && before.get(k)!.sha256 !== after.get(k)!.sha256).length;
    expect([added > 0, deleted > 0, changed > 0, day.deletes.length > 0]).toEqual([true, true, true, true]);
    const secondReport = minute();
    await report(secondReport, lake.model.files.keys());
    // Parquet run: one new key deleted after the report was made (the report's lag): not read,
    // counted, not a failure.
    const gone = full ? 0 : 1;
    if (!full) await s3.send(new DeleteObjectCommand({ Bucket: source, Key: [...after.keys()].find((k) => !before.has(k))! }));

    const incremental = await cli('backup', '--json');
    expect(incremental.code, incremental.stderr).toBe(0);
    const c = summaryOf(incremental).counters;
    expect([c.objectsNew, c.objectsChanged, c.objectsDeleted, c.objectsFailed, c.objectsGoneSinceReport ?? 0]).toEqual([added - gone, changed, deleted, 0, gone]);
    expect(c.inventory).toEqual({ [source]: secondReport.toISOString() });
    if (!full) return;
    const show = await cli('runs', 'show', summaryOf(incremental).runId);
    expect(show.stdout).toMatch(new RegExp(`^inventory +${source} listed from its S3 Inventory report of `, 'm'));

    const restore = await cli('restore', '--to', `s3://${inventory}/restored/`, '--json');
    expect(restore.code, restore.stderr).toBe(0);
    const restored = new Map([...(await snapshotBucket(s3, inventory, 'restored/'))].map(([k, v]) => [k.slice('restored/'.length), v]));
    expect(differences(modelSnapshot(lake.model), restored)).toEqual([]);

    // The same report again: nothing new, and the text says the listing is as of the report.
    const again = await cli('backup');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`^  inventory ${source} listed from its S3 Inventory report of ${secondReport.toISOString().replace('T', ' ').replace(/\./, '\\.')} `, 'm'));

    // The newest report withdrawn: the one left is older than what the last run knows.
    await s3.send(new DeleteObjectCommand({ Bucket: inventory, Key: `reports/${source}/daily/${reportFolder(secondReport)}/manifest.json` }));
    const stale = await cli('backup');
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain(`the newest S3 Inventory report of bucket ${source} (${firstReport.toISOString()}`);
  });
});
