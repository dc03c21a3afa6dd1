// A scoped catalog on the real S3 server: host A backs up a lake partitioned by day, one run per
// day; host B (its own HOME) syncs only one day with `catalog sync --prefix`, reads fewer record
// blobs and no index file, and restores that day byte-identical; host C syncs the whole repository.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { hashTree, tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const DAYS = 3;
const FILES = 40;

/** The content of a file of a day (a few hundred bytes, different for every key and version). */
const body = (day: number, i: number, version = 1): Buffer => Buffer.from(JSON.stringify({ day, i, version, pad: `${day}-${i}-`.repeat(20 + i) }));

describe('catalog sync --prefix on the real S3 server (two hosts)', { timeout: 240_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policyFile: string;
  const env = (host: string) => ({ ...testEnv(), LAKEGUARD_PASSWORD: 'scope-it', HOME: join(dir.path, host) });
  const on = (host: string, ...args: string[]) => runCli(['--policy', policyFile, ...args], env(host));
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  const putDay = (day: number, version = 1) =>
    Promise.all(Array.from({ length: FILES }, (_, i) => s3.send(new PutObjectCommand({ Bucket: source, Key: `dt=0${day}/part-${String(i).padStart(3, '0')}.json`, Body: body(day, i, version) }))));

  beforeAll(async () => {
    dir = tempDir('it-scope');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-scope'), createTestBucket('lg-scope-repo')]);
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source] });
    ok(await on('host-a', 'init'));
    for (let day = 1; day <= DAYS; day++) {
      await putDay(day);
      ok(await on('host-a', 'backup', '--quiet'));
    }
  });
  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('host B imports one day from its record blobs alone and restores it byte-identical; a whole sync reads more', async () => {
    const scoped = summaryOf(ok(await on('host-b', 'catalog', 'sync', '--prefix', `s3://${source}/dt=02/`, '--json')));
    const whole = summaryOf(ok(await on('host-c', 'catalog', 'sync', '--json')));
    expect(scoped).toMatchObject({ runs: DAYS, indexFiles: 0, scope: [{ bucket: source, prefix: 'dt=02/' }], scopeChanged: true, damage: [], missingCount: 0 });
    expect(whole).toMatchObject({ runs: DAYS, scope: null, damage: [], missingCount: 0 });
    expect(whole.indexFiles).toBeGreaterThanOrEqual(DAYS);
    // Both read the three manifests. B reads one record blob (day 2's run: each run's records hold
    // only its day) and no index file; C every record blob and every index file.
    expect(scoped.requests.get).toBe(DAYS + 1);
    expect(whole.requests.get).toBe(DAYS + DAYS + whole.indexFiles);
    expect(scoped.bytesRead * 2).toBeLessThan(whole.bytesRead);

    const info = summaryOf(ok(await on('host-b', 'catalog', 'info', '--json')));
    expect(info).toMatchObject({ runs: DAYS, versions: FILES, objects: FILES, scope: [{ bucket: source, prefix: 'dt=02/' }] });

    const out = join(dir.path, 'restored');
    ok(await on('host-b', 'restore', '--bucket', source, '--prefix', 'dt=02/', '--to-dir', out, '--quiet'));
    const expected = new Map(Array.from({ length: FILES }, (_, i) => [`dt=02/part-${String(i).padStart(3, '0')}.json`, sha(body(2, i))]));
    expect(hashTree(out)).toEqual(expected);

    // A prefix that holds nothing (a typo, or a day not backed up yet) is said, not an error.
    const empty = ok(await on('host-d', 'catalog', 'sync', '--prefix', `s3://${source}/dt=09/`));
    expect(empty.stderr).toBe(`warning: no version in the repository is under s3://${source}/dt=09/ (yet)\n`);
    expect(empty.stdout).toContain(`holds: only s3://${source}/dt=09/ (scoped)`);
  });

  it("host B's next command imports A's new run scoped", async () => {
    await putDay(2, 2);
    ok(await on('host-a', 'backup', '--quiet'));
    // Any command syncs first; `catalog info` does not, so ask `runs`, then look.
    ok(await on('host-b', 'runs', '--json'));
    const info = summaryOf(ok(await on('host-b', 'catalog', 'info', '--json')));
    expect(info).toMatchObject({ runs: DAYS + 1, versions: 2 * FILES, scope: [{ bucket: source, prefix: 'dt=02/' }] });
  });

  it('a fresh host that restores one day first imports only that day (on demand); `runs` first imports no key', async () => {
    const out = join(dir.path, 'restored-on-demand');
    ok(await on('host-e', 'restore', '--bucket', source, '--prefix', 'dt=03/', '--to-dir', out, '--quiet'));
    expect(hashTree(out)).toEqual(new Map(Array.from({ length: FILES }, (_, i) => [`dt=03/part-${String(i).padStart(3, '0')}.json`, sha(body(3, i))])));
    expect(summaryOf(ok(await on('host-e', 'catalog', 'info', '--json')))).toMatchObject({ runs: DAYS + 1, versions: FILES, objects: FILES, scope: [{ bucket: source, prefix: 'dt=03/' }], scopeOnDemand: true });
    ok(await on('host-f', 'runs', '--quiet'));
    expect(summaryOf(ok(await on('host-f', 'catalog', 'info', '--json')))).toMatchObject({ runs: DAYS + 1, versions: 0, scope: [], scopeOnDemand: true });
  });
});
