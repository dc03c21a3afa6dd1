/**
 * What a rollback reads from the catalog beyond the restore selection (restore-selection.ts,
 * whose temp.sel holds the wanted state): that state in key order, page by page, to merge-join
 * with a listing of the live bucket; and a queue of the keys to upload from the repository
 * (temp.rollback_upload), so a rollback of an unversioned bucket never holds them in memory.
 */
import type { Catalog } from './catalog.js';
import { encodeEtag, etagSql, lastModifiedSql } from './codec.js';
import type { StoredMeta } from './types.js';
import { sqlite } from './connection.js';
import { selectionStatement } from './restore-selection.js';

/** The version a key had at the cut, as a rollback compares it with the live bucket. */
export interface WantedVersion {
  key: string;
  versionId: string | null;
  size: number;
  etag: string | null;
}

const WANTED_SQL = `SELECT s.key AS key, v.version_id AS versionId, v.size AS size, ${etagSql('v.etag')} AS etag
  FROM temp.sel s JOIN versions v ON v.id = s.version`;

/** One key's version in the selected state with its Last-Modified (ms) and recorded metadata. */
export function wantedWithMeta(catalog: Catalog, bucket: string, key: string): (WantedVersion & { lastModified: number; meta: StoredMeta }) | undefined {
  const r = selectionStatement(
    catalog,
    `SELECT s.key AS key, v.version_id AS versionId, v.size AS size, ${etagSql('v.etag')} AS etag, ${lastModifiedSql('v')} AS lastModified, m.json AS meta
     FROM temp.sel s JOIN versions v ON v.id = s.version LEFT JOIN metas m ON m.id = v.meta WHERE s.bucket = ? AND s.key = ?`,
  ).get(bucket, key) as (WantedVersion & { lastModified: number; meta: string | null }) | undefined;
  return r === undefined ? undefined : { ...r, meta: r.meta === null ? {} : (JSON.parse(r.meta) as StoredMeta) };
}

/**
 * The selected state (after `selectState`) of one bucket, keys strictly after `afterKey`
 * ('' for the first page), in key order: SQLite compares UTF-8 bytes, as S3 lists.
 */
export function wantedPage(catalog: Catalog, bucket: string, afterKey: string, first: boolean, limit: number): WantedVersion[] {
  return sqlite(catalog)
    .prepare(`${WANTED_SQL} WHERE s.bucket = ? AND s.key ${first ? '>=' : '>'} ? ORDER BY s.key LIMIT ?`)
    .all(bucket, afterKey, limit) as WantedVersion[];
}

/** One key of the selected state (for keys named one by one), or undefined when it had none. */
export function wantedKey(catalog: Catalog, bucket: string, key: string): WantedVersion | undefined {
  return selectionStatement(catalog, `${WANTED_SQL} WHERE s.bucket = ? AND s.key = ?`).get(bucket, key) as WantedVersion | undefined;
}

/** The blob ids (in order) of a key's version in the selected state: what its content cuts into. */
export function wantedBlobs(catalog: Catalog, bucket: string, key: string): Buffer[] {
  const single = selectionStatement(catalog, 'SELECT bl.hash FROM temp.sel s JOIN versions v ON v.id = s.version JOIN blobs bl ON bl.id = v.blob WHERE s.bucket = ? AND s.key = ?', true).get(bucket, key) as Buffer | undefined;
  if (single !== undefined) return [single];
  return selectionStatement(catalog, 'SELECT bl.hash FROM temp.sel s JOIN version_blobs vb ON vb.version = s.version JOIN blobs bl ON bl.id = vb.blob WHERE s.bucket = ? AND s.key = ? ORDER BY vb.seq', true).all(bucket, key) as Buffer[];
}

/**
 * Whether a run that started after `after` (ms) recorded exactly this state of a key (size and
 * ETag, or a file's change token): the key as it is now is in the backup, from a run after the
 * instant. By the run, not the version's time: a file's version begins at its modification time.
 */
export function recordedAfter(catalog: Catalog, bucket: string, key: string, size: number, etag: string, after: number): boolean {
  return (
    sqlite(catalog)
      .prepare(
        `SELECT 1 FROM versions v JOIN objects o ON o.id = v.object JOIN buckets b ON b.id = o.bucket JOIN runs r ON r.seq = v.run
         WHERE b.name = ? AND o.key = ? AND v.size = ? AND v.etag = ? AND r.started > ? AND v.delete_marker = 0 LIMIT 1`,
      )
      .get(bucket, key, size, encodeEtag(etag), after) !== undefined
  );
}

/** Starts an empty queue of keys to upload from the repository. */
export function beginUploadQueue(catalog: Catalog): void {
  sqlite(catalog).exec('DROP TABLE IF EXISTS temp.rollback_upload; CREATE TEMP TABLE rollback_upload (key TEXT NOT NULL)');
}

export function queueUploads(catalog: Catalog, keys: readonly string[]): void {
  const add = sqlite(catalog).prepare('INSERT INTO temp.rollback_upload (key) VALUES (?)');
  catalog.transaction(() => keys.forEach((k) => add.run(k)));
}

/** A page of the queued keys after `afterRowid`, in the order they were queued. */
export function uploadQueuePage(catalog: Catalog, afterRowid: number, limit: number): { rowid: number; key: string }[] {
  return sqlite(catalog).prepare('SELECT rowid, key FROM temp.rollback_upload WHERE rowid > ? ORDER BY rowid LIMIT ?').all(afterRowid, limit) as { rowid: number; key: string }[];
}
