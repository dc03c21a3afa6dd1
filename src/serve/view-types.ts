/**
 * The contract between `lakeguard serve`'s S3 protocol layer (http-*.ts, sigv4-verify.ts,
 * s3-responses.ts, src/commands/serve.ts) and its data side (view.ts, object-reader.ts, the
 * catalog queries in src/catalog/serve-queries.ts). The protocol layer parses, authenticates
 * and encodes; the view answers from the catalog and reads content from packs. Neither knows the
 * other's formats: no SQL or pack offsets above this line, no XML or HTTP below it.
 */
import type { Readable } from 'node:stream';
import type { StateCut } from '../catalog/types.js';

/** The instant a request is answered as of, resolved once (the server's default, or per request). */
export interface ViewCut {
  cut: StateCut;
  /** How users name it in logs and errors: the run (set) id, or the ISO instant. */
  label: string;
}

/** An object (not a delete marker) as the view's instant has it. */
export interface ObjectHead {
  bucket: string;
  key: string;
  /** S3 version id; null for unversioned sources (served as "null"). */
  versionId: string | null;
  /** The source's ETag, without quotes; null when the catalog has none. */
  etag: string | null;
  size: number;
  /** The source's Last-Modified, ms since epoch. */
  lastModified: number;
  storageClass: string | null;
  contentType?: string;
  contentEncoding?: string;
  cacheControl?: string;
  contentDisposition?: string;
  /** User metadata (x-amz-meta-*), names lower-case without the prefix. */
  metadata: Record<string, string>;
  tags: Record<string, string>;
  /** Opaque to the protocol layer: what open() needs to find the content. */
  readonly handle: unknown;
}

/** One entry of ListObjects(V2): an object at the instant, or a common prefix. */
export type ListEntry =
  | { type: 'object'; key: string; etag: string | null; size: number; lastModified: number; storageClass: string | null }
  | { type: 'prefix'; prefix: string };

export interface ListObjectsQuery {
  bucket: string;
  at: ViewCut;
  /** Only keys starting with this ('' for all). */
  prefix: string;
  /** Roll keys up to the first occurrence of this after the prefix (S3 semantics); absent: no roll-up. */
  delimiter?: string;
  /** Exclusive: entries strictly after this key (StartAfter, Marker, or the last entry of the previous page). */
  after?: string;
  /** 0..1000; 0 answers an empty, untruncated page. */
  maxKeys: number;
}

export interface ListObjectsPage {
  entries: ListEntry[];
  /** More entries follow the last one returned. */
  truncated: boolean;
  /**
   * Where the next page starts (pass as `after`): the last entry's key or common prefix (an
   * `after` that is a common prefix, or a key inside one, resumes after every key below it, as
   * S3 treats a V1 NextMarker). Set when truncated.
   */
  next?: string;
}

/** One entry of ListObjectVersions: every catalogued version and delete marker up to the instant. */
export interface VersionEntry {
  key: string;
  /** S3 version id, or null (unversioned source: served as "null"). */
  versionId: string | null;
  deleteMarker: boolean;
  /** The key's newest entry at the instant. */
  isLatest: boolean;
  etag: string | null;
  size: number;
  lastModified: number;
  storageClass: string | null;
}

export interface ListVersionsQuery {
  bucket: string;
  at: ViewCut;
  prefix: string;
  delimiter?: string;
  /** KeyMarker and VersionIdMarker of S3: entries after this key (and after this version of it). */
  afterKey?: string;
  afterVersion?: string;
  maxKeys: number;
}

export interface ListVersionsPage {
  /** Keys in order; a key's versions newest first, as S3 lists them. */
  versions: VersionEntry[];
  commonPrefixes: string[];
  truncated: boolean;
  nextKey?: string;
  nextVersion?: string;
}

/** What a GET or HEAD asks for; `versionId` picks a catalogued version instead of the state at `at`. */
export interface ObjectQuery {
  bucket: string;
  key: string;
  at: ViewCut;
  versionId?: string;
}

/**
 * The answer to a HEAD/GET lookup. `deleted`: the key's state at the instant (or the version
 * asked for) is a delete marker; `missing`: no such key or version at the instant.
 */
export type ObjectLookup = { kind: 'object'; head: ObjectHead } | { kind: 'deleted'; versionId: string | null } | { kind: 'missing' };

/** Inclusive byte range, already validated against the object's size by the protocol layer. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface ServeView {
  /** The buckets this server exposes, sorted (the policy's sources, or one group's). */
  buckets(): readonly string[];
  /** The instant every request without its own is answered as of. */
  readonly defaultCut: ViewCut;
  /** Resolves `--at` text (an instant, a run or run-set id): throws ViewInputError when it names nothing. */
  resolveAt(text: string): ViewCut;
  listObjects(q: ListObjectsQuery): ListObjectsPage;
  listVersions(q: ListVersionsQuery): ListVersionsPage;
  lookup(q: ObjectQuery): ObjectLookup;
  /**
   * The content (or the range of it), streamed from packs: only the chunks the range needs are
   * read, every byte authenticated. The stream errors if a pack is damaged or unreadable.
   */
  open(head: ObjectHead, range?: ByteRange, signal?: AbortSignal): Readable;
  /** Releases caches and the catalog. */
  close(): Promise<void>;
}

/** A request named an instant or version that cannot be resolved: the protocol layer answers 400. */
export class ViewInputError extends Error {
  override name = 'ViewInputError';
}
