/**
 * S3 Inventory reports, as AWS documents them: where they are and what their manifest says.
 * A configuration delivers to `<destination prefix>/<source bucket>/<configuration id>/`
 * (the policy's `inventory:` URL); each report is a dated folder there
 * (`YYYY-MM-DDTHH-MMZ/manifest.json`, with `manifest.checksum` = MD5 of manifest.json), and its
 * data files (CSV gzip, ORC or Parquet) are named by the manifest's `files[].key`, keys of the
 * destination bucket (usually under `.../data/`). The `hive/` folder (symlink.txt) is not read:
 * manifest.json says the same and more.
 */
import { createHash } from 'node:crypto';
import { LakeguardError, isNotFound } from '../errors.js';
import { getBytes, type ObjectStore } from '../storage/types.js';

/** One data file of a report, as manifest.json lists it. */
export interface InventoryFile {
  key: string;
  size: number;
  /** MD5 of the file's bytes (hex), checked when the file is read whole. */
  md5: string;
}

export type InventoryFormat = 'CSV' | 'Parquet';

/** The parts of manifest.json lakeguard reads. */
export interface InventoryReport {
  /** Where manifest.json is, e.g. `s3://inv/reports/raw-events/daily/2026-12-06T01-00Z/manifest.json`. */
  location: string;
  sourceBucket: string;
  /** When S3 began scanning the bucket for this report: what the report knows is as of this time. */
  created: Date;
  format: InventoryFormat;
  /** CSV: the column names in file order (`Bucket, Key, VersionId, ...`). Parquet: the schema's column names. */
  columns: string[];
  /** The report lists every version (VersionId, IsLatest, IsDeleteMarker), not only current ones. */
  allVersions: boolean;
  files: InventoryFile[];
}

/** A dated report folder: `2026-12-06T01-00Z/`, which sorts as it dates. */
const REPORT_FOLDER = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z\/$/;

/**
 * How far ahead of this host's clock a report's date may be: S3's own tolerance for a request's
 * clock (RequestTimeTooSkewed). S3 Inventory dates a report by when its scan began, hours before
 * it is delivered; one dated later than now was not written by it, and would stay the newest
 * report (its folder) or make every later report look stale and record deletions in the future
 * (its creationTimestamp).
 */
export const REPORT_CLOCK_SKEW_MS = 15 * 60 * 1000;

/**
 * The largest manifest.json read. A manifest names a report's data files (about 200 B each); a
 * report of billions of objects has thousands of them. A bigger one is not S3 Inventory's, and
 * is refused before it is held in memory.
 */
export const MANIFEST_MAX_BYTES = 64 * 1024 * 1024;

/** The time a dated folder (`2026-12-06T01-00Z/`) names. */
function folderTime(folder: string): number {
  const [date, time] = folder.slice(0, -2).split('T') as [string, string];
  return Date.parse(`${date}T${time.replace('-', ':')}:00Z`);
}

/** The configuration folder of an `inventory:` URL (`s3://bucket/prefix/`): bucket and key prefix ('' or ending in '/'). */
export function inventoryLocation(url: string): { bucket: string; prefix: string } {
  const rest = url.slice('s3://'.length);
  const slash = rest.indexOf('/');
  return slash === -1 ? { bucket: rest, prefix: '' } : { bucket: rest.slice(0, slash), prefix: rest.slice(slash + 1) };
}

/**
 * The newest complete report under `prefix` of `store` (the destination bucket, rooted at its
 * top): the newest dated folder holding a manifest.json (S3 writes the manifest last, so a folder
 * without one is a report still being delivered, and the one before it is used).
 */
export async function newestInventoryReport(
  store: ObjectStore,
  at: { bucket: string; prefix: string },
  sourceBucket: string,
  signal?: AbortSignal,
): Promise<InventoryReport> {
  const { bucket, prefix } = at;
  const where = `s3://${bucket}/${prefix}`;
  const folders: string[] = [];
  for await (const item of store.list(prefix, { delimiter: '/', ...(signal === undefined ? {} : { signal }) })) {
    if (item.kind === 'prefix' && REPORT_FOLDER.test(item.prefix.slice(prefix.length))) folders.push(item.prefix);
  }
  const latest = Date.now() + REPORT_CLOCK_SKEW_MS;
  for (const folder of folders.sort().reverse()) {
    const key = `${folder}manifest.json`;
    if (folderTime(folder.slice(prefix.length)) > latest) throw futureReport(`s3://${bucket}/${folder}`, 'its folder is dated');
    let bytes: Buffer;
    try {
      bytes = await readManifest(store, `s3://${bucket}/${key}`, key, signal);
    } catch (err) {
      if (isNotFound(err)) continue;
      throw err;
    }
    await checkManifestChecksum(store, `s3://${bucket}/${folder}`, folder, bytes, signal);
    const report = parseManifest(bytes, `s3://${bucket}/${key}`, sourceBucket);
    if (report.created.getTime() > latest) throw futureReport(report.location, `its creationTimestamp is ${report.created.toISOString()},`);
    // S3 Inventory writes a report's data files under its configuration folder (`<folder>data/`):
    // a manifest naming any other key of the bucket is not its.
    const outside = report.files.find((f) => !f.key.startsWith(prefix) || f.key.length === prefix.length);
    if (outside !== undefined) {
      throw new LakeguardError(`S3 Inventory manifest ${report.location} names data file ${JSON.stringify(outside.key)}, outside the configuration folder s3://${bucket}/${prefix}`, {
        hint: 'S3 Inventory writes data files only under the configuration folder: this manifest was not written by it; see who may write to the destination bucket (docs/scale-out.md "What a report is trusted for"), or remove the inventory: line to list the bucket',
      });
    }
    return report;
  }
  throw new LakeguardError(`no S3 Inventory report at ${where}: no dated folder (YYYY-MM-DDTHH-MMZ/) with a manifest.json`, {
    hint: `point inventory: at <destination prefix>/${sourceBucket}/<configuration id>/ of the bucket's inventory configuration, or wait for its first report (up to 48 hours after it is set up)`,
  });
}

function futureReport(where: string, what: string): LakeguardError {
  return new LakeguardError(`S3 Inventory report ${where}: ${what} later than now (${new Date().toISOString()}), which S3 Inventory never does`, {
    hint: 'a report is dated when its scan began, before it is delivered: this one was not written by S3 Inventory (or this host\'s clock is behind); remove it and see who may write to the destination bucket (docs/scale-out.md "What a report is trusted for"), or remove the inventory: line to list the bucket',
  });
}

/** manifest.json's bytes, refused past MANIFEST_MAX_BYTES without holding more of them. */
async function readManifest(store: ObjectStore, where: string, key: string, signal: AbortSignal | undefined): Promise<Buffer> {
  const { body, meta } = await store.get(key, signal === undefined ? {} : { signal });
  const tooBig = (): LakeguardError =>
    new LakeguardError(`S3 Inventory manifest ${where} is larger than ${MANIFEST_MAX_BYTES} bytes, which no S3 Inventory manifest is`, {
      hint: 'this manifest was not written by S3 Inventory: see who may write to the destination bucket (docs/scale-out.md "What a report is trusted for"), or remove the inventory: line to list the bucket',
    });
  if (meta.size > MANIFEST_MAX_BYTES) {
    body.destroy();
    throw tooBig();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MANIFEST_MAX_BYTES) {
      body.destroy();
      throw tooBig();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** manifest.checksum, when present, is the MD5 of manifest.json: a torn or altered manifest is refused. */
async function checkManifestChecksum(store: ObjectStore, where: string, folder: string, manifest: Buffer, signal: AbortSignal | undefined): Promise<void> {
  let expected: string;
  try {
    expected = (await getBytes(store, `${folder}manifest.checksum`, signal === undefined ? {} : { signal })).toString('utf8').trim().toLowerCase();
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  const actual = createHash('md5').update(manifest).digest('hex');
  if (expected !== actual) {
    throw new LakeguardError(`S3 Inventory manifest ${where}manifest.json does not match its manifest.checksum (MD5 ${actual}, expected ${expected})`, {
      hint: 'the report is damaged or still being written; run the backup again later, or remove the inventory: line to list the bucket',
    });
  }
}

/** Reads manifest.json (AWS's documented fields); anything lakeguard cannot use is refused in one line. */
export function parseManifest(bytes: Buffer, location: string, sourceBucket: string): InventoryReport {
  const bad = (what: string): LakeguardError =>
    new LakeguardError(`S3 Inventory manifest ${location}: ${what}`, { hint: 'check the inventory: URL in the policy points at the bucket\'s inventory configuration folder' });
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw bad('not valid JSON');
  }
  if (m === null || typeof m !== 'object') throw bad('not a JSON object');
  if (m.sourceBucket !== sourceBucket) throw bad(`lists bucket ${JSON.stringify(m.sourceBucket)}, not the source bucket ${sourceBucket}`);
  const created = Number(m.creationTimestamp);
  if (!Number.isSafeInteger(created) || created <= 0) throw bad(`creationTimestamp ${JSON.stringify(m.creationTimestamp)} is not a time in milliseconds`);
  const format = m.fileFormat;
  if (format === 'ORC') {
    throw new LakeguardError(`S3 Inventory report ${location} is in ORC, which lakeguard does not read`, {
      hint: 'set the inventory configuration\'s output format to CSV or Apache Parquet; the next report is then read',
    });
  }
  if (format !== 'CSV' && format !== 'Parquet') throw bad(`fileFormat ${JSON.stringify(format)} is not CSV, ORC or Parquet`);
  if (typeof m.fileSchema !== 'string') throw bad('fileSchema missing');
  const columns = format === 'CSV' ? m.fileSchema.split(',').map((c) => c.trim()) : parquetSchemaColumns(m.fileSchema);
  const [keyColumn, versionColumn] = format === 'CSV' ? ['Key', 'VersionId'] : ['key', 'version_id'];
  if (!columns.includes(keyColumn)) throw bad(`fileSchema has no ${keyColumn} column`);
  // Without them the scan cannot tell a changed object from an unchanged one.
  const needed = format === 'CSV' ? ['Size', 'LastModifiedDate', 'ETag'] : ['size', 'last_modified_date', 'e_tag'];
  const missing = needed.filter((c) => !columns.includes(c));
  if (missing.length > 0) {
    throw new LakeguardError(`S3 Inventory report ${location} lacks the field${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, {
      hint: 'add Size, Last modified date and ETag to the inventory configuration\'s optional fields; the next report is then read',
    });
  }
  if (!Array.isArray(m.files)) throw bad('files missing');
  const files = m.files.map((f: unknown, i: number): InventoryFile => {
    const file = f as Record<string, unknown> | null;
    if (file === null || typeof file.key !== 'string' || typeof file.MD5checksum !== 'string') throw bad(`files[${i}] needs key and MD5checksum`);
    return { key: file.key, size: Number(file.size ?? 0), md5: file.MD5checksum.toLowerCase() };
  });
  return { location, sourceBucket, created: new Date(created), format, columns, allVersions: columns.includes(versionColumn), files };
}

/** Column names of a Parquet `message s3.inventory { required binary bucket (UTF8); ... }` schema. */
function parquetSchemaColumns(schema: string): string[] {
  const body = schema.slice(schema.indexOf('{') + 1, schema.lastIndexOf('}'));
  return body
    .split(';')
    .map((field) => field.trim().replace(/\s*\(.*\)$/, '').split(/\s+/).at(-1) ?? '')
    .filter((name) => name !== '');
}

