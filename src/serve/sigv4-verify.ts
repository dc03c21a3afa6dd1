import { timingSafeEqual } from 'node:crypto';
import { EMPTY_SHA256, sigV4Parts, uriEncode, type Credentials } from '../storage/s3-sigv4.js';
import { splitQuery } from '../util/query-string.js';

// Checks the AWS Signature Version 4 of a request to `lakeguard serve`: in the Authorization
// header or in a presigned URL's query. The expected signature is computed by the client
// signer (storage/s3-sigv4.ts) from the request as received, so both sides share one
// canonicalisation; the comparison is constant-time.

/** How far the request's x-amz-date may be from this clock (S3's own limit). */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;
/** The longest presigned URL S3 accepts (7 days). */
const MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600;

/** A request as it arrived: nothing decoded or normalised. */
export interface IncomingSigned {
  method: string;
  /** The path as sent, still URI-encoded. */
  rawPath: string;
  /** The query as sent (after '?', '' for none), still URI-encoded. */
  rawQuery: string;
  /** Header names lower-case (as node:http gives them). */
  headers: Record<string, string | string[] | undefined>;
}

/** Why a request is refused: the S3 error code, its HTTP status and a message. */
export interface AuthFailure {
  code: 'AccessDenied' | 'InvalidAccessKeyId' | 'SignatureDoesNotMatch' | 'RequestTimeTooSkewed' | 'AuthorizationHeaderMalformed' | 'AuthorizationQueryParametersError';
  status: 400 | 403;
  message: string;
}

/** The signed parts of a request, from its header or its query. */
interface SignedClaim {
  accessKeyId: string;
  day: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
  date: string;
  payloadHash: string;
  /** The query the signature covers (a presigned URL's without X-Amz-Signature). */
  query: string;
  presigned: boolean;
  /** Presigned: seconds the URL stays valid after `date`. */
  expires?: number;
}

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/**
 * Verifies the request against `credentials`; null when it is authentic and current, else why not.
 * `mustSign`: headers (lower-case) that change what a request means, refused when present but
 * not signed (as S3 refuses an unsigned x-amz-* header): else anyone holding a signed request or
 * a presigned URL could add one and be answered something the signer never asked for.
 */
export function verifySigV4(req: IncomingSigned, credentials: Credentials, now: number = Date.now(), mustSign: readonly string[] = []): AuthFailure | null {
  const claim = parseClaim(req);
  if ('code' in claim) return claim;
  const unsigned = mustSign.filter((name) => req.headers[name] !== undefined && !claim.signedHeaders.includes(name));
  if (unsigned.length > 0) {
    return { code: 'AccessDenied', status: 403, message: `There were headers present in the request which were not signed: ${unsigned.join(', ')} (sign it, or name the instant with a bucket alias)` };
  }
  const when = parseAmzDate(claim.date);
  if (when === null) return malformed(claim.presigned, `X-Amz-Date ${JSON.stringify(claim.date)} is not of the form 20261123T163000Z`);
  if (claim.day !== claim.date.slice(0, 8)) return malformed(claim.presigned, `the credential's date ${claim.day} is not the request's (${claim.date.slice(0, 8)})`);
  if (claim.service !== 's3') return malformed(claim.presigned, `the credential's service is ${JSON.stringify(claim.service)}, expected "s3"`);
  if (claim.presigned) {
    if (now > when + claim.expires! * 1000) return { code: 'AccessDenied', status: 403, message: 'Request has expired' };
    if (when - now > MAX_CLOCK_SKEW_MS) return { code: 'AccessDenied', status: 403, message: 'Request is not valid yet' };
  } else if (Math.abs(now - when) > MAX_CLOCK_SKEW_MS) {
    return { code: 'RequestTimeTooSkewed', status: 403, message: 'The difference between the request time and the server\'s time is too large.' };
  }
  if (claim.accessKeyId !== credentials.accessKeyId) {
    return { code: 'InvalidAccessKeyId', status: 403, message: 'The AWS Access Key Id you provided does not exist in our records.' };
  }
  const headers: Record<string, string> = {};
  for (const name of claim.signedHeaders) {
    const value = req.headers[name];
    headers[name] = Array.isArray(value) ? value.join(',') : (value ?? '');
  }
  // The path as the client sent it, and (when that differs) as a client that encodes every
  // character SigV4 wants encoded would have: some clients leave e.g. '!' or '(' raw on the wire
  // but sign them encoded. Both describe the same key, so either signature proves the secret.
  const paths = new Set([req.rawPath, canonicalPath(req.rawPath)]);
  for (const path of paths) {
    const { signature } = sigV4Parts({
      method: req.method,
      path,
      query: claim.query,
      headers,
      region: claim.region,
      service: claim.service,
      credentials,
      payloadHash: claim.payloadHash,
      date: claim.date,
    });
    if (sameHex(signature, claim.signature)) return null;
  }
  return {
    code: 'SignatureDoesNotMatch',
    status: 403,
    message: 'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
  };
}

function parseClaim(req: IncomingSigned): SignedClaim | AuthFailure {
  const params = splitQuery(req.rawQuery);
  const authorization = req.headers.authorization;
  if (params.some(([name]) => name === 'X-Amz-Signature' || name === 'X-Amz-Algorithm')) {
    if (authorization !== undefined) return malformed(true, 'a request carries either an Authorization header or a presigned query, not both');
    return presignedClaim(params);
  }
  if (params.some(([name]) => name === 'AWSAccessKeyId')) return sigV2Refusal();
  if (typeof authorization !== 'string' || authorization === '') {
    return { code: 'AccessDenied', status: 403, message: 'Access Denied: every request must be signed (AWS Signature Version 4); anonymous access is not allowed' };
  }
  return headerClaim(authorization, req);
}

function headerClaim(authorization: string, req: IncomingSigned): SignedClaim | AuthFailure {
  const m = /^AWS4-HMAC-SHA256\s+(.*)$/s.exec(authorization.trim());
  if (m === null) return sigV2Refusal();
  const fields = new Map<string, string>();
  for (const part of m[1]!.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credential === undefined || signedHeaders === undefined || signature === undefined) {
    return malformed(false, 'the Authorization header needs Credential, SignedHeaders and Signature');
  }
  const scope = parseScope(credential);
  if (scope === null) return malformed(false, `the credential ${JSON.stringify(credential)} is not <key>/<date>/<region>/s3/aws4_request`);
  const date = header(req, 'x-amz-date');
  if (date === undefined) return { code: 'AccessDenied', status: 403, message: 'AWS authentication requires a valid x-amz-date header' };
  const names = signedHeaders.split(';');
  if (!names.includes('host')) return malformed(false, 'SignedHeaders must include host');
  return {
    ...scope,
    signedHeaders: names,
    signature,
    date,
    payloadHash: header(req, 'x-amz-content-sha256') ?? EMPTY_SHA256,
    query: canonicalQuery(splitQuery(req.rawQuery)),
    presigned: false,
  };
}

function presignedClaim(params: [string, string][]): SignedClaim | AuthFailure {
  const get = (name: string): string | undefined => params.find(([n]) => n === name)?.[1];
  const algorithm = get('X-Amz-Algorithm');
  if (algorithm !== 'AWS4-HMAC-SHA256') return malformed(true, 'X-Amz-Algorithm must be AWS4-HMAC-SHA256');
  const credential = get('X-Amz-Credential');
  const date = get('X-Amz-Date');
  const expiresText = get('X-Amz-Expires');
  const signedHeaders = get('X-Amz-SignedHeaders');
  const signature = get('X-Amz-Signature');
  if (credential === undefined || date === undefined || expiresText === undefined || signedHeaders === undefined || signature === undefined) {
    return malformed(true, 'a presigned URL needs X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature');
  }
  const scope = parseScope(credential);
  if (scope === null) return malformed(true, `X-Amz-Credential ${JSON.stringify(credential)} is not <key>/<date>/<region>/s3/aws4_request`);
  const expires = /^\d{1,7}$/.test(expiresText) ? Number(expiresText) : NaN;
  if (!(expires >= 1 && expires <= MAX_PRESIGN_EXPIRES_S)) return malformed(true, `X-Amz-Expires must be 1 to ${MAX_PRESIGN_EXPIRES_S} seconds`);
  const names = signedHeaders.split(';');
  if (!names.includes('host')) return malformed(true, 'X-Amz-SignedHeaders must include host');
  return {
    ...scope,
    signedHeaders: names,
    signature,
    date,
    payloadHash: 'UNSIGNED-PAYLOAD',
    query: canonicalQuery(params.filter(([name]) => name !== 'X-Amz-Signature')),
    presigned: true,
    expires,
  };
}

// botocore still presigns S3 URLs with Signature Version 2 unless told otherwise: say how.
function sigV2Refusal(): AuthFailure {
  return {
    code: 'AccessDenied',
    status: 403,
    message: "only AWS Signature Version 4 is accepted: configure the client for s3v4 (boto3: Config(signature_version='s3v4'); AWS CLI: aws configure set default.s3.signature_version s3v4)",
  };
}

function parseScope(credential: string): { accessKeyId: string; day: string; region: string; service: string } | null {
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || parts[0] === '' || !/^\d{8}$/.test(parts[1]!)) return null;
  return { accessKeyId: parts[0]!, day: parts[1]!, region: parts[2]!, service: parts[3]! };
}

function malformed(presigned: boolean, message: string): AuthFailure {
  return presigned ? { code: 'AuthorizationQueryParametersError', status: 400, message } : { code: 'AuthorizationHeaderMalformed', status: 400, message };
}

function header(req: IncomingSigned, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Parameters encoded as SigV4 wants them (the signer sorts them). */
function canonicalQuery(params: readonly [string, string][]): string {
  return params.map(([name, value]) => `${uriEncode(name, false)}=${uriEncode(value, false)}`).join('&');
}

/** The path decoded and encoded again as SigV4 wants it ('/' kept). */
function canonicalPath(rawPath: string): string {
  try {
    return uriEncode(decodeURIComponent(rawPath), true);
  } catch {
    return rawPath;
  }
}

function parseAmzDate(text: string): number | null {
  const m = AMZ_DATE.exec(text);
  if (m === null) return null;
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return Number.isNaN(ms) ? null : ms;
}

/** Constant-time comparison of two hex signatures (a length mismatch leaks only the length). */
function sameHex(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given.toLowerCase(), 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
