// lakeguard drill on the real S3 server, through the CLI: a sample restored into a scratch
// prefix of another bucket, every byte verified, RTO and RPO reported and exported as metrics,
// the scratch prefix left empty, the drill shown by `runs`; then one pack's bytes corrupted in
// the repository bucket: the drill exits 1 and names the object.
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packKey } from '../../src/repository/pack.js';
import { Repository } from '../../src/repository/repository.js';
import { messagesOf, runCli, summaryOf } from '../helpers/cli.js';
import { locateBlob } from '../helpers/damage.js';
import { tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, S3_OTHER_USER, testEnv, testS3Client, testS3Store, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();
const PASSWORD = 'drill-password';
const body = (i: number): string => JSON.stringify({ i, pad: 'y'.repeat(100 + i) });

describe('drill on the real S3 server', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let scratch: string;
  let policy: string;
  const cli = (...args: string[]) => runCli(['--policy', policy, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: PASSWORD, LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });
  const scratchKeys = async (): Promise<string[]> => ((await s3.send(new ListObjectsV2Command({ Bucket: scratch }))).Contents ?? []).map((o) => o.Key!);

  beforeAll(async () => {
    dir = tempDir('it-drill');
    [source, repoBucket, scratch] = await Promise.all([createTestBucket('lg-dr-src'), createTestBucket('lg-dr-repo'), createTestBucket('lg-dr-scratch')]);
    await Promise.all(Array.from({ length: 20 }, (_, i) => s3.send(new PutObjectCommand({ Bucket: source, Key: `t/${i}.json`, Body: body(i) }))));
    policy = writeS3Policy(join(dir.path, 'lakeguard.yaml'), { repo: `${repoBucket}/lg`, buckets: [source] });
    expect((await cli('init')).code).toBe(0);
    expect((await cli('backup', '--quiet')).code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([source, repoBucket, scratch].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('restores a sample, verifies it, reports RTO and RPO, cleans up, and is listed by runs', async () => {
    const metrics = join(dir.path, 'lakeguard.prom');
    const r = await cli('--metrics-file', metrics, 'drill', '--sample', '8', '--to', `s3://${scratch}/drills/`, '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = summaryOf(r);
    expect(report).toMatchObject({ ok: true, scope: 'group:lake', objects: { selected: 20, sampled: 8, restored: 8, verified: 8, damaged: 0 }, kept: false, recorded: true });
    expect(report.scratch).toMatch(new RegExp(`^s3://${scratch}/drills/lakeguard-drill-[0-9a-f]{12}/$`));
    expect(report.bytes).toBeGreaterThan(8 * 100);
    expect(typeof report.rtoMs).toBe('number');
    expect(report.rpoMs).toBeGreaterThanOrEqual(0);
    expect(await scratchKeys()).toEqual([]);
    // The textfile a Prometheus parser reads: the drill's RTO and its verdict.
    const families = parsePrometheusTextFormat(readFileSync(metrics, 'utf8'));
    const sample = (name: string) => families.find((f) => f.name === name)?.metrics[0];
    expect(sample('lakeguard_drill_rto_seconds')).toEqual({ labels: { scope: 'group:lake' }, value: String(report.rtoMs / 1000) });
    expect(sample('lakeguard_drill_last_ok')?.value).toBe('1');
    const listed = messagesOf(await cli('runs', '--json'), 'drill');
    expect(listed.map((d) => [d.id, d.ok])).toEqual([[report.id, true]]);
  });

  it('a scratch bucket that does not exist: one error line, exit 2, no drill recorded (never damage)', async () => {
    const missing = `${scratch}-missing`;
    const r = await cli('drill', '--all', '--to', `s3://${missing}/drills/`);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^lakeguard: restore target s3://${missing}/drills/lakeguard-drill-[0-9a-f]{12}/: bucket ${missing} does not exist; nothing was written\n  hint: create bucket ${missing} first, .*\n$`));
    expect(messagesOf(await cli('runs', '--json'), 'drill')).toHaveLength(1);
  });

  it('a scratch bucket these credentials may not write in: one error line, exit 2, no drill recorded (never damage)', async () => {
    const other = testS3Client(S3_OTHER_USER);
    const foreign = await createTestBucket('lg-dr-foreign', { client: other });
    try {
      const r = await cli('drill', '--sample', '3', '--to', `s3://${foreign}/drills/`);
      expect(r.stderr).toMatch(
        new RegExp(`^lakeguard: drill: the scratch target s3://${foreign}/drills/lakeguard-drill-[0-9a-f]{12}/ refused a write \\(PUT s3://${foreign}/drills/lakeguard-drill-[0-9a-f]{12}/t/\\d+\\.json: AccessDenied \\(403\\)\\); no drill recorded\n  hint: .*says nothing about the backup\n$`),
      );
      expect(r.code).toBe(2);
      expect(messagesOf(await cli('runs', '--json'), 'drill')).toHaveLength(1);
    } finally {
      await emptyAndDeleteBucket(foreign, other);
    }
  });

  it('a damaged pack: the drill exits 1 and names the object; nothing is left in the scratch bucket', async () => {
    const repo = await Repository.open(testS3Store(repoBucket, 'lg/'), { password: async () => PASSWORD });
    const where = await locateBlob(repo, repo.blobId(Buffer.from(body(5))).toString('hex'));
    const key = `lg/${packKey(where.pack)}`;
    const pack = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: repoBucket, Key: key }))).Body!.transformToByteArray());
    pack[where.offset + (where.length >> 1)]! ^= 0x01;
    await s3.send(new PutObjectCommand({ Bucket: repoBucket, Key: key, Body: pack }));

    const metrics = join(dir.path, 'lakeguard.prom');
    const r = await cli('--metrics-file', metrics, 'drill', '--all', '--to', `s3://${scratch}/drills`);
    expect(r.code).toBe(1);
    // The failed drill in the textfile: its verdict and the command's exit code.
    const families = parsePrometheusTextFormat(readFileSync(metrics, 'utf8'));
    expect(families.find((f) => f.name === 'lakeguard_drill_last_ok')?.metrics).toEqual([{ labels: { scope: 'group:lake' }, value: '0' }]);
    expect(families.find((f) => f.name === 'lakeguard_command_last_exit_code')?.metrics).toEqual([{ labels: { command: 'drill' }, value: '1' }]);
    expect(r.stdout).toMatch(/^drill \S+ of group:lake \(run \S+\): FAILED, \d+ objects damaged$/m);
    expect(r.stdout).toMatch(new RegExp(`^  damaged   ${source}/t/5\\.json: not restored: `, 'm'));
    expect(r.stderr).toMatch(new RegExp(`^failed: ${source}/t/5\\.json: `, 'm'));
    expect(await scratchKeys()).toEqual([]);
  });
});
