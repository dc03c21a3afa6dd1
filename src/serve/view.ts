/**
 * The data side of `lakeguard serve`: a ServeView (view-types.ts) answered from the catalog, as
 * synced when the server started, and from the repository's packs. Listings are keyset walks of
 * the catalog's (bucket, key) index at the request's cut; a delimiter's common prefix is one
 * entry, after which the walk seeks past every key below it instead of reading them.
 */
import type { Readable } from 'node:stream';
import type { Catalog, StateCut } from '../catalog/catalog.js';
import { parseAt } from '../catalog/instant.js';
import { upperBound } from '../catalog/key-range.js';
import type { ServedObject, ServeQueries } from '../catalog/serve-queries.js';
import { UsageError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { compareKeys } from '../util/key-order.js';
import { openContent, type BlobCache } from './object-reader.js';
import { commonPrefix } from './common-prefix.js';
import { listVersionsPage } from './version-listing.js';
import {
  ViewInputError,
  type ByteRange,
  type ListEntry,
  type ListObjectsPage,
  type ListObjectsQuery,
  type ListVersionsPage,
  type ListVersionsQuery,
  type ObjectHead,
  type ObjectLookup,
  type ObjectQuery,
  type ServeView,
  type ViewCut,
} from './view-types.js';

/** What `ObjectHead.handle` holds: the catalog row of the version whose content open() reads. */
class ContentHandle {
  constructor(readonly versionRow: number) {}
}

export interface CatalogViewOptions {
  repo: Repository;
  catalog: Catalog;
  queries: ServeQueries;
  /** The buckets served (any order). */
  buckets: readonly string[];
  defaultCut: ViewCut;
  /** When the catalog was last synced: instants after it are refused (the view cannot know them). */
  syncedAt: number;
  /** The newest run number the catalog held then: later runs (recorded since, by another process) are refused. */
  pinnedRun: number;
  cache?: BlobCache;
  /** Called once by close(), before the catalog is closed (releases the lock). */
  onClose?: () => Promise<void>;
}

/** The name of a cut in headers, logs and errors: the run (set) id, or the ISO instant. */
export function cutLabel(catalog: Catalog, cut: StateCut): string {
  if ('time' in cut) return new Date(cut.time).toISOString();
  if (cut.runSet !== undefined) return cut.runSet.id;
  return catalog.findRun(String(cut.runSeq))?.id ?? `#${cut.runSeq}`;
}

export class CatalogView implements ServeView {
  readonly defaultCut: ViewCut;
  private readonly bucketNames: readonly string[];
  private readonly served: Set<string>;
  private closed = false;

  constructor(private readonly opts: CatalogViewOptions) {
    this.defaultCut = opts.defaultCut;
    this.bucketNames = [...new Set(opts.buckets)].sort(compareKeys);
    this.served = new Set(this.bucketNames);
  }

  buckets(): readonly string[] {
    return this.bucketNames;
  }

  resolveAt(text: string): ViewCut {
    let cut: StateCut;
    try {
      cut = parseAt(text, this.opts.catalog);
    } catch (err) {
      if (err instanceof UsageError) throw new ViewInputError(err.hint === undefined ? err.message : `${err.message} (${err.hint})`);
      throw err;
    }
    if ('time' in cut && cut.time > this.opts.syncedAt) {
      throw new ViewInputError(
        `${JSON.stringify(text)} (${new Date(cut.time).toISOString()}) is after the catalog was synced at ${new Date(this.opts.syncedAt).toISOString()}: ` +
          'this server answers from that sync; ask for an instant before it, or restart `lakeguard serve` to see later backups',
      );
    }
    const newest = 'time' in cut ? 0 : Math.max(cut.runSeq, ...(cut.runSet?.seqs ?? []));
    if (newest > this.opts.pinnedRun) {
      throw new ViewInputError(
        `${JSON.stringify(text)} was recorded after this server pinned its view at the sync of ${new Date(this.opts.syncedAt).toISOString()}: ` +
          'restart `lakeguard serve` to see later backups',
      );
    }
    return { cut, label: cutLabel(this.opts.catalog, cut) };
  }

  private bucketId(bucket: string): number | undefined {
    return this.served.has(bucket) ? this.opts.queries.bucketId(bucket) : undefined;
  }

  listObjects(q: ListObjectsQuery): ListObjectsPage {
    const bucketId = this.bucketId(q.bucket);
    if (bucketId === undefined || q.maxKeys <= 0) return { entries: [], truncated: false };
    const delimiter = q.delimiter === '' ? undefined : q.delimiter;
    const below = upperBound(q.prefix);
    let from = q.prefix;
    let inclusive = true;
    if (q.after !== undefined && compareKeys(q.after, q.prefix) >= 0) {
      from = q.after;
      inclusive = false;
      // After a key inside a common prefix (or the prefix itself, a V1 NextMarker): that prefix
      // was listed already, so the walk resumes after every key below it.
      const rolled = delimiter === undefined ? undefined : commonPrefix(q.after, q.prefix, delimiter);
      if (rolled !== undefined) {
        const past = upperBound(rolled);
        if (past === null) return { entries: [], truncated: false };
        from = past;
        inclusive = true;
      }
    }
    const entries: ListEntry[] = [];
    let truncated = false;
    walk: for (;;) {
      for (const v of this.opts.queries.objectsAt(bucketId, q.at.cut, from, inclusive, below)) {
        if (entries.length >= q.maxKeys) {
          truncated = true;
          break walk;
        }
        const rolled = delimiter === undefined ? undefined : commonPrefix(v.key, q.prefix, delimiter);
        if (rolled === undefined) {
          entries.push({ type: 'object', key: v.key, etag: v.etag, size: v.size, lastModified: v.lastModified, storageClass: v.storageClass });
          continue;
        }
        entries.push({ type: 'prefix', prefix: rolled });
        const past = upperBound(rolled);
        if (past === null) break walk;
        // Seek past the common prefix: one index seek, not a walk over its keys.
        from = past;
        inclusive = true;
        continue walk;
      }
      break;
    }
    if (!truncated) return { entries, truncated };
    const last = entries.at(-1)!;
    return { entries, truncated, next: last.type === 'object' ? last.key : last.prefix };
  }

  listVersions(q: ListVersionsQuery): ListVersionsPage {
    const bucketId = this.bucketId(q.bucket);
    if (bucketId === undefined || q.maxKeys <= 0) return { versions: [], commonPrefixes: [], truncated: false };
    return listVersionsPage(this.opts.queries, bucketId, q);
  }

  lookup(q: ObjectQuery): ObjectLookup {
    const bucketId = this.bucketId(q.bucket);
    if (bucketId === undefined) return { kind: 'missing' };
    const queries = this.opts.queries;
    // "null" is S3's name of an unversioned source's version.
    const found =
      q.versionId === undefined
        ? queries.stateOf(bucketId, q.key, q.at.cut)
        : queries.versionOf(bucketId, q.key, q.versionId === 'null' ? null : q.versionId, q.at.cut);
    if (found === undefined) return { kind: 'missing' };
    if (found.deleteMarker) return { kind: 'deleted', versionId: found.versionId };
    return { kind: 'object', head: objectHead(q.bucket, found) };
  }

  open(head: ObjectHead, range?: ByteRange, signal?: AbortSignal): Readable {
    if (!(head.handle instanceof ContentHandle)) throw new Error('ServeView.open: the head was not looked up by this view');
    const source = { repo: this.opts.repo, queries: this.opts.queries, ...(this.opts.cache === undefined ? {} : { cache: this.opts.cache }) };
    return openContent(source, { bucket: head.bucket, key: head.key, versionRow: head.handle.versionRow, size: head.size }, range, signal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.opts.onClose?.();
    } finally {
      this.opts.catalog.close();
    }
  }
}

function objectHead(bucket: string, v: ServedObject): ObjectHead {
  const m = v.meta;
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(m.metadata ?? {})) metadata[name.toLowerCase()] = value;
  return {
    bucket,
    key: v.key,
    versionId: v.versionId,
    etag: v.etag === null ? null : v.etag.replace(/^"|"$/g, ''),
    size: v.size,
    lastModified: v.lastModified,
    storageClass: v.storageClass,
    ...(m.contentType === undefined ? {} : { contentType: m.contentType }),
    ...(m.contentEncoding === undefined ? {} : { contentEncoding: m.contentEncoding }),
    ...(m.cacheControl === undefined ? {} : { cacheControl: m.cacheControl }),
    ...(m.contentDisposition === undefined ? {} : { contentDisposition: m.contentDisposition }),
    metadata,
    tags: { ...(m.tags ?? {}) },
    handle: new ContentHandle(v.versionRow),
  };
}
