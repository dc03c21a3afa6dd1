/**
 * A ServeView over a Map, for tests of serve's protocol layer alone (routing, auth, XML,
 * headers): no catalog, no packs. The real view (src/serve/view.ts) is tested on its own and
 * through `lakeguard serve` in the integration tests.
 */
import { Readable } from 'node:stream';
import type { StateCut } from '../../src/catalog/types.js';
import { commonPrefix } from '../../src/serve/common-prefix.js';
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
} from '../../src/serve/view-types.js';

/** One version of a key: content, or a delete marker (body null). */
export interface MapVersion {
  versionId: string | null;
  /** The version exists from this instant on (ms). */
  time: number;
  body: Buffer | null;
  contentType?: string;
  metadata?: Record<string, string>;
  tags?: Record<string, string>;
}

export class MapView implements ServeView {
  readonly defaultCut: ViewCut;
  /** Set to make open() fail after this many bytes (a damaged pack). */
  failAfter?: number;

  /** `versions`: bucket -> key -> versions, oldest first. */
  constructor(
    private readonly data: Map<string, Map<string, MapVersion[]>>,
    now: number,
  ) {
    this.defaultCut = { cut: { time: now }, label: new Date(now).toISOString() };
  }

  buckets(): readonly string[] {
    return [...this.data.keys()].sort();
  }

  resolveAt(text: string): ViewCut {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) throw new ViewInputError(`cannot read ${JSON.stringify(text)} as an instant or a run`);
    if (ms > (this.defaultCut.cut as { time: number }).time) throw new ViewInputError(`${text} is after the catalog's sync: restart serve`);
    return { cut: { time: ms }, label: new Date(ms).toISOString() };
  }

  private timeOf(cut: StateCut): number {
    if (!('time' in cut)) throw new Error('MapView knows instants only');
    return cut.time;
  }

  /** The key's versions up to the instant, newest first. */
  private versionsAt(bucket: string, key: string, at: ViewCut): MapVersion[] {
    const t = this.timeOf(at.cut);
    return (this.data.get(bucket)?.get(key) ?? []).filter((v) => v.time <= t).reverse();
  }

  private sortedKeys(bucket: string): string[] {
    // Code point order, as the catalog's.
    return [...(this.data.get(bucket)?.keys() ?? [])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  listObjects(q: ListObjectsQuery): ListObjectsPage {
    const entries: ListEntry[] = [];
    if (q.maxKeys === 0) return { entries, truncated: false };
    // As the contract says: after a common prefix (or a key inside one), resume after all of it.
    const rolledAfter = q.after === undefined || q.delimiter === undefined ? undefined : commonPrefix(q.after, q.prefix, q.delimiter);
    let lastPrefix: string | undefined;
    for (const key of this.sortedKeys(q.bucket)) {
      if (!key.startsWith(q.prefix) || (q.after !== undefined && key <= q.after)) continue;
      if (rolledAfter !== undefined && key.startsWith(rolledAfter)) continue;
      const newest = this.versionsAt(q.bucket, key, q.at)[0];
      if (newest === undefined || newest.body === null) continue;
      const prefix = q.delimiter === undefined ? undefined : commonPrefix(key, q.prefix, q.delimiter);
      if (prefix !== undefined) {
        if (prefix === lastPrefix) continue;
        if (entries.length === q.maxKeys) return { entries, truncated: true, next: nextOf(entries) };
        lastPrefix = prefix;
        entries.push({ type: 'prefix', prefix });
        continue;
      }
      if (entries.length === q.maxKeys) return { entries, truncated: true, next: nextOf(entries) };
      entries.push({ type: 'object', key, etag: etagOf(newest), size: newest.body.length, lastModified: newest.time, storageClass: null });
    }
    return { entries, truncated: false };
  }

  listVersions(q: ListVersionsQuery): ListVersionsPage {
    const versions: ListVersionsPage['versions'] = [];
    for (const key of this.sortedKeys(q.bucket)) {
      if (!key.startsWith(q.prefix) || (q.afterKey !== undefined && key <= q.afterKey)) continue;
      this.versionsAt(q.bucket, key, q.at).forEach((v, i) =>
        versions.push({ key, versionId: v.versionId, deleteMarker: v.body === null, isLatest: i === 0, etag: v.body === null ? null : etagOf(v), size: v.body?.length ?? 0, lastModified: v.time, storageClass: null }),
      );
    }
    const page = versions.slice(0, q.maxKeys);
    const truncated = versions.length > page.length;
    const last = page.at(-1);
    return { versions: page, commonPrefixes: [], truncated, ...(truncated && last !== undefined ? { nextKey: last.key, nextVersion: last.versionId ?? 'null' } : {}) };
  }

  lookup(q: ObjectQuery): ObjectLookup {
    const all = this.versionsAt(q.bucket, q.key, q.at);
    const v = q.versionId === undefined ? all[0] : all.find((x) => (x.versionId ?? 'null') === q.versionId);
    if (v === undefined) return { kind: 'missing' };
    if (v.body === null) return { kind: 'deleted', versionId: v.versionId };
    const head: ObjectHead = {
      bucket: q.bucket,
      key: q.key,
      versionId: v.versionId,
      etag: etagOf(v),
      size: v.body.length,
      lastModified: v.time,
      storageClass: null,
      ...(v.contentType === undefined ? {} : { contentType: v.contentType }),
      metadata: v.metadata ?? {},
      tags: v.tags ?? {},
      handle: v.body,
    };
    return { kind: 'object', head };
  }

  open(head: ObjectHead, range?: ByteRange): Readable {
    const body = head.handle as Buffer;
    const part = range === undefined ? body : body.subarray(range.start, range.end + 1);
    const failAfter = this.failAfter;
    if (failAfter === undefined) return Readable.from([part]);
    return new Readable({
      read() {
        this.push(part.subarray(0, failAfter));
        this.destroy(new Error('pack p1 is damaged'));
      },
    });
  }

  async close(): Promise<void> {}
}

function nextOf(entries: ListEntry[]): string {
  const last = entries.at(-1)!;
  return last.type === 'object' ? last.key : last.prefix;
}

function etagOf(v: MapVersion): string {
  return `etag-${v.versionId ?? 'null'}-${v.body?.length ?? 0}`;
}
