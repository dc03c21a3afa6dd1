/**
 * A catalogued version read back as the record a run wrote of it (VersionRecord), for run
 * manifests (finalize.ts), catalog rebuild checks and tests; and a run's records in (bucket,
 * key) order, so that each record blob covers one contiguous key range (docs/repository-format.md
 * "runs/", `recordRanges`) and a host that needs one prefix reads only the blobs that overlap it.
 */
import type { ObjectSignal } from './anomaly-types.js';
import type { Catalog } from './catalog.js';
import { decodeStorageClass, etagSql, lastModifiedSql } from './codec.js';
import { sqlite } from './connection.js';
import { blobHashIs } from './schema.js';
import type { RecordedBlob, FailureRecord, StoredMeta, VersionRecord } from './types.js';

type Row = Record<string, unknown>;

/**
 * Versions as records (finish with a WHERE clause). `reinstated`: a record of a version id an
 * earlier record of the key already holds, or one forget dropped (a backup records a known
 * version id only to reinstate it; docs/catalog.md "Reinstated versions").
 */
export const VERSION_RECORD_SQL = `SELECT v.id AS row, b.name AS bucket, o.key AS key, v.version_id AS versionId, v.delete_marker AS deleteMarker,
         v.size AS size, ${etagSql('v.etag')} AS etag, ${lastModifiedSql('v')} AS lastModified, v.valid_from AS validFrom,
         v.storage_class AS storageClass, m.json AS meta,
         CASE WHEN v.blob IS NOT NULL THEN (SELECT hex(bl.hash) FROM blobs bl WHERE bl.id = v.blob)
           ELSE (SELECT group_concat(hex(x.hash), ',') FROM (SELECT bl.hash AS hash FROM version_blobs vb JOIN blobs bl ON bl.id = vb.blob
            WHERE vb.version = v.id ORDER BY vb.seq) x) END AS blobs,
         vs.signals AS signals,
         v.version_id IS NOT NULL AND (EXISTS (SELECT 1 FROM versions w WHERE w.object = v.object AND w.version_id = v.version_id AND w.id < v.id)
           OR EXISTS (SELECT 1 FROM dropped_versions d WHERE d.object = v.object AND d.version_id = v.version_id)) AS reinstated
  FROM versions v JOIN objects o ON o.id = v.object JOIN buckets b ON b.id = o.bucket LEFT JOIN metas m ON m.id = v.meta
    LEFT JOIN version_signals vs ON vs.version = v.id`;

export function toVersionRecord(r: Row): VersionRecord & { row: number } {
  return {
    row: r.row as number,
    bucket: r.bucket as string,
    key: r.key as string,
    versionId: r.versionId as string | null,
    deleteMarker: r.deleteMarker === 1,
    size: r.size as number,
    etag: r.etag as string,
    lastModified: r.lastModified as number,
    validFrom: r.validFrom as number,
    ...(r.storageClass === null ? {} : { storageClass: decodeStorageClass(r.storageClass)! }),
    ...(r.meta === null ? {} : { meta: JSON.parse(r.meta as string) as StoredMeta }),
    blobs: r.blobs === null ? [] : (r.blobs as string).toLowerCase().split(','),
    ...(r.signals === null ? {} : { signals: (r.signals as string).split(',') as ObjectSignal[] }),
    ...(r.reinstated === 1 ? { reinstated: true as const } : {}),
  };
}

/**
 * A run's version records in (bucket, key) order (UTF-8 byte order, as S3 lists and SQLite's
 * BINARY collation compares), the records of one key in the order the catalog holds them (so a
 * reader that imports them keeps each key's history as written), page by page. The order is
 * sorted once into a temporary table of row ids (a run of 1,000,000 versions: one sort, never
 * held in memory); `close` drops it. Pages are plain reads: other statements may run between them.
 */
export class RunVersionsByKey {
  private readonly table: string;
  private position = 0;

  constructor(
    private readonly catalog: Catalog,
    runSeq: number,
  ) {
    const db = sqlite(catalog);
    this.table = `temp.run_key_order_${runSeq}`;
    db.exec(`DROP TABLE IF EXISTS ${this.table}; CREATE TABLE ${this.table} (position INTEGER PRIMARY KEY, version INTEGER NOT NULL)`);
    db.prepare(
      `INSERT INTO ${this.table} (version)
       SELECT v.id FROM versions v JOIN objects o ON o.id = v.object JOIN buckets b ON b.id = o.bucket
       WHERE v.run = ? ORDER BY b.name, o.key, v.id`,
    ).run(runSeq);
  }

  /** The next `limit` records (an empty page at the end). */
  page(limit: number): (VersionRecord & { row: number })[] {
    const db = sqlite(this.catalog);
    const order = db.prepare(`SELECT version FROM ${this.table} WHERE position > ? ORDER BY position LIMIT ?`).pluck().all(this.position, limit) as number[];
    if (order.length === 0) return [];
    const rows = db
      .prepare(`${VERSION_RECORD_SQL} WHERE v.id IN (SELECT version FROM ${this.table} WHERE position > ? AND position <= ?)`)
      .all(this.position, this.position + order.length) as Row[];
    const locations = this.locations(this.position, this.position + order.length);
    this.position += order.length;
    const byRow = new Map(rows.map((r) => [r.row as number, r]));
    return order.map((version) => {
      const record = toVersionRecord(byRow.get(version)!);
      const locs = locations.get(version);
      return locs === undefined ? record : { ...record, locs };
    });
  }

  /** Where the blobs of the versions at positions (from, to] are stored, by version row, in blob order. */
  private locations(from: number, to: number): Map<number, RecordedBlob[]> {
    const page = `SELECT version FROM ${this.table} WHERE position > @from AND position <= @to`;
    const rows = sqlite(this.catalog)
      .prepare(
        `SELECT x.version AS version, p.name AS pack, p.size AS packSize, b.offset AS offset, b.length AS length, b.raw_length AS rawLength, b.flags & 1 AS compressed
         FROM (SELECT v.id AS version, 0 AS seq, v.blob AS blob FROM versions v WHERE v.blob IS NOT NULL AND v.id IN (${page})
               UNION ALL SELECT vb.version, vb.seq, vb.blob FROM version_blobs vb WHERE vb.version IN (${page})) x
         JOIN blobs b ON b.id = x.blob JOIN packs p ON p.id = b.pack ORDER BY x.version, x.seq`,
      )
      .all({ from, to }) as { version: number; pack: string; packSize: number; offset: number; length: number; rawLength: number; compressed: 0 | 1 }[];
    const out = new Map<number, RecordedBlob[]>();
    for (const r of rows) {
      let locs = out.get(r.version);
      if (locs === undefined) out.set(r.version, (locs = []));
      locs.push([r.pack, r.packSize, r.offset, r.length, r.rawLength, r.compressed]);
    }
    return out;
  }

  close(): void {
    sqlite(this.catalog).exec(`DROP TABLE IF EXISTS ${this.table}`);
  }
}

/** Where a catalogued blob is stored, as a record line or manifest carries it; undefined when no catalogued pack holds it. */
export function blobLocationOf(catalog: Catalog, hash: Buffer): RecordedBlob | undefined {
  return blobLocator(catalog)(hash);
}

/** blobLocationOf with its statement prepared once, for callers that locate many blobs. */
export function blobLocator(catalog: Catalog): (hash: Buffer) => RecordedBlob | undefined {
  const get = sqlite(catalog)
    .prepare(
      `SELECT p.name, p.size, b.offset, b.length, b.raw_length, b.flags & 1
       FROM blobs b JOIN packs p ON p.id = b.pack WHERE ${blobHashIs('b', '@hash')}`,
    )
    .raw();
  return (hash) => get.get({ hash }) as RecordedBlob | undefined;
}

/** A run's failure records in (bucket, key) order, then the order the run met them. */
export function failuresOfRunByKey(catalog: Catalog, runSeq: number): FailureRecord[] {
  return (
    sqlite(catalog).prepare('SELECT bucket, key, version_id AS versionId, code, message FROM failures WHERE run = ? ORDER BY bucket, key, rowid').all(runSeq) as Row[]
  ).map((r) => ({ bucket: r.bucket as string, key: r.key as string, versionId: r.versionId as string | null, code: r.code as string, message: r.message as string }));
}
