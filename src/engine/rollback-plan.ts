import type { Catalog } from '../catalog/catalog.js';
import { wantedKey, wantedPage, type WantedVersion } from '../catalog/rollback-queries.js';
import type { ObjectEntry, ObjectStore } from '../storage/types.js';
import { parseFileToken, sameFileToken } from '../storage/fs-entries.js';
import { compareKeys } from '../util/key-order.js';

/**
 * What a rollback does to one key:
 * - `unchanged`: the live current version is the wanted one (same version id, or same size and
 *   content ETag): not rewritten.
 * - `undelete`: delete markers stacked directly above the wanted version: removing them (by
 *   their version ids) makes it current again.
 * - `copy`: the wanted version still exists in the bucket: a server-side copy of it.
 * - `upload`: the wanted version is gone from the bucket (or the bucket keeps no versions):
 *   written from the repository.
 * - `delete`: the key did not exist at the instant: a plain DELETE (a delete marker where the
 *   bucket keeps versions).
 * - `keep`: the key did not exist at the instant but stays: `--keep-new`, or its live version
 *   is older than the instant and so was never in the backup (rollback cannot tell whether it
 *   belongs there: it never deletes what the backup did not see).
 */
export type RollbackAction = 'unchanged' | 'undelete' | 'copy' | 'upload' | 'delete' | 'keep';

export const ROLLBACK_ACTIONS: readonly RollbackAction[] = ['copy', 'undelete', 'upload', 'delete', 'unchanged', 'keep'];

export interface PlannedKey {
  key: string;
  action: RollbackAction;
  /** The wanted version's size (the live one's for delete and keep). */
  size: number;
  /** copy: the version copied. */
  versionId?: string;
  /** undelete: the delete markers removed, newest first (null: the "null" version of a suspended bucket). */
  markers?: (string | null)[];
  /** keep: why. */
  reason?: 'keep-new' | 'not-in-backup';
  /**
   * unchanged by size and ETag alone (another version, or no version ids): the live version's
   * Last-Modified, and the wanted version id when it can be copied. The engine compares the
   * metadata before it counts the key unchanged, and drops this field.
   */
  sameBytes?: { lastModified: number; copyFrom?: string };
}

/** How the bucket can be rolled back, decided once per rollback. */
export interface PlanContext {
  /** The bucket keeps versions and the store copies server-side: `copy` is possible. */
  canCopy: boolean;
  keepNew: boolean;
  /** The instant of the wanted state (for a run: when it started), in ms. */
  cutTime: number;
  /**
   * Whether a run after the instant recorded this live version of the key (catalog lookup,
   * rollback-queries.ts recordedAfter); absent: never.
   */
  recordedAfterCut?: (key: string, live: ObjectEntry) => boolean;
}

/** Sizes and ETags that name content: an MD5, or a multipart MD5 of MD5s. */
const CONTENT_ETAG = /^[0-9a-f]{32}(-\d+)?$/;


/**
 * Whether a live version holds the wanted content: the same version id, or the same size and
 * content ETag (or, for a file of a `path:` source, the same change token).
 */
function isWanted(live: ObjectEntry, wanted: WantedVersion): boolean {
  if (live.isDeleteMarker) return false;
  if (wanted.versionId !== null && live.versionId === wanted.versionId) return true;
  if (live.size !== wanted.size || wanted.etag === null) return false;
  // A local file's change token (`<size>-<mtime ns>`, storage/fs-entries.ts): backup skips
  // unchanged files by it, and a file restored with its recorded time has it within a microsecond.
  if (parseFileToken(wanted.etag) !== null) return live.etag !== undefined && sameFileToken(live.etag, wanted.etag);
  return CONTENT_ETAG.test(wanted.etag) && live.etag === wanted.etag;
}

/**
 * A file of a `path:` source whose modification time predates the instant, though the key was
 * not there then: a file moved or copied into place keeps its time (`mv`, `cp -p`, an attacker
 * renaming files to `.locked`), so the time alone does not say it is older. When a run after the
 * instant recorded this very file (its change token), it appeared after the instant, and the
 * backup holds it: deleting it can be undone. An S3 object's time is the server's: no lookup.
 */
function appearedAfterCut(key: string, live: ObjectEntry, ctx: PlanContext): boolean {
  return live.etag !== undefined && parseFileToken(live.etag) !== null && ctx.recordedAfterCut?.(key, live) === true;
}

/**
 * The action for one key, from the version it had at the instant (undefined: none) and its live
 * versions, newest first (empty: the key does not exist). Null: nothing to do or report (a key
 * that neither existed then nor exists now).
 */
export function decideKey(key: string, wanted: WantedVersion | undefined, live: readonly ObjectEntry[], ctx: PlanContext): PlannedKey | null {
  const current = live[0];
  if (wanted === undefined) {
    if (current === undefined || current.isDeleteMarker) return null;
    if (ctx.keepNew) return { key, action: 'keep', size: current.size, reason: 'keep-new' };
    if (current.lastModified.getTime() <= ctx.cutTime && !appearedAfterCut(key, current, ctx)) return { key, action: 'keep', size: current.size, reason: 'not-in-backup' };
    return { key, action: 'delete', size: current.size };
  }
  const size = wanted.size;
  if (current !== undefined && isWanted(current, wanted)) {
    if ((wanted.versionId !== null && current.versionId === wanted.versionId) || (wanted.etag !== null && parseFileToken(wanted.etag) !== null)) return { key, action: 'unchanged', size };
    const copyFrom = ctx.canCopy && wanted.versionId !== null && live.some((v) => !v.isDeleteMarker && v.versionId === wanted.versionId) ? wanted.versionId : undefined;
    return { key, action: 'unchanged', size, sameBytes: { lastModified: current.lastModified.getTime(), ...(copyFrom === undefined ? {} : { copyFrom }) } };
  }
  if (current?.isDeleteMarker) {
    let n = 0;
    while (n < live.length && live[n]!.isDeleteMarker) n++;
    const below = live[n];
    if (below !== undefined && isWanted(below, wanted)) return { key, action: 'undelete', size, markers: live.slice(0, n).map((m) => m.versionId) };
  }
  if (ctx.canCopy && wanted.versionId !== null && live.some((v) => !v.isDeleteMarker && v.versionId === wanted.versionId)) {
    return { key, action: 'copy', size, versionId: wanted.versionId };
  }
  return { key, action: 'upload', size };
}

const WANTED_PAGE = 1000;

/**
 * The plan for one prefix: a listing of every live version (ListObjectVersions, page by page)
 * merge-joined in key order with the wanted state (the restore selection, page by page), so
 * neither side is ever held whole. Keys the policy excludes are left alone.
 */
export async function* planPrefix(opts: {
  catalog: Catalog;
  bucket: string;
  store: ObjectStore;
  prefix: string;
  isExcluded: (key: string) => boolean;
  ctx: PlanContext;
  signal?: AbortSignal;
}): AsyncGenerator<PlannedKey> {
  const { catalog, bucket, prefix, ctx } = opts;
  let page: WantedVersion[] = [];
  let pos = 0;
  let after = prefix;
  let first = true;
  let exhausted = false;
  const peek = (): WantedVersion | undefined => {
    if (pos >= page.length && !exhausted) {
      page = wantedPage(catalog, bucket, after, first, WANTED_PAGE);
      first = false;
      pos = 0;
      if (page.length < WANTED_PAGE) exhausted = true;
      if (page.length > 0) after = page.at(-1)!.key;
    }
    const w = page[pos];
    return w !== undefined && w.key.startsWith(prefix) ? w : undefined;
  };
  const decide = (key: string, wanted: WantedVersion | undefined, live: readonly ObjectEntry[]): PlannedKey | null =>
    opts.isExcluded(key) ? null : decideKey(key, wanted, live, ctx);

  /** Wanted keys before `key` (all that are left when null): absent from the live bucket. */
  const absent = function* (key: string | null): Generator<PlannedKey> {
    for (let w = peek(); w !== undefined && (key === null || compareKeys(w.key, key) < 0); w = peek()) {
      pos++;
      const p = decide(w.key, w, []);
      if (p !== null) yield p;
    }
  };
  const joined = function* (key: string, live: ObjectEntry[]): Generator<PlannedKey> {
    yield* absent(key);
    const w = peek();
    const same = w !== undefined && w.key === key;
    if (same) pos++;
    const p = decide(key, same ? w : undefined, live);
    if (p !== null) yield p;
  };

  let group: ObjectEntry[] = [];
  for await (const item of opts.store.list(prefix, { versions: true, ...(opts.signal === undefined ? {} : { signal: opts.signal }) })) {
    if (item.kind !== 'object') continue;
    if (group.length > 0 && group[0]!.key !== item.key) {
      yield* joined(group[0]!.key, group);
      group = [];
    }
    group.push(item);
  }
  if (group.length > 0) yield* joined(group[0]!.key, group);
  yield* absent(null);
}

/** The plan for keys named one by one (--keys-from): one version listing per key. */
export async function* planKeys(opts: {
  catalog: Catalog;
  bucket: string;
  store: ObjectStore;
  keys: Iterable<string>;
  isExcluded: (key: string) => boolean;
  ctx: PlanContext;
  signal?: AbortSignal;
}): AsyncGenerator<PlannedKey> {
  for (const key of opts.keys) {
    if (opts.isExcluded(key)) continue;
    const live: ObjectEntry[] = [];
    for await (const item of opts.store.list(key, { versions: true, ...(opts.signal === undefined ? {} : { signal: opts.signal }) })) {
      if (item.kind !== 'object') continue;
      // The key sorts first among the keys it prefixes: the first other key ends its versions.
      if (item.key !== key) break;
      live.push(item);
    }
    const p = decideKey(key, wantedKey(opts.catalog, opts.bucket, key), live, opts.ctx);
    if (p !== null) yield p;
  }
}
