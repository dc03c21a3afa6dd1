/**
 * Where a run set's shards split a group's key space: N-1 boundaries in (bucket, key) order that
 * give each shard about the same number of keys. From the synced catalog's key counts when it
 * knows the group (so one huge partition among many tiny ones is split inside), else from a
 * bounded sample of a listing (a seed). docs/scale-out.md "Shards" has the costs.
 */
import type { Catalog } from '../catalog/catalog.js';
import { keyCount } from '../catalog/shard-lookups.js';
import { compareKeys } from '../util/key-order.js';
import { isUnreadable } from './backup-transfer.js';
import type { BucketKey } from './shards.js';
import { outermostPrefixes, type OpenedSource } from './sources.js';

/** One stretch of a group's key space: the keys of `bucket` under `prefix`. */
export interface Segment {
  bucket: string;
  prefix: string;
  /** The source to list it from (a sample); absent where only the catalog is asked. */
  source?: OpenedSource;
}

/**
 * The keys under `prefix` of a source, in S3 key order: where a sample takes its keys from. By
 * default a LIST of the source; the seam for listing from an S3 Inventory report instead.
 */
export type KeyLister = (source: OpenedSource, prefix: string, signal?: AbortSignal) => AsyncIterable<string>;

/** Lists a source's keys with ordinary LIST requests (1,000 keys per request). */
export const listKeys: KeyLister = async function* (source, prefix, signal) {
  for await (const item of source.objectStore.list(prefix, signal === undefined ? {} : { signal })) {
    if (item.kind === 'object') yield item.key;
  }
};

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
 * A bounded, evenly spaced sample of a stream: keeps every k-th point, and when full drops every
 * other kept point and doubles k. Memory stays at `capacity` points whatever the stream's length.
 */
export class KeySample {
  private readonly kept: BucketKey[] = [];
  private step = 1;
  /** Points seen so far. */
  seen = 0;

  constructor(private readonly capacity: number) {}

  add(point: BucketKey): void {
    if (this.seen % this.step === 0) {
      if (this.kept.length === this.capacity) {
        for (let i = 0; i * 2 < this.kept.length; i++) this.kept[i] = this.kept[i * 2]!;
        this.kept.length = Math.ceil(this.kept.length / 2);
        this.step *= 2;
      }
      if (this.seen % this.step === 0) this.kept.push(point);
    }
    this.seen++;
  }

  /**
   * N-1 boundaries that split what was seen into `shards` nearly equal parts: boundary i is the
   * kept point nearest below the (i·seen/N)-th point seen (each kept point j is the (j·k+1)-th).
   */
  bounds(shards: number, first: BucketKey): BucketKey[] {
    const bounds: BucketKey[] = [];
    for (let i = 1; i < shards; i++) {
      const position = Math.floor((i * this.seen) / shards);
      bounds.push(position === 0 ? [...first] : [...this.kept[Math.floor((position - 1) / this.step)]!]);
    }
    return bounds;
  }
}

/** Sample points kept per shard (the balance of a sampled plan is about 1/this of a shard's keys). */
const SAMPLE_PER_SHARD = 64;
const SAMPLE_MIN = 4096;
const SAMPLE_MAX = 262_144;

/**
 * Boundaries from one listing of every segment (LIST-only: nothing is read), streamed through a
 * bounded sample. A segment whose listing is refused counts as empty (the backup itself records
 * that failure).
 */
export async function sampledBounds(segments: readonly Segment[], shards: number, lister: KeyLister = listKeys, signal?: AbortSignal): Promise<BucketKey[]> {
  const sample = new KeySample(Math.min(SAMPLE_MAX, Math.max(SAMPLE_MIN, shards * SAMPLE_PER_SHARD)));
  for (const s of segments) {
    if (s.source === undefined) throw new Error(`segment ${s.bucket}/${s.prefix} has no source to list`);
    try {
      for await (const key of lister(s.source, s.prefix, signal)) sample.add([s.bucket, key]);
    } catch (err) {
      if (!isUnreadable(err)) throw err;
    }
  }
  // Below every key of the group: shards before it get nothing (fewer keys than shards).
  const first: BucketKey = [segments[0]?.bucket ?? '', ''];
  return sample.bounds(shards, first);
}

/** A group's boundaries: the catalog's when it knows the group, else a sample of a listing. */
export async function groupBounds(catalog: Catalog, sources: readonly OpenedSource[], shards: number, lister?: KeyLister, signal?: AbortSignal): Promise<{ bounds: BucketKey[]; from: 'catalog' | 'listing' }> {
  const segments = groupSegments(sources);
  if (shards === 1) return { bounds: [], from: 'catalog' };
  const known = catalogBounds(catalog, segments, shards);
  if (known !== null) return { bounds: known, from: 'catalog' };
  return { bounds: await sampledBounds(segments, shards, lister, signal), from: 'listing' };
}
