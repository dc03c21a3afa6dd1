// Repository options on the real server: `encryption: none` with an SSE-KMS key id passed on
// every repository PUT, and a group of two buckets restored under prefix/<bucket>/<key>.
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { S3_TEST, S3_TEST_KMS_KEY_ID, createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client } from '../helpers/s3-env.js';

const s3 = testS3Client();

async function listKeys(bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key!);
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

describe('repository options on S3', () => {
  let dir: ReturnType<typeof tempDir>;
  let buckets: string[] = [];
  let policyFile: string;
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], { ...testEnv(), LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  beforeAll(async () => {
    dir = tempDir('it-options');
    buckets = await Promise.all(['lg-a', 'lg-b', 'lg-repo', 'lg-dst'].map((p) => createTestBucket(p)));
    const [a, b, repo] = buckets;
    for (let i = 0; i < 30; i++) {
      await s3.send(new PutObjectCommand({ Bucket: a, Key: `x/${i}.txt`, Body: `a${i}` }));
      await s3.send(new PutObjectCommand({ Bucket: b, Key: `y/${i}.txt`, Body: `b${i}` }));
    }
    policyFile = join(dir.path, 'policy.yaml');
    writeFileSync(
      policyFile,
      `version: 1
repository:
  url: s3://${repo}/kms-repo
  endpoint: ${S3_TEST.endpoint}
  encryption: none
  sse_kms_key_id: ${S3_TEST_KMS_KEY_ID}
s3:
  endpoint: ${S3_TEST.endpoint}
groups:
  - name: two-buckets
    sources:
      - bucket: ${a}
      - bucket: ${b}
`,
    );
  });

  afterAll(async () => {
    await Promise.all(buckets.map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('passes the SSE-KMS key id on every object the repository writes', async () => {
    expect((await cli('init')).code).toBe(0);
    const backup = await cli('backup', '--json');
    expect(backup.code, backup.stderr).toBe(0);
    expect(summaryOf(backup).counters.objectsNew).toBe(60);

    const keys = await listKeys(buckets[2]!, 'kms-repo/');
    expect(keys.some((k) => k.startsWith('kms-repo/packs/'))).toBe(true);
    expect(keys.some((k) => k.startsWith('kms-repo/index/'))).toBe(true);
    expect(keys.some((k) => k.startsWith('kms-repo/runs/'))).toBe(true);
    for (const key of keys) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: buckets[2]!, Key: key }));
      expect(head.ServerSideEncryption, key).toBe('aws:kms');
      expect(head.SSEKMSKeyId, key).toContain(S3_TEST_KMS_KEY_ID);
    }
  });

  it('restores a group of two buckets under prefix/<bucket>/<key>', async () => {
    const [a, b, , dst] = buckets;
    const restore = await cli('restore', '--group', 'two-buckets', '--to', `s3://${dst}/all/`);
    expect(restore.code, restore.stderr).toBe(0);
    const keys = await listKeys(dst!, 'all/');
    expect(keys).toHaveLength(60);
    expect(keys).toContain(`all/${a}/x/7.txt`);
    expect(keys).toContain(`all/${b}/y/29.txt`);

    // One bucket alone goes straight under the prefix.
    const single = await cli('restore', '--bucket', a!, '--prefix', 'x/1', '--to', `s3://${dst}/one/`);
    expect(single.code, single.stderr).toBe(0);
    expect((await listKeys(dst!, 'one/')).sort()).toEqual(['one/x/1.txt', ...Array.from({ length: 10 }, (_, i) => `one/x/1${i}.txt`)].sort());
  });
});
