/**
 * ListObjectVersions from the catalog: every version and delete marker of each key recorded up
 * to the request's cut, keys in order and each key's versions newest first (S3's order), common
 * prefixes rolled up as ListObjects does (one seek past each), paged by key and version markers.
 */
import { upperBound } from '../catalog/key-range.js';
import type { ServeQueries } from '../catalog/serve-queries.js';
import { compareKeys } from '../util/key-order.js';
import { commonPrefix } from './common-prefix.js';
import { ViewInputError, type ListVersionsPage, type ListVersionsQuery, type VersionEntry } from './view-types.js';

/** A page of versions of the bucket `bucketId` (already checked to be served). */
export function listVersionsPage(queries: ServeQueries, bucketId: number, q: ListVersionsQuery): ListVersionsPage {
  const cut = q.at.cut;
  const delimiter = q.delimiter === '' ? undefined : q.delimiter;
  const below = upperBound(q.prefix);
  const versions: VersionEntry[] = [];
  const commonPrefixes: string[] = [];
  let count = 0;
  let last: { key: string; version?: string } | null = null;
  let truncated = false;

  let from = q.prefix;
  let inclusive = true;
  if (q.afterKey !== undefined && compareKeys(q.afterKey, q.prefix) >= 0) {
    const rolled = delimiter === undefined ? undefined : commonPrefix(q.afterKey, q.prefix, delimiter);
    if (rolled !== undefined) {
      const past = upperBound(rolled);
      if (past === null) return { versions, commonPrefixes, truncated };
      from = past;
    } else {
      from = q.afterKey;
      inclusive = false;
      if (q.afterVersion !== undefined) {
        const object = queries.objectId(bucketId, q.afterKey);
        const record = object === undefined ? undefined : queries.versionRecordAt(object, q.afterVersion === 'null' ? null : q.afterVersion, cut);
        if (object === undefined || record === undefined) {
          throw new ViewInputError(`version-id-marker ${JSON.stringify(q.afterVersion)} is not a version of ${JSON.stringify(q.afterKey)} at ${q.at.label}`);
        }
        // Resuming inside one key: its versions older than the marker first, then the keys after it.
        if (addVersions(object, q.afterKey, record) === 'full') return done();
      }
    }
  }

  walk: for (;;) {
    for (const { object, key } of queries.keysWithVersionsAt(bucketId, cut, from, inclusive, below)) {
      if (count >= q.maxKeys) {
        truncated = true;
        break walk;
      }
      const rolled = delimiter === undefined ? undefined : commonPrefix(key, q.prefix, delimiter);
      if (rolled !== undefined) {
        commonPrefixes.push(rolled);
        count++;
        last = { key: rolled };
        const past = upperBound(rolled);
        if (past === null) break walk;
        from = past;
        inclusive = true;
        continue walk;
      }
      if (addVersions(object, key, null) === 'full') break walk;
    }
    break;
  }
  return done();

  /** Adds a key's versions (after a record) until the page is full; 'full' when one more entry was left out. */
  function addVersions(object: number, key: string, after: { validFrom: number; row: number } | null): 'full' | 'room' {
    let first = after === null;
    for (const v of queries.versionsAt(object, key, cut, after)) {
      if (count >= q.maxKeys) {
        truncated = true;
        return 'full';
      }
      versions.push({
        key,
        versionId: v.versionId,
        deleteMarker: v.deleteMarker,
        isLatest: first,
        etag: v.deleteMarker || v.etag === null ? null : v.etag.replace(/^"|"$/g, ''),
        size: v.deleteMarker ? 0 : v.size,
        lastModified: v.lastModified,
        storageClass: v.deleteMarker ? null : v.storageClass,
      });
      first = false;
      count++;
      last = { key, version: v.versionId ?? 'null' };
    }
    return 'room';
  }

  function done(): ListVersionsPage {
    if (!truncated || last === null) return { versions, commonPrefixes, truncated };
    return { versions, commonPrefixes, truncated, nextKey: last.key, ...(last.version === undefined ? {} : { nextVersion: last.version }) };
  }
}
