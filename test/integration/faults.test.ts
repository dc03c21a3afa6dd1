// Faults from S3 between lakeguard and the real server (a proxy injects them): at a 10 % fault
// rate a backup of thousands of objects completes and restores byte-exact; truncated and
// altered bodies are detected and read again, never stored.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { hashTree, prng, tempDir } from '../helpers/fixtures.js';
import { S3_TEST, createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';
import { createHash } from 'node:crypto';

const s3 = testS3Client();
const OBJECTS = 2000;

describe('faults between lakeguard and S3', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  const expected = new Map<string, string>();

  beforeAll(async () => {
    dir = tempDir('it-faults');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-fault-src'), createTestBucket('lg-fault-repo')]);
    const rnd = prng(99);
    const limit = pLimit(32);
    await Promise.all(
      Array.from({ length: OBJECTS }, (_, i) =>
        limit(async () => {
          const body = i % 4 === 0 ? rnd(1024 + (i % 16) * 1024) : Buffer.from(`{"i":${i},"pad":"${'z'.repeat(i % 3000)}"}\n`);
          const key = `t${i % 5}/dt=2026-11-${String((i % 28) + 1).padStart(2, '0')}/part-${i}.json`;
          await s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));
          expected.set(key, createHash('sha256').update(body).digest('hex'));
        }),
      ),
    );
    const big = rnd(20 * 1024 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: source, Key: 'raw/big.bin', Body: big }));
    expected.set('raw/big.bin', createHash('sha256').update(big).digest('hex'));
  }, 300_000);

  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  const cliThrough = (name: string, proxy: FaultProxy) => {
    const policy = writeS3Policy(join(dir.path, `${name}.yaml`), { repo: `${repoBucket}/${name}`, buckets: [source], endpoint: proxy.endpoint, extra: ['concurrency: { list: 8, transfer: 16 }'] });
    return (...args: string[]) => runCli(['--policy', policy, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'faults', LAKEGUARD_CACHE_DIR: join(dir.path, `cache-${name}`) });
  };

  const scenario = async (name: string, proxy: FaultProxy) => {
    const cli = cliThrough(name, proxy);
    const init = await cli('init');
    expect(init.code, init.stderr).toBe(0);
    const backup = await cli('backup', '--json');
    expect(backup.code, backup.stderr).toBe(0);
    expect(summaryOf(backup)).toMatchObject({ status: 'complete', counters: { objectsNew: OBJECTS + 1, objectsFailed: 0 } });
    const out = join(dir.path, `restore-${name}`);
    const restore = await cli('restore', '--to-dir', out);
    expect(restore.code, restore.stderr).toBe(0);
    expect(hashTree(out)).toEqual(expected);
    const verify = await cli('verify', '--read-data');
    expect(verify.code, verify.stderr + verify.stdout).toBe(0);
  };

  it('completes and restores byte-exact with 10 % of requests failing (503, 500, resets, stalls, cut and altered bodies)', async () => {
    const proxy = await startFaultProxy({ target: S3_TEST.endpoint, rate: 0.1, seed: 7, faults: ['slowdown', 'internal', 'reset', 'stall', 'truncate', 'flip'], stallMs: 500 });
    try {
      await scenario('mixed', proxy);
      for (const fault of ['slowdown', 'internal', 'reset', 'stall', 'truncate', 'flip'] as const) expect(proxy.counts[fault], fault).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it('detects bodies cut off in a third of all GETs and reads them again', async () => {
    const proxy = await startFaultProxy({ target: S3_TEST.endpoint, rate: 0.33, seed: 11, faults: ['truncate'], eligible: (req) => req.method === 'GET' && !/[?&](list-type|versions|versioning|tagging)\b/.test(req.url!) });
    try {
      await scenario('truncated', proxy);
      expect(proxy.counts.truncate).toBeGreaterThan(OBJECTS / 5);
    } finally {
      await proxy.close();
    }
  });

  // Incremental runs merge-join each listing with the catalog: a listing page read short, or a
  // key damaged out of order, would look like deleted objects. Damaged pages must be read again.
  it('never takes a damaged listing for deletions: incremental runs with 30 % of listing bodies altered', async () => {
    const isListing = (req: { method?: string; url?: string }) => req.method === 'GET' && /[?&](list-type=2|versions)\b/.test(req.url ?? '');
    const proxy = await startFaultProxy({ target: S3_TEST.endpoint, rate: 0.3, seed: 5, faults: ['flip'], eligible: isListing });
    try {
      const cli = cliThrough('listing', proxy);
      expect((await cli('init')).code).toBe(0);
      const seed = await cli('backup', '--json');
      expect(seed.code, seed.stderr).toBe(0);
      expect(summaryOf(seed)).toMatchObject({ status: 'complete', counters: { objectsNew: OBJECTS + 1, objectsFailed: 0 } });
      for (let run = 0; run < 3; run++) {
        const again = await cli('backup', '--json');
        expect(again.code, again.stderr).toBe(0);
        expect(summaryOf(again)).toMatchObject({ status: 'complete', counters: { objectsUnchanged: OBJECTS + 1, objectsNew: 0, objectsChanged: 0, objectsDeleted: 0, objectsFailed: 0 } });
      }
      expect(proxy.counts.flip).toBeGreaterThan(20);
    } finally {
      await proxy.close();
    }
  });
});
