// Proves the S3 semantics lakeguard relies on against the real test server (Ceph RGW),
// with the AWS SDK directly: if one of these fails, the server (or the SDK settings in
// test/helpers/s3-env.ts) changed, not lakeguard.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, describe, expect, it } from 'vitest';
import {
  S3_OTHER_USER,
  S3_TEST,
  S3_TEST_KMS_KEY_ID,
  createTestBucket,
  emptyAndDeleteBucket,
  testS3Client,
} from '../helpers/s3-env.js';

const s3 = testS3Client();
const buckets: string[] = [];
async function bucket(prefix: string, opts?: { versioning?: boolean; objectLock?: boolean }): Promise<string> {
  const name = await createTestBucket(prefix, opts);
  buckets.push(name);
  return name;
}
afterAll(async () => {
  for (const b of buckets) await emptyAndDeleteBucket(b);
});

async function bodyOf(out: { Body?: unknown }): Promise<Buffer> {
  return Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

/** Awaits a request that must fail with the given S3 error code and HTTP status. */
async function expectS3Error(p: Promise<unknown>, code: string, status: number): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as { name: string; $metadata?: { httpStatusCode?: number } },
  );
  expect(err, `expected ${code}`).toBeDefined();
  expect({ code: err!.name, status: err!.$metadata?.httpStatusCode }).toEqual({ code, status });
}

describe('the test S3 server', () => {
  it('is the one the global setup announced to this worker', () => {
    // globalSetup sets process.env before the workers are forked; this proves they see it.
    expect(process.env.LAKEGUARD_S3_ENDPOINT).toBe(S3_TEST.endpoint);
  });

  it('keeps every version and delete marker, newest first, readable by versionId', async () => {
    const b = await bucket('lg-versions', { versioning: true });
    const ids: string[] = [];
    for (const body of ['one', 'two', 'three']) {
      const put = await s3.send(new PutObjectCommand({ Bucket: b, Key: 'k', Body: body }));
      expect(put.VersionId).toBeTruthy();
      ids.push(put.VersionId!);
    }
    const del = await s3.send(new DeleteObjectCommand({ Bucket: b, Key: 'k' }));
    expect(del.DeleteMarker).toBe(true);

    const list = await s3.send(new ListObjectVersionsCommand({ Bucket: b, Prefix: 'k' }));
    expect(list.Versions?.map((v) => v.VersionId)).toEqual([...ids].reverse());
    expect(list.Versions?.map((v) => v.IsLatest)).toEqual([false, false, false]);
    expect(list.Versions?.map((v) => v.Size)).toEqual([5, 3, 3]);
    expect(list.DeleteMarkers).toHaveLength(1);
    expect(list.DeleteMarkers![0]).toMatchObject({ Key: 'k', VersionId: del.VersionId, IsLatest: true });
    const times = list.Versions!.map((v) => v.LastModified!.getTime());
    expect([...times].sort((x, y) => y - x)).toEqual(times);

    for (const [i, body] of ['one', 'two', 'three'].entries()) {
      const got = await s3.send(new GetObjectCommand({ Bucket: b, Key: 'k', VersionId: ids[i] }));
      expect((await bodyOf(got)).toString()).toBe(body);
    }
    // The current version is the delete marker: a plain GET is a 404.
    await expectS3Error(s3.send(new GetObjectCommand({ Bucket: b, Key: 'k' })), 'NoSuchKey', 404);
  });

  it('paginates ListObjectsV2 with MaxKeys, delimiter and common prefixes', async () => {
    const b = await bucket('lg-list');
    const keys = ['a/1', 'a/2', 'b/1', 'b/x/2', 'c', 'd', 'e'];
    await Promise.all(keys.map((Key) => s3.send(new PutObjectCommand({ Bucket: b, Key, Body: Key }))));

    async function listAll(extra: { Delimiter?: string; Prefix?: string }) {
      const pages: ListObjectsV2CommandOutput[] = [];
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: b, MaxKeys: 2, ContinuationToken: token, ...extra }));
        pages.push(page);
        token = page.NextContinuationToken;
        expect(Boolean(token)).toBe(page.IsTruncated === true);
      } while (token);
      return {
        pages: pages.length,
        keys: pages.flatMap((p) => (p.Contents ?? []).map((c) => c.Key)),
        prefixes: pages.flatMap((p) => (p.CommonPrefixes ?? []).map((c) => c.Prefix)),
        perPage: pages.map((p) => (p.Contents?.length ?? 0) + (p.CommonPrefixes?.length ?? 0)),
      };
    }

    const flat = await listAll({});
    expect(flat.keys).toEqual(keys);
    expect(flat.pages).toBe(4);

    // Common prefixes count towards MaxKeys, as on AWS.
    const top = await listAll({ Delimiter: '/' });
    expect(top.prefixes).toEqual(['a/', 'b/']);
    expect(top.keys).toEqual(['c', 'd', 'e']);
    expect(top.perPage).toEqual([2, 2, 1]);

    const inB = await listAll({ Delimiter: '/', Prefix: 'b/' });
    expect(inB).toMatchObject({ keys: ['b/1'], prefixes: ['b/x/'] });
  });

  it('round-trips a 12 MiB multipart upload byte-exact (ETag from HEAD)', async () => {
    const b = await bucket('lg-multipart');
    const partSize = 5 * 1024 * 1024;
    const data = randomBytes(12 * 1024 * 1024);
    // A stream in 1 MiB chunks, as a real source object would arrive.
    const chunks = Array.from({ length: 12 }, (_, i) => data.subarray(i << 20, (i + 1) << 20));
    const done = await new Upload({
      client: s3,
      params: { Bucket: b, Key: 'big.bin', Body: Readable.from(chunks) },
      partSize,
      queueSize: 2,
    }).done();

    const md5 = (buf: Buffer) => createHash('md5').update(buf).digest();
    const parts = [0, 1, 2].map((i) => md5(data.subarray(i * partSize, (i + 1) * partSize)));
    const expectedEtag = `"${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-3"`;
    const head = await s3.send(new HeadObjectCommand({ Bucket: b, Key: 'big.bin' }));
    expect(head.ContentLength).toBe(data.length);
    expect(head.ETag).toBe(expectedEtag);
    // Quirk: RGW's CompleteMultipartUpload answer may carry an empty ETag; HEAD has it.
    expect([undefined, '', expectedEtag]).toContain(done.ETag);

    const got = await bodyOf(await s3.send(new GetObjectCommand({ Bucket: b, Key: 'big.bin' })));
    expect(got.length).toBe(data.length);
    expect(got.equals(data)).toBe(true);

    // Ranged GET across a part boundary.
    const range = await s3.send(
      new GetObjectCommand({ Bucket: b, Key: 'big.bin', Range: `bytes=${partSize - 10}-${partSize + 9}` }),
    );
    expect(range.$metadata.httpStatusCode).toBe(206);
    expect((await bodyOf(range)).equals(data.subarray(partSize - 10, partSize + 10))).toBe(true);
  });

  it('enforces object lock: retained versions refuse deletion, governance can be bypassed', async () => {
    const b = await bucket('lg-lock', { objectLock: true });
    const far = new Date(Date.now() + 3600_000);
    // COMPLIANCE can't be bypassed even by the owner: keep it short so cleanup can delete it.
    const compUntil = new Date(Date.now() + 4_000);
    try {
      const gov = await s3.send(
        new PutObjectCommand({ Bucket: b, Key: 'gov', Body: 'g', ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: far }),
      );
      const comp = await s3.send(
        new PutObjectCommand({ Bucket: b, Key: 'comp', Body: 'c', ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: compUntil }),
      );
      const head = await s3.send(new HeadObjectCommand({ Bucket: b, Key: 'gov' }));
      expect(head.ObjectLockMode).toBe('GOVERNANCE');
      expect(head.ObjectLockRetainUntilDate?.getTime()).toBe(far.getTime()); // milliseconds kept

      const delVersion = (Key: string, VersionId?: string, BypassGovernanceRetention?: boolean) =>
        s3.send(new DeleteObjectCommand({ Bucket: b, Key, VersionId, BypassGovernanceRetention }));
      await expectS3Error(delVersion('gov', gov.VersionId), 'AccessDenied', 403);
      await expectS3Error(delVersion('comp', comp.VersionId), 'AccessDenied', 403);
      await expectS3Error(delVersion('comp', comp.VersionId, true), 'AccessDenied', 403);
      // Deleting without a versionId only adds a delete marker, which a lock does not prevent.
      expect((await delVersion('comp')).DeleteMarker).toBe(true);

      await delVersion('gov', gov.VersionId, true);
      await expectS3Error(s3.send(new HeadObjectCommand({ Bucket: b, Key: 'gov', VersionId: gov.VersionId })), 'NotFound', 404);
    } finally {
      // Let the COMPLIANCE retention run out so afterAll can remove the bucket.
      await new Promise((r) => setTimeout(r, Math.max(0, compUntil.getTime() - Date.now() + 1_000)));
    }
  });

  it('denies a second user everything on the first user’s bucket by default', async () => {
    const b = await bucket('lg-private');
    await s3.send(new PutObjectCommand({ Bucket: b, Key: 'secret', Body: 'x' }));
    const other = testS3Client(S3_OTHER_USER);
    await expectS3Error(other.send(new ListObjectsV2Command({ Bucket: b })), 'AccessDenied', 403);
    await expectS3Error(other.send(new GetObjectCommand({ Bucket: b, Key: 'secret' })), 'AccessDenied', 403);
    await expectS3Error(other.send(new PutObjectCommand({ Bucket: b, Key: 'new', Body: 'y' })), 'AccessDenied', 403);
    const mine = await other.send(new ListBucketsCommand({}));
    expect(mine.Buckets?.map((x) => x.Name) ?? []).not.toContain(b);
  });

  it('accepts SSE-KMS with the test key id', async () => {
    const b = await bucket('lg-kms');
    await s3.send(
      new PutObjectCommand({ Bucket: b, Key: 'enc', Body: 'sealed', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: S3_TEST_KMS_KEY_ID }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: b, Key: 'enc' }));
    expect(got.ServerSideEncryption).toBe('aws:kms');
    expect(got.SSEKMSKeyId).toBe(S3_TEST_KMS_KEY_ID);
    expect((await bodyOf(got)).toString()).toBe('sealed');
  });

  it('needs checksums WHEN_REQUIRED for streamed PUTs (the SDK default is rejected)', async () => {
    const b = await bucket('lg-checksum');
    const body = () => Readable.from([Buffer.from('streamed body')]);
    await s3.send(new PutObjectCommand({ Bucket: b, Key: 'ok', Body: body(), ContentLength: 13 }));
    // The SDK's default sends aws-chunked bodies with a trailing checksum; Ceph 16 refuses
    // them. lakeguard's own S3 client must configure WHEN_REQUIRED for S3-compatible servers.
    const sdkDefault = new S3Client({
      endpoint: S3_TEST.endpoint,
      region: S3_TEST.region,
      forcePathStyle: true,
      credentials: { accessKeyId: S3_TEST.accessKeyId, secretAccessKey: S3_TEST.secretAccessKey },
    });
    await expectS3Error(
      sdkDefault.send(new PutObjectCommand({ Bucket: b, Key: 'nope', Body: body(), ContentLength: 13 })),
      'MissingContentLength',
      411,
    );
  });
});
