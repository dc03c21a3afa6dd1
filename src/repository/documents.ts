/**
 * Sealed documents (index/, runs/, forgets/, acks/, runsets/, drills/, checkpoints/): their frame, their seal and how each is bound to
 * its own name, in format version 2 and, read-only, in version 1 (docs/repository-format.md).
 *
 * Version 2 seals a document with its key name as associated data, so a document copied under
 * another name, or into another directory, fails authentication. Version 1 sealed it with one
 * fixed string per directory; its documents stay readable because each names itself in another
 * way (an index file by the SHA-256 of its bytes, a manifest or forget document by the `id`
 * inside), which the reader checks.
 */
import { randomBytes } from 'node:crypto';
import { compressBlob, decompressBlob } from './compress.js';
import { sha256Hex } from './config.js';
import { open as openSealed, seal } from './crypto.js';

/** Directories of sealed documents. */
export type DocumentDir = 'index' | 'runs' | 'forgets' | 'acks' | 'runsets' | 'drills' | 'checkpoints';

const V1_AAD: Record<DocumentDir, Buffer> = {
  index: Buffer.from('lakeguard index v1'),
  runs: Buffer.from('lakeguard run manifest v1'),
  forgets: Buffer.from('lakeguard forget v1'),
  // A version 1 repository (not migrated) gets acks/ documents in its own form: each names itself by its `id`.
  acks: Buffer.from('lakeguard ack v1'),
  // Likewise a run-set plan (only a test-built version 1 repository is written to): it names itself by its `name`.
  runsets: Buffer.from('lakeguard run set v1'),
  // Restore drills came after version 2; a version 1 repository gets them in its own form, named by their `id`.
  drills: Buffer.from('lakeguard drill v1'),
  // Checkpoints came after version 2 too; a version 1 repository's name themselves by `name`.
  checkpoints: Buffer.from('lakeguard checkpoint v1'),
};

/** Version 2 associated data: the object's key name relative to the repository root. */
export function documentAad(dir: DocumentDir, name: string): Buffer {
  return Buffer.from(`lakeguard v2 ${dir}/${name}`, 'utf8');
}

/**
 * A version 2 index file name: `<UTC time YYYYMMDDTHHMMSSZ>-<16 random hex>`. Time-ordered, so a
 * reader can list new ones after a marker; random, so nobody can take a name before the writer.
 * (A content hash cannot name a document whose seal covers its name.)
 */
export function newIndexName(at: Date = new Date()): string {
  return `${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(8).toString('hex')}`;
}

/**
 * An ack document name: `<UTC time YYYYMMDDTHHMMSSZ>-<6 random hex>`, like a run id, so catalog
 * sync lists new ones after its time marker.
 */
export function newAckName(at: Date = new Date()): string {
  return newIndexName(at).slice(0, 17) + randomBytes(3).toString('hex');
}

/** A drill document name: an ack's form (time-ordered, so catalog sync lists new ones after its marker). */
export const newDrillName = newAckName;

/** An index file name of either version: 64 hex (version 1: SHA-256 of the bytes) or newIndexName's form (version 2). */
export function isIndexName(name: string): boolean {
  return /^[0-9a-f]{64}$/.test(name) || /^\d{8}T\d{6}Z-[0-9a-f]{16}$/.test(name);
}

/** `u8 compressed || u32 raw length || body`, the body zstd-compressed when that pays. */
export function frameDocument(json: Buffer, level: number): Buffer {
  const { data, compressed } = compressBlob(json, level);
  const head = Buffer.alloc(5);
  head.writeUInt8(compressed ? 1 : 0, 0);
  head.writeUInt32LE(json.length, 1);
  return Buffer.concat([head, data]);
}

/** The JSON a frame holds. Throws on a malformed frame or JSON. */
export function unframeDocument(framed: Buffer): unknown {
  const json = decompressBlob(framed.subarray(5), framed.readUInt8(0) === 1, framed.readUInt32LE(1));
  return JSON.parse(json.toString('utf8'));
}

/**
 * Version 2 stored bytes of `dir/name`: sealed with the name as associated data, or, unencrypted,
 * the frame followed by SHA-256(aad || 0x00 || frame), which detects corruption and misplacement
 * (without a key nothing can be authenticated).
 */
export function sealDocument(encKey: Buffer | null, dir: DocumentDir, name: string, framed: Buffer): Buffer {
  const aad = documentAad(dir, name);
  if (encKey !== null) return seal(encKey, framed, aad);
  return Buffer.concat([framed, digest([aad, Buffer.alloc(1), framed])]);
}

/** Version 1 stored bytes (kept so tests can build a version 1 repository, and for the reader's spec). */
export function sealDocumentV1(encKey: Buffer | null, dir: DocumentDir, framed: Buffer): Buffer {
  if (encKey !== null) return seal(encKey, framed, V1_AAD[dir]);
  return Buffer.concat([framed, digest([framed])]);
}

/**
 * The frame of a stored document, and whether it is a version 1 document (whose name binding the
 * caller must still check with `v1NameProblem` once it is parsed). Throws when neither version's
 * seal or digest verifies.
 */
export function openDocument(encKey: Buffer | null, dir: DocumentDir, name: string, body: Buffer): { framed: Buffer; v1: boolean } {
  const aad = documentAad(dir, name);
  if (encKey !== null) {
    try {
      return { framed: openSealed(encKey, body, aad), v1: false };
    } catch {
      // Not a version 2 seal of this name; perhaps a version 1 document (checked below).
    }
    return { framed: openSealed(encKey, body, V1_AAD[dir]), v1: true };
  }
  if (body.length < 37) throw new Error(`${body.length} bytes is too short for a document`);
  const framed = body.subarray(0, body.length - 32);
  const trailer = body.subarray(body.length - 32);
  if (digest([aad, Buffer.alloc(1), framed]).equals(trailer)) return { framed, v1: false };
  if (digest([framed]).equals(trailer)) return { framed, v1: true };
  throw new Error('SHA-256 mismatch');
}

/** Why a version 1 document is not the one its name says, or null when it is. */
export function v1NameProblem(dir: DocumentDir, name: string, body: Buffer, doc: unknown): string | null {
  if (dir === 'index') return sha256Hex(body) === name ? null : 'content does not match its name';
  const d = (doc ?? {}) as { id?: unknown; part?: unknown; name?: unknown };
  const own = dir === 'runsets' || dir === 'checkpoints' ? d.name : dir === 'runs' || dir === 'acks' || dir === 'drills' ? d.id : Number.isInteger(d.part) ? `${String(d.id)}-${String(d.part).padStart(4, '0')}` : undefined;
  return own === name ? null : `it is the document of ${JSON.stringify(own ?? null)}, stored under another name`;
}

/** True when `body` verifies as an unencrypted document of either version (used to tell a swapped config). */
export function isUnencryptedDocument(dir: DocumentDir, name: string, body: Buffer): boolean {
  try {
    openDocument(null, dir, name, body);
    return true;
  } catch {
    return false;
  }
}

function digest(parts: Buffer[]): Buffer {
  return Buffer.from(sha256Hex(Buffer.concat(parts)), 'hex');
}
