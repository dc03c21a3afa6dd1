// S3 Inventory reports in AWS's documented format, written by tests (the test plays the S3
// Inventory service): manifest.json (+ manifest.checksum) in a dated folder, data files under
// data/, CSV gzip (every field quoted, keys URL-encoded with '+' for a space) or Parquet
// (written by a real writer, hyparquet-writer, with the schema AWS documents).
import { createHash, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { ObjectStore } from '../../src/storage/types.js';

/** One row of a report: what S3 Inventory says about an object version. */
export interface ReportRow {
  /** The row's Bucket column (default: the report's source bucket; another one is a forgery). */
  bucket?: string;
  key: string;
  versionId?: string | null;
  isLatest?: boolean;
  isDeleteMarker?: boolean;
  size: number;
  lastModified: Date;
  etag: string;
  storageClass?: string;
}

export interface ReportOptions {
  /** The source bucket the report is of. */
  sourceBucket: string;
  /** The destination bucket (named in manifest.json as an ARN). */
  destinationBucket: string;
  /** The configuration folder, e.g. `reports/raw-events/daily/` ('' or ending in '/'). */
  prefix: string;
  /** When the report's scan began (creationTimestamp; also names the dated folder). */
  created: Date;
  format: 'CSV' | 'Parquet' | 'ORC';
  /** Include VersionId, IsLatest, IsDeleteMarker ("All versions"). */
  allVersions?: boolean;
  /** How many data files the rows are spread over (CSV: round robin, in no order; Parquet: contiguous stretches of keys). */
  files?: number;
  /** Parquet row group size (rows). */
  rowGroupSize?: number;
  /** Write manifest.checksum (default true). */
  checksum?: boolean;
}

/** `2026-12-06T01-00Z`: the dated folder of a report created at `at`. */
export function reportFolder(at: Date): string {
  return at.toISOString().slice(0, 16).replace(':', '-') + 'Z';
}

/** S3 Inventory's URL encoding of a key in CSV: form encoding, a space as '+'. */
export function inventoryEncode(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Writes the data files and manifest of one report; returns the manifest's key. */
export async function writeInventoryReport(store: ObjectStore, rows: readonly ReportRow[], o: ReportOptions): Promise<string> {
  const fileCount = o.files ?? 2;
  const parts: ReportRow[][] = Array.from({ length: fileCount }, () => []);
  if (o.format === 'Parquet') {
    // Parquet: each file a contiguous stretch of the key space, in key order, as a scan in key
    // order writes them (row groups then cover key ranges; their statistics can skip them).
    const sorted = [...rows].sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)) || Number(b.isLatest ?? true) - Number(a.isLatest ?? true));
    const per = Math.ceil(sorted.length / fileCount);
    sorted.forEach((row, i) => parts[Math.floor(i / per)]!.push(row));
  } else {
    rows.forEach((row, i) => parts[i % fileCount]!.push(row)); // CSV: no order at all
  }
  const files: { key: string; size: number; MD5checksum: string }[] = [];
  for (const part of parts) {
    const ext = o.format === 'CSV' ? 'csv.gz' : o.format === 'Parquet' ? 'parquet' : 'orc';
    const key = `${o.prefix}data/${randomUUID()}.${ext}`;
    const body = o.format === 'CSV' ? csvFile(part, o) : o.format === 'Parquet' ? parquetFile(part, o) : Buffer.from('ORC');
    await store.put(key, body);
    files.push({ key, size: body.length, MD5checksum: createHash('md5').update(body).digest('hex') });
  }
  const manifest = Buffer.from(
    JSON.stringify(
      {
        sourceBucket: o.sourceBucket,
        destinationBucket: `arn:aws:s3:::${o.destinationBucket}`,
        version: '2016-11-30',
        creationTimestamp: String(o.created.getTime()),
        fileFormat: o.format,
        fileSchema: o.format === 'CSV' ? csvSchema(o).join(', ') : parquetSchema(o),
        files,
      },
      null,
      2,
    ),
  );
  const folder = `${o.prefix}${reportFolder(o.created)}/`;
  await store.put(`${folder}manifest.json`, manifest);
  if (o.checksum !== false) await store.put(`${folder}manifest.checksum`, Buffer.from(createHash('md5').update(manifest).digest('hex')));
  // The Hive symlink AWS writes beside: lakeguard does not need it, but a real report has it.
  await store.put(`${o.prefix}hive/dt=${reportFolder(o.created).slice(0, -1).replace('T', '-')}/symlink.txt`, Buffer.from(files.map((f) => `s3://${o.destinationBucket}/${f.key}`).join('\n')));
  return `${folder}manifest.json`;
}

function csvSchema(o: ReportOptions): string[] {
  return ['Bucket', 'Key', ...(o.allVersions ? ['VersionId', 'IsLatest', 'IsDeleteMarker'] : []), 'Size', 'LastModifiedDate', 'ETag', 'StorageClass', 'IsMultipartUploaded'];
}

function csvFile(rows: readonly ReportRow[], o: ReportOptions): Buffer {
  const lines = rows.map((r) => {
    const fields = [
      r.bucket ?? o.sourceBucket,
      inventoryEncode(r.key),
      ...(o.allVersions ? [r.versionId ?? 'null', String(r.isLatest ?? true), String(r.isDeleteMarker ?? false)] : []),
      r.isDeleteMarker ? '' : String(r.size),
      r.lastModified.toISOString(),
      r.isDeleteMarker ? '' : r.etag,
      r.isDeleteMarker ? '' : (r.storageClass ?? 'STANDARD'),
      'false',
    ];
    return fields.map((f) => `"${f.replace(/"/g, '""')}"`).join(',');
  });
  return gzipSync(Buffer.from(lines.map((l) => `${l}\n`).join('')));
}

function parquetSchema(o: ReportOptions): string {
  const versions = o.allVersions ? ' optional binary version_id (UTF8); optional boolean is_latest; optional boolean is_delete_marker;' : '';
  return `message s3.inventory { required binary bucket (UTF8); required binary key (UTF8);${versions} optional int64 size; optional int64 last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8); optional binary storage_class (UTF8); optional boolean is_multipart_uploaded;}`;
}

function parquetFile(rows: readonly ReportRow[], o: ReportOptions): Buffer {
  // AWS writes each file in key order, so a file's row groups cover key ranges: sort to match.
  const sorted = [...rows].sort((a, b) => (Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)) || Number(b.isLatest ?? true) - Number(a.isLatest ?? true)));
  const col = <T>(f: (r: ReportRow) => T): T[] => sorted.map(f);
  return Buffer.from(
    parquetWriteBuffer({
      rowGroupSize: o.rowGroupSize ?? 100_000,
      columnData: [
        { name: 'bucket', type: 'STRING', data: col((r) => r.bucket ?? o.sourceBucket) },
        { name: 'key', type: 'STRING', data: col((r) => r.key) },
        ...(o.allVersions
          ? [
              { name: 'version_id', type: 'STRING' as const, data: col((r) => r.versionId ?? 'null') },
              { name: 'is_latest', type: 'BOOLEAN' as const, data: col((r) => r.isLatest ?? true) },
              { name: 'is_delete_marker', type: 'BOOLEAN' as const, data: col((r) => r.isDeleteMarker ?? false) },
            ]
          : []),
        { name: 'size', type: 'INT64', data: col((r) => (r.isDeleteMarker ? null : BigInt(r.size))) },
        { name: 'last_modified_date', type: 'TIMESTAMP', data: col((r) => r.lastModified) },
        { name: 'e_tag', type: 'STRING', data: col((r) => (r.isDeleteMarker ? null : r.etag)) },
        { name: 'storage_class', type: 'STRING', data: col((r) => (r.isDeleteMarker ? null : (r.storageClass ?? 'STANDARD'))) },
        { name: 'is_multipart_uploaded', type: 'BOOLEAN', data: col(() => false) },
      ],
    }),
  );
}

/** The rows a report would list for what a store lists now (every version with `versions`). */
export async function rowsOf(store: ObjectStore, versions: boolean): Promise<ReportRow[]> {
  const rows: ReportRow[] = [];
  for await (const e of store.list('', { versions })) {
    if (e.kind !== 'object') continue;
    rows.push({
      key: e.key,
      versionId: e.versionId,
      isLatest: e.isLatest,
      isDeleteMarker: e.isDeleteMarker,
      size: e.size,
      lastModified: e.lastModified,
      etag: e.etag,
      ...(e.storageClass === undefined ? {} : { storageClass: e.storageClass }),
    });
  }
  return rows;
}
