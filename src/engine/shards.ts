/**
 * Shards: one backup run split over N processes (docs/scale-out.md "Shards"). The types every
 * part shares, and the arithmetic of ranges in (bucket, key) order: a shard covers the keys of
 * a group after one boundary up to and including the next, so every key belongs to exactly one
 * shard, whatever is added to the lake later.
 */
import { compareKeys, prefixUpperBound } from '../util/key-order.js';
import type { ShardRange } from '../catalog/types.js';
import type { KeyRange } from './scan.js';

/** A point of a group's key space: [bucket (the source's catalog name), key]. */
export type BucketKey = [bucket: string, key: string];

/**
 * A shard's part of a group's key space, (after, upTo] in (bucket, key) order, and the `shard`
 * field of a shard's run manifest: the catalog records both (catalog/types.ts).
 */
export type { RunShard, ShardRange } from '../catalog/types.js';

/** Who this process is in its run set: shard `index` (0-based) of `of`, in the run set named `runSet`. */
export interface ShardIdentity {
  index: number;
  of: number;
  runSet: string;
}

/** Run-set names: safe as a repository object name and in a shell. */
export const RUN_SET_NAME = /^[A-Za-z0-9._-]{1,100}$/;

/** Whether `name` may name a run set (`.` and `..` are path segments, never names). */
export function isRunSetName(name: string): boolean {
  return RUN_SET_NAME.test(name) && name !== '.' && name !== '..';
}

/** Order of two points: bucket first, then key, both in S3 key order. */
export function compareBucketKeys(a: BucketKey, b: BucketKey): number {
  return compareKeys(a[0], b[0]) || compareKeys(a[1], b[1]);
}

/** Shard `index`'s range among `bounds` (the N-1 boundaries of a plan). */
export function shardRange(bounds: readonly BucketKey[], index: number): ShardRange {
  const after = index === 0 ? undefined : bounds[index - 1];
  const upTo = index === bounds.length ? undefined : bounds[index];
  return { ...(after === undefined ? {} : { after: [...after] as BucketKey }), ...(upTo === undefined ? {} : { upTo: [...upTo] as BucketKey }) };
}

/** Whether a point lies in a range. */
export function inShardRange(range: ShardRange, point: BucketKey): boolean {
  if (range.after !== undefined && compareBucketKeys(point, range.after) <= 0) return false;
  return range.upTo === undefined || compareBucketKeys(point, range.upTo) <= 0;
}

/**
 * The keys of `prefix` in `bucket` that a range covers, as a KeyRange for the scan; null when it
 * covers none. The ends are dropped where the prefix lies wholly inside them, so a bound never
 * points outside the prefix (the catalog cursor reads from `after` on).
 */
export function keyRangeWithin(range: ShardRange | undefined, bucket: string, prefix: string): KeyRange | null {
  if (range === undefined) return {};
  let after: string | undefined;
  let upTo: string | undefined;
  if (range.after !== undefined) {
    const order = compareKeys(range.after[0], bucket);
    if (order > 0) return null;
    if (order === 0) after = range.after[1];
  }
  if (range.upTo !== undefined) {
    const order = compareKeys(range.upTo[0], bucket);
    if (order < 0) return null;
    if (order === 0) upTo = range.upTo[1];
  }
  return intersectKeyRange({ ...(after === undefined ? {} : { after }), ...(upTo === undefined ? {} : { upTo }) }, prefix);
}

/**
 * `range` narrowed to the keys starting with `prefix`: null when none is in it, an end dropped
 * where every key of the prefix is on the inner side of it.
 */
export function intersectKeyRange(range: KeyRange, prefix: string): KeyRange | null {
  const upper = prefixUpperBound(prefix);
  let { after, upTo } = range;
  if (after !== undefined) {
    if (upper !== null && compareKeys(after, upper) >= 0) return null;
    if (compareKeys(after, prefix) < 0) after = undefined;
  }
  if (upTo !== undefined) {
    if (compareKeys(upTo, prefix) < 0) return null;
    if (upper !== null && compareKeys(upTo, upper) >= 0) upTo = undefined;
  }
  if (after !== undefined && upTo !== undefined && compareKeys(after, upTo) >= 0) return null;
  return { ...(after === undefined ? {} : { after }), ...(upTo === undefined ? {} : { upTo }) };
}

/** The intersection of two key ranges; null when empty. */
export function intersectRanges(a: KeyRange, b: KeyRange): KeyRange | null {
  const after = a.after === undefined ? b.after : b.after === undefined ? a.after : compareKeys(a.after, b.after) >= 0 ? a.after : b.after;
  const upTo = a.upTo === undefined ? b.upTo : b.upTo === undefined ? a.upTo : compareKeys(a.upTo, b.upTo) <= 0 ? a.upTo : b.upTo;
  if (after !== undefined && upTo !== undefined && compareKeys(after, upTo) >= 0) return null;
  return { ...(after === undefined ? {} : { after }), ...(upTo === undefined ? {} : { upTo }) };
}
