/**
 * Where a run set's shards split a group's key space: N-1 boundaries in (bucket, key) order that
 * give each shard about the same number of keys. From the synced catalog's key counts when it
 * knows the group (so one huge partition among many tiny ones is split inside), else from a
 * bounded sample of a listing or of an S3 Inventory report (a seed). docs/scale-out.md "Shards" has the costs.
 */
import type { Catalog } from '../catalog/catalog.js';
import { keyCount, lastKey } from '../catalog/shard-lookups.js';
import type { ObjectStore } from '../storage/types.js';
import { compareKeys, prefixUpperBound } from '../util/key-order.js';
import { isUnreadable } from './backup-transfer.js';
import { sampleInventoryKeys, type InventoryKeySample } from './inventory-sample.js';
import { scratchDirOf } from './inventory-store.js';
import type { BucketKey } from './shards.js';
import { outermostPrefixes, type OpenedSource } from './sources.js';

/** One stretch of a group's key space: the keys of `bucket` under `prefix`. */
export interface Segment {
  bucket: string;
  prefix: string;
  /** The source to list it from (a sample); absent where only the catalog is asked. */
  source?: OpenedSource;
}

/** A key of a sample, standing for `weight` keys from it on (1 for a key listed; more for a report's row group). */
export interface WeightedKey {
  key: string;
  weight: number;
}

/**
 * The keys of one segment, in S3 key order, for a sample: the seam where planning takes a seed's
 * keys from. `segmentKeys` lists the source (LIST), or samples its S3 Inventory report (no LIST).
 */
export type KeySource = (segment: Segment, signal?: AbortSignal, after?: string) => AsyncIterable<WeightedKey>;

/** Lists a segment's keys (those after `after` only, when given) with ordinary LIST requests (1,000 keys per request), each of weight 1. */
export async function* listedKeys(segment: Segment, signal?: AbortSignal, after?: string): AsyncIterable<WeightedKey> {
  const source = segment.source!;
  const opts = { ...(signal === undefined ? {} : { signal }), ...(after === undefined ? {} : { startAfter: after }) };
  for await (const item of source.objectStore.list(segment.prefix, opts)) {
    if (item.kind === 'object') yield { key: item.key, weight: 1 };
  }
}

/**
 * The default KeySource: a source with `inventory:` is sampled from its newest report (footers of
 * Parquet files, one pass over CSV ones: inventory-sample.ts; one sample per bucket, its points
 * under the segment's prefix), any other source is listed.
 */
export function segmentKeys(opts: { scratchDir: string; reportStore?: ObjectStore }): KeySource {
  const samples = new Map<string, Promise<InventoryKeySample>>();
  return async function* (segment, signal, after) {
    const inventory = segment.source?.inventory;
    if (inventory === undefined) {
      yield* listedKeys(segment, signal, after);
      return;
    }
    let sample = samples.get(segment.bucket);
    if (sample === undefined) {
      sample = sampleInventoryKeys(segment.bucket, inventory, { ...opts, ...(signal === undefined ? {} : { signal }) });
      samples.set(segment.bucket, sample);
    }
    for (const point of (await sample).points) {
      if (point.key.startsWith(segment.prefix) && (after === undefined || compareKeys(point.key, after) > 0)) yield { key: point.key, weight: point.rows };
    }
  };
}

/**
 * A group's segments in (bucket, key) order: each source's outermost prefixes, sources of one
 * bucket merged (a bucket listed twice in a policy is still one key space).
 */
export function groupSegments(sources: readonly OpenedSource[]): Segment[] {
  const byBucket = new Map<string, { source: OpenedSource; prefixes: string[] }>();
  for (const s of sources) {
    const seen = byBucket.get(s.bucket);
    if (seen === undefined) byBucket.set(s.bucket, { source: s, prefixes: [...s.prefixes] });
    else seen.prefixes.push(...s.prefixes);
  }
  const buckets = [...byBucket.keys()].sort(compareKeys);
  return buckets.flatMap((bucket) => {
    const { source, prefixes } = byBucket.get(bucket)!;
    return outermostPrefixes(prefixes)
      .sort(compareKeys)
      .map((prefix) => ({ bucket, prefix, source }));
  });
}

/**
 * Boundaries from the catalog's key counts, or null when it holds fewer keys of the group than
 * there are shards (it does not know the group: a seed). Reads every catalogued key of the group
 * once at most (each nthKey walks on from the previous boundary), in one read transaction so a
 * backup writing the same catalog meanwhile cannot shift the count under it.
 */
export function catalogBounds(catalog: Catalog, segments: readonly Segment[], shards: number): BucketKey[] | null {
  return catalog.transaction(() => {
    const counts = segments.map((s) => keyCount(catalog, s.bucket, s.prefix));
    const total = counts.reduce((a, b) => a + b, 0);
    if (total < shards || segments.length === 0) return null;
    const bounds: BucketKey[] = [];
    let seg = 0;
    let before = 0; // keys in the segments before `seg`
    let last: { seg: number; position: number; key: string } | null = null;
    for (let i = 1; i < shards; i++) {
      const position = Math.floor((i * total) / shards); // keys in shards 0..i-1
      while (before + counts[seg]! < position) before += counts[seg++]!;
      const local = position - before; // 1-based position inside segment `seg`
      const from = last !== null && last.seg === seg ? last : null;
      const s = segments[seg]!;
      const key = catalog.nthKey(s.bucket, s.prefix, from?.key ?? null, local - (from?.position ?? 0));
      if (key === undefined) return null; // cannot happen inside the transaction; plan from a sample then
      bounds.push([s.bucket, key]);
      last = { seg, position: local, key };
    }
    return bounds;
  });
}

/**
 * A bounded sample of a stream of keys in order, each with a weight (how many keys it stands
 * for): consecutive keys are gathered into blocks of at least `step` keys, represented by their
 * first key; when `capacity` blocks are kept, `step` doubles and light neighbouring blocks merge. Memory stays at `capacity` points whatever the stream's length, blocks stay about
 * equal, and each block knows how many keys lie before it.
 */
export class KeySample {
  private readonly kept: { point: BucketKey; weight: number }[] = [];
  /** The block being gathered (not yet `step` keys). */
  private open: { point: BucketKey; weight: number } | null = null;
  private step = 1;
  /** Total weight seen so far (keys, for a listing). */
  seen = 0;

  constructor(private readonly capacity: number) {}

  add(point: BucketKey, weight = 1): void {
    if (weight <= 0) return;
    this.seen += weight;
    if (this.open === null) this.open = { point, weight };
    else this.open.weight += weight;
    if (this.open.weight < this.step) return;
    while (this.kept.length >= this.capacity) this.compact();
    this.kept.push(this.open);
    this.open = null;
  }

  /**
   * Doubles `step` and merges each block lighter than it with the next one: equal blocks pair
   * up; a heavy block (a report's row group) stays alone, so it does not grow with every merge.
   */
  private compact(): void {
    this.step *= 2;
    let n = 0;
    for (const block of this.kept) {
      const last = n === 0 ? undefined : this.kept[n - 1]!;
      if (last !== undefined && last.weight < this.step) last.weight += block.weight;
      else this.kept[n++] = { ...block };
    }
    this.kept.length = n;
  }

  /**
   * Each shard's part of what was seen (0..1, summing to 1; all 0 when nothing was seen) when
   * the key space is split at `bounds` (shard I covers (bounds[I-1], bounds[I]]): each block
   * counts whole to the shard that holds its point, so a part is off by one block at most.
   */
  shares(bounds: readonly BucketKey[]): number[] {
    const blocks = this.open === null ? this.kept : [...this.kept, this.open];
    const parts = Array.from({ length: bounds.length + 1 }, () => 0);
    let i = 0;
    for (const block of blocks) {
      while (i < bounds.length && compareBucketKeyPair(block.point, bounds[i]!) > 0) i++;
      parts[i]! += block.weight;
    }
    return this.seen === 0 ? parts : parts.map((w) => w / this.seen);
  }

  /**
   * N-1 boundaries that split what was seen into `shards` nearly equal parts: boundary i is the
   * point whose block holds the (i·seen/N)-th key (its first key, so at most one block early).
   */
  bounds(shards: number, first: BucketKey): BucketKey[] {
    const blocks = this.open === null ? this.kept : [...this.kept, this.open];
    const bounds: BucketKey[] = [];
    let j = 0;
    let before = 0; // weight of the blocks before blocks[j]
    for (let i = 1; i < shards; i++) {
      const position = Math.floor((i * this.seen) / shards); // keys in shards 0..i-1
      if (position === 0) {
        bounds.push([...first]);
        continue;
      }
      while (j < blocks.length - 1 && before + blocks[j]!.weight < position) before += blocks[j++]!.weight;
      bounds.push([...blocks[j]!.point]);
    }
    return bounds;
  }
}

/** Sample points kept per shard (the balance of a sampled plan is about 1/this of a shard's keys). */
const SAMPLE_PER_SHARD = 64;
const SAMPLE_MIN = 4096;
const SAMPLE_MAX = 262_144;

/** Blocks a plan's sample keeps for `shards` shards. */
function sampleCapacity(shards: number): number {
  return Math.min(SAMPLE_MAX, Math.max(SAMPLE_MIN, shards * SAMPLE_PER_SHARD));
}

/**
 * A group's work as a plan weighs it: new boundaries from it, and how other boundaries (an
 * earlier plan's) would share it among the shards, by the same weights.
 */
export interface Weighing {
  /** N-1 boundaries that balance the work. */
  bounds(): BucketKey[];
  /** Each shard's part of the work (0..1) under `bounds`; all 0 when there is no work. */
  shares(bounds: readonly BucketKey[]): number[];
}

function weighingOf(sample: KeySample, shards: number, segments: readonly Segment[], exact?: () => BucketKey[] | null): Weighing {
  // Below every key of the group: shards before it get nothing (fewer keys than shards).
  const first: BucketKey = [segments[0]?.bucket ?? '', ''];
  return { bounds: () => exact?.() ?? sample.bounds(shards, first), shares: (bounds) => sample.shares(bounds) };
}

/**
 * Boundaries from the keys of every segment (a listing: LIST-only, nothing is read; or an
 * inventory report), streamed through a bounded sample. A segment whose keys cannot be read counts
 * as empty (the backup itself records that failure).
 */
export async function sampledBounds(segments: readonly Segment[], shards: number, keys: KeySource = listedKeys, signal?: AbortSignal): Promise<BucketKey[]> {
  return (await sampledWeighing(segments, shards, keys, signal)).bounds();
}

/** sampledBounds' sample, as a Weighing. */
export async function sampledWeighing(segments: readonly Segment[], shards: number, keys: KeySource = listedKeys, signal?: AbortSignal): Promise<Weighing> {
  const sample = new KeySample(sampleCapacity(shards));
  for (const s of segments) {
    if (s.source === undefined) throw new Error(`segment ${s.bucket}/${s.prefix} has no source to list`);
    for await (const { key, weight } of unlessUnreadable(keys(s, signal))) sample.add([s.bucket, key], weight);
  }
  return weighingOf(sample, shards, segments);
}

/** A group's boundaries: the catalog's when it knows the group, else a sample of a listing. */
export async function groupBounds(
  catalog: Catalog,
  sources: readonly OpenedSource[],
  shards: number,
  keys?: KeySource,
  signal?: AbortSignal,
): Promise<{ bounds: BucketKey[]; from: 'catalog' | 'listing' | 'inventory' }> {
  const made = await groupWeighing(catalog, sources, shards, keys, signal);
  return { bounds: made.weighing.bounds(), from: made.from };
}

/** groupBounds' weighing of the group's work: new boundaries from it, or an earlier plan's judged by it. */
export async function groupWeighing(
  catalog: Catalog,
  sources: readonly OpenedSource[],
  shards: number,
  keys?: KeySource,
  signal?: AbortSignal,
): Promise<{ weighing: Weighing; from: 'catalog' | 'listing' | 'inventory' }> {
  const segments = groupSegments(sources);
  if (shards === 1) return { weighing: { bounds: () => [], shares: () => [1] }, from: 'catalog' };
  const keySource = keys ?? segmentKeys({ scratchDir: scratchDirOf(catalog) });
  const counts = segments.map((s) => keyCount(catalog, s.bucket, s.prefix));
  if (segments.length > 0 && counts.reduce((a, b) => a + b, 0) >= shards) {
    // An incremental: balance its new tail keys too when there are any, else the exact counts.
    // (The exact count is a pass over the group's catalogued keys: only made when asked for.)
    const { sample, tailKeys } = await catalogAndTailSample(catalog, segments, counts, shards, keySource, signal);
    return { weighing: weighingOf(sample, shards, segments, tailKeys > 0 ? undefined : () => catalogBounds(catalog, segments, shards)), from: 'catalog' };
  }
  const from = sources.some((s) => s.inventory !== undefined) ? 'inventory' : 'listing';
  return { weighing: await sampledWeighing(segments, shards, keySource, signal), from };
}

/**
 * What copying a new key costs next to comparing a catalogued one that did not change: a GET,
 * hashing, compression and its share of a pack PUT against a listed line and a merge-join step
 * (bench/README.md: a seed copies ~800 small objects/s, an unchanged incremental compares ~31,000:
 * a new key costs 25-40 catalogued ones; the low end keeps the shards' listing work even too).
 */
export const NEW_KEY_WEIGHT = 25;

/**
 * The sample of an incremental run that balances work, not only keys (`tailKeys`: how many keys
 * were found after the segments' last catalogued ones; without any, boundaries come from the
 * exact counts, catalogBounds). Keys appended after a segment's last catalogued key (the
 * next date partition of a time-partitioned table: where most of a lake's new data lands) are
 * listed once here (a LIST per 1,000 new keys; an inventory source answers from its report) and
 * each counts NEW_KEY_WEIGHT catalogued keys, so the new partition is spread over the shards
 * instead of falling whole to the last one. New keys elsewhere (inside a catalogued range) stay
 * where their range puts them. Catalogued keys are walked in strides (one nthKey per stride).
 */
async function catalogAndTailSample(
  catalog: Catalog,
  segments: readonly Segment[],
  counts: readonly number[],
  shards: number,
  keys: KeySource,
  signal?: AbortSignal,
): Promise<{ sample: KeySample; tailKeys: number }> {
  const total = counts.reduce((a, b) => a + b, 0);
  const capacity = sampleCapacity(shards);
  const stride = Math.max(1, Math.floor(total / capacity));
  const sample = new KeySample(capacity);
  let tailKeys = 0;
  for (const [i, s] of segments.entries()) {
    let last: string | undefined;
    for (let position = 1; position <= counts[i]!; position += stride) {
      const key = catalog.nthKey(s.bucket, s.prefix, last ?? null, last === undefined ? 1 : stride);
      if (key === undefined) break;
      sample.add([s.bucket, key], Math.min(stride, counts[i]! - position + 1));
      last = key;
    }
    if (s.source === undefined) continue;
    // The tail starts after the segment's last catalogued key, not after the stride's last point.
    for await (const { key, weight } of unlessUnreadable(keys(s, signal, lastKey(catalog, s.bucket, s.prefix)))) {
      sample.add([s.bucket, key], weight * NEW_KEY_WEIGHT);
      tailKeys++;
    }
  }
  return { sample, tailKeys };
}

/** A segment's keys, ending early where they cannot be read: the backup itself records that failure. */
async function* unlessUnreadable(keys: AsyncIterable<WeightedKey>): AsyncIterable<WeightedKey> {
  try {
    yield* keys;
  } catch (err) {
    if (!isUnreadable(err)) throw err;
  }
}

/**
 * A record blob of a run manifest, as planning without a catalog sees it: its first and last
 * (bucket, key) (`recordRanges`) and about how many version records it holds (`weight`).
 * Manifests do not count a blob's lines: the weight is its raw length (`recordLocations`) over
 * ESTIMATED_RECORD_LINE_BYTES, a blob of an older manifest (no locations) counts as a full one.
 */
export interface RecordedRange {
  first: BucketKey;
  last: BucketKey;
  weight: number;
}

/**
 * Bytes of one version record line, to estimate a record blob's lines from its raw length: a
 * line with its blob's id and location (`locs`) and a key of 99 characters measured 494 bytes
 * (docs/scale-out.md "A shard on a fresh host syncs only its key range"). A wrong guess scales
 * every blob alike: it only shifts the weight of a new (tail) key next to a recorded one.
 */
export const ESTIMATED_RECORD_LINE_BYTES = 500;

/**
 * Record blobs per shard below which a plan is not made from records: a boundary falls between
 * blobs, so with fewer a shard could be off by a large part of its keys. Below it (fewer than about
 * 28,000 recorded versions per shard) the keys are listed as for a seed: a few hundred LISTs.
 */
export const MIN_RECORD_BLOBS_PER_SHARD = 4;

/**
 * Boundaries from the record ranges of the group's run manifests (no catalog: a shard on a fresh
 * host plans without syncing the whole catalog), or null when there are fewer than
 * MIN_RECORD_BLOBS_PER_SHARD record blobs per shard in its segments (a seed, or a small group: plan
 * from a listing then). Each record blob counts at its last key (a
 * boundary falls between blobs: at most one record blob, about 7,000 versions, off where blobs of
 * several runs overlap); a key recorded by several runs counts once per run. Keys listed after a segment's
 * last recorded key (the new tail, as catalogAndTailSample) count NEW_KEY_WEIGHT each; a segment
 * whose records run on past its end has no tail listed (its last recorded key is not known).
 */
export async function recordedBounds(
  ranges: readonly RecordedRange[],
  segments: readonly Segment[],
  shards: number,
  keys: KeySource = listedKeys,
  signal?: AbortSignal,
): Promise<BucketKey[] | null> {
  return (await recordedWeighing(ranges, segments, shards, keys, signal))?.bounds() ?? null;
}

/** recordedBounds' sample, as a Weighing; null where recordedBounds is. */
export async function recordedWeighing(
  ranges: readonly RecordedRange[],
  segments: readonly Segment[],
  shards: number,
  keys: KeySource = listedKeys,
  signal?: AbortSignal,
): Promise<Weighing | null> {
  const cmp = compareBucketKeyPair;
  const starts = segments.map((s): BucketKey => [s.bucket, s.prefix]);
  const ends = segments.map((s): BucketKey | null => {
    const upper = prefixUpperBound(s.prefix);
    return upper === null ? null : [s.bucket, upper];
  });
  // Below the end of segment i (its bucket's keys under its prefix).
  const beforeEnd = (i: number, p: BucketKey): boolean => (ends[i] === null ? compareKeys(p[0], segments[i]!.bucket) <= 0 : cmp(p, ends[i]!) < 0);
  const points: { point: BucketKey; weight: number }[] = [];
  const lastInside: (BucketKey | null)[] = segments.map(() => null);
  const runsOn = segments.map(() => false);
  let total = 0;
  for (const r of ranges) {
    let counted = false;
    for (let i = 0; i < segments.length; i++) {
      if (cmp(r.last, starts[i]!) < 0 || !beforeEnd(i, r.first)) continue; // no overlap
      if (!counted) {
        // At its last key: a boundary at this point gives the blob's records to the shard before it.
        points.push({ point: [...r.last], weight: r.weight });
        total += r.weight;
        counted = true;
      }
      if (!beforeEnd(i, r.last)) runsOn[i] = true;
      else if (lastInside[i] === null || cmp(r.last, lastInside[i]!) > 0) lastInside[i] = [...r.last];
    }
  }
  if (segments.length === 0 || total < shards || points.length < MIN_RECORD_BLOBS_PER_SHARD * shards) return null;
  points.sort((a, b) => cmp(a.point, b.point));
  const sample = new KeySample(sampleCapacity(shards));
  // Tail keys sort after every recorded point of their segment, and segments are in order.
  let next = 0;
  for (const [i, s] of segments.entries()) {
    const tailFrom = runsOn[i] ? null : lastInside[i];
    while (next < points.length && (i === segments.length - 1 || cmp(points[next]!.point, starts[i + 1]!) < 0)) {
      sample.add(points[next]!.point, points[next]!.weight);
      next++;
    }
    if (s.source === undefined || runsOn[i]) continue;
    for await (const { key, weight } of unlessUnreadable(keys(s, signal, tailFrom?.[1]))) sample.add([s.bucket, key], weight * NEW_KEY_WEIGHT);
  }
  return weighingOf(sample, shards, segments);
}

function compareBucketKeyPair(a: BucketKey, b: BucketKey): number {
  return compareKeys(a[0], b[0]) || compareKeys(a[1], b[1]);
}
