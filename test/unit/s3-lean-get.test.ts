import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { amzDate, parseListV2, signV4, uriEncode } from '../../src/storage/s3-lean-get.js';
import { S3Store, leanOrigin } from '../../src/storage/s3-store.js';

describe('signV4', () => {
  // The GET Object example of the AWS documentation ("Signature Calculations for the
  // Authorization Header: Transferring Payload in a Single Chunk").
  it('signs the documented GET Object example exactly as AWS does', () => {
    const auth = signV4({
      method: 'GET',
      path: '/test.txt',
      query: '',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        range: 'bytes=0-9',
        'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'x-amz-date': '20130524T000000Z',
      },
      region: 'us-east-1',
      service: 's3',
      credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
    });
    expect(auth).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });

  it('encodes keys as SigV4 wants (RFC 3986, slashes kept in paths only)', () => {
    expect(uriEncode("a b/c+d!'()*~é", true)).toBe('a%20b/c%2Bd%21%27%28%29%2A~%C3%A9');
    expect(uriEncode('a/b', false)).toBe('a%2Fb');
    expect(amzDate(new Date(Date.UTC(2026, 10, 23, 16, 5, 9, 123)))).toBe('20261123T160509Z');
  });
});

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

describe('leanOrigin', () => {
  it('serves path-style custom endpoints and standard AWS buckets, and leaves the rest to the SDK', () => {
    expect(leanOrigin('http://127.0.0.1:7480', 'b', true, 'us-east-1')).toEqual({ origin: 'http://127.0.0.1:7480', pathStyle: true, region: 'us-east-1' });
    expect(leanOrigin('http://127.0.0.1:7480/s3', 'b', true, 'us-east-1')).toBeNull(); // a path prefix
    expect(leanOrigin(undefined, 'my-lake', false, 'eu-west-1')).toEqual({ origin: 'https://my-lake.s3.eu-west-1.amazonaws.com', pathStyle: false, region: 'eu-west-1' });
    expect(leanOrigin(undefined, 'my.lake', false, 'eu-west-1')).toBeNull(); // dots: TLS names do not match
    expect(leanOrigin(undefined, 'my-lake', false, undefined)).toBeNull();
  });
});

describe('S3Store GET without the SDK', () => {
  let server: http.Server;
  let endpoint = '';
  const seen: http.IncomingHttpHeaders[] = [];
  const paths: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push(req.headers);
      paths.push(req.url ?? '');
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

  const store = (): S3Store =>
    new S3Store({ bucket: 'lake', endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK', sessionToken: 'TOKEN' }, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });

  it('reads the body and every header the SDK would have given, and signs the request', async () => {
    const s = store();
    const got = await s.get('dir/a b.json', { versionId: 'v123' });
    const chunks: Buffer[] = [];
    for await (const c of got.body) chunks.push(c as Buffer);
    s.destroy();
    expect(Buffer.concat(chunks).toString()).toBe('hello, lake');
    expect(got.meta).toEqual({
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
    });
    expect(paths.at(-1)).toBe('/lake/dir/a%20b.json?versionId=v123');
    const h = seen.at(-1)!;
    expect(h.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AK\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/);
    expect(h['x-amz-security-token']).toBe('TOKEN');
    expect(s.stats.get).toBe(1);
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
