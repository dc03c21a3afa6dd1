import { IntegrityError } from '../errors.js';
import { objectKey } from './layout.js';

/**
 * Pack layout (docs/repository-format.md):
 *   blob 1 | blob 2 | ... | blob n | header (sealed when encrypted) | u32le header length
 * The plaintext header is `u32le count` followed by one 41-byte entry per blob, in pack order:
 *   32-byte blob id | u8 flags (bit 0: zstd-compressed, bits 1-2: blob type) | u32le stored length | u32le raw length
 * Offsets are implicit: each blob starts where the previous one ended.
 */

export const BlobType = { data: 0, records: 1 } as const;
export type BlobType = (typeof BlobType)[keyof typeof BlobType];

export interface PackEntry {
  id: Buffer;
  type: BlobType;
  compressed: boolean;
  offset: number;
  length: number;
  rawLength: number;
}

const ENTRY_SIZE = 41;

/**
 * The flags byte of a blob: bit 0 compressed, bits 1-2 its type. Pack headers store it, and the
 * catalog keeps it as it is (`blobs.flags`).
 */
export function blobFlags(compressed: boolean, type: BlobType): number {
  return (compressed ? 1 : 0) | (type << 1);
}

export function flagsCompressed(flags: number): boolean {
  return (flags & 1) === 1;
}

export function flagsType(flags: number): BlobType {
  return ((flags >> 1) & 3) as BlobType;
}

/** The object key of a pack (layout.ts). */
export function packKey(packId: string): string {
  return objectKey('packs', packId);
}

export function encodePackHeader(entries: readonly PackEntry[]): Buffer {
  const out = Buffer.alloc(4 + entries.length * ENTRY_SIZE);
  out.writeUInt32LE(entries.length, 0);
  let pos = 4;
  for (const e of entries) {
    e.id.copy(out, pos);
    out.writeUInt8(blobFlags(e.compressed, e.type), pos + 32);
    out.writeUInt32LE(e.length, pos + 33);
    out.writeUInt32LE(e.rawLength, pos + 37);
    pos += ENTRY_SIZE;
  }
  return out;
}

export function decodePackHeader(header: Buffer, packId: string): PackEntry[] {
  if (header.length < 4) throw new IntegrityError(`pack ${packId}: header too short`);
  const count = header.readUInt32LE(0);
  if (header.length !== 4 + count * ENTRY_SIZE) throw new IntegrityError(`pack ${packId}: header length does not match its entry count`);
  const entries: PackEntry[] = [];
  let offset = 0;
  for (let i = 0, pos = 4; i < count; i++, pos += ENTRY_SIZE) {
    const flags = header.readUInt8(pos + 32);
    const length = header.readUInt32LE(pos + 33);
    entries.push({
      id: Buffer.from(header.subarray(pos, pos + 32)),
      compressed: flagsCompressed(flags),
      type: flagsType(flags),
      offset,
      length,
      rawLength: header.readUInt32LE(pos + 37),
    });
    offset += length;
  }
  return entries;
}

/** Splits a whole pack into its blob area and its (still sealed) header. */
export function splitPack(pack: Buffer, packId: string): { blobArea: Buffer; header: Buffer } {
  if (pack.length < 4) throw new IntegrityError(`pack ${packId}: truncated (${pack.length} bytes)`);
  const headerLength = pack.readUInt32LE(pack.length - 4);
  const headerStart = pack.length - 4 - headerLength;
  if (headerStart < 0) throw new IntegrityError(`pack ${packId}: truncated or corrupt header length`);
  return { blobArea: pack.subarray(0, headerStart), header: pack.subarray(headerStart, pack.length - 4) };
}
