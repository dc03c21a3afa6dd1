/**
 * The files of `catalog rebuild` (src/engine/rebuild.ts builds the new catalog's rows): claiming
 * the catalog file it replaces, installing the complete new one over it with an atomic rename,
 * keeping a damaged result beside it (`<catalog>.damaged`) or a corrupt old file aside
 * (`<catalog>.corrupt-<time>`), and removing the temporary catalogs of rebuilds that were killed.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LakeguardError } from '../errors.js';
import { isProcessAlive } from '../util/process.js';
import { isCorruptDatabase } from './corrupt.js';
import { isFileBusy, sqliteDatabase } from './connection.js';
import { WHOLE_BY_REQUEST } from './sync.js';


/** What claimTarget found at the target. */
export interface ClaimedCatalogFile {
  /** Runs the catalog there has (null: there was none, or it was unreadable). */
  previousRuns: number | null;
  /** SQLite finds it corrupt (or not a database): the caller moves it aside. */
  corrupt?: true;
  /** Runs it knows as finished: a rebuild whose result lacks one of them lost it. */
  finishedRunIds?: string[];
  /** `catalog sync --all` made it whole on purpose: the rebuilt catalog keeps that mark (a host's shards use it). */
  wholeByRequest?: true;
}

/**
 * Where a rebuild writes its new catalog before installing it: beside the target (so the
 * install is a rename in one directory), named by the process so removeLeftovers can tell a
 * killed rebuild's file from a running one's.
 */
export function rebuildTempPath(target: string): string {
  return `${target}.rebuild-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Checks that the target catalog is not open in another process (an exclusive SQLite lock
 * fails at once if any connection has it open) and does not belong to another repository,
 * and folds its WAL into the file. A file that SQLite finds corrupt (or not a database at all)
 * is reported as such, for the caller to move aside; an empty or foreign SQLite file is replaced.
 */
export function claimTarget(target: string, repositoryId: string, quickCheck = true): ClaimedCatalogFile {
  if (!existsSync(target)) return { previousRuns: null };
  let db: BetterSqlite3.Database;
  try {
    db = new (sqliteDatabase())(target, { timeout: 0, fileMustExist: true });
  } catch {
    return { previousRuns: null, corrupt: true };
  }
  try {
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      if (isFileBusy(err)) {
        throw new LakeguardError(`catalog ${target} is in use by another lakeguard process`, {
          hint: 'let it finish (or stop it), then run `lakeguard catalog rebuild` again',
        });
      }
      return { previousRuns: null, corrupt: true }; // not a database: kept aside
    }
    let file = readCatalogFile(db, quickCheck);
    try {
      db.exec('COMMIT');
    } catch (err) {
      // Ending the transaction can meet the damage too.
      if (!isCorruptDatabase(err)) throw err;
      file = { corrupt: true };
    }
    if (file.corrupt) return { previousRuns: null, corrupt: true };
    const { owner, runs, finishedRunIds, wholeByRequest } = file;
    if (owner !== undefined && owner !== repositoryId) {
      throw new LakeguardError(`catalog ${target} belongs to repository ${owner}, not ${repositoryId}`, {
        hint: 'pass --catalog with another path, or delete that file first',
      });
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
    return { previousRuns: runs, finishedRunIds, ...(wholeByRequest === true ? { wholeByRequest } : {}) };
  } finally {
    db.close();
  }
}

/** Replaces the target with the complete temporary catalog (same directory: an atomic rename). */
export function install(tmp: string, target: string, repositoryId: string): void {
  claimTarget(target, repositoryId, false);
  // Leftover WAL and shared-memory files of the old catalog must not be applied to the new one.
  rmSync(`${target}-wal`, { force: true });
  rmSync(`${target}-shm`, { force: true });
  renameSync(tmp, target);
  try {
    const fd = openSync(dirname(target), 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // directories cannot be fsynced on every platform; the rename itself is atomic
  }
}

/** Moves a corrupt catalog file (and its WAL) aside, to a new name beside it; returns that name. */
export function moveAside(target: string): string {
  const base = `${target}.corrupt-${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
  let aside = base;
  for (let n = 2; existsSync(aside); n++) aside = `${base}-${n}`;
  for (const suffix of ['-wal', '-shm', '']) if (existsSync(target + suffix)) renameSync(target + suffix, aside + suffix);
  return aside;
}

/** Puts a complete catalog beside the target instead of over it (a damaged rebuild not accepted). */
export function putBeside(tmp: string, beside: string): string {
  removeDatabaseFiles(beside);
  renameSync(tmp, beside);
  return beside;
}

export function removeDatabaseFiles(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
}

/** Temporary catalogs of rebuilds whose process is gone (killed mid-rebuild). */
export function removeLeftovers(target: string): void {
  const prefix = `${basename(target)}.rebuild-`;
  let names: string[];
  try {
    names = readdirSync(dirname(target));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)-/.exec(name.slice(prefix.length))?.[1]);
    if (!Number.isInteger(pid) || pid === process.pid || isProcessAlive(pid)) continue;
    rmSync(join(dirname(target), name), { force: true });
  }
}

/** What `catalog rebuild` needs to know of the catalog file it is about to replace. */
type CatalogFileState =
  | { corrupt: true }
  | {
      corrupt: false;
      /** The repository id it belongs to (undefined: an empty or foreign SQLite file). */
      owner: string | undefined;
      runs: number | null;
      /** Runs it knows as finished: a rebuild whose result lacks one of them lost it. */
      finishedRunIds: string[];
      wholeByRequest?: true;
    };

/**
 * Reads an existing catalog file through a raw connection (no migration: it is only looked
 * at). With `quickCheck`, SQLite first checks every page once, so a damaged page is found here
 * rather than by some later query.
 */
function readCatalogFile(db: BetterSqlite3.Database, quickCheck: boolean): CatalogFileState {
  try {
    if (quickCheck && db.pragma('quick_check(1)', { simple: true }) !== 'ok') return { corrupt: true };
    const owner = db.prepare("SELECT value FROM catalog_info WHERE name = 'repository'").pluck().get() as string | undefined;
    const runs = db.prepare('SELECT count(*) FROM runs').pluck().get() as number;
    const finishedRunIds = db.prepare("SELECT id FROM runs WHERE status != 'running'").pluck().all() as string[];
    const whole = db.prepare('SELECT 1 FROM catalog_info WHERE name = ?').pluck().get(WHOLE_BY_REQUEST) !== undefined;
    return { corrupt: false, owner, runs, finishedRunIds, ...(whole ? { wholeByRequest: true as const } : {}) };
  } catch (err) {
    if (isCorruptDatabase(err)) return { corrupt: true };
    // An empty or foreign SQLite file: nothing in it to keep.
    return { corrupt: false, owner: undefined, runs: null, finishedRunIds: [] };
  }
}
