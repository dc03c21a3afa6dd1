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
