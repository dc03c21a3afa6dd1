// The foundation, end to end on the real S3 server, through the real CLI: a bucket of
// thousands of objects (0 B to 64 KiB, unicode and deeply nested keys, a 40 MiB multipart
// object) is backed up, restored to another bucket and to a directory byte-identical with
// content type and user metadata, incrementally re-backed-up, and verified.
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf, messagesOf } from '../helpers/cli.js';
import { hashTree, prng, tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

// Thousands of objects (three listing pages, every size class, unicode and deep keys); scale
// itself (millions of objects, requests per object) is the benchmark's job (bench/).
const OBJECTS = 2000;
/** Every 100th object has the same body. */
const DUPLICATES = OBJECTS / 100;
const s3 = testS3Client();
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Expected {
  sha: string;
  size: number;
  contentType: string;
  metadata: Record<string, string>;
}

describe('backup and restore of a real bucket', () => {
  let source: string;
  let repoBucket: string;
  let dest: string;
  let dir: ReturnType<typeof tempDir>;
  let policyFile: string;
  const expected = new Map<string, Expected>();
  const env = () => ({ ...testEnv(), LAKEGUARD_PASSWORD: 'correct horse battery staple', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], env());

  beforeAll(async () => {
    dir = tempDir('it-backup');
    [source, repoBucket, dest] = await Promise.all([createTestBucket('lg-src'), createTestBucket('lg-repo'), createTestBucket('lg-dst')]);
    const rnd = prng(7);
    const limit = pLimit(32);
    const dupBody = Buffer.from('duplicate content stored once\n'.repeat(300));
    const keys: string[] = [];
    for (let i = 0; i < OBJECTS; i++) {
      if (i % 500 === 1) keys.push(`ünïcødé/日本語/ключ-${i} 🦆 & spaces+plus%.txt`);
      else if (i % 500 === 2) keys.push(`deep/${Array.from({ length: 12 }, (_, d) => `level${d}`).join('/')}/leaf-${i}.json`);
      else keys.push(`table=t${i % 4}/dt=2026-11-${String((i % 20) + 1).padStart(2, '0')}/part-${String(i).padStart(5, '0')}.json`);
    }
    await Promise.all(
      keys.map((key, i) =>
        limit(async () => {
          // Sizes from 0 B to 64 KiB; half compressible text, some random, some duplicates.
          const size = i === 0 ? 0 : (i * 7919) % (64 * 1024 + 1);
          const body = i % 100 === 50 ? dupBody : i % 3 === 0 ? rnd(size) : Buffer.from(JSON.stringify({ i, pad: 'lake '.repeat(size / 5) })).subarray(0, size);
          const contentType = i % 3 === 0 ? 'application/octet-stream' : 'application/json';
          const metadata: Record<string, string> = i % 10 === 0 ? { origin: `writer-${i % 7}`, 'schema-version': '3' } : {};
          await s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body, ContentType: contentType, Metadata: metadata }));
          expected.set(key, { sha: sha(body), size: body.length, contentType, metadata });
        }),
      ),
    );
    const big = rnd(40 * 1024 * 1024);
    await new Upload({ client: s3, params: { Bucket: source, Key: 'raw/big-40MiB.bin', Body: big, ContentType: 'application/x-parquet' }, partSize: 8 * 1024 * 1024 }).done();
    expected.set('raw/big-40MiB.bin', { sha: sha(big), size: big.length, contentType: 'application/x-parquet', metadata: {} });

    policyFile = writeS3Policy(join(dir.path, 'lakeguard.yaml'), { repo: `${repoBucket}/lakeguard`, buckets: [source], extra: ['concurrency: { list: 8, transfer: 32 }'] });
  }, 600_000);

  afterAll(async () => {
    await Promise.all([source, repoBucket, dest].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  let firstRun: Record<string, any>;

  it('initializes, backs up with far fewer PUTs than objects, and stores duplicates once', async () => {
    const init = await cli('init', '--json');
    expect(init.code, init.stderr).toBe(0);
    expect(summaryOf(init).encrypted).toBe(true);
    // A second init never overwrites the repository.
    const again = await cli('init');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);

    const backup = await cli('backup', '--json');
    expect(backup.code, backup.stderr).toBe(0);
    firstRun = summaryOf(backup);
    const c = firstRun.counters;
    expect(firstRun.status).toBe('complete');
    expect(c.objectsNew).toBe(OBJECTS + 1);
    expect(c.objectsFailed).toBe(0);
    expect(c.bytesRead).toBe([...expected.values()].reduce((n, e) => n + e.size, 0));
    // Packs, index files, a manifest and a lock: a few dozen PUTs at most for 2,001 objects.
    expect(c.requests.put).toBeLessThan(OBJECTS / 50);
    expect(c.packsWritten).toBeGreaterThan(0);
    // 20 objects share one body: 19 of them are deduplicated (plus chunks shared by the data).
    expect(c.blobsDeduplicated).toBeGreaterThanOrEqual(DUPLICATES - 1);
    expect(c.bytesStored).toBeLessThan(c.bytesRead);
  });

  it('restores to another bucket byte-identical, with content type and user metadata', async () => {
    const restore = await cli('restore', '--to', `s3://${dest}/restored/`, '--json');
    expect(restore.code, restore.stderr).toBe(0);
    expect(summaryOf(restore).restored).toBe(OBJECTS + 1);

    let listed = 0;
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: dest, Prefix: 'restored/', ContinuationToken: token }));
      listed += page.KeyCount ?? 0;
      token = page.NextContinuationToken;
    } while (token);
    expect(listed).toBe(OBJECTS + 1);

    const limit = pLimit(32);
    const mismatches: string[] = [];
    await Promise.all(
      [...expected].map(([key, want]) =>
        limit(async () => {
          const got = await s3.send(new GetObjectCommand({ Bucket: dest, Key: `restored/${key}` }));
          const body = Buffer.from(await got.Body!.transformToByteArray());
          if (sha(body) !== want.sha) mismatches.push(`${key}: content`);
          if (got.ContentType !== want.contentType) mismatches.push(`${key}: content type ${got.ContentType}`);
          if (JSON.stringify(got.Metadata ?? {}) !== JSON.stringify(want.metadata)) mismatches.push(`${key}: metadata ${JSON.stringify(got.Metadata)}`);
        }),
      ),
    );
    expect(mismatches).toEqual([]);
  });

  it('restores to a directory byte-identical', async () => {
    const target = join(dir.path, 'restore-dir');
    const restore = await cli('restore', '--to-dir', target);
    expect(restore.code, restore.stderr).toBe(0);
    const tree = hashTree(target);
    expect(tree.size).toBe(OBJECTS + 1);
    for (const [key, want] of expected) expect(tree.get(key), key).toBe(want.sha);
    expect(readFileSync(join(target, 'raw/big-40MiB.bin')).length).toBe(40 * 1024 * 1024);
  });

  it('a second run of the unchanged bucket writes no pack; after 10 changes only their data is uploaded', async () => {
    const unchanged = summaryOf(await cli('backup', '--json'));
    expect(unchanged.status).toBe('complete');
    expect(unchanged.counters.packsWritten).toBe(0);
    expect(unchanged.counters.objectsUnchanged).toBe(OBJECTS + 1);
    expect(unchanged.counters.bytesRead).toBe(0);

    const changed = [...expected.keys()].filter((k) => k.startsWith('table=t1/')).slice(0, 10);
    const original = new Map(changed.map((k) => [k, expected.get(k)!.sha]));
    let changedBytes = 0;
    for (const [n, key] of changed.entries()) {
      const body = Buffer.from(`changed object ${n}: ${'new bytes '.repeat(100 + n)}`);
      changedBytes += body.length;
      await s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body, ContentType: 'text/plain' }));
      expected.set(key, { sha: sha(body), size: body.length, contentType: 'text/plain', metadata: {} });
    }
    const incremental = summaryOf(await cli('backup', '--json'));
    expect(incremental.counters).toMatchObject({ objectsChanged: 10, objectsNew: 0, objectsUnchanged: OBJECTS + 1 - 10, bytesRead: changedBytes });
    expect(incremental.counters.blobsNew).toBe(10);
    expect(incremental.counters.bytesStored).toBeLessThan(changedBytes);

    // The old state stays restorable from the first run.
    const key = changed[0]!;
    const out = join(dir.path, 'first-run-key');
    const r = await cli('restore', '--run', firstRun.runId, '--bucket', source, '--key', key, '--to-dir', out);
    expect(r.code, r.stderr).toBe(0);
    expect(sha(readFileSync(join(out, key)))).toBe(original.get(key));
    expect(original.get(key)).not.toBe(expected.get(key)!.sha);
  });

  it('verify --read-data proves every pack readable; runs lists every run', async () => {
    const verify = await cli('verify', '--read-data', '--json');
    expect(verify.code, verify.stderr).toBe(0);
    expect(summaryOf(verify)).toMatchObject({ ok: true, damage: [] });
    expect(summaryOf(verify).packsRead).toBeGreaterThan(0);

    const runs = await cli('runs', '--json');
    const list = messagesOf(runs, 'run');
    expect(list.map((r) => r.status)).toEqual(['complete', 'complete', 'complete']);
  });
});
