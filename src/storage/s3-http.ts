import { createHash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { EMPTY_SHA256, amzDateAt, signV4, uriEncode, type Credentials } from './s3-sigv4.js';
import { S3RequestError } from './s3-transport.js';

// One signed S3 request over node:http, for the lean transport (s3-lean-transport.ts): the
// connection and idle timeouts, the error answer as an S3RequestError, and the clock-skew
// correction the SDK's signer does too.

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
const MAX_ERROR_BODY = 64 * 1024;

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

/**
 * One signed request, of `key` or of the bucket itself when null. `signed` headers (lower-case
 * names) are covered by the signature, and so is the body (its SHA-256, as the SDK signs a Buffer
 * body); resolves once a 2xx answer's headers arrive, else rejects with an S3RequestError.
 */
export async function signedRequest(
  t: LeanTarget,
  method: 'GET' | 'HEAD' | 'PUT' | 'DELETE',
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
    'x-amz-date': amzDateAt(t.clock.base() + t.clock.offsetMs),
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
  if (status < 200 || status > 299) throw await httpError(res, status, t.clock);
  return res;
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
  // An object, not node's raw [name, value, ...] array: with the array a PUT without a body (a
  // server-side copy) went out chunked and RGW answered 501 NotImplemented.
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
    req.on('error', (err) => reject(S3RequestError.fromSystemError(err)));
    if (body === null) req.end();
    else req.end(body);
  });
}

/** The error a request (or the read of its body) fails with when its socket stays idle. */
function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: 'TimeoutError' });
}

/** An error answer: `Code` and `Message` from its XML body (HEAD-like answers have none). */
async function httpError(res: IncomingMessage, status: number, clock: SigningClock): Promise<S3RequestError> {
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
  return new S3RequestError(message, {
    status,
    code,
    requestId: header(res, 'x-amz-request-id'),
    retryAfter: header(res, 'retry-after'),
    deleteMarker: header(res, 'x-amz-delete-marker') === 'true',
    // S3Store's retry sends the request again, signed with the corrected time.
    clockSkewCorrected: correctClockSkew(clock, code, status, header(res, 'date')),
  });
}

/** The code of an answer without an error body (HEAD, some proxies), as the SDK names it. */
function defaultCode(status: number): string {
  if (status === 404) return 'NotFound';
  if (status === 403) return 'Forbidden';
  if (status === 301) return 'PermanentRedirect';
  return `Http${status}`;
}

const TAG_PATTERNS = new Map<string, RegExp>();
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * The text of the first `<tag>` of an error body. Lenient on purpose: an error answer is an
 * error however damaged; only its code and message are read from it.
 */
export function xmlText(xml: string, tag: string): string | undefined {
  let re = TAG_PATTERNS.get(tag);
  if (re === undefined) TAG_PATTERNS.set(tag, (re = new RegExp(`<${tag}>([^<]*)</${tag}>`)));
  const text = re.exec(xml)?.[1];
  if (text === undefined || !text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : ENTITIES[e]!,
  );
}

export function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A whole (small) answer body as text. */
export async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of res) chunks.push(chunk as Buffer);
  } catch (err) {
    throw S3RequestError.fromSystemError(err);
  }
  return Buffer.concat(chunks).toString('utf8');
}
