/**
 * The S3 REST API's XML bodies as `lakeguard serve` answers them: errors, ListBuckets,
 * ListObjects (v1 and v2, with encoding-type=url), ListObjectVersions, GetObjectTagging and
 * GetBucketLocation. Element names and order follow the S3 API reference, so that botocore,
 * the AWS SDKs and Hadoop's S3A parse them as they parse S3's own.
 */
import type { ListEntry, ListObjectsPage, ListVersionsPage, VersionEntry } from './view-types.js';
import { uriEncode } from '../storage/s3-sigv4.js';

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** A request S3 would refuse: its error code, HTTP status and message (the Error XML). */
export class S3Error extends Error {
  override name = 'S3Error';
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    /** More elements of the Error XML (Key, BucketName, ...) and response headers. */
    readonly extra: { fields?: Record<string, string>; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }
}

/**
 * Text for an XML element. Characters XML 1.0 cannot hold (control characters other than tab,
 * CR, LF, and U+FFFE/FFFF) are written as character references, as S3 does; clients that must
 * read such keys ask for encoding-type=url.
 */
export function xmlText(s: string): string {
  return s.replace(/[&<>"']|[^\t\n\r -\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&apos;';
      default:
        return `&#x${c.codePointAt(0)!.toString(16)};`;
    }
  });
}

function el(name: string, value: string | number | boolean | undefined | null): string {
  return value === undefined || value === null ? '' : `<${name}>${xmlText(String(value))}</${name}>`;
}

/** S3's timestamp form in listings: `2026-12-01T10:00:00.000Z`. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** An ETag as S3 writes it: in double quotes. */
export function quotedEtag(etag: string): string {
  return `"${etag}"`;
}

export function errorXml(err: S3Error, resource: string, requestId: string): string {
  const fields = Object.entries(err.extra.fields ?? {})
    .map(([name, value]) => el(name, value))
    .join('');
  return `${DECLARATION}<Error>${el('Code', err.code)}${el('Message', err.message)}${fields}${el('Resource', resource)}${el('RequestId', requestId)}</Error>`;
}

export function listBucketsXml(buckets: readonly string[], created: number, ownerId: string): string {
  const items = buckets.map((b) => `<Bucket>${el('Name', b)}${el('CreationDate', isoTime(created))}</Bucket>`).join('');
  return `${DECLARATION}<ListAllMyBucketsResult xmlns="${XMLNS}"><Owner>${el('ID', ownerId)}${el('DisplayName', 'lakeguard')}</Owner><Buckets>${items}</Buckets></ListAllMyBucketsResult>`;
}

/** `<LocationConstraint/>` empty: us-east-1, the region every signing client can use here. */
export function locationXml(): string {
  return `${DECLARATION}<LocationConstraint xmlns="${XMLNS}"/>`;
}

export function taggingXml(tags: Record<string, string>): string {
  const items = Object.entries(tags)
    .map(([k, v]) => `<Tag>${el('Key', k)}${el('Value', v)}</Tag>`)
    .join('');
  return `${DECLARATION}<Tagging xmlns="${XMLNS}"><TagSet>${items}</TagSet></Tagging>`;
}

/** With encoding-type=url, key-like values are URL-encoded ('/' kept; '+' and ' ' encoded, so botocore's unquote_plus reads them back). */
function keyCoder(urlEncoded: boolean): (s: string) => string {
  return urlEncoded ? (s) => uriEncode(s, true) : (s) => s;
}

function objectXml(entry: Extract<ListEntry, { type: 'object' }>, key: (s: string) => string): string {
  return (
    `<Contents>${el('Key', key(entry.key))}${el('LastModified', isoTime(entry.lastModified))}${el('ETag', entry.etag === null ? null : quotedEtag(entry.etag))}` +
    `${el('Size', entry.size)}${el('StorageClass', entry.storageClass ?? 'STANDARD')}</Contents>`
  );
}

function prefixesXml(prefixes: readonly string[], key: (s: string) => string): string {
  return prefixes.map((p) => `<CommonPrefixes>${el('Prefix', key(p))}</CommonPrefixes>`).join('');
}

/** What a ListObjects request asked for, echoed in its answer. */
export interface ListEcho {
  bucket: string;
  prefix: string;
  delimiter?: string;
  maxKeys: number;
  urlEncoded: boolean;
}

function entriesXml(page: ListObjectsPage, key: (s: string) => string): string {
  const objects = page.entries.flatMap((e) => (e.type === 'object' ? [objectXml(e, key)] : [])).join('');
  return objects + prefixesXml(page.entries.flatMap((e) => (e.type === 'prefix' ? [e.prefix] : [])), key);
}

function echoXml(q: ListEcho, key: (s: string) => string): string {
  return `${el('Name', q.bucket)}${el('Prefix', key(q.prefix))}${q.delimiter === undefined ? '' : el('Delimiter', key(q.delimiter))}${el('MaxKeys', q.maxKeys)}${q.urlEncoded ? el('EncodingType', 'url') : ''}`;
}

export function listObjectsV2Xml(
  q: ListEcho & { continuationToken?: string; startAfter?: string },
  page: ListObjectsPage,
  nextToken: string | undefined,
): string {
  const key = keyCoder(q.urlEncoded);
  return (
    `${DECLARATION}<ListBucketResult xmlns="${XMLNS}">${echoXml(q, key)}${el('KeyCount', page.entries.length)}${el('IsTruncated', page.truncated)}` +
    `${el('ContinuationToken', q.continuationToken)}${el('NextContinuationToken', nextToken)}${q.startAfter === undefined ? '' : el('StartAfter', key(q.startAfter))}` +
    `${entriesXml(page, key)}</ListBucketResult>`
  );
}

export function listObjectsV1Xml(q: ListEcho & { marker: string }, page: ListObjectsPage, nextMarker: string | undefined): string {
  const key = keyCoder(q.urlEncoded);
  return (
    `${DECLARATION}<ListBucketResult xmlns="${XMLNS}">${echoXml(q, key)}${el('Marker', key(q.marker))}${el('IsTruncated', page.truncated)}` +
    `${nextMarker === undefined ? '' : el('NextMarker', key(nextMarker))}${entriesXml(page, key)}</ListBucketResult>`
  );
}

function versionXml(v: VersionEntry, key: (s: string) => string, ownerId: string): string {
  const common = `${el('Key', key(v.key))}${el('VersionId', v.versionId ?? 'null')}${el('IsLatest', v.isLatest)}${el('LastModified', isoTime(v.lastModified))}`;
  const owner = `<Owner>${el('ID', ownerId)}${el('DisplayName', 'lakeguard')}</Owner>`;
  if (v.deleteMarker) return `<DeleteMarker>${common}${owner}</DeleteMarker>`;
  return `<Version>${common}${el('ETag', v.etag === null ? null : quotedEtag(v.etag))}${el('Size', v.size)}${el('StorageClass', v.storageClass ?? 'STANDARD')}${owner}</Version>`;
}

export function listVersionsXml(q: ListEcho & { keyMarker: string; versionIdMarker: string }, page: ListVersionsPage, ownerId: string): string {
  const key = keyCoder(q.urlEncoded);
  return (
    `${DECLARATION}<ListVersionsResult xmlns="${XMLNS}">${echoXml(q, key)}${el('KeyMarker', key(q.keyMarker))}${el('VersionIdMarker', q.versionIdMarker)}` +
    `${el('IsTruncated', page.truncated)}${page.nextKey === undefined ? '' : el('NextKeyMarker', key(page.nextKey))}${el('NextVersionIdMarker', page.nextVersion)}` +
    `${page.versions.map((v) => versionXml(v, key, ownerId)).join('')}${prefixesXml(page.commonPrefixes, key)}</ListVersionsResult>`
  );
}
