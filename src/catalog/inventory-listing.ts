/**
 * An S3 Inventory report's rows in a scratch SQLite file (beside the catalog, removed when the
 * run ends), indexed by key, so that listings are answered by range queries in S3 key order
 * (SQLite's BINARY collation compares UTF-8 bytes, as S3 does) without holding the report in
 * memory. A source's listing is served from it by src/engine/inventory-store.ts; the rows come
 * from src/engine/inventory-files.ts. All of its SQL is here.
 */
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { sqliteDatabase } from './connection.js';


/** One row as stored and listed (the report's columns lakeguard uses). */
export interface InventoryListingRow {
  key: string;
  versionId: string | null;
  isLatest: boolean;
  isDeleteMarker: boolean;
  size: number;
  lastModified: number;
  etag: string;
  storageClass?: string;
}

interface StoredRow {
  key: string;
  version_id: string | null;
  is_latest: number;
  is_delete_marker: number;
  size: number;
  last_modified: number;
  etag: string;
  storage_class: string | null;
}

const INSERT_BATCH = 5000;

export class InventoryListing {
  private readonly db: BetterSqlite3.Database;
  private readonly pending: InventoryListingRow[] = [];
  private readonly insert: BetterSqlite3.Statement;
  private rowCount = 0;

  /** A new, empty listing in `file` (replaced if it exists: a scratch file of a dead run). */
  constructor(private readonly file: string) {
    rmSync(file, { force: true });
    this.db = new (sqliteDatabase())(file);
    // Scratch data: a crash loses nothing that the report does not still hold.
    this.db.pragma('journal_mode = OFF');
    this.db.pragma('synchronous = OFF');
    this.db.exec(`CREATE TABLE rows (
      key TEXT NOT NULL, version_id TEXT, is_latest INTEGER NOT NULL, is_delete_marker INTEGER NOT NULL,
      size INTEGER NOT NULL, last_modified INTEGER NOT NULL, etag TEXT NOT NULL, storage_class TEXT)`);
    this.insert = this.db.prepare('INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  }

  get rows(): number {
    return this.rowCount + this.pending.length;
  }

  add(row: InventoryListingRow): void {
    this.pending.push(row);
    if (this.pending.length >= INSERT_BATCH) this.flush();
  }

  /**
   * Ends loading: the key index is built once, after all rows are in (faster than row by row).
   * SQLite sorts it in temporary files, about 110 B per row for 120-character keys (1 M rows:
   * 108 MB), which it would put in SQLITE_TMPDIR, TMPDIR, /var/tmp or /tmp: often a small
   * volume (the Kubernetes manifests' /tmp is 1 GiB) while the listing's own directory, beside
   * the catalog, is where the operator sized the space. So they go beside the listing.
   */
  finishLoad(): void {
    this.flush();
    // SQLite's temporary directory is one setting for the whole process: set for this statement
    // only, then put back. A directory that is gone later (the listing's is removed at close) is
    // passed over by SQLite, which then takes the next of its defaults.
    const before = this.db.pragma('temp_store_directory', { simple: true }) as string | null | undefined;
    this.db.pragma(`temp_store_directory = ${sqlString(dirname(this.file))}`);
    try {
      // Per key: the current version first, then newest first (as ListObjectVersions lists them).
      this.db.exec('CREATE INDEX rows_order ON rows (key, is_latest DESC, last_modified DESC, version_id)');
    } finally {
      this.db.pragma(`temp_store_directory = ${sqlString(before ?? '')}`);
    }
    this.db.exec('ANALYZE');
  }

  /**
   * Up to `limit` rows with keys in [from, below) (from exclusive when `fromExclusive`; below
   * open when null), in S3 listing order. `current`: only each key's current version, and no
   * delete markers (what ListObjectsV2 shows).
   */
  page(from: string, fromExclusive: boolean, below: string | null, current: boolean, limit: number): InventoryListingRow[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM rows WHERE key ${fromExclusive ? '>' : '>='} ? ${below === null ? '' : 'AND key < ?'}
         ${current ? 'AND is_latest = 1 AND is_delete_marker = 0' : ''}
         ORDER BY key, is_latest DESC, last_modified DESC, version_id LIMIT ?`,
      )
      .all(...(below === null ? [from, limit] : [from, below, limit])) as StoredRow[];
    return rows.map(fromStored);
  }

  /** The smallest and largest key of any row under `prefix` (any version), null when it has none. */
  keyBounds(prefix: string, below: string | null): { first: string; last: string } | null {
    const row = this.db
      .prepare(`SELECT min(key) AS first, max(key) AS last FROM rows WHERE key >= ? ${below === null ? '' : 'AND key < ?'}`)
      .get(...(below === null ? [prefix] : [prefix, below])) as { first: string | null; last: string | null };
    return row.first === null || row.last === null ? null : { first: row.first, last: row.last };
  }

  /** The report's current row of `key` (an object or a delete marker), undefined when it lists none. */
  current(key: string): InventoryListingRow | undefined {
    const row = this.db.prepare('SELECT * FROM rows WHERE key = ? AND is_latest = 1 ORDER BY last_modified DESC LIMIT 1').get(key) as StoredRow | undefined;
    return row === undefined ? undefined : fromStored(row);
  }

  /** Whether the report has a row for this version of `key` (current or not; null: the "null" version, or a current-only report's). */
  listsVersion(key: string, versionId: string | null): boolean {
    return this.db.prepare('SELECT 1 FROM rows WHERE key = ? AND version_id IS ? LIMIT 1').get(key, versionId) !== undefined;
  }

  /** Every `step`-th key (current objects), in key order: a sample for planning key ranges. */
  sampleKeys(step: number): string[] {
    const rows = this.db
      .prepare(
        `SELECT key FROM (SELECT key, row_number() OVER (ORDER BY key) AS n FROM rows WHERE is_latest = 1 AND is_delete_marker = 0)
         WHERE n % ? = 0 ORDER BY key`,
      )
      .all(Math.max(1, Math.floor(step))) as { key: string }[];
    return rows.map((r) => r.key);
  }

  /** Closes and removes the scratch file. */
  close(): void {
    if (this.db.open) this.db.close();
    rmSync(this.file, { force: true });
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const rows = this.pending.splice(0);
    this.db.transaction(() => {
      for (const r of rows) {
        this.insert.run(r.key, r.versionId, r.isLatest ? 1 : 0, r.isDeleteMarker ? 1 : 0, r.size, r.lastModified, r.etag, r.storageClass ?? null);
      }
    })();
    this.rowCount += rows.length;
  }
}

function fromStored(r: StoredRow): InventoryListingRow {
  return {
    key: r.key,
    versionId: r.version_id,
    isLatest: r.is_latest === 1,
    isDeleteMarker: r.is_delete_marker === 1,
    size: r.size,
    lastModified: r.last_modified,
    etag: r.etag,
    ...(r.storage_class === null ? {} : { storageClass: r.storage_class }),
  };
}

/** A string literal of SQL. */
function sqlString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
