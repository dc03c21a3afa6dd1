// `lakeguard serve` on the real S3 server, read by independent S3 clients: boto3 (a python3
// script spawned here) and the AWS CLI list with pagination and delimiters and read every object
// byte-identical to the state at T (not the newer one of the second backup), a multi-chunk
// object is read by ranges across its chunk boundaries, a presigned URL works from a plain HTTP
// client, writes and a wrong secret are refused, a scoped catalog answers only inside its
// scope, and SIGTERM stops it (exit 130, lock released). The refusals before the repository is
// opened (--listen, TLS) are in test/unit/serve-command.test.ts: they need no S3.
import { DeleteObjectCommand, GetObjectCommand, ListObjectVersionsCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkBoundaries } from '../../src/repository/chunker.js';
import { runCli, summaryOf } from '../helpers/cli.js';
import { hashTree, tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';
import { instantBetweenWrites } from '../helpers/server-clock.js';
import { SERVE_KEYS, serveClient, startServe, type Served } from '../helpers/serve-process.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

/** Env for boto3 and the AWS CLI: the serve credentials, and no config of this machine's. */
function clientEnv(dir: string, secret = SERVE_KEYS.LAKEGUARD_SERVE_SECRET_ACCESS_KEY): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    AWS_ACCESS_KEY_ID: SERVE_KEYS.LAKEGUARD_SERVE_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(dir, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'aws-credentials-none'),
  };
}

/**
 * What boto3 sees: every page of ListObjectsV2 (7 keys a page) and ListObjects with '/', each
 * object's sha256, one key through a bucket alias, a presigned URL. One process: python3 and
 * the AWS CLI take seconds to start on a loaded machine.
 */
const BOTO3_SCRIPT = `
import hashlib, json, sys
import boto3
from botocore.config import Config
url, bucket, presign_key, alias, changed = sys.argv[1:6]
s3 = boto3.client('s3', endpoint_url=url, config=Config(signature_version='s3v4', s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
out = {'pages': 0, 'objects': {}, 'prefixes': [], 'top_keys': []}
for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket, PaginationConfig={'PageSize': 7}):
    out['pages'] += 1
    for o in page.get('Contents', []):
        body = s3.get_object(Bucket=bucket, Key=o['Key'])['Body'].read()
        assert len(body) == o['Size'], o['Key']
        out['objects'][o['Key']] = hashlib.sha256(body).hexdigest()
for page in s3.get_paginator('list_objects').paginate(Bucket=bucket, Delimiter='/', PaginationConfig={'PageSize': 2}):
    out['prefixes'] += [p['Prefix'] for p in page.get('CommonPrefixes', [])]
    out['top_keys'] += [o['Key'] for o in page.get('Contents', [])]
# botocore validates bucket names on the client: the alias form must pass it.
out['alias_body'] = s3.get_object(Bucket=alias, Key=changed)['Body'].read().decode()
out['presigned'] = s3.generate_presigned_url('get_object', Params={'Bucket': bucket, 'Key': presign_key}, ExpiresIn=300)
print(json.dumps(out))
`;

describe('lakeguard serve --at T after two backups', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policyFile: string;
  let served: Served;
  let s3: S3Client;
  /** key -> sha256 of the source as it was at T (after the first backup). */
  const stateAtT = new Map<string, string>();
  const big = randomBytes(6 * 1024 * 1024 + 12345);
  let at: string;
  let secondRun: string;
  const env = (): Record<string, string> => ({ ...testEnv(), LAKEGUARD_PASSWORD: 'serve', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], env());
  const aws = (...args: string[]) => run('aws', ['--endpoint-url', served.url, ...args], { env: clientEnv(dir.path), maxBuffer: 64 << 20 });

  beforeAll(async () => {
    // boto3 and the AWS CLI (installed when missing), checked while the backups run.
    const clients = run('bash', [join(ROOT, 'scripts/s3-clients.sh'), 'install']);
    dir = tempDir('it-serve');
    // Ranged multipart downloads in the AWS CLI: 1 MiB parts, so its `s3 cp` of the big object crosses chunk boundaries too.
    writeFileSync(join(dir.path, 'aws-config'), '[default]\ns3 =\n  multipart_threshold = 1MB\n  multipart_chunksize = 1MB\n');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-serve', { versioning: true }), createTestBucket('lg-serve-repo')]);
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source] });
    expect((await cli('init')).code).toBe(0);
    const src = testS3Client();
    const first = new Map<string, Buffer>([['big.bin', big]]);
    for (let i = 0; i < 24; i++) first.set(`data/part-${String(i).padStart(2, '0')}.csv`, Buffer.from(`row ${i}\n`.repeat(i + 1)));
    for (let i = 0; i < 6; i++) first.set(`logs/2026/12/0${i}.log`, Buffer.from(`log ${i}`));
    for (const key of ['with space.txt', 'plus+sign.txt', 'unicode/é ü.txt', 'top.txt']) first.set(key, Buffer.from(`awkward ${key}`));
    await Promise.all([...first].map(([key, body]) => src.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }))));
    for (const [key, body] of first) stateAtT.set(key, sha(body));
    const r1 = await cli('backup', '--json');
    expect(r1.code, r1.stderr).toBe(0);
    at = await instantBetweenWrites(src, repoBucket);
    // The newer state: changed, deleted and new keys, and a different big object.
    await src.send(new PutObjectCommand({ Bucket: source, Key: 'big.bin', Body: randomBytes(2 * 1024 * 1024) }));
    await Promise.all(Array.from({ length: 8 }, (_, i) => src.send(new PutObjectCommand({ Bucket: source, Key: `data/part-${String(i * 3).padStart(2, '0')}.csv`, Body: 'CHANGED' }))));
    await src.send(new PutObjectCommand({ Bucket: source, Key: 'data/new.csv', Body: 'new' }));
    await src.send(new DeleteObjectCommand({ Bucket: source, Key: 'top.txt' }));
    const r2 = await cli('backup', '--json');
    expect(r2.code, r2.stderr).toBe(0);
    secondRun = summaryOf(r2).runId as string;
    served = await startServe(['--policy', policyFile, '--at', at], { ...env(), ...SERVE_KEYS });
    await clients;
    s3 = serveClient(served.url);
  });

  afterAll(async () => {
    s3?.destroy();
    if (served !== undefined && served.child.exitCode === null) served.child.kill('SIGKILL');
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('announces itself: the URL, the instant, the buckets, the key id (not a secret it did not generate)', () => {
    expect(served.listening).toMatchObject({ buckets: [source], access_key_id: SERVE_KEYS.LAKEGUARD_SERVE_ACCESS_KEY_ID });
    expect(served.listening.secret_access_key).toBeUndefined();
    expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('boto3 pages through the listing and reads every object as it was at T', async () => {
    const alias = `${source}--at--${secondRun}`;
    const { stdout } = await run('python3', ['-c', BOTO3_SCRIPT, served.url, source, 'with space.txt', alias, 'data/part-00.csv'], { env: clientEnv(dir.path), maxBuffer: 64 << 20 });
    const seen = JSON.parse(stdout) as { pages: number; objects: Record<string, string>; prefixes: string[]; top_keys: string[]; presigned: string; alias_body: string };
    expect(new Map(Object.entries(seen.objects))).toEqual(stateAtT);
    expect(seen.pages).toBe(Math.ceil(stateAtT.size / 7));
    expect(seen.prefixes).toEqual(['data/', 'logs/', 'unicode/']);
    expect(seen.top_keys).toEqual(['big.bin', 'plus+sign.txt', 'top.txt', 'with space.txt']);
    // The bucket alias of the second backup's run: the newer content.
    expect(seen.alias_body).toBe('CHANGED');
    // A presigned URL works from a plain HTTP client, and only for what it signs.
    const got = await fetch(seen.presigned);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('awkward with space.txt');
    expect((await fetch(seen.presigned.replace('with%20space.txt', 'top.txt'))).status).toBe(403);
  });

  it('the AWS CLI lists (recursive, paged with --page-size/--max-items) and copies every object as at T', async () => {
    const ls = await aws('s3', 'ls', `s3://${source}`, '--recursive');
    const listed = ls.stdout.trim().split('\n').map((line) => line.replace(/^\S+\s+\S+\s+\d+\s+/, ''));
    expect(listed.sort()).toEqual([...stateAtT.keys()].sort());
    // Pages of 5: the keys after the fifth come through continuation tokens.
    const paged = JSON.parse((await aws('s3api', 'list-objects-v2', '--bucket', source, '--page-size', '5', '--max-items', '12')).stdout) as { Contents: { Key: string }[]; NextToken: string };
    expect(paged.Contents.map((c) => c.Key)).toEqual([...stateAtT.keys()].sort().slice(0, 12));
    expect(paged.NextToken).toBeTruthy();
    const out = join(dir.path, 'cp');
    await aws('s3', 'cp', '--recursive', '--only-show-errors', `s3://${source}`, out);
    expect(hashTree(out)).toEqual(stateAtT);
  });

  it('reads ranges across every chunk boundary of a multi-chunk object, and past its end', async () => {
    const boundaries = chunkBoundaries(big).slice(0, -1);
    expect(boundaries.length).toBeGreaterThanOrEqual(1);
    for (const b of boundaries) {
      // The content is random, so a boundary may lie within 1,000 bytes of either end: the answer is clamped there.
      const [start, end] = [Math.max(0, b - 1000), Math.min(big.length - 1, b + 999)];
      const got = await s3.send(new GetObjectCommand({ Bucket: source, Key: 'big.bin', Range: `bytes=${b - 1000}-${b + 999}` }));
      expect(got.ContentRange).toBe(`bytes ${start}-${end}/${big.length}`);
      expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(big.subarray(start, end + 1));
    }
    const tail = await s3.send(new GetObjectCommand({ Bucket: source, Key: 'big.bin', Range: 'bytes=-777' }));
    expect(Buffer.from(await tail.Body!.transformToByteArray())).toEqual(big.subarray(big.length - 777));
    await expect(s3.send(new GetObjectCommand({ Bucket: source, Key: 'big.bin', Range: `bytes=${big.length}-` }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 416 } });
  });

  it('answers another instant per request (bucket alias, header), and refuses one after its sync', async () => {
    const changed = 'data/part-00.csv';
    const atT = await s3.send(new GetObjectCommand({ Bucket: source, Key: changed }));
    expect(sha(await atT.Body!.transformToByteArray())).toBe(stateAtT.get(changed));
    const newer = `${source}--at--${secondRun}`;
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: newer, Prefix: changed }));
    expect(versions.Versions?.map((v) => v.IsLatest)).toEqual([true, false]);
    // The state at T does not know the newer version yet.
    expect((await s3.send(new ListObjectVersionsCommand({ Bucket: source, Prefix: changed }))).Versions).toHaveLength(1);
    const hourLater = new Date(Date.now() + 3600_000).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'z');
    const refused = await s3.send(new ListObjectsV2Command({ Bucket: `${source}--at--${hourLater}` })).catch((err: unknown) => err);
    expect(refused).toMatchObject({ name: 'InvalidArgument', $metadata: { httpStatusCode: 400 } });
    expect((refused as Error).message).toContain('restart');
  });

  it('refuses writes and a wrong secret', async () => {
    writeFileSync(join(dir.path, 'upload.txt'), 'x');
    const put = await aws('s3', 'cp', join(dir.path, 'upload.txt'), `s3://${source}/upload.txt`).catch((err: unknown) => err);
    expect(put).toMatchObject({ code: 1, stderr: expect.stringContaining('AccessDenied') });
    await expect(s3.send(new DeleteObjectCommand({ Bucket: source, Key: 'with space.txt' }))).rejects.toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    const wrong = new S3Client({ endpoint: served.url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: SERVE_KEYS.LAKEGUARD_SERVE_ACCESS_KEY_ID, secretAccessKey: 'not-the-secret' }, maxAttempts: 1 });
    try {
      await expect(wrong.send(new ListObjectsV2Command({ Bucket: source }))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
    } finally {
      wrong.destroy();
    }
    // Still all there, at T.
    const kept = await s3.send(new GetObjectCommand({ Bucket: source, Key: 'with space.txt' }));
    expect(await kept.Body!.transformToString()).toBe('awkward with space.txt');
  });

  it('stops on SIGTERM with exit 130, releasing its repository lock', async () => {
    const locks = async () => (await testS3Client().send(new ListObjectsV2Command({ Bucket: repoBucket, Prefix: 'r/locks/' }))).KeyCount ?? 0;
    expect(await locks()).toBe(1);
    expect(await served.stop()).toBe(130);
    expect(await locks()).toBe(0);
    const access = served.stdout().split('\n').filter((l) => l.includes('"message_type":"access"'));
    expect(access.length).toBeGreaterThan(20);
    expect(served.stdout()).not.toContain(SERVE_KEYS.LAKEGUARD_SERVE_SECRET_ACCESS_KEY);
  });

  it('a scoped catalog answers inside its prefix and refuses the rest, naming the scope', async () => {
    const scopedCatalog = join(dir.path, 'scoped.db');
    const sync = await cli('--catalog', scopedCatalog, 'catalog', 'sync', '--prefix', `s3://${source}/data/`);
    expect(sync.code, sync.stderr).toBe(0);
    const scoped = await startServe(['--policy', policyFile, '--catalog', scopedCatalog, '--at', at], { ...env(), ...SERVE_KEYS });
    const client = serveClient(scoped.url);
    try {
      const inside = await client.send(new ListObjectsV2Command({ Bucket: source, Prefix: 'data/' }));
      expect(inside.KeyCount).toBe(24);
      const got = await client.send(new GetObjectCommand({ Bucket: source, Key: 'data/part-00.csv' }));
      expect(sha(await got.Body!.transformToByteArray())).toBe(stateAtT.get('data/part-00.csv'));
      await expect(client.send(new ListObjectsV2Command({ Bucket: source }))).rejects.toMatchObject({ name: 'AccessDenied', message: expect.stringContaining(`s3://${source}/data/`) });
      await expect(client.send(new GetObjectCommand({ Bucket: source, Key: 'top.txt' }))).rejects.toMatchObject({ name: 'AccessDenied' });
    } finally {
      client.destroy();
      expect(await scoped.stop()).toBe(130);
    }
  });
});
