/**
 * Encoding a blob for a pack (compress, then seal with its id as associated data), and a whole
 * object's blobs (chunk, blob ids, encode), without a Repository: the main thread
 * (Repository.encodeBlob) and the encode threads (encode-worker.ts) run this same code, so what
 * is stored does not depend on which thread encoded it.
 */
import { chunkViews, type ChunkerParams } from './chunker.js';
import { compressBlob } from './compress.js';
import { blobIdBytes, seal } from './crypto.js';

/** What encoding needs of a repository: its keys (null: unencrypted), zstd level and chunker. */
export interface EncodeSettings {
  encKey: Uint8Array | null;
  macKey: Uint8Array | null;
  level: number;
  chunker: ChunkerParams;
}

/** The stored form of one blob whose id is `id`. */
export function encodeRaw(raw: Uint8Array, id: Uint8Array, encKey: Buffer | null, level: number): { stored: Buffer; compressed: boolean } {
  const { data, compressed } = compressBlob(raw, level);
  return { stored: encKey === null ? data : seal(encKey, data, id), compressed };
}

/** One chunk of an object: its id and stored form. */
export interface ObjectBlob {
  id: Buffer;
  stored: Buffer;
  compressed: boolean;
  rawLength: number;
}

/** Every chunk of a whole object, in order, each with its id and encoded. */
export function encodeObjectBlobs(bytes: Buffer, keys: { encKey: Buffer | null; macKey: Buffer | null }, settings: Pick<EncodeSettings, 'level' | 'chunker'>): ObjectBlob[] {
  return chunkViews(bytes, settings.chunker).map((raw) => {
    const id = blobIdBytes(keys.macKey, raw);
    return { id, ...encodeRaw(raw, id, keys.encKey, settings.level), rawLength: raw.length };
  });
}
