#!/usr/bin/env node
// Listing from an S3 Inventory report (docs/scale-out.md "Listing from S3 Inventory"): how fast
// a report's rows load into the scratch table and are listed back in S3 key order, and how big
// the scratch file is per row. The report (CSV gzip, AWS's column layout, keys URL-encoded,
// rows shuffled over several data files as AWS delivers them) is written to a local directory
// that stands for the destination bucket (FsStore), so only lakeguard's own work is timed.
//
//   npm run build && node --expose-gc bench/inventory-listing.mjs [--rows 200000] [--dir /tmp/lgbench-inventory]
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';

const { values: args } = parseArgs({ options: { rows: { type: 'string', default: '200000' }, dir: { type: 'string', default: '/tmp/lgbench-inventory' } } });
const rows = Number(args.rows);
const { FsStore } = await import('../dist/storage/fs-store.js');
const { openInventoryStore } = await import('../dist/engine/inventory-store.js');

rmSync(args.dir, { recursive: true, force: true });
const reportsDir = join(args.dir, 'reports');
const scratch = join(args.dir, 'scratch');
mkdirSync(reportsDir, { recursive: true });
mkdirSync(scratch, { recursive: true });
const reports = new FsStore({ root: reportsDir, fsync: false });

const prefix = 'inv/src-bucket/daily/';
const files = 8;
const entries = [];
// One data file at a time, so the generator's memory does not hide the reader's in peakRssMiB.
for (let n = 0; n < files; n++) {
  const lines = [];
  for (let i = 0; i < rows; i++) {
    if ((i * 7919) % files !== n) continue;
    const key = `table=t${i % 7}/dt=2026-11-${String((i % 28) + 1).padStart(2, '0')}/part-${String(i).padStart(8, '0')}.parquet`;
    const etag = createHash('md5').update(key).digest('hex');
    lines.push(`"src-bucket","${encodeURIComponent(key)}","${1000 + (i % 5000)}","2026-11-20T10:00:00.000Z","${etag}","STANDARD"`);
  }
  const body = gzipSync(Buffer.from(lines.join('\n') + '\n'));
  const key = `${prefix}data/part-${n}.csv.gz`;
  await reports.put(key, body);
  entries.push({ key, size: body.length, MD5checksum: createHash('md5').update(body).digest('hex') });
}
const manifest = { sourceBucket: 'src-bucket', destinationBucket: 'arn:aws:s3:::inv', version: '2016-11-30', creationTimestamp: String(Date.parse('2026-12-06T01:00:00Z')), fileFormat: 'CSV', fileSchema: 'Bucket, Key, Size, LastModifiedDate, ETag, StorageClass', files: entries };
await reports.put(`${prefix}2026-12-06T01-00Z/manifest.json`, Buffer.from(JSON.stringify(manifest)));
const gz = entries.reduce((n, e) => n + e.size, 0);

// RSS sampled while the report is loaded and listed (the generator's strings are garbage by then).
globalThis.gc?.();
const rssBefore = process.memoryUsage().rss;
let rssPeak = rssBefore;
const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 50);
const t0 = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
const store = await openInventoryStore(reports, 'src-bucket', { url: `s3://inv/${prefix}` }, { scratchDir: scratch, reportStore: reports });
const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
const dbDir = readdirSync(scratch).map((d) => join(scratch, d, 'listing.db'))[0];
const dbBytes = statSync(dbDir).size;
const t1 = process.hrtime.bigint();
let listed = 0;
for await (const item of store.list('')) if (item.kind === 'object') listed++;
const listMs = Number(process.hrtime.bigint() - t1) / 1e6;
const cpu = process.cpuUsage(cpu0);
clearInterval(sampler);
store.close();
if (listed !== rows) throw new Error(`listed ${listed} of ${rows}`);
const result = {
  rows,
  reportGzipBytes: gz,
  loadRowsPerSec: Math.round(rows / (loadMs / 1000)),
  listRowsPerSec: Math.round(rows / (listMs / 1000)),
  scratchBytesPerRow: Math.round(dbBytes / rows),
  cpuMsPerThousandRows: Math.round(((cpu.user + cpu.system) / 1000 / rows) * 1000 * 10) / 10,
  rssBeforeMiB: Math.round(rssBefore / 2 ** 20),
  rssPeakWhileReadingMiB: Math.round(rssPeak / 2 ** 20),
};
console.log(JSON.stringify(result));
rmSync(args.dir, { recursive: true, force: true });
