import type { ObjectSignal } from './anomaly-types.js';

/** Metadata preserved per version and restored to S3 targets. */
export interface StoredMeta {
  contentType?: string;
  contentEncoding?: string;
  cacheControl?: string;
  contentDisposition?: string;
  metadata?: Record<string, string>;
  tags?: Record<string, string>;
  /** POSIX permission bits of a file from a `path:` source (absent for S3 and in older records). */
  mode?: number;
}

/**
 * One object version as the engine observed it. The same shape is written, one JSON line
 * per record, into the run manifest's record blobs, so the catalog can be rebuilt from them.
 */
export interface VersionRecord {
  bucket: string;
  key: string;
  /** S3 version id; null for unversioned sources. */
  versionId: string | null;
  deleteMarker: boolean;
  size: number;
  etag: string;
  /** ms since epoch, as the source reported it. */
  lastModified: number;
  /** ms since epoch from which this version is the object's state (point-in-time queries). */
  validFrom: number;
  storageClass?: string;
  meta?: StoredMeta;
  /** Blob ids (hex) whose concatenation is the object's content, in order. */
  blobs: string[];
  /** What anomaly detection saw in this version (anomaly-types.ts); absent when nothing. */
  signals?: ObjectSignal[];
  /**
   * A version an earlier record already holds that is the key's state again from `validFrom`
   * (what hid it was removed from the bucket: docs/repository-format.md "runs/"). Recorded
   * although its version id is known; absent on every other record.
   */
  reinstated?: true;
  /**
   * Where each of `blobs` is stored, in the same order (docs/repository-format.md "runs/",
   * `locs`): a host that imports only some keys (a scoped catalog) locates their content from
   * these instead of reading every index file. Absent in records written before it existed.
   */
  locs?: RecordedBlob[];
}

/**
 * A blob's place in the repository as a record line carries it: [pack id, pack size, offset,
 * stored length, raw length, compressed 0|1]. The blob's type is implied by where it is named
 * (a version's blobs are data, a manifest's record blobs are records).
 */
export type RecordedBlob = [pack: string, packSize: number, offset: number, length: number, rawLength: number, compressed: 0 | 1];

export interface FailureRecord {
  bucket: string;
  key: string;
  versionId: string | null;
  code: string;
  message: string;
}

/** Codes of failure records that are entries skipped on purpose (RunCounters.objectsSkipped), not failures. */
export const SKIP_CODES: readonly string[] = ['Symlink', 'SpecialFile'];

export type RunStatus = 'running' | 'complete' | 'partial' | 'failed' | 'interrupted';

export interface RunCounters {
  objectsSeen: number;
  objectsNew: number;
  objectsChanged: number;
  objectsUnchanged: number;
  objectsDeleted: number;
  objectsFailed: number;
  objectsExcluded: number;
  /**
   * Entries of a directory source not backed up on purpose (symbolic links, special files),
   * each recorded with the failures under a SKIP_CODES code. Absent in runs from before it existed.
   */
  objectsSkipped?: number;
  /**
   * Keys of a versioned source whose current version was already catalogued but hidden (its delete
   * marker or a newer version was removed): recorded again as their state, nothing read. Absent
   * in runs from before it existed.
   */
  objectsReinstated?: number;
  /**
   * New or changed objects of a shard attempt recorded from a checkpoint of an earlier, killed
   * attempt of its shard (listed unchanged since): nothing read or stored (docs/scale-out.md
   * "Re-runs, kills and resume"); counted in objectsNew/objectsChanged and bytesNew too. Absent
   * when none, and in runs from before it existed.
   */
  objectsCarried?: number;
  /**
   * Sources listed from an S3 Inventory report instead of LIST: bucket -> the report's
   * creationTimestamp (ISO), what the run knows of the bucket (objects changed since are the
   * report's lag). Absent when every source was listed.
   */
  inventory?: Record<string, string>;
  /** Keys an inventory report listed that were deleted before the run read them (the report's lag; not failures). */
  objectsGoneSinceReport?: number;
  /**
   * Keys whose catalogued state is newer than the inventory report the run listed from (watch
   * recorded it after the report was made): missing from the report or listed in an older
   * state there, and left as the catalog has them (docs/scale-out.md "Watch and reports").
   */
  objectsNewerThanReport?: number;
  /**
   * A key-driven run (`lakeguard watch`): how many keys it was asked about. It listed those keys
   * only, never a whole bucket. Absent in every other run (and in watch runs from before it existed).
   */
  keysNamed?: number;
  /**
   * How the run listed its versioned sources: 'full' (every version, ListObjectVersions of each
   * prefix) or 'changed' (current keys, and the versions of the keys that changed only:
   * docs/versioned-incremental.md). Absent when it had no versioned source, and in older runs.
   */
  versionListing?: 'full' | 'changed';
  bytesRead: number;
  bytesNew: number;
  bytesStored: number;
  blobsNew: number;
  blobsDeduplicated: number;
  packsWritten: number;
  requests: { list: number; get: number; head: number; put: number; delete: number };
  durationMs: number;
}

export interface RunRow {
  seq: number;
  id: string;
  group: string;
  started: number;
  finished: number | null;
  status: RunStatus;
  host: string | null;
  counters: RunCounters | null;
  /** Present only for a shard attempt of a run set (ordinary runs have no such key). */
  shard?: RunShard;
}

/** The newest catalogued version of a key, for comparing a listing against the catalog. */
export interface LatestVersion {
  objectId: number;
  key: string;
  versionRow: number;
  versionId: string | null;
  deleteMarker: boolean;
  size: number;
  etag: string | null;
  lastModified: number;
  validFrom: number;
}

export interface BlobLocation {
  hash: Buffer;
  pack: string;
  offset: number;
  length: number;
  rawLength: number;
  compressed: boolean;
}

/** A version selected for restore, with where its bytes are. */
export interface RestoreItem {
  versionRow: number;
  bucket: string;
  key: string;
  versionId: string | null;
  size: number;
  etag: string | null;
  lastModified: number;
  meta: StoredMeta;
  blobs: BlobLocation[];
}

/** A pack and the blobs it holds, as an index file lists them. */
export interface PackRecord {
  name: string;
  size: number;
  blobs: { hash: Buffer; offset: number; length: number; rawLength: number; flags: number }[];
}

/** Where a blob is stored: its pack, its range there, and how it is encoded (blobs.flags). */
export interface StoredBlob {
  pack: string;
  offset: number;
  length: number;
  rawLength: number;
  flags: number;
}

/** A blob of a written pack that no index file lists yet. */
export interface UnindexedBlob {
  row: number;
  pack: string;
  packSize: number;
  hash: Buffer;
  offset: number;
  length: number;
  rawLength: number;
  flags: number;
}

/**
 * Which versions count as "the state": as recorded up to a run, or as of an instant.
 * `runSet`: the state after a run set's recorded shards (run-sets.ts `runSetCut`): every run
 * numbered up to `runSeq` (the last one before the set's first shard) and the set's shard
 * attempts `seqs`, but not the runs numbered between them that are not its shards.
 */
export type StateCut = { runSeq: number; runSet?: { id: string; seqs: readonly number[] } } | { time: number };

/** A shard's key range: (after, upTo] in (bucket, key) order; an absent bound is open. */
export interface ShardRange {
  after?: [string, string];
  upTo?: [string, string];
}

/**
 * A run's membership of a run set (a shard manifest's `shard` field; docs/scale-out.md
 * "Shards"): the group's run-set run id from the plan, the run set's name, this shard's index
 * (0-based) of `of`, and its key range.
 */
export interface RunShard {
  set: string;
  name: string;
  index: number;
  of: number;
  range: ShardRange;
}

/** A part of the catalog to restore or inspect: a bucket, optionally narrowed to a prefix or one key. */
export interface Scope {
  bucket: string;
  prefix?: string;
  key?: string;
  /** With `key`: this exact version, whatever the cut. */
  versionId?: string;
}

/** A key a restore target already holds: `key` as catalogued, `targetKey` as the target names it. */
export interface TargetKey {
  bucket: string;
  key: string;
  targetKey: string;
  size: number;
  etag: string;
  /** Its Last-Modified in ms, when the target said (a listing or a HEAD). */
  lastModified?: number;
}

/** The repository a catalog belongs to, as the catalog remembers it (Catalog.rememberedRepository). */
export interface RememberedRepository {
  id: string;
  /** `aes-256-gcm` or `none`; null when not yet remembered. */
  encryption: string | null;
  formatVersion: number | null;
  /** Where the repository was when last opened with this catalog (Repository.location); null when not yet remembered. */
  location: string | null;
}
