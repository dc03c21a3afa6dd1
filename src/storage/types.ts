import type { Readable } from 'node:stream';
import type { StorageError } from '../errors.js';

/**
 * The one seam through which every layer touches bytes at rest: the protected source buckets
 * and the repository alike. A store is rooted at one place (a bucket plus an optional key
 * prefix, or a directory); keys are relative to that root and use '/' as separator.
 *
 * Contract (checked by test/storage/contract.ts for every implementation):
 * - `list` yields entries in ascending key order (per key: newest version first), lazily,
 *   page by page; it never buffers a whole listing.
 * - Errors are `StorageError`s with a normalized `code`; backend exceptions never escape.
 * - `put` is atomic: a reader sees the old object, or the whole new one, never a part.
 */
export interface ObjectStore {
  /** Human-readable location, e.g. `s3://bucket/prefix/` or `file:///dir/`; never contains secrets. */
  readonly location: string;
  /** Request counters, for run statistics and benchmarks. */
  readonly stats: RequestStats;
  /** What this store can do beyond bytes (a wrapper passes its inner store's on). */
  readonly capabilities: StoreCapabilities;
  /** Entries one list request returns at most (S3: 1,000, the default when absent). */
  readonly listPageSize?: number;

  list(prefix: string, opts?: ListOptions): AsyncIterable<ListItem>;
  get(key: string, opts?: GetOptions): Promise<GetResult>;
  /**
   * An object's whole body in one Buffer that owns its ArrayBuffer, or null when it is larger
   * than `maxBytes` (read it with `get`). Only where reading this way is cheaper than a stream
   * (FsStore: a few system calls per file instead of a stream's machinery); absent elsewhere.
   */
  getBytes?(key: string, maxBytes: number): Promise<{ bytes: Buffer; meta: ObjectMeta } | null>;
  head(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<ObjectMeta>;
  put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult>;
  delete(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<void>;
  /** Object tags ({} where `capabilities.tags` is false). */
  getTags(key: string, opts?: { versionId?: string }): Promise<Record<string, string>>;
  /** Whether the root bucket keeps versions: versioning enabled, or suspended with old versions (false where `capabilities.versions` is false). */
  versioningEnabled(opts?: { signal?: AbortSignal }): Promise<boolean>;

  // Object Lock (S3, and MemStore for tests): where `capabilities.objectLock` is false, no lock
  // is enabled, no version has a retention, and putRetention refuses.
  /** Whether the root bucket has Object Lock enabled (S3 GetObjectLockConfiguration). */
  objectLockEnabled(opts?: { signal?: AbortSignal }): Promise<boolean>;
  /** The retention of one object version (the current one without versionId); null when it has none. */
  getRetention(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<ObjectRetention | null>;
  /** Sets (extends) the retention of one object version. Shortening a COMPLIANCE retention is refused by S3. */
  putRetention(key: string, retention: ObjectRetention, opts?: { versionId?: string; signal?: AbortSignal }): Promise<void>;

  /**
   * Server-side copy of one version of `from.key` (this store's) onto `key`, as a new current
   * version: bytes, content type, user metadata and tags come with it, and no byte passes
   * through the client. Only where `capabilities.serverSideCopy`; other stores refuse.
   */
  copyVersion(key: string, from: CopySource, opts?: { signal?: AbortSignal }): Promise<PutResult>;

  /**
   * Asks for a temporary readable copy of an archived object (S3 RestoreObject, for GLACIER and
   * DEEP_ARCHIVE): 'started', 'in-progress' (asked before, not ready yet) or 'ready' (already
   * readable). Only S3 stores (and decorators of one) have it.
   */
  thaw?(key: string, opts: ThawOptions): Promise<ThawState>;

  /**
   * The error a `put` of `key` with a body of `size` bytes would fail with before writing
   * anything (a key the store cannot hold, a link or a file in its way), or null; creates and
   * changes nothing. What a dry run asks (FsStore); absent where any key can be written.
   */
  putRefusal?(key: string, size: number): Promise<StorageError | null>;
}

/** S3's retrieval tiers of an archived object: Expedited (minutes, GLACIER only), Standard (hours), Bulk (cheapest, slowest). */
export const THAW_TIERS = ['Standard', 'Bulk', 'Expedited'] as const;
export type ThawTier = (typeof THAW_TIERS)[number];
export type ThawState = 'started' | 'in-progress' | 'ready';
export interface ThawOptions {
  /** Days the thawed copy stays readable. */
  days: number;
  tier: ThawTier;
  signal?: AbortSignal;
}

/** The version a server-side copy reads. */
export interface CopySource {
  key: string;
  /** Undefined: the current version. */
  versionId?: string;
  /** Its size (from a listing): above the multipart copy threshold the copy goes in parts. */
  size: number;
}

/** The optional abilities of a store, stated rather than probed. */
export interface StoreCapabilities {
  /** Keeps object tags (S3, MemStore). */
  readonly tags: boolean;
  /** Can keep object versions, listed with `versions: true` (S3, MemStore). */
  readonly versions: boolean;
  /** Answers Object Lock calls: a bucket with Object Lock can lock versions (S3, MemStore). */
  readonly objectLock: boolean;
  /** Copies a version inside the store, server-side (S3 CopyObject / UploadPartCopy): `copyVersion`. */
  readonly serverSideCopy: boolean;
  /** The first write creates a missing root (a directory store; a bucket must exist first). */
  readonly createsRoot?: boolean;
  /**
   * Modification times are whatever the writer set (a directory: `cp -p`, `tar x`, `touch -d`,
   * a rename keeps one), not the time of the write as an S3 server records it: they do not date a
   * change on their own (backup-records.ts fileVersionStart).
   */
  readonly writerTimes?: boolean;
}

export type ObjectLockMode = 'GOVERNANCE' | 'COMPLIANCE';

/** An S3 Object Lock retention: the version cannot be deleted or overwritten before `retainUntil`. */
export interface ObjectRetention {
  mode: ObjectLockMode;
  retainUntil: Date;
}

export interface RequestStats {
  list: number;
  get: number;
  head: number;
  put: number;
  delete: number;
  /** Payload bytes received by get and sent by put. */
  bytesIn: number;
  bytesOut: number;
}

export function newRequestStats(): RequestStats {
  return { list: 0, get: 0, head: 0, put: 0, delete: 0, bytesIn: 0, bytesOut: 0 };
}

/** Requests made between two snapshots of a store's stats. */
export function statsDelta(before: RequestStats, after: RequestStats): RequestStats {
  return {
    list: after.list - before.list,
    get: after.get - before.get,
    head: after.head - before.head,
    put: after.put - before.put,
    delete: after.delete - before.delete,
    bytesIn: after.bytesIn - before.bytesIn,
    bytesOut: after.bytesOut - before.bytesOut,
  };
}

export interface ListOptions {
  /** Group keys by this delimiter after `prefix`: yields `prefix` items for sub-prefixes. */
  delimiter?: string;
  /** List every version and delete marker (ListObjectVersions) instead of current objects. */
  versions?: boolean;
  /** Start strictly after this key (relative to the store root). */
  startAfter?: string;
  signal?: AbortSignal;
  /**
   * Called, in key order among the listed items, for each entry in range that is not an object
   * and not listed: a symbolic link or special file in a directory store of user files.
   */
  onSkip?: (entry: SkippedEntry) => void;
}

/** An entry a listing passes over on purpose, and why (`code`: 'Symlink' or 'SpecialFile'). */
export interface SkippedEntry {
  key: string;
  code: string;
  message: string;
}

export interface ObjectEntry {
  kind: 'object';
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
  /** null for unversioned stores and for objects written before versioning was enabled ("null" in S3). */
  versionId: string | null;
  isLatest: boolean;
  isDeleteMarker: boolean;
  storageClass?: string;
}

export interface PrefixEntry {
  kind: 'prefix';
  /** The common prefix, including the trailing delimiter. */
  prefix: string;
}

export type ListItem = ObjectEntry | PrefixEntry;

export interface GetOptions {
  versionId?: string;
  /** Inclusive byte range [start, end]. */
  range?: { start: number; end: number };
  signal?: AbortSignal;
  /**
   * A body of at most this many bytes (by its Content-Length) is read whole before `get`
   * returns, into GetResult.bytes: the small objects of a lake then cost no stream each. A
   * store that cannot tell the length first (or a larger body) returns the stream only; a body
   * cut off or failing meanwhile fails `get` itself, as reading the stream would.
   */
  bufferUpTo?: number;
}

/** Metadata that lakeguard preserves across backup and restore. */
export interface ObjectMeta {
  size: number;
  etag: string;
  lastModified: Date;
  versionId: string | null;
  contentType?: string;
  contentEncoding?: string;
  cacheControl?: string;
  contentDisposition?: string;
  /** User metadata (x-amz-meta-*), keys lower-cased. */
  metadata: Record<string, string>;
  storageClass?: string;
  /** Number of object tags (S3's x-amz-tagging-count), so tags are fetched only when there are any. */
  tagCount?: number;
  /** Server-side encryption: 'AES256', 'aws:kms', 'aws:kms:dsse', or 'SSE-C'. Only plain and AES256 ETags are MD5s. */
  sse?: string;
  /** POSIX permission bits (incl. setuid/setgid/sticky) of a file in a directory store; absent for S3. */
  mode?: number;
}

export interface GetResult {
  body: Readable;
  meta: ObjectMeta;
  /** The whole body, when the store read it whole (GetOptions.bufferUpTo); `body` then streams these bytes. */
  bytes?: Buffer;
}

export interface PutOptions {
  /** Fail with PreconditionFailed if the key already exists (create-only). */
  ifNoneMatch?: boolean;
  contentType?: string;
  contentEncoding?: string;
  cacheControl?: string;
  contentDisposition?: string;
  metadata?: Record<string, string>;
  tags?: Record<string, string>;
  /** Server-side encryption with this KMS key id (S3 only). */
  sseKmsKeyId?: string;
  /** Object Lock retention of the new version (needs a bucket with Object Lock enabled). */
  objectLock?: ObjectRetention;
  /** S3 storage class of the new object (x-amz-storage-class); other stores ignore it. Unset: the bucket's default (STANDARD). */
  storageClass?: string;
  /** POSIX permission bits of the new file (directory stores only; S3 ignores it). */
  mode?: number;
  /** Modification time of the new file, ns since the epoch (directory stores only: S3 sets its own). */
  modifiedNs?: bigint;
  /** Size of a streamed body, when known (helps choose single PUT vs multipart). */
  size?: number;
  signal?: AbortSignal;
}

export interface PutResult {
  etag: string;
  versionId: string | null;
}

export async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Convenience: get a whole (small) object into memory. */
export async function getBytes(store: ObjectStore, key: string, opts?: GetOptions): Promise<Buffer> {
  const { body } = await store.get(key, opts);
  return readAll(body);
}
