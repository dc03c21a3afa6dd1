import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { copySourceHeader } from '../../src/storage/s3-object-fields.js';
import { parseCopyResult } from '../../src/storage/s3-lean-transport.js';
import { S3RequestError } from '../../src/storage/s3-transport.js';
import type { S3Store } from '../../src/storage/s3-store.js';
import { getBytes } from '../../src/storage/types.js';
import { S3_OTHER_USER, createTestBucket, emptyAndDeleteBucket, testS3Client, testS3Store } from '../helpers/s3-env.js';

// Server-side copy of an object version (rollback's CopyObject and UploadPartCopy) against the
// real server, through both transports: the lean one (SigV4 headers of its own) and the SDK's.

/** Keys of a Hive-partitioned lake and the characters a copy source must encode. */
const KEYS = ['plain/a.txt', 'dt=2026-01-01/part 0.parquet', 'pct/100%25 done%.csv', 'uni/zoë/データ.json', 'plus/a+b=c&d?.bin'];

describe.each([
  { transport: 'lean', extra: {} },
  { transport: 'sdk', extra: { client: testS3Client() } },
])('copyVersion through the $transport transport', ({ transport, extra }) => {
  let bucket: string;
  let store: S3Store;

  beforeAll(async () => {
    bucket = await createTestBucket(`copy-${transport}`, { versioning: true });
    store = testS3Store(bucket, '', extra);
    expect(store.transport.kind).toBe(transport);
  });
  afterAll(async () => {
    store.destroy();
    await emptyAndDeleteBucket(bucket);
  });

  it.each(KEYS)('copies an old version of %s back with its type, metadata and tags', async (key) => {
    const old = await store.put(key, Buffer.from(`old ${key}`), { contentType: 'application/x-old', metadata: { origin: 'good', n: '1' }, tags: { state: 'clean', k: 'v=1' } });
    await store.put(key, Buffer.from('ransom'), { contentType: 'text/plain', metadata: { origin: 'bad' } });
    const before = { ...store.stats };
    const copied = await store.copyVersion(key, { key, versionId: old.versionId!, size: `old ${key}`.length });
    // (Ceph 16 does not say which version a copy made: versionId may be null.)
    expect(copied.etag).toBe(old.etag);
    // One request, no object byte through the client.
    expect(store.stats.put - before.put).toBe(1);
    expect(store.stats.bytesIn - before.bytesIn).toBe(0);
    expect(store.stats.bytesOut - before.bytesOut).toBe(0);
    const meta = await store.head(key);
    expect(meta.versionId).not.toBe(old.versionId);
    expect(meta.contentType).toBe('application/x-old');
    expect(meta.metadata).toEqual({ origin: 'good', n: '1' });
    expect((await getBytes(store, key)).toString()).toBe(`old ${key}`);
    expect(await store.getTags(key)).toEqual({ state: 'clean', k: 'v=1' });
  });

  it('copies above the multipart threshold in parts (UploadPartCopy), metadata and tags included', async () => {
    const small = testS3Store(bucket, '', { ...extra, multipartCopyThreshold: 1, copyPartSize: 5 * 1024 * 1024 });
    try {
      const key = 'big/dt=2026-01-02/large part.bin';
      const data = randomBytes(12 * 1024 * 1024 + 17);
      const old = await small.put(key, data, { contentType: 'application/vnd.apache.parquet', metadata: { rows: '42' }, tags: { tier: 'gold' } });
      await small.put(key, Buffer.from('poison'));
      const before = { ...small.stats };
      const copied = await small.copyVersion(key, { key, versionId: old.versionId!, size: data.length });
      // HEAD + GET tagging, create, 3 parts, complete, PUT tagging; no byte through the client.
      expect(small.stats.put - before.put).toBe(6);
      expect(small.stats.bytesIn - before.bytesIn).toBe(0);
      expect(small.stats.bytesOut - before.bytesOut).toBe(0);
      const meta = await small.head(key);
      expect(meta.etag).toBe(copied.etag);
      expect(meta.versionId).not.toBe(old.versionId);
      expect(meta.size).toBe(data.length);
      expect(meta.contentType).toBe('application/vnd.apache.parquet');
      expect(meta.metadata).toEqual({ rows: '42' });
      expect(await small.getTags(key)).toEqual({ tier: 'gold' });
      expect((await getBytes(small, key)).equals(data)).toBe(true);
    } finally {
      small.destroy();
    }
  });

  it('a multipart copy that fails is aborted: no upload is left behind', async () => {
    const small = testS3Store(bucket, '', { ...extra, multipartCopyThreshold: 1, copyPartSize: 5 * 1024 * 1024, retry: { maxAttempts: 1 } });
    try {
      const key = 'big/broken.bin';
      const old = await small.put(key, randomBytes(11 * 1024 * 1024));
      // The second part is refused (as a server refuses a part whose source went away); the
      // create and the abort are the real server's.
      const partCopy = small.transport.uploadPartCopy.bind(small.transport);
      small.transport.uploadPartCopy = (k, part, signal) =>
        part.partNumber === 2 ? Promise.reject(new S3RequestError('gone', { status: 404, code: 'NoSuchVersion' })) : partCopy(k, part, signal);
      const err = await small.copyVersion(key, { key, versionId: old.versionId!, size: 11 * 1024 * 1024 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).message).toContain('part 2 of 3');
      const { ListMultipartUploadsCommand } = await import('@aws-sdk/client-s3');
      const uploads = await testS3Client().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      expect(uploads.Uploads ?? []).toEqual([]);
    } finally {
      small.destroy();
    }
  });

  it('a copy of a version that does not exist is NotFound; one without rights is AccessDenied', async () => {
    await store.put('gone.txt', Buffer.from('x'));
    const missing = await store.copyVersion('gone.txt', { key: 'gone.txt', versionId: 'no-such-version-id', size: 1 }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(StorageError);
    expect((missing as StorageError).code).toBe('NotFound');
    expect((missing as StorageError).message).toContain('COPY from version no-such-version-id');
    const other = testS3Store(bucket, '', {
      credentials: S3_OTHER_USER,
      retry: { maxAttempts: 1 },
      ...(transport === 'sdk' ? { client: testS3Client(S3_OTHER_USER) } : {}),
    });
    try {
      const denied = await other.copyVersion('elsewhere.txt', { key: 'gone.txt', size: 1 }).catch((e: unknown) => e);
      expect(denied).toBeInstanceOf(StorageError);
      expect((denied as StorageError).code).toBe('AccessDenied');
      expect((denied as StorageError).message).toContain('COPY');
    } finally {
      other.destroy();
    }
  });
});

describe('copySourceHeader', () => {
  it('percent-encodes every segment of the key and the version id, keeping the slashes', () => {
    expect(copySourceHeader('lake', 'dt=2026-01-01/part 0.parquet', 'v1')).toBe('/lake/dt%3D2026-01-01/part%200.parquet?versionId=v1');
    expect(copySourceHeader('lake', "a+b/100%/zoë(1)!*'")).toBe('/lake/a%2Bb/100%25/zo%C3%AB%281%29%21%2A%27');
  });
});

describe('parseCopyResult', () => {
  it('reads the ETag, and an error inside a 200 answer as a retryable server error', () => {
    expect(parseCopyResult('<CopyObjectResult><ETag>"abc"</ETag></CopyObjectResult>', 200, undefined)).toEqual({ etag: '"abc"' });
    const err = (() => {
      try {
        return parseCopyResult('<Error><Code>InternalError</Code><Message>copy broke off</Message></Error>', 200, 'r1');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(S3RequestError);
    expect(err).toMatchObject({ status: 500, code: 'InternalError', message: 'copy broke off', requestId: 'r1' });
    expect(() => parseCopyResult('<Other/>', 200, undefined)).toThrow(/without CopyObjectResult/);
  });
});
