import { StorageError, type StorageErrorCode } from '../errors.js';
import { S3MalformedResponseError, S3RequestError } from './s3-transport.js';

/** What a failed request was, for its message and hint. */
export interface S3ErrorContext {
  /** Operation as shown to the user: GET, HEAD, PUT, DELETE, LIST, LIST versions, ... */
  op: string;
  bucket: string;
  /** Full S3 key (including the store prefix), or the listed prefix. */
  key?: string;
  versionId?: string;
  /** The endpoint URL when a custom one is configured; shown for connection errors. */
  endpoint?: string;
  /** The IAM action the operation needs, named in AccessDenied hints (e.g. s3:GetObject). */
  action?: string;
  /** The idle timeout of one request, named when a request times out. */
  timeoutMs?: number;
}

/** `s3://bucket/key` (plus `?versionId=` when given), as shown in messages. */
export function s3Url(bucket: string, key = '', versionId?: string): string {
  return `s3://${bucket}/${key}${versionId === undefined ? '' : `?versionId=${versionId}`}`;
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

const THROTTLE_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequests',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'RequestTimeout',
  'RequestTimeoutException',
  'ServiceUnavailable',
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'PriorRequestNotComplete',
]);

const CREDENTIAL_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'CredentialsProviderError',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
]);

/**
 * Where a bucket's region is set. The store does not know whether its bucket is a source, the
 * repository or a restore target, and the bucket is named in the message, so the hint names
 * each place rather than guess (it used to name only the repository's, for a source too).
 */
const REGION_SETTINGS = 'repository.region for the repository, the source\'s region (or s3.region) for a source bucket or a restore target';

/** Longest wait a server's Retry-After may impose on one retry. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * Translate a failed S3 request (an S3RequestError or S3MalformedResponseError of either
 * transport, or a socket error met while a body streams, typed here first) into a StorageError,
 * decided once, by status and S3 code (never by message text): the normalized code (which the
 * retry loop and the engine act on), the raw S3 code (kept in `backendCode` for failure
 * records), a message naming the operation, the object and the S3 code, e.g.
 * `GET s3://raw-events/a/b.json: AccessDenied (403)`, and a hint where the next step is clear.
 * The error the transport met (the SDK's or the socket's) is kept as `cause`. S3 exceptions
 * never escape S3Store.
 */
export function toStorageError(err: unknown, ctx: S3ErrorContext): StorageError {
  if (err instanceof StorageError) return err;
  const where = `${ctx.op} ${s3Url(ctx.bucket, ctx.key, ctx.versionId)}`;
  const endpoint = ctx.endpoint ?? 'the S3 endpoint';
  // A response body that does not parse (cut off, or damaged in flight) is worth another try,
  // whatever its status (a listing that breaks off still came with 200 OK).
  if (err instanceof S3MalformedResponseError) {
    return new StorageError('Network', `${where}: the response from ${endpoint} could not be parsed (cut off or damaged): ${err.message.split('\n')[0]}`, {
      backendCode: 'MalformedResponse',
      cause: err,
    });
  }
  const e = S3RequestError.fromSystemError(err);
  const { status, code: s3Code } = e;
  const rawMessage = e.message;

  const make = (
    code: StorageErrorCode,
    backendCode: string,
    message: string,
    extra: { hint?: string; retryAfterMs?: number; retryable?: boolean } = {},
  ): StorageError =>
    new StorageError(code, message, {
      backendCode,
      // The error the request failed with as the transport met it (the SDK's, or the socket's).
      cause: e.cause ?? e,
      ...(extra.hint === undefined ? {} : { hint: extra.hint }),
      ...(extra.retryAfterMs === undefined ? {} : { retryAfterMs: extra.retryAfterMs }),
      ...(extra.retryable === undefined ? {} : { retryable: extra.retryable }),
    });

  // No answer: the connection failed, timed out or was aborted.
  if (status === undefined) {
    const sysCode = s3Code;
    if (sysCode === 'ECONNREFUSED') {
      return make('Network', sysCode, `${where}: ${endpoint} is not reachable: connection refused (ECONNREFUSED)`, {
        hint: `nothing is listening at ${endpoint}: check the endpoint URL, or start the S3 server`,
      });
    }
    if (sysCode === 'ENOTFOUND' || sysCode === 'EAI_AGAIN') {
      return make('Network', sysCode, `${where}: ${endpoint} is not reachable: its host name does not resolve (${sysCode})`, {
        hint: 'check the endpoint URL and DNS',
        retryable: sysCode === 'EAI_AGAIN',
      });
    }
    if (sysCode === 'ETIMEDOUT' || sysCode === 'ENETUNREACH' || sysCode === 'EHOSTUNREACH') {
      return make('Network', sysCode, `${where}: ${endpoint} is not reachable: ${rawMessage} (${sysCode})`, {
        hint: 'check the endpoint URL, the network path and any proxy or firewall',
      });
    }
    if (NETWORK_CODES.has(sysCode)) {
      return make('Network', sysCode, `${where}: the connection to ${endpoint} was lost: ${rawMessage} (${sysCode})`);
    }
    if (sysCode === 'TimeoutError' || sysCode === 'RequestTimeout') {
      const within = ctx.timeoutMs === undefined ? 'in time' : `within ${formatSeconds(ctx.timeoutMs)}`;
      return make('Network', 'TimeoutError', `no answer from ${endpoint} ${within} (${where})`, {
        hint: 'check the server (a full or overloaded cluster may accept connections and never answer), or raise --timeout',
      });
    }
    if (sysCode === 'AbortError') {
      return make('Other', 'AbortError', `${where}: aborted`, { retryable: false });
    }
    if (sysCode === 'CredentialsProviderError') {
      return make('InvalidCredentials', sysCode, `${where}: no AWS credentials found: ${rawMessage}`, {
        hint: 'check AWS credentials: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, or an instance role',
      });
    }
    if (sysCode === 'RegionMissing') {
      return make('Other', 'RegionMissing', `${where}: no AWS region configured`, {
        hint: `set AWS_REGION or a region in ~/.aws/config, or the region of ${ctx.bucket} in the policy: ${REGION_SETTINGS}`,
      });
    }
    return make('Other', sysCode, `${where}: ${sysCode === 'Error' ? '' : `${sysCode}: `}${rawMessage}`);
  }

  const label = `${s3Code} (${status})`;
  const detail = usefulDetail(rawMessage, s3Code);
  const msg = (extraText = ''): string => `${where}: ${label}${detail ? `: ${detail}` : ''}${extraText}`;

  if (s3Code === 'NoSuchBucket') {
    return make('NoSuchBucket', s3Code, `${where}: NoSuchBucket (${status}): bucket ${ctx.bucket} does not exist`, {
      hint: 'check the bucket name and the endpoint/region',
    });
  }
  // A delete marker answers 404 (latest) or 405 (by version id): the object is not there.
  if (s3Code === 'NoSuchKey' || s3Code === 'NoSuchVersion' || s3Code === 'NotFound' || status === 404 || (status === 405 && e.deleteMarker)) {
    const what = status === 405 ? 'the version is a delete marker' : '';
    return make('NotFound', status === 405 ? 'DeleteMarker' : s3Code, `${where}: ${label}${what ? `: ${what}` : detail ? `: ${detail}` : ''}`);
  }
  if (s3Code === 'InvalidObjectState') {
    return make('InvalidObjectState', s3Code, msg(), {
      hint: 'the object is archived (e.g. Glacier): restore it first, or exclude it from the policy',
    });
  }
  if (CREDENTIAL_CODES.has(s3Code)) {
    return make('InvalidCredentials', s3Code, msg(), {
      hint: 'check AWS credentials: the access key id and secret key (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials)',
    });
  }
  // The signer has adopted the server's time from this answer's Date (ours or the SDK's): one more try.
  const skewCorrected = e.clockSkewCorrected;
  if (s3Code === 'RequestTimeTooSkewed') {
    return make('Other', s3Code, msg(), { hint: 'the clock of this machine is off: synchronize it (NTP)', retryable: skewCorrected });
  }
  if (s3Code === 'AuthorizationHeaderMalformed' || s3Code === 'PermanentRedirect' || status === 301) {
    return make('Other', s3Code, msg(), { hint: `bucket ${ctx.bucket} is in another region: set its region in the policy: ${REGION_SETTINGS}` });
  }
  if (s3Code === 'PreconditionFailed' || s3Code === 'ConditionalRequestConflict' || status === 412) {
    return make('PreconditionFailed', s3Code, msg());
  }
  if (s3Code === 'AccessDenied' || s3Code === 'Forbidden' || status === 403) {
    let hint = ctx.action
      ? `the credentials lack ${ctx.action} on ${s3Url(ctx.bucket, ctx.key)} (IAM or bucket policy), or Object Lock/KMS refused it`
      : 'check the IAM and bucket policy for these credentials';
    // A HEAD answer has no body: a bad signature looks just like a denial there.
    if (s3Code !== 'AccessDenied') hint += '; or check AWS credentials (a 403 without an error code can be a bad secret key)';
    return make('AccessDenied', s3Code, msg(), { hint, ...(skewCorrected ? { retryable: true } : {}) });
  }
  if (THROTTLE_CODES.has(s3Code) || status === 429 || status === 503) {
    const retryAfterMs = parseRetryAfter(e.retryAfter);
    return make('Throttled', s3Code, msg(), retryAfterMs === undefined ? {} : { retryAfterMs });
  }
  if (s3Code === 'BadDigest' || s3Code === 'XAmzContentSHA256Mismatch' || s3Code === 'IncompleteBody') {
    // The bytes were damaged or cut in transit; sending them again is the fix.
    return make('Network', s3Code, msg());
  }
  if (status >= 500 && status !== 501 && status !== 505) return make('ServerError', s3Code, msg());
  return make('Other', s3Code, msg());
}

/** `60 s`, `1.5 s` */
function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** Retry-After is delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(v)) ms = Number(v) * 1000;
  else {
    const t = Date.parse(v);
    if (Number.isNaN(t)) return undefined;
    ms = t - now;
  }
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.round(ms)));
}

/** The SDK's message when it adds something beyond the code (HEAD errors say just "UnknownError"). */
function usefulDetail(message: string, code: string): string {
  const m = message.trim();
  if (m === '' || m === code || m === 'UnknownError' || m === 'Unknown' || /^\d{3}$/.test(m)) return '';
  return m;
}
