/**
 * Blob compression: zstd, or the raw bytes when zstd does not pay (Parquet, JPEG and gzip are
 * common in data lakes and do not shrink).
 *
 * Uses zstd-napi's low-level binding with one long-lived context each way: no per-call context
 * or parameter reset (the high-level one-shot `compress` resets parameters on every call), a
 * reused scratch output buffer, and decompression into a buffer of exactly the size the index
 * promises, so a corrupt or hostile frame header cannot make us allocate more than that.
 */
import type Binding from 'zstd-napi/binding.js';
import { IntegrityError } from '../errors.js';
import { requireCjs } from '../util/cjs.js';

/**
 * zstd-napi's addon, loaded on the first blob (de)compressed, not at start: commands that never
 * touch a blob (`policy show`, `runs`, `--help`) do not pay for loading it.
 */
let loaded: { binding: typeof Binding; minLevel: number; maxLevel: number } | undefined;
/** Loads the addon now (the single-file binary does at start: src/binary.ts says why). */
export function zstd(): { binding: typeof Binding; minLevel: number; maxLevel: number } {
  if (loaded === undefined) {
    const binding = requireCjs('zstd-napi/binding.js') as typeof Binding;
    loaded = { binding, minLevel: binding.minCLevel(), maxLevel: binding.maxCLevel() };
  }
  return loaded;
}

export interface Compressed {
  data: Buffer;
  compressed: boolean;
}

export const DEFAULT_COMPRESSION_LEVEL = 3;

/**
 * zstd output is kept only if it is below 97% of the input. Saving under 3% is not worth a
 * decompression pass on every restore, and it catches already-compressed data, for which zstd
 * adds a few bytes of framing instead.
 */
export const KEEP_RATIO = 0.97;

// Scratch output is kept for inputs up to the default max chunk (4 MiB); larger ones allocate.
const MAX_SCRATCH = compressBound(4 * 1024 * 1024);

/** ZSTD_COMPRESSBOUND from zstd.h, in JS to save a native call per blob. */
function compressBound(n: number): number {
  return n + (n >>> 8) + (n < 128 * 1024 ? (128 * 1024 - n) >>> 11 : 0);
}

let cctx: Binding.CCtx | undefined;
let dctx: Binding.DCtx | undefined;
let scratch: Buffer | undefined;

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Compress one blob. When the result is not worth keeping, returns the input itself (a Buffer
 * view of it, not a copy) with compressed=false. A compressed result is always a fresh Buffer.
 */
export function compressBlob(data: Uint8Array, level: number = DEFAULT_COMPRESSION_LEVEL): Compressed {
  const { binding, minLevel, maxLevel } = zstd();
  if (!Number.isInteger(level) || level < minLevel || level > maxLevel) {
    throw new RangeError(`zstd level must be an integer in [${minLevel}, ${maxLevel}], got ${level}`);
  }
  if (data.length === 0) return { data: asBuffer(data), compressed: false };
  const bound = compressBound(data.length);
  let dst: Buffer;
  if (bound <= MAX_SCRATCH) {
    if (!scratch || scratch.length < bound) scratch = Buffer.allocUnsafe(Math.max(bound, 64 * 1024));
    dst = scratch;
  } else {
    dst = Buffer.allocUnsafe(bound);
  }
  cctx ??= new binding.CCtx();
  const n = cctx.compress(dst, data, level);
  if (n >= data.length * KEEP_RATIO) return { data: asBuffer(data), compressed: false };
  return { data: Buffer.from(dst.subarray(0, n)), compressed: true };
}

/**
 * Inverse of `compressBlob`. `rawLength` comes from the index; a mismatch (or any zstd error)
 * means the stored blob is not what was written, hence IntegrityError. Raw blobs are returned
 * as a view of `data`.
 */
export function decompressBlob(data: Uint8Array, compressed: boolean, rawLength: number): Buffer {
  if (!Number.isSafeInteger(rawLength) || rawLength < 0) {
    throw new IntegrityError(`invalid blob length ${rawLength}`);
  }
  if (!compressed) {
    if (data.length !== rawLength) {
      throw new IntegrityError(`stored blob is ${data.length} bytes, expected ${rawLength}`);
    }
    return asBuffer(data);
  }
  // Sized by the caller's expectation, not the frame header: a bigger frame fails with
  // "destination buffer is too small" instead of allocating what the header claims.
  const out = Buffer.allocUnsafe(rawLength);
  let n: number;
  try {
    dctx ??= new (zstd().binding.DCtx)();
    n = dctx.decompress(out, data);
  } catch (err) {
    throw new IntegrityError(`zstd decompression failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (n !== rawLength) {
    throw new IntegrityError(`decompressed blob is ${n} bytes, expected ${rawLength}`);
  }
  return out;
}
