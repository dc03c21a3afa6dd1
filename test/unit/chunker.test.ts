import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chunkBoundaries, chunkStream, DEFAULT_CHUNKER, gearTable, type ChunkerParams } from '../../src/repository/chunker.js';

const SMALL: ChunkerParams = { minSize: 64, avgSize: 256, maxSize: 1024 };
const MiB = 1024 * 1024;

/** Seeded xorshift32 bytes: reproducible "random" content without fixtures. */
function prng(len: number, seed: number): Buffer {
  const out = Buffer.alloc(len);
  const words = new Uint32Array(out.buffer, out.byteOffset, len >>> 2);
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  for (let i = 0; i < words.length; i++) words[i] = next();
  for (let i = words.length * 4; i < len; i++) out[i] = next() & 255;
  return out;
}

function sizesOf(bounds: number[]): number[] {
  return bounds.map((end, i) => end - (i === 0 ? 0 : bounds[i - 1]!));
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function chunksOf(data: Buffer, bounds: number[]): Buffer[] {
  return bounds.map((end, i) => data.subarray(i === 0 ? 0 : bounds[i - 1]!, end));
}

async function* pieces(data: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let o = 0;
  let k = 0;
  while (o < data.length) {
    const n = sizes[k++ % sizes.length]!;
    yield data.subarray(o, Math.min(data.length, o + n));
    o += n;
  }
}

async function collect(source: AsyncIterable<Uint8Array>, params?: ChunkerParams): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of chunkStream(source, params)) out.push(c);
  return out;
}

function endsOf(chunks: Buffer[]): number[] {
  let o = 0;
  return chunks.map((c) => (o += c.length));
}

describe('GEAR table', () => {
  it('is splitmix64 (known answer for seed 0: first output 0xe220a8397b1dcdaf)', () => {
    expect(gearTable(0n)[0]).toBe(0xe220a839);
  });

  it('is pinned for the lakeguard seed', () => {
    const g = gearTable();
    expect(g.length).toBe(256);
    expect([g[0], g[1], g[2], g[3], g[255]]).toEqual([0xe639b6fe, 0xfaa44a64, 0xe1742b71, 0xaa41759b, 0xcf050001]);
  });
});

describe('chunkBoundaries', () => {
  it('matches pinned boundaries (a second implementation must reproduce these)', () => {
    expect(chunkBoundaries(prng(4096, 42), SMALL)).toEqual([
      282, 570, 831, 1135, 1466, 1792, 2063, 2407, 2546, 2857, 3128, 3420, 3773, 3917, 4096,
    ]);
    expect(chunkBoundaries(prng(8 * MiB, 7))).toEqual([1158075, 2262625, 3351742, 4490658, 5542293, 6976716, 8122555, 8388608]);
  });

  it('is deterministic', () => {
    const data = prng(2 * MiB, 1);
    expect(chunkBoundaries(data, SMALL)).toEqual(chunkBoundaries(Buffer.from(data), SMALL));
    expect(chunkBoundaries(data)).toEqual(chunkBoundaries(data));
  });

  it.each([
    ['small', SMALL, 1 * MiB],
    ['default', DEFAULT_CHUNKER, 24 * MiB],
  ] as const)('keeps every chunk but the last within [min, max] (%s params)', (_name, params, len) => {
    const data = prng(len, 5);
    const bounds = chunkBoundaries(data, params);
    expect(bounds.at(-1)).toBe(len);
    const sizes = sizesOf(bounds);
    for (const s of sizes.slice(0, -1)) {
      expect(s).toBeGreaterThanOrEqual(params.minSize);
      expect(s).toBeLessThanOrEqual(params.maxSize);
    }
    expect(sizes.at(-1)!).toBeGreaterThan(0);
    expect(sizes.at(-1)!).toBeLessThanOrEqual(params.maxSize);
    // Normalized chunking keeps the mean near avgSize.
    const mean = len / bounds.length;
    expect(mean).toBeGreaterThan(params.avgSize * 0.75);
    expect(mean).toBeLessThan(params.avgSize * 1.5);
  });

  it('handles empty, tiny and boundary-length inputs', () => {
    expect(chunkBoundaries(new Uint8Array(0), SMALL)).toEqual([]);
    expect(chunkBoundaries(prng(10, 1), SMALL)).toEqual([10]);
    expect(chunkBoundaries(prng(64, 1), SMALL)).toEqual([64]);
    for (const len of [65, 1023, 1024, 1025, 2049]) {
      const b = chunkBoundaries(prng(len, 9), SMALL);
      expect(b.at(-1)).toBe(len);
      for (const s of sizesOf(b).slice(0, -1)) expect(s).toBeGreaterThan(64);
    }
  });

  it('cuts low-entropy data at maxSize', () => {
    expect(chunkBoundaries(new Uint8Array(3000), SMALL)).toEqual([1024, 2048, 3000]);
  });

  it('validates params', () => {
    const data = new Uint8Array(10);
    expect(() => chunkBoundaries(data, { minSize: 256, avgSize: 256, maxSize: 1024 })).toThrow(/minSize < avgSize < maxSize/);
    expect(() => chunkBoundaries(data, { minSize: 64, avgSize: 1024, maxSize: 1024 })).toThrow(/minSize < avgSize < maxSize/);
    expect(() => chunkBoundaries(data, { minSize: 64, avgSize: 300, maxSize: 1024 })).toThrow(/power of two/);
    expect(() => chunkBoundaries(data, { minSize: 0, avgSize: 256, maxSize: 1024 })).toThrow(/positive integer/);
    expect(() => chunkBoundaries(data, { minSize: 1.5, avgSize: 256, maxSize: 1024 })).toThrow(/positive integer/);
    expect(() => chunkBoundaries(data, { minSize: 1, avgSize: 4, maxSize: 16 })).toThrow(/avgSize must be between/);
  });
});

describe('content-defined boundaries', () => {
  it.each([
    ['default', DEFAULT_CHUNKER, 8 * MiB, 0.7],
    ['small', SMALL, 1 * MiB, 0.97],
  ] as const)('survive a 17-byte insertion at the front (%s params)', (_name, params, len, minShared) => {
    const original = prng(len, 1234);
    const shifted = Buffer.concat([prng(17, 99), original]);
    const a = new Set(chunksOf(original, chunkBoundaries(original, params)).map(sha));
    const b = chunksOf(shifted, chunkBoundaries(shifted, params)).map(sha);
    const shared = b.filter((h) => a.has(h)).length;
    expect(b.length).toBeGreaterThanOrEqual(len === 8 * MiB ? 5 : 100);
    expect(shared / b.length).toBeGreaterThanOrEqual(minShared);
  });

  it('re-synchronise after an edit in the middle', () => {
    const original = prng(1 * MiB, 77);
    const edited = Buffer.from(original);
    edited.fill(0xab, 500_000, 500_100);
    const a = new Set(chunksOf(original, chunkBoundaries(original, SMALL)).map(sha));
    const b = chunksOf(edited, chunkBoundaries(edited, SMALL)).map(sha);
    const changed = b.filter((h) => !a.has(h)).length;
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThanOrEqual(4);
  });
});

describe('chunkStream', () => {
  const odd = [1, 7, 4099, 65537, 333_333, 3, 1_048_577];

  it.each([
    ['4 KiB', [4096]],
    ['1 MiB', [MiB]],
    ['odd sizes', odd],
    ['one piece', [Number.MAX_SAFE_INTEGER]],
  ])('gives the same chunks as chunkBoundaries for %s pieces (default params)', async (_name, sizes) => {
    const data = prng(9 * MiB + 12345, 2024);
    const chunks = await collect(pieces(data, sizes));
    expect(endsOf(chunks)).toEqual(chunkBoundaries(data));
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  });

  it.each([
    ['1-byte', [1]],
    ['odd', [1, 2, 63, 64, 65, 1023, 1024, 1025, 3, 5000]],
    ['4 KiB', [4096]],
  ])('gives the same chunks as chunkBoundaries for %s pieces (small params)', async (_name, sizes) => {
    const data = prng(200_000, 31);
    const chunks = await collect(pieces(data, sizes), SMALL);
    expect(endsOf(chunks)).toEqual(chunkBoundaries(data, SMALL));
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  });

  it('matches for random piece sizes, many seeds', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const data = prng(20_000 + seed * 997, seed);
      const sizes = Array.from(prng(64, seed + 1000), (b) => 1 + b * 13);
      const chunks = await collect(pieces(data, sizes), SMALL);
      expect(endsOf(chunks)).toEqual(chunkBoundaries(data, SMALL));
    }
  });

  it('yields Buffers for Uint8Array input, and nothing for empty input', async () => {
    const data = new Uint8Array(prng(5000, 3));
    const chunks = await collect(pieces(data, [333]), SMALL);
    expect(chunks.every((c) => Buffer.isBuffer(c))).toBe(true);
    expect(Buffer.concat(chunks).equals(Buffer.from(data))).toBe(true);
    expect(await collect(pieces(new Uint8Array(0), [1]), SMALL)).toEqual([]);
    expect(
      await collect(
        (async function* () {
          yield new Uint8Array(0);
          yield new Uint8Array(0);
        })(),
        SMALL,
      ),
    ).toEqual([]);
  });

  it('streams: the first chunk comes out long before the source is drained', async () => {
    const data = prng(16 * MiB, 8);
    let consumed = 0;
    async function* counting(): AsyncGenerator<Buffer> {
      for (let o = 0; o < data.length; o += 64 * 1024) {
        consumed += 64 * 1024;
        yield data.subarray(o, o + 64 * 1024);
      }
    }
    for await (const chunk of chunkStream(counting())) {
      expect(chunk.length).toBeLessThanOrEqual(DEFAULT_CHUNKER.maxSize);
      // The chunker holds at most one chunk (<= maxSize) plus the current piece.
      expect(consumed).toBeLessThanOrEqual(DEFAULT_CHUNKER.maxSize + 64 * 1024);
      break;
    }
  });
});
