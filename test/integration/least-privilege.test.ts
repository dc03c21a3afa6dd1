// Issue 23 "Done when": least privilege on the real server, with users of the server itself.
// User A (the lake's owner) alone reads the source bucket; the repository bucket belongs to an
// admin user, whose bucket policy lets the backup identity B only create objects (PutObject,
// no DeleteObject outside locks/) and lets a restore identity R only read. Each role signs
// with its own profile of a shared credentials file, and the CLI gets no credentials in its
// environment at all: a store that used the wrong role, or the default chain, would fail.
// Last, a role assumed through STS (a second gateway with STS on) writes a restore target.
import { DeleteObjectCommand, GetObjectCommand, ListObjectVersionsCommand, ListObjectsV2Command, PutBucketPolicyCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { S3_OTHER_USER, S3_TEST, createTestBucket, emptyAndDeleteBucket, testS3Client } from '../helpers/s3-env.js';
import { startStsGateway } from '../helpers/s3-sts-gateway.js';
import { S3_ADMIN_USER, S3_RESTORE_USER, createS3Role, ensureS3User, removeS3Role, userArn } from '../helpers/s3-users.js';

const OBJECTS = 40;
const lake = testS3Client(); // user A
const backupUser = { uid: 'lakeguard-other', ...S3_OTHER_USER }; // user B
const asBackup = testS3Client(S3_OTHER_USER);
const asAdmin = testS3Client(S3_ADMIN_USER);
const asRestore = testS3Client(S3_RESTORE_USER);

async function keysOf(s3: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key!);
    token = page.NextContinuationToken;
  } while (token);
  return keys.sort();
}

async function bodyOf(s3: S3Client, bucket: string, key: string): Promise<string> {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await got.Body!.transformToByteArray()).toString();
}

/** The S3 error code of a request that must be refused. */
async function refusal(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'allowed',
    (err: { name?: string }) => err.name ?? 'unknown',
  );
}

/** The repository bucket's policy: create-only for the backup role, read-only for restore. */
function repositoryBucketPolicy(repo: string): string {
  const bucket = `arn:aws:s3:::${repo}`;
  const readBucket = ['s3:ListBucket', 's3:GetBucketVersioning', 's3:GetBucketObjectLockConfiguration'];
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'BackupCreates', Effect: 'Allow', Principal: { AWS: [userArn(backupUser)] }, Action: [...readBucket, 's3:GetObject', 's3:PutObject'], Resource: [bucket, `${bucket}/*`] },
      { Sid: 'RestoreReads', Effect: 'Allow', Principal: { AWS: [userArn(S3_RESTORE_USER)] }, Action: [...readBucket, 's3:GetObject'], Resource: [bucket, `${bucket}/*`] },
      // RGW (like S3 without Object Ownership "bucket owner enforced") leaves an object to the
      // user who wrote it: the owner of the bucket needs a statement to read or delete B's.
      { Sid: 'AdminAll', Effect: 'Allow', Principal: { AWS: [userArn(S3_ADMIN_USER)] }, Action: ['s3:*'], Resource: [bucket, `${bucket}/*`] },
      // Both write and remove their own lock files, and nothing else.
      { Sid: 'Locks', Effect: 'Allow', Principal: { AWS: [userArn(backupUser), userArn(S3_RESTORE_USER)] }, Action: ['s3:PutObject', 's3:DeleteObject'], Resource: [`${bucket}/locks/*`] },
    ],
  });
}

describe('least privilege: a role per bucket, each with its own credentials', () => {
  const dir = tempDir('it-least-privilege');
  let source: string;
  let repo: string;
  let target: string;
  const policyFor = (repositoryProfile: string) => {
    const file = join(dir.path, `${repositoryProfile}.yaml`);
    writeFileSync(
      file,
      `version: 1
repository:
  url: s3://${repo}
  endpoint: ${S3_TEST.endpoint}
  credentials:
    profile: ${repositoryProfile}
s3:
  endpoint: ${S3_TEST.endpoint}
groups:
  - name: lake
    sources:
      - bucket: ${source}
        credentials:
          profile: lake-reader
`,
    );
    return file;
  };
  // No AWS_ACCESS_KEY_ID: every store must sign with its role's profile.
  const env = (cache: string) => ({
    HOME: dir.path,
    AWS_CONFIG_FILE: join(dir.path, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir.path, 'aws-credentials'),
    AWS_REGION: S3_TEST.region,
    AWS_EC2_METADATA_DISABLED: 'true',
    LAKEGUARD_PASSWORD: 'least-privilege-test',
    LAKEGUARD_CACHE_DIR: join(dir.path, cache),
  });

  beforeAll(async () => {
    await Promise.all([ensureS3User(S3_ADMIN_USER), ensureS3User(S3_RESTORE_USER)]);
    [source, repo, target] = await Promise.all([
      createTestBucket('lp-src'),
      createTestBucket('lp-repo', { client: asAdmin }),
      createTestBucket('lp-target', { client: asRestore }),
    ]);
    for (let i = 0; i < OBJECTS; i++) await lake.send(new PutObjectCommand({ Bucket: source, Key: `events/${i}.json`, Body: `{"event":${i}}` }));
    await asAdmin.send(new PutBucketPolicyCommand({ Bucket: repo, Policy: repositoryBucketPolicy(repo) }));
    const profile = (name: string, u: { accessKeyId: string; secretAccessKey: string }) => `[${name}]\naws_access_key_id = ${u.accessKeyId}\naws_secret_access_key = ${u.secretAccessKey}\n`;
    writeFileSync(
      join(dir.path, 'aws-credentials'),
      profile('lake-reader', S3_TEST) + profile('backup', S3_OTHER_USER) + profile('admin', S3_ADMIN_USER) + profile('restore', S3_RESTORE_USER),
    );
    writeFileSync(join(dir.path, 'aws-config'), '');
  });

  afterAll(async () => {
    await emptyAndDeleteBucket(source);
    await emptyAndDeleteBucket(repo, asAdmin);
    await emptyAndDeleteBucket(target, asRestore);
    dir.cleanup();
  });

  it('the admin creates the repository, the backup role backs up with create-only rights', async () => {
    const init = await runCli(['--policy', policyFor('admin'), 'init'], env('admin-cache'));
    expect(init.code, init.stderr).toBe(0);
    // The split is real: the backup role cannot read the lake, the lake's owner cannot read the repository.
    expect(await refusal(asBackup.send(new ListObjectsV2Command({ Bucket: source })))).toBe('AccessDenied');
    expect(await refusal(lake.send(new ListObjectsV2Command({ Bucket: repo })))).toBe('AccessDenied');

    const backup = await runCli(['--policy', policyFor('backup'), '--json', 'backup'], env('backup-cache'));
    expect(backup.code, backup.stderr).toBe(0);
    expect(summaryOf(backup)).toMatchObject({ status: 'complete', counters: { objectsNew: OBJECTS, objectsFailed: 0 } });
    const written = await keysOf(asAdmin, repo);
    expect(written.filter((k) => k.startsWith('packs/')).length).toBeGreaterThan(0);
    expect(written.filter((k) => k.startsWith('locks/'))).toEqual([]);
    // The delete probe found no delete right, so no warning; and it left nothing behind.
    expect(backup.stderr).not.toContain('can delete packs');
    expect(written).not.toContain('packs/00/lakeguard-delete-probe');
  });

  it('warns when the repository credentials of a backup can delete packs', async () => {
    const backup = await runCli(['--policy', policyFor('admin'), '--json', 'backup'], env('admin-cache'));
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stderr).toContain(`the repository credentials can delete packs in s3://${repo}/: a backup role needs to create objects only (docs/permissions.md)`);
    expect(await keysOf(asAdmin, repo, 'packs/00/lakeguard')).toEqual([]);
  });

  it('does not probe a versioned repository bucket: there a DELETE would write a delete marker', async () => {
    const versioned = await createTestBucket('lp-versioned', { versioning: true });
    try {
      const file = join(dir.path, 'versioned.yaml');
      // The lake owner's identity can delete in its own bucket: a probe would warn.
      writeFileSync(file, readFileSync(policyFor('admin'), 'utf8').replace(`url: s3://${repo}`, `url: s3://${versioned}`).replace('profile: admin', 'profile: lake-reader'));
      expect((await runCli(['--policy', file, 'init'], env('versioned-cache'))).code).toBe(0);
      const backup = await runCli(['--policy', file, '--json', 'backup'], env('versioned-cache'));
      expect(backup.code, backup.stderr).toBe(0);
      expect(backup.stderr).not.toContain('can delete packs');
      const versions = await lake.send(new ListObjectVersionsCommand({ Bucket: versioned, Prefix: 'packs/00/lakeguard' }));
      expect([...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]).toEqual([]);
    } finally {
      await emptyAndDeleteBucket(versioned);
    }
  });

  it("neither the lake's owner nor the backup role can delete what the backup wrote", async () => {
    const pack = (await keysOf(asAdmin, repo, 'packs/'))[0]!;
    const manifest = (await keysOf(asAdmin, repo, 'runs/'))[0]!;
    for (const key of [pack, manifest, 'config']) {
      expect(await refusal(lake.send(new DeleteObjectCommand({ Bucket: repo, Key: key })))).toBe('AccessDenied');
      expect(await refusal(asBackup.send(new DeleteObjectCommand({ Bucket: repo, Key: key })))).toBe('AccessDenied');
    }
    expect(await keysOf(asAdmin, repo)).toEqual(expect.arrayContaining([pack, manifest, 'config']));
  });

  it('a third identity restores from the repository into a bucket of its own', async () => {
    const restore = await runCli(['--policy', policyFor('restore'), '--json', 'restore', '--group', 'lake', '--to', `s3://${target}/`, '--to-profile', 'restore'], env('restore-cache'));
    expect(restore.code, restore.stderr).toBe(0);
    expect(summaryOf(restore)).toMatchObject({ restored: OBJECTS, failed: 0 });
    const restored = await keysOf(asRestore, target);
    expect(restored).toEqual((await keysOf(lake, source)).sort());
    for (const key of restored.slice(0, 5)) expect(await bodyOf(asRestore, target, key)).toBe(await bodyOf(lake, source, key));
    // The restore role reads and nothing more: the repository is unchanged.
    expect(await refusal(asRestore.send(new PutObjectCommand({ Bucket: repo, Key: 'packs/forged', Body: 'x' })))).toBe('AccessDenied');
  });

  it('a role assumed through STS writes where the identity that assumes it may not (--to-role-arn)', async () => {
    // The lake owner's bucket: the restore user has no right on it, the role it assumes has.
    const elsewhere = await createTestBucket('lp-sts');
    const roleName = `lakeguard-restore-${Date.now().toString(36)}`;
    const gateway = await startStsGateway();
    try {
      const role = await createS3Role(roleName, S3_RESTORE_USER, elsewhere);
      // STS is asked at the target's endpoint: the gateway with STS on, in front of the same cluster.
      const restore = (...extra: string[]) =>
        runCli(['--policy', policyFor('restore'), '--json', 'restore', '--group', 'lake', '--to', `s3://${elsewhere}/`, '--to-endpoint', gateway.endpoint, '--to-profile', 'restore', ...extra], env('restore-cache'));
      const denied = await restore();
      expect(denied.code).toBe(1); // the target's inventory listing is refused before anything is written
      expect(denied.stderr).toContain('AccessDenied');
      const assumed = await restore('--to-role-arn', role);
      expect(assumed.code, assumed.stderr).toBe(0);
      expect(summaryOf(assumed)).toMatchObject({ restored: OBJECTS, failed: 0 });
      expect(await keysOf(lake, elsewhere)).toEqual(await keysOf(lake, source));
    } finally {
      await gateway.stop();
      await removeS3Role(roleName);
      await emptyAndDeleteBucket(elsewhere);
    }
  });
});
