// serve's bounded memory: the decoded-blob cache evicts the least recently used blob first and
// never holds more than its bound; pack reads in flight are capped.
import { describe, expect, it } from 'vitest';
import { BlobCache } from '../../src/serve/blob-cache.js';

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
});
