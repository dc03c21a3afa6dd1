/**
 * FastCDC content-defined chunking (Xia et al., "The Design of Fast Content-Defined Chunking
 * for Data Deduplication Based Storage Systems", IEEE TPDS 2020), normalized chunking level 2.
 *
 * Exact definition, so that another implementation can reproduce the boundaries:
 *
 * - GEAR: 256 32-bit values. GEAR[i] is the high 32 bits of the (i+1)-th output of splitmix64
 *   seeded with 0x6c616b6567756172 (ASCII "lakeguar"), see `gearTable`.
 * - Hash: 32-bit Gear hash, fp = (fp << 1) + GEAR[byte] (mod 2^32), restarted at 0 for every
 *   chunk. bits = log2(avgSize); maskS = the top (bits + 2) bits of a 32-bit word, maskL = the
 *   top (bits - 2) bits. Top bits because bit k of fp depends on the last k+1 bytes only, so
 *   they give the widest (32-byte) window.
 * - From a chunk start, let n = bytes remaining. If n <= minSize the chunk is the rest.
 *   Otherwise the first minSize bytes are skipped (not hashed); then for i = minSize,
 *   minSize+1, ... up to min(n, maxSize) - 1: fold byte i into fp and cut after it (chunk
 *   length i + 1) if (fp & mask) == 0, where mask = maskS while i < avgSize and maskL after.
 *   With no cut the chunk length is min(n, maxSize).
 *
 * The stricter mask before avgSize and the looser one after it concentrate chunk sizes around
 * the average (the "normalized" part of FastCDC), which improves dedup over a single mask.
 */

export interface ChunkerParams {
  minSize: number;
  avgSize: number;
  maxSize: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export const DEFAULT_CHUNKER: ChunkerParams = Object.freeze({
  minSize: 256 * KiB,
  avgSize: 1 * MiB,
  maxSize: 4 * MiB,
});

/** Normalization level: the masks have log2(avg) ± NORMALIZATION bits. */
const NORMALIZATION = 2;

/** Seed of the GEAR table: ASCII "lakeguar". Changing it changes every chunk boundary. */
export const GEAR_SEED = 0x6c616b6567756172n;

/** The GEAR table as unsigned 32-bit values: high halves of splitmix64(GEAR_SEED) outputs. */
export function gearTable(seed: bigint = GEAR_SEED): Uint32Array {
  const M64 = (1n << 64n) - 1n;
  const out = new Uint32Array(256);
  let state = seed & M64;
  for (let i = 0; i < 256; i++) {
    state = (state + 0x9e3779b97f4a7c15n) & M64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    z ^= z >> 31n;
    out[i] = Number(z >> 32n);
  }
  return out;
}

// Int32 view of the same bits so the hot loop stays in V8's int32 representation.
const GEAR = new Int32Array(gearTable().buffer);

interface Prepared {
  min: number;
  avg: number;
  max: number;
  maskS: number;
  maskL: number;
}

function topBits(n: number): number {
  return n === 0 ? 0 : (-1 << (32 - n)) | 0;
}

const preparedCache = new WeakMap<ChunkerParams, Prepared>();

function prepare(params: ChunkerParams): Prepared {
  const cached = preparedCache.get(params);
  // Compare values too: a caller may have mutated its params object since.
  if (cached && cached.min === params.minSize && cached.avg === params.avgSize && cached.max === params.maxSize) return cached;
  const { minSize: min, avgSize: avg, maxSize: max } = params;
  for (const [name, v] of [
    ['minSize', min],
    ['avgSize', avg],
    ['maxSize', max],
  ] as const) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`chunker ${name} must be a positive integer, got ${v}`);
  }
  if (!(min < avg && avg < max)) {
    throw new RangeError(`chunker sizes must satisfy minSize < avgSize < maxSize, got ${min}/${avg}/${max}`);
  }
  const bits = Math.log2(avg);
  if (!Number.isInteger(bits)) throw new RangeError(`chunker avgSize must be a power of two, got ${avg}`);
  // maskL needs at least one bit; maskS at most 31 so a cut remains possible.
  if (bits - NORMALIZATION < 1 || bits + NORMALIZATION > 31) {
    throw new RangeError(`chunker avgSize must be between 2^${1 + NORMALIZATION} and 2^${31 - NORMALIZATION}, got ${avg}`);
  }
  const p: Prepared = { min, avg, max, maskS: topBits(bits + NORMALIZATION), maskL: topBits(bits - NORMALIZATION) };
  preparedCache.set(params, p);
  return p;
}

/** Rolling hash after the last `scan` call; a module variable avoids allocating a result object. */
let scanFp = 0;

/**
 * Scan data[start, end) where data[start] is byte number `pos` (>= min) of the current chunk and
 * `end - start <= max - pos`. Returns the index just past the cut, or -1 with the hash in `scanFp`.
 */
function scan(data: Uint8Array, start: number, end: number, pos: number, fp: number, p: Prepared): number {
  let i = start;
  const maskS = p.maskS;
  const maskL = p.maskL;
  const normalEnd = pos < p.avg ? Math.min(end, start + (p.avg - pos)) : start;
  for (; i < normalEnd; i++) {
    fp = ((fp << 1) + GEAR[data[i]!]!) | 0;
    if ((fp & maskS) === 0) {
      scanFp = fp;
      return i + 1;
    }
  }
  for (; i < end; i++) {
    fp = ((fp << 1) + GEAR[data[i]!]!) | 0;
    if ((fp & maskL) === 0) {
      scanFp = fp;
      return i + 1;
    }
  }
  scanFp = fp;
  return -1;
}

/** Cut points (chunk end offsets, ascending, last = data.length) for a whole buffer. Empty input: []. */
export function chunkBoundaries(data: Uint8Array, params: ChunkerParams = DEFAULT_CHUNKER): number[] {
  const p = prepare(params);
  const out: number[] = [];
  const n = data.length;
  let start = 0;
  while (start < n) {
    const remaining = n - start;
    if (remaining <= p.min) {
      out.push(n);
      break;
    }
    const end = start + Math.min(remaining, p.max);
    const cut = scan(data, start + p.min, end, p.min, 0, p);
    start = cut < 0 ? end : cut;
    out.push(start);
  }
  return out;
}

/**
 * A whole object's chunks as views into `data` (no copies): the same chunks `chunkStream` yields
 * for it, for a reader that has the object's bytes in one buffer.
 */
export function chunkViews(data: Buffer, params: ChunkerParams = DEFAULT_CHUNKER): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (const end of chunkBoundaries(data, params)) {
    out.push(data.subarray(start, end));
    start = end;
  }
  return out;
}

function join(parts: Uint8Array[], total: number): Buffer {
  if (parts.length === 1) {
    const only = parts[0]!;
    return Buffer.from(only.buffer, only.byteOffset, only.byteLength);
  }
  const out = Buffer.allocUnsafe(total);
  let o = 0;
  for (const part of parts) {
    out.set(part, o);
    o += part.length;
  }
  return out;
}

/**
 * Split a stream of buffers into content-defined chunks, with the same boundaries as
 * `chunkBoundaries` on the concatenation, however the input is split into pieces.
 *
 * Yielded chunks are fresh copies when they span several input pieces and views into the input
 * piece otherwise, so the source must not reuse a buffer after yielding it (Node streams never
 * do). Memory: the current chunk (at most maxSize) plus the input piece being consumed.
 */
export async function* chunkStream(
  source: AsyncIterable<Buffer | Uint8Array>,
  params: ChunkerParams = DEFAULT_CHUNKER,
): AsyncGenerator<Buffer> {
  const p = prepare(params);
  let parts: Uint8Array[] = [];
  let len = 0; // bytes of the current chunk seen so far
  let fp = 0;
  for await (const input of source) {
    const piece: Uint8Array = input;
    const n = piece.length;
    let o = 0;
    while (o < n) {
      if (len < p.min) {
        const take = Math.min(p.min - len, n - o);
        parts.push(piece.subarray(o, o + take));
        len += take;
        o += take;
        continue;
      }
      const end = o + Math.min(n - o, p.max - len);
      const cut = scan(piece, o, end, len, fp, p);
      const stop = cut < 0 ? end : cut;
      parts.push(piece.subarray(o, stop));
      len += stop - o;
      o = stop;
      if (cut >= 0 || len === p.max) {
        yield join(parts, len);
        parts = [];
        len = 0;
        fp = 0;
      } else {
        fp = scanFp;
      }
    }
  }
  if (len > 0) yield join(parts, len);
}
