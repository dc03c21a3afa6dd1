import type Database from 'better-sqlite3';
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';
import { blobReferencedSql } from './schema.js';

/**
 * The Object Lock retain-until date lakeguard knows for each repository object, and the version
 * it wrote (the date it wrote with the object, or set with `lock extend`, or read from the
 * server). A cache like the rest of the catalog: a missing row only means "ask the server". It
 * lets a daily `lock extend` touch only the objects whose retention runs short, with no request
 * for the others, and extend the version lakeguard wrote, not a newer one someone put over it.
 *
 * The table is created on first use, so catalogs of any age gain it without a migration.
 */
const TABLE = `CREATE TABLE IF NOT EXISTS lock_until (name TEXT PRIMARY KEY, until INTEGER NOT NULL, version TEXT) WITHOUT ROWID`;

/** Blob type of run records in `blobs.flags` (bits 1–2), as in docs/repository-format.md. */
const RECORDS_TYPE = 1;

/** What the catalog knows about one object's retention. */
export interface KnownLock {
  until: number;
  /** The version lakeguard wrote (null: unversioned, or not known). */
  version: string | null;
}

export class LockDates {
  private readonly db: Database.Database;
  private readonly upsert: Database.Statement;
  private readonly lookup: Database.Statement;

  constructor(catalog: Catalog) {
    this.db = sqlite(catalog);
    this.db.exec(TABLE);
    // Per version, the date only moves forward (a retention can be extended, never shortened);
    // a new version written by lakeguard replaces the row.
    this.upsert = this.db.prepare(
      `INSERT INTO lock_until (name, until, version) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET
         until = CASE WHEN version IS excluded.version THEN max(until, excluded.until) ELSE excluded.until END,
         version = excluded.version`,
    );
    this.lookup = this.db.prepare('SELECT until, version FROM lock_until WHERE name = ?');
  }

  record(name: string, until: Date, version: string | null): void {
    this.upsert.run(name, until.getTime(), version);
  }

  /** What is known of each name, null where nothing is. */
  known(names: readonly string[]): (KnownLock | null)[] {
    return names.map((n) => (this.lookup.get(n) as KnownLock | undefined) ?? null);
  }

  /** Index files the catalog knows of, a page at a time in name order. */
  indexFilesAfter(after: string, limit: number): string[] {
    return this.db.prepare('SELECT name FROM index_files WHERE name > ? ORDER BY name LIMIT ?').pluck().all(after, limit) as string[];
  }

  /**
   * Packs still needed: those holding a blob of an object version the catalog keeps, or any
   * run records. Prune keeps the record blobs of every manifest in `runs/`; which manifest
   * refers to which record blob is not in the catalog, so every pack with records counts
   * (a little more retention than strictly needed, never less).
   */
  livePacksAfter(after: string, limit: number): string[] {
    return this.db
      .prepare(
        `SELECT p.name FROM packs p WHERE p.name > ? AND (
           EXISTS (SELECT 1 FROM blobs b WHERE b.pack = p.id AND ${blobReferencedSql('b')})
           OR EXISTS (SELECT 1 FROM blobs b WHERE b.pack = p.id AND ((b.flags >> 1) & 3) = ${RECORDS_TYPE})
         ) ORDER BY p.name LIMIT ?`,
      )
      .pluck()
      .all(after, limit) as string[];
  }
}
