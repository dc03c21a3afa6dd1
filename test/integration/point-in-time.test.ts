// Every version, any point in time, on the real server with versioning enabled, through the CLI:
// versions and delete markers captured across and within runs, restore --at each instant,
// prefix/bucket restores to another bucket and a directory, --delete-extra in place, and
// metadata (content headers, user metadata, tags) restored.
import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf, messagesOf } from '../helpers/cli.js';
import { hashTree, tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';
import { instantBetweenWrites } from '../helpers/server-clock.js';

const s3 = testS3Client();
const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** key → sha256 of the current objects of a bucket (under a prefix). */
async function bucketState(bucket: string, prefix = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
      out.set(o.Key!.slice(prefix.length), sha(await got.Body!.transformToByteArray()));
    }
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

describe('point in time on a versioned bucket', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let dest: string;
  let policyFile: string;
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'pit', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });
  const backup = async () => {
    const r = await cli('backup', '--json');
    expect(r.code, r.stderr).toBe(0);
    return summaryOf(r);
  };
  /** An instant strictly between the writes before and after it (checked on the server's clock). */
  const instant = () => instantBetweenWrites(s3, repoBucket);

  beforeAll(async () => {
    dir = tempDir('it-pit');
    [source, repoBucket, dest] = await Promise.all([createTestBucket('lg-pit', { versioning: true }), createTestBucket('lg-pit-repo'), createTestBucket('lg-pit-dst')]);
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source] });
    expect((await cli('init')).code).toBe(0);
  });

  afterAll(async () => {
    await Promise.all([source, repoBucket, dest].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('restores one key at each of six instants: before, v1, v2, v3, deleted, v4', async () => {
    const key = 'orders/o.json';
    const put = (body: string) => s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));
    const instants: { at: string; want: string | null }[] = [];
    instants.push({ at: await instant(), want: null });
    await put('v1');
    instants.push({ at: await instant(), want: 'v1' });
    expect((await backup()).counters.objectsNew).toBe(1);
    await put('v2');
    instants.push({ at: await instant(), want: 'v2' });
    await put('v3');
    instants.push({ at: await instant(), want: 'v3' });
    await s3.send(new DeleteObjectCommand({ Bucket: source, Key: key }));
    instants.push({ at: await instant(), want: null });
    // v2, v3 and the delete marker all arrive in one run.
    expect((await backup()).counters).toMatchObject({ objectsNew: 2, objectsDeleted: 1 });
    await put('v4');
    instants.push({ at: await instant(), want: 'v4' });
    expect((await backup()).counters).toMatchObject({ objectsNew: 1, objectsUnchanged: 4 });
    // No version is ever fetched twice.
    expect((await backup()).counters).toMatchObject({ objectsNew: 0, bytesRead: 0, packsWritten: 0 });

    for (const [n, { at, want }] of instants.entries()) {
      const out = join(dir.path, `key-at-${n}`);
      const r = await cli('restore', '--bucket', source, '--key', key, '--at', at, '--to-dir', out);
      // A key that did not exist at that instant is named, exit 3 (never a silent "0 of 0").
      expect(r.code, r.stderr).toBe(want === null ? 3 : 0);
      if (want === null) expect(r.stderr).toContain(`${key}: not in the backup`);
      const path = join(out, key);
      expect(existsSync(path) ? readFileSync(path, 'utf8') : null, `instant ${n} (${at})`).toBe(want);
    }

    // versions --version-id restores one exact version.
    const versions = await s3.send(new HeadObjectCommand({ Bucket: source, Key: key }));
    const exact = join(dir.path, 'exact');
    const r = await cli('restore', '--bucket', source, '--key', key, '--version-id', versions.VersionId!, '--to-dir', exact);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(exact, key), 'utf8')).toBe('v4');
  });

  it('captures all five changes of a key made between two runs in one run', async () => {
    const key = 'single-run/o.json';
    const put = (body: string) => s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));
    const instants: { at: string; want: string | null }[] = [{ at: await instant(), want: null }];
    for (const v of ['v1', 'v2', 'v3']) {
      await put(v);
      instants.push({ at: await instant(), want: v });
    }
    await s3.send(new DeleteObjectCommand({ Bucket: source, Key: key }));
    instants.push({ at: await instant(), want: null });
    await put('v4');
    instants.push({ at: await instant(), want: 'v4' });
    expect((await backup()).counters).toMatchObject({ objectsNew: 4, objectsDeleted: 1 });
    for (const [n, { at, want }] of instants.entries()) {
      const out = join(dir.path, `single-at-${n}`);
      const r = await cli('restore', '--bucket', source, '--key', key, '--at', at, '--to-dir', out);
      // A key that did not exist at that instant is named, exit 3 (never a silent "0 of 0").
      expect(r.code, r.stderr).toBe(want === null ? 3 : 0);
      if (want === null) expect(r.stderr).toContain(`${key}: not in the backup`);
      expect(existsSync(join(out, key)) ? readFileSync(join(out, key), 'utf8') : null, `instant ${n}`).toBe(want);
    }
  });

  it('restores a prefix and a bucket as they were, elsewhere and in place with --delete-extra', async () => {
    for (let i = 0; i < 20; i++) await s3.send(new PutObjectCommand({ Bucket: source, Key: `tbl/p${i}.csv`, Body: `row ${i}\n` }));
    await backup();
    const at = await instant();
    const before = await bucketState(source);

    // Between runs: 5 overwritten, 5 deleted, 5 created.
    for (let i = 0; i < 5; i++) await s3.send(new PutObjectCommand({ Bucket: source, Key: `tbl/p${i}.csv`, Body: `changed ${i}\n` }));
    for (let i = 5; i < 10; i++) await s3.send(new DeleteObjectCommand({ Bucket: source, Key: `tbl/p${i}.csv` }));
    for (let i = 20; i < 25; i++) await s3.send(new PutObjectCommand({ Bucket: source, Key: `tbl/p${i}.csv`, Body: `new ${i}\n` }));
    await backup();
    const after = await bucketState(source);
    expect(after).not.toEqual(before);

    // The prefix, as it was, into another bucket.
    const toBucket = await cli('restore', '--bucket', source, '--prefix', 'tbl/', '--at', at, '--to', `s3://${dest}/tbl-then/`);
    expect(toBucket.code, toBucket.stderr).toBe(0);
    const restored = await bucketState(dest, 'tbl-then/');
    // One bucket to s3://dst/prefix/: each key (whole, prefix included) at prefix/<key>.
    expect(restored).toEqual(new Map([...before].filter(([k]) => k.startsWith('tbl/'))));

    // The whole bucket, as it was, into a directory.
    const out = join(dir.path, 'bucket-then');
    const toDir = await cli('restore', '--bucket', source, '--at', at, '--to-dir', out);
    expect(toDir.code, toDir.stderr).toBe(0);
    expect(hashTree(out)).toEqual(before);

    // In place with --delete-extra: the bucket is exactly as it was at that instant.
    const inPlace = await cli('restore', '--bucket', source, '--at', at, '--in-place', '--delete-extra', '--json');
    expect(inPlace.code, inPlace.stderr).toBe(0);
    expect(summaryOf(inPlace).deleted).toBe(5);
    expect(await bucketState(source)).toEqual(before);
  });

  it('restores content headers, user metadata and tags to S3 targets', async () => {
    await s3.send(
      new PutObjectCommand({
        Bucket: source,
        Key: 'meta/report.csv.gz',
        Body: Buffer.from('not really gzip'),
        ContentType: 'text/csv',
        ContentEncoding: 'gzip',
        CacheControl: 'max-age=3600',
        ContentDisposition: 'attachment; filename="report.csv.gz"',
        Metadata: { owner: 'finance', 'schema-version': '7' },
        Tagging: 'pii=false&retention=long',
      }),
    );
    await backup();
    const r = await cli('restore', '--bucket', source, '--key', 'meta/report.csv.gz', '--to', `s3://${dest}/meta-restored/`);
    expect(r.code, r.stderr).toBe(0);
    const head = await s3.send(new HeadObjectCommand({ Bucket: dest, Key: 'meta-restored/meta/report.csv.gz' }));
    expect(head).toMatchObject({
      ContentType: 'text/csv',
      ContentEncoding: 'gzip',
      CacheControl: 'max-age=3600',
      ContentDisposition: 'attachment; filename="report.csv.gz"',
      Metadata: { owner: 'finance', 'schema-version': '7' },
    });
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: dest, Key: 'meta-restored/meta/report.csv.gz' }));
    expect(Object.fromEntries((tags.TagSet ?? []).map((t) => [t.Key, t.Value]))).toEqual({ pii: 'false', retention: 'long' });
  });

  it('an unversioned bucket: the same scenario at run granularity, with synthetic delete markers', async () => {
    const plain = await createTestBucket('lg-pit-plain');
    const plainPolicy = join(dir.path, 'plain.yaml');
    writeS3Policy(plainPolicy, { repo: `${repoBucket}/plain`, buckets: [plain] });
    const run = (...args: string[]) => runCli(['--policy', plainPolicy, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'pit', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache-plain') });
    try {
      expect((await run('init')).code).toBe(0);
      const key = 'orders/o.json';
      const steps: { op: () => Promise<unknown>; want: string | null }[] = [
        { op: () => s3.send(new PutObjectCommand({ Bucket: plain, Key: key, Body: 'v1' })), want: 'v1' },
        { op: () => s3.send(new PutObjectCommand({ Bucket: plain, Key: key, Body: 'v2' })), want: 'v2' },
        { op: () => s3.send(new PutObjectCommand({ Bucket: plain, Key: key, Body: 'v3' })), want: 'v3' },
        { op: () => s3.send(new DeleteObjectCommand({ Bucket: plain, Key: key })), want: null },
        { op: () => s3.send(new PutObjectCommand({ Bucket: plain, Key: key, Body: 'v4' })), want: 'v4' },
      ];
      const runs: { id: string; after: string; want: string | null }[] = [];
      for (const step of steps) {
        await step.op();
        const r = await run('backup', '--json');
        expect(r.code, r.stderr).toBe(0);
        runs.push({ id: summaryOf(r).runId, after: await instant(), want: step.want });
      }
      expect(messagesOf(await run('runs', '--json'), 'run').map((r) => r.counters.objectsDeleted)).toEqual([0, 0, 0, 1, 0]);
      for (const [n, r] of runs.entries()) {
        for (const [how, value] of [['--run', r.id], ['--at', r.after]] as const) {
          const out = join(dir.path, `plain-${n}-${how.slice(2)}`);
          const res = await run('restore', '--bucket', plain, '--key', key, how, value, '--to-dir', out);
          expect(res.code, res.stderr).toBe(r.want === null ? 3 : 0);
          expect(existsSync(join(out, key)) ? readFileSync(join(out, key), 'utf8') : null, `run ${n} ${how}`).toBe(r.want);
        }
      }
    } finally {
      await emptyAndDeleteBucket(plain);
    }
  });
});
