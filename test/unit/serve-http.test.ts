// lakeguard serve's protocol layer over an in-memory view (test/helpers/map-view.ts): an AWS
// SDK client and raw signed requests against the real HTTP server, so routing, SigV4, the XML
// and the object headers are what S3 clients parse. The real view is in serve-*.test.ts and
// test/integration/serve.test.ts.
import { DeleteObjectCommand, GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, ListBucketsCommand, ListObjectsCommand, ListObjectsV2Command, ListObjectVersionsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type AccessEntry, type RunningServer } from '../../src/serve/http-server.js';
import { EMPTY_SHA256, amzDate, signV4 } from '../../src/storage/s3-sigv4.js';
import { MapView, type MapVersion } from '../helpers/map-view.js';

const T1 = Date.UTC(2026, 11, 1, 10, 0, 0);
const T2 = Date.UTC(2026, 11, 2, 10, 0, 0);
const NOW = Date.UTC(2026, 11, 3, 10, 0, 0);
const credentials = { accessKeyId: 'LGUNITKEY', secretAccessKey: 'unit-secret' };

const AWKWARD = ['a b.txt', 'plus+sign', 'amp&<lt>', 'é/ü.parquet', 'dir/sub/x', 'dir/sub/y', 'dir/z', 'dir2/q', 'top'];
const BIG = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

function lake(): Map<string, Map<string, MapVersion[]>> {
  const keys = new Map<string, MapVersion[]>();
  for (const key of AWKWARD) keys.set(key, [{ versionId: `v-${key.length}`, time: T1, body: Buffer.from(`content of ${key}`) }]);
  keys.set('big.bin', [{ versionId: 'b1', time: T1, body: BIG, contentType: 'application/x-test', metadata: { owner: 'ops', note: 'grüße' }, tags: { team: 'data' } }]);
  keys.set('changed', [
    { versionId: 'c1', time: T1, body: Buffer.from('old') },
    { versionId: 'c2', time: T2, body: Buffer.from('new!') },
  ]);
  keys.set('gone', [
    { versionId: 'g1', time: T1, body: Buffer.from('was here') },
    { versionId: 'g2', time: T2, body: null },
  ]);
  // A content type HTTP cannot carry as it is (a source outside S3's header rules recorded it).
  const odd = new Map<string, MapVersion[]>([['odd-type', [{ versionId: 'o1', time: T1, body: Buffer.from('odd'), contentType: 'text/plain\r\nx-injected: 1' }]]]);
  return new Map([['lake', keys], ['other', odd]]);
}

let server: RunningServer;
let view: MapView;
const access: AccessEntry[] = [];
const warnings: string[] = [];
let s3: S3Client;

beforeAll(async () => {
  view = new MapView(lake(), NOW);
  server = await startS3Server(
    { view, credentials, startedAt: NOW, onAccess: (e) => access.push(e), onWarning: (m) => warnings.push(m) },
    { host: '127.0.0.1', port: 0 },
  );
  s3 = new S3Client({ endpoint: server.url, region: 'eu-central-1', forcePathStyle: true, credentials, maxAttempts: 1 });
});
afterAll(async () => {
  s3.destroy();
  await server.stop(1000);
});

/** A request signed as a client would, with `fetch` (statuses and headers as sent). */
async function signed(method: string, path: string, opts: { query?: string; headers?: Record<string, string>; secret?: string; host?: string } = {}): Promise<Response> {
  const host = opts.host ?? new URL(server.url).host;
  const headers = { host, 'x-amz-date': amzDate(new Date()), 'x-amz-content-sha256': EMPTY_SHA256, ...opts.headers };
  const authorization = signV4({ method, path, query: opts.query ?? '', headers, region: 'us-east-1', service: 's3', credentials: { ...credentials, secretAccessKey: opts.secret ?? credentials.secretAccessKey } });
  const { host: _host, ...sent } = headers;
  // fetch cannot set Host: a virtual-host request goes through node:http below.
  return fetch(`${server.url}${path}${opts.query ? `?${opts.query}` : ''}`, { method, headers: { ...sent, authorization } });
}

describe('listing', () => {
  it('lists the view\'s buckets', async () => {
    const out = await s3.send(new ListBucketsCommand({}));
    expect(out.Buckets?.map((b) => b.Name)).toEqual(['lake', 'other']);
  });

  it('pages ListObjectsV2 with a delimiter through continuation tokens, awkward keys intact', async () => {
    const keys: string[] = [];
    const prefixes: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const out = await s3.send(new ListObjectsV2Command({ Bucket: 'lake', Delimiter: '/', MaxKeys: 2, ContinuationToken: token }));
      keys.push(...(out.Contents ?? []).map((c) => c.Key!));
      prefixes.push(...(out.CommonPrefixes ?? []).map((p) => p.Prefix!));
      expect((out.Contents?.length ?? 0) + (out.CommonPrefixes?.length ?? 0)).toBeLessThanOrEqual(2);
      token = out.NextContinuationToken;
      pages++;
    } while (token !== undefined);
    expect(prefixes).toEqual(['dir/', 'dir2/', 'é/']);
    expect(keys).toEqual(['a b.txt', 'amp&<lt>', 'big.bin', 'changed', 'plus+sign', 'top']);
    expect(pages).toBe(5);
  });

  it('answers encoding-type=url with keys encoded so that + and space survive', async () => {
    const res = await signed('GET', '/lake', { query: 'encoding-type=url&list-type=2&prefix=' });
    const xml = await res.text();
    expect(xml).toContain('<Key>a%20b.txt</Key>');
    expect(xml).toContain('<Key>plus%2Bsign</Key>');
    expect(xml).toContain('<EncodingType>url</EncodingType>');
  });

  it('pages ListObjects v1 by NextMarker, a common prefix marker skipping its keys', async () => {
    const seen: string[] = [];
    let marker: string | undefined;
    for (;;) {
      const out = await s3.send(new ListObjectsCommand({ Bucket: 'lake', Prefix: 'dir', Delimiter: '/', MaxKeys: 1, Marker: marker }));
      seen.push(...(out.Contents ?? []).map((c) => c.Key!), ...(out.CommonPrefixes ?? []).map((p) => p.Prefix!));
      if (!out.IsTruncated) break;
      marker = out.NextMarker;
    }
    expect(seen).toEqual(['dir/', 'dir2/']);
  });

  it('lists versions and delete markers up to the instant', async () => {
    const out = await s3.send(new ListObjectVersionsCommand({ Bucket: 'lake', Prefix: 'g' }));
    expect(out.DeleteMarkers?.map((d) => [d.Key, d.VersionId, d.IsLatest])).toEqual([['gone', 'g2', true]]);
    expect(out.Versions?.map((v) => [v.Key, v.VersionId, v.IsLatest])).toEqual([['gone', 'g1', false]]);
  });

  it('refuses a forged continuation token and a bad max-keys with 400 InvalidArgument', async () => {
    const bad = await signed('GET', '/lake', { query: 'list-type=2&continuation-token=bm9wZQ' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('<Code>InvalidArgument</Code>');
    expect((await signed('GET', '/lake', { query: 'max-keys=-1' })).status).toBe(400);
  });
});

describe('objects', () => {
  it('gets an object with its headers and user metadata (RFC 2047 for non-ASCII)', async () => {
    const out = await s3.send(new GetObjectCommand({ Bucket: 'lake', Key: 'big.bin' }));
    expect(Buffer.from(await out.Body!.transformToByteArray())).toEqual(BIG);
    expect(out).toMatchObject({ ETag: '"etag-b1-1000"', ContentLength: 1000, ContentType: 'application/x-test', VersionId: 'b1', TagCount: 1 });
    expect(out.Metadata).toEqual({ owner: 'ops', note: `=?UTF-8?B?${Buffer.from('grüße').toString('base64')}?=` });
    expect(out.LastModified?.getTime()).toBe(T1);
  });

  it('serves an object whose recorded content type HTTP cannot carry as it is: RFC 2047, no injected header', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await signed(method, '/other/odd-type');
      expect(res.status, method).toBe(200);
      expect(res.headers.get('content-type')).toBe(`=?UTF-8?B?${Buffer.from('text/plain\r\nx-injected: 1').toString('base64')}?=`);
      expect(res.headers.get('x-injected')).toBeNull();
      if (method === 'GET') expect(await res.text()).toBe('odd');
    }
  });

  it('reads keys that need encoding in the path', async () => {
    for (const key of AWKWARD) {
      const out = await s3.send(new GetObjectCommand({ Bucket: 'lake', Key: key }));
      expect(await out.Body!.transformToString()).toBe(`content of ${key}`);
    }
  });

  it('serves ranges: 206 with Content-Range, a suffix, an open end, 416 past the end', async () => {
    const mid = await signed('GET', '/lake/big.bin', { headers: { range: 'bytes=100-199' } });
    expect(mid.status).toBe(206);
    expect(mid.headers.get('content-range')).toBe('bytes 100-199/1000');
    expect(Buffer.from(await mid.arrayBuffer())).toEqual(BIG.subarray(100, 200));
    const suffix = await signed('GET', '/lake/big.bin', { headers: { range: 'bytes=-10' } });
    expect(Buffer.from(await suffix.arrayBuffer())).toEqual(BIG.subarray(990));
    const open = await signed('GET', '/lake/big.bin', { headers: { range: 'bytes=995-' } });
    expect(open.headers.get('content-length')).toBe('5');
    const past = await signed('GET', '/lake/big.bin', { headers: { range: 'bytes=1000-1001' } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe('bytes */1000');
    expect(await past.text()).toContain('<Code>InvalidRange</Code>');
    // If-Range: the range while the validator still names the object, else the whole object.
    expect((await signed('GET', '/lake/big.bin', { headers: { range: 'bytes=0-9', 'if-range': '"etag-b1-1000"' } })).status).toBe(206);
    expect((await signed('GET', '/lake/big.bin', { headers: { range: 'bytes=0-9', 'if-range': new Date(T1).toUTCString() } })).status).toBe(206);
    const changed = await signed('GET', '/lake/big.bin', { headers: { range: 'bytes=0-9', 'if-range': '"older"' } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('content-length')).toBe('1000');
  });

  it('honours If-None-Match (304), If-Match (412) and If-Modified-Since', async () => {
    expect((await signed('GET', '/lake/big.bin', { headers: { 'if-none-match': '"etag-b1-1000"' } })).status).toBe(304);
    expect((await signed('GET', '/lake/big.bin', { headers: { 'if-none-match': '"other"' } })).status).toBe(200);
    const failed = await signed('GET', '/lake/big.bin', { headers: { 'if-match': '"other"' } });
    expect(failed.status).toBe(412);
    expect(await failed.text()).toContain('<Code>PreconditionFailed</Code>');
    expect((await signed('GET', '/lake/big.bin', { headers: { 'if-match': '"etag-b1-1000"' } })).status).toBe(200);
    expect((await signed('GET', '/lake/big.bin', { headers: { 'if-modified-since': new Date(T1).toUTCString() } })).status).toBe(304);
    expect((await signed('GET', '/lake/big.bin', { headers: { 'if-modified-since': new Date(T1 - 1000).toUTCString() } })).status).toBe(200);
    expect((await signed('GET', '/lake/big.bin', { headers: { 'if-unmodified-since': new Date(T1 - 1000).toUTCString() } })).status).toBe(412);
  });

  it('heads, tags, versionId, missing keys and delete markers as S3 answers them', async () => {
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'lake', Key: 'changed' }));
    expect(head).toMatchObject({ ContentLength: 4, VersionId: 'c2' });
    const old = await s3.send(new GetObjectCommand({ Bucket: 'lake', Key: 'changed', VersionId: 'c1' }));
    expect(await old.Body!.transformToString()).toBe('old');
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: 'lake', Key: 'big.bin' }))).TagSet).toEqual([{ Key: 'team', Value: 'data' }]);
    const gone = await signed('GET', '/lake/gone');
    expect(gone.status).toBe(404);
    expect(gone.headers.get('x-amz-delete-marker')).toBe('true');
    expect(await gone.text()).toContain('<Code>NoSuchKey</Code>');
    const marker = await signed('GET', '/lake/gone', { query: 'versionId=g2' });
    expect(marker.status).toBe(405);
    const noVersion = await signed('GET', '/lake/changed', { query: 'versionId=zzz' });
    expect(await noVersion.text()).toContain('<Code>NoSuchVersion</Code>');
    const noBucket = await signed('GET', '/nope/x');
    expect(noBucket.status).toBe(404);
    expect(await noBucket.text()).toContain('<Code>NoSuchBucket</Code>');
  });

  it('cuts a body short when the content cannot be read, and warns', async () => {
    view.failAfter = 10;
    try {
      await expect(signed('GET', '/lake/big.bin').then((r) => r.arrayBuffer())).rejects.toThrow();
    } finally {
      delete view.failAfter;
    }
    expect(warnings.some((w) => w.includes('lake/big.bin') && w.includes('pack p1 is damaged'))).toBe(true);
    // Logged with the client's address, though its connection was closed before the log line.
    expect(access.findLast((e) => e.key === 'big.bin')).toMatchObject({ remote: '127.0.0.1', status: 200, error: expect.stringContaining('body cut short') });
  });
});

describe('instants', () => {
  it('answers as of x-lakeguard-at, naming the view in x-lakeguard-view', async () => {
    const now = await signed('GET', '/lake/changed');
    expect(await now.text()).toBe('new!');
    expect(now.headers.get('x-lakeguard-view')).toBe(new Date(NOW).toISOString());
    const then = await signed('GET', '/lake/changed', { headers: { 'x-lakeguard-at': new Date(T1).toISOString() } });
    expect(await then.text()).toBe('old');
    expect(then.headers.get('x-lakeguard-view')).toBe(new Date(T1).toISOString());
    expect((await signed('GET', '/lake/gone', { headers: { 'x-lakeguard-at': new Date(T1).toISOString() } })).status).toBe(200);
  });

  it('answers as of a bucket alias <bucket>--at--<compact instant> (an SDK with path-style)', async () => {
    const out = await s3.send(new GetObjectCommand({ Bucket: 'lake--at--20261201t100000z', Key: 'changed' }));
    expect(await out.Body!.transformToString()).toBe('old');
    const list = await s3.send(new ListObjectsV2Command({ Bucket: 'lake--at--20261201T100000Z', Prefix: 'g' }));
    expect(list.Contents?.map((c) => c.Key)).toEqual(['gone']);
  });

  it('refuses an instant the view cannot answer with 400 InvalidArgument and its reason', async () => {
    const res = await signed('GET', '/lake/changed', { headers: { 'x-lakeguard-at': '2030-01-01T00:00:00Z' } });
    expect(res.status).toBe(400);
    const xml = await res.text();
    expect(xml).toContain('<Code>InvalidArgument</Code>');
    expect(xml).toContain('restart serve');
  });
});

describe('refusals and the access log', () => {
  it('refuses writes with AccessDenied, after authenticating them', async () => {
    await expect(s3.send(new PutObjectCommand({ Bucket: 'lake', Key: 'new', Body: 'x' }))).rejects.toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    await expect(s3.send(new DeleteObjectCommand({ Bucket: 'lake', Key: 'top' }))).rejects.toMatchObject({ name: 'AccessDenied' });
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'lake', Prefix: 'top' }));
    expect(listed.KeyCount).toBe(1);
  });

  it('refuses a wrong secret with SignatureDoesNotMatch, and anonymous requests', async () => {
    const wrong = new S3Client({ endpoint: server.url, region: 'us-east-1', forcePathStyle: true, credentials: { ...credentials, secretAccessKey: 'guess' }, maxAttempts: 1 });
    try {
      await expect(wrong.send(new ListBucketsCommand({}))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
    } finally {
      wrong.destroy();
    }
    const anonymous = await fetch(`${server.url}/lake/top`);
    expect(anonymous.status).toBe(403);
    expect(await anonymous.text()).toContain('<Code>AccessDenied</Code>');
  });

  it('authenticates a request before routing it: no served bucket named to an anonymous client', async () => {
    // An alias and a header that disagree name a served bucket (400) only once signed; a path that does not decode too.
    for (const path of ['/lake--at--20261201z/top', '/lake/%ZZ']) {
      const anonymous = await fetch(`${server.url}${path}`, { headers: { 'x-lakeguard-at': new Date(T2).toISOString() } });
      expect(anonymous.status, path).toBe(403);
      expect(await anonymous.text()).toContain('<Code>AccessDenied</Code>');
    }
    const mismatch = await signed('GET', '/lake--at--20261201z/top', { headers: { 'x-lakeguard-at': new Date(T2).toISOString() } });
    expect(mismatch.status).toBe(400);
  });

  it('refuses an x-lakeguard-at the signature does not cover: a signed request cannot be re-aimed at another instant', async () => {
    const host = new URL(server.url).host;
    const headers = { host, 'x-amz-date': amzDate(new Date()), 'x-amz-content-sha256': EMPTY_SHA256 };
    const authorization = signV4({ method: 'GET', path: '/lake/gone', query: '', headers, region: 'us-east-1', service: 's3', credentials });
    const { host: _host, ...sent } = headers;
    expect((await fetch(`${server.url}/lake/gone`, { headers: { ...sent, authorization } })).status).toBe(404);
    // The same signed request with the header added on the way would read the deleted content.
    const replayed = await fetch(`${server.url}/lake/gone`, { headers: { ...sent, authorization, 'x-lakeguard-at': new Date(T1).toISOString() } });
    expect(replayed.status).toBe(403);
    expect(await replayed.text()).toContain('not signed: x-lakeguard-at');
  });

  it('answers a read it does not implement with 501 NotImplemented', async () => {
    const res = await signed('GET', '/lake', { query: 'acl=' });
    expect(res.status).toBe(501);
    expect(await res.text()).toContain('<Code>NotImplemented</Code>');
  });

  it('logs every request without its signature', async () => {
    await signed('GET', '/lake/top', { query: 'x-id=GetObject' });
    const entry = access.findLast((e) => e.key === 'top' && e.status === 200)!;
    expect(entry).toMatchObject({ method: 'GET', operation: 'GetObject', bucket: 'lake', status: 200, bytes: 'content of top'.length, view: new Date(NOW).toISOString() });
    expect(access.find((e) => e.operation === 'ListObjectVersions')).toMatchObject({ bucket: 'lake', prefix: 'g', status: 200 });
    expect(JSON.stringify(access)).not.toMatch(/AWS4-HMAC|X-Amz-Signature|Credential=|[0-9a-f]{64}/);
  });
});

describe('virtual-host style', () => {
  it('takes the bucket (or its alias) from the Host header', async () => {
    const { request } = await import('node:http');
    const port = new URL(server.url).port;
    const get = (host: string, path: string): Promise<{ status: number; body: string }> => {
      const headers = { host, 'x-amz-date': amzDate(new Date()), 'x-amz-content-sha256': EMPTY_SHA256 };
      const authorization = signV4({ method: 'GET', path, query: '', headers, region: 'us-east-1', service: 's3', credentials });
      return new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, headers: { ...headers, authorization } }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject).end();
      });
    };
    expect(await get(`lake.localhost:${port}`, '/changed')).toEqual({ status: 200, body: 'new!' });
    expect(await get(`lake--at--20261201t100000z.localhost:${port}`, '/changed')).toEqual({ status: 200, body: 'old' });
  });
});

describe('pieces', () => {
  it('writes XML text for any key, control characters as references', async () => {
    const { xmlText } = await import('../../src/serve/s3-responses.js');
    expect(xmlText('a\u0001b\u{1F600}&<\t')).toBe('a&#x1;b\u{1F600}&amp;&lt;\t');
  });

  it('reads bucket aliases: compact instants (any case), run ids, unknown buckets', async () => {
    const { parseBucketName } = await import('../../src/serve/http-route.js');
    const buckets = new Set(['lake', 'odd--at--name']);
    expect(parseBucketName('lake--at--20261201t1000z', buckets)).toEqual({ bucket: 'lake', at: '2026-12-01T10:00:00Z' });
    expect(parseBucketName('lake--at--20261201T100000.250Z', buckets)).toEqual({ bucket: 'lake', at: '2026-12-01T10:00:00.250Z' });
    expect(parseBucketName('lake--at--20261123t101500z-3fa2c1', buckets)).toEqual({ bucket: 'lake', at: '20261123T101500Z-3fa2c1' });
    expect(parseBucketName('odd--at--name', buckets)).toEqual({ bucket: 'odd--at--name' });
    expect(parseBucketName('other--at--20261201z', buckets)).toBeNull();
  });
});

describe('routes', () => {
  it('takes path-style and virtual-host targets apart, and refuses an alias and a header that disagree', async () => {
    const { routeOf } = await import('../../src/serve/http-route.js');
    const buckets = new Set(['lake', 'my.lake']);
    expect(routeOf('/lake/a%2Fb/c%20d?versionId=1', '127.0.0.1:9000', undefined, buckets)).toMatchObject({ bucket: 'lake', key: 'a/b/c d', query: new Map([['versionId', '1']]) });
    expect(routeOf('/x?prefix=p', 'my.lake.s3.local:9000', undefined, buckets)).toMatchObject({ bucket: 'my.lake', key: 'x' });
    expect(routeOf('/', 'lake--at--20261201z.s3.local', undefined, buckets)).toMatchObject({ bucket: 'lake', key: '', at: '2026-12-01T00:00:00Z' });
    expect(routeOf('/nope/k', '127.0.0.1', undefined, buckets)).toMatchObject({ bucket: 'nope', key: 'k' });
    expect(routeOf('/lake--at--20261201z/k', '127.0.0.1', '2026-12-01T00:00:00Z', buckets)).toMatchObject({ bucket: 'lake', at: '2026-12-01T00:00:00Z' });
    expect(() => routeOf('/lake--at--20261201z/k', '127.0.0.1', '2026-12-02', buckets)).toThrow(/name different instants/);
    expect(() => routeOf('/lake/%E0%A4%A', '127.0.0.1', undefined, buckets)).toThrow(/parse the specified URI/);
  });
});

describe('a scoped catalog', () => {
  it('answers inside its scope only, refusing the rest with the reason', async () => {
    const scoped = await startS3Server(
      { view, credentials, startedAt: NOW, outsideScope: (_bucket, prefix) => (prefix.startsWith('dir/') ? undefined : 'this catalog holds only s3://lake/dir/ (scoped)') },
      { host: '127.0.0.1', port: 0 },
    );
    const client = new S3Client({ endpoint: scoped.url, region: 'us-east-1', forcePathStyle: true, credentials, maxAttempts: 1 });
    try {
      const inside = await client.send(new ListObjectsV2Command({ Bucket: 'lake', Prefix: 'dir/', Delimiter: '/' }));
      expect([...(inside.Contents ?? []).map((c) => c.Key), ...(inside.CommonPrefixes ?? []).map((p) => p.Prefix)]).toEqual(['dir/z', 'dir/sub/']);
      expect(await (await client.send(new GetObjectCommand({ Bucket: 'lake', Key: 'dir/z' }))).Body!.transformToString()).toBe('content of dir/z');
      await expect(client.send(new ListObjectsV2Command({ Bucket: 'lake' }))).rejects.toMatchObject({ name: 'AccessDenied', message: expect.stringContaining('holds only s3://lake/dir/') });
      await expect(client.send(new HeadObjectCommand({ Bucket: 'lake', Key: 'top' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
      await expect(client.send(new ListObjectVersionsCommand({ Bucket: 'lake', Prefix: 'di' }))).rejects.toMatchObject({ name: 'AccessDenied' });
      // A bucket not served: a scoped catalog knows only its scope's buckets, so it may well be
      // in the repository: refused with the reason, never "NoSuchBucket".
      await expect(client.send(new ListObjectsV2Command({ Bucket: 'nowhere', Prefix: 'dir/' }))).rejects.toMatchObject({ name: 'AccessDenied', message: expect.stringContaining('holds only s3://lake/dir/') });
      await expect(client.send(new GetObjectCommand({ Bucket: 'nowhere', Key: 'dir/z' }))).rejects.toMatchObject({ name: 'AccessDenied' });
    } finally {
      client.destroy();
      await scoped.stop(1000);
    }
  });
});
