// S3Store pieces that need no server: SDK error → typed S3RequestError → StorageError mapping,
// our retry loop around each request (with a fake client), and URL parsing. The real-server behaviour is in
// test/storage/s3.s3.test.ts.
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { StorageError, UsageError } from '../../src/errors.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { RetryingStore } from '../../src/storage/retrying-store.js';
import { openStore, parseS3Url } from '../../src/storage/open.js';
import { parseRetryAfter, toStorageError as fromTyped, type S3ErrorContext } from '../../src/storage/s3-errors.js';
import { fromSdkError } from '../../src/storage/s3-sdk-transport.js';
import { S3MalformedResponseError, S3RequestError } from '../../src/storage/s3-transport.js';
import { decodeKey, encodeTags } from '../../src/storage/s3-object-fields.js';
import { partSizeFor, S3Store } from '../../src/storage/s3-store.js';

/** An error shaped like the SDK's service exceptions. */
function sdkError(name: string, status: number, extra: { headers?: Record<string, string>; message?: string } = {}): Error {
  return Object.assign(new Error(extra.message ?? name), {
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
    $response: { statusCode: status, headers: extra.headers ?? {} },
  });
}

function sysError(code: string, message = `connect ${code} 127.0.0.1:7480`, name = 'Error'): Error {
  return Object.assign(new Error(message), { code, name });
}

const ctx = { op: 'GET', bucket: 'raw-events', key: 'a/b.json', endpoint: 'http://127.0.0.1:7480', action: 's3:GetObject' };

/** What an SDK error becomes: typed by the SDK transport, then classified. */
function toStorageError(err: unknown, c: S3ErrorContext): StorageError {
  return fromTyped(fromSdkError(err), c);
}

describe('toStorageError', () => {
  it.each([
    [sdkError('NoSuchKey', 404), 'NotFound', false],
    [sdkError('NotFound', 404, { message: 'UnknownError' }), 'NotFound', false],
    [sdkError('NoSuchVersion', 404), 'NotFound', false],
    [sdkError('MethodNotAllowed', 405, { headers: { 'x-amz-delete-marker': 'true' } }), 'NotFound', false],
    [sdkError('NoSuchBucket', 404), 'NoSuchBucket', false],
    [sdkError('AccessDenied', 403), 'AccessDenied', false],
    [sdkError('Forbidden', 403, { message: 'UnknownError' }), 'AccessDenied', false],
    [sdkError('PreconditionFailed', 412), 'PreconditionFailed', false],
    [sdkError('ConditionalRequestConflict', 409), 'PreconditionFailed', false],
    [sdkError('InvalidObjectState', 403), 'InvalidObjectState', false],
    [sdkError('SlowDown', 503), 'Throttled', true],
    [sdkError('ServiceUnavailable', 503), 'Throttled', true],
    [sdkError('TooManyRequests', 429), 'Throttled', true],
    [sdkError('ThrottlingException', 400), 'Throttled', true],
    [sdkError('RequestTimeout', 400), 'Throttled', true],
    [sdkError('InternalError', 500), 'ServerError', true],
    [sdkError('BadGateway', 502), 'ServerError', true],
    [sdkError('Unknown', 504), 'ServerError', true],
    [sdkError('NotImplemented', 501), 'Other', false],
    [sdkError('InvalidAccessKeyId', 403), 'InvalidCredentials', false],
    [sdkError('SignatureDoesNotMatch', 403), 'InvalidCredentials', false],
    [sdkError('ExpiredToken', 400), 'InvalidCredentials', false],
    [sdkError('InvalidRange', 416), 'Other', false],
    [sdkError('BadDigest', 400), 'Network', true],
    [sysError('ECONNRESET', 'read ECONNRESET', 'TimeoutError'), 'Network', true],
    [sysError('ECONNREFUSED'), 'Network', true],
    [sysError('ETIMEDOUT'), 'Network', true],
    [sysError('EPIPE', 'write EPIPE'), 'Network', true],
    // Node's "socket hang up" carries ECONNRESET (the code is classified, not the message).
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'Network', true],
    [Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }), 'Network', true],
    [Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), 'InvalidCredentials', false],
    [new Error('something odd'), 'Other', false],
  ])('%s → %s (retryable %s)', (err, code, retryable) => {
    const e = toStorageError(err, ctx);
    expect(e).toBeInstanceOf(StorageError);
    expect(e.code).toBe(code);
    expect(e.retryable).toBe(retryable);
    expect(e.cause).toBe(err);
    // A timeout names the endpoint first and the request in parentheses.
    expect(e.message).toMatch(/^GET s3:\/\/raw-events\/a\/b\.json: |^no answer from .* \(GET s3:\/\/raw-events\/a\/b\.json\)$/);
  });

  it('region hints name the bucket and where its region is set, for a source as for the repository', () => {
    // A source bucket (raw-events) on AWS without a region anywhere, and one in another region.
    const missing = toStorageError(new Error('Region is missing'), { op: 'LIST', bucket: 'raw-events' });
    expect(missing.hint).toBe(
      "set AWS_REGION or a region in ~/.aws/config, or the region of raw-events in the policy: repository.region for the repository, the source's region (or s3.region) for a source bucket or a restore target",
    );
    const moved = toStorageError(sdkError('PermanentRedirect', 301), ctx);
    expect(moved.hint).toBe(
      "bucket raw-events is in another region: set its region in the policy: repository.region for the repository, the source's region (or s3.region) for a source bucket or a restore target",
    );
  });

  it('writes messages an operator can act on', () => {
    expect(toStorageError(sdkError('AccessDenied', 403, { message: 'Access Denied' }), ctx).message).toBe(
      'GET s3://raw-events/a/b.json: AccessDenied (403): Access Denied',
    );
    expect(toStorageError(sdkError('AccessDenied', 403, { message: 'AccessDenied' }), ctx).message).toBe(
      'GET s3://raw-events/a/b.json: AccessDenied (403)',
    );
    expect(toStorageError(sdkError('AccessDenied', 403), ctx).hint).toContain('s3:GetObject');
    const v = toStorageError(sdkError('NoSuchVersion', 404), { ...ctx, op: 'HEAD', versionId: 'v1' });
    expect(v.message).toBe('HEAD s3://raw-events/a/b.json?versionId=v1: NoSuchVersion (404)');
    const refused = toStorageError(sysError('ECONNREFUSED'), ctx);
    expect(refused.message).toBe('GET s3://raw-events/a/b.json: http://127.0.0.1:7480 is not reachable: connection refused (ECONNREFUSED)');
    expect(refused.hint).toContain('start the S3 server');
    expect(toStorageError(sdkError('SignatureDoesNotMatch', 403), ctx).hint).toContain('check AWS credentials');
    expect(toStorageError(sdkError('InvalidObjectState', 403), ctx).hint).toContain('restore');
    expect(toStorageError(sdkError('SlowDown', 503), ctx).backendCode).toBe('SlowDown');
  });

  it('keeps Retry-After of throttling responses', () => {
    expect(toStorageError(sdkError('SlowDown', 503, { headers: { 'retry-after': '3' } }), ctx).retryAfterMs).toBe(3000);
    expect(toStorageError(sdkError('SlowDown', 503), ctx).retryAfterMs).toBeUndefined();
  });

  it('passes StorageErrors through', () => {
    const e = new StorageError('NotFound', 'x');
    expect(fromTyped(e, ctx)).toBe(e);
  });

  it('classifies the typed errors both transports raise, by status and code', () => {
    const lean = fromTyped(new S3RequestError('Please reduce your request rate.', { status: 503, code: 'SlowDown', requestId: 'r1', retryAfter: '2' }), ctx);
    expect([lean.code, lean.retryable, lean.retryAfterMs, lean.message]).toEqual(['Throttled', true, 2000, 'GET s3://raw-events/a/b.json: SlowDown (503): Please reduce your request rate.']);
    const marker = fromTyped(new S3RequestError('MethodNotAllowed (HTTP 405)', { status: 405, code: 'MethodNotAllowed', deleteMarker: true }), ctx);
    expect([marker.code, marker.backendCode]).toEqual(['NotFound', 'DeleteMarker']);
    // A refused signature is worth one more try only once the signing clock was corrected.
    const skewed = new S3RequestError('skewed', { status: 403, code: 'RequestTimeTooSkewed' });
    expect(fromTyped(skewed, ctx).retryable).toBe(false);
    expect(fromTyped(new S3RequestError('skewed', { status: 403, code: 'RequestTimeTooSkewed', clockSkewCorrected: true }), ctx).retryable).toBe(true);
    expect(fromTyped(new S3RequestError('', { status: 403, code: 'Forbidden', clockSkewCorrected: true }), ctx)).toMatchObject({ code: 'AccessDenied', retryable: true });
    // A body that breaks off while streaming: the socket's error, typed on the way.
    expect(fromTyped(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }), { ...ctx, op: 'GET (reading body)' })).toMatchObject({ code: 'Network', retryable: true });
  });

  it('treats an answer that does not parse as damaged in flight (retryable), from either transport', () => {
    const lean = fromTyped(new S3MalformedResponseError('XML parse error: <Contents> is not closed'), ctx);
    expect(lean).toMatchObject({ code: 'Network', backendCode: 'MalformedResponse', retryable: true });
    expect(lean.message).toBe('GET s3://raw-events/a/b.json: the response from http://127.0.0.1:7480 could not be parsed (cut off or damaged): XML parse error: <Contents> is not closed');
    // What the SDK's deserializer throws: its parser's error, with the raw answer attached and no $fault.
    const sdkParse = Object.assign(new Error('Unexpected end of XML\n  Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.'), {
      $response: { statusCode: 200, headers: {} },
      $metadata: { httpStatusCode: 200 },
    });
    expect(fromSdkError(sdkParse)).toBeInstanceOf(S3MalformedResponseError);
    expect(toStorageError(sdkParse, ctx)).toMatchObject({ code: 'Network', backendCode: 'MalformedResponse', retryable: true, message: expect.stringMatching(/could not be parsed \(cut off or damaged\): Unexpected end of XML$/) });
  });
});

describe('parseRetryAfter', () => {
  it.each([
    ['0', 0],
    ['2', 2000],
    ['1.5', 1500],
    ['100000', 300_000],
    ['', undefined],
    ['soon', undefined],
  ])('%j → %s', (v, ms) => expect(parseRetryAfter(v)).toBe(ms));
  it('reads HTTP dates', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
  });
});

describe('S3Store request retries (fake client)', () => {
  function fakeClient(script: (commandName: string, n: number) => unknown): { client: S3Client; calls: string[] } {
    const calls: string[] = [];
    const client = {
      send: async (cmd: { constructor: { name: string } }) => {
        const name = cmd.constructor.name;
        calls.push(name);
        const r = script(name, calls.length);
        if (r instanceof Error) throw r;
        return r;
      },
    } as unknown as S3Client;
    return { client, calls };
  }
  const fastRetry = { sleep: async () => {}, baseDelayMs: 1 };

  it('retries a throttled HEAD, counting every attempt', async () => {
    const { client, calls } = fakeClient((_n, i) =>
      i <= 2 ? sdkError('SlowDown', 503) : { ContentLength: 5, ETag: '"abc"', LastModified: new Date(0), VersionId: 'null', Metadata: { K: 'v' } },
    );
    const retries: string[] = [];
    const store = new S3Store({ bucket: 'b', client, retry: { ...fastRetry, onRetry: (e) => retries.push(e.code) } });
    const meta = await store.head('k');
    expect(meta).toMatchObject({ size: 5, etag: 'abc', versionId: null, metadata: { k: 'v' }, storageClass: 'STANDARD' });
    expect(calls).toEqual(['HeadObjectCommand', 'HeadObjectCommand', 'HeadObjectCommand']);
    expect(store.stats.head).toBe(3);
    expect(retries).toEqual(['Throttled', 'Throttled']);
  });

  it('does not retry AccessDenied', async () => {
    const { client, calls } = fakeClient(() => sdkError('AccessDenied', 403));
    const store = new S3Store({ bucket: 'b', client, retry: fastRetry });
    await expect(store.delete('k')).rejects.toMatchObject({ code: 'AccessDenied' });
    expect(calls).toHaveLength(1);
  });

  it('gives up after the configured attempts', async () => {
    const { client, calls } = fakeClient(() => sdkError('InternalError', 500));
    const store = new S3Store({ bucket: 'b', client, retry: { ...fastRetry, maxAttempts: 4 } });
    await expect(store.put('k', Buffer.from('x'))).rejects.toMatchObject({ code: 'ServerError' });
    expect(calls).toHaveLength(4);
    expect(store.stats.put).toBe(4);
  });

  it('retries each list page on its own and merges prefixes and objects in key order', async () => {
    const pages = [
      { IsTruncated: true, NextContinuationToken: 't1', Contents: [{ Key: 'p/a', Size: 1, ETag: '"e"' }], CommonPrefixes: [{ Prefix: 'p/b/' }] },
      { IsTruncated: false, Contents: [{ Key: 'p/b0', Size: 1, ETag: '"e"' }, { Key: 'p/c%20d', Size: 1, ETag: '"e"' }], CommonPrefixes: [{ Prefix: 'p/c%2Bx/' }] },
    ];
    let served = 0;
    const { client, calls } = fakeClient((_n, i) => (i === 2 ? sdkError('SlowDown', 503) : pages[served++]));
    const store = new S3Store({ bucket: 'b', client, retry: fastRetry });
    const out: string[] = [];
    for await (const it of store.list('p/', { delimiter: '/' })) out.push(it.kind === 'object' ? it.key : `[${it.prefix}]`);
    expect(out).toEqual(['p/a', '[p/b/]', 'p/b0', 'p/c d', '[p/c+x/]']);
    expect(calls).toHaveLength(3);
    expect(store.stats.list).toBe(3);
  });

  it('reads listed ETags in every form S3-compatible servers send (quoted, weak, unquoted, empty)', async () => {
    const etags = ['"0123abcd"', 'W/"weak"', 'bare', '""', '"multi-3"', '"a"b"', undefined];
    const page = { IsTruncated: false, Contents: etags.map((ETag, i) => ({ Key: `k${i}+x`, Size: 1, ...(ETag === undefined ? {} : { ETag }) })) };
    const { client } = fakeClient(() => page);
    const store = new S3Store({ bucket: 'b', client, retry: fastRetry });
    const out: [string, string][] = [];
    for await (const it of store.list('')) if (it.kind === 'object') out.push([it.key, it.etag]);
    expect(out).toEqual([
      ['k0 x', '0123abcd'],
      ['k1 x', 'weak'],
      ['k2 x', 'bare'],
      ['k3 x', ''],
      ['k4 x', 'multi-3'],
      ['k5 x', 'a"b'],
      ['k6 x', ''],
    ]);
  });

  it('requests a page again when its keys are out of order or outside the prefix, and fails with a named error when it stays so', async () => {
    const good = { IsTruncated: false, Contents: [{ Key: 'p/a', Size: 1, ETag: '"e"' }, { Key: 'p/b', Size: 1, ETag: '"e"' }] };
    const damaged = [
      { IsTruncated: false, Contents: [{ Key: 'p/q', Size: 1, ETag: '"e"' }, { Key: 'p/b', Size: 1, ETag: '"e"' }] },
      { IsTruncated: false, Contents: [{ Key: 'p/a', Size: 1, ETag: '"e"' }, { Key: '0/b', Size: 1, ETag: '"e"' }] },
      { IsTruncated: false, Contents: [{ Key: 'p/a', Size: 1, ETag: '"e"' }, { Key: 'p/a', Size: 1, ETag: '"e"' }] },
    ];
    const { client, calls } = fakeClient((_n, i) => damaged[i - 1] ?? good);
    const store = new S3Store({ bucket: 'b', client, retry: fastRetry });
    const keys: string[] = [];
    for await (const it of store.list('p/')) if (it.kind === 'object') keys.push(it.key);
    expect(keys).toEqual(['p/a', 'p/b']);
    expect(calls).toHaveLength(4);

    const twoPages = [
      { IsTruncated: true, NextContinuationToken: 't', Contents: [{ Key: 'p/m', Size: 1, ETag: '"e"' }] },
      { IsTruncated: false, Contents: [{ Key: 'p/c', Size: 1, ETag: '"e"' }] }, // goes back before the first page's end
    ];
    const stuck = fakeClient((_n, i) => twoPages[Math.min(i, 2) - 1]);
    const failing = new S3Store({ bucket: 'b', client: stuck.client, retry: { ...fastRetry, maxAttempts: 3 } });
    const seen: string[] = [];
    const run = async () => {
      for await (const it of failing.list('p/')) if (it.kind === 'object') seen.push(it.key);
    };
    await expect(run()).rejects.toMatchObject({ code: 'Network', backendCode: 'MalformedResponse', message: expect.stringMatching(/damaged: "p\/c" does not sort after "p\/m"/) });
    expect(seen).toEqual(['p/m']);
    expect(stuck.calls).toHaveLength(4);
  });

  it('orders a version page: per key latest first, then newest first', async () => {
    const t = (s: number): Date => new Date(s * 1000);
    const page = {
      IsTruncated: false,
      Versions: [
        { Key: 'j', VersionId: 'null', IsLatest: true, LastModified: t(1), Size: 3, ETag: '"c"' },
        { Key: 'k', VersionId: 'v1', IsLatest: false, LastModified: t(1), Size: 1, ETag: '"a"' },
        { Key: 'k', VersionId: 'v2', IsLatest: false, LastModified: t(2), Size: 2, ETag: '"b"' },
      ],
      DeleteMarkers: [{ Key: 'k', VersionId: 'd1', IsLatest: true, LastModified: t(2) }],
    };
    const { client } = fakeClient(() => page);
    const store = new S3Store({ bucket: 'b', client, retry: fastRetry });
    const out: string[] = [];
    for await (const it of store.list('', { versions: true })) if (it.kind === 'object') out.push(`${it.key}@${it.versionId}${it.isDeleteMarker ? '(dm)' : ''}`);
    expect(out).toEqual(['j@null', 'k@d1(dm)', 'k@v2', 'k@v1']);
  });
});

describe('partSizeFor', () => {
  const MiB = 1024 * 1024;
  it('keeps the store part size while 10,000 parts hold the object', () => {
    expect(partSizeFor(undefined, 8 * MiB)).toBe(8 * MiB);
    expect(partSizeFor(300 * MiB, 8 * MiB)).toBe(8 * MiB);
    expect(partSizeFor(10_000 * 8 * MiB, 8 * MiB)).toBe(8 * MiB);
  });
  it('raises it to whole MiB for larger objects, at most 5 GiB', () => {
    const size = 10_000 * 8 * MiB + 1;
    const part = partSizeFor(size, 8 * MiB);
    expect(part).toBe(9 * MiB);
    expect(Math.ceil(size / part)).toBeLessThanOrEqual(10_000);
    const fiveTiB = 5 * 1024 * 1024 * MiB;
    expect(partSizeFor(fiveTiB, 8 * MiB)).toBe(525 * MiB);
    expect(Math.ceil(fiveTiB / partSizeFor(fiveTiB, 8 * MiB))).toBeLessThanOrEqual(10_000);
    expect(partSizeFor(100 * fiveTiB, 8 * MiB)).toBe(5 * 1024 * MiB);
  });
});

describe('key and tag encoding', () => {
  it('decodes url-encoded keys', () => {
    expect(decodeKey('a+b%2Bc%20d%25e%F0%9F%98%80')).toBe('a b+c d%e😀');
    expect(decodeKey('bad%zz')).toBe('bad%zz');
  });
  it('encodes tags as a query string', () => {
    expect(encodeTags({ env: 'prod', 'a b': 'c&d=e' })).toBe('env=prod&a%20b=c%26d%3De');
  });
});

describe('parseS3Url and openStore', () => {
  it.each([
    ['s3://bucket', { bucket: 'bucket', prefix: '' }],
    ['s3://bucket/', { bucket: 'bucket', prefix: '' }],
    ['s3://bucket/prefix', { bucket: 'bucket', prefix: 'prefix/' }],
    ['s3://my.bucket-1/a/b/', { bucket: 'my.bucket-1', prefix: 'a/b/' }],
  ])('%s', (url, want) => expect(parseS3Url(url)).toEqual(want));

  it.each(['s3://', 's3://a', 's3://bad_bucket!/x', 's3://b/a//c', 'https://bucket/x'])('rejects %s', (url) => {
    expect(() => parseS3Url(url)).toThrow(UsageError);
  });

  it('opens file:// and s3:// URLs, and names the accepted forms otherwise', () => {
    const fs = openStore('file:///tmp/lakeguard-open-test/repo');
    // A directory store, with retries around it (FsStore has none of its own).
    expect(fs).toBeInstanceOf(RetryingStore);
    expect(fs.capabilities).toEqual(new FsStore({ root: '/tmp/lakeguard-open-test/repo' }).capabilities);
    expect(fs.location).toBe('file:///tmp/lakeguard-open-test/repo/');
    const s3 = openStore('s3://bucket/pre', { endpoint: 'http://127.0.0.1:1', region: 'us-east-1' });
    expect(s3).toBeInstanceOf(S3Store);
    expect(s3.location).toBe('s3://bucket/pre/');
    (s3 as S3Store).destroy();
    for (const bad of ['/abs/path', 'relative/dir', 'gs://bucket/x', 'file://host/dir', 'file:relative']) {
      let err: unknown;
      try {
        openStore(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(UsageError);
      expect((err as Error).message).toContain(bad);
      expect((err as UsageError).hint).toContain('s3://bucket[/prefix] or file:///absolute/directory');
    }
  });
});
