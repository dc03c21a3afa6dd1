/**
 * What an object's bytes say about it (docs/anomalies.md): does it have the format its extension
 * names, and did its new data stop compressing? Pure functions over a sample that the reader
 * takes as the object's chunks stream by (ContentSniffer: its first 4 KiB and last 8 bytes, no
 * copy of anything larger, no extra request) and over the compression the packer already did.
 */

/** Bytes from the start of an object kept for format checks. */
export const HEAD_BYTES = 4096;
/** Bytes from the end of an object kept (Parquet ends with its magic after the footer length). */
export const TAIL_BYTES = 8;
/** New data of fewer bytes is not judged for compressibility: too small to say. */
export const MIN_COMPRESSIBILITY_BYTES = 4096;
/** New data stored at this share of its raw size or more did not compress (the packer keeps raw blobs from 97 %). */
export const INCOMPRESSIBLE_RATIO = 0.97;
/** An earlier version stored at this share of its raw size or less compressed well. */
export const COMPRESSED_WELL_RATIO = 0.9;

/** The formats lakeguard knows by extension, and what their bytes must look like. */
export type KnownFormat = 'parquet' | 'orc' | 'avro' | 'gzip' | 'zstd' | 'text';

/** Extension (lower case, without the dot) → format. The last extension decides: `.csv.gz` is gzip. */
const FORMAT_BY_EXTENSION: ReadonlyMap<string, KnownFormat> = new Map([
  ['parquet', 'parquet'],
  ['orc', 'orc'],
  ['avro', 'avro'],
  ['gz', 'gzip'],
  ['gzip', 'gzip'],
  ['zst', 'zstd'],
  ['zstd', 'zstd'],
  ['json', 'text'],
  ['jsonl', 'text'],
  ['ndjson', 'text'],
  ['csv', 'text'],
  ['tsv', 'text'],
  ['txt', 'text'],
]);

/** Extensions of data formats: a key that gains one of these is a conversion, not an extension swap. */
export const DATA_EXTENSIONS: ReadonlySet<string> = new Set([...FORMAT_BY_EXTENSION.keys(), 'bz2', 'xz', 'lz4', 'snappy', 'zip', 'tar', 'crc', 'tmp', 'bak']);

const PAR1 = Buffer.from('PAR1');
const ORC = Buffer.from('ORC');
const AVRO = Buffer.from('Obj\x01', 'latin1');
const GZIP = Buffer.from([0x1f, 0x8b]);
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** The last extension of a key's base name, lower case, without the dot ('' when none). */
export function extensionOf(key: string): string {
  const base = key.slice(key.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot <= 0 ? '' : base.slice(dot + 1).toLowerCase();
}

/** The format a key's extension names, or undefined for extensions lakeguard does not know. */
export function formatOf(key: string): KnownFormat | undefined {
  return FORMAT_BY_EXTENSION.get(extensionOf(key));
}

/** What the reader kept of one object's bytes, and what the packer made of its new blobs. */
export interface ContentSample {
  /** The first min(size, HEAD_BYTES) bytes. */
  head: Buffer;
  /** The last min(size, TAIL_BYTES) bytes. */
  tail: Buffer;
  size: number;
  /** Raw bytes of the blobs this object added to the repository (deduplicated blobs are not new data). */
  newRawBytes: number;
  /** Their stored (compressed, encrypted) size. */
  newStoredBytes: number;
}

/**
 * Keeps the head and tail of an object as its chunks stream by: at most HEAD_BYTES +
 * TAIL_BYTES bytes are copied per object, whatever its size.
 */
export class ContentSniffer {
  private readonly head = Buffer.allocUnsafe(HEAD_BYTES);
  private headLength = 0;
  private readonly tail = Buffer.alloc(TAIL_BYTES);
  private tailLength = 0;
  private size = 0;
  newRawBytes = 0;
  newStoredBytes = 0;

  update(chunk: Uint8Array): void {
    this.size += chunk.length;
    if (this.headLength < HEAD_BYTES) {
      const n = Math.min(HEAD_BYTES - this.headLength, chunk.length);
      this.head.set(chunk.subarray(0, n), this.headLength);
      this.headLength += n;
    }
    if (chunk.length >= TAIL_BYTES) {
      this.tail.set(chunk.subarray(chunk.length - TAIL_BYTES));
      this.tailLength = TAIL_BYTES;
    } else {
      // A short last chunk: shift what is kept left and append it.
      const keep = Math.min(this.tailLength, TAIL_BYTES - chunk.length);
      this.tail.copyWithin(0, this.tailLength - keep, this.tailLength);
      this.tail.set(chunk, keep);
      this.tailLength = keep + chunk.length;
    }
  }

  /** Counts one new blob of the object: its raw and stored sizes. */
  addBlob(rawLength: number, storedLength: number): void {
    this.newRawBytes += rawLength;
    this.newStoredBytes += storedLength;
  }

  sample(): ContentSample {
    return {
      head: this.head.subarray(0, this.headLength),
      tail: this.tail.subarray(0, this.tailLength),
      size: this.size,
      newRawBytes: this.newRawBytes,
      newStoredBytes: this.newStoredBytes,
    };
  }
}

function startsWith(buf: Buffer, magic: Buffer): boolean {
  return buf.length >= magic.length && buf.subarray(0, magic.length).equals(magic);
}

/**
 * Whether the sampled bytes have `format`. An empty object is not judged (true): a placeholder
 * is not a broken file. Text must be valid UTF-8 without NUL in the head sample; a multi-byte
 * character cut by the sample's end is fine.
 */
export function hasFormat(format: KnownFormat, s: ContentSample): boolean {
  if (s.size === 0) return true;
  switch (format) {
    case 'parquet':
      // Magic at both ends; the smallest Parquet file is magic + footer length + magic.
      return s.size >= 12 && startsWith(s.head, PAR1) && s.tail.subarray(s.tail.length - 4).equals(PAR1);
    case 'orc':
      return startsWith(s.head, ORC);
    case 'avro':
      return startsWith(s.head, AVRO);
    case 'gzip':
      return startsWith(s.head, GZIP);
    case 'zstd':
      return startsWith(s.head, ZSTD);
    case 'text':
      return isText(s.head, s.size > s.head.length);
  }
}

/** Valid UTF-8 without NUL; `truncated`: the sample ends inside the object, so a cut character is fine. */
export function isText(head: Buffer, truncated: boolean): boolean {
  if (head.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: truncated });
    return true;
  } catch {
    return false;
  }
}

/** Stored size over raw size, or undefined when there is too little new data to judge. */
function storedRatio(s: ContentSample): number | undefined {
  return s.newRawBytes < MIN_COMPRESSIBILITY_BYTES ? undefined : s.newStoredBytes / s.newRawBytes;
}

/**
 * Whether an object's new data stopped compressing: stored at INCOMPRESSIBLE_RATIO of its raw
 * size or more, for at least MIN_COMPRESSIBILITY_BYTES, where it is expected to compress: its
 * earlier version compressed well (`previousRatio`), or its format is text. Already compressed
 * formats (Parquet with Snappy, gzip, ...) whose history is unknown are not judged.
 */
export function isIncompressible(key: string, s: ContentSample, previousRatio: number | undefined): boolean {
  const ratio = storedRatio(s);
  if (ratio === undefined || ratio < INCOMPRESSIBLE_RATIO) return false;
  return (previousRatio !== undefined && previousRatio <= COMPRESSED_WELL_RATIO) || formatOf(key) === 'text';
}

/** Whether judging an object needs its earlier version's compression (a catalog query): only when its new data did not compress. */
export function needsPreviousRatio(s: ContentSample): boolean {
  const ratio = storedRatio(s);
  return ratio !== undefined && ratio >= INCOMPRESSIBLE_RATIO;
}
