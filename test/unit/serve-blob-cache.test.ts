// serve's bounded memory: the decoded-blob cache evicts the least recently used blob first and
// never holds more than its bound; pack reads in flight are capped.
import { describe, expect, it } from 'vitest';
import { BlobCache, PACK_WINDOW } from '../../src/serve/blob-cache.js';

const id = (n: number): Buffer => Buffer.alloc(32, n);

describe('serve blob cache', () => {
  it('keeps the most recently used blobs within its bytes', () => {
    const cache = new BlobCache({ maxBytes: 1000 });
    for (let n = 1; n <= 10; n++) cache.put(id(n), Buffer.alloc(100, n));
    expect(cache.bytes).toBe(1000);
    expect(cache.get(id(1))?.[0]).toBe(1); // used: now the newest
    cache.put(id(11), Buffer.alloc(100, 11)); // evicts 2, the least recently used
    expect(cache.get(id(2))).toBeUndefined();
    expect(cache.get(id(1))?.[0]).toBe(1);
    expect(cache.get(id(3))?.[0]).toBe(3);
    expect(cache.bytes).toBeLessThanOrEqual(1000);
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 3, misses: 1 });
    // A blob over an eighth of the cache is not kept (one large object would flush the rest).
    cache.put(id(12), Buffer.alloc(200));
    expect(cache.get(id(12))).toBeUndefined();
    // Putting a blob again replaces it without counting it twice.
    cache.put(id(3), Buffer.alloc(50, 3));
    expect(cache.bytes).toBe(950);
    const off = new BlobCache({ maxBytes: 0 });
    off.put(id(1), Buffer.alloc(1));
    expect(off.get(id(1))).toBeUndefined();
  });

  it('caps pack reads in flight by count and by bytes', async () => {
    const cache = new BlobCache({ maxReads: 3, maxReadBytes: 1000 });
    let inFlight = 0;
    let most = 0;
    const read = (bytes: number) =>
      cache.reading(bytes, async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 5));
        inFlight--;
        return bytes;
      });
    expect(await Promise.all(Array.from({ length: 12 }, () => read(100)))).toHaveLength(12);
    expect(most).toBe(3);
    most = 0;
    await Promise.all(Array.from({ length: 6 }, () => read(400)));
    expect(most).toBe(2); // 2 × 400 fit in 1000 bytes, 3 do not
    most = 0;
    await Promise.all([read(5000), read(5000)]); // larger than the budget: one at a time, never stuck
    expect(most).toBe(1);
  });

  it('reads a pack in aligned windows shared by concurrent readers, and kept within their bytes', async () => {
    const pack = Buffer.alloc(3 * PACK_WINDOW);
    for (let i = 0; i < pack.length; i++) pack[i] = i % 251;
    const reads: [number, number][] = [];
    const read = async (start: number, end: number) => {
      reads.push([start, end]);
      await new Promise((resolve) => setTimeout(resolve, 5));
      return pack.subarray(start, end);
    };
    const cache = new BlobCache({ maxWindowBytes: 2 * PACK_WINDOW });
    const size = pack.length - 100; // the last window ends at the pack's end
    // The first run asked for in a window is read on its own (no amplification for scattered reads).
    expect(cache.windowed('p', size, 0, 5, read)).toBeNull();
    expect(cache.windowed('p', size, PACK_WINDOW, PACK_WINDOW + 5, read)).toBeNull();
    expect(cache.windowed('p', size, 2 * PACK_WINDOW, 2 * PACK_WINDOW + 5, read)).toBeNull();
    expect(reads).toEqual([]);
    const got = await Promise.all([
      cache.windowed('p', size, 10, 20, read),
      cache.windowed('p', size, 5000, 9000, read),
      cache.windowed('p', size, PACK_WINDOW + 1, PACK_WINDOW + 2, read),
    ]);
    expect(got.map((b) => b && [...b.subarray(0, 2)])).toEqual([[10, 11], [5000 % 251, 5001 % 251], [(PACK_WINDOW + 1) % 251]]);
    expect(reads).toEqual([[0, PACK_WINDOW], [PACK_WINDOW, 2 * PACK_WINDOW]]);
    expect({ reads: cache.windowReads, hits: cache.windowHits }).toEqual({ reads: 2, hits: 1 });
    // Across a window's end, or too large: not windowed.
    expect(cache.windowed('p', size, PACK_WINDOW - 5, PACK_WINDOW + 5, read)).toBeNull();
    expect(cache.windowed('p', size, 0, PACK_WINDOW / 2, read)).toBeNull();
    // The last window stops at the pack's end; a third window evicts the least recently used.
    expect((await cache.windowed('p', size, 2 * PACK_WINDOW, 2 * PACK_WINDOW + 10, read))?.length).toBe(10);
    expect(reads.at(-1)).toEqual([2 * PACK_WINDOW, size]);
    // Window 0 was evicted (window 1 was used after it): asked for anew, once alone, then read.
    expect(cache.windowed('p', size, 0, 10, read)).toBeNull();
    await cache.windowed('p', size, 0, 10, read);
    expect(reads).toHaveLength(4);
    // A failed read is not kept: the next readers start over (alone first, then the window).
    const failing = new BlobCache();
    expect(failing.windowed('q', size, 0, 10, read)).toBeNull();
    await expect(failing.windowed('q', size, 0, 10, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(failing.windowed('q', size, 0, 2, read)).toBeNull();
    expect(await failing.windowed('q', size, 0, 2, read)).toEqual(pack.subarray(0, 2));
  });
});
