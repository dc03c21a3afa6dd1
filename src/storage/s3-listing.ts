import { StorageError } from '../errors.js';
import { compareKeys } from '../util/key-order.js';
import type { S3ErrorContext } from './s3-errors.js';
import { decodeKey, nullVersion, unquote } from './s3-object-fields.js';
import type { S3Transport } from './s3-transport.js';
import type { ListItem, ListOptions, ObjectEntry, PrefixEntry } from './types.js';

// S3Store's listings: the pages of ListObjectsV2 and ListObjectVersions as lakeguard's
// entries, in key order, each page checked for order before it is used (inside the request:
// a damaged page is requested again).

/** What a listing needs of its store. */
export interface ListingContext {
  /** The store's key prefix ('' or ending in '/'). */
  prefix: string;
  /** The store's location, for messages. */
  location: string;
  endpointLabel: string;
  pageSize: number;
  transport: S3Transport;
  /** One list request, with the store's retries and counting. */
  send<O>(ctx: Omit<S3ErrorContext, 'bucket'>, signal: AbortSignal | undefined, call: () => Promise<O>): Promise<O>;
}

/** ListObjectsV2, page by page: objects and common prefixes merged in key order. */
export async function* listObjects(c: ListingContext, prefix: string, opts: ListOptions): AsyncGenerator<ListItem> {
  const fullPrefix = c.prefix + prefix;
  let token: string | undefined;
  let first = true;
  // Where the next page must start: after the previous page's last key (or prefix).
  let after = opts.startAfter === undefined ? undefined : c.prefix + opts.startAfter;
  do {
    const startAfter = first ? after : undefined;
    const listed = await c.send(
      { op: 'LIST', key: fullPrefix, action: 's3:ListBucket' },
      opts.signal,
      async () => {
        const got = await c.transport.listObjectsV2({
          prefix: fullPrefix,
          maxKeys: c.pageSize,
          delimiter: opts.delimiter,
          signal: opts.signal,
          ...(startAfter === undefined ? {} : { startAfter }),
          ...(token === undefined ? {} : { continuationToken: token }),
        });
        // Inside the request: a page out of order is requested again, like one that does not parse.
        // (A common prefix may hold startAfter itself, so only earlier pages bound the first page's prefixes.)
        // Keys decoded once, here: the order check and the entries below share them.
        const keys = (got.Contents ?? []).map((e) => decodeKey(e.Key ?? ''));
        const prefixKeys = (got.CommonPrefixes ?? []).map((e) => decodeKey(e.Prefix ?? ''));
        checkPageOrder(c, fullPrefix, after, true, keys);
        checkPageOrder(c, fullPrefix, startAfter === undefined ? after : undefined, true, prefixKeys);
        return { got, keys, prefixKeys };
      },
    );
    first = false;
    const { got: page, keys, prefixKeys } = listed;
    const objects: ObjectEntry[] = (page.Contents ?? []).map((o, i) => ({
      kind: 'object',
      key: relative(c, keys[i]!),
      size: o.Size ?? 0,
      etag: unquote(o.ETag),
      lastModified: o.LastModified ?? new Date(0),
      versionId: null,
      isLatest: true,
      isDeleteMarker: false,
      ...(o.StorageClass ? { storageClass: o.StorageClass } : {}),
    }));
    const prefixes: PrefixEntry[] = prefixKeys.map((k) => ({ kind: 'prefix', prefix: relative(c, k) }));
    for (const last of [keys.at(-1), prefixKeys.at(-1)]) {
      if (last !== undefined && (after === undefined || compareKeys(last, after) > 0)) after = last;
    }
    yield* mergeSorted(objects, prefixes);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}

/** ListObjectVersions, page by page, in S3's order: by key, latest first, then newest first. */
export async function* listObjectVersions(c: ListingContext, prefix: string, opts: ListOptions): AsyncGenerator<ListItem> {
  const fullPrefix = c.prefix + prefix;
  let keyMarker = opts.startAfter === undefined ? undefined : c.prefix + opts.startAfter;
  let versionIdMarker: string | undefined;
  for (let firstPage = true; ; firstPage = false) {
    const page = await c.send(
      { op: 'LIST versions', key: fullPrefix, action: 's3:ListBucketVersions' },
      opts.signal,
      async () => {
        const got = await c.transport.listObjectVersions({
          prefix: fullPrefix,
          maxKeys: c.pageSize,
          delimiter: opts.delimiter,
          signal: opts.signal,
          ...(keyMarker === undefined ? {} : { keyMarker }),
          ...(versionIdMarker === undefined ? {} : { versionIdMarker }),
        });
        // Versions of one key share it, and Ceph repeats KeyMarker's own: keys may repeat, not go back.
        for (const entries of [got.Versions, got.DeleteMarkers]) checkPageOrder(c, fullPrefix, keyMarker, false, (entries ?? []).map((e) => decodeKey(e.Key ?? '')));
        checkPageOrder(c, fullPrefix, firstPage ? undefined : keyMarker, false, (got.CommonPrefixes ?? []).map((e) => decodeKey(e.Prefix ?? '')));
        return got;
      },
    );
    // The SDK splits the response into versions and delete markers; put them back in S3's
    // order: by key, then newest first (the latest one first whatever the timestamps say).
    const entries: ObjectEntry[] = [];
    for (const v of page.Versions ?? []) {
      entries.push({
        kind: 'object',
        key: relative(c, decodeKey(v.Key ?? '')),
        size: v.Size ?? 0,
        etag: unquote(v.ETag),
        lastModified: v.LastModified ?? new Date(0),
        versionId: nullVersion(v.VersionId),
        isLatest: v.IsLatest ?? false,
        isDeleteMarker: false,
        ...(v.StorageClass ? { storageClass: v.StorageClass } : {}),
      });
    }
    for (const d of page.DeleteMarkers ?? []) {
      entries.push({
        kind: 'object',
        key: relative(c, decodeKey(d.Key ?? '')),
        size: 0,
        etag: '',
        lastModified: d.LastModified ?? new Date(0),
        versionId: nullVersion(d.VersionId),
        isLatest: d.IsLatest ?? false,
        isDeleteMarker: true,
      });
    }
    // Ceph (16) repeats the versions of KeyMarker itself when no VersionIdMarker is given;
    // AWS starts after it. Filter, so startAfter means the same on every server.
    const after = opts.startAfter;
    if (after !== undefined && versionIdMarker === undefined) {
      for (let i = entries.length - 1; i >= 0; i--) if (compareKeys(entries[i]!.key, after) <= 0) entries.splice(i, 1);
    }
    const prefixes = (page.CommonPrefixes ?? []).map((p): PrefixEntry => ({ kind: 'prefix', prefix: relative(c, decodeKey(p.Prefix ?? '')) })).filter((p) => after === undefined || compareKeys(p.prefix, after) > 0);
    entries.sort(
      (a, b) =>
        compareKeys(a.key, b.key) ||
        Number(b.isLatest) - Number(a.isLatest) ||
        b.lastModified.getTime() - a.lastModified.getTime(),
    );
    yield* mergeSorted(entries, prefixes);
    if (!page.IsTruncated) return;
    const nextKey = page.NextKeyMarker;
    if (nextKey === undefined || nextKey === '') return;
    // AWS url-encodes NextKeyMarker under EncodingType=url, Ceph 16 does not. The marker is the
    // last key (or common prefix) of the page, so take the reading that names one of them.
    const decoded = decodeKey(nextKey);
    const onPage = new Set([...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => decodeKey(v.Key ?? '')));
    for (const common of page.CommonPrefixes ?? []) onPage.add(decodeKey(common.Prefix ?? ''));
    const seen = (k: string): boolean => onPage.has(k);
    keyMarker = seen(decoded) || !seen(nextKey) ? decoded : nextKey;
    versionIdMarker = page.NextVersionIdMarker || undefined;
  }
}

/**
 * A listing page's keys (decoded) must be under the prefix, in S3's order and
 * past where the page starts. The scan merge-joins listings with the catalog: a key damaged in
 * flight would otherwise read as the deletion of every catalogued key it seems to skip.
 */
function checkPageOrder(c: ListingContext, fullPrefix: string, after: string | undefined, strict: boolean, keys: readonly string[]): void {
  let previous = after;
  for (const key of keys) {
    const order = previous === undefined ? 1 : compareKeys(key, previous);
    if (!key.startsWith(fullPrefix) || order < 0 || (strict && order === 0)) {
      throw new StorageError('Network', `LIST ${c.location}: the listing from ${c.endpointLabel} is damaged: ${JSON.stringify(key)} ${key.startsWith(fullPrefix) ? `does not sort after ${JSON.stringify(previous)}` : `is outside ${JSON.stringify(fullPrefix)}`}`, {
        backendCode: 'MalformedResponse',
        hint: 'lakeguard needs listings in key order under the requested prefix (S3 directory buckets do not list in order)',
      });
    }
    previous = key;
  }
}

/** A full key relative to the store's prefix. */
function relative(c: ListingContext, fullKey: string): string {
  return fullKey.startsWith(c.prefix) ? fullKey.slice(c.prefix.length) : fullKey;
}

/** Objects and common prefixes of one page, each sorted, merged into one key order. */
function* mergeSorted(objects: ObjectEntry[], prefixes: PrefixEntry[]): Generator<ListItem> {
  if (prefixes.length === 0) {
    yield* objects;
    return;
  }
  let i = 0;
  let j = 0;
  while (i < objects.length || j < prefixes.length) {
    const o = objects[i];
    const p = prefixes[j];
    if (o !== undefined && (p === undefined || compareKeys(o.key, p.prefix) < 0)) {
      yield o;
      i++;
    } else if (p !== undefined) {
      yield p;
      j++;
    }
  }
}
