/**
 * `catalog rebuild` checks index entries against the packs that exist (one LIST of packs/):
 * while a PresentPacks is active (Catalog.beginPresentPacks), Catalog.insertPack hands it every
 * pack an index file lists. A blob listed in several index files is then located in a pack that
 * exists with the size the index file gives, entries that lie outside their pack are left out,
 * and what is lost is reported at the end.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';
import { blobHashIs } from './schema.js';
import type { PackRecord } from './types.js';

/** What the check found (Catalog.endPresentPacks). */
export interface PackCheckResult {
  /** Listed packs that do not exist (or not with that size) and still locate blobs, with the versions that need them. */
  lost: { pack: string; blobs: number; versions: number }[];
  /** Index entries left out because they lie outside their pack. */
  outside: { indexFile: string; pack: string; entries: number }[];
}

export class PresentPacks {
  private readonly db: BetterSqlite3.Database;
  private readonly present: BetterSqlite3.Statement;
  private readonly markMissing: BetterSqlite3.Statement;
  private readonly relocate: BetterSqlite3.Statement;
  private anyMissing = false;
  /** Entries that lie outside their pack, per "<index file> <pack>". */
  private readonly outside = new Map<string, number>();

  constructor(private readonly catalog: Catalog) {
    this.db = sqlite(catalog);
    this.db.exec(`DROP TABLE IF EXISTS temp.present_packs; CREATE TEMP TABLE present_packs (name TEXT PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;
                  DROP TABLE IF EXISTS temp.missing_packs; CREATE TEMP TABLE missing_packs (id INTEGER PRIMARY KEY)`);
    this.present = this.db.prepare('SELECT 1 FROM temp.present_packs WHERE name = ? AND size = ?').pluck();
    this.markMissing = this.db.prepare('INSERT OR IGNORE INTO temp.missing_packs (id) VALUES (?)');
    this.relocate = this.db.prepare(
      `UPDATE blobs SET pack = @pack, offset = @offset, length = @length, raw_length = @rawLength, flags = @flags, index_file = @indexFile
       WHERE ${blobHashIs('blobs', '@hash')} AND pack IN (SELECT id FROM temp.missing_packs)`,
    );
  }

  /** Packs the repository has (from its listing). */
  add(packs: readonly { name: string; size: number }[]): void {
    const put = this.db.prepare('INSERT OR REPLACE INTO temp.present_packs (name, size) VALUES (?, ?)');
    this.catalog.transaction(() => packs.forEach((p) => put.run(p.name, p.size)));
  }

  /**
   * Inserts the blobs of a pack an index file lists (row `packRow`), through `insertBlob`, as the
   * check decides: all of them when the pack is missing (it is remembered as such), else those
   * inside the pack, moving a blob first located in a missing pack here.
   */
  insertPack(pack: PackRecord, packRow: number, indexFile: string | null, indexRow: number | null, insertBlob: (b: PackRecord['blobs'][number]) => void): void {
    if (this.present.get(pack.name, pack.size) === undefined) {
      this.markMissing.run(packRow);
      this.anyMissing = true;
      for (const b of pack.blobs) insertBlob(b);
      return;
    }
    for (const b of pack.blobs) {
      if (b.offset + b.length > pack.size - 4) {
        // An entry outside its pack locates nothing: left out (its versions are reported missing).
        const key = `${indexFile ?? ''} ${pack.name}`;
        this.outside.set(key, (this.outside.get(key) ?? 0) + 1);
        continue;
      }
      insertBlob(b);
      // A blob first located in a missing pack moves here: this copy can be read.
      if (this.anyMissing) this.relocate.run({ hash: b.hash, pack: packRow, offset: b.offset, length: b.length, rawLength: b.rawLength, flags: b.flags, indexFile: indexRow });
    }
  }

  /**
   * Ends the check: packs index files list that do not exist (or not with that size) and still
   * locate blobs (no other index file has them in an existing pack), with the number of
   * catalogued versions that need those blobs, and index entries that were left out because
   * they lie outside their pack. Missing packs that locate nothing are dropped.
   */
  end(): PackCheckResult {
    const lost = this.db
      .prepare(
        `SELECT p.name AS pack, count(b.id) AS blobs,
                (SELECT count(*) FROM versions v WHERE v.blob IN (SELECT id FROM blobs WHERE pack = p.id)
                   OR v.id IN (SELECT vb.version FROM version_blobs vb JOIN blobs x ON x.id = vb.blob WHERE x.pack = p.id)) AS versions
         FROM temp.missing_packs m JOIN packs p ON p.id = m.id JOIN blobs b ON b.pack = p.id GROUP BY p.id ORDER BY p.name`,
      )
      .all() as { pack: string; blobs: number; versions: number }[];
    this.catalog.transaction(() => {
      this.db.prepare('DELETE FROM packs WHERE id IN (SELECT id FROM temp.missing_packs) AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.pack = packs.id)').run();
    });
    const outside = [...this.outside].map(([key, entries]) => {
      const [indexFile = '', pack = ''] = key.split(' ');
      return { indexFile, pack, entries };
    });
    this.db.exec('DROP TABLE IF EXISTS temp.present_packs; DROP TABLE IF EXISTS temp.missing_packs');
    return { lost, outside };
  }
}
