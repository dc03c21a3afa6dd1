// repository.storage_class on the real S3 server: packs are written in the class, every other
// repository object stays STANDARD (so sync never needs a thaw), and a restore reads them back.
// The main gateway of scripts/s3-server.sh may predate the storage classes the script now adds
// to the zone (a gateway reads its zone only at start): a private gateway on the same cluster
// is started here, and stopped by this test alone.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { S3_TEST, createTestBucket, emptyAndDeleteBucket, testEnv } from '../helpers/s3-env.js';
import { startPrivateGateway, type StsGateway } from '../helpers/s3-sts-gateway.js';

describe('repository.storage_class on S3', () => {
  let dir: ReturnType<typeof tempDir>;
  let gateway: StsGateway;
  let s3: S3Client;
  let source = '';
  let repo = '';
  let policyFile = '';
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], { ...testEnv(), LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  beforeAll(async () => {
    dir = tempDir('it-storage-class');
    gateway = await startPrivateGateway('lgclass');
    s3 = new S3Client({
      endpoint: gateway.endpoint,
      region: S3_TEST.region,
      forcePathStyle: true,
      credentials: { accessKeyId: S3_TEST.accessKeyId, secretAccessKey: S3_TEST.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    [source, repo] = await Promise.all([createTestBucket('lg-class-src'), createTestBucket('lg-class-repo')]);
    for (let i = 0; i < 20; i++) await s3.send(new PutObjectCommand({ Bucket: source, Key: `d/${i}.txt`, Body: `object ${i}\n`.repeat(i + 1) }));
    policyFile = join(dir.path, 'policy.yaml');
    writeFileSync(
      policyFile,
      `version: 1
repository:
  url: s3://${repo}/cold
  endpoint: ${gateway.endpoint}
  encryption: none
  storage_class: STANDARD_IA
s3:
  endpoint: ${gateway.endpoint}
groups:
  - name: lake
    sources:
      - bucket: ${source}
`,
    );
  }, 90_000);

  afterAll(async () => {
    await Promise.all([source, repo].filter((b) => b !== '').map((b) => emptyAndDeleteBucket(b)));
    await gateway?.stop();
    dir?.cleanup();
  });

  it('writes packs in the class and everything else in STANDARD; restore reads them', async () => {
    expect((await cli('init')).code).toBe(0);
    const backup = await cli('backup', '--json');
    expect(backup.code, backup.stderr).toBe(0);
    expect(summaryOf(backup).counters.objectsNew).toBe(20);

    const page = await s3.send(new ListObjectsV2Command({ Bucket: repo, Prefix: 'cold/' }));
    const keys = (page.Contents ?? []).map((o) => o.Key!);
    const classes = new Map<string, string>();
    for (const key of keys) classes.set(key, (await s3.send(new HeadObjectCommand({ Bucket: repo, Key: key }))).StorageClass ?? 'STANDARD');
    const packs = keys.filter((k) => k.startsWith('cold/packs/'));
    const others = keys.filter((k) => !k.startsWith('cold/packs/'));
    expect(packs.length).toBeGreaterThan(0);
    expect(others.some((k) => k === 'cold/config')).toBe(true);
    expect(others.some((k) => k.startsWith('cold/runs/'))).toBe(true);
    for (const k of packs) expect(classes.get(k), k).toBe('STANDARD_IA');
    for (const k of others) expect(classes.get(k), k).toBe('STANDARD');

    const target = join(dir.path, 'restored');
    const restore = await cli('restore', '--bucket', source, '--to', `file://${target}`);
    expect(restore.code, restore.stderr).toBe(0);
    expect(readFileSync(join(target, 'd', '7.txt'), 'utf8')).toBe('object 7\n'.repeat(8));

    // cost prices the repository in the class its packs are written in.
    const cost = await cli('cost', '--json', '--runs-per-day', '1');
    expect(cost.code, cost.stderr).toBe(0);
    expect(summaryOf(cost).total.storageClass).toBe('STANDARD_IA');
  });

  it('refuses an unknown storage class in the policy, naming the field', async () => {
    writeFileSync(policyFile, readFileSync(policyFile, 'utf8').replace('storage_class: STANDARD_IA', 'storage_class: COLD'));
    const bad = await cli('backup');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/storage_class.*expected one of STANDARD, STANDARD_IA/);
  });
});
