/**
 * Bounded memory for `serve`'s reads: decoded blobs kept by id (least recently used out first,
 * so a Parquet footer or a hot small object is decrypted once), and a cap on the pack reads in
 * flight and on their bytes, so many concurrent clients queue instead of growing the heap.
 */
import pLimit from 'p-limit';
import { ByteBudget } from '../util/byte-budget.js';
import type { BlobCache as ReaderCache } from './object-reader.js';

export interface BlobCacheOptions {
  /** Decoded bytes kept (default 64 MiB; 0 keeps nothing). */
  maxBytes?: number;
  /** Pack reads in flight at once (default 16). */
  maxReads?: number;
  /** Stored bytes of the pack reads in flight (default 32 MiB; one larger read is let through alone). */
  maxReadBytes?: number;
}

export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_READS = 16;
const DEFAULT_READ_BYTES = 32 * 1024 * 1024;

export class BlobCache implements ReaderCache {
  private readonly blobs = new Map<string, Buffer>();
  private held = 0;
  private readonly maxBytes: number;
  private readonly reads: ReturnType<typeof pLimit>;
  private readonly readBytes: ByteBudget;
  /** Lookups answered from the cache, and not. */
  hits = 0;
  misses = 0;

  constructor(opts: BlobCacheOptions = {}) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_CACHE_BYTES;
    this.reads = pLimit(opts.maxReads ?? DEFAULT_MAX_READS);
    this.readBytes = new ByteBudget(opts.maxReadBytes ?? DEFAULT_READ_BYTES);
  }

  /** Decoded bytes held now. */
  get bytes(): number {
    return this.held;
  }

  get(id: Buffer): Buffer | undefined {
    const name = id.toString('hex');
    const raw = this.blobs.get(name);
    if (raw === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Most recently used last: a Map iterates in insertion order.
    this.blobs.delete(name);
    this.blobs.set(name, raw);
    return raw;
  }

  put(id: Buffer, raw: Buffer): void {
    // A blob over an eighth of the cache would evict much for one object's sake.
    if (raw.length > this.maxBytes / 8) return;
    const name = id.toString('hex');
    const old = this.blobs.get(name);
    if (old !== undefined) {
      this.blobs.delete(name);
      this.held -= old.length;
    }
    this.blobs.set(name, raw);
    this.held += raw.length;
    for (const [oldest, buf] of this.blobs) {
      if (this.held <= this.maxBytes) break;
      this.blobs.delete(oldest);
      this.held -= buf.length;
    }
  }

  reading<T>(bytes: number, read: () => Promise<T>): Promise<T> {
    return this.reads(() => this.readBytes.with(bytes, read));
  }

  clear(): void {
    this.blobs.clear();
    this.held = 0;
  }
}
