/**
 * Compact encodings of version columns (schema 3). Every write and every read of these columns
 * goes through this module, so a value reads back as exactly the string that was written.
 *
 * - etag: an MD5 ETag (32 lowercase hex digits, optionally `-N` for a multipart upload) is stored
 *   as a BLOB of its 16 bytes, followed by the ASCII `-N`; anything else stays TEXT (SQLite keeps
 *   a BLOB as it is in a TEXT column). Decoded in SQL (`etagSql`): results stay TEXT, which
 *   better-sqlite3 hands over several times faster than BLOBs (a Buffer each).
 * - storage_class: a known S3 class is stored as a small integer (STANDARD = 1, which SQLite
 *   stores in no bytes at all); any other name stays TEXT.
 * - last_modified: NULL when equal to valid_from (the usual case: a version is valid from its
 *   own time), read back with `lastModifiedSql`.
 */

const MD5_ETAG = /^([0-9a-f]{32})(-[0-9]+)?$/;

export function encodeEtag(etag: string): string | Buffer {
  const m = MD5_ETAG.exec(etag);
  if (m === null) return etag;
  const digest = Buffer.from(m[1]!, 'hex');
  return m[2] === undefined ? digest : Buffer.concat([digest, Buffer.from(m[2], 'latin1')]);
}

/** SQL for the etag, as written, of a stored etag value (`v.etag`). */
export function etagSql(stored: string): string {
  return `CASE WHEN typeof(${stored}) = 'blob' THEN lower(hex(substr(${stored}, 1, 16))) || CAST(substr(${stored}, 17) AS TEXT) ELSE ${stored} END`;
}

/** Append only: a stored code must keep meaning the same class. */
const STORAGE_CLASSES = [
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'DEEP_ARCHIVE',
  'OUTPOSTS',
  'GLACIER_IR',
  'SNOW',
  'EXPRESS_ONEZONE',
] as const;
const STORAGE_CLASS_CODES = new Map<string, bigint>(STORAGE_CLASSES.map((name, i) => [name, BigInt(i + 1)]));

/** A bigint for a code: a JS number would be bound as a REAL (8 bytes) in the untyped column. */
export function encodeStorageClass(name: string | undefined): string | bigint | null {
  if (name === undefined) return null;
  return STORAGE_CLASS_CODES.get(name) ?? name;
}

export function decodeStorageClass(stored: unknown): string | null {
  if (stored === null || stored === undefined) return null;
  if (typeof stored === 'number' || typeof stored === 'bigint') {
    const name = STORAGE_CLASSES[Number(stored) - 1];
    if (name === undefined) throw new Error(`catalog: unknown storage class code ${stored}`);
    return name;
  }
  return stored as string;
}

export function encodeLastModified(lastModified: number, validFrom: number): number | null {
  return lastModified === validFrom ? null : lastModified;
}

/** SQL for the last-modified time of version row `v`. */
export function lastModifiedSql(v: string): string {
  return `coalesce(${v}.last_modified, ${v}.valid_from)`;
}
