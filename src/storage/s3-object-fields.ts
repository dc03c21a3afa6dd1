import type { S3ObjectHeaders } from './s3-transport.js';
import type { ObjectMeta } from './types.js';

// S3's object fields as lakeguard's: metadata from GET/HEAD headers, ETags, version ids, keys
// of url-encoded listings, tags.

/** The metadata of a GET or HEAD answer; `size` is the object's (a ranged GET's Content-Range says it). */
export function toMeta(res: S3ObjectHeaders, size: number): ObjectMeta {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.Metadata ?? {})) metadata[k.toLowerCase()] = v;
  return {
    size,
    etag: unquote(res.ETag),
    lastModified: res.LastModified ?? new Date(0),
    versionId: nullVersion(res.VersionId),
    metadata,
    // S3 omits the storage class header for STANDARD.
    storageClass: res.StorageClass ?? 'STANDARD',
    ...(res.ContentType ? { contentType: res.ContentType } : {}),
    ...(res.ContentEncoding ? { contentEncoding: res.ContentEncoding } : {}),
    ...(res.CacheControl ? { cacheControl: res.CacheControl } : {}),
    ...(res.ContentDisposition ? { contentDisposition: res.ContentDisposition } : {}),
    ...(res.TagCount ? { tagCount: res.TagCount } : {}),
    ...(res.SSECustomerAlgorithm ? { sse: 'SSE-C' } : res.ServerSideEncryption ? { sse: res.ServerSideEncryption } : {}),
  };
}

/** An ETag without its quotes (and weak marker). */
export function unquote(etag: string | undefined): string {
  if (etag === undefined) return '';
  // The common case, "<hex>", without the two regular expressions (once per listed key).
  if (etag.length >= 2 && etag.charCodeAt(0) === 0x22 && etag.charCodeAt(etag.length - 1) === 0x22 && etag.indexOf('"', 1) === etag.length - 1) return etag.slice(1, -1);
  return etag.replace(/^(W\/)?"/, '').replace(/"$/, '');
}

/** S3's "null" version (objects written while versioning was off) as null. */
export function nullVersion(v: string | undefined): string | null {
  return v === undefined || v === '' || v === 'null' ? null : v;
}

/** Keys in responses with `EncodingType=url` (spaces may come as '+', a literal '+' as %2B). */
export function decodeKey(s: string): string {
  try {
    return decodeURIComponent(s.includes('+') ? s.replace(/\+/g, ' ') : s);
  } catch {
    return s;
  }
}

/** The x-amz-tagging header: a URL query string. */
export function encodeTags(tags: Record<string, string>): string {
  return Object.entries(tags)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

/**
 * The x-amz-copy-source header of a copy from `bucket`/`key` (a version of it when given):
 * `/bucket/key?versionId=V`, the key URL-encoded segment by segment (its slashes kept). Every
 * byte outside A-Z a-z 0-9 - _ . ~ is percent-encoded, '+' included (a server may read a bare
 * '+' as a space), so keys of Hive partitions (`dt=2026-01-01`), spaces, '%' and any Unicode
 * reach the server as written.
 */
export function copySourceHeader(bucket: string, key: string, versionId?: string): string {
  const path = key.split('/').map(strictEncode).join('/');
  return `/${bucket}/${path}${versionId === undefined ? '' : `?versionId=${strictEncode(versionId)}`}`;
}

/** encodeURIComponent plus the five characters it leaves alone (RFC 3986 unreserved only). */
function strictEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
