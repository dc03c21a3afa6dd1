/**
 * GetObject and HeadObject of `lakeguard serve`: the object's headers as S3 sends them,
 * conditional requests (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, in
 * RFC 9110's order, as S3 applies them), one byte range (206, or 416 when unsatisfiable), and
 * the content streamed from the view with backpressure.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { S3Error, quotedEtag } from './s3-responses.js';
import type { ByteRange, ObjectHead } from './view-types.js';

/** Query parameters that override a GET's response headers (presigned download links use them). */
const RESPONSE_OVERRIDES: Record<string, string> = {
  'response-content-type': 'content-type',
  'response-content-language': 'content-language',
  'response-expires': 'expires',
  'response-cache-control': 'cache-control',
  'response-content-disposition': 'content-disposition',
  'response-content-encoding': 'content-encoding',
};

/** What to answer for an object: 200/206 with a body (or none for HEAD), 304, or an error. */
export type ObjectAnswer = { status: 200 | 206 | 304; headers: Record<string, string>; range?: ByteRange };

/**
 * A header value as HTTP can carry it: printable ASCII as it is, anything else (user metadata
 * in another script, a stray control character) RFC 2047-encoded as S3 does.
 */
export function headerValue(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** The headers every answer about this object carries (HEAD, GET, 304). */
export function objectHeaders(head: ObjectHead): Record<string, string> {
  const h: Record<string, string> = {
    'last-modified': new Date(head.lastModified).toUTCString(),
    'accept-ranges': 'bytes',
    'content-type': headerValue(head.contentType ?? 'binary/octet-stream'),
  };
  if (head.etag !== null) h.etag = quotedEtag(head.etag);
  if (head.versionId !== null) h['x-amz-version-id'] = head.versionId;
  if (head.contentEncoding !== undefined) h['content-encoding'] = headerValue(head.contentEncoding);
  if (head.cacheControl !== undefined) h['cache-control'] = headerValue(head.cacheControl);
  if (head.contentDisposition !== undefined) h['content-disposition'] = headerValue(head.contentDisposition);
  if (head.storageClass !== null && head.storageClass !== 'STANDARD') h['x-amz-storage-class'] = head.storageClass;
  const tagCount = Object.keys(head.tags).length;
  if (tagCount > 0) h['x-amz-tagging-count'] = String(tagCount);
  for (const [name, value] of Object.entries(head.metadata)) {
    // A name HTTP cannot carry is left out, as S3 reports it: x-amz-missing-meta counts them.
    if (/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) h[`x-amz-meta-${name}`] = headerValue(value);
    else h['x-amz-missing-meta'] = String(Number(h['x-amz-missing-meta'] ?? 0) + 1);
  }
  return h;
}

/** ETags of an If-Match / If-None-Match list (quotes and W/ removed; `*` kept). */
function etagList(header: string): string[] {
  return header.split(',').map((t) => t.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1'));
}

function matches(header: string, etag: string | null): boolean {
  return etagList(header).some((t) => t === '*' || (etag !== null && t === etag));
}

/** An HTTP date in whole seconds; undefined when absent or unreadable (then ignored, as HTTP says). */
function httpDate(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const ms = Date.parse(header);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * The conditional headers' verdict: 412 PreconditionFailed (an error), 304 Not Modified, or
 * null to answer normally. If-Match decides before If-Unmodified-Since (which it then
 * overrides), If-None-Match before If-Modified-Since.
 */
export function checkConditions(headers: IncomingHttpHeaders, head: ObjectHead): 304 | null {
  const modifiedSecond = Math.floor(head.lastModified / 1000) * 1000;
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    if (!matches(ifMatch, head.etag)) throw new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold', { fields: { Condition: 'If-Match' } });
  } else {
    const since = httpDate(headers['if-unmodified-since']);
    if (since !== undefined && modifiedSecond > since) {
      throw new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold', { fields: { Condition: 'If-Unmodified-Since' } });
    }
  }
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) return matches(ifNoneMatch, head.etag) ? 304 : null;
  const since = httpDate(headers['if-modified-since']);
  return since !== undefined && modifiedSecond <= since ? 304 : null;
}

/**
 * The one range of a Range header, within `size`: undefined for none (or a form this server
 * does not serve, such as several ranges: the whole object is sent, as HTTP allows); a range
 * that starts past the end is 416 InvalidRange.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (m === null || (m[1] === '' && m[2] === '')) return undefined;
  const unsatisfiable = (): never => {
    throw new S3Error('InvalidRange', 416, 'The requested range is not satisfiable', {
      fields: { RangeRequested: header, ActualObjectSize: String(size) },
      headers: { 'content-range': `bytes */${size}` },
    });
  };
  if (m[1] === '') {
    // A suffix: the last n bytes.
    const n = Number(m[2]);
    if (n === 0 || size === 0) return unsatisfiable();
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined; // invalid: ignored, as HTTP says
  if (start >= size) return unsatisfiable();
  return { start, end };
}

function firstValue(header: string | string[] | undefined): string | undefined {
  return Array.isArray(header) ? header[0] : header;
}

/** Whether an If-Range validator (a strong ETag, or an HTTP date) still names this object; true without one. */
function ifRangeHolds(header: string | undefined, head: ObjectHead): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return !value.startsWith('W/') && head.etag !== null && value === quotedEtag(head.etag);
  const date = httpDate(value);
  return date !== undefined && Math.floor(head.lastModified / 1000) * 1000 === date;
}

/** The status, headers and range of a GET or HEAD of `head`; throws S3Error for 412 and 416. */
export function answerObject(headers: IncomingHttpHeaders, query: ReadonlyMap<string, string>, head: ObjectHead, isGet: boolean): ObjectAnswer {
  const base = objectHeaders(head);
  if (checkConditions(headers, head) === 304) {
    // A 304 carries the validators and caching headers, not the content's.
    const { 'content-type': _type, 'content-encoding': _encoding, 'content-disposition': _disposition, ...rest } = base;
    return { status: 304, headers: rest };
  }
  if (isGet) {
    for (const [param, name] of Object.entries(RESPONSE_OVERRIDES)) {
      const value = query.get(param);
      if (value !== undefined) base[name] = headerValue(value);
    }
  }
  // If-Range: the range only while the object is still the one the client has part of.
  const range = ifRangeHolds(firstValue(headers['if-range']), head) ? parseRange(headers.range, head.size) : undefined;
  if (range === undefined) return { status: 200, headers: { ...base, 'content-length': String(head.size) } };
  return {
    status: 206,
    headers: { ...base, 'content-length': String(range.end - range.start + 1), 'content-range': `bytes ${range.start}-${range.end}/${head.size}` },
    range,
  };
}
