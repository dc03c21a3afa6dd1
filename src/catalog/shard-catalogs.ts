/**
 * A shard's own catalog file (docs/scale-out.md "A shard on a fresh host syncs only its key
 * range"): a shard backup keeps its key range in `shard-<I>-of-<N>.db` beside the host's default
 * catalog (`<cache>/<repository id>/catalog.db`) unless `catalog sync --all` made that one whole,
 * so that shards sharing a cache directory (a HOME over NFS, several array tasks on one node)
 * never narrow catalog.db nor each other's file. Files no process wrote for a week are removed
 * by the next shard backup of that repository on the host.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Catalog } from './catalog.js';
import { sqliteDatabase } from './connection.js';
import { catalogScope, type CatalogPrefix } from './scope.js';
import { wholeByRequest } from './sync.js';

/** Which shard catalog: the shard's index and count, and the group when the backup selected one (`--group`). */
export interface ShardCatalogName {
  index: number;
  of: number;
  group?: string;
}

/** A shard catalog no process wrote (the file or its WAL) for this long is removed by the next shard backup of its repository on the host. */
export const STALE_SHARD_CATALOG_MS = 7 * 24 * 60 * 60 * 1000;

const SAFE_GROUP = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const SHARD_CATALOG = /^shard-(\d+)-of-(\d+)(?:\.([A-Za-z0-9][A-Za-z0-9._-]*))?\.db$/;

/** `shard-<I>-of-<N>.db`, or `shard-<I>-of-<N>.<group>.db` for a backup of one group (group names are safe in a file name). */
export function shardCatalogFile(s: ShardCatalogName): string {
  // The path must never leave the cache directory.
  if (!Number.isInteger(s.index) || !Number.isInteger(s.of) || (s.group !== undefined && !SAFE_GROUP.test(s.group))) throw new Error(`no shard catalog file for ${JSON.stringify(s)}`);
  return `shard-${s.index}-of-${s.of}${s.group === undefined ? '' : `.${s.group}`}.db`;
}

/** SQLite's companions of a catalog file. */
const COMPANIONS = ['', '-wal', '-shm', '-journal'] as const;

export interface ShardCatalogFile extends ShardCatalogName {
  path: string;
  /** The file and its WAL. */
  bytes: number;
  /** When the file or its WAL was last written. */
  modified: Date;
}

/** The shard catalogs in a repository's cache directory (none when it does not exist), by name. */
export function shardCatalogsIn(dir: string): ShardCatalogFile[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const found: ShardCatalogFile[] = [];
  for (const name of names.filter((n) => SHARD_CATALOG.test(n)).sort()) {
    const [, index, of, group] = SHARD_CATALOG.exec(name)!;
    const path = join(dir, name);
    let bytes = 0;
    let modified = 0;
    for (const suffix of ['', '-wal']) {
      try {
        const st = statSync(path + suffix);
        bytes += st.size;
        modified = Math.max(modified, st.mtimeMs);
      } catch {
        // No WAL (closed cleanly), or removed meanwhile.
      }
    }
    if (modified > 0) found.push({ path, index: Number(index), of: Number(of), ...(group === undefined ? {} : { group }), bytes, modified: new Date(modified) });
  }
  return found;
}

/**
 * Removes the shard catalogs of `dir` (with their WAL and shared-memory files) that no process
 * wrote for STALE_SHARD_CATALOG_MS, except `keep`: what bounds them is the shards run on this
 * host in the last week (a Slurm array of N tasks: N files). Returns the paths removed.
 */
export function removeStaleShardCatalogs(dir: string, keep: string, now = Date.now()): string[] {
  const removed: string[] = [];
  for (const file of shardCatalogsIn(dir)) {
    if (file.path === keep || now - file.modified.getTime() < STALE_SHARD_CATALOG_MS) continue;
    for (const suffix of COMPANIONS) rmSync(file.path + suffix, { force: true });
    removed.push(file.path);
  }
  return removed;
}

/**
 * The key range a shard catalog holds (its scope), read as it is from the file (read-only: a
 * shard may be writing it); null when it holds none yet (a shard made it and its first sync
 * did not scope it) or cannot be read (an empty or damaged file).
 */
export function shardCatalogRange(path: string): CatalogPrefix[] | null {
  try {
    const db = new (sqliteDatabase())(path, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 1000');
      const text = db.prepare("SELECT value FROM catalog_info WHERE name = 'scope'").pluck().get() as string | undefined;
      return text === undefined ? null : (JSON.parse(text) as CatalogPrefix[]);
    } finally {
      db.close();
    }
  } catch {
    return null;
  }
}

/**
 * Whether a shard uses the host's catalog (catalog.db) rather than its own file: only when the
 * operator made it whole on purpose with `catalog sync --all` (a mark in the file, kept until a
 * scope narrows it). Whether a plain command (`runs`, `restore`) filled it, or whether the shard
 * has a file of its own yet, does not matter: on a HOME shared by a cluster (Slurm over NFS) any
 * command on a login node fills catalog.db, and every shard of the array would then sync the
 * whole repository into that one file, several hosts writing one SQLite file over NFS. Only the
 * operator knows that a host's shards may share catalog.db (one host, local disk), so only an
 * explicit, recorded request makes them (docs/scale-out.md "Which file").
 */
export function shardUsesHostCatalog(host: Catalog): boolean {
  return catalogScope(host) === null && wholeByRequest(host);
}
