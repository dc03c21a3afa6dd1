/**
 * The backup against the bucket as it is now (`diff <T> live`): the catalog's state at T,
 * merge-joined in key order with a listing of the source's current objects, so a responder can
 * check a repair without running another backup. Streams both sides: memory does not grow with
 * the bucket. Reads only listings (no object is fetched), so "the same" can only mean the same
 * ETag and size; an ETag is an MD5 of the content only for single-part uploads without SSE-KMS
 * or SSE-C, so objects rewritten by a multipart upload (a multipart copy above 5 GiB, say) can
 * show as changed with the same content: those are counted apart (`multipartEtags`).
 */
import type { StateCut } from '../catalog/catalog.js';
import type { CatalogQueries, DiffEntry, StateObject } from '../catalog/queries.js';
import { parseFileToken, sameFileToken } from '../storage/fs-entries.js';
import type { ObjectEntry } from '../storage/types.js';
import { mergeByKey } from '../util/key-order.js';
import { prefixesWithin, type OpenedSource } from './sources.js';

/** One key compared: a change (added, changed, deleted), or the same ETag and size. */
export type LiveComparison = { kind: 'change'; entry: DiffEntry; multipartEtag: boolean } | { kind: 'unchanged'; bucket: string; key: string; size: number };

/** The prefixes of `source` to list for `--prefix` (undefined: all of them): see prefixesWithin. */
export function livePrefixes(source: OpenedSource, prefix: string | undefined): string[] {
  return prefixesWithin(source.prefixes, prefix);
}

/** Compares one listing prefix of a source with the catalog's state of it at `at`, key by key. */
export async function* compareLive(q: CatalogQueries, source: OpenedSource, prefix: string, at: StateCut, signal?: AbortSignal): AsyncGenerator<LiveComparison> {
  const listing = objectsOf(source, prefix, signal);
  const state = (function* () {
    for (const s of q.stateAt(source.bucket, prefix, at)) if (!source.isExcluded(s.key)) yield s;
  })();
  for await (const { key, left: before, right: live } of mergeByKey<StateObject, ObjectEntry>(state, listing, (s) => s.key, (e) => e.key)) {
    const after = live === undefined ? null : { versionId: live.versionId, size: live.size, etag: live.etag, time: live.lastModified.getTime() };
    if (before !== undefined && after !== null && before.size === after.size && sameToken(before.etag, after.etag)) {
      yield { kind: 'unchanged', bucket: source.bucket, key, size: after.size };
      continue;
    }
    const beforeSide = before === undefined ? null : { versionId: before.versionId, size: before.size, etag: before.etag, time: before.time };
    const change = beforeSide === null ? 'added' : after === null ? 'deleted' : 'changed';
    yield {
      kind: 'change',
      entry: { change, bucket: source.bucket, key, before: beforeSide, after, deletedAt: null },
      multipartEtag: change === 'changed' && (isMultipartEtag(before?.etag) || isMultipartEtag(after?.etag)),
    };
  }
}

/** The current objects under `prefix`, without the keys the policy excludes. */
async function* objectsOf(source: OpenedSource, prefix: string, signal: AbortSignal | undefined): AsyncGenerator<ObjectEntry> {
  for await (const item of source.objectStore.list(prefix, signal === undefined ? {} : { signal })) {
    if (item.kind === 'object' && !item.isDeleteMarker && !source.isExcluded(item.key)) yield item;
  }
}

/** `"abc…-12"`: the ETag of a multipart upload, an MD5 of the parts' MD5s, not of the content. A file's change token (`<size>-<mtime ns>`) is not one. */
export function isMultipartEtag(etag: string | null | undefined): boolean {
  return etag != null && /-\d+"?$/.test(etag) && parseFileToken(unquoted(etag)) === null;
}

/** The same ETag, or the same file state: as the backup compares them (scan.ts), a restored file's time within a microsecond. */
function sameToken(a: string | null, b: string | null): boolean {
  return a === null || b === null ? a === b : sameFileToken(unquoted(a), unquoted(b));
}

function unquoted(etag: string): string {
  return etag.replace(/"/g, '');
}
