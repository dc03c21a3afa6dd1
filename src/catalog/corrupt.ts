import { LakeguardError } from '../errors.js';

/**
 * A corrupt catalog file (a damaged page, or not a database at all) is named in one line with
 * the way out. This module does not load SQLite, so the CLI can use it for every command.
 */

let lastOpened: string | null = null;

/** Remembers the catalog file this process opened last: SQLite meets a corrupted page only when a query reads it. */
export function noteCatalogOpened(path: string): void {
  lastOpened = path;
}

/** SQLite found the file damaged (a corrupted page) or not a database. */
export function isCorruptDatabase(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}

/** One line naming the corrupt catalog file, with the hint to rebuild it (`catalog rebuild` moves it aside). */
export function corruptCatalogError(path: string | null, err: unknown): LakeguardError {
  return new LakeguardError(`catalog ${path ?? lastOpened ?? '(unknown file)'} is corrupt (${err instanceof Error ? err.message : err})`, {
    cause: err,
    hint: 'recreate it from the repository with `lakeguard catalog rebuild` (it moves the corrupt file aside)',
  });
}

/** SQLite's error code of `err` (`SQLITE_FULL`, `SQLITE_BUSY_SNAPSHOT`, ...), or undefined for any other error. */
export function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** What to do about a catalog file SQLite could not write or lock, by its error code; undefined for other codes. */
export function catalogFileHint(code: string): string | undefined {
  if (code.startsWith('SQLITE_FULL')) return 'the disk holding the catalog is full: free space there, or move the catalog (LAKEGUARD_CACHE_DIR or --catalog); the repository is not affected';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return 'another process holds the catalog file (another lakeguard command, or a tool with it open): let it finish and run this again, or give this command its own catalog (--catalog FILE)';
  }
  if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM')) {
    return 'check the file and its directory are writable and the disk is healthy (set LAKEGUARD_CACHE_DIR or --catalog to move it)';
  }
  return undefined;
}

/**
 * A SQLite error met in the middle of a command (disk full, the file locked by another process,
 * read-only) in one line naming the catalog file, with what to do; undefined for other errors.
 */
export function catalogFileError(err: unknown): LakeguardError | undefined {
  const code = sqliteCode(err);
  const hint = code === undefined ? undefined : catalogFileHint(code);
  if (hint === undefined) return undefined;
  return new LakeguardError(`catalog ${lastOpened ?? '(unknown file)'}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, hint });
}
