// `lakeguard cost` on the real server: a versioned bucket with several versions of a key between
// two runs and a delete marker, backed up into an S3 repository and priced in Glacier IR.
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf } from '../helpers/cli.js';
import { prng, tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();
const MIN = 128 * 1024;
const GIB = 1024 ** 3;

describe('cost of a versioned bucket', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policyFile: string;
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'cost-it', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });
  const put = (key: string, size: number, seed: number) => s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: prng(seed)(size) }));

  beforeAll(async () => {
    dir = tempDir('it-cost');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-cost', { versioning: true }), createTestBucket('lg-cost-repo')]);
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source], extra: ['pricing:', '  storage_class: GLACIER_IR'] });
    expect((await cli('init')).code).toBe(0);
    await put('a.json', 1000, 1);
    await put('b.json', 2000, 2);
    await put('c.json', 3000, 3);
    expect((await cli('backup', '--quiet')).code).toBe(0);
    // Two more versions of a.json between the runs, and b.json deleted (a delete marker).
    await put('a.json', 1100, 4);
    await put('a.json', 1200, 5);
    await s3.send(new DeleteObjectCommand({ Bucket: source, Key: 'b.json' }));
    expect((await cli('backup', '--quiet')).code).toBe(0);
  });

  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('counts every version, the live state per run, and prices the copy at 128 KiB a version', async () => {
    const r = await cli('cost', '--json', '--runs-per-day', '1');
    expect(r.code, r.stderr).toBe(0);
    const runs = r.messages.filter((m) => m.message_type === 'run') as Record<string, any>[];
    expect(runs.map((m) => [m.sourceObjects, m.sourceBytes, m.objectsNewOrChanged])).toEqual([
      [3, 6000, 3],
      [2, 1200 + 3000, 2],
    ]);
    const group = r.messages.find((m) => m.message_type === 'group') as Record<string, any>;
    expect(group).toMatchObject({ source: { objects: 2, bytes: 4200 }, retained: { versions: 5, bytes: 8300, deleteMarkers: 1 } });

    // The packs the report counts are the packs in the repository bucket.
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: repoBucket, Prefix: 'r/packs/' }));
    const packs = (listed.Contents ?? []).map((o) => o.Size!);
    expect(group.repository).toMatchObject({ packs: packs.length, bytes: packs.reduce((a, b) => a + b, 0), metadataObjects: 4 });
    expect(runs.reduce((a, m) => a + m.packsWritten, 0)).toBe(packs.length);

    const e = summaryOf(r).total;
    expect(e.storageClass).toBe('GLACIER_IR');
    // Every object here is under 128 KiB: each pack, index file, manifest and copied version bills as 128 KiB.
    expect(e.copy.billableBytes).toBe(5 * MIN);
    expect(e.lakeguard.billableBytes).toBe((packs.length + 4) * MIN);
    expect(e.copy.storagePerMonth).toBeCloseTo(((5 * MIN) / GIB) * 0.004, 6);
    // Monthly requests: run 2 (the only incremental run) 30 times; the copy COPYs 2 versions a run at $0.02/1,000.
    const run2 = runs[1]!.requests;
    expect(e.lakeguard.requestsPerMonth).toEqual({ put: 30 * run2.put, get: 30 * run2.get, list: 30 * run2.list });
    expect(e.copy.requestsPerMonth).toEqual({ put: 60, get: 0, list: 30 * run2.list });
    expect(e.copy.requestCostPerMonth).toBeCloseTo((60 * 0.02 + 30 * run2.list * 0.005) / 1000, 6);
    expect(e.copy.firstCopy).toMatchObject({ put: 3, get: 0 });
  });
});
