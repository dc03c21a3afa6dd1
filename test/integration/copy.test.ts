// `lakeguard copy` on the real S3 server: runs of one repository copied to a second one in
// another bucket, under Object Lock (the vault copy), with its own password; a copy killed after
// its first pack is continued by a re-run; the second repository alone (its own policy, a fresh
// cache) restores byte-identically and verifies, and its objects carry their own retention.
import { GetObjectRetentionCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, runCliKilledAfterFirstPack, summaryOf, type CliResult } from '../helpers/cli.js';
import { hashTree, prng, tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();

describe('copy to a second repository', { timeout: 240_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let vaultBucket: string;
  let policy: string;
  let vaultPolicy: string;
  const env = (host: string) => ({ ...testEnv(), LAKEGUARD_PASSWORD: 'main-password', VAULT_PASSWORD: 'vault-password', LAKEGUARD_CACHE_DIR: join(dir.path, host) });
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };

  beforeAll(async () => {
    dir = tempDir('it-copy');
    [source, repoBucket, vaultBucket] = await Promise.all([createTestBucket('lg-copy'), createTestBucket('lg-copy-repo'), createTestBucket('lg-copy-vault', { objectLock: true })]);
    policy = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source] });
    vaultPolicy = writeS3Policy(join(dir.path, 'vault.yaml'), { repo: `${vaultBucket}/v`, buckets: [source], repositoryExtra: ['password_env: VAULT_PASSWORD', 'pack_size: 1MiB'] });
    ok(await runCli(['--policy', policy, 'init'], env('host')));
    ok(await runCli(['--policy', vaultPolicy, 'init', '--object-lock', 'GOVERNANCE', '--retention', '1d'], env('host')));
  });
  afterAll(async () => {
    await Promise.all([source, repoBucket, vaultBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('copies runs incrementally and resumably; the vault alone restores byte-identically and verifies', async () => {
    const random = prng(7);
    for (let i = 0; i < 30; i++) await s3.send(new PutObjectCommand({ Bucket: source, Key: `t/part-${i}.bin`, Body: random(100_000 + i * 100) }));
    const first = summaryOf(ok(await runCli(['--policy', policy, 'backup', '--json'], env('host')))).runId as string;

    // Killed right after its first pack reached the vault: no manifest, and a re-run finishes it.
    const killed = await runCliKilledAfterFirstPack(['--policy', policy, 'copy', '--to-policy', vaultPolicy], env('host'));
    expect(killed.code, killed.stderr).toBe(-1);
    const runsAfterKill = await s3.send(new ListObjectsV2Command({ Bucket: vaultBucket, Prefix: 'v/runs/' }));
    expect(runsAfterKill.KeyCount ?? 0).toBe(0);
    const packsAfterKill = await s3.send(new ListObjectsV2Command({ Bucket: vaultBucket, Prefix: 'v/packs/' }));
    expect(packsAfterKill.KeyCount).toBeGreaterThanOrEqual(1);
    const resumed = summaryOf(ok(await runCli(['--policy', policy, 'copy', '--to-policy', vaultPolicy, '--json'], env('host'))));
    expect((resumed.copied as { source: string }[]).map((c) => c.source)).toEqual([first]);
    // The killed copy's pack never reached a catalog: it stays as garbage (verify counts it, prune removes it).
    const packsAfter = await s3.send(new ListObjectsV2Command({ Bucket: vaultBucket, Prefix: 'v/packs/' }));
    expect(packsAfter.KeyCount).toBeGreaterThan(resumed.packsWritten as number);

    await s3.send(new PutObjectCommand({ Bucket: source, Key: 't/part-3.bin', Body: 'changed' }));
    const second = summaryOf(ok(await runCli(['--policy', policy, 'backup', '--json'], env('host')))).runId as string;
    const incremental = summaryOf(ok(await runCli(['--policy', policy, 'copy', '--to-policy', vaultPolicy, '--json'], env('host'))));
    expect((incremental.copied as { source: string }[]).map((c) => c.source)).toEqual([second]);
    expect(incremental.alreadyCopied).toBe(1);

    // The vault alone: its own policy and password, a fresh cache; both runs restore as the source's do.
    const copies = ok(await runCli(['--policy', vaultPolicy, 'runs', '--json'], env('fresh'))).messages.filter((m) => m.message_type === 'run') as { id: string }[];
    expect(copies.length).toBe(2);
    for (const [i, runId] of [first, second].entries()) {
      const fromMain = join(dir.path, `main-${i}`);
      ok(await runCli(['--policy', policy, 'restore', '--run', runId, '--bucket', source, '--to-dir', fromMain], env('host')));
      const fromVault = join(dir.path, `vault-${i}`);
      ok(await runCli(['--policy', vaultPolicy, 'restore', '--run', copies[i]!.id, '--bucket', source, '--to-dir', fromVault], env('fresh')));
      expect(hashTree(fromVault)).toEqual(hashTree(fromMain));
      expect(hashTree(fromVault).size).toBe(30);
    }
    ok(await runCli(['--policy', vaultPolicy, 'verify', '--read-data'], env('fresh')));

    // Vault copy: its manifests and packs carry the vault's own retention.
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: vaultBucket, Prefix: 'v/runs/' }));
    expect(listed.KeyCount).toBe(2);
    for (const o of listed.Contents ?? []) {
      const retention = await s3.send(new GetObjectRetentionCommand({ Bucket: vaultBucket, Key: o.Key! }));
      expect(retention.Retention?.Mode).toBe('GOVERNANCE');
    }
  });

  it('a --to-policy that cannot be read, or whose repository is not created yet, is named with its own next step', async () => {
    const missingFile = await runCli(['--policy', policy, 'copy', '--to-policy', join(dir.path, 'no-such.yaml')], env('host'));
    expect(missingFile.stderr).toBe(`lakeguard: --to-policy: cannot read policy file ${join(dir.path, 'no-such.yaml')}: no such file\n  hint: give the policy of the second repository, e.g. --to-policy vault.yaml (docs/copy.md)\n`);
    expect(missingFile.code).toBe(2);
    const fresh = writeS3Policy(join(dir.path, 'fresh-vault.yaml'), { repo: `${vaultBucket}/not-created`, buckets: [source] });
    const notCreated = await runCli(['--policy', policy, 'copy', '--to-policy', fresh], env('host'));
    expect(notCreated.stderr).toBe(
      `lakeguard: no lakeguard repository at s3://${vaultBucket}/not-created/ (the --to-policy repository)\n  hint: create it first with \`lakeguard --policy ${fresh} init\`, or check repository.url in ${fresh}\n`,
    );
    expect(notCreated.code).toBe(10);
  });
});
