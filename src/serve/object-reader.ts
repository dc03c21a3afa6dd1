/**
 * An object's content (or a byte range of it) as a stream, read from packs: only the blobs the
 * range overlaps, consecutive blobs of a pack with one ranged GET, every blob authenticated
 * before a byte of it is sent. Backpressure: the next run of blobs is read only when the
 * consumer has taken the previous one.
 */
import { Readable, addAbortSignal } from 'node:stream';
import type { ContentBlob, ServeQueries } from '../catalog/serve-queries.js';
import { blobRuns, decodeLocatedBlob, readPackRangeRetrying, type BlobRun } from '../engine/pack-reads.js';
import { IntegrityError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import type { ByteRange } from './view-types.js';

/**
 * Stored bytes read with one GET at most. Smaller than restore's 4 MiB: a serve process holds one
 * run per open stream, and ranged reads of query engines (a Parquet column chunk, a footer) need
 * a few blobs, not a whole object.
 */
export const MAX_SERVE_RUN = 2 * 1024 * 1024;

const EMPTY = Buffer.alloc(0);

/** What reading needs: the repository (packs, keys) and where a version's blobs are. */
export interface ContentSource {
  repo: Repository;
  queries: ServeQueries;
  /** Decoded blobs by id: read from the cache, and what is read is put there (blob-cache.ts). */
  cache?: BlobCache;
}

/** The blob cache as the reader uses it. */
export interface BlobCache {
  get(id: Buffer): Buffer | undefined;
  put(id: Buffer, raw: Buffer): void;
  /** Holds a pack read's slot (bounded concurrent reads) while `read` runs. */
  reading<T>(bytes: number, read: () => Promise<T>): Promise<T>;
  /**
   * Stored bytes `start` to `end` of a pack cut from a window of the pack read whole and kept a
   * while (objects backed up together are neighbours in a pack, and clients read them together),
   * or null when the range is to be read on its own (too large, or the first in its window).
   */
  windowed(pack: string, packSize: number, start: number, end: number, read: (start: number, end: number) => Promise<Buffer>): Promise<Buffer> | null;
}

/** The object a stream is of, for messages. */
export interface ContentOf {
  bucket: string;
  key: string;
  versionRow: number;
  size: number;
}

/**
 * Bytes `range` (default: all) of the content of `object`. The stream errors with an
 * IntegrityError when the catalog no longer locates a blob or a blob does not authenticate,
 * and with the storage error when a pack cannot be read.
 */
export function openContent(source: ContentSource, object: ContentOf, range?: ByteRange, signal?: AbortSignal): Readable {
  const start = range?.start ?? 0;
  const end = range?.end ?? object.size - 1;
  const what = `cannot read ${object.bucket}/${object.key}`;
  async function* generate(): AsyncGenerator<Buffer> {
    if (end < start) return; // an empty object (or an empty range)
    const blobs = source.queries.contentBlobs(object.versionRow, start, end);
    if (blobs === null) {
      throw new IntegrityError(`${what}: a blob of its content is no longer in any pack the catalog knows`, {
        hint: 'run `lakeguard catalog sync` and `lakeguard verify` to see what happened to it',
      });
    }
    const first = blobs[0];
    const last = blobs.at(-1);
    if (first === undefined || last === undefined || first.position > start || last.position + last.rawLength <= end) {
      throw new IntegrityError(`${what}: the catalog's blobs do not cover bytes ${start}-${end} of its ${object.size}`, {
        hint: 'run `lakeguard catalog rebuild` to rebuild the catalog from the repository',
      });
    }
    for (const run of blobRuns(blobs, MAX_SERVE_RUN)) {
      const part = blobs.slice(run.first, run.last);
      const raws = await readRun(source, run, part, what, signal);
      for (let i = 0; i < part.length; i++) {
        // Whole blobs were read: cut the first and the last to the range.
        const raw = raws[i]!;
        raws[i] = EMPTY; // held by the consumer from here on, not by this run too
        const from = Math.max(0, start - part[i]!.position);
        const to = Math.min(raw.length, end + 1 - part[i]!.position);
        if (to > from) yield from === 0 && to === raw.length ? raw : raw.subarray(from, to);
      }
    }
  }
  const stream = Readable.from(generate(), { objectMode: false });
  return signal === undefined ? stream : addAbortSignal(signal, stream);
}

/**
 * The decoded blobs of one run: from the cache when every one of them is there, else from a
 * cached window of the pack (small runs), else with one GET of the run.
 */
async function readRun(source: ContentSource, run: BlobRun, blobs: ContentBlob[], what: string, signal?: AbortSignal): Promise<Buffer[]> {
  const { pack, start, end } = run;
  const cache = source.cache;
  if (cache !== undefined) {
    const cached = blobs.map((b) => cache.get(b.hash));
    if (cached.every((c) => c !== undefined)) return cached;
  }
  const decode = (data: Buffer): Buffer[] => blobs.map((b) => decodeLocatedBlob(source.repo, data.subarray(b.offset - start, b.offset - start + b.length), b, what));
  const read = async (): Promise<Buffer[]> => decode(await readPackRangeRetrying(source.repo, pack, start, end, signal));
  // Without this request's signal: other requests wait for the same window read.
  const windowed = cache?.windowed(pack, blobs[0]!.packSize, start, end, (from, to) => readPackRangeRetrying(source.repo, pack, from, to));
  if (windowed != null) {
    const raws = decode(await windowed);
    blobs.forEach((b, i) => cache!.put(b.hash, raws[i]!));
    return raws;
  }
  const raws = cache === undefined ? await read() : await cache.reading(end - start, read);
  if (cache !== undefined) blobs.forEach((b, i) => cache.put(b.hash, raws[i]!));
  return raws;
}
