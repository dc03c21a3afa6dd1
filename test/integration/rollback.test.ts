// rollback on the real server: a versioned bucket rolled back with server-side copies and
// undeletes (no object byte through the client), an unversioned one with uploads from the
// repository; byte-identical afterwards (content, content type, user metadata, tags), a rerun
// that finds nothing left to do, --keep-new, --prefix, and a key the bucket refuses (exit 3).
import {
  DeleteBucketPolicyCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  ListObjectVersionsCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  PutObjectLockConfigurationCommand,
} from '@aws-sdk/client-s3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messagesOf, runCli, summaryOf } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();

/** An object as the lake had it: bytes, content type, user metadata, tags. */
interface Lake {
  body: string;
  type: string;
  meta: Record<string, string>;
  tags: Record<string, string>;
}

/** Keys of a Hive-partitioned lake, with the characters a copy source must encode. */
const ORIGINAL: Record<string, Lake> = {
  'lake/dt=2026-01-01/part 0.parquet': { body: 'PAR1 rows of day one PAR1', type: 'application/vnd.apache.parquet', meta: { rows: '3' }, tags: { tier: 'gold' } },
  'lake/dt=2026-01-02/100% done.csv': { body: 'a,b\n1,2\n', type: 'text/csv', meta: { writer: 'spark' }, tags: {} },
  'lake/zoë/データ.json': { body: '{"k":"v"}', type: 'application/json', meta: {}, tags: { owner: 'zoë' } },
  'lake/b+c.txt': { body: 'plus', type: 'text/plain', meta: {}, tags: {} },
  'lake/same.txt': { body: 'identical', type: 'text/plain', meta: {}, tags: {} },
  'lake/untouched.txt': { body: 'never changed', type: 'text/plain', meta: {}, tags: {} },
  'other/outside.txt': { body: 'outside the prefix', type: 'text/plain', meta: {}, tags: {} },
};

async function put(bucket: string, key: string, o: Lake): Promise<void> {
  const tagging = new URLSearchParams(o.tags).toString();
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: o.body, ContentType: o.type, Metadata: o.meta, ...(tagging ? { Tagging: tagging } : {}) }));
}

async function read(bucket: string, key: string): Promise<Lake> {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
  return {
    body: await got.Body!.transformToString(),
    type: got.ContentType ?? '',
    meta: got.Metadata ?? {},
    tags: Object.fromEntries((tags.TagSet ?? []).map((t) => [t.Key!, t.Value!])),
  };
}

async function exists(bucket: string, key: string): Promise<boolean> {
  return s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })).then(
    () => true,
    (err: { name?: string }) => (err.name === 'NoSuchKey' || err.name === 'NotFound' ? false : Promise.reject(err)),
  );
}

async function markersOf(bucket: string, key: string): Promise<number> {
  const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
  return (page.DeleteMarkers ?? []).filter((m) => m.Key === key).length;
}

/** The poisoning: an overwrite (new type, metadata, no tags), deletes (one twice), an identical rewrite, a new key, a change outside the prefix. */
async function poison(bucket: string): Promise<void> {
  await put(bucket, 'lake/dt=2026-01-01/part 0.parquet', { body: 'encrypted!', type: 'application/octet-stream', meta: { ransom: 'yes' }, tags: {} });
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'lake/dt=2026-01-02/100% done.csv' }));
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'lake/zoë/データ.json' }));
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'lake/zoë/データ.json' }));
  // Overwritten, then deleted: the marker does not sit on the wanted version.
  await put(bucket, 'lake/b+c.txt', { body: 'minus', type: 'text/plain', meta: {}, tags: {} });
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'lake/b+c.txt' }));
  await put(bucket, 'lake/same.txt', ORIGINAL['lake/same.txt']!);
  await put(bucket, 'lake/new file=1.txt', { body: 'READ_ME_TO_DECRYPT', type: 'text/plain', meta: {}, tags: {} });
  await put(bucket, 'other/outside.txt', { body: 'changed outside', type: 'text/plain', meta: {}, tags: {} });
}

describe('rollback', () => {
  let dir: ReturnType<typeof tempDir>;
  let versioned: string;
  let plain: string;
  let locked: string;
  let repoBucket: string;
  let policyFile: string;
  let runId: string;
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  beforeAll(async () => {
    dir = tempDir('it-rollback');
    [versioned, plain, locked, repoBucket] = await Promise.all([
      createTestBucket('lg-rb-ver', { versioning: true }),
      createTestBucket('lg-rb-plain'),
      createTestBucket('lg-rb-lock', { objectLock: true }),
      createTestBucket('lg-rb-repo'),
    ]);
    // Every version written there is retained for a day (GOVERNANCE: the cleanup may bypass it).
    await s3.send(new PutObjectLockConfigurationCommand({ Bucket: locked, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } } } }));
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [versioned, plain, locked] });
    expect((await cli('init')).code).toBe(0);
    for (const bucket of [versioned, plain, locked]) for (const [key, o] of Object.entries(ORIGINAL)) await put(bucket, key, o);
    const b = await cli('backup', '--json');
    expect(b.code, b.stderr).toBe(0);
    runId = summaryOf(b).runId as string;
    for (const bucket of [versioned, plain, locked]) await poison(bucket);
  });

  afterAll(async () => {
    await Promise.all([versioned, plain, locked, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('plans a versioned bucket: copies, undeletes, a delete, nothing outside the prefix (--dry-run)', async () => {
    const dry = await cli('rollback', '--bucket', versioned, '--prefix', 'lake/', '--at', runId, '--dry-run', '--json');
    expect(dry.code, dry.stderr).toBe(0);
    const plan = Object.fromEntries(messagesOf(dry, 'rollback_action').map((m) => [m.key, m.action]));
    expect(plan).toEqual({
      'lake/dt=2026-01-01/part 0.parquet': 'copy',
      'lake/dt=2026-01-02/100% done.csv': 'undelete',
      'lake/zoë/データ.json': 'undelete',
      'lake/b+c.txt': 'copy',
      'lake/same.txt': 'unchanged',
      'lake/untouched.txt': 'unchanged',
      'lake/new file=1.txt': 'delete',
    });
    const s = summaryOf(dry);
    expect(s.actions).toMatchObject({ copy: { keys: 2 }, undelete: { keys: 2 }, upload: { keys: 0 }, delete: { keys: 1 }, unchanged: { keys: 2 } });
    expect(s.actions.copy.bytes).toBe(ORIGINAL['lake/dt=2026-01-01/part 0.parquet']!.body.length + 4);
    expect(s.requests).toMatchObject({ copy: 0, put: 0, delete: 0 });
    expect(await exists(versioned, 'lake/new file=1.txt')).toBe(true);
  });

  it('rolls the versioned prefix back server-side: byte-identical, no object byte through the client', async () => {
    const markers = (await markersOf(versioned, 'lake/zoë/データ.json')) + (await markersOf(versioned, 'lake/dt=2026-01-02/100% done.csv'));
    expect(markers).toBeGreaterThanOrEqual(2);
    const r = await cli('rollback', '--bucket', versioned, '--prefix', 'lake/', '--at', runId, '--json');
    expect(r.code, r.stderr).toBe(0);
    const s = summaryOf(r);
    expect(s.actions).toMatchObject({ copy: { keys: 2 }, undelete: { keys: 2 }, upload: { keys: 0 }, delete: { keys: 1 }, unchanged: { keys: 2 } });
    // One LIST, two CopyObject, the marker removals plus one DELETE (and the bucket's
    // versioning and Object Lock settings, and a HEAD of the identical rewrite same.txt, whose
    // metadata is compared); nothing read or sent.
    expect(s.requests).toEqual({ list: 1, head: 3, copy: 2, put: 0, delete: markers + 1, repositoryGet: 0 });
    expect(s.bytesThroughClient).toBe(0);
    for (const [key, o] of Object.entries(ORIGINAL)) {
      if (key.startsWith('other/')) continue;
      expect(await read(versioned, key), key).toEqual(o);
    }
    expect(await markersOf(versioned, 'lake/zoë/データ.json')).toBe(0);
    expect(await markersOf(versioned, 'lake/dt=2026-01-02/100% done.csv')).toBe(0);
    expect(await exists(versioned, 'lake/new file=1.txt')).toBe(false);
    expect((await read(versioned, 'other/outside.txt')).body).toBe('changed outside');

    // Run again: it converges, nothing left to do.
    const again = await cli('rollback', '--bucket', versioned, '--prefix', 'lake/', '--at', runId, '--json');
    expect(again.code, again.stderr).toBe(0);
    expect(summaryOf(again).actions).toMatchObject({ copy: { keys: 0 }, undelete: { keys: 0 }, upload: { keys: 0 }, delete: { keys: 0 }, unchanged: { keys: 6 } });
    expect(summaryOf(again).requests).toMatchObject({ copy: 0, delete: 0, put: 0 });
  });

  it('--keep-new keeps a key created after the instant; without --prefix the whole bucket is rolled back', async () => {
    await put(versioned, 'lake/later.txt', { body: 'new data', type: 'text/plain', meta: {}, tags: {} });
    const r = await cli('rollback', '--bucket', versioned, '--at', runId, '--keep-new', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(summaryOf(r).actions).toMatchObject({ keep: { keys: 1 }, delete: { keys: 0 }, copy: { keys: 1 }, unchanged: { keys: 6 } });
    expect(await exists(versioned, 'lake/later.txt')).toBe(true);
    expect(await read(versioned, 'other/outside.txt')).toEqual(ORIGINAL['other/outside.txt']);
  });

  it('falls back to uploads from the repository on an unversioned bucket, metadata and tags included', async () => {
    const dry = await cli('rollback', '--bucket', plain, '--prefix', 'lake/', '--at', runId, '--dry-run', '--json');
    expect(dry.code, dry.stderr).toBe(0);
    expect(summaryOf(dry).actions).toMatchObject({ copy: { keys: 0 }, undelete: { keys: 0 }, upload: { keys: 4 }, delete: { keys: 1 }, unchanged: { keys: 2 } });
    expect(dry.stderr).toMatch(/"message_type":"warning".*keeps no versions/);

    const r = await cli('rollback', '--bucket', plain, '--prefix', 'lake/', '--at', runId, '--json');
    expect(r.code, r.stderr).toBe(0);
    const s = summaryOf(r);
    expect(s.actions).toMatchObject({ upload: { keys: 4 }, delete: { keys: 1 }, unchanged: { keys: 2 } });
    expect(s.requests).toMatchObject({ copy: 0, put: 4, delete: 1 });
    expect(s.bytesThroughClient).toBeGreaterThan(0);
    for (const [key, o] of Object.entries(ORIGINAL)) if (!key.startsWith('other/')) expect(await read(plain, key), key).toEqual(o);
    expect(await exists(plain, 'lake/new file=1.txt')).toBe(false);
    const again = await cli('rollback', '--bucket', plain, '--prefix', 'lake/', '--at', runId, '--json');
    expect(summaryOf(again).actions).toMatchObject({ upload: { keys: 0 }, delete: { keys: 0 }, unchanged: { keys: 6 } });
  });

  it('rolls back a bucket with Object Lock and default retention: copies, undeletes and deletes are allowed', async () => {
    const r = await cli('rollback', '--bucket', locked, '--prefix', 'lake/', '--at', runId, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/"message_type":"warning".*has Object Lock/);
    const s = summaryOf(r);
    expect(s).toMatchObject({ objectLock: true, failed: 0, bytesThroughClient: 0 });
    expect(s.actions).toMatchObject({ copy: { keys: 2 }, undelete: { keys: 2 }, delete: { keys: 1 }, unchanged: { keys: 2 } });
    for (const [key, o] of Object.entries(ORIGINAL)) if (!key.startsWith('other/')) expect(await read(locked, key), key).toEqual(o);
    expect(await exists(locked, 'lake/new file=1.txt')).toBe(false);
  });

  it('lists a key the bucket refuses and exits 3; the rest is rolled back, and a rerun finishes it', async () => {
    await put(versioned, 'lake/dt=2026-01-01/part 0.parquet', { body: 'poisoned again', type: 'text/plain', meta: {}, tags: {} });
    await put(versioned, 'lake/untouched.txt', { body: 'poisoned too', type: 'text/plain', meta: {}, tags: {} });
    const denyKey = 'lake/dt=2026-01-01/part 0.parquet';
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: versioned,
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Deny', Principal: '*', Action: 's3:PutObject', Resource: `arn:aws:s3:::${versioned}/${denyKey}` }],
        }),
      }),
    );
    try {
      const r = await cli('rollback', '--bucket', versioned, '--prefix', 'lake/', '--at', runId, '--json');
      expect(r.code, r.stderr).toBe(3);
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(errors.filter((e) => e.message_type === 'error').map((e) => [e.key, e.code])).toEqual([[denyKey, 'AccessDenied']]);
      expect(summaryOf(r)).toMatchObject({ failed: 1, failures: [{ key: denyKey, action: 'copy', code: 'AccessDenied' }], actions: { copy: { keys: 1 } } });
      expect(await read(versioned, 'lake/untouched.txt')).toEqual(ORIGINAL['lake/untouched.txt']);
    } finally {
      await s3.send(new DeleteBucketPolicyCommand({ Bucket: versioned }));
    }
    const rerun = await cli('rollback', '--bucket', versioned, '--prefix', 'lake/', '--at', runId, '--json');
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(summaryOf(rerun).actions).toMatchObject({ copy: { keys: 1 }, unchanged: { keys: 5 } });
    expect(await read(versioned, denyKey)).toEqual(ORIGINAL[denyKey]);
  });

  it('refuses what it must not write, in one line with exit 2', async () => {
    const notSource = await cli('rollback', '--bucket', repoBucket, '--at', runId);
    expect(notSource.code).toBe(2);
    expect(notSource.stderr).toMatch(/rollback writes only to a source the policy names/);
    const noAt = await cli('rollback', '--bucket', versioned);
    expect(noAt.code).toBe(2);
    expect(noAt.stderr).toMatch(/--at/);
    const both = await cli('rollback', '--bucket', versioned, '--prefix', 'lake/', '--keys-from', join(dir.path, 'x'), '--at', runId);
    expect(both.code).toBe(2);
    const badAt = await cli('rollback', '--bucket', versioned, '--at', 'yesterday-ish');
    expect(badAt.code).toBe(2);
  });

  it('--at last-clean without a suspect run is the newest complete run, and says so', async () => {
    const dry = await cli('rollback', '--bucket', versioned, '--prefix', 'lake/', '--at', 'last-clean', '--dry-run', '--json');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(/"message_type":"warning".*no unacknowledged suspect run/);
    expect(summaryOf(dry).state).toBe(`state run ${runId} recorded (the newest complete run)`);
  });

  it('--keys-from rolls back only the named keys', async () => {
    await put(versioned, 'lake/b+c.txt', { body: 'again', type: 'text/plain', meta: {}, tags: {} });
    await put(versioned, 'lake/same.txt', { body: 'again', type: 'text/plain', meta: {}, tags: {} });
    const list = join(dir.path, 'keys.txt');
    writeFileSync(list, `lake/b+c.txt\ns3://${versioned}/lake/zoë/データ.json\n`);
    const r = await cli('rollback', '--bucket', versioned, '--keys-from', list, '--at', runId, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(summaryOf(r).actions).toMatchObject({ copy: { keys: 1 }, unchanged: { keys: 1 } });
    expect(await read(versioned, 'lake/b+c.txt')).toEqual(ORIGINAL['lake/b+c.txt']);
    expect((await read(versioned, 'lake/same.txt')).body).toBe('again');
  });
});
