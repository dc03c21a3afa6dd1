/** What the query commands' answers (queries.ts) look like: pages, cursors and rows. */
import type { RunRow, RunStatus, StateCut, StoredMeta } from './types.js';

/** One page of results and where the next one starts (null: this was the last page). */
export interface Page<T, C> {
  items: T[];
  next: C | null;
}

export interface PageOptions<C> {
  /** Rows per page (default 1000). */
  limit?: number;
  /** The `next` of the previous page. */
  after?: C | null;
}

export interface VersionInfo {
  /** S3 version id; null for unversioned sources. */
  versionId: string | null;
  deleteMarker: boolean;
  /** valid_from: from when this version is the key's state (ms since epoch). */
  time: number;
  lastModified: number;
  size: number;
  etag: string | null;
  storageClass: string | null;
  /** Id and number of the run that recorded it. */
  run: string;
  runSeq: number;
  /** Every blob of the content is located in a pack; null for delete markers. */
  dataPresent: boolean | null;
  meta: StoredMeta | null;
}
export type VersionCursor = { time: number; row: number };

export interface FindOptions {
  bucket?: string;
  /** Judge every key by its state at this cut (default: its newest version). */
  at?: StateCut;
  /** Only keys whose state is a delete marker (deleted at `at`, or now). */
  deleted?: boolean;
  /** Only keys whose state is an object larger than this many bytes. */
  largerThan?: number;
  /** Only keys whose state changed after this cut (created, overwritten or deleted). */
  since?: StateCut;
}

export interface FoundObject {
  bucket: string;
  key: string;
  /** The state is a delete marker. */
  deleted: boolean;
  versionId: string | null;
  size: number;
  etag: string | null;
  time: number;
  lastModified: number;
  storageClass: string | null;
  run: string;
  /** Versions (and delete markers) catalogued for this key in all runs. */
  versions: number;
}
export type FindCursor = { key: string; object: number };

export interface LsEntry {
  /** `prefix`: a sub-prefix ("directory"); `object`: a key directly below the listed prefix. */
  type: 'prefix' | 'object';
  /** Full key or full sub-prefix (ending in '/'). */
  name: string;
  /** Objects at the instant: 1 for an object, all keys below for a prefix. */
  objects: number;
  bytes: number;
  /** Newest valid_from among them. */
  time: number;
  /** For objects: their version. */
  versionId?: string | null;
  etag?: string | null;
  lastModified?: number;
  storageClass?: string | null;
}
/** Where the next page of children starts (a key bound). */
export type LsCursor = { from: string };

export interface DiffScope {
  /** Buckets to compare (default: the group's buckets, or every bucket in the catalog). */
  buckets?: readonly string[];
  /** Only keys under this prefix (in every bucket). */
  prefix?: string;
  /** Only keys that a run of this group recorded. */
  group?: string;
}

/**
 * What happened to a key between two cuts (definitions in diff-queries.ts): `rewritten` is
 * another version with the same content (same size, and same ETag or content blob).
 */
export type ChangeKind = 'added' | 'changed' | 'rewritten' | 'deleted';

export interface DiffSide {
  versionId: string | null;
  size: number;
  etag: string | null;
  time: number;
}
/** A key's state at a cut when it is an object: its version, as a diff shows either side. */
export interface StateObject extends DiffSide {
  key: string;
}

export interface DiffEntry {
  change: ChangeKind;
  bucket: string;
  key: string;
  before: DiffSide | null;
  after: DiffSide | null;
  /**
   * For a deleted key: when it was deleted (the delete marker's time: the server's for a
   * versioned bucket, the run's for a key gone from an unversioned source); null when the key
   * simply had no version yet at `to` (a diff backwards in time).
   */
  deletedAt: number | null;
}
export type DiffCursor = { bucket: string; key: string };

export interface DiffSummary {
  added: { objects: number; bytes: number };
  /** bytes: size after; bytesBefore: size before. */
  changed: { objects: number; bytes: number; bytesBefore: number };
  /** Another version with the same content: not a change of content, counted apart. */
  rewritten: { objects: number; bytes: number };
  deleted: { objects: number; bytes: number };
  buckets: string[];
}

export interface CalendarRun {
  id: string;
  seq: number;
  group: string;
  status: RunStatus;
  started: number;
  finished: number | null;
  objectsFailed: number;
}
export interface CalendarDay {
  /** Local date, YYYY-MM-DD. */
  date: string;
  runs: CalendarRun[];
}
export interface CalendarMonth {
  month: string;
  /** IANA name of the zone the days are cut in (the machine's local zone). */
  timeZone: string;
  group: string | null;
  days: CalendarDay[];
}

export interface RunDetails {
  run: RunRow;
  /** The run ended without a manifest in the repository (writing it failed): why. */
  unrecorded?: string;
  /** Version rows this run added to the catalog (new objects, changes, deletions). */
  versionsRecorded: number;
  deleteMarkersRecorded: number;
  bytesRecorded: number;
  /** Objects that could not be backed up. */
  failures: number;
  /** Entries skipped on purpose (symbolic links, special files); listed with the failures. */
  skipped: number;
  /**
   * The keys it recorded versions of, counted as `diff <seq - 1> <seq>` counts them; null when
   * the run recorded more versions than runShow counts.
   */
  changes: DiffSummary | null;
  /**
   * The number of the run before it in the catalog (null for the first): `diff <previousSeq>
   * <seq>` is what it changed. Not `seq - 1`, which a forgotten run leaves without a run.
   */
  previousSeq: number | null;
}
export type FailureCursor = { rowid: number };

/** A version (or delete marker) a run recorded, and what it did to its key. */
export interface RunVersion {
  bucket: string;
  key: string;
  versionId: string | null;
  deleteMarker: boolean;
  size: number;
  etag: string | null;
  /** valid_from (ms since epoch). */
  time: number;
  /**
   * Compared with the key's version just before it: `none` for a delete marker over a key
   * that was already absent (or deleted).
   */
  change: ChangeKind | 'none';
}
export type RunVersionCursor = { row: number };
