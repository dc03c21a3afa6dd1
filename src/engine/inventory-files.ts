/**
 * The rows of an S3 Inventory report's data files, streamed: CSV (gzip, columns in the
 * manifest's fileSchema order, keys URL-encoded with '+' for a space) and Parquet (columns by
 * name: bucket, key, version_id, ...). Only rows inside a key range are yielded. A Parquet file
 * is first judged by its footer: row groups whose key statistics (min/max) lie outside the
 * range are never read, and a file with none inside is not downloaded at all. A file read whole
 * is checked against the manifest's MD5checksum; a Parquet file of which only some row groups
 * are read cannot be (the MD5 covers the whole file), and is read by ranged GETs.
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { parquetMetadataAsync, parquetReadObjects, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { LakeguardError, StorageError } from '../errors.js';
import { getBytes, type ObjectStore } from '../storage/types.js';
import { compareKeys } from '../util/key-order.js';
import type { InventoryListingRow } from '../catalog/inventory-listing.js';
import type { InventoryFile, InventoryReport } from './inventory-report.js';
import type { KeyRange } from './scan.js';

/**
 * One object version as a report lists it (lastModified in ms since the epoch; versionId null
 * when the report lists current versions only, or for the "null" version). The catalog layer's
 * scratch table stores exactly these fields.
 */
export type InventoryRow = InventoryListingRow;

/** What reading a report's files cost and skipped (for tests and the run's record). */
export interface InventoryReadStats {
  filesRead: number;
  filesSkipped: number;
  rowGroupsRead: number;
  rowGroupsSkipped: number;
}

export interface ReadFilesOptions {
  /** Only keys inside this range (either end open). */
  range?: KeyRange;
  /** Where a Parquet file read whole is spooled (the temporary directory of the load). */
  spoolDir: string;
  signal?: AbortSignal;
  stats?: InventoryReadStats;
}

/** Every row of the report's files inside the range, file by file (each file in its own order). */
export async function* inventoryRows(store: ObjectStore, report: InventoryReport, opts: ReadFilesOptions): AsyncGenerator<InventoryRow> {
  for (const file of report.files) {
    try {
      if (report.format === 'CSV') yield* csvRows(store, report, file, opts);
      else yield* parquetRows(store, report, file, opts);
    } catch (err) {
      throw inFileContext(report, file, err);
    }
  }
}

/**
 * A storage error while reading a data file (a file the manifest names but the destination
 * bucket does not have, access denied), named with its report and the next step; the same kind
 * and code, so callers that tell errors apart by them decide as before.
 */
function inFileContext(report: InventoryReport, file: InventoryFile, err: unknown): unknown {
  if (!(err instanceof StorageError)) return err;
  const missing = err.code === 'NotFound';
  return new StorageError(err.code, `S3 Inventory data file ${file.key} of report ${report.location}: ${missing ? 'not found' : 'cannot be read'} (${err.message})`, {
    backendCode: err.backendCode,
    retryable: err.retryable,
    cause: err,
    hint: missing
      ? "the report's manifest names a data file its bucket does not have (removed by a lifecycle rule, or not delivered): run the backup again when the next report arrives, or remove the inventory: line to list the bucket"
      : (err.hint ?? 'check that this identity may read the inventory reports (s3:GetObject on the destination bucket), or remove the inventory: line to list the bucket'),
  });
}

function inRange(key: string, range: KeyRange | undefined): boolean {
  if (range === undefined) return true;
  if (range.after !== undefined && compareKeys(key, range.after) <= 0) return false;
  return range.upTo === undefined || compareKeys(key, range.upTo) <= 0;
}

function fileError(report: InventoryReport, file: InventoryFile, what: string): LakeguardError {
  return new LakeguardError(`S3 Inventory data file ${file.key} of report ${report.location}: ${what}`, {
    hint: 'the report is damaged or was replaced while being read; run the backup again (the next report is read when it arrives), or remove the inventory: line to list the bucket',
  });
}

function checkMd5(report: InventoryReport, file: InventoryFile, md5: Hash): void {
  const actual = md5.digest('hex');
  if (actual !== file.md5) throw fileError(report, file, `MD5 ${actual} does not match the manifest's MD5checksum ${file.md5}`);
}

/** A pass-through stream that hashes what flows by. */
function hashing(md5: Hash): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      md5.update(chunk);
      done(null, chunk);
    },
  });
}

// ---- CSV ----

/** CSV column names of AWS's fileSchema that lakeguard reads. */
const CSV_COLUMNS = { key: 'Key', versionId: 'VersionId', isLatest: 'IsLatest', isDeleteMarker: 'IsDeleteMarker', size: 'Size', lastModified: 'LastModifiedDate', etag: 'ETag', storageClass: 'StorageClass' };

async function* csvRows(store: ObjectStore, report: InventoryReport, file: InventoryFile, opts: ReadFilesOptions): AsyncGenerator<InventoryRow> {
  const at = Object.fromEntries(Object.entries(CSV_COLUMNS).map(([field, name]) => [field, report.columns.indexOf(name)])) as Record<keyof typeof CSV_COLUMNS, number>;
  const bucketAt = report.columns.indexOf('Bucket');
  const md5 = createHash('md5');
  const { body } = await store.get(file.key, opts.signal === undefined ? {} : { signal: opts.signal });
  const lines = lineLimit(() => fileError(report, file, `has a line longer than ${CSV_LINE_MAX_BYTES} bytes, which no S3 Inventory CSV has (a key is at most 1,024 bytes)`));
  const feeding = pipeline(body, hashing(md5), createGunzip(), lines).catch((err: unknown) => {
    lines.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  let line = 0;
  try {
    for await (const text of createInterface({ input: lines, crlfDelay: Infinity })) {
      line++;
      if (text === '') continue;
      const fields = splitCsvLine(text);
      if (fields === null || fields.length < report.columns.length) throw fileError(report, file, `line ${line} does not have the ${report.columns.length} fields of fileSchema`);
      // A row of another bucket is no row of this report (the manifest names one source bucket).
      if (bucketAt >= 0 && fields[bucketAt] !== report.sourceBucket) {
        throw fileError(report, file, `line ${line} names bucket ${JSON.stringify(fields[bucketAt])}, not the report's source bucket ${report.sourceBucket}`);
      }
      const row = csvRow(fields, at);
      if (row === null) throw fileError(report, file, `line ${line} has a key that is not URL-encoded UTF-8`);
      if (inRange(row.key, opts.range)) yield row;
    }
  } catch (err) {
    if (err instanceof LakeguardError) throw err;
    throw fileError(report, file, `cannot read it as gzip CSV: ${err instanceof Error ? err.message : String(err)}`);
  }
  await feeding;
  checkMd5(report, file, md5);
  if (opts.stats !== undefined) opts.stats.filesRead++;
}

function csvRow(fields: string[], at: Record<keyof typeof CSV_COLUMNS, number>): InventoryRow | null {
  const field = (i: number): string => (i < 0 ? '' : fields[i]!);
  let key: string;
  try {
    key = decodeURIComponent(field(at.key).replace(/\+/g, ' '));
  } catch {
    return null;
  }
  const version = field(at.versionId);
  const storageClass = field(at.storageClass);
  return {
    key,
    versionId: version === '' || version === 'null' ? null : version,
    isLatest: at.isLatest < 0 || field(at.isLatest) === 'true',
    isDeleteMarker: field(at.isDeleteMarker) === 'true',
    size: Number(field(at.size) || 0),
    lastModified: Date.parse(field(at.lastModified)) || 0,
    etag: field(at.etag),
    ...(storageClass === '' ? {} : { storageClass }),
  };
}

/**
 * The longest CSV line read: a row is a few fields and a key of at most 1,024 bytes (3 KiB
 * URL-encoded). readline holds a line whole until its end: without a bound, a file of one endless
 * line (a few KiB of gzip) would fill the memory.
 */
export const CSV_LINE_MAX_BYTES = 1024 * 1024;

/** A pass-through stream that fails (with `error()`) when a line runs past CSV_LINE_MAX_BYTES. */
function lineLimit(error: () => Error): Transform {
  let run = 0; // bytes since the last newline
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const first = chunk.indexOf(10);
      const longest = first === -1 ? run + chunk.length : run + first;
      if (longest > CSV_LINE_MAX_BYTES) {
        done(error());
        return;
      }
      if (first !== -1) {
        // Lines wholly inside a chunk are shorter than the chunk (64 KiB).
        run = chunk.length - chunk.lastIndexOf(10) - 1;
      } else {
        run = longest;
      }
      done(null, chunk);
    },
  });
}

/** Fields of one CSV line ("a","b",c with "" for a quote inside quotes); null when a quote is left open. */
export function splitCsvLine(line: string): string[] | null {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) return null;
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      fields.push(value);
    } else {
      const comma = line.indexOf(',', i);
      fields.push(line.slice(i, comma === -1 ? line.length : comma));
      i = comma === -1 ? line.length : comma;
    }
    if (i >= line.length) return fields;
    if (line[i] !== ',') return null;
    i++;
  }
}

// ---- Parquet ----

/** Parquet columns lakeguard reads, as AWS names them. */
export const PARQUET_COLUMNS = ['key', 'version_id', 'is_latest', 'is_delete_marker', 'size', 'last_modified_date', 'e_tag', 'storage_class'];

async function* parquetRows(store: ObjectStore, report: InventoryReport, file: InventoryFile, opts: ReadFilesOptions): AsyncGenerator<InventoryRow> {
  const remote = rangedBuffer(store, file, opts.signal);
  const metadata = await parquetMetadataAsync(remote).catch((err: unknown) => {
    throw fileError(report, file, `cannot read its Parquet footer: ${err instanceof Error ? err.message : String(err)}`);
  });
  const keyColumn = metadata.row_groups[0]?.columns.findIndex((c) => c.meta_data?.path_in_schema.join('.') === 'key') ?? -1;
  const wanted = metadata.row_groups.map((group) => groupMayOverlap(group, keyColumn, opts.range));
  const skipped = wanted.filter((w) => !w).length;
  if (opts.stats !== undefined) opts.stats.rowGroupsSkipped += skipped;
  if (skipped === wanted.length) {
    if (opts.stats !== undefined) opts.stats.filesSkipped++;
    return;
  }
  // Every row group is needed: fetch the file once, whole, and check its MD5. Only some: read
  // those by ranged GETs (the MD5 covers the whole file, so it cannot be checked then).
  const spool = skipped === 0 ? join(opts.spoolDir, `parquet-${createHash('sha256').update(file.key).digest('hex').slice(0, 16)}`) : null;
  if (spool !== null) await download(store, report, file, spool, opts.signal);
  const local = spool === null ? null : await open(spool);
  try {
    const buffer = local === null ? remote : await fileBuffer(local);
    // With the bucket column (when the schema has one): a row of another bucket is refused, as in CSV.
    const columns = [...PARQUET_COLUMNS, 'bucket'].filter((c) => report.columns.includes(c));
    let groupStart = 0;
    for (const [i, group] of metadata.row_groups.entries()) {
      const groupEnd = groupStart + Number(group.num_rows);
      if (wanted[i]) {
        const rows = await parquetReadObjects({ file: buffer, metadata, columns, rowStart: groupStart, rowEnd: groupEnd });
        if (opts.stats !== undefined) opts.stats.rowGroupsRead++;
        for (const r of rows) {
          if (r.bucket !== undefined && r.bucket !== report.sourceBucket) {
            throw fileError(report, file, `row ${groupStart} names bucket ${JSON.stringify(r.bucket)}, not the report's source bucket ${report.sourceBucket}`);
          }
          const row = parquetRow(r);
          if (row === null) throw fileError(report, file, `row ${groupStart} has no key`);
          if (inRange(row.key, opts.range)) yield row;
        }
      }
      groupStart = groupEnd;
    }
    if (opts.stats !== undefined) opts.stats.filesRead++;
  } finally {
    await local?.close();
    if (spool !== null) await rm(spool, { force: true });
  }
}

/** Whether a row group's key statistics leave room for a key inside the range (no statistics: it may). */
function groupMayOverlap(group: FileMetaData['row_groups'][number], keyColumn: number, range: KeyRange | undefined): boolean {
  if (range === undefined || keyColumn < 0) return true;
  const stats = group.columns[keyColumn]?.meta_data?.statistics;
  // min_value/max_value compare as unsigned bytes (UTF-8 order, as S3 keys); the deprecated
  // min/max of old writers compared signed bytes, so they are not trusted.
  const min = stats?.min_value;
  const max = stats?.max_value;
  if (range.upTo !== undefined && typeof min === 'string' && compareKeys(min, range.upTo) > 0) return false;
  if (range.after !== undefined && typeof max === 'string' && compareKeys(max, range.after) <= 0) return false;
  return true;
}

function parquetRow(r: Record<string, unknown>): InventoryRow | null {
  if (typeof r.key !== 'string') return null;
  const version = typeof r.version_id === 'string' && r.version_id !== '' && r.version_id !== 'null' ? r.version_id : null;
  const modified = r.last_modified_date;
  return {
    key: r.key,
    versionId: version,
    isLatest: r.is_latest === undefined || r.is_latest === null ? true : r.is_latest === true,
    isDeleteMarker: r.is_delete_marker === true,
    size: r.size === null || r.size === undefined ? 0 : Number(r.size),
    lastModified: modified instanceof Date ? modified.getTime() : typeof modified === 'bigint' || typeof modified === 'number' ? Number(modified) : 0,
    etag: typeof r.e_tag === 'string' ? r.e_tag : '',
    ...(typeof r.storage_class === 'string' && r.storage_class !== '' ? { storageClass: r.storage_class } : {}),
  };
}

/** The file, read by ranged GETs as the Parquet reader asks for its parts. */
export function rangedBuffer(store: ObjectStore, file: InventoryFile, signal: AbortSignal | undefined): AsyncBuffer {
  return {
    byteLength: file.size,
    slice: async (start: number, end?: number): Promise<ArrayBuffer> => {
      const last = (end ?? file.size) - 1;
      if (last < start) return new ArrayBuffer(0);
      const bytes = await getBytes(store, file.key, { range: { start, end: last }, ...(signal === undefined ? {} : { signal }) });
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
    },
  };
}

async function download(store: ObjectStore, report: InventoryReport, file: InventoryFile, to: string, signal: AbortSignal | undefined): Promise<void> {
  const md5 = createHash('md5');
  const { body } = await store.get(file.key, signal === undefined ? {} : { signal });
  await pipeline(body, hashing(md5), createWriteStream(to));
  checkMd5(report, file, md5);
}

/** A local file as the Parquet reader's buffer (read on demand, never whole into memory). */
async function fileBuffer(handle: FileHandle): Promise<AsyncBuffer> {
  const { size } = await handle.stat();
  return {
    byteLength: size,
    slice: async (start: number, end?: number): Promise<ArrayBuffer> => {
      const bytes = Buffer.alloc(Math.max(0, Math.min(end ?? size, size) - start));
      await handle.read(bytes, 0, bytes.length, start);
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
    },
  };
}
