// The real S3 server of the integration tests (Ceph RGW started by scripts/s3-server.sh, or
// one already running): where it is, its fixed TEST users, and bucket helpers.
// Defaults match the script, so a test works without any env when the server runs with its
// defaults; the global setup also exports the env to the workers.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { S3Store, type S3StoreOptions } from '../../src/storage/s3-store.js';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  S3Client,
  type ObjectIdentifier,
} from '@aws-sdk/client-s3';

const env = process.env;

export const S3_TEST: {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
} = {
  endpoint: env.LAKEGUARD_S3_ENDPOINT ?? `http://127.0.0.1:${env.LAKEGUARD_S3_PORT ?? '7480'}`,
  region: 'us-east-1',
  accessKeyId: env.LAKEGUARD_S3_ACCESS_KEY ?? 'LAKEGUARDTESTACCESSKEY',
  secretAccessKey: env.LAKEGUARD_S3_SECRET_KEY ?? 'lakeguard-test-secret-key-0000000000000000',
};

/** A second user, for access-denied tests: owns nothing and has no rights on S3_TEST's buckets. */
export const S3_OTHER_USER: { accessKeyId: string; secretAccessKey: string } = {
  accessKeyId: env.LAKEGUARD_S3_OTHER_ACCESS_KEY ?? 'LAKEGUARDOTHERACCESSKEY',
  secretAccessKey: env.LAKEGUARD_S3_OTHER_SECRET_KEY ?? 'lakeguard-other-secret-key-000000000000000',
};

/** A KMS key id the server's built-in "testing" KMS backend knows (SSE-KMS tests). */
export const S3_TEST_KMS_KEY_ID = 'lakeguard-test-kms-key';

/**
 * A client for the test server. Path-style, because the server has no wildcard DNS.
 * Checksums only WHEN_REQUIRED: the SDK's default (WHEN_SUPPORTED) sends stream bodies as
 * aws-chunked with a trailing checksum, which this server (Ceph 16) rejects with
 * MissingContentLength; buffers and multipart parts work either way.
 */
export function testS3Client(creds?: { accessKeyId: string; secretAccessKey: string }): S3Client {
  return new S3Client({
    endpoint: S3_TEST.endpoint,
    region: S3_TEST.region,
    forcePathStyle: true,
    credentials: creds ?? { accessKeyId: S3_TEST.accessKeyId, secretAccessKey: S3_TEST.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

let shared: S3Client | undefined;
function client(): S3Client {
  return (shared ??= testS3Client());
}

/**
 * A unique, valid bucket name (`<prefix>-<time>-<random>`, lowercase, at most 63 chars),
 * created on the server as S3_TEST's user. Object lock implies versioning.
 */
export async function createTestBucket(
  prefix: string,
  opts: { versioning?: boolean; objectLock?: boolean; /** Owner of the bucket (default: S3_TEST's user). */ client?: S3Client } = {},
): Promise<string> {
  const suffix = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  // Bucket names: [a-z0-9.-], starting and ending with a letter or digit.
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 63 - suffix.length - 1)
      .replace(/-+$/, '') || 'lg';
  const name = `${clean}-${suffix}`;
  const s3 = opts.client ?? client();
  await s3.send(new CreateBucketCommand({ Bucket: name, ObjectLockEnabledForBucket: opts.objectLock || undefined }));
  if (opts.versioning && !opts.objectLock) {
    await s3.send(new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: 'Enabled' } }));
  }
  return name;
}

/**
 * Deletes every object version, delete marker and unfinished multipart upload, then the
 * bucket. Best effort: a cleanup failure (e.g. an object still under COMPLIANCE retention)
 * is reported on stderr, never thrown, so it cannot mask the test's own result. `s3`: a client
 * of the bucket's owner (default S3_TEST's user).
 */
export async function emptyAndDeleteBucket(name: string, s3: S3Client = client()): Promise<void> {
  try {
    for (let keyMarker: string | undefined, versionMarker: string | undefined; ; ) {
      const page = await s3.send(
        new ListObjectVersionsCommand({ Bucket: name, KeyMarker: keyMarker, VersionIdMarker: versionMarker }),
      );
      const ids: ObjectIdentifier[] = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({
        Key: v.Key!,
        VersionId: v.VersionId,
      }));
      // RGW deletes the objects of one DeleteObjects request one after another (~40 ms per
      // version here: 16 s for 400), so a page goes out as parallel requests of 25.
      const batches: ObjectIdentifier[][] = [];
      for (let i = 0; i < ids.length; i += 25) batches.push(ids.slice(i, i + 25));
      const results = await Promise.all(
        batches.map((Objects) =>
          s3.send(new DeleteObjectsCommand({ Bucket: name, Delete: { Objects, Quiet: true }, BypassGovernanceRetention: true })),
        ),
      );
      for (const e of results.flatMap((r) => r.Errors ?? [])) console.warn(`cleanup ${name}/${e.Key}@${e.VersionId}: ${e.Code} ${e.Message}`);
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      versionMarker = page.NextVersionIdMarker;
    }
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: name }));
    for (const u of uploads.Uploads ?? []) {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: name, Key: u.Key!, UploadId: u.UploadId! }));
    }
    await s3.send(new DeleteBucketCommand({ Bucket: name }));
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchBucket') return;
    console.warn(`cleanup of bucket ${name} failed: ${(err as Error).name}: ${(err as Error).message}`);
  }
}

/** Env for a child process (e.g. the lakeguard CLI) to reach the test server as S3_TEST. */
export function testEnv(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: S3_TEST.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3_TEST.secretAccessKey,
    AWS_REGION: S3_TEST.region,
    LAKEGUARD_S3_ENDPOINT: S3_TEST.endpoint,
  };
}

/**
 * Writes a policy for the test server: an S3 repository at s3://<repo>, one group `group` of
 * the given buckets, and extra YAML lines under `repository:` and at the top level.
 */
export function writeS3Policy(
  file: string,
  opts: { repo: string; buckets: string[]; group?: string; endpoint?: string; repositoryExtra?: string[]; extra?: string[] },
): string {
  const endpoint = opts.endpoint ?? S3_TEST.endpoint;
  const lines = [
    'version: 1',
    'repository:',
    `  url: s3://${opts.repo}`,
    `  endpoint: ${endpoint}`,
    ...(opts.repositoryExtra ?? []).map((l) => `  ${l}`),
    's3:',
    `  endpoint: ${endpoint}`,
    'groups:',
    `  - name: ${opts.group ?? 'lake'}`,
    '    sources:',
    ...opts.buckets.map((b) => `      - bucket: ${b}`),
    ...(opts.extra ?? []),
  ];
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** lakeguard's own S3 store on a test bucket (and key prefix), as the test user; `extra` adds options (clock, retry). */
export function testS3Store(bucket: string, prefix = '', extra: Partial<S3StoreOptions> = {}): S3Store {
  return new S3Store({
    bucket,
    prefix,
    endpoint: S3_TEST.endpoint,
    region: S3_TEST.region,
    credentials: { accessKeyId: S3_TEST.accessKeyId, secretAccessKey: S3_TEST.secretAccessKey },
    ...extra,
  });
}
