// forget on the real server with a versioned bucket: kept runs restore exactly as before, the
// noncurrent versions that forget dropped stay in the bucket but are not captured again, and a
// catalog rebuilt from the repository alone agrees.
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { hashTree, tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();
const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

async function bucketState(bucket: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  for (const o of page.Contents ?? []) {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
    out.set(o.Key!, sha(await got.Body!.transformToByteArray()));
  }
  return out;
}

describe('forget on a versioned bucket', { timeout: 180_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policyFile: string;
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'forget-it', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));

  beforeAll(async () => {
    dir = tempDir('it-forget');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-forget', { versioning: true }), createTestBucket('lg-forget-repo')]);
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source], extra: ['    retention: { keep_last: 2 }'] });
    ok(await cli('init'));
  });
  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('drops what no kept run needs, restores the kept runs unchanged, and never captures a dropped version again', async () => {
    const runIds: string[] = [];
    const backup = async () => runIds.push(summaryOf(ok(await cli('backup', '--json'))).runId as string);
    await put('a.json', 'a1');
    await put('b.json', 'b1');
    await backup();
    await put('a.json', 'a2');
    await put('a.json', 'a3');
    await backup();
    await put('a.json', 'a4');
    await s3.send(new DeleteObjectCommand({ Bucket: source, Key: 'b.json' }));
    await put('c.json', 'c1');
    await backup();
    await put('a.json', 'a5');
    await backup();

    const restoreRun = async (id: string, name: string) => {
      ok(await cli('restore', '--run', id, '--to-dir', join(dir.path, name), '--quiet'));
      return hashTree(join(dir.path, name));
    };
    const before3 = await restoreRun(runIds[2]!, 'before-3');
    const before4 = await restoreRun(runIds[3]!, 'before-4');
    expect([...before3.keys()].sort()).toEqual(['a.json', 'c.json']);

    const dry = summaryOf(ok(await cli('forget', '--dry-run', '--json')));
    expect(dry.runs.map((r: { keep: boolean }) => r.keep)).toEqual([false, false, true, true]);
    // a1, a2, a3 and b1 were current at no kept run; a4, b's delete marker, c1 and a5 stay.
    expect(dry.versionsDropped).toBe(4);

    const done = summaryOf(ok(await cli('forget', '--json')));
    expect(done).toMatchObject({ runsRemoved: 2, versionsDropped: 4 });
    // Both forgotten runs recorded only dropped versions: their manifests are gone.
    expect(done.manifestsDeleted.sort()).toEqual(runIds.slice(0, 2).sort());
    ok(await cli('verify'));
    expect(await restoreRun(runIds[2]!, 'after-3')).toEqual(before3);
    expect(await restoreRun(runIds[3]!, 'after-4')).toEqual(before4);

    // ListObjectVersions still returns a1..a3 and b1: none is fetched or recorded again.
    const next = summaryOf(ok(await cli('backup', '--json')));
    expect(next.counters).toMatchObject({ objectsNew: 0, bytesRead: 0 });
    const versions = ok(await cli('versions', `s3://${source}/a.json`, '--json'));
    expect(summaryOf(versions)).toMatchObject({ versions: 2, deleteMarkers: 0 }); // a4, a5

    // A catalog rebuilt from the repository answers the same.
    rmSync(join(dir.path, 'cache'), { recursive: true, force: true });
    ok(await cli('catalog', 'rebuild'));
    expect(summaryOf(ok(await cli('backup', '--json'))).counters).toMatchObject({ objectsNew: 0, bytesRead: 0 });
    expect(await restoreRun(runIds[3]!, 'rebuilt-4')).toEqual(before4);
    ok(await cli('restore', '--to-dir', join(dir.path, 'latest'), '--quiet'));
    expect(hashTree(join(dir.path, 'latest'))).toEqual(new Map([...(await bucketState(source))].map(([k, v]) => [k, v])));
  });
});
