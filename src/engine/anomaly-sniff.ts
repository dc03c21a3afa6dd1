import { isUtf8 } from 'node:buffer';

/**
 * What an object's bytes say about it (docs/anomalies.md): does it have the format its extension
 * names, and did its new data stop compressing? Judged as the reader streams the object's
 * chunks (ContentSniffer: its first 4 KiB and last 8 bytes, no copy of anything larger, no extra
 * request) and from the compression the packer already did.
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

/** What the reader learned of one object's bytes, and what the packer made of its new blobs. */
export interface ContentSample {
  size: number;
  /** Whether its bytes have the format its extension names; undefined when the extension names none. */
  formatOk: boolean | undefined;
  /** Raw bytes of the blobs this object added to the repository (deduplicated blobs are not new data). */
  newRawBytes: number;
  /** Their stored (compressed, encrypted) size. */
  newStoredBytes: number;
}

/**
 * Judges an object's format as its chunks stream by. The head is judged on the first chunk
 * itself when it holds HEAD_BYTES (always, but for objects smaller than that, with lakeguard's
 * chunk sizes): nothing is copied. Only a head split over small chunks is gathered (at most
 * HEAD_BYTES), and only Parquet keeps its last TAIL_BYTES. An object of no known format costs a
 * counter per chunk.
 */
export class ContentSniffer {
  private size = 0;
  /** The head's verdict, once judged. */
  private headOk: boolean | undefined;
  /** The first bytes while the head spans chunks smaller than HEAD_BYTES. */
  private gathered: Buffer | null = null;
  private readonly tail: Buffer | null;
  private tailLength = 0;
  newRawBytes = 0;
  newStoredBytes = 0;

  constructor(private readonly format: KnownFormat | undefined) {
    this.tail = format === 'parquet' ? Buffer.allocUnsafe(TAIL_BYTES) : null;
  }

  update(chunk: Uint8Array): void {
    const first = this.size === 0;
    this.size += chunk.length;
    if (this.format === undefined) return;
    if (this.headOk === undefined) {
      // Text is checked on its first HEAD_BYTES only; a magic number on the chunk itself (no view to make).
      if (first && chunk.length >= HEAD_BYTES) this.headOk = headHasFormat(this.format, this.format === 'text' ? chunk.subarray(0, HEAD_BYTES) : chunk, true);
      else this.gather(chunk);
    }
    if (this.tail !== null) this.keepTail(chunk);
  }

  private gather(chunk: Uint8Array): void {
    const had = this.gathered?.length ?? 0;
    const take = chunk.subarray(0, HEAD_BYTES - had);
    this.gathered = this.gathered === null ? Buffer.from(take) : Buffer.concat([this.gathered, take]);
    if (this.gathered.length >= HEAD_BYTES) {
      this.headOk = headHasFormat(this.format!, this.gathered, true);
      this.gathered = null;
    }
  }

  private keepTail(chunk: Uint8Array): void {
    const tail = this.tail!;
    if (chunk.length >= TAIL_BYTES) {
      for (let i = 0, from = chunk.length - TAIL_BYTES; i < TAIL_BYTES; i++) tail[i] = chunk[from + i]!;
      this.tailLength = TAIL_BYTES;
      return;
    }
    // A short chunk: shift what is kept left and append it.
    const keep = Math.min(this.tailLength, TAIL_BYTES - chunk.length);
    tail.copyWithin(0, this.tailLength - keep, this.tailLength);
    tail.set(chunk, keep);
    this.tailLength = keep + chunk.length;
  }

  /** Counts one new blob of the object: its raw and stored sizes. */
  addBlob(rawLength: number, storedLength: number): void {
    this.newRawBytes += rawLength;
    this.newStoredBytes += storedLength;
  }

  sample(): ContentSample {
    return { size: this.size, formatOk: this.verdict(), newRawBytes: this.newRawBytes, newStoredBytes: this.newStoredBytes };
  }

  /** An empty object is not judged (true): a placeholder is not a broken file. */
  private verdict(): boolean | undefined {
    if (this.format === undefined) return undefined;
    if (this.size === 0) return true;
    // The whole object was smaller than HEAD_BYTES: its head is all of it.
    const headOk = this.headOk ?? headHasFormat(this.format, this.gathered ?? Buffer.alloc(0), false);
    if (!headOk || this.format !== 'parquet') return headOk;
    // Parquet: magic, footer, footer length, magic; the smallest file is 12 bytes.
    const tail = this.tail!;
    return this.size >= 12 && this.tailLength === TAIL_BYTES && tail[4] === PAR1[0] && tail[5] === PAR1[1] && tail[6] === PAR1[2] && tail[7] === PAR1[3];
  }
}

function startsWith(head: Uint8Array, magic: Buffer): boolean {
  if (head.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (head[i] !== magic[i]) return false;
  return true;
}

/**
 * Whether the first bytes of an object have `format`'s signature (only the first few bytes are
 * looked at, but for text: give it at most HEAD_BYTES). Text must be valid UTF-8 without NUL;
 * `truncated`: the object goes on, so a character cut at the end is fine.
 */
export function headHasFormat(format: KnownFormat, head: Uint8Array, truncated: boolean): boolean {
  switch (format) {
    case 'parquet':
      return startsWith(head, PAR1);
    case 'orc':
      return startsWith(head, ORC);
    case 'avro':
      return startsWith(head, AVRO);
    case 'gzip':
      return startsWith(head, GZIP);
    case 'zstd':
      return startsWith(head, ZSTD);
    case 'text':
      return isText(head, truncated);
  }
}

/** Valid UTF-8 without NUL; `truncated`: the sample ends inside the object, so a cut character is fine. */
export function isText(head: Uint8Array, truncated: boolean): boolean {
  if (head.includes(0)) return false;
  return isUtf8(truncated ? head.subarray(0, head.length - cutCharacterBytes(head)) : head);
}

/** How many bytes at the end of `bytes` are the start of a UTF-8 character cut off (0 to 3). */
function cutCharacterBytes(bytes: Uint8Array): number {
  // Walk back over up to 3 continuation bytes to the lead byte of the last character.
  for (let back = 1; back <= Math.min(4, bytes.length); back++) {
    const b = bytes[bytes.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
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
