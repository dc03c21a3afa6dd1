/**
 * Bounded memory for `serve`'s reads: decoded blobs kept by id (least recently used out first,
 * so a Parquet footer or a hot small object is decrypted once), windows of packs around small
 * blobs (one GET for a run of neighbouring small objects), and a cap on the pack reads in flight
 * and on their bytes, so many concurrent clients queue instead of growing the heap.
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
  /** Stored bytes of pack windows kept (default 32 MiB; 0: every blob run is read on its own). */
  maxWindowBytes?: number;
}

export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_READS = 16;
const DEFAULT_READ_BYTES = 32 * 1024 * 1024;
const DEFAULT_WINDOW_BYTES = 32 * 1024 * 1024;
/**
 * A pack is read in aligned windows of this size when a second small blob of the same window is
 * asked for: one GET then answers the neighbours too (the objects backed up with it, which a
 * client scanning a prefix asks for next), instead of one GET per object.
 */
export const PACK_WINDOW = 1024 * 1024;
/** Runs up to this size are read through a window; larger ones with a GET of their own. */
const WINDOWED_RUN = PACK_WINDOW / 4;
/** Windows remembered as asked for once (a set of names: about 100 bytes each). */
const RECENT_WINDOWS = 4096;

/** Buffers by name within a byte bound, the least recently used evicted first. */
class ByteLru {
  /** Most recently used last: a Map iterates in insertion order. */
  private readonly items = new Map<string, Buffer>();
  bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(name: string): Buffer | undefined {
    const buf = this.items.get(name);
    if (buf === undefined) return undefined;
    this.items.delete(name);
    this.items.set(name, buf);
    return buf;
  }

  set(name: string, buf: Buffer): void {
    const old = this.items.get(name);
    if (old !== undefined) {
      this.items.delete(name);
      this.bytes -= old.length;
    }
    this.items.set(name, buf);
    this.bytes += buf.length;
    for (const [oldest, held] of this.items) {
      if (this.bytes <= this.maxBytes) break;
      this.items.delete(oldest);
      this.bytes -= held.length;
    }
  }

  clear(): void {
    this.items.clear();
    this.bytes = 0;
  }
}

export class BlobCache implements ReaderCache {
  private readonly blobs: ByteLru;
  private readonly maxBytes: number;
  private readonly reads: ReturnType<typeof pLimit>;
  private readonly readBytes: ByteBudget;
  private readonly windows: ByteLru;
  private readonly windowsReading = new Map<string, Promise<Buffer>>();
  /** Windows a run was read from on its own lately (oldest first). */
  private readonly recent = new Set<string>();
  private readonly maxWindowBytes: number;
  /** Lookups answered from the cache, and not. */
  hits = 0;
  misses = 0;
  /** Pack windows read, and runs answered from a window already read (or being read). */
  windowReads = 0;
  windowHits = 0;

  constructor(opts: BlobCacheOptions = {}) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_CACHE_BYTES;
    this.reads = pLimit(opts.maxReads ?? DEFAULT_MAX_READS);
    this.readBytes = new ByteBudget(opts.maxReadBytes ?? DEFAULT_READ_BYTES);
    this.maxWindowBytes = opts.maxWindowBytes ?? DEFAULT_WINDOW_BYTES;
    this.blobs = new ByteLru(this.maxBytes);
    this.windows = new ByteLru(this.maxWindowBytes);
  }

  /** Decoded bytes held now. */
  get bytes(): number {
    return this.blobs.bytes;
  }

  get(id: Buffer): Buffer | undefined {
    const raw = this.blobs.get(id.toString('hex'));
    if (raw === undefined) this.misses++;
    else this.hits++;
    return raw;
  }

  put(id: Buffer, raw: Buffer): void {
    // A blob over an eighth of the cache would evict much for one object's sake.
    if (raw.length > this.maxBytes / 8) return;
    this.blobs.set(id.toString('hex'), raw);
  }

  reading<T>(bytes: number, read: () => Promise<T>): Promise<T> {
    return this.reads(() => this.readBytes.with(bytes, read));
  }

  windowed(pack: string, packSize: number, start: number, end: number, read: (start: number, end: number) => Promise<Buffer>): Promise<Buffer> | null {
    const from = Math.floor(start / PACK_WINDOW) * PACK_WINDOW;
    const to = Math.min(from + PACK_WINDOW, packSize);
    if (this.maxWindowBytes === 0 || end - start > WINDOWED_RUN || end > to) return null;
    const name = `${pack}@${from}`;
    const cut = (window: Buffer): Buffer => window.subarray(start - from, end - from);
    const kept = this.windows.get(name);
    if (kept !== undefined) {
      this.windowHits++;
      return Promise.resolve(cut(kept));
    }
    // Concurrent readers of one window share its one read.
    let reading = this.windowsReading.get(name);
    if (reading === undefined && !this.touched(name)) return null;
    if (reading === undefined) {
      this.windowReads++;
      reading = this.reading(to - from, () => read(from, to)).then(
        (window) => {
          this.windowsReading.delete(name);
          this.windows.set(name, window);
          return window;
        },
        (err: unknown) => {
          this.windowsReading.delete(name);
          throw err;
        },
      );
      this.windowsReading.set(name, reading);
    } else {
      this.windowHits++;
    }
    return reading.then(cut);
  }

  /**
   * Whether a run in this window was asked for recently; marks it. Only the second run asked
   * for in a window reads the window: a client reading neighbours (a scan) pays one GET more
   * per window, one reading scattered small objects pays no read amplification.
   */
  private touched(name: string): boolean {
    if (this.recent.delete(name)) return true;
    this.recent.add(name);
    if (this.recent.size > RECENT_WINDOWS) this.recent.delete(this.recent.values().next().value!);
    return false;
  }

  clear(): void {
    this.blobs.clear();
    this.windows.clear();
  }
}
