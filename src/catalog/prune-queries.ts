/**
 * What `prune` asks the catalog (src/engine/prune.ts): which blobs are still used (by a
 * catalogued version, or by a run manifest's records: setPruneRecordBlobs), how much of each
 * pack that is, and the used blobs a repack copies. Catalog.applyPrune records the result.
 */
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';
import { blobHashIs, blobReferencedSql } from './schema.js';
import { pendingDeletions, setPendingDeletion } from './forget.js';
import { fileName } from '../repository/layout.js';

/**
 * Declares the record blobs that run manifests in the repository refer to: together with
 * every blob a catalogued version refers to, they are the blobs prune keeps. Returns the
 * ones the catalog does not locate (they must not be pruned blindly).
 */
export function setPruneRecordBlobs(catalog: Catalog, hashes: readonly Buffer[]): Buffer[] {
  const db = sqlite(catalog);
  db.exec('DROP TABLE IF EXISTS temp.prune_records; CREATE TEMP TABLE prune_records (hash BLOB PRIMARY KEY) WITHOUT ROWID');
  const put = db.prepare('INSERT OR IGNORE INTO temp.prune_records (hash) VALUES (?)');
  catalog.transaction(() => hashes.forEach((h) => put.run(h)));
  return db.prepare(`SELECT r.hash FROM temp.prune_records r WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE ${blobHashIs('b', 'r.hash')})`).pluck().all() as Buffer[];
}

/** Per catalogued pack: its blob rows, and how many of them (and how many bytes) are still used. */
export function packUsage(catalog: Catalog): { name: string; blobs: number; usedBlobs: number; usedBytes: number }[] {
  return sqlite(catalog)
    .prepare(
      `SELECT name, count(blob) AS blobs, coalesce(sum(used), 0) AS usedBlobs, coalesce(sum(used * length), 0) AS usedBytes
       FROM (SELECT p.id AS pack, p.name AS name, b.id AS blob, b.length AS length,
                    CASE WHEN b.id IS NOT NULL AND ${usedBlobSql('b')} THEN 1 ELSE 0 END AS used
             FROM packs p LEFT JOIN blobs b ON b.pack = p.id)
       GROUP BY pack`,
    )
    .all() as { name: string; blobs: number; usedBlobs: number; usedBytes: number }[];
}

/** The used blobs located in one pack, in pack order (what a repack copies). */
export function usedBlobsOfPack(catalog: Catalog, name: string): { hash: Buffer; offset: number; length: number; rawLength: number; flags: number }[] {
  return sqlite(catalog)
    .prepare(
      `SELECT b.hash AS hash, b.offset AS offset, b.length AS length, b.raw_length AS rawLength, b.flags AS flags
       FROM blobs b JOIN packs p ON p.id = b.pack WHERE p.name = ? AND ${usedBlobSql('b')} ORDER BY b.offset`,
    )
    .all(name) as ReturnType<typeof usedBlobsOfPack>;
}

/** SQL condition: blob row `b` is used by a catalogued version or by a run manifest's records (temp.prune_records). */
export function usedBlobSql(b: string): string {
  return `(${blobReferencedSql(b)} OR EXISTS (SELECT 1 FROM temp.prune_records r WHERE r.hash = ${b}.hash))`;
}

/**
 * Index files and packs a prune dropped that Object Lock kept (`pending_deletions`): prune only
 * retries their deletion. One the catalog knows again (the same pack written anew) is needed,
 * and no longer pending.
 */
export function prunePending(catalog: Catalog): { indexes: Set<string>; packs: Set<string> } {
  const db = sqlite(catalog);
  const knownIndex = db.prepare('SELECT 1 FROM index_files WHERE name = ?').pluck();
  const knownPack = db.prepare('SELECT 1 FROM packs WHERE name = ?').pluck();
  const indexes = new Set<string>();
  const packs = new Set<string>();
  for (const key of pendingDeletions(catalog)) {
    const index = fileName('index', key);
    const pack = fileName('packs', key);
    if (index === null && pack === null) continue;
    if (index !== null ? knownIndex.get(index) !== undefined : knownPack.get(pack) !== undefined) setPendingDeletion(catalog, key, null);
    else if (index !== null) indexes.add(index);
    else packs.add(pack!);
  }
  return { indexes, packs };
}

type WrittenBlob = { hash: Buffer; offset: number; length: number; rawLength: number; flags: number };

/**
 * temp.prune_written: the entries of the packs a prune's repack wrote, until the catalog records
 * them (src/engine/prune-repack.ts): on disk, not in memory. `create` makes it empty; otherwise
 * it is dropped.
 */
export function clearWrittenPacks(catalog: Catalog, create: boolean): void {
  sqlite(catalog).exec(
    `DROP TABLE IF EXISTS temp.prune_written;${create ? ' CREATE TEMP TABLE prune_written (pack TEXT NOT NULL, hash BLOB NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL, raw_length INTEGER NOT NULL, flags INTEGER NOT NULL)' : ''}`,
  );
}

/** Records a written pack's entries (replacing those of a pack of the same name). */
export function recordWrittenPack(catalog: Catalog, pack: string, blobs: readonly WrittenBlob[]): void {
  const db = sqlite(catalog);
  const put = db.prepare('INSERT INTO temp.prune_written (pack, hash, offset, length, raw_length, flags) VALUES (?, ?, ?, ?, ?, ?)');
  catalog.transaction(() => {
    db.prepare('DELETE FROM temp.prune_written WHERE pack = ?').run(pack);
    for (const b of blobs) put.run(pack, b.hash, b.offset, b.length, b.rawLength, b.flags);
  });
}

/** One written pack's entries, in pack order. */
export function writtenBlobs(catalog: Catalog, pack: string): WrittenBlob[] {
  return sqlite(catalog)
    .prepare('SELECT hash, offset, length, raw_length AS rawLength, flags FROM temp.prune_written WHERE pack = ? ORDER BY offset')
    .all(pack) as WrittenBlob[];
}
