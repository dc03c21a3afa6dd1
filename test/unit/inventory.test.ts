// Listing from S3 Inventory reports: reports in AWS's format written by the test (CSV gzip with
// zlib, Parquet with hyparquet-writer) into a MemStore standing for the destination bucket; the
// InventoryStore's listings must equal what the bucket itself lists (MemStore has S3's listing
// semantics), for every listing shape the scan uses.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { InventoryListing } from '../../src/catalog/inventory-listing.js';
import { inventoryRows, splitCsvLine, type InventoryReadStats } from '../../src/engine/inventory-files.js';
import { newestInventoryReport } from '../../src/engine/inventory-report.js';
import { openInventoryStore, type InventoryStore } from '../../src/engine/inventory-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import type { ListItem, ListOptions, ObjectStore } from '../../src/storage/types.js';
import { reportFolder, rowsOf, writeInventoryReport, type ReportOptions } from '../helpers/inventory-report.js';

const scratch = mkdtempSync(join(tmpdir(), 'lakeguard-inventory-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Keys that exercise S3's order and the CSV encoding: spaces, '+', '%', commas, quotes, astral and high-BMP characters. */
const KEYS = [
  'a.txt',
  'dir/x 1.csv',
  'dir/x+2.csv',
  'dir/sub/deep/f%41.txt',
  'dir/sub/g,"q".txt',
  'dir/zz',
  'emoji/\u{1F600}.txt',
  'emoji/\uFFFD.txt',
  'emoji/\u00e9.txt',
  'z/last',
  ...Array.from({ length: 45 }, (_, i) => `many/p${String(i % 5)}/obj-${String(i).padStart(3, '0')}`),
];

async function sourceWith(keys: readonly string[], versioning = false): Promise<MemStore> {
  const store = new MemStore({ versioning, name: 'mem://src/' });
  for (const key of keys) await store.put(key, Buffer.from(`body of ${key}`));
  return store;
}

async function collect(items: AsyncIterable<ListItem>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const item of items) out.push(item.kind === 'prefix' ? item : { ...item, lastModified: item.lastModified.getTime() });
  return out;
}

function options(format: ReportOptions['format'], created: Date, extra: Partial<ReportOptions> = {}): ReportOptions {
  return { sourceBucket: 'src-bucket', destinationBucket: 'inv-bucket', prefix: 'reports/src-bucket/daily/', created, format, ...extra };
}

async function open(reports: ObjectStore, extra: { range?: { after?: string; upTo?: string }; readStats?: InventoryReadStats } = {}): Promise<InventoryStore> {
  return openInventoryStore(new MemStore(), 'src-bucket', { url: 's3://inv-bucket/reports/src-bucket/daily/' }, { scratchDir: scratch, reportStore: reports, ...extra });
}

/** Every listing shape the scan makes, from the store and from its report, side by side. */
const SHAPES: [string, ListOptions][] = [
  ['', {}],
  ['', { delimiter: '/' }],
  ['dir/', { delimiter: '/' }],
  ['dir/', {}],
  ['many/', { startAfter: 'many/p2/obj-017' }],
  ['', { startAfter: 'dir/sub/deep/f%41.txt', delimiter: '/' }],
  ['emoji/', {}],
  ['nothing/', {}],
];

describe.each(['CSV', 'Parquet'] as const)('a %s report', (format) => {
  it('lists exactly what the bucket lists, in S3 key order, with every listing shape', async () => {
    const source = await sourceWith(KEYS);
    const reports = new MemStore();
    await writeInventoryReport(reports, await rowsOf(source, false), options(format, new Date('2026-12-05T01:00:00Z'), { files: 3, rowGroupSize: 8 }));
    const store = await open(reports);
    try {
      for (const [prefix, opts] of SHAPES) {
        expect(await collect(store.list(prefix, opts)), `${prefix} ${JSON.stringify(opts)}`).toEqual(await collect(source.list(prefix, opts)));
      }
    } finally {
      store.close();
    }
  });

  it('lists every version and delete marker of an "All versions" report as ListObjectVersions does', async () => {
    const source = await sourceWith(KEYS.slice(0, 10), true);
    await source.put('a.txt', Buffer.from('second'));
    await source.put('dir/zz', Buffer.from('second'));
    await source.delete('dir/zz');
    await source.delete('z/last');
    const reports = new MemStore();
    await writeInventoryReport(reports, await rowsOf(source, true), options(format, new Date('2026-12-05T01:00:00Z'), { allVersions: true }));
    const store = await open(reports);
    try {
      expect(store.report.allVersions).toBe(true);
      for (const opts of [{ versions: true }, { versions: true, delimiter: '/' }, { versions: true, startAfter: 'a.txt' }] as ListOptions[]) {
        expect(await collect(store.list('', opts)), JSON.stringify(opts)).toEqual(await collect(source.list('', opts)));
      }
      // Current objects: as ListObjectsV2 lists them, without version ids (MemStore names them).
      const current = (await collect(source.list('', {}))).map((e) => ({ ...(e as object), versionId: null }));
      expect(await collect(store.list('', {}))).toEqual(current);
    } finally {
      store.close();
    }
  });

  it('loads only the rows of a shard key range', async () => {
    const source = await sourceWith(KEYS);
    const reports = new MemStore();
    await writeInventoryReport(reports, await rowsOf(source, false), options(format, new Date('2026-12-05T01:00:00Z'), { files: 2, rowGroupSize: 5 }));
    const stats: InventoryReadStats = { filesRead: 0, filesSkipped: 0, rowGroupsRead: 0, rowGroupsSkipped: 0 };
    const [after, upTo] = ['many/p2/obj-002', 'many/p2/obj-047'];
    const store = await open(reports, { range: { after, upTo }, readStats: stats });
    try {
      const keys = (await collect(store.list('', {}))).map((e) => (e as { key: string }).key);
      expect(keys).toEqual(KEYS.filter((k) => k > after && k <= upTo).sort());
      expect(keys.length).toBe(8);
      if (format === 'Parquet') {
        // Row groups of 5 keys: the statistics leave most of them out of the range.
        expect(stats.rowGroupsSkipped).toBeGreaterThan(stats.rowGroupsRead);
        expect(stats.rowGroupsRead).toBeGreaterThan(0);
      } else {
        expect(stats.filesRead).toBe(2); // CSV files are read and filtered
      }
    } finally {
      store.close();
    }
  });

  it('lists a row the report repeats once, and refuses a key it lists twice as different objects', async () => {
    const source = await sourceWith(KEYS.slice(0, 6));
    const rows = await rowsOf(source, false);
    // Every row twice, in two files (a manifest naming its data files twice): S3 lists each key once.
    const reports = new MemStore();
    await writeInventoryReport(reports, [...rows, ...rows], options(format, new Date('2026-12-05T01:00:00Z'), { files: 2 }));
    const store = await open(reports);
    try {
      for (const opts of [{}, { delimiter: '/' }]) expect(await collect(store.list('', opts))).toEqual(await collect(source.list('', opts)));
    } finally {
      store.close();
    }
    const other = new MemStore();
    await writeInventoryReport(other, [...rows, { ...rows[0]!, etag: 'f'.repeat(32) }], options(format, new Date('2026-12-05T01:00:00Z')));
    const twice = await open(other);
    try {
      await expect(collect(twice.list('', {}))).rejects.toThrow(/^S3 Inventory report s3:\/\/inv-bucket\/\S+ lists key "a\.txt" twice, as two different objects, which S3 Inventory never does$/);
    } finally {
      twice.close();
    }
  });

  it('refuses a data file whose MD5 does not match the manifest', async () => {
    const source = await sourceWith(KEYS.slice(0, 5));
    const reports = new MemStore();
    const manifestKey = await writeInventoryReport(reports, await rowsOf(source, false), options(format, new Date('2026-12-05T01:00:00Z'), { files: 1, checksum: false }));
    const manifest = JSON.parse((await readKey(reports, manifestKey)).toString()) as { files: { key: string; MD5checksum: string }[] };
    manifest.files[0]!.MD5checksum = '0'.repeat(32);
    await reports.put(manifestKey, Buffer.from(JSON.stringify(manifest)));
    await expect(open(reports)).rejects.toThrow(new RegExp(`^S3 Inventory data file reports/src-bucket/daily/data/.* of report s3://inv-bucket/reports/src-bucket/daily/2026-12-05T01-00Z/manifest.json: MD5 [0-9a-f]{32} does not match the manifest's MD5checksum 0{32}$`));
    expect(readdirSync(scratch)).toEqual([]); // the scratch files went with it
  });
});

describe('finding and reading a report', () => {
  it('takes the newest dated folder that has a manifest, and checks manifest.checksum', async () => {
    const reports = new MemStore();
    const source = await sourceWith(['old-only']);
    await writeInventoryReport(reports, await rowsOf(source, false), options('CSV', new Date('2026-12-04T01:00:00Z')));
    await source.put('newer', Buffer.from('x'));
    await writeInventoryReport(reports, await rowsOf(source, false), options('CSV', new Date('2026-12-05T01:00:00Z')));
    // A report still being delivered: its data files but no manifest.json yet.
    await reports.put('reports/src-bucket/daily/2026-12-06T01-00Z/manifest.checksum', Buffer.from('x'));
    const at = { bucket: 'inv-bucket', prefix: 'reports/src-bucket/daily/' };
    const report = await newestInventoryReport(reports, at, 'src-bucket');
    expect(report.created.toISOString()).toBe('2026-12-05T01:00:00.000Z');
    expect(report.location).toBe('s3://inv-bucket/reports/src-bucket/daily/2026-12-05T01-00Z/manifest.json');
    expect(report.columns).toEqual(['Bucket', 'Key', 'Size', 'LastModifiedDate', 'ETag', 'StorageClass', 'IsMultipartUploaded']);

    await reports.put('reports/src-bucket/daily/2026-12-05T01-00Z/manifest.checksum', Buffer.from('0'.repeat(32)));
    await expect(newestInventoryReport(reports, at, 'src-bucket')).rejects.toThrow(
      /^S3 Inventory manifest s3:\/\/inv-bucket\/reports\/src-bucket\/daily\/2026-12-05T01-00Z\/manifest.json does not match its manifest.checksum \(MD5 [0-9a-f]{32}, expected 0{32}\)$/,
    );
  });

  it('says in one line what is wrong: no report, another bucket\'s report, ORC', async () => {
    const reports = new MemStore();
    const at = { bucket: 'inv-bucket', prefix: 'reports/src-bucket/daily/' };
    const none = await failure(newestInventoryReport(reports, at, 'src-bucket'));
    expect(none.message).toBe('no S3 Inventory report at s3://inv-bucket/reports/src-bucket/daily/: no dated folder (YYYY-MM-DDTHH-MMZ/) with a manifest.json');
    expect(none.hint).toMatch(/point inventory: at <destination prefix>\/src-bucket\/<configuration id>\//);

    await writeInventoryReport(reports, [], { ...options('CSV', new Date('2026-12-05T01:00:00Z')), sourceBucket: 'other-bucket' });
    await expect(newestInventoryReport(reports, at, 'src-bucket')).rejects.toThrow(/manifest.json: lists bucket "other-bucket", not the source bucket src-bucket$/);

    await writeInventoryReport(reports, [], options('ORC', new Date('2026-12-06T01:00:00Z')));
    const orc = await failure(newestInventoryReport(reports, at, 'src-bucket'));
    expect(orc.message).toBe('S3 Inventory report s3://inv-bucket/reports/src-bucket/daily/2026-12-06T01-00Z/manifest.json is in ORC, which lakeguard does not read');
    expect(orc.hint).toBe("set the inventory configuration's output format to CSV or Apache Parquet; the next report is then read");
  });

  it.each(['CSV', 'Parquet'] as const)('a %s data file the manifest names but the bucket lacks fails the load, naming the file and the report', async (format) => {
    const reports = new MemStore();
    await writeInventoryReport(reports, await rowsOf(await sourceWith(['a', 'b']), false), options(format, new Date('2026-12-05T01:00:00Z'), { files: 2 }));
    const data: string[] = [];
    for await (const item of reports.list('reports/src-bucket/daily/data/')) if (item.kind === 'object') data.push(item.key);
    await reports.delete(data[0]!);
    const err = await failure(open(reports));
    expect(err.message).toMatch(new RegExp(`^S3 Inventory data file ${data[0]!.replace(/[.]/g, '\\.')} of report s3://inv-bucket/reports/src-bucket/daily/2026-12-05T01-00Z/manifest\\.json: .*NoSuchKey \\(404\\)\\)?$`));
    expect(err.hint).toMatch(/run the backup again .*remove the inventory: line to list the bucket$/);
    expect((err as { exitCode?: number }).exitCode).toBe(1);
  });

  it('streams CSV rows with URL-decoded keys in fileSchema order', async () => {
    const reports = new MemStore();
    const created = new Date('2026-12-05T01:00:00Z');
    await writeInventoryReport(reports, [{ key: 'a b+c%/é,"x".txt', size: 7, lastModified: created, etag: 'abc', storageClass: 'GLACIER' }], options('CSV', created, { files: 1 }));
    const report = await newestInventoryReport(reports, { bucket: 'inv-bucket', prefix: 'reports/src-bucket/daily/' }, 'src-bucket');
    const rows = [];
    for await (const row of inventoryRows(reports, report, { spoolDir: scratch })) rows.push(row);
    expect(rows).toEqual([{ key: 'a b+c%/é,"x".txt', versionId: null, isLatest: true, isDeleteMarker: false, size: 7, lastModified: created.getTime(), etag: 'abc', storageClass: 'GLACIER' }]);
    expect(splitCsvLine('"a","b ""q""",c,')).toEqual(['a', 'b "q"', 'c', '']);
    expect(splitCsvLine('"open')).toBeNull();
  });

  it('refuses a data file with a row of another bucket than the manifest names, CSV and Parquet', async () => {
    for (const format of ['CSV', 'Parquet'] as const) {
      const reports = new MemStore();
      const created = new Date('2026-12-05T01:00:00Z');
      const row = (key: string, bucket?: string) => ({ key, size: 1, lastModified: created, etag: 'e', ...(bucket === undefined ? {} : { bucket }) });
      await writeInventoryReport(reports, [row('a'), row('b', 'other-bucket'), row('c')], options(format, created, { files: 1 }));
      const report = await newestInventoryReport(reports, { bucket: 'inv-bucket', prefix: 'reports/src-bucket/daily/' }, 'src-bucket');
      const err = await failure((async () => {
        for await (const _ of inventoryRows(reports, report, { spoolDir: scratch })) void _;
      })());
      expect(err.message, format).toMatch(new RegExp(`^S3 Inventory data file \\S+ of report \\S+: (line|row) \\d+ names bucket "other-bucket", not the report's source bucket src-bucket$`));
    }
  });

  it('pages through a key with more versions than a page', async () => {
    const listing = new InventoryListing(join(scratch, 'many-versions.db'));
    try {
      for (let i = 0; i < 2500; i++) listing.add({ key: 'hot', versionId: `v${i}`, isLatest: i === 2499, isDeleteMarker: false, size: 1, lastModified: i, etag: 'e' });
      listing.add({ key: 'next', versionId: 'n', isLatest: true, isDeleteMarker: false, size: 1, lastModified: 1, etag: 'e' });
      listing.finishLoad();
      const reports = new MemStore();
      const store = new (await import('../../src/engine/inventory-store.js')).InventoryStore(new MemStore(), listing, {} as never, reports);
      const versions = (await collect(store.list('', { versions: true }))) as { key: string; versionId: string }[];
      expect(versions.length).toBe(2501);
      expect(versions[0]!.versionId).toBe('v2499');
      expect(new Set(versions.map((v) => v.versionId)).size).toBe(2501);
      expect(versions.at(-1)!.key).toBe('next');
    } finally {
      listing.close();
    }
  });
});

describe('a report written by someone other than S3 Inventory (docs/scale-out.md "What a report is trusted for")', () => {
  const at = { bucket: 'inv-bucket', prefix: 'reports/src-bucket/daily/' };
  /** A report made an hour ago, whose manifest `change` rewrites (no manifest.checksum: the writer would write a matching one). */
  async function forged(change: (m: Record<string, unknown> & { files: { key: string; MD5checksum: string }[] }) => void): Promise<MemStore> {
    const reports = new MemStore();
    const key = await writeInventoryReport(reports, await rowsOf(await sourceWith(['a', 'b']), false), options('CSV', new Date(Date.now() - 3_600_000), { files: 1, checksum: false }));
    const manifest = JSON.parse((await readKey(reports, key)).toString()) as Record<string, unknown> & { files: { key: string; MD5checksum: string }[] };
    change(manifest);
    await reports.put(key, Buffer.from(JSON.stringify(manifest)));
    return reports;
  }

  it('dated in the future is refused: by its folder (it would stay the newest) or by its creationTimestamp', async () => {
    const ahead = new Date(Date.now() + 86_400_000);
    const reports = new MemStore();
    await writeInventoryReport(reports, [], options('CSV', new Date(Date.now() - 3_600_000)));
    await writeInventoryReport(reports, [], options('CSV', ahead));
    const folder = await failure(newestInventoryReport(reports, at, 'src-bucket'));
    expect(folder.message).toMatch(new RegExp(`^S3 Inventory report s3://inv-bucket/reports/src-bucket/daily/${reportFolder(ahead)}/: its folder is dated later than now \\(.*\\), which S3 Inventory never does$`));
    expect(folder.hint).toMatch(/not written by S3 Inventory .*"What a report is trusted for"/);

    const stamped = await forged((m) => (m.creationTimestamp = String(ahead.getTime())));
    const created = await failure(newestInventoryReport(stamped, at, 'src-bucket'));
    expect(created.message).toMatch(new RegExp(`^S3 Inventory report .*/manifest\\.json: its creationTimestamp is ${ahead.toISOString().replace(/\./g, '\\.')}, later than now`));
    // Within S3's own tolerance for clocks (15 minutes), a report made "now" by a clock a little ahead is read.
    const skewed = await forged((m) => (m.creationTimestamp = String(Date.now() + 10 * 60_000)));
    expect((await newestInventoryReport(skewed, at, 'src-bucket')).files.length).toBe(1);
  });

  it('naming a data file outside its configuration folder is refused before it is read', async () => {
    for (const key of ['other/secrets.csv.gz', 'reports/src-bucket/daily-other/data/x.csv.gz', 'reports/src-bucket/daily/']) {
      const reports = await forged((m) => (m.files[0]!.key = key));
      await reports.put(key, Buffer.from('not read'));
      const getsBefore = reports.stats.get;
      const err = await failure(newestInventoryReport(reports, at, 'src-bucket'));
      expect(err.message).toMatch(new RegExp(`^S3 Inventory manifest s3://inv-bucket/.*/manifest\\.json names data file ${JSON.stringify(key).replace(/[.]/g, '\\.')}, outside the configuration folder s3://inv-bucket/reports/src-bucket/daily/$`));
      expect(reports.stats.get - getsBefore).toBe(2); // manifest.json and manifest.checksum, not the file
    }
  });

  it('with a manifest larger than any S3 Inventory writes is refused without reading it whole', async () => {
    const reports = await forged(() => {});
    const { MANIFEST_MAX_BYTES } = await import('../../src/engine/inventory-report.js');
    const folder = `reports/src-bucket/daily/${reportFolder(new Date(Date.now() - 60_000))}/`;
    await reports.put(`${folder}manifest.json`, Buffer.alloc(MANIFEST_MAX_BYTES + 1, 0x20));
    const err = await failure(newestInventoryReport(reports, at, 'src-bucket'));
    expect(err.message).toBe(`S3 Inventory manifest s3://inv-bucket/${folder}manifest.json is larger than ${MANIFEST_MAX_BYTES} bytes, which no S3 Inventory manifest is`);
  });

  it('with a CSV line longer than any row is refused without holding it', async () => {
    const { gzipSync } = await import('node:zlib');
    const { createHash } = await import('node:crypto');
    const { CSV_LINE_MAX_BYTES } = await import('../../src/engine/inventory-files.js');
    // One line of 2 MiB and more (a few KiB of gzip), then a good row.
    const body = gzipSync(Buffer.from(`"src-bucket","${'a'.repeat(2 * CSV_LINE_MAX_BYTES)}","1","2026-12-05T01:00:00.000Z","e","STANDARD","false"\n"src-bucket","b","1","2026-12-05T01:00:00.000Z","e","STANDARD","false"\n`));
    const reports = await forged((m) => (m.files[0]!.MD5checksum = createHash('md5').update(body).digest('hex')));
    const report = await newestInventoryReport(reports, at, 'src-bucket');
    await reports.put(report.files[0]!.key, body);
    const rows: unknown[] = [];
    const err = await failure((async () => {
      for await (const row of inventoryRows(reports, report, { spoolDir: scratch })) rows.push(row);
    })());
    expect(err.message).toBe(`S3 Inventory data file ${report.files[0]!.key} of report ${report.location}: has a line longer than ${CSV_LINE_MAX_BYTES} bytes, which no S3 Inventory CSV has (a key is at most 1,024 bytes)`);
    expect(rows).toEqual([]);
  });
});

async function readKey(store: ObjectStore, key: string): Promise<Buffer> {
  const { body } = await store.get(key);
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function failure(p: Promise<unknown>): Promise<Error & { hint?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { hint?: string };
  }
  throw new Error('expected a failure');
}

describe('a report older than what the catalog knows', () => {
  it('is refused in one line naming the report and the run; the same report again is accepted, after watch runs too', async () => {
    const { Catalog } = await import('../../src/catalog/catalog.js');
    const { emptyCounters } = await import('../../src/engine/events.js');
    const { listFromInventories } = await import('../../src/engine/inventory-store.js');
    const catalog = Catalog.open(':memory:', 'a'.repeat(64));
    const reports = new MemStore();
    const source = await sourceWith(['k1', 'k2']);
    await writeInventoryReport(reports, await rowsOf(source, false), options('CSV', new Date('2026-12-05T01:00:00Z')));
    const opened = () => [{ bucket: 'src-bucket', objectStore: source as ObjectStore, prefixes: [''], isExcluded: () => false, inventory: { url: 's3://inv-bucket/reports/src-bucket/daily/' } }];
    const run = (id: string, started: string, counters = emptyCounters()): void => {
      const seq = catalog.beginRun({ id, group: 'lake', started: Date.parse(started), host: 'h', pid: 1 });
      catalog.finishRun(seq, 'complete', Date.parse(started) + 1000, counters);
    };
    try {
      // A run that listed the bucket (LIST) after the report was made: the report would call newer objects deleted.
      run('20261205T120000Z-aaaaaa', '2026-12-05T12:00:00Z');
      const refused = await failure(listFromInventories(opened(), { catalog, group: 'lake', counters: emptyCounters(), reportStore: reports }));
      expect(refused.message).toBe(
        'the newest S3 Inventory report of bucket src-bucket (2026-12-05T01:00:00.000Z, s3://inv-bucket/reports/src-bucket/daily/2026-12-05T01-00Z/manifest.json) is older than what run 20261205T120000Z-aaaaaa knows: it listed bucket src-bucket at 2026-12-05T12:00:00.000Z',
      );
      expect(refused.hint).toBe('wait for the next inventory report, or remove the inventory: line for this run to list the bucket');
      expect(readdirSync(scratch)).toEqual([]);

      // A newer report is accepted, and the run's counters name it.
      await source.delete('k1');
      await writeInventoryReport(reports, await rowsOf(source, false), options('CSV', new Date('2026-12-06T01:00:00Z')));
      const counters = emptyCounters();
      const sources = opened();
      const listsBefore = source.stats.list; // the test's own report writing listed it
      const served = await listFromInventories(sources, { catalog, group: 'lake', counters, reportStore: reports });
      try {
        expect(counters.inventory).toEqual({ 'src-bucket': '2026-12-06T01:00:00.000Z' });
        expect((await collect(sources[0]!.objectStore.list(''))).map((e) => (e as { key: string }).key)).toEqual(['k2']);
        expect(source.stats.list).toBe(listsBefore); // nothing listed the bucket itself
      } finally {
        served.close();
      }
      // A later run (started after the report) that listed from it: the same report is still good.
      run('20261206T120000Z-bbbbbb', '2026-12-06T12:00:00Z', counters);
      // A watch run by key (it listed no bucket) after the report: the report is still good.
      run('20261206T130000Z-cccccc', '2026-12-06T13:00:00Z', { ...emptyCounters(), keysNamed: 3 });
      const again = await listFromInventories(opened(), { catalog, group: 'lake', counters: emptyCounters(), reportStore: reports });
      again.close();

      // A bucket that keeps versions needs an "All versions" report.
      const versioned = await failure(listFromInventories([{ ...opened()[0]!, versioned: true }], { catalog, group: 'lake', counters: emptyCounters(), reportStore: reports }));
      expect(versioned.message).toBe('bucket src-bucket keeps versions but its S3 Inventory report s3://inv-bucket/reports/src-bucket/daily/2026-12-06T01-00Z/manifest.json lists current versions only');
      expect(readdirSync(scratch)).toEqual([]);
    } finally {
      catalog.close();
    }
  });
});

describe('sampling keys for the shard planner', () => {
  it.each(['CSV', 'Parquet'] as const)('splits a %s report into balanced key ranges without listing the bucket', async (format) => {
    const { sampleInventoryKeys } = await import('../../src/engine/inventory-sample.js');
    // Skewed: one partition holds 80 of 100 keys.
    const keys = [...Array.from({ length: 80 }, (_, i) => `big/part-${String(i).padStart(3, '0')}`), ...Array.from({ length: 20 }, (_, i) => `small-${String(i).padStart(2, '0')}/f`)];
    const source = await sourceWith(keys);
    const reports = new MemStore();
    await writeInventoryReport(reports, await rowsOf(source, false), options(format, new Date('2026-12-05T01:00:00Z'), { files: 1, rowGroupSize: 5 }));
    const listsBefore = source.stats.list;
    const sample = await sampleInventoryKeys('src-bucket', { url: 's3://inv-bucket/reports/src-bucket/daily/' }, { scratchDir: scratch, reportStore: reports });
    expect(source.stats.list).toBe(listsBefore);
    expect(sample.total).toBe(100);
    // Parquet: one point per row group of 5 keys, from the footer alone.
    expect(sample.points.length).toBe(format === 'Parquet' ? 20 : 100);
    const sorted = [...keys].sort();

    // The shard planner's seed sample, through its KeySource seam: balanced (the big partition
    // split inside), and no LIST.
    const { groupBounds, segmentKeys } = await import('../../src/engine/shard-bounds.js');
    const { Catalog } = await import('../../src/catalog/catalog.js');
    const catalog = Catalog.open(':memory:', 'b'.repeat(64));
    try {
      const opened = { bucket: 'src-bucket', objectStore: source as ObjectStore, prefixes: [''], isExcluded: () => false, inventory: { url: 's3://inv-bucket/reports/src-bucket/daily/' } };
      const planned = await groupBounds(catalog, [opened], 4, segmentKeys({ scratchDir: scratch, reportStore: reports }));
      expect(planned.from).toBe('inventory');
      expect(source.stats.list).toBe(listsBefore);
      const cut = planned.bounds.map(([, key]) => key);
      const shardSizes = [0, 1, 2, 3].map((i) => sorted.filter((k) => (i === 0 || k > cut[i - 1]!) && (i === 3 || k <= cut[i]!)).length);
      for (const size of shardSizes) expect(Math.abs(size - 25), JSON.stringify(shardSizes)).toBeLessThanOrEqual(5);
      expect(cut[0]).toMatch(/^big\//);
    } finally {
      catalog.close();
    }
  });
});

describe('a report without the fields the scan compares', () => {
  it('is refused in one line naming them', async () => {
    const reports = new MemStore();
    const folder = 'reports/src-bucket/daily/2026-12-05T01-00Z/';
    await reports.put(`${folder}manifest.json`, Buffer.from(JSON.stringify({ sourceBucket: 'src-bucket', creationTimestamp: '1796446800000', fileFormat: 'CSV', fileSchema: 'Bucket, Key, Size', files: [] })));
    const err = await failure(newestInventoryReport(reports, { bucket: 'inv-bucket', prefix: 'reports/src-bucket/daily/' }, 'src-bucket'));
    expect(err.message).toBe(`S3 Inventory report s3://inv-bucket/${folder}manifest.json lacks the fields LastModifiedDate, ETag`);
  });
});

describe("the listing's index", () => {
  it("is sorted beside the listing, not in SQLite's temporary directory (a small /tmp fails a big report)", async () => {
    // SQLite's temporary directory made unusable for every user: a path too long for SQLite's
    // temporary file names (it exists; only creating a file there fails), as a full /tmp would.
    const { mkdirSync } = await import('node:fs');
    const { sqliteDatabase } = await import('../../src/catalog/connection.js');
    const unusable = join(scratch, ...Array.from({ length: 3 }, (_, i) => `${i}`.repeat(200)));
    mkdirSync(unusable, { recursive: true });
    const other = new (sqliteDatabase())(':memory:');
    other.pragma(`temp_store_directory = '${unusable}'`);
    const dir = mkdtempSync(join(scratch, 'sort-'));
    const listing = new InventoryListing(join(dir, 'listing.db'));
    try {
      // 200,000 rows of 120-character keys: ~22 MB to sort, more than SQLite sorts in memory (16 MB).
      for (let i = 0; i < 200_000; i++) {
        const h = ((i * 2654435761) >>> 0).toString(16).padStart(8, '0');
        listing.add({ key: `warehouse/t/dt=2026-01-${String(i % 28).padStart(2, '0')}/part-${h}-0f3c2e1a-8b7d-4c6e-9a5f-3d2b1c0e9f8a.snappy.parquet`, versionId: null, isLatest: true, isDeleteMarker: false, size: 1, lastModified: i, etag: 'e' });
      }
      listing.finishLoad();
      expect(listing.page('', false, null, true, 2).length).toBe(2);
      // The process's setting is put back.
      expect(other.pragma('temp_store_directory', { simple: true })).toBe(unusable);
    } finally {
      other.pragma("temp_store_directory = ''");
      other.close();
      listing.close();
      rmSync(dir, { recursive: true, force: true });
      rmSync(join(scratch, '0'.repeat(200)), { recursive: true, force: true });
    }
  });
});

describe('a report older than S3 delivers them', () => {
  it('is listed from, with a warning naming its age: its delivery may have stopped', async () => {
    const { emptyCounters } = await import('../../src/engine/events.js');
    const { OLD_REPORT_MS, listFromInventories } = await import('../../src/engine/inventory-store.js');
    const { initRepo, openCatalog, tempDir } = await import('../helpers/fixtures.js');
    const dir = tempDir('inventory-old');
    const source = await sourceWith(['events/e0', 'events/e1']);
    const repo = await initRepo(new MemStore(), { password: null });
    const catalog = openCatalog(join(dir.path, 'host'), repo);
    const reports = new MemStore();
    const url = 's3://inv-bucket/reports/src-bucket/daily/';
    const opened = { bucket: 'src-bucket', objectStore: source as ObjectStore, prefixes: ['events/'], isExcluded: () => false, inventory: { url } };
    const warningsFor = async (ageMs: number): Promise<string[]> => {
      await writeInventoryReport(reports, await rowsOf(source, false), options('CSV', new Date(Date.now() - ageMs)));
      const warnings: string[] = [];
      (await listFromInventories([{ ...opened }], { catalog, group: 'lake', counters: emptyCounters(), reportStore: reports, warn: (m) => warnings.push(m) })).close();
      return warnings;
    };
    try {
      // A report older than a weekly one a day late: its delivery has likely stopped.
      expect(await warningsFor(OLD_REPORT_MS + 3 * 86_400_000)).toEqual([
        expect.stringMatching(/^the newest S3 Inventory report of bucket src-bucket \(s3:\/\/inv-bucket\/reports\/src-bucket\/daily\/.*\/manifest\.json\) was made 11d00h ago, at .*: objects written since are not in this run; .*remove inventory: to list the bucket$/),
      ]);
      // The next one, a weekly report a day late, is current.
      expect(await warningsFor(OLD_REPORT_MS - 3_600_000)).toEqual([]);
    } finally {
      catalog.close();
      dir.cleanup();
    }
  });
});

describe('a report that does not cover a prefix the policy backs up', () => {
  it('is refused before the run calls the catalogued keys it lacks deleted; a seed says it found none there', async () => {
    const { FsStore } = await import('../../src/storage/fs-store.js');
    const { backupGroup } = await import('../../src/engine/backup.js');
    const { emptyCounters } = await import('../../src/engine/events.js');
    const { listFromInventories } = await import('../../src/engine/inventory-store.js');
    const { initRepo, openCatalog, tempDir, testPolicy } = await import('../helpers/fixtures.js');
    const dir = tempDir('inventory-coverage');
    const source = await sourceWith([...Array.from({ length: 4 }, (_, i) => `events/e${i}`), ...Array.from({ length: 4 }, (_, i) => `logs/l${i}`)]);
    const repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: null });
    const catalog = openCatalog(join(dir.path, 'host'), repo);
    const fresh = openCatalog(join(dir.path, 'fresh'), repo);
    const group = { name: 'lake', sources: [] };
    const url = 's3://inv-bucket/reports/src-bucket/daily/';
    const opened = (inventory?: { url: string }) => ({ bucket: 'src-bucket', objectStore: source as ObjectStore, prefixes: ['events/'], isExcluded: () => false, ...(inventory === undefined ? {} : { inventory }) });
    try {
      // A run that listed events/ (LIST): the catalog knows its 4 keys.
      const seed = await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [opened()] });
      expect(seed.counters.objectsNew).toBe(4);
      // The reports below are made up to two days after the seed: the clock is three days on.
      const t0 = Date.now();
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(t0 + 3 * 86_400_000);
      // The report of a configuration filtered to logs/: it lists none of events/.
      const reports = new MemStore();
      const logsOnly = async (created: Date) =>
        writeInventoryReport(reports, (await rowsOf(source, false)).filter((r) => r.key.startsWith('logs/')), options('CSV', created));
      // A report made within the hour after events/ was written: S3 Inventory may miss objects
      // written just before it, so their absence is no proof, and it is accepted.
      await logsOnly(new Date(t0 + 30 * 60_000));
      (await listFromInventories([opened({ url })], { catalog, group: 'lake', counters: emptyCounters(), reportStore: reports })).close();
      // A day later: refused.
      await logsOnly(new Date(t0 + 86_400_000));
      const refused = await failure(listFromInventories([opened({ url })], { catalog, group: 'lake', counters: emptyCounters(), reportStore: reports }));
      expect(refused.message).toMatch(
        /^S3 Inventory report s3:\/\/inv-bucket\/reports\/src-bucket\/daily\/.*\/manifest\.json does not list s3:\/\/src-bucket\/events\/e0, which the bucket holds \(last modified .*, well before the report\): it does not cover prefix "events\/" of the policy, and this run would record such keys deleted$/,
      );
      expect(refused.hint).toMatch(/filter prefix covers every prefix this source backs up \("events\/"\)/);
      expect(readdirSync(scratch)).toEqual([]);

      // A fresh catalog (a seed) cannot tell: the run goes on, and says it found nothing there.
      const warnings: string[] = [];
      const seeded = await listFromInventories([opened({ url })], { catalog: fresh, group: 'lake', counters: emptyCounters(), reportStore: reports, warn: (m) => warnings.push(m) });
      seeded.close();
      expect(warnings).toEqual([expect.stringMatching(/lists no key under s3:\/\/src-bucket\/events\/: nothing there is backed up; .*a filter prefix\?\)$/)]);

      // events/ really deleted: the keys the report lacks are gone from the bucket, and it is accepted.
      for (let i = 0; i < 4; i++) await source.delete(`events/e${i}`);
      await logsOnly(new Date(t0 + 2 * 86_400_000));
      const accepted = await listFromInventories([opened({ url })], { catalog, group: 'lake', counters: emptyCounters(), reportStore: reports });
      accepted.close();
    } finally {
      vi.useRealTimers();
      catalog.close();
      fresh.close();
      dir.cleanup();
    }
  });
});

describe('a report that contradicts the bucket inside the span it covers (altered or damaged)', () => {
  it('is refused before the run records keys it lacks deleted or misses changes it hides, unless the catalog saw them after the report', async () => {
    const { FsStore } = await import('../../src/storage/fs-store.js');
    const { backupGroup } = await import('../../src/engine/backup.js');
    const { emptyCounters } = await import('../../src/engine/events.js');
    const { listFromInventories } = await import('../../src/engine/inventory-store.js');
    const { initRepo, openCatalog, tempDir, testPolicy } = await import('../helpers/fixtures.js');
    const dir = tempDir('inventory-omitted');
    // 5 partitions of 10 keys: 50 catalogued keys, fewer than the sample (64), so every one is looked up.
    const keys = Array.from({ length: 50 }, (_, i) => `p${Math.floor(i / 10)}/k${i % 10}`);
    const source = await sourceWith(keys);
    const repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: null });
    const catalog = openCatalog(join(dir.path, 'host'), repo);
    const group = { name: 'lake', sources: [] };
    const url = 's3://inv-bucket/reports/src-bucket/daily/';
    const opened = (inventory: boolean) => ({ bucket: 'src-bucket', objectStore: source as ObjectStore, prefixes: [''], isExcluded: () => false, ...(inventory ? { inventory: { url } } : {}) });
    const reports = new MemStore();
    const list = () => listFromInventories([opened(true)], { catalog, group: 'lake', counters: emptyCounters(), reportStore: reports });
    try {
      expect((await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [opened(false)] })).counters.objectsNew).toBe(50);
      const t0 = Date.now();
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(t0 + 2 * 86_400_000);
      // A report of a day later without partition p2/, which the bucket still holds: its first
      // and last keys are the bucket's, so the coverage check (its ends) passes.
      const all = await rowsOf(source, false);
      await writeInventoryReport(reports, all.filter((r) => !r.key.startsWith('p2/')), options('CSV', new Date(t0 + 86_400_000)));
      let heads = source.stats.head;
      const refused = await failure(list());
      expect(refused.message).toMatch(
        /^S3 Inventory report s3:\/\/inv-bucket\/reports\/src-bucket\/daily\/.*\/manifest\.json does not list s3:\/\/src-bucket\/p2\/k\d, which the bucket holds \(last modified .*, well before the report\): this run would record it deleted; S3 Inventory lists every such object as it is, so the report was altered or is damaged$/,
      );
      expect(refused.hint).toMatch(/"What a report is trusted for"/);
      expect(source.stats.head - heads).toBeLessThanOrEqual(50); // the run stops at the first key it lacks
      expect(readdirSync(scratch)).toEqual([]);

      // p2/ really deleted: each catalogued key is looked up (50 HEADs: the 10 it lacks are not
      // found), and it is accepted. A key this identity may not HEAD proves nothing either.
      for (const key of keys.slice(20, 30)) await source.delete(key);
      await writeInventoryReport(reports, await rowsOf(source, false), options('CSV', new Date(t0 + 86_400_000 + 60_000)));
      heads = source.stats.head;
      (await list()).close();
      expect(source.stats.head - heads).toBe(50);
      const { StoreDecorator } = await import('../../src/storage/store-decorator.js');
      const { StorageError } = await import('../../src/errors.js');
      const denying = new (class extends StoreDecorator {
        override head(key: string, opts?: { versionId?: string; signal?: AbortSignal }) {
          if (key === 'p0/k0') return Promise.reject(new StorageError('AccessDenied', `HEAD ${key}: AccessDenied (403)`, { backendCode: 'AccessDenied' }));
          return super.head(key, opts);
        }
      })(source);
      await writeInventoryReport(reports, (await rowsOf(source, false)).filter((r) => r.key !== 'p0/k0'), options('CSV', new Date(t0 + 86_400_000 + 90_000)));
      (await listFromInventories([{ ...opened(true), objectStore: denying }], { catalog, group: 'lake', counters: emptyCounters(), reportStore: reports })).close();

      // Keys the catalog saw after the report (watch, by key: p2/ written again, p4/ rewritten)
      // are kept by the run whatever the report says: a report without them (inside its span
      // and at its end) is accepted, and they are not looked up (30 HEADs: p0/, p1/, p3/).
      const again = [...keys.slice(20, 30), ...keys.slice(40)];
      for (const key of again) await source.put(key, Buffer.from('again'));
      await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [opened(false)], keys: new Map([['src-bucket', again]]) });
      await writeInventoryReport(reports, all.filter((r) => !r.key.startsWith('p2/') && !r.key.startsWith('p4/')), options('CSV', new Date(t0 + 86_400_000 + 120_000)));
      heads = source.stats.head;
      (await list()).close();
      expect(source.stats.head - heads).toBe(30);

      // p1/ rewritten, and a report of a day later that lists it as it was (its old ETags): the
      // run would not read it. Refused.
      for (const key of keys.slice(10, 20)) await source.put(key, Buffer.from('rewritten'));
      vi.setSystemTime(t0 + 4 * 86_400_000);
      const now = await rowsOf(source, false);
      await writeInventoryReport(reports, [...now.filter((r) => !r.key.startsWith('p1/')), ...all.filter((r) => r.key.startsWith('p1/'))], options('CSV', new Date(t0 + 3 * 86_400_000)));
      const stale = await failure(list());
      expect(stale.message).toMatch(
        /^S3 Inventory report .*\/manifest\.json lists s3:\/\/src-bucket\/p1\/k\d with ETag [0-9a-f]{32} and size 13, but the bucket holds it with ETag [0-9a-f]{32} and size 9 \(last modified .*, well before the report\): this run would not read it; S3 Inventory lists every such object as it is, so the report was altered or is damaged$/,
      );
    } finally {
      vi.useRealTimers();
      catalog.close();
      dir.cleanup();
    }
  });

  it('in a versioned bucket, is told from a deletion undone after the report (its version listed as not current)', async () => {
    const { FsStore } = await import('../../src/storage/fs-store.js');
    const { backupGroup } = await import('../../src/engine/backup.js');
    const { emptyCounters } = await import('../../src/engine/events.js');
    const { listFromInventories } = await import('../../src/engine/inventory-store.js');
    const { initRepo, openCatalog, tempDir, testPolicy } = await import('../helpers/fixtures.js');
    const dir = tempDir('inventory-omitted-versions');
    const keys = Array.from({ length: 30 }, (_, i) => `p${Math.floor(i / 10)}/k${i % 10}`);
    const source = await sourceWith(keys, true);
    const repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: null });
    const catalog = openCatalog(join(dir.path, 'host'), repo);
    const group = { name: 'lake', sources: [] };
    const opened = (inventory: boolean) => ({ bucket: 'src-bucket', objectStore: source as ObjectStore, prefixes: [''], isExcluded: () => false, versioned: true, ...(inventory ? { inventory: { url: 's3://inv-bucket/reports/src-bucket/daily/' } } : {}) });
    const reports = new MemStore();
    const list = () => listFromInventories([opened(true)], { catalog, group: 'lake', counters: emptyCounters(), reportStore: reports });
    try {
      await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [opened(false)] });
      const t0 = Date.now();
      vi.useFakeTimers({ toFake: ['Date'] });
      // p1/ deleted (delete markers) before the report, undeleted after it (the markers removed):
      // its old versions are current again, and the report lists them as not current.
      vi.setSystemTime(t0 + 43_200_000);
      for (const key of keys.slice(10, 20)) await source.delete(key);
      const rows = await rowsOf(source, true);
      await writeInventoryReport(reports, rows, options('CSV', new Date(t0 + 86_400_000), { allVersions: true }));
      vi.setSystemTime(t0 + 2 * 86_400_000);
      for (const row of rows.filter((r) => r.isDeleteMarker === true)) await source.delete(row.key, { versionId: row.versionId! });
      (await list()).close();

      // A report without p1/'s versions at all: refused.
      await writeInventoryReport(reports, rows.filter((r) => !r.key.startsWith('p1/')), options('CSV', new Date(t0 + 86_400_000 + 60_000), { allVersions: true }));
      expect((await failure(list())).message).toMatch(/does not list version \S+ of s3:\/\/src-bucket\/p1\/k\d, which the bucket holds/);

      // p2/k0 written again (v2), and a later report that calls v1 current and v2 not: the run
      // would take v2 for deleted for good. Refused.
      await source.put('p2/k0', Buffer.from('v2'));
      vi.setSystemTime(t0 + 3 * 86_400_000);
      const swapped = (await rowsOf(source, true)).map((r) => (r.key === 'p2/k0' ? { ...r, isLatest: !(r.isLatest ?? true) } : r));
      await writeInventoryReport(reports, swapped, options('CSV', new Date(t0 + 2 * 86_400_000 + 43_200_000), { allVersions: true }));
      expect((await failure(list())).message).toMatch(
        /lists version \S+ of s3:\/\/src-bucket\/p2\/k0 as current \(last modified .*\), but the bucket's current version \S+ is newer \(last modified .*, well before the report\): this run would record the key as the report says; S3 Inventory lists every such object as it is, so the report was altered or is damaged$/,
      );
    } finally {
      vi.useRealTimers();
      catalog.close();
      dir.cleanup();
    }
  });
});

describe("what the catalog saw after a report (less S3 Inventory's lag)", () => {
  it('stands against the report: a state seen within the hour before it or later, not one seen earlier', async () => {
    const { FsStore } = await import('../../src/storage/fs-store.js');
    const { backupGroup } = await import('../../src/engine/backup.js');
    const { newerThanReport, REPORT_LAG_MS } = await import('../../src/engine/inventory-store.js');
    const { latestPage } = await import('../../src/catalog/backup-lookups.js');
    const { initRepo, openCatalog, tempDir, testPolicy } = await import('../helpers/fixtures.js');
    const dir = tempDir('inventory-newer');
    const source = await sourceWith(['k1', 'k2']);
    const repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: null });
    const catalog = openCatalog(join(dir.path, 'host'), repo);
    const group = { name: 'lake', sources: [] };
    const backup = () => backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [{ bucket: 'src-bucket', objectStore: source, prefixes: [''], isExcluded: () => false }] });
    try {
      await backup();
      await source.delete('k2');
      const deleted = await backup();
      expect(deleted.counters.objectsDeleted).toBe(1);
      const rows = latestPage(catalog, 'src-bucket', '', true, null, 10);
      expect(rows.map((r) => [r.key, r.deleteMarker])).toEqual([
        ['k1', false],
        ['k2', true],
      ]);
      const [first, second] = catalog.listRuns({ group: 'lake' }).map((r) => r.started);
      const judge = (created: number) => rows.map(newerThanReport(catalog, 'src-bucket', new Date(created)));
      // k1 was seen by the first run (its start; written before it), k2's deletion by the second:
      // a report made up to an hour after a run may still list what it saw as it was before.
      expect(judge(first! + REPORT_LAG_MS)).toEqual([true, true]);
      expect(judge(first! + REPORT_LAG_MS + 1)).toEqual([false, true]);
      expect(judge(second! + REPORT_LAG_MS)).toEqual([false, true]);
      expect(judge(second! + REPORT_LAG_MS + 1)).toEqual([false, false]);
    } finally {
      catalog.close();
      dir.cleanup();
    }
  });
});
