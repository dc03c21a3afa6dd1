import { createHash, createHmac } from 'node:crypto';

// AWS Signature Version 4 as S3 wants it: paths are neither normalized nor encoded twice, and
// the payload's SHA-256 is what x-amz-content-sha256 says. Tested against the AWS SigV4 test
// suite (test/fixtures/sigv4/).

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

/** SHA-256 of an empty payload. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** `20261123T163000Z` */
export function amzDate(d: Date): string {
  return amzDateAt(d.getTime());
}

// Every request signs its time: within one second the string is the last one's.
let lastSecond = NaN;
let lastAmzDate = '';

/** `amzDate` of a time in milliseconds since the epoch. */
export function amzDateAt(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    lastAmzDate = new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    lastSecond = second;
  }
  return lastAmzDate;
}

/** RFC 3986 encoding as SigV4 wants it (everything but A-Z a-z 0-9 - _ . ~; '/' kept in paths). */
export function uriEncode(s: string, keepSlash: boolean): string {
  let enc = encodeURIComponent(s);
  // encodeURIComponent keeps these five; most keys have none (nor a '/' to keep): no replace then.
  if (RESERVED.test(enc)) enc = enc.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return keepSlash && enc.includes('%2F') ? enc.replace(/%2F/g, '/') : enc;
}

const RESERVED = /[!'()*]/;
/** A header value SigV4 must rewrite: white space other than single spaces (leading/trailing ones are trimmed). */
const COLLAPSIBLE = /[^\S ]| {2}/;

/** One request to sign. */
export interface SigV4Request {
  method: string;
  /** The URI-encoded path, as sent (S3: not normalized, not encoded twice). */
  path: string;
  /** The URI-encoded query string, as sent, in any order ('' for none). */
  query: string;
  /** Every header to sign (names in any case); must hold x-amz-date. */
  headers: Record<string, string>;
  region: string;
  service: string;
  credentials: Credentials;
  /** Hex SHA-256 of the payload; default: the x-amz-content-sha256 header, else an empty payload's. */
  payloadHash?: string;
  /** The request's `20261123T163000Z` when it is no header (a presigned URL's X-Amz-Date); default: x-amz-date. */
  date?: string;
}

/** The steps of a signature, each as AWS's test suite states it. */
export interface SigV4Parts {
  canonicalRequest: string;
  stringToSign: string;
  signature: string;
  /** The Authorization header. */
  authorization: string;
}

// Signing keys change once a day per region and service: derive each once (4 HMACs a request saved).
const signingKeys = new Map<string, Buffer>();

/** The Authorization header of a request (see `sigV4Parts`). */
export function signV4(req: SigV4Request): string {
  return sigV4Parts(req).authorization;
}

/**
 * Signs `req`: header values trimmed with inner runs of white space collapsed, headers sorted by
 * lower-case name, query parameters sorted by encoded name then value.
 */
export function sigV4Parts(req: SigV4Request): SigV4Parts {
  const lower: Record<string, string> = {};
  for (const k in req.headers) {
    const v = req.headers[k]!.trim();
    lower[k.toLowerCase()] = COLLAPSIBLE.test(v) ? v.replace(/\s+/g, ' ') : v;
  }
  const names = Object.keys(lower).sort();
  const date = req.date ?? lower['x-amz-date']!;
  const day = date.slice(0, 8);
  const canonicalQuery = req.query === '' ? '' : canonicalQueryOf(req.query);
  const payloadHash = req.payloadHash ?? lower['x-amz-content-sha256'] ?? EMPTY_SHA256;
  const canonicalRequest = [req.method, req.path, canonicalQuery, names.map((n) => `${n}:${lower[n]}\n`).join(''), names.join(';'), payloadHash].join('\n');
  const scope = `${day}/${req.region}/${req.service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${createHash('sha256').update(canonicalRequest).digest('hex')}`;
  const cacheKey = `${req.credentials.accessKeyId}\n${req.credentials.secretAccessKey}\n${scope}`;
  let signingKey = signingKeys.get(cacheKey);
  if (signingKey === undefined) {
    const hmac = (k: string | Buffer, data: string): Buffer => createHmac('sha256', k).update(data).digest();
    signingKey = hmac(hmac(hmac(hmac(`AWS4${req.credentials.secretAccessKey}`, day), req.region), req.service), 'aws4_request');
    if (signingKeys.size > 16) signingKeys.clear();
    signingKeys.set(cacheKey, signingKey);
  }
  const signature = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  const authorization = `AWS4-HMAC-SHA256 Credential=${req.credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return { canonicalRequest, stringToSign, signature, authorization };
}

/** The query string with its parameters sorted by encoded name, then value. */
function canonicalQueryOf(query: string): string {
  return query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => (p.includes('=') ? p.split('=', 2) : [p, '']) as [string, string])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}
