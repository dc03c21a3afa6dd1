// The swapped-config attack on the real server: whoever can write the repository bucket
// replaces an encrypted repository's `config` with one that says `encryption: none`. The next
// backup must refuse, and write nothing (least of all plaintext), on this host and a fresh one.
import { GetObjectCommand, GetObjectRetentionCommand, ListObjectVersionsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repository } from '../../src/repository/repository.js';
import { runCli } from '../helpers/cli.js';
import { TEST_KDF, tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy, testS3Store } from '../helpers/s3-env.js';

const s3 = testS3Client();
const SECRET = 'card 4111-1111-1111-1111 must never reach the repository in plaintext';

/** Every repository object: key -> ETag. */
async function objects(bucket: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.set(o.Key!, o.ETag!);
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

describe('a config swapped for "encryption: none" on S3', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repo: string;
  let policy: string;
  const cli = (cache: string, ...args: string[]) =>
    runCli(['--policy', policy, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'swap-test-password', LAKEGUARD_CACHE_DIR: join(dir.path, cache) });

  beforeAll(async () => {
    dir = tempDir('it-trust');
    [source, repo] = await Promise.all([createTestBucket('lg-trust-src'), createTestBucket('lg-trust-repo')]);
    for (let i = 0; i < 5; i++) await s3.send(new PutObjectCommand({ Bucket: source, Key: `t/${i}.json`, Body: `{"n":${i}}` }));
    policy = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: repo!, buckets: [source!] });
  });

  afterAll(async () => {
    await Promise.all([source, repo].flatMap((b) => (b === undefined ? [] : [emptyAndDeleteBucket(b)])));
    dir?.cleanup();
  });

  it('refuses the next backup and writes nothing, with the catalog and on a fresh host', async () => {
    expect((await cli('cache', 'init')).code).toBe(0);
    const first = await cli('cache', 'backup');
    expect(first.code, first.stderr).toBe(0);

    const config = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: repo, Key: 'config' }))).Body!.transformToString());
    expect(config.encryption.algorithm).toBe('aes-256-gcm');
    await s3.send(new PutObjectCommand({ Bucket: repo, Key: 'config', Body: JSON.stringify({ ...config, encryption: { algorithm: 'none' } }) }));
    await s3.send(new PutObjectCommand({ Bucket: source, Key: 't/secret.txt', Body: SECRET }));
    const swapped = await objects(repo!);

    const here = await cli('cache', 'backup');
    expect(here.code).toBe(1);
    expect(here.stderr).toMatch(/^lakeguard: config changed: s3:\/\/.*config says encryption none, but the catalog .* knows the repository with encryption aes-256-gcm/);
    const fresh = await cli('cache-fresh', 'backup');
    expect(fresh.code).toBe(1);
    expect(fresh.stderr).toMatch(/^lakeguard: config changed: .*config says encryption none, but the policy .* says the repository is encrypted/);

    // Not one object added or changed: the secret is nowhere in the repository.
    expect(await objects(repo!)).toEqual(swapped);
  });
});

describe('lakeguard migrate on an Object Lock repository', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repo: string;
  let policy: string;
  const cli = (...args: string[]) =>
    runCli(['--policy', policy, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'migrate-test-password', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  beforeAll(async () => {
    dir = tempDir('it-migrate');
    [source, repo] = await Promise.all([createTestBucket('lg-mig-src'), createTestBucket('lg-mig-repo', { objectLock: true })]);
    await s3.send(new PutObjectCommand({ Bucket: source, Key: 'a.json', Body: '{"a":1}' }));
    policy = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: repo!, buckets: [source!] });
  });

  afterAll(async () => {
    await Promise.all([source, repo].flatMap((b) => (b === undefined ? [] : [emptyAndDeleteBucket(b)])));
    dir?.cleanup();
  });

  it('puts a retained version 2 config above the retained version 1 one, and backups work again', async () => {
    const store = testS3Store(repo);
    await Repository.init(store, { password: 'migrate-test-password', kdf: { ...TEST_KDF }, formatVersion: 1, objectLock: { mode: 'GOVERNANCE', retentionDays: 1 } });
    const refused = await cli('backup');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/has format version 1; lakeguard writes only to version 2\n.*lakeguard migrate/);

    const migrated = await cli('migrate');
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toMatch(/Object Lock GOVERNANCE 1 days/);
    const versions = (await s3.send(new ListObjectVersionsCommand({ Bucket: repo, Prefix: 'config' }))).Versions ?? [];
    expect(versions).toHaveLength(2);
    for (const v of versions) {
      const r = await s3.send(new GetObjectRetentionCommand({ Bucket: repo, Key: 'config', VersionId: v.VersionId }));
      expect(r.Retention?.Mode, `config version ${v.VersionId}`).toBe('GOVERNANCE');
      const body = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: repo, Key: 'config', VersionId: v.VersionId }))).Body!.transformToString());
      expect(body.version).toBe(v.IsLatest ? 2 : 1);
    }
    const backup = await cli('backup');
    expect(backup.code, backup.stderr).toBe(0);
  });
});
