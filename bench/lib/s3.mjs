// S3 helpers of the bench: the test server's endpoint and keys (same env vars and defaults as
// test/helpers/s3-env.ts), a keep-alive client, bucket create/list/empty/delete.
import { Agent as HttpAgent } from 'node:http';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { forEachLimit } from './pool.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const env = process.env;

/**
 * What a failed SDK call throws, read defensively: a service error carries `name` and
 * `$metadata`, a network error only `name` and `message`.
 * @typedef {{ name?: string, message?: string, $metadata?: { httpStatusCode?: number } }} SdkError
 */

export const S3 = {
  endpoint: env.LAKEGUARD_S3_ENDPOINT ?? `http://127.0.0.1:${env.LAKEGUARD_S3_PORT ?? '7480'}`,
  region: 'us-east-1',
  accessKeyId: env.LAKEGUARD_S3_ACCESS_KEY ?? 'LAKEGUARDTESTACCESSKEY',
  secretAccessKey: env.LAKEGUARD_S3_SECRET_KEY ?? 'lakeguard-test-secret-key-0000000000000000',
};

/**
 * A path-style client with a keep-alive agent of `sockets` sockets. Checksums only when
 * required (Ceph 16 rejects the SDK's default aws-chunked trailing checksums on streams).
 * @param {{ endpoint?: string, sockets?: number, onRequest?: (request: unknown) => void }} [options]
 */
export function s3Client({ endpoint = S3.endpoint, sockets = 64, onRequest } = {}) {
  const client = new S3Client({
    endpoint,
    region: S3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: S3.accessKeyId, secretAccessKey: S3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 5,
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: sockets, keepAliveMsecs: 10_000 }),
      connectionTimeout: 10_000,
      requestTimeout: 300_000,
    }),
  });
  if (onRequest) {
    // Counts every HTTP request the SDK sends (retries included): the 'build' step of the
    // finalizeRequest stack runs once per attempt.
    client.middlewareStack.add(
      (next) => async (args) => {
        onRequest(args.request);
        return next(args);
      },
      { step: 'finalizeRequest', name: 'benchCountRequests', priority: 'low' },
    );
  }
  return client;
}

export async function bucketExists(s3, bucket) {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (err) {
    const e = /** @type {SdkError} */ (err);
    if (e.$metadata?.httpStatusCode === 404 || e.name === 'NotFound' || e.name === 'NoSuchBucket') return false;
    throw err;
  }
}

export async function ensureBucket(s3, bucket) {
  if (await bucketExists(s3, bucket)) return;
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const e = /** @type {SdkError} */ (err);
    if (e.name !== 'BucketAlreadyOwnedByYou' && e.name !== 'BucketAlreadyExists') throw err;
  }
}

/** Calls fn(page.Contents) for every page of a ListObjectsV2 loop; returns {keys, bytes, pages}. */
export async function listAll(s3, bucket, prefix = '', fn) {
  let keys = 0;
  let bytes = 0;
  let pages = 0;
  let token;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token, MaxKeys: 1000 }));
    pages++;
    const contents = page.Contents ?? [];
    keys += contents.length;
    for (const o of contents) bytes += o.Size ?? 0;
    if (fn) await fn(contents);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return { keys, bytes, pages };
}

/** Deletes every object under a prefix (unversioned buckets), 1,000 per request. */
export async function deletePrefix(s3, bucket, prefix = '') {
  // Collect first: deleting while paginating would skip keys on some servers.
  const all = [];
  await listAll(s3, bucket, prefix, (contents) => {
    for (const o of contents) all.push(o.Key);
  });
  const batches = [];
  for (let i = 0; i < all.length; i += 1000) batches.push(all.slice(i, i + 1000).map((Key) => ({ Key })));
  await forEachLimit(batches, 8, (batch) => s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } })));
  return all.length;
}

/** Empties and deletes a bucket (best effort: a failure is returned, not thrown). */
export async function dropBucket(s3, bucket) {
  try {
    if (!(await bucketExists(s3, bucket))) return null;
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const u of uploads.Uploads ?? []) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
    await deletePrefix(s3, bucket, '');
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    return null;
  } catch (err) {
    const e = /** @type {SdkError} */ (err);
    return `${bucket}: ${e.name}: ${e.message}`;
  }
}

/** Deletes every version and delete marker, then the bucket (best effort, like dropBucket). */
export async function dropVersionedBucket(s3, bucket) {
  try {
    // Always list from the start: deleting while paging with markers can skip versions.
    for (;;) {
      const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
      const ids = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key, VersionId: v.VersionId }));
      if (ids.length === 0) break;
      // RGW deletes the versions of one DeleteObjects request one after another (~40 ms each
      // here: 16 s for 400 versions), so a page goes out as parallel requests of 25.
      const batches = [];
      for (let i = 0; i < ids.length; i += 25) batches.push(ids.slice(i, i + 25));
      await Promise.all(batches.map((Objects) => s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects, Quiet: true } }))));
    }
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    return null;
  } catch (err) {
    const e = /** @type {{ name?: string, message?: string }} */ (err);
    return e.name === 'NoSuchBucket' ? null : `${bucket}: ${e.name}: ${e.message}`;
  }
}

export async function getJson(s3, bucket, key) {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse(await res.Body.transformToString());
  } catch (err) {
    const e = /** @type {SdkError} */ (err);
    if (e.name === 'NoSuchKey' || e.name === 'NoSuchBucket' || e.$metadata?.httpStatusCode === 404) return undefined;
    throw err;
  }
}

export async function putJson(s3, bucket, key, value) {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(value, null, 2), ContentType: 'application/json' }));
}

export async function getBytes(s3, bucket, key) {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body.transformToByteArray());
}
