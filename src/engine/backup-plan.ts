/**
 * Backup: how the listing of a source fans out (restic's archiver walks a tree; a bucket has
 * only prefixes). A prefix the catalog knows well is cut into key ranges listed in parallel; one
 * it does not (a seed, a versioned bucket) is listed with a delimiter, one level deeper while a
 * level has too few sub-prefixes to keep the listing concurrency busy.
 */
import { fullVersionListingDue } from '../catalog/backup-lookups.js';
import type { Catalog } from '../catalog/catalog.js';
import { compareKeys } from '../util/key-order.js';
import type { KeyRange } from './scan.js';

/** Listing fan-out: descend one more level while a level has fewer sub-prefixes than this factor × list concurrency. */
export const MAX_FANOUT_DEPTH = 3;
/**
 * Catalogued keys per listing range of an incremental run. The last page of a range overshoots
 * into the next one by up to 999 keys (listed twice, ignored once): at 20,000 that is <= 5 %.
 */
const RANGE_KEYS = 20_000;
/** Below this many catalogued keys a prefix is listed with the delimiter fan-out (a seed, or nearly). */
const MIN_KEYS_FOR_RANGES = 1000;

/** Listing ranges of incremental runs: keys per range, and the fewest keys to split at all (tests use small ones). */
export interface RangeSettings {
  keysPerRange: number;
  minKeys: number;
}

/**
 * A prefix the catalog already knows well enough is split into ranges of RANGE_KEYS catalogued
 * keys, each listed without a delimiter from its first key (StartAfter), in parallel: a full
 * 1,000-key page per request, whatever the layout. The delimiter fan-out (depth 0) needs one
 * request per sub-prefix, however small (240 date partitions of 80 keys: 12x the requests of
 * one sequential listing), and is only used where the catalog cannot guide (null): a seed, a
 * prefix with few catalogued keys. A versioned prefix is split only when its current keys are
 * listed (the caller's rule: everyVersionOf); a listing of every version is not.
 */
export function keyRanges(catalog: Catalog, bucket: string, prefix: string, settings?: RangeSettings, within: KeyRange = {}): KeyRange[] | null {
  const { keysPerRange, minKeys } = settings ?? { keysPerRange: RANGE_KEYS, minKeys: MIN_KEYS_FOR_RANGES };
  // `within` (a shard's part of the prefix): ranges are cut inside it only, from its start.
  const beyond = (key: string): boolean => within.upTo !== undefined && compareKeys(key, within.upTo) >= 0;
  const enough = catalog.nthKey(bucket, prefix, within.after ?? null, minKeys);
  if (enough === undefined || (within.upTo !== undefined && compareKeys(enough, within.upTo) > 0)) return null;
  const ranges: KeyRange[] = [];
  let after = within.after;
  for (;;) {
    const upTo = catalog.nthKey(bucket, prefix, after ?? null, keysPerRange);
    // The last range is open (or ends where `within` ends): keys added after the last catalogued one belong to it.
    if (upTo === undefined || beyond(upTo) || (within.upTo === undefined && catalog.nthKey(bucket, prefix, upTo, 1) === undefined)) {
      ranges.push({ ...(after === undefined ? {} : { after }), ...(within.upTo === undefined ? {} : { upTo: within.upTo }) });
      return ranges;
    }
    ranges.push(after === undefined ? { upTo } : { after, upTo });
    after = upTo;
  }
}

/**
 * The depth at which the sub-prefixes a delimiter listing at `depth` found are listed: few of
 * them (fewer than the list concurrency) are each listed one level deeper, to get enough
 * parallel listings; many are each listed fully (MAX_FANOUT_DEPTH: no delimiter).
 */
export function subPrefixDepth(subPrefixes: number, listConcurrency: number, depth: number): number {
  const descend = subPrefixes < listConcurrency && depth + 1 < MAX_FANOUT_DEPTH;
  return descend ? depth + 1 : MAX_FANOUT_DEPTH;
}

/**
 * Versioned sources: a run lists every version (ListObjectVersions of the whole prefix) at least
 * once in this many finished runs of its group; the others ask only about keys that changed
 * (scan.ts scanChangedVersions). The full listing records what the cheaper one cannot see
 * (docs/versioned-incremental.md): with hourly runs, within a day.
 */
export const FULL_VERSION_LISTING_EVERY = 24;

/**
 * Whether this run lists every version of its versioned sources: when asked (`--full-versions`),
 * or when none of the group's FULL_VERSION_LISTING_EVERY - 1 last finished runs did. A prefix the
 * catalog holds no key of (a seed) is always listed in full (everyVersionOf).
 */
export function fullVersionListing(catalog: Catalog, group: string, asked: boolean): boolean {
  return asked || fullVersionListingDue(catalog, group, FULL_VERSION_LISTING_EVERY - 1);
}

/** Whether a versioned prefix is listed with every version: in a full run, or when the catalog has no key of it yet (a seed). */
export function everyVersionOf(catalog: Catalog, bucket: string, prefix: string, fullRun: boolean): boolean {
  return fullRun || catalog.nthKey(bucket, prefix, null, 1) === undefined;
}
