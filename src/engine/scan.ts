import type { Catalog } from '../catalog/catalog.js';
import type { LatestVersion } from '../catalog/types.js';
import { cataloguedVersion, hasLiveKeys, latestPage } from '../catalog/backup-lookups.js';
import type { ListItem, ObjectEntry, ObjectStore, SkippedEntry } from '../storage/types.js';
import { compareKeys, prefixUpperBound } from '../util/key-order.js';
import { sameFileToken } from '../storage/fs-entries.js';

/** Keys after `after` (exclusive) up to `upTo` (inclusive); either end open when undefined. */
export interface KeyRange {
  after?: string;
  upTo?: string;
}

/** What a listing says about one key, compared with the newest catalogued version. */
export type Change =
  /**
   * `deletedAt`: the valid_from of the catalog's delete marker when the key was deleted and is
   * back: its new version starts after it, whatever its time says (a file copied back with its
   * old time by `cp -p`, `rsync -a`, a restore or a rollback).
   *
   * `validFrom` (versioned buckets): when the version starts, if not at its last-modified time: a
   * newer version of the key bears the same millisecond (KeyTimes).
   */
  | { kind: 'new'; entry: ObjectEntry; deletedAt?: number; validFrom?: number }
  | { kind: 'changed'; entry: ObjectEntry; previous: LatestVersion }
  | { kind: 'unchanged'; entry: ObjectEntry }
  | { kind: 'deleted'; previous: LatestVersion }
  /**
   * Versioned buckets: the key's current version (`entry`, isLatest) is catalogued but is not
   * the catalog's newest version of the key (`previous`; null when forget left the key none):
   * what hid it (a delete marker, a newer version) was removed from the bucket. `version`: the
   * catalog row holding it, null when forget dropped it (the content must be read again).
   */
  | { kind: 'reinstated'; entry: ObjectEntry; previous: LatestVersion | null; version: number | null }
  | { kind: 'excluded'; key: string }
  /** Listed but not an object (a symbolic link or special file in a directory): recorded, never read. */
  | { kind: 'skipped'; entry: SkippedEntry }
  /**
   * A listing from an inventory report contradicts the catalog's state of the key, which is
   * newer than the report (ScanOptions.newerThanReport): missing from it, or listed in an older
   * state. The catalog's state stands; nothing is recorded.
   */
  | { kind: 'kept'; previous: LatestVersion };

/** What the scanners take besides the catalog, the source and the prefix. */
export interface ScanOptions {
  shallow: boolean;
  onPrefix?: (p: string) => void;
  signal?: AbortSignal;
  range?: KeyRange;
  /**
   * The listing is an inventory report's: whether the catalog's state of a key (its newest
   * record) is knowledge newer than the report (inventory-store.ts newerThanReport). Such a
   * state is not contradicted by the report: a key it lacks is not deleted, a state it lists
   * older than the catalog's is not taken as a change.
   */
  newerThanReport?: (latest: LatestVersion) => boolean;
  /**
   * scanChangedVersions: keys of the bucket (sorted, any prefix) whose reads failed in earlier
   * runs and are still missing (backup-lookups.ts keysToRetry): their versions are listed
   * whatever their current state, so a failed version that is no longer current is read again.
   */
  retry?: readonly string[];
}

export interface ScanTarget {
  /** Catalog name of the source (bucket name, or the local directory's name). */
  bucket: string;
  objectStore: ObjectStore;
  isExcluded: (key: string) => boolean;
}

/**
 * For a bucket that keeps versions: lists every version and delete marker (ListObjectVersions)
 * and yields `new` for each one the catalog does not have yet — a version is never fetched
 * twice. Versions expired by lifecycle before a run saw them are simply absent. The listing is
 * merge-joined with the catalog's newest version per key (as scanRange does), so the catalog
 * follows the bucket's current state: a key whose current version is catalogued but is not
 * the catalog's newest is `reinstated` (its delete marker or newer version was removed), and a
 * live key with no version left at all is `deleted` (every version permanently deleted).
 */
export async function* scanVersions(
  catalog: Catalog,
  target: ScanTarget,
  prefix: string,
  opts: ScanOptions,
): AsyncGenerator<Change> {
  const listed = new Set<string>();
  const catalogued: string[] = [];
  const { after, upTo } = opts.range ?? {};
  const cursor = new CatalogCursor(catalog, target.bucket, prefix, catalogUpper(prefix, upTo), opts.shallow ? prefix.length : null, (p) => catalogued.push(p), after);
  const skipped: SkippedEntry[] = [];
  const listOpts = {
    versions: true,
    ...(opts.shallow ? { delimiter: '/' } : {}),
    ...(after === undefined ? {} : { startAfter: after }),
    ...signalOpt(opts.signal),
    onSkip: (s: SkippedEntry) => skipped.push(s),
  };
  if (opts.shallow) reportHoldingPrefix(prefix, after, listed, opts.onPrefix);
  const times = new KeyTimes();
  /** The key of the versions being listed, its newest catalogued version (undefined: none), and whether the catalog's state stands. */
  let current: { key: string; latest: LatestVersion | undefined; kept: boolean } | undefined;
  for await (const item of target.objectStore.list(prefix, listOpts)) {
    yield* skips(target, skipped, upTo);
    if (pastRange(item, upTo)) break; // the next shard lists it
    if (item.kind === 'prefix') {
      if (!listed.has(item.prefix)) opts.onPrefix?.(item.prefix);
      listed.add(item.prefix);
      continue;
    }
    if (current?.key !== item.key) {
      yield* vanished(cursor, target, item.key, opts.newerThanReport);
      const row = cursor.peek();
      const same = row !== undefined && row.key === item.key;
      if (same) cursor.next();
      // The key's newest listed entry comes first: a report behind the catalog's newer state is passed over whole.
      const kept = same && !target.isExcluded(item.key) && reportBehind(catalog, target.bucket, item, row, opts.newerThanReport);
      current = { key: item.key, latest: same ? row : undefined, kept };
      if (kept) yield { kind: 'kept', previous: row };
    }
    if (current.kept) continue;
    if (target.isExcluded(item.key)) yield { kind: 'excluded', key: item.key };
    else yield times.order(item, versionChange(catalog, target.bucket, item, current.latest));
  }
  yield* skips(target, skipped, upTo);
  yield* vanished(cursor, target, null, opts.newerThanReport);
  for (const p of catalogued) if (!listed.has(p)) opts.onPrefix?.(p);
}

/**
 * For a versioned bucket the catalog already knows (docs/versioned-incremental.md): lists the
 * current keys (ListObjectsV2, like scanRange) and asks ListObjectVersions only about keys whose
 * current version differs from the catalog's newest (ETag, size, last-modified; a new key, one
 * whose newest catalogued version is a delete marker) and about catalogued live keys that no
 * longer list (a delete marker or a permanent deletion hides them). Each such key's versions are
 * judged exactly as scanVersions judges them, so a run records what a full version listing
 * would, for those keys; a run costs what changed, not the history. What it cannot see (a
 * version created and hidden again between two runs under a key whose state looks unchanged) is
 * in the docs; a full version listing (scanVersions) catches it later.
 */
export async function* scanChangedVersions(
  catalog: Catalog,
  target: ScanTarget,
  prefix: string,
  opts: ScanOptions,
): AsyncGenerator<Change> {
  const listed = new Set<string>();
  const catalogued: string[] = [];
  const { after, upTo } = opts.range ?? {};
  const cursor = new CatalogCursor(catalog, target.bucket, prefix, catalogUpper(prefix, upTo), opts.shallow ? prefix.length : null, (p) => catalogued.push(p), after);
  const skipped: SkippedEntry[] = [];
  const versions = new VersionCursor(target.objectStore, prefix, opts.shallow, opts.signal);
  const times = new KeyTimes();
  /** The last key looked at (listed, or catalogued and vanished): where a version listing may start. */
  let previousKey = after;
  const listing = target.objectStore.list(prefix, {
    ...(opts.shallow ? { delimiter: '/' } : {}),
    ...(after === undefined ? {} : { startAfter: after }),
    ...signalOpt(opts.signal),
    onSkip: (s) => skipped.push(s),
  });
  const retry = retryKeys(opts.retry, prefix, opts.range, opts.shallow, catalogued);
  let retried = 0;
  /** The next key to retry if it comes before `bound` (any when null); undefined: none. */
  const retryBefore = (bound: string | null): string | undefined => {
    const key = retry[retried];
    return key !== undefined && (bound === null || compareKeys(key, bound) < 0) ? key : undefined;
  };
  /** Whether `key` is the next key to retry (taken off the list when it is). */
  const takeRetry = (key: string): boolean => {
    if (retry[retried] !== key) return false;
    retried++;
    return true;
  };
  /**
   * Catalogued keys before `listedKey` (all left when null) that no longer list: live ones are
   * asked about, and keys to retry (interleaved in key order, catalogued or not).
   */
  async function* vanishedKeys(listedKey: string | null): AsyncGenerator<Change> {
    for (;;) {
      const peeked = cursor.peek();
      const row = peeked !== undefined && (listedKey === null || compareKeys(peeked.key, listedKey) < 0) ? peeked : undefined;
      const again = retryBefore(row?.key ?? listedKey);
      if (again !== undefined && again !== row?.key) {
        // Failed before and never catalogued: its versions, if it still has any.
        takeRetry(again);
        if (!target.isExcluded(again)) yield* versionsOfKey(again, undefined);
        previousKey = again;
        continue;
      }
      if (row === undefined) return;
      cursor.next();
      const asked = takeRetry(row.key);
      if ((row.deleteMarker && !asked) || target.isExcluded(row.key)) continue; // still deleted (or not backed up)
      yield* versionsOfKey(row.key, row);
      previousKey = row.key;
    }
  }
  /**
   * The key's versions judged as scanVersions does; a live key with none left is deleted. From
   * a report behind the catalog's newer state of the key (its newest entry an older version the
   * catalog has, or none), the catalog's state stands.
   */
  async function* versionsOfKey(key: string, latest: LatestVersion | undefined): AsyncGenerator<Change> {
    let any = false;
    for await (const entry of versions.of(key, previousKey)) {
      if (!any && latest !== undefined && reportBehind(catalog, target.bucket, entry, latest, opts.newerThanReport)) {
        yield { kind: 'kept', previous: latest };
        return;
      }
      any = true;
      yield times.order(entry, versionChange(catalog, target.bucket, entry, latest));
    }
    if (!any && latest !== undefined && !latest.deleteMarker) yield opts.newerThanReport?.(latest) === true ? { kind: 'kept', previous: latest } : { kind: 'deleted', previous: latest };
  }

  try {
    if (opts.shallow) reportHoldingPrefix(prefix, after, listed, opts.onPrefix);
    for await (const item of listing) {
      yield* skips(target, skipped, upTo);
      if (pastRange(item, upTo)) break; // the next range lists it
      if (item.kind === 'prefix') {
        if (!listed.has(item.prefix)) opts.onPrefix?.(item.prefix);
        listed.add(item.prefix);
        continue;
      }
      yield* vanishedKeys(item.key);
      const row = cursor.peek();
      const same = row !== undefined && row.key === item.key;
      if (same) cursor.next();
      const asked = takeRetry(item.key);
      if (target.isExcluded(item.key)) {
        yield { kind: 'excluded', key: item.key };
      } else if (!asked && same && !row.deleteMarker && row.etag === item.etag && row.size === item.size && row.lastModified === item.lastModified.getTime()) {
        yield { kind: 'unchanged', entry: item };
      } else {
        yield* versionsOfKey(item.key, same ? row : undefined);
      }
      previousKey = item.key;
    }
    yield* skips(target, skipped, upTo);
    yield* vanishedKeys(null);
  } finally {
    await versions.close();
  }
  for (const p of new Set(catalogued)) if (!listed.has(p)) opts.onPrefix?.(p);
}

/**
 * The keys to retry (ScanOptions.retry) that a scan of `prefix` within `range` asks about, in
 * key order. A shallow scan (one level of a delimiter listing) takes only the keys of its level;
 * a sub-prefix holding others is handed on like a catalogued one (`catalogued`, reported if it
 * does not list), so that its own scan asks about them.
 */
function retryKeys(keys: readonly string[] | undefined, prefix: string, range: KeyRange | undefined, shallow: boolean, catalogued: string[]): string[] {
  const out: string[] = [];
  if (keys === undefined) return out;
  // Sorted: start at the first key not before the prefix (binary search), stop past it.
  let lo = 0;
  for (let hi = keys.length; lo < hi; ) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keys[mid]!, prefix) < 0) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < keys.length; i++) {
    const key = keys[i]!;
    if (!key.startsWith(prefix)) break;
    if (range?.after !== undefined && compareKeys(key, range.after) <= 0) continue;
    if (range?.upTo !== undefined && compareKeys(key, range.upTo) > 0) break;
    const slash = shallow ? key.indexOf('/', prefix.length) : -1;
    if (slash === -1) out.push(key);
    else {
      const sub = key.slice(0, slash + 1);
      if (!catalogued.includes(sub)) catalogued.push(sub);
    }
  }
  return out;
}

/**
 * One ListObjectVersions listing of a scan's prefix, read forward as keys are asked about in key
 * order: kept open while the next key asked for comes within one page of entries (the store's
 * listPageSize), opened again just after the previous key otherwise. So a sparse change costs
 * one request, and a dense run of changes reads the version listing once, in step with the key
 * listing: never much more than listing every version.
 */
class VersionCursor {
  private listing: AsyncIterator<ListItem> | null = null;
  /** The next entry of the open listing not consumed yet (undefined: read the next one). */
  private head: ObjectEntry | undefined;
  private done = false;

  constructor(
    private readonly store: ObjectStore,
    private readonly prefix: string,
    private readonly shallow: boolean,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** Every version and delete marker of `key`, newest first. `before`: a key before it (where to open a listing). */
  async *of(key: string, before: string | undefined): AsyncGenerator<ObjectEntry> {
    if (!(await this.seek(key))) {
      await this.close();
      this.open(before);
      await this.seek(key, Infinity);
    }
    for (let entry = await this.peek(); entry !== undefined && entry.key === key; entry = await this.peek()) {
      this.head = undefined;
      yield entry;
    }
  }

  async close(): Promise<void> {
    const listing = this.listing;
    this.listing = null;
    this.head = undefined;
    this.done = false;
    await listing?.return?.();
  }

  private open(before: string | undefined): void {
    const listing = this.store.list(this.prefix, {
      versions: true,
      ...(this.shallow ? { delimiter: '/' } : {}),
      ...(before === undefined ? {} : { startAfter: before }),
      ...signalOpt(this.signal),
    });
    this.listing = listing[Symbol.asyncIterator]();
  }

  /**
   * Moves the open listing to the first entry at or after `key` (keys are asked for in key
   * order, so an entry past `key` means it has none), skipping at most `budget` entries; false
   * when no listing is open or the budget ran out before the key.
   */
  private async seek(key: string, budget = this.store.listPageSize ?? 1000): Promise<boolean> {
    if (this.listing === null) return false;
    for (let skipped = 0; ; skipped++) {
      const entry = await this.peek();
      if (entry === undefined || compareKeys(entry.key, key) >= 0) return true;
      if (skipped >= budget) return false;
      this.head = undefined;
    }
  }

  private async peek(): Promise<ObjectEntry | undefined> {
    while (this.head === undefined && !this.done && this.listing !== null) {
      const next = await this.listing.next();
      if (next.done === true) this.done = true;
      else if (next.value.kind === 'object') this.head = next.value;
    }
    return this.head;
  }
}

/**
 * A key's versions are listed newest first, and S3 may stamp two of them with the same
 * millisecond (concurrent writers). The catalog orders a key's versions by valid_from, so a
 * new version that is not older than the newer one listed before it starts a millisecond
 * before that one: the key's current version stays its newest, at every instant.
 */
class KeyTimes {
  private key: string | null = null;
  /** When the version listed before (of the same key) starts. */
  private newer: number | undefined;

  order(entry: ObjectEntry, change: Change): Change {
    if (entry.key !== this.key) {
      this.key = entry.key;
      this.newer = undefined;
    }
    const time = entry.lastModified.getTime();
    const start = this.newer !== undefined && time >= this.newer ? this.newer - 1 : time;
    this.newer = start;
    return change.kind === 'new' && start !== time ? { ...change, validFrom: start } : change;
  }
}

/** What one listed version of a versioned bucket means, given the key's newest catalogued version. */
function versionChange(catalog: Catalog, bucket: string, entry: ObjectEntry, latest: LatestVersion | undefined): Change {
  const row = cataloguedVersion(catalog, bucket, entry, latest?.objectId);
  if (row === undefined) return { kind: 'new', entry };
  // An older version the catalog has, or the current one that is already the key's state
  // (a catalogued record always gives its key a newest version: `latest` is then defined).
  if (!entry.isLatest || row === latest?.versionRow || (latest === undefined && row !== null)) return { kind: 'unchanged', entry };
  return { kind: 'reinstated', entry, previous: latest ?? null, version: row };
}

/**
 * Catalogued keys before `listedKey` (all that are left when null) that are live in the
 * catalog: the listing skipped them, so they no longer exist (deleted ones stay deleted). From
 * an inventory report, a key whose catalogued state is newer than the report is kept instead.
 */
function* vanished(cursor: CatalogCursor, target: ScanTarget, listedKey: string | null, newerThanReport?: (latest: LatestVersion) => boolean): Generator<Change> {
  for (let row = cursor.peek(); row !== undefined && (listedKey === null || compareKeys(row.key, listedKey) < 0); row = cursor.peek()) {
    cursor.next();
    if (row.deleteMarker || target.isExcluded(row.key)) continue;
    yield newerThanReport?.(row) === true ? { kind: 'kept', previous: row } : { kind: 'deleted', previous: row };
  }
}

/**
 * Versioned listings from a report: whether its newest entry of a key (`entry`) is behind the
 * catalog's newer state of it: a version or delete marker the catalog has, but not as its
 * newest (a version the catalog never had is read as any new one, whatever its age).
 */
function reportBehind(catalog: Catalog, bucket: string, entry: ObjectEntry, latest: LatestVersion, newerThanReport: ((latest: LatestVersion) => boolean) | undefined): boolean {
  if (newerThanReport === undefined) return false;
  // The catalog's newest version itself (most keys): no lookup. A "null" version id may name several.
  if (entry.versionId !== null && entry.versionId === latest.versionId && entry.isDeleteMarker === latest.deleteMarker) return false;
  const row = cataloguedVersion(catalog, bucket, entry, latest.objectId);
  return row !== undefined && row !== latest.versionRow && newerThanReport(latest);
}

/**
 * Unversioned listings from a report: whether what it lists of a key (`entry`) is older than
 * the catalog's newer state of it: last modified before the catalogued version was (or before
 * the catalog saw the key deleted). A tie is read again: the read tells (isCataloguedVersion).
 */
function olderThanCatalog(entry: ObjectEntry, latest: LatestVersion, newerThanReport: ((latest: LatestVersion) => boolean) | undefined): boolean {
  return newerThanReport !== undefined && entry.lastModified.getTime() < latest.lastModified && newerThanReport(latest);
}

/** The entries a listing skipped so far (emptying `queue`), up to `upTo` (a later range reports the rest). */
function* skips(target: ScanTarget, queue: SkippedEntry[], upTo: string | undefined): Generator<Change> {
  for (const entry of queue.splice(0)) {
    if (upTo !== undefined && compareKeys(entry.key, upTo) > 0) continue;
    yield target.isExcluded(entry.key) ? { kind: 'excluded', key: entry.key } : { kind: 'skipped', entry };
  }
}

const CATALOG_PAGE = 2000;
/**
 * First page after a skipped sub-prefix in a shallow walk: the next row is often the start of
 * the next sub-prefix, skipped again at once, so fetching a full page there would read (and
 * throw away) thousands of rows per sub-prefix. Pages grow back to CATALOG_PAGE while rows are used.
 */
const SHALLOW_FIRST_PAGE = 4;

/**
 * Walks the catalog's newest versions of a key range page by page, in the same order as an S3
 * listing, so a listing can be merge-joined against it without holding either side in memory.
 */
class CatalogCursor {
  private page: LatestVersion[] = [];
  private pos = 0;
  private after: string | null = null;
  private exhausted = false;
  private limit: number;

  constructor(
    private readonly catalog: Catalog,
    private readonly bucket: string,
    private readonly lower: string,
    private readonly upper: string | null,
    /** Keep only keys with no further '/' from this position on (one listing level). */
    private readonly shallowAt: number | null,
    /** In shallow mode: called for each catalogued sub-prefix that still has live keys. */
    private readonly onSubPrefix: (prefix: string) => void = () => {},
    /** Start after this key (exclusive) instead of at `lower`. */
    startAfter?: string,
  ) {
    this.limit = shallowAt === null ? CATALOG_PAGE : SHALLOW_FIRST_PAGE;
    if (startAfter !== undefined) this.after = startAfter;
  }

  peek(): LatestVersion | undefined {
    for (;;) {
      if (this.pos < this.page.length) {
        const row = this.page[this.pos]!;
        const slash = this.shallowAt === null ? -1 : row.key.indexOf('/', this.shallowAt);
        if (slash === -1) return row;
        // A key below a sub-prefix: skip that whole sub-prefix with one query instead of row by
        // row, but report it while it has live keys: if it vanished from the listing, its keys
        // were deleted and a scan of it must say so.
        const sub = row.key.slice(0, slash + 1);
        if (hasLiveKeys(this.catalog, this.bucket, sub)) this.onSubPrefix(sub);
        this.after = sub + '\u{10FFFF}';
        this.page = [];
        this.exhausted = false;
        this.limit = SHALLOW_FIRST_PAGE;
        continue;
      }
      if (this.exhausted) return undefined;
      if (this.page.length > 0) this.limit = Math.min(this.limit * 4, CATALOG_PAGE); // the last page was used up
      this.page = latestPage(this.catalog, this.bucket, this.after ?? this.lower, this.after === null, this.upper, this.limit);
      this.pos = 0;
      if (this.page.length < this.limit) this.exhausted = true;
      const last = this.page.at(-1);
      if (last !== undefined) this.after = last.key;
    }
  }

  next(): void {
    this.pos++;
  }
}

/**
 * Merge-joins a sorted listing of `prefix` with the catalog: yields a Change per key.
 * `shallow` lists one level (delimiter '/'), handing sub-prefixes to `onPrefix` instead.
 */
export async function* scanRange(
  catalog: Catalog,
  target: ScanTarget,
  prefix: string,
  opts: ScanOptions,
): AsyncGenerator<Change> {
  const listed = new Set<string>();
  const catalogued: string[] = [];
  const { after, upTo } = opts.range ?? {};
  const cursor = new CatalogCursor(catalog, target.bucket, prefix, catalogUpper(prefix, upTo), opts.shallow ? prefix.length : null, (p) => catalogued.push(p), after);
  const skipped: SkippedEntry[] = [];
  const listing = target.objectStore.list(prefix, {
    ...(opts.shallow ? { delimiter: '/' } : {}),
    ...(after === undefined ? {} : { startAfter: after }),
    ...signalOpt(opts.signal),
    onSkip: (s) => skipped.push(s),
  });

  if (opts.shallow) reportHoldingPrefix(prefix, after, listed, opts.onPrefix);
  for await (const item of listing) {
    yield* skips(target, skipped, upTo);
    if (pastRange(item, upTo)) break; // the next range lists it
    if (item.kind === 'prefix') {
      if (!listed.has(item.prefix)) opts.onPrefix?.(item.prefix);
      listed.add(item.prefix);
      continue;
    }
    yield* vanished(cursor, target, item.key, opts.newerThanReport);
    const row = cursor.peek();
    const same = row !== undefined && row.key === item.key;
    if (same) cursor.next();
    if (target.isExcluded(item.key)) {
      yield { kind: 'excluded', key: item.key };
    } else if (same && row.deleteMarker && olderThanCatalog(item, row, opts.newerThanReport)) {
      yield { kind: 'kept', previous: row }; // deleted after the report
    } else if (!same) {
      yield { kind: 'new', entry: item };
    } else if (row.deleteMarker) {
      yield { kind: 'new', entry: item, deletedAt: row.validFrom };
    } else if (sameAsCatalogued(row, item)) {
      yield { kind: 'unchanged', entry: item };
    } else if (olderThanCatalog(item, row, opts.newerThanReport)) {
      yield { kind: 'kept', previous: row }; // overwritten after the report
    } else {
      yield { kind: 'changed', entry: item, previous: row };
    }
  }
  yield* skips(target, skipped, upTo);
  yield* vanished(cursor, target, null, opts.newerThanReport);
  for (const p of catalogued) if (!listed.has(p)) opts.onPrefix?.(p);
}

/** The catalog cursor's exclusive upper bound for (after, upTo] of `prefix`: the next possible key after upTo. */
function catalogUpper(prefix: string, upTo: string | undefined): string | null {
  return upTo === undefined ? prefixUpperBound(prefix) : `${upTo}\u0000`;
}

/**
 * Whether a listed item lies wholly after `upTo`: a key after it, or a sub-prefix after it (every
 * key below a sub-prefix sorts after the sub-prefix itself). A sub-prefix holding upTo is in range.
 */
function pastRange(item: ListItem, upTo: string | undefined): boolean {
  return upTo !== undefined && compareKeys(item.kind === 'prefix' ? item.prefix : item.key, upTo) > 0;
}

/**
 * A delimiter listing that starts after `after` may leave out the sub-prefix holding `after`
 * (Ceph does; AWS reports it: storage/common.ts), although its keys after `after` are in range:
 * that sub-prefix is handed on here, once, before the listing.
 */
function reportHoldingPrefix(prefix: string, after: string | undefined, listed: Set<string>, onPrefix: ((p: string) => void) | undefined): void {
  if (after === undefined || !after.startsWith(prefix)) return;
  const slash = after.indexOf('/', prefix.length);
  if (slash === -1) return;
  const holding = after.slice(0, slash + 1);
  listed.add(holding);
  onPrefix?.(holding);
}

function signalOpt(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}

/**
 * Whether a listed object is the catalogued state of its key: the same ETag, size and time; or,
 * for a file of a `path:` source, the same change token within a microsecond (a file restored or
 * rolled back with its recorded time, which Node sets to within 240 ns: storage/fs-entries.ts).
 */
function sameAsCatalogued(row: LatestVersion, item: ObjectEntry): boolean {
  if (row.etag === null || row.size !== item.size) return false;
  if (row.etag === item.etag) return row.lastModified === item.lastModified.getTime();
  return sameFileToken(row.etag, item.etag);
}
