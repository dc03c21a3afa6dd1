// lakeguard serve's SigV4 check against requests signed by botocore (the signer of boto3, the
// AWS CLI and Spark's Python tools): fixtures captured by test/fixtures/serve-sigv4/generate.py
// as botocore would send them. Each must pass at its signing time and fail when anything
// it signs is changed, when the secret differs, or when it is too old.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_CLOCK_SKEW_MS, verifySigV4, type IncomingSigned } from '../../src/serve/sigv4-verify.js';
import { EMPTY_SHA256, amzDate, signV4 } from '../../src/storage/s3-sigv4.js';

interface Fixture {
  name: string;
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
}
const fixtures = JSON.parse(readFileSync(new URL('../fixtures/serve-sigv4/botocore.json', import.meta.url), 'utf8')) as {
  accessKeyId: string;
  secretAccessKey: string;
  cases: Fixture[];
};
const credentials = { accessKeyId: fixtures.accessKeyId, secretAccessKey: fixtures.secretAccessKey };

function request(f: Fixture): IncomingSigned {
  return { method: f.method, rawPath: f.path, rawQuery: f.query, headers: { ...f.headers } };
}

/** When the fixture was signed (its x-amz-date or X-Amz-Date). */
function signedAt(f: Fixture): number {
  const text = f.headers['x-amz-date'] ?? /X-Amz-Date=(\w+)/.exec(f.query)![1]!;
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text)!;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

const sigV4 = fixtures.cases.filter((f) => f.name !== 'presigned SigV2');

describe('botocore-signed requests', () => {
  it.each(sigV4.map((f) => [f.name, f] as const))('accepts %s', (_name, f) => {
    expect(verifySigV4(request(f), credentials, signedAt(f) + 1000)).toBeNull();
  });

  it.each(sigV4.map((f) => [f.name, f] as const))('refuses %s with another secret', (_name, f) => {
    expect(verifySigV4(request(f), { ...credentials, secretAccessKey: 'not-the-secret' }, signedAt(f))?.code).toBe('SignatureDoesNotMatch');
  });

  it.each(sigV4.map((f) => [f.name, f] as const))('refuses %s for another path', (_name, f) => {
    expect(verifySigV4({ ...request(f), rawPath: `${f.path}x` }, credentials, signedAt(f))?.code).toBe('SignatureDoesNotMatch');
  });

  it('refuses a changed query parameter and a changed signed header', () => {
    const list = sigV4.find((f) => f.name.startsWith('ListObjectsV2'))!;
    expect(verifySigV4({ ...request(list), rawQuery: list.query.replace('max-keys=7', 'max-keys=8') }, credentials, signedAt(list))?.code).toBe('SignatureDoesNotMatch');
    const head = sigV4.find((f) => f.name.startsWith('HeadObject'))!;
    expect(verifySigV4({ ...request(head), headers: { ...head.headers, range: 'bytes=0-99' } }, credentials, signedAt(head))?.code).toBe('SignatureDoesNotMatch');
    // A header it did not sign may change (proxies add them).
    expect(verifySigV4({ ...request(head), headers: { ...head.headers, 'x-forwarded-for': '10.0.0.1' } }, credentials, signedAt(head))).toBeNull();
  });

  it('refuses an unknown access key', () => {
    const f = sigV4[0]!;
    expect(verifySigV4(request(f), { ...credentials, accessKeyId: 'OTHERKEY' }, signedAt(f))).toMatchObject({ code: 'InvalidAccessKeyId', status: 403 });
  });

  it('refuses a header-signed request more than 15 minutes off this clock, either way', () => {
    const f = sigV4[0]!;
    expect(verifySigV4(request(f), credentials, signedAt(f) + MAX_CLOCK_SKEW_MS - 1000)).toBeNull();
    expect(verifySigV4(request(f), credentials, signedAt(f) + MAX_CLOCK_SKEW_MS + 1000)).toMatchObject({ code: 'RequestTimeTooSkewed', status: 403 });
    expect(verifySigV4(request(f), credentials, signedAt(f) - MAX_CLOCK_SKEW_MS - 1000)?.code).toBe('RequestTimeTooSkewed');
  });

  it('honours a presigned URL until it expires (600 s), then says so', () => {
    const f = sigV4.find((c) => c.name.startsWith('presigned'))!;
    expect(verifySigV4(request(f), credentials, signedAt(f) + 599_000)).toBeNull();
    expect(verifySigV4(request(f), credentials, signedAt(f) + 601_000)).toEqual({ code: 'AccessDenied', status: 403, message: 'Request has expired' });
    const tampered = f.query.replace('X-Amz-Expires=600', 'X-Amz-Expires=6000');
    expect(verifySigV4({ ...request(f), rawQuery: tampered }, credentials, signedAt(f) + 601_000)?.code).toBe('SignatureDoesNotMatch');
  });

  it('refuses Signature Version 2 with the setting that fixes it', () => {
    const f = fixtures.cases.find((c) => c.name === 'presigned SigV2')!;
    const failure = verifySigV4(request(f), credentials, Date.now());
    expect(failure?.code).toBe('AccessDenied');
    expect(failure?.message).toContain("signature_version='s3v4'");
  });
});

describe('requests this verifier must refuse', () => {
  const now = Date.UTC(2026, 11, 6, 12, 0, 0);
  const signed = (headers: Record<string, string>, over: Partial<IncomingSigned> = {}): IncomingSigned => {
    const all = { host: '127.0.0.1:9000', 'x-amz-date': amzDate(new Date(now)), 'x-amz-content-sha256': EMPTY_SHA256, ...headers };
    const authorization = signV4({ method: 'GET', path: '/lake/k', query: '', headers: all, region: 'us-east-1', service: 's3', credentials });
    return { method: 'GET', rawPath: '/lake/k', rawQuery: '', headers: { ...all, authorization }, ...over };
  };

  it('accepts the client signer of lakeguard itself (any region)', () => {
    expect(verifySigV4(signed({}), credentials, now)).toBeNull();
  });

  it('refuses anonymous requests', () => {
    const { authorization: _a, ...rest } = signed({}).headers;
    expect(verifySigV4({ ...signed({}), headers: rest }, credentials, now)).toMatchObject({ code: 'AccessDenied', status: 403 });
  });

  it('refuses a changed method (a PUT signed as GET)', () => {
    expect(verifySigV4({ ...signed({}), method: 'PUT' }, credentials, now)?.code).toBe('SignatureDoesNotMatch');
  });

  it('answers malformed credentials with 400 AuthorizationHeaderMalformed', () => {
    const req = signed({});
    const bad = (req.headers.authorization as string).replace('/s3/', '/ec2/');
    expect(verifySigV4({ ...req, headers: { ...req.headers, authorization: bad } }, credentials, now)).toMatchObject({ code: 'AuthorizationHeaderMalformed', status: 400 });
    const noHost = (req.headers.authorization as string).replace('SignedHeaders=host;', 'SignedHeaders=');
    expect(verifySigV4({ ...req, headers: { ...req.headers, authorization: noHost } }, credentials, now)?.code).toBe('AuthorizationHeaderMalformed');
  });
});
