import type BetterSqlite3 from 'better-sqlite3';
import { isCorruptDatabase } from './corrupt.js';

/** What `catalog rebuild` needs to know of the catalog file it is about to replace. */
export type CatalogFileState =
  | { corrupt: true }
  | {
      corrupt: false;
      /** The repository id it belongs to (undefined: an empty or foreign SQLite file). */
      owner: string | undefined;
      runs: number | null;
      /** Runs it knows as finished: a rebuild whose result lacks one of them lost it. */
      finishedRunIds: string[];
    };

/**
 * Reads an existing catalog file through a raw connection (no migration: it is only looked
 * at). With `quickCheck`, SQLite first checks every page once, so a damaged page is found here
 * rather than by some later query.
 */
export function readCatalogFile(db: BetterSqlite3.Database, quickCheck: boolean): CatalogFileState {
  try {
    if (quickCheck && db.pragma('quick_check(1)', { simple: true }) !== 'ok') return { corrupt: true };
    const owner = db.prepare("SELECT value FROM catalog_info WHERE name = 'repository'").pluck().get() as string | undefined;
    const runs = db.prepare('SELECT count(*) FROM runs').pluck().get() as number;
    const finishedRunIds = db.prepare("SELECT id FROM runs WHERE status != 'running'").pluck().all() as string[];
    return { corrupt: false, owner, runs, finishedRunIds };
  } catch (err) {
    if (isCorruptDatabase(err)) return { corrupt: true };
    // An empty or foreign SQLite file: nothing in it to keep.
    return { corrupt: false, owner: undefined, runs: null, finishedRunIds: [] };
  }
}
