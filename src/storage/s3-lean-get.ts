import { createHash, createHmac } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { PutObjectCommandInput } from '@aws-sdk/client-s3';
import { parseXml, type XmlElement } from './xml.js';

/**
 * The S3 requests of a backup, a restore and a lock, without the SDK: GetObject, ListObjectsV2,
 * PutObject of a Buffer, DeleteObject and GetBucketVersioning. A backup reads one object per
 * small file, and the SDK spent ~1 ms of CPU on each (endpoint rules, schema (de)serialization,
 * retry and logging middleware: a third of a seed backup's CPU on a shared 2-core machine);
 * this path signs with SigV4 and parses the response headers itself, ~0.1 ms. A listing page is
 * read by a small strict XML reader (xml.ts) instead of the SDK's parser and schema walker
 * (~25 us a key). A command that needs nothing else never loads the SDK (~0.1 s; see S3Store).
 * Everything else (version listings, multipart, tags, retention) stays on the SDK. Errors come
 * out shaped like SDK errors (`name`/`Code`, `$metadata.httpStatusCode`, `$response.headers`)
 * so `toStorageError` maps them the same way.
 */

/** Where and how to reach one bucket. */
export interface LeanTarget {
  /** `http(s)://host[:port]` of the server (parsed once: every request uses it). */
  origin: URL;
  /** Path-style (`/bucket/key`) or virtual-hosted (`bucket.host/key`, origin already has the bucket). */
  pathStyle: boolean;
  bucket: string;
  region: string;
  credentials: () => Promise<Credentials>;
  agent: http.Agent;
  connectTimeoutMs: number;
  socketTimeoutMs: number;
  /** The time requests are signed with; corrected from the server's `Date` when it says we are skewed. */
  clock: SigningClock;
}

/**
 * This host's clock as the server sees it: `base()` (Date.now, or a test's clock) plus the
 * offset learnt from the last answer that said the signature's time was too far off. The SDK
 * keeps the same (`systemClockOffset`); S3 refuses a request signed more than 15 minutes off.
 */
export interface SigningClock {
  base: () => number;
  offsetMs: number;
}

/** A skew below this is left alone (the SDK's threshold): S3 allows 15 minutes. */
const SKEW_CORRECTION_MS = 5 * 60_000;

/**
 * After an error answer: when the server's `Date` is more than 5 minutes from our signing
 * clock and the server said the time was wrong (RequestTimeTooSkewed, or a bare 403, as a HEAD
 * or a proxy answers), adopt the server's time and report true (the request is worth one more
 * try). The SDK does the same in its signer's error handler.
 */
export function correctClockSkew(clock: SigningClock, code: string, status: number, dateHeader: string | undefined): boolean {
  if (code !== 'RequestTimeTooSkewed' && !(status === 403 && code === 'Forbidden')) return false;
  const server = dateHeader === undefined ? NaN : Date.parse(dateHeader);
  if (Number.isNaN(server)) return false;
  const ours = clock.base() + clock.offsetMs;
  if (Math.abs(server - ours) < SKEW_CORRECTION_MS) return false;
  clock.offsetMs = server - clock.base();
  return true;
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

/** The fields of a GetObject answer S3Store reads, named as the SDK names them. */
export interface LeanGetOutput {
  Body: IncomingMessage;
  ContentLength?: number;
  ContentRange?: string;
  ETag?: string;
  LastModified?: Date;
  VersionId?: string;
  ContentType?: string;
  ContentEncoding?: string;
  CacheControl?: string;
  ContentDisposition?: string;
  Metadata: Record<string, string>;
  StorageClass?: string;
  TagCount?: number;
  ServerSideEncryption?: string;
  SSECustomerAlgorithm?: string;
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const MAX_ERROR_BODY = 64 * 1024;

export async function leanGetObject(
  t: LeanTarget,
  key: string,
  opts: { versionId?: string; range?: { start: number; end: number }; signal?: AbortSignal },
): Promise<LeanGetOutput> {
  const res = await signedRequest(t, 'GET', key, opts.versionId === undefined ? {} : { versionId: opts.versionId }, {}, null, opts.range ? { range: `bytes=${opts.range.start}-${opts.range.end}` } : {}, opts.signal);
  return toOutput(res);
}

/** One page of ListObjectsV2 (EncodingType=url: keys come URL-encoded), named as the SDK names it. */
export interface LeanListOutput {
  Contents: { Key: string; LastModified: Date; ETag: string; Size: number; StorageClass?: string }[];
  CommonPrefixes: { Prefix: string }[];
  IsTruncated: boolean;
  NextContinuationToken?: string;
}

export async function leanListObjectsV2(
  t: LeanTarget,
  opts: { prefix: string; maxKeys: number; delimiter?: string; startAfter?: string; continuationToken?: string; signal?: AbortSignal },
): Promise<LeanListOutput> {
  const query: Record<string, string> = { 'list-type': '2', prefix: opts.prefix, 'max-keys': String(opts.maxKeys), 'encoding-type': 'url' };
  if (opts.delimiter !== undefined) query.delimiter = opts.delimiter;
  if (opts.startAfter !== undefined) query['start-after'] = opts.startAfter;
  if (opts.continuationToken !== undefined) query['continuation-token'] = opts.continuationToken;
  return parseListV2(await readText(await signedRequest(t, 'GET', null, query, {}, null, {}, opts.signal)));
}

/**
 * Parses a ListBucketResult strictly: a body cut off or damaged in flight must fail (and be
 * requested again), never read as a shorter page. Beyond well-formed XML, every entry needs a
 * key, a valid date and a size, truncation must say true or false, and KeyCount (when the
 * server sends it) must match what was read.
 */
export function parseListV2(xml: string): LeanListOutput {
  const root = parseXml(xml);
  if (root.name !== 'ListBucketResult') throw listError(`the root element is <${root.name}>, not <ListBucketResult>`);
  const out: LeanListOutput = { Contents: [], CommonPrefixes: [], IsTruncated: false };
  let truncated: string | undefined;
  let keyCount: string | undefined;
  for (const el of root.children) {
    switch (el.name) {
      case 'IsTruncated':
        truncated = el.text;
        break;
      case 'NextContinuationToken':
        out.NextContinuationToken = el.text;
        break;
      case 'KeyCount':
        keyCount = el.text;
        break;
      case 'Contents':
        out.Contents.push(listEntry(el));
        break;
      case 'CommonPrefixes': {
        const prefix = child(el, 'Prefix');
        if (prefix === undefined || prefix === '') throw listError('a common prefix without a Prefix');
        out.CommonPrefixes.push({ Prefix: prefix });
        break;
      }
    }
  }
  if (truncated !== 'true' && truncated !== 'false') throw listError(`IsTruncated is ${JSON.stringify(truncated)}`);
  out.IsTruncated = truncated === 'true';
  if (out.IsTruncated && !out.NextContinuationToken) throw listError('a truncated page without a NextContinuationToken');
  if (keyCount !== undefined && keyCount !== String(out.Contents.length + out.CommonPrefixes.length)) {
    throw listError(`KeyCount is ${keyCount} but the page holds ${out.Contents.length + out.CommonPrefixes.length} entries`);
  }
  return out;
}

function listEntry(el: XmlElement): LeanListOutput['Contents'][number] {
  const key = child(el, 'Key');
  const modified = child(el, 'LastModified');
  const size = child(el, 'Size');
  if (key === undefined || key === '') throw listError('an entry without a Key');
  const lastModified = new Date(modified ?? NaN);
  if (Number.isNaN(lastModified.getTime())) throw listError(`${key}: LastModified is ${JSON.stringify(modified)}`);
  if (size === undefined || !/^\d+$/.test(size)) throw listError(`${key}: Size is ${JSON.stringify(size)}`);
  const entry: LeanListOutput['Contents'][number] = { Key: key, LastModified: lastModified, ETag: child(el, 'ETag') ?? '', Size: Number(size) };
  const storageClass = child(el, 'StorageClass');
  if (storageClass !== undefined) entry.StorageClass = storageClass;
  return entry;
}

function child(el: XmlElement, name: string): string | undefined {
  return el.children.find((c) => c.name === name)?.text;
}

function listError(what: string): Error {
  return new Error(`XML parse error: ListBucketResult: ${what}`);
}

/** A whole (small) answer body as text. */
async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * One signed request, of `key` or of the bucket itself when null. `signed` headers (lower-case
 * names) are covered by the signature, and so is the body (its SHA-256, as the SDK signs a Buffer
 * body); resolves once a 2xx answer's headers arrive, else rejects with an SDK-shaped error.
 */
async function signedRequest(
  t: LeanTarget,
  method: 'GET' | 'PUT' | 'DELETE',
  key: string | null,
  params: Record<string, string>,
  signed: Record<string, string>,
  body: Buffer | null,
  unsigned: Record<string, string>,
  signal: AbortSignal | undefined,
): Promise<IncomingMessage> {
  const url = t.origin;
  const path = (t.pathStyle ? `/${uriEncode(t.bucket, false)}/` : '/') + (key === null ? '' : uriEncode(key, true));
  const query = Object.keys(params)
    .sort()
    .map((k) => `${uriEncode(k, false)}=${uriEncode(params[k]!, false)}`)
    .join('&');
  const headers: Record<string, string> = {
    ...signed,
    host: url.host,
    'x-amz-content-sha256': body === null || body.length === 0 ? EMPTY_SHA256 : createHash('sha256').update(body).digest('hex'),
    'x-amz-date': amzDate(new Date(t.clock.base() + t.clock.offsetMs)),
  };
  const creds = await t.credentials();
  if (creds.sessionToken) headers['x-amz-security-token'] = creds.sessionToken;
  headers.authorization = signV4({ method, path, query, headers, region: t.region, service: 's3', credentials: creds });
  // Not signed: proxies may rewrite the user agent, and a range needs no protection.
  headers['user-agent'] = 'lakeguard';
  if (body !== null) headers['content-length'] = String(body.length);
  Object.assign(headers, unsigned);

  const res = await request(t, method, url, `${path}${query ? `?${query}` : ''}`, headers, body, signal);
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 299) {
    const err = await httpError(res, status);
    // Marked as the SDK marks it: S3Store's retry sends the request again, signed with the corrected time.
    if (correctClockSkew(t.clock, err.Code, status, header(res, 'date'))) err.$metadata.clockSkewCorrected = true;
    throw err;
  }
  return res;
}

/** What a PutObject of a Buffer sends besides the body: the SDK's input fields this path knows. */
export type LeanPutInput = Pick<
  PutObjectCommandInput,
  'ContentType' | 'ContentEncoding' | 'CacheControl' | 'ContentDisposition' | 'ServerSideEncryption' | 'SSEKMSKeyId' | 'ObjectLockMode' | 'ObjectLockRetainUntilDate' | 'IfNoneMatch'
> & { ContentMD5: string };

/** PutObject of a Buffer in one request; the answer's ETag and VersionId, named as the SDK names them. */
export async function leanPutObject(t: LeanTarget, key: string, body: Buffer, input: LeanPutInput, signal?: AbortSignal): Promise<{ ETag?: string; VersionId?: string }> {
  const h: Record<string, string> = { 'content-md5': input.ContentMD5 };
  const set = (name: string, value: string | undefined): void => {
    if (value !== undefined) h[name] = value;
  };
  set('content-type', input.ContentType);
  set('content-encoding', input.ContentEncoding);
  set('cache-control', input.CacheControl);
  set('content-disposition', input.ContentDisposition);
  set('x-amz-server-side-encryption', input.ServerSideEncryption);
  set('x-amz-server-side-encryption-aws-kms-key-id', input.SSEKMSKeyId);
  set('x-amz-object-lock-mode', input.ObjectLockMode);
  // As the SDK writes it: ISO 8601, whole seconds without '.000'.
  set('x-amz-object-lock-retain-until-date', input.ObjectLockRetainUntilDate?.toISOString().replace('.000Z', 'Z'));
  set('if-none-match', input.IfNoneMatch);
  const res = await signedRequest(t, 'PUT', key, {}, h, body, {}, signal);
  res.resume();
  const out: { ETag?: string; VersionId?: string } = {};
  const etag = header(res, 'etag');
  if (etag !== undefined) out.ETag = etag;
  const versionId = header(res, 'x-amz-version-id');
  if (versionId !== undefined) out.VersionId = versionId;
  return out;
}

/** DeleteObject (of one version when given). */
export async function leanDeleteObject(t: LeanTarget, key: string, versionId: string | undefined, signal?: AbortSignal): Promise<void> {
  const res = await signedRequest(t, 'DELETE', key, versionId === undefined ? {} : { versionId }, {}, null, {}, signal);
  res.resume();
}

/** GetBucketVersioning: the bucket's versioning Status ('Enabled', 'Suspended', or undefined when never set). */
export async function leanGetBucketVersioning(t: LeanTarget, signal?: AbortSignal): Promise<{ Status?: string }> {
  const root = parseXml(await readText(await signedRequest(t, 'GET', null, { versioning: '' }, {}, null, {}, signal)));
  if (root.name !== 'VersioningConfiguration') throw new Error(`XML parse error: the root element is <${root.name}>, not <VersioningConfiguration>`);
  const status = child(root, 'Status');
  return status === undefined ? {} : { Status: status };
}

function request(
  t: LeanTarget,
  method: string,
  url: URL,
  path: string,
  headers: Record<string, string>,
  body: Buffer | null,
  signal: AbortSignal | undefined,
): Promise<IncomingMessage> {
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      { protocol: url.protocol, hostname: url.hostname, port: url.port || undefined, method, path, headers, agent: t.agent, ...(signal ? { signal } : {}) },
      resolve,
    );
    // A new connection gets connectTimeoutMs to open; after that the socket's idle timeout
    // covers an answer or a body that stops flowing (also while the caller is not reading it).
    req.on('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => req.destroy(Object.assign(timeoutError(`could not connect within ${t.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' })), t.connectTimeoutMs);
      socket.once('connect', () => clearTimeout(timer));
      req.once('close', () => clearTimeout(timer));
    });
    req.setTimeout(t.socketTimeoutMs, () => req.destroy(timeoutError(`no data for ${t.socketTimeoutMs} ms`)));
    req.on('error', reject);
    if (body === null) req.end();
    else req.end(body);
  });
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: 'TimeoutError' });
}

/** An error response: `Code` and `Message` from its XML body (HEAD-like answers have none). */
async function httpError(res: IncomingMessage, status: number): Promise<Error & { Code: string; $metadata: { httpStatusCode: number; requestId: string | undefined; clockSkewCorrected?: boolean } }> {
  let body = '';
  try {
    for await (const chunk of res) {
      if (body.length < MAX_ERROR_BODY) body += (chunk as Buffer).toString('utf8');
    }
  } catch {
    // A body cut off: the status still tells what happened.
  }
  const code = xmlText(body, 'Code') ?? defaultCode(status);
  const message = xmlText(body, 'Message') ?? `${code} (HTTP ${status})`;
  return Object.assign(new Error(message), {
    name: code,
    Code: code,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId: header(res, 'x-amz-request-id') },
    $response: { statusCode: status, headers: res.headers },
  });
}

function defaultCode(status: number): string {
  if (status === 404) return 'NotFound';
  if (status === 403) return 'Forbidden';
  if (status === 301) return 'PermanentRedirect';
  return `Http${status}`;
}

const TAG_PATTERNS = new Map<string, RegExp>();
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function xmlText(xml: string, tag: string): string | undefined {
  let re = TAG_PATTERNS.get(tag);
  if (re === undefined) TAG_PATTERNS.set(tag, (re = new RegExp(`<${tag}>([^<]*)</${tag}>`)));
  const text = re.exec(xml)?.[1];
  if (text === undefined || !text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : ENTITIES[e]!,
  );
}

function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function toOutput(res: IncomingMessage): LeanGetOutput {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) {
    if (k.startsWith('x-amz-meta-') && v !== undefined) metadata[k.slice(11)] = Array.isArray(v) ? v.join(',') : v;
  }
  const out: LeanGetOutput = { Body: res, Metadata: metadata };
  const str = (name: string): string | undefined => header(res, name);
  const length = str('content-length');
  if (length !== undefined) out.ContentLength = Number(length);
  const set = <K extends keyof LeanGetOutput>(field: K, value: LeanGetOutput[K] | undefined): void => {
    if (value !== undefined) out[field] = value;
  };
  set('ContentRange', str('content-range'));
  set('ETag', str('etag'));
  const modified = str('last-modified');
  if (modified !== undefined) out.LastModified = new Date(modified);
  set('VersionId', str('x-amz-version-id'));
  set('ContentType', str('content-type'));
  set('ContentEncoding', str('content-encoding'));
  set('CacheControl', str('cache-control'));
  set('ContentDisposition', str('content-disposition'));
  set('StorageClass', str('x-amz-storage-class'));
  const tags = str('x-amz-tagging-count');
  if (tags !== undefined) out.TagCount = Number(tags);
  set('ServerSideEncryption', str('x-amz-server-side-encryption'));
  set('SSECustomerAlgorithm', str('x-amz-server-side-encryption-customer-algorithm'));
  return out;
}

// ------------------------------------------------------------------------------ SigV4

/** `20261123T163000Z` */
export function amzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** RFC 3986 encoding as SigV4 wants it (everything but A-Z a-z 0-9 - _ . ~; '/' kept in paths). */
export function uriEncode(s: string, keepSlash: boolean): string {
  const enc = encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return keepSlash ? enc.replace(/%2F/g, '/') : enc;
}

const signingKeys = new Map<string, Buffer>();

/**
 * The Authorization header of a request: `headers` are all signed (lower-case names; the body's
 * SHA-256 in x-amz-content-sha256, an empty body's when absent); `path` and `query` are already
 * URI-encoded (S3 paths are not normalized or double-encoded).
 */
export function signV4(req: {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  region: string;
  service: string;
  credentials: Credentials;
}): string {
  const names = Object.keys(req.headers).map((n) => n.toLowerCase()).sort();
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) lower[k.toLowerCase()] = v.trim().replace(/\s+/g, ' ');
  const date = lower['x-amz-date']!;
  const day = date.slice(0, 8);
  const canonicalQuery = req.query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => (p.includes('=') ? p.split('=', 2) : [p, '']) as [string, string])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonical = [req.method, req.path, canonicalQuery, names.map((n) => `${n}:${lower[n]}\n`).join(''), names.join(';'), lower['x-amz-content-sha256'] ?? EMPTY_SHA256].join('\n');
  const scope = `${day}/${req.region}/${req.service}/aws4_request`;
  const toSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
  const cacheKey = `${req.credentials.accessKeyId}\n${req.credentials.secretAccessKey}\n${scope}`;
  let signingKey = signingKeys.get(cacheKey);
  if (signingKey === undefined) {
    const hmac = (k: string | Buffer, data: string): Buffer => createHmac('sha256', k).update(data).digest();
    signingKey = hmac(hmac(hmac(hmac(`AWS4${req.credentials.secretAccessKey}`, day), req.region), req.service), 'aws4_request');
    if (signingKeys.size > 16) signingKeys.clear();
    signingKeys.set(cacheKey, signingKey);
  }
  const signature = createHmac('sha256', signingKey).update(toSign).digest('hex');
  return `AWS4-HMAC-SHA256 Credential=${req.credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
}
