/**
 * The listing requests of `lakeguard serve`: ListObjects (v1), ListObjectsV2 and
 * ListObjectVersions, read from the query as S3 does (max-keys capped at 1000, an opaque
 * continuation token, markers) and answered one page at a time from the view.
 */
import { S3Error, listObjectsV1Xml, listObjectsV2Xml, listVersionsXml, type ListEcho } from './s3-responses.js';
import type { ListObjectsPage, ServeView, ViewCut } from './view-types.js';

/** The most keys one page holds (S3's limit too). */
export const MAX_KEYS = 1000;
/** Marks lakeguard's continuation tokens (base64url of this and where the next page starts). */
const TOKEN_PREFIX = 'lg1:';
/** The Owner ID in listings: this server has one (the serve credentials). */
export const OWNER_ID = 'lakeguard';

function maxKeysOf(query: ReadonlyMap<string, string>): number {
  const text = query.get('max-keys');
  if (text === undefined) return MAX_KEYS;
  if (!/^\d{1,10}$/.test(text)) throw new S3Error('InvalidArgument', 400, 'Provided max-keys not an integer or within integer range', { fields: { ArgumentName: 'max-keys', ArgumentValue: text } });
  return Math.min(Number(text), MAX_KEYS);
}

function echoOf(bucket: string, query: ReadonlyMap<string, string>): ListEcho {
  const encoding = query.get('encoding-type');
  if (encoding !== undefined && encoding !== 'url') {
    throw new S3Error('InvalidArgument', 400, 'Invalid Encoding Method specified in Request', { fields: { ArgumentName: 'encoding-type', ArgumentValue: encoding } });
  }
  const delimiter = query.get('delimiter');
  return {
    bucket,
    prefix: query.get('prefix') ?? '',
    // An empty delimiter rolls nothing up (S3 treats it as absent).
    ...(delimiter === undefined || delimiter === '' ? {} : { delimiter }),
    maxKeys: maxKeysOf(query),
    urlEncoded: encoding === 'url',
  };
}

/** An opaque token for where the next page starts. */
export function encodeToken(next: string): string {
  return Buffer.from(TOKEN_PREFIX + next, 'utf8').toString('base64url');
}

export function decodeToken(token: string): string {
  const text = /^[A-Za-z0-9_-]*$/.test(token) ? Buffer.from(token, 'base64url').toString('utf8') : '';
  if (!text.startsWith(TOKEN_PREFIX)) {
    throw new S3Error('InvalidArgument', 400, 'The continuation token provided is incorrect', { fields: { ArgumentName: 'continuation-token', ArgumentValue: token } });
  }
  return text.slice(TOKEN_PREFIX.length);
}

/** The last entry's key or common prefix: ListObjects v1's NextMarker. */
function lastName(page: ListObjectsPage): string | undefined {
  const last = page.entries.at(-1);
  return last === undefined ? undefined : last.type === 'object' ? last.key : last.prefix;
}

export function listObjectsV2(view: ServeView, bucket: string, at: ViewCut, query: ReadonlyMap<string, string>): string {
  const echo = echoOf(bucket, query);
  const token = query.get('continuation-token');
  const startAfter = query.get('start-after');
  // S3: a continuation token wins over start-after (which then only echoes).
  const after = token !== undefined ? decodeToken(token) : startAfter === '' ? undefined : startAfter;
  const page = view.listObjects({ bucket, at, prefix: echo.prefix, ...(echo.delimiter === undefined ? {} : { delimiter: echo.delimiter }), ...(after === undefined ? {} : { after }), maxKeys: echo.maxKeys });
  const next = page.truncated && page.next !== undefined ? encodeToken(page.next) : undefined;
  return listObjectsV2Xml({ ...echo, ...(token === undefined ? {} : { continuationToken: token }), ...(startAfter === undefined ? {} : { startAfter }) }, page, next);
}

/**
 * ListObjects v1. Its NextMarker is the last key or common prefix returned, as S3's (the view
 * resumes after every key below a common prefix given as the marker).
 */
export function listObjectsV1(view: ServeView, bucket: string, at: ViewCut, query: ReadonlyMap<string, string>): string {
  const echo = echoOf(bucket, query);
  const marker = query.get('marker') ?? '';
  const after = marker === '' ? undefined : marker;
  const page = view.listObjects({ bucket, at, prefix: echo.prefix, ...(echo.delimiter === undefined ? {} : { delimiter: echo.delimiter }), ...(after === undefined ? {} : { after }), maxKeys: echo.maxKeys });
  return listObjectsV1Xml({ ...echo, marker }, page, page.truncated ? lastName(page) : undefined);
}

export function listVersions(view: ServeView, bucket: string, at: ViewCut, query: ReadonlyMap<string, string>): string {
  const echo = echoOf(bucket, query);
  const keyMarker = query.get('key-marker') ?? '';
  const versionIdMarker = query.get('version-id-marker') ?? '';
  if (versionIdMarker !== '' && keyMarker === '') {
    throw new S3Error('InvalidArgument', 400, 'A version-id marker cannot be specified without a key marker.', { fields: { ArgumentName: 'version-id-marker', ArgumentValue: versionIdMarker } });
  }
  const afterKey = keyMarker === '' ? undefined : keyMarker;
  const page = view.listVersions({
    bucket,
    at,
    prefix: echo.prefix,
    ...(echo.delimiter === undefined ? {} : { delimiter: echo.delimiter }),
    ...(afterKey === undefined ? {} : { afterKey }),
    ...(versionIdMarker === '' ? {} : { afterVersion: versionIdMarker }),
    maxKeys: echo.maxKeys,
  });
  return listVersionsXml({ ...echo, keyMarker, versionIdMarker }, page, OWNER_ID);
}
