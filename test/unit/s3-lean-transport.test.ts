import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { leanEndpoint, sdkEndpointReason } from '../../src/storage/s3-endpoint.js';
import { parseListV2 } from '../../src/storage/s3-list-xml.js';
import { S3Store } from '../../src/storage/s3-store.js';

describe('parseListV2', () => {
  const page = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${body}</ListBucketResult>\n`;

  it('reads entries, common prefixes, truncation and the continuation token, decoding XML entities', () => {
    const out = parseListV2(
      page(
        '<Name>lake</Name><Prefix>t%2F</Prefix><MaxKeys>2</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>' +
          '<Contents><Key>t%2Fa%26b.json</Key><LastModified>2026-11-23T10:00:00.123Z</LastModified><ETag>&quot;5d41402abc4b2a76b9719d911017c592&quot;</ETag><Size>11</Size><Owner><ID>x</ID><DisplayName>y</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents>' +
          '<Contents><Key>t%2F&#x65e5;.txt</Key><LastModified>2026-11-23T10:00:01.000Z</LastModified><ETag>"abc-2"</ETag><Size>0</Size></Contents>' +
          '<CommonPrefixes><Prefix>t%2Fsub%2F</Prefix></CommonPrefixes><NextContinuationToken>1/abc&amp;def=</NextContinuationToken><KeyCount>3</KeyCount>',
      ),
    );
    expect(out).toEqual({
      IsTruncated: true,
      NextContinuationToken: '1/abc&def=',
      Contents: [
        { Key: 't%2Fa%26b.json', LastModified: new Date('2026-11-23T10:00:00.123Z'), ETag: '"5d41402abc4b2a76b9719d911017c592"', Size: 11, StorageClass: 'STANDARD' },
        { Key: 't%2F日.txt', LastModified: new Date('2026-11-23T10:00:01.000Z'), ETag: '"abc-2"', Size: 0 },
      ],
      CommonPrefixes: [{ Prefix: 't%2Fsub%2F' }],
    });
    expect(parseListV2(page('<IsTruncated>false</IsTruncated>'))).toEqual({ IsTruncated: false, Contents: [], CommonPrefixes: [] });
  });

  it('refuses a page that was cut off', () => {
    const whole = page('<IsTruncated>false</IsTruncated><Contents><Key>a</Key><LastModified>2026-11-23T10:00:00.000Z</LastModified><Size>1</Size></Contents>');
    expect(parseListV2(whole).Contents).toHaveLength(1);
    expect(() => parseListV2(whole.slice(0, whole.length - 30))).toThrow(/XML parse error/);
  });

  // What the fault proxy does (and CI once caught): one byte XOR 0x40. A lenient parser read
  // "<Con4ents>" as no entry at all, so a complete run silently lacked an object.
  it('never reads a page with one damaged byte as fewer entries, another truncation or a bad date or size', () => {
    const entries = Array.from({ length: 6 }, (_, i) =>
      `<Contents><Key>t%2Fdt%3D2026-11-0${i + 1}%2Fpart-${i}.json</Key><LastModified>2026-11-2${i}T10:00:0${i}.123Z</LastModified>` +
        `<ETag>&quot;5d41402abc4b2a76b9719d911017c59${i}&quot;</ETag><Size>${100 + i}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
    ).join('');
    const whole = page(
      `<Name>lake</Name><Prefix>t%2F</Prefix><KeyCount>8</KeyCount><MaxKeys>8</MaxKeys><Delimiter>%2F</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>${entries}` +
        '<CommonPrefixes><Prefix>t%2Fa%2F</Prefix></CommonPrefixes><CommonPrefixes><Prefix>t%2Fb%2F</Prefix></CommonPrefixes><NextContinuationToken>1abc</NextContinuationToken>',
    );
    const good = parseListV2(whole);
    expect(good.Contents).toHaveLength(6);
    let refused = 0;
    for (let at = 0; at < whole.length; at++) {
      const damaged = whole.slice(0, at) + String.fromCharCode(whole.charCodeAt(at) ^ 0x40) + whole.slice(at + 1);
      let out: ReturnType<typeof parseListV2>;
      try {
        out = parseListV2(damaged);
      } catch (err) {
        expect((err as Error).message, `byte ${at}`).toMatch(/XML parse error/);
        refused++;
        continue;
      }
      // Accepted: the damage is in a value a listing cannot check (a key's or ETag's text, a token).
      expect(out.Contents.length, `byte ${at}: ${damaged.slice(at - 20, at + 20)}`).toBe(6);
      expect(out.CommonPrefixes.length, `byte ${at}`).toBe(2);
      expect(out.IsTruncated, `byte ${at}`).toBe(true);
      for (const e of out.Contents) {
        expect(Number.isNaN(e.LastModified.getTime()), `byte ${at}`).toBe(false);
        expect(Number.isSafeInteger(e.Size), `byte ${at}`).toBe(true);
      }
    }
    expect(refused).toBeGreaterThan(whole.length / 2);
  });
});

describe('leanEndpoint', () => {
  it('serves path-style custom endpoints and standard AWS buckets, and leaves the rest to the SDK', () => {
    const lean = (endpoint: string | undefined, bucket: string, pathStyle: boolean, region: string | undefined) =>
      sdkEndpointReason({ endpoint, bucket, pathStyle }, {}) === null ? leanEndpoint({ endpoint, bucket, pathStyle }, region) : null;
    expect(lean('http://127.0.0.1:7480', 'b', true, 'us-east-1')).toEqual({ origin: 'http://127.0.0.1:7480', pathStyle: true, region: 'us-east-1' });
    expect(lean('http://127.0.0.1:7480/s3', 'b', true, 'us-east-1')).toBeNull(); // a path prefix
    expect(lean(undefined, 'my-lake', false, 'eu-west-1')).toEqual({ origin: 'https://my-lake.s3.eu-west-1.amazonaws.com', pathStyle: false, region: 'eu-west-1' });
    expect(lean(undefined, 'my.lake', false, 'eu-west-1')).toBeNull(); // dots: TLS names do not match
    expect(lean(undefined, 'my-lake', false, undefined)).toBeNull();
  });
});

describe('S3Store GET without the SDK', () => {
  let server: http.Server;
  let endpoint = '';
  const seen: http.IncomingHttpHeaders[] = [];
  const paths: string[] = [];
  const methods: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push(req.headers);
      paths.push(req.url ?? '');
      methods.push(req.method ?? '');
      if (req.url?.startsWith('/lake/?')) {
        const q = new URL(req.url, 'http://x').searchParams;
        const all = ['a b', 'c+d', 'e/f', 'g'];
        const from = q.get('continuation-token') === null ? 0 : Number(q.get('continuation-token'));
        const keys = all.slice(from, from + Number(q.get('max-keys')));
        const more = from + keys.length < all.length;
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(
          `<ListBucketResult><IsTruncated>${more}</IsTruncated>${more ? `<NextContinuationToken>${from + keys.length}</NextContinuationToken>` : ''}` +
            keys.map((k) => `<Contents><Key>${encodeURIComponent(k)}</Key><LastModified>2026-11-23T10:00:00.000Z</LastModified><ETag>"e"</ETag><Size>${k.length}</Size></Contents>`).join('') +
            '</ListBucketResult>',
        );
        return;
      }
      if (req.url?.startsWith('/lake/missing')) {
        res.writeHead(404, { 'content-type': 'application/xml', 'x-amz-request-id': 'r1' });
        res.end('<?xml version="1.0"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>');
        return;
      }
      if (req.url?.startsWith('/lake/denied')) {
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end('<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
        return;
      }
      if (req.url?.startsWith('/lake/cut')) {
        // Headers promise 64 bytes; 40 arrive in two writes, then the connection drops.
        res.writeHead(200, { 'content-length': '64', etag: '"5d41402abc4b2a76b9719d911017c592"', 'last-modified': 'Mon, 23 Nov 2026 10:00:00 GMT' });
        res.write(Buffer.alloc(20, 1));
        setTimeout(() => {
          res.write(Buffer.alloc(20, 2));
          setTimeout(() => res.destroy(), 5);
        }, 5);
        return;
      }
      if (req.url?.startsWith('/lake/slow')) {
        res.writeHead(503, { 'retry-after': '0' });
        res.end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
        return;
      }
      const whole = Buffer.from('hello, lake');
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      const body = range ? whole.subarray(Number(range[1]), Number(range[2]) + 1) : whole;
      res.writeHead(range ? 206 : 200, {
        ...(range ? { 'content-range': `bytes ${range[1]}-${range[2]}/${whole.length}` } : {}),
        'content-length': String(body.length),
        etag: '"5d41402abc4b2a76b9719d911017c592"',
        'last-modified': 'Mon, 23 Nov 2026 10:00:00 GMT',
        'x-amz-version-id': 'v123',
        'content-type': 'application/json',
        'cache-control': 'no-cache',
        'x-amz-meta-owner': 'team-a',
        'x-amz-meta-Source': 'ingest',
        'x-amz-tagging-count': '2',
        'x-amz-storage-class': 'STANDARD_IA',
        'x-amz-server-side-encryption': 'AES256',
      });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  /** What the server above answers for 'dir/a b.json', as the store reports it. */
  const servedMeta = {
    size: 11,
    etag: '5d41402abc4b2a76b9719d911017c592',
    lastModified: new Date('2026-11-23T10:00:00Z'),
    versionId: 'v123',
    metadata: { owner: 'team-a', source: 'ingest' },
    storageClass: 'STANDARD_IA',
    contentType: 'application/json',
    cacheControl: 'no-cache',
    tagCount: 2,
    sse: 'AES256',
  };

  const store = (): S3Store =>
    new S3Store({ bucket: 'lake', endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK', sessionToken: 'TOKEN' }, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });

  it('reads the body and every header the SDK would have given, and signs the request', async () => {
    const s = store();
    const got = await s.get('dir/a b.json', { versionId: 'v123' });
    const chunks: Buffer[] = [];
    for await (const c of got.body) chunks.push(c as Buffer);
    s.destroy();
    expect(Buffer.concat(chunks).toString()).toBe('hello, lake');
    expect(got.meta).toEqual(servedMeta);
    expect(paths.at(-1)).toBe('/lake/dir/a%20b.json?versionId=v123');
    const h = seen.at(-1)!;
    expect(h.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AK\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/);
    expect(h['x-amz-security-token']).toBe('TOKEN');
    expect(s.stats.get).toBe(1);
  });

  // A restore to S3 heads its target key: the SDK for that one request was ~0.15 s of CPU.
  it('heads an object: the same headers as a GET, a body-less 404 as NotFound, signed as HEAD', async () => {
    const s = store();
    const meta = await s.head('dir/a b.json', { versionId: 'v123' });
    expect(methods.at(-1)).toBe('HEAD');
    expect(paths.at(-1)).toBe('/lake/dir/a%20b.json?versionId=v123');
    expect(meta).toEqual(servedMeta);
    expect(seen.at(-1)!.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AK\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/);
    const missing = await s.head('missing.json').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(StorageError);
    expect((missing as StorageError).code).toBe('NotFound');
    expect((missing as StorageError).message).toMatch(/HEAD s3:\/\/lake\/missing\.json: NotFound \(404\)/);
    expect(methods.at(-1)).toBe('HEAD');
    s.destroy();
  });

  it('reads a body up to bufferUpTo whole (counted, streamable too), a larger one as a stream, and fails a body cut off', async () => {
    const s = store();
    const whole = await s.get('a.json', { bufferUpTo: 11 });
    expect(whole.bytes?.toString()).toBe('hello, lake');
    expect(s.stats.bytesIn).toBe(11);
    const streamed: Buffer[] = [];
    for await (const c of whole.body) streamed.push(c as Buffer);
    expect(Buffer.concat(streamed).toString()).toBe('hello, lake');
    expect(whole.meta).toMatchObject({ size: 11, etag: '5d41402abc4b2a76b9719d911017c592', versionId: 'v123' });
    const larger = await s.get('a.json', { bufferUpTo: 10 });
    expect(larger.bytes).toBeUndefined();
    const chunks: Buffer[] = [];
    for await (const c of larger.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello, lake');
    const cut = await s.get('cut.json', { bufferUpTo: 1024 }).catch((e: unknown) => e);
    s.destroy();
    expect(cut).toBeInstanceOf(StorageError);
    expect(cut).toMatchObject({ code: 'Network', retryable: true });
    expect((cut as StorageError).message).toMatch(/GET \(reading body\) s3:\/\/lake\/cut\.json/);
  });

  it('maps error answers like SDK errors: NotFound, AccessDenied, and retried throttling', async () => {
    const s = store();
    const missing = await s.get('missing.json').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(StorageError);
    expect((missing as StorageError).code).toBe('NotFound');
    expect((missing as StorageError).message).toMatch(/GET s3:\/\/lake\/missing\.json: NoSuchKey \(404\)/);
    const denied = await s.get('denied.json').catch((e: unknown) => e);
    expect((denied as StorageError).code).toBe('AccessDenied');
    const before = s.stats.get;
    const slow = await s.get('slow.json').catch((e: unknown) => e);
    expect((slow as StorageError).code).toBe('Throttled');
    expect(s.stats.get - before).toBe(2); // both attempts
    s.destroy();
  });

  it('lists page by page with continuation tokens, decoding url-encoded keys', async () => {
    const s = new S3Store({ bucket: 'lake', endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' }, listPageSize: 3 });
    const keys: string[] = [];
    for await (const item of s.list('')) if (item.kind === 'object') keys.push(`${item.key}:${item.size}`);
    s.destroy();
    expect(keys).toEqual(['a b:3', 'c+d:3', 'e/f:3', 'g:1']);
    const lists = paths.filter((p) => p.startsWith('/lake/?'));
    expect(lists.slice(-2)).toEqual(['/lake/?encoding-type=url&list-type=2&max-keys=3&prefix=', '/lake/?continuation-token=3&encoding-type=url&list-type=2&max-keys=3&prefix=']);
    expect(s.stats.list).toBe(2);
  });

  it('sends ranges and reads the size from Content-Range', async () => {
    const s = store();
    const got = await s.get('a.json', { range: { start: 2, end: 5 } });
    const chunks: Buffer[] = [];
    for await (const c of got.body) chunks.push(c as Buffer);
    s.destroy();
    expect(seen.at(-1)!.range).toBe('bytes=2-5');
    expect(Buffer.concat(chunks).toString()).toBe('llo,');
    expect(got.meta.size).toBe(11);
  });
});

describe('S3Store requests aborted by their signal (one shared listener)', () => {
  let server: http.Server;
  let endpoint = '';
  /** Requests the server got and never answers (or answers half): resolved when each arrives, with a promise of its close. */
  const arrivals: ((arrived: { closed: Promise<void> }) => void)[] = [];
  const nextArrival = (): Promise<{ closed: Promise<void> }> => new Promise((r) => arrivals.push(r));

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const closed = new Promise<void>((r) => res.once('close', () => r()));
      // 'stall': headers and part of the body, then nothing; any other key: no answer at all.
      if (req.url?.startsWith('/lake/stall')) {
        res.writeHead(200, { 'content-length': '64', etag: '"5d41402abc4b2a76b9719d911017c592"', 'last-modified': 'Mon, 23 Nov 2026 10:00:00 GMT' });
        res.write(Buffer.alloc(10, 1));
      }
      arrivals.shift()?.({ closed });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });

  const store = (): S3Store => new S3Store({ bucket: 'lake', endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' }, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });

  it('ends every request in flight on one signal, waiting for headers or reading a body whole, with the abort reason', async () => {
    const s = store();
    const ac = new AbortController();
    const arrived = [nextArrival(), nextArrival(), nextArrival()];
    const gets = [
      s.get('hang-1.json', { signal: ac.signal, bufferUpTo: 1024 }).catch((e: unknown) => e),
      s.get('hang-2.json', { signal: ac.signal }).catch((e: unknown) => e),
      s.get('stall.json', { signal: ac.signal, bufferUpTo: 1024 }).catch((e: unknown) => e),
    ];
    const closed = (await Promise.all(arrived)).map((a) => a.closed);
    const reason = new Error('run interrupted');
    ac.abort(reason);
    // The server sees each connection close: the requests were destroyed, not left hanging.
    await Promise.all(closed);
    expect(await Promise.all(gets)).toEqual([reason, reason, reason]);
    expect(s.stats.get).toBe(3);
    s.destroy();
  });

  it('still ends requests on a signal that earlier requests finished with, and never sends one whose signal already aborted', async () => {
    const s = store();
    const ac = new AbortController();
    const first = nextArrival();
    const get = s.get('hang-3.json', { signal: ac.signal }).catch((e: unknown) => e);
    const { closed } = await first;
    ac.abort(new Error('stop'));
    await closed;
    expect(await get).toMatchObject({ message: 'stop' });
    const late = await s.get('hang-4.json', { signal: ac.signal }).catch((e: unknown) => e);
    expect(late).toMatchObject({ message: 'stop' });
    expect(arrivals).toHaveLength(0);
    s.destroy();
  });
});

describe('S3Store PUT, DELETE and versioning without the SDK', () => {
  let server: http.Server;
  let endpoint = '';
  const requests: { method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
        if (req.url === '/lake/?versioning=') {
          res.writeHead(200, { 'content-type': 'application/xml' });
          res.end('<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Suspended</Status></VersioningConfiguration>');
        } else if (req.url === '/other/?versioning=') {
          res.writeHead(200, { 'content-type': 'application/xml' });
          res.end('<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>');
        } else if (req.method === 'PUT' && req.headers['if-none-match'] === '*' && req.url === '/lake/exists') {
          res.writeHead(412, { 'content-type': 'application/xml' });
          res.end('<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>');
        } else if (req.method === 'PUT') {
          res.writeHead(200, { etag: '"0123456789abcdef0123456789abcdef"', 'x-amz-version-id': 'v7' });
          res.end();
        } else if (req.method === 'HEAD') {
          res.writeHead(200, { 'content-length': '1', etag: '"0123456789abcdef0123456789abcdef"' });
          res.end();
        } else if (req.method === 'DELETE') {
          res.writeHead(204);
          res.end();
        } else {
          res.writeHead(400);
          res.end();
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const store = (bucket = 'lake'): S3Store =>
    new S3Store({ bucket, endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' }, retry: { maxAttempts: 1 } });

  it('puts a Buffer with its checksums, headers and signature, and reads ETag and version', async () => {
    const s = store();
    const body = Buffer.from('{"pack":1}\n');
    const until = new Date(Date.UTC(2027, 0, 2, 3, 4, 5));
    const put = await s.put('dir/a b.json', body, { contentType: 'application/json', cacheControl: 'no-store', sseKmsKeyId: 'key-1', objectLock: { mode: 'COMPLIANCE', retainUntil: until }, ifNoneMatch: true });
    s.destroy();
    expect(put).toEqual({ etag: '0123456789abcdef0123456789abcdef', versionId: 'v7' });
    const r = requests.at(-1)!;
    expect([r.method, r.url, r.body.toString()]).toEqual(['PUT', '/lake/dir/a%20b.json', body.toString()]);
    expect(r.headers).toMatchObject({
      'content-length': String(body.length),
      'content-md5': createHash('md5').update(body).digest('base64'),
      'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'x-amz-server-side-encryption': 'aws:kms',
      'x-amz-server-side-encryption-aws-kms-key-id': 'key-1',
      'x-amz-object-lock-mode': 'COMPLIANCE',
      'x-amz-object-lock-retain-until-date': '2027-01-02T03:04:05Z',
      'if-none-match': '*',
    });
    // Every header that says what is written is signed, the body through its SHA-256.
    const signed = /SignedHeaders=([^,]+),/.exec(r.headers.authorization ?? '')?.[1]?.split(';');
    expect(signed).toEqual(expect.arrayContaining(['content-md5', 'content-type', 'host', 'if-none-match', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-object-lock-mode', 'x-amz-server-side-encryption']));
    expect(r.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AK\/\d{8}\/eu-west-1\/s3\/aws4_request, /);
    expect(s.stats.put).toBe(1);
  });

  it('maps a failed create-only PUT to PreconditionFailed', async () => {
    const s = store();
    const err = await s.put('exists', Buffer.from('x'), { ifNoneMatch: true }).catch((e: unknown) => e);
    s.destroy();
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('PreconditionFailed');
  });

  it('deletes an object or one version of it, and reads the versioning state', async () => {
    const s = store();
    await s.delete('dir/x.json');
    await s.delete('dir/x.json', { versionId: 'v 1' });
    expect(requests.slice(-2).map((r) => `${r.method} ${r.url}`)).toEqual(['DELETE /lake/dir/x.json', 'DELETE /lake/dir/x.json?versionId=v%201']);
    expect(await s.versioningEnabled()).toBe(true); // suspended still holds versions
    expect(await store('other').versioningEnabled()).toBe(false);
    expect(s.stats.delete).toBe(2);
    s.destroy();
  });

  it('does all of it without loading the AWS SDK when the credentials are in the environment', async () => {
    const script = `
      import { createRequire } from 'node:module';
      const { S3Store } = await import(${JSON.stringify(new URL('../../dist/storage/s3-store.js', import.meta.url).href)});
      const s = new S3Store({ bucket: 'lake', endpoint: ${JSON.stringify(endpoint)} });
      await s.put('k', Buffer.from('v'), { contentType: 'text/plain' });
      await s.versioningEnabled();
      await s.head('k');
      await s.delete('k');
      s.destroy();
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((p) => p.includes('@aws-sdk') || p.includes('@smithy'));
      console.log(JSON.stringify(loaded));
    `;
    // Not spawnSync: the child's requests need this process's server to answer.
    const run = (env: Record<string, string>) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', ...env } }, (err, stdout, stderr) =>
          resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
        );
      });
    const lean = await run({ AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK' });
    expect(lean.stderr).toBe('');
    expect(JSON.parse(lean.stdout)).toEqual([]);
    expect(requests.at(-1)!.headers.authorization).toMatch(/Credential=AK\//);
    // A named profile is the SDK's to resolve (it skips the environment's keys then).
    const profile = await run({ AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK', AWS_PROFILE: 'p', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true' });
    expect(profile.status).not.toBe(0);
    expect(profile.stderr).toMatch(/profile|credential/i);
  });
});
