/**
 * What `verify` asks the catalog about its packs and blobs: references that locate nothing, the
 * packs catalogued versions need, the blobs one pack holds, and the object versions that need
 * blobs found damaged (to name the damage).
 */
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';
import { blobHashIs, blobReferencedSql } from './schema.js';

/** Blobs referenced by versions but not located in any pack (should never happen). */
export function danglingBlobReferences(catalog: Catalog): number {
  return sqlite(catalog)
    .prepare(
      `SELECT (SELECT count(*) FROM versions v WHERE v.blob IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = v.blob))
            + (SELECT count(*) FROM version_blobs vb WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = vb.blob))`,
    )
    .pluck()
    .get() as number;
}

export function referencedPacks(catalog: Catalog): { name: string; size: number }[] {
  return sqlite(catalog)
    .prepare(`SELECT p.name AS name, p.size AS size FROM packs p WHERE EXISTS (SELECT 1 FROM blobs b WHERE b.pack = p.id AND ${blobReferencedSql('b')}) ORDER BY p.name`)
    .all() as { name: string; size: number }[];
}

export function blobsOfPack(catalog: Catalog, name: string): { hash: Buffer; offset: number; length: number; rawLength: number; flags: number }[] {
  return sqlite(catalog)
    .prepare('SELECT b.hash AS hash, b.offset AS offset, b.length AS length, b.raw_length AS rawLength, b.flags AS flags FROM blobs b JOIN packs p ON p.id = b.pack WHERE p.name = ? ORDER BY b.offset')
    .all(name) as ReturnType<typeof blobsOfPack>;
}

/** Object versions that need any of these blobs (hex ids), to name the damage. */
export function versionsUsingBlobs(catalog: Catalog, hashes: readonly Buffer[]): { bucket: string; key: string; versionId: string | null; run: string }[] {
  if (hashes.length === 0) return [];
  const db = sqlite(catalog);
  db.exec('DROP TABLE IF EXISTS temp.bad; CREATE TEMP TABLE bad (hash BLOB PRIMARY KEY)');
  const put = db.prepare('INSERT OR IGNORE INTO bad (hash) VALUES (?)');
  catalog.transaction(() => hashes.forEach((h) => put.run(h)));
  // CROSS JOIN keeps `bad` (a few ids) outside: one blobs_by_hash seek each, not a scan of blobs.
  return db
    .prepare(
      `SELECT DISTINCT bk.name AS bucket, o.key AS key, v.version_id AS versionId, r.id AS run
       FROM bad CROSS JOIN blobs bl ON ${blobHashIs('bl', 'bad.hash')}
       JOIN versions v ON v.id IN (SELECT id FROM versions WHERE blob = bl.id UNION ALL SELECT version FROM version_blobs WHERE blob = bl.id)
       JOIN objects o ON o.id = v.object JOIN buckets bk ON bk.id = o.bucket JOIN runs r ON r.seq = v.run
       ORDER BY bk.name, o.key`,
    )
    .all() as { bucket: string; key: string; versionId: string | null; run: string }[];
}
