// Partial runs and hostile conditions on the real server: a prefix denied by a real bucket
// policy, a missing source bucket, bad credentials and an unreachable endpoint each give one
// clear line and the documented exit code; no secret ever appears in any output.
import { PutBucketPolicyCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { S3_TEST, createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client } from '../helpers/s3-env.js';

const s3 = testS3Client();
const PASSWORD = 'hostile-Pa55word-never-printed';

describe('partial runs and hostile conditions', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  const outputs: CliResult[] = [];
  const policyFor = (name: string, sources: string, endpoint = S3_TEST.endpoint) => {
    const file = join(dir.path, `${name}.yaml`);
    writeFileSync(file, `version: 1\nrepository:\n  url: s3://${repoBucket}/${name}\n  endpoint: ${endpoint}\ns3:\n  endpoint: ${endpoint}\ngroups:\n  - name: g\n    sources:\n${sources}`);
    return file;
  };
  const cli = async (policy: string, args: string[], env: Record<string, string> = {}) => {
    const r = await runCli(['--policy', policy, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: PASSWORD, LAKEGUARD_CACHE_DIR: join(dir.path, 'cache'), ...env });
    outputs.push(r);
    return r;
  };

  beforeAll(async () => {
    dir = tempDir('it-hostile');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-deny-src'), createTestBucket('lg-deny-repo')]);
    for (let i = 0; i < 10; i++) await s3.send(new PutObjectCommand({ Bucket: source, Key: `open/${i}.json`, Body: `{"i":${i}}` }));
    for (let i = 0; i < 3; i++) await s3.send(new PutObjectCommand({ Bucket: source, Key: `secret/${i}.json`, Body: `{"s":${i}}` }));
  });

  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('a prefix denied by a bucket policy makes the run partial (exit 3), with every failure exported as CSV', async () => {
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: source,
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Deny', Principal: { AWS: ['arn:aws:iam:::user/lakeguard-test'] }, Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${source}/secret/*`] }],
        }),
      }),
    );
    const policy = policyFor('denied', `      - bucket: ${source}\n`);
    expect((await cli(policy, ['init'])).code).toBe(0);
    const backup = await cli(policy, ['backup', '--json']);
    expect(backup.code, backup.stderr).toBe(3);
    const summary = summaryOf(backup);
    expect(summary).toMatchObject({ status: 'partial', counters: { objectsNew: 10, objectsFailed: 3 } });
    // Each failure is reported as it happens (stderr, as an error message)...
    const errors = backup.stderr.trim().split('\n').map((l) => JSON.parse(l) as { message_type: string; key: string; code: string });
    expect(errors.filter((e) => e.message_type === 'error').map((e) => e.key).sort()).toEqual(['secret/0.json', 'secret/1.json', 'secret/2.json']);
    // ...and recorded with the run.
    const csv = await cli(policy, ['runs', 'show', summary.runId, '--failures', '--csv']);
    expect(csv.code, csv.stderr).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^bucket,key,version_?id,code,message/i);
    expect(lines.slice(1).sort().map((l) => l.split(',').slice(0, 2).join(','))).toEqual(['0', '1', '2'].map((i) => `${source},secret/${i}.json`));
    expect(lines.slice(1).every((l) => l.includes('AccessDenied'))).toBe(true);
    const restore = await cli(policy, ['restore', '--to-dir', join(dir.path, 'partial')]);
    expect(restore.stdout).toMatch(/restored 10 of 10/);
  });

  it('a missing source bucket is a named failure of a partial run', async () => {
    const policy = policyFor('missing', `      - bucket: ${source}\n      - bucket: lg-no-such-bucket-anywhere\n`);
    expect((await cli(policy, ['init'])).code).toBe(0);
    const backup = await cli(policy, ['backup', '--json']);
    expect(backup.code).toBe(3);
    expect(backup.stderr).toMatch(/lg-no-such-bucket-anywhere.*NoSuchBucket/);
  });

  it('bad credentials and an unreachable endpoint: one line, exit 1, the next step named', async () => {
    const policy = policyFor('denied', `      - bucket: ${source}\n`);
    const bad = await cli(policy, ['runs'], { AWS_SECRET_ACCESS_KEY: 'wrong-secret-never-printed' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^lakeguard: GET s3:\/\/.*SignatureDoesNotMatch/);
    expect(bad.stderr).toMatch(/hint: check AWS credentials/);
    expect(bad.stderr).not.toContain('wrong-secret-never-printed');

    const unreachable = policyFor('unreachable', `      - bucket: ${source}\n`, 'http://127.0.0.1:9');
    const down = await cli(unreachable, ['runs']);
    expect(down.code).toBe(1);
    expect(down.stderr.split('\n')[0]).toMatch(/^lakeguard: .*http:\/\/127\.0\.0\.1:9 is not reachable: connection refused/);
  });

  it('never prints the password or the secret key', () => {
    for (const r of outputs) {
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
      expect(r.stdout + r.stderr).not.toContain(S3_TEST.secretAccessKey);
    }
  });
});
