/**
 * The SQLite connection behind a Catalog, for the modules of src/catalog/ only: the catalog owns
 * its SQL, so nothing outside this directory gets the raw handle (the linter refuses imports of
 * this file from elsewhere in src/). Tests may use it to look at or damage rows directly.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { requireCjs } from '../util/cjs.js';
import type { Catalog } from './catalog.js';

let sqliteModule: typeof BetterSqlite3 | undefined;
/**
 * better-sqlite3's Database class, loaded when the first database is opened: a command that
 * opens none (policy show, init, --help) does not load its native addon.
 */
export function sqliteDatabase(): typeof BetterSqlite3 {
  return (sqliteModule ??= requireCjs('better-sqlite3') as typeof BetterSqlite3);
}

const connections = new WeakMap<Catalog, BetterSqlite3.Database>();

/** Called once by the Catalog constructor. */
export function attachConnection(catalog: Catalog, db: BetterSqlite3.Database): void {
  connections.set(catalog, db);
}

/** The catalog's SQLite connection. */
export function sqlite(catalog: Catalog): BetterSqlite3.Database {
  const db = connections.get(catalog);
  if (db === undefined) throw new Error('catalog without a connection');
  return db;
}

/**
 * Whether a SQLite error says another connection holds the file (SQLITE_BUSY or SQLITE_LOCKED,
 * with their extended codes): what taking a catalog file exclusively meets while another
 * process has it open.
 */
export function isFileBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}
