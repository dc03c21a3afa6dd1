// Shards of one backup run on the real S3 server, through the CLI: three processes with
// --shards/--shard (each with its own cache: its own host) split a skewed bucket so that the
// ranges in their manifests cover the key space exactly once, and record each change once.
// The engine variables (JOB_COMPLETION_INDEX) drive a second run set. Bad settings exit 2.
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { basename, join } from 'node:path';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunManifest } from '../../src/engine/finalize.js';
import type { RunSetPlan } from '../../src/engine/shard-plan.js';
import { compareBucketKeys, type BucketKey, type ShardRange } from '../../src/engine/shards.js';
import { Repository } from '../../src/repository/repository.js';
import { runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, testS3Store, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();
const PASSWORD = 'shards-it';

/** 300 keys: one partition of 200 (the skew), then 20 partitions of 5. */
function lakeKeys(): string[] {
  const keys: string[] = [];
  for (let i = 0; i < 200; i++) keys.push(`events/dt=2026-12-01/part-${String(i).padStart(4, '0')}.json`);
  for (let p = 0; p < 20; p++) for (let i = 0; i < 5; i++) keys.push(`events/dt=2026-11-${String(p + 1).padStart(2, '0')}/part-${i}.json`);
  return keys;
}

describe('backup shards via the CLI', { timeout: 240_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policyFile: string;
  const env = (host: string, extra: Record<string, string> = {}) => ({ ...testEnv(), LAKEGUARD_PASSWORD: PASSWORD, LAKEGUARD_CACHE_DIR: join(dir.path, host), ...extra });
  const cli = (host: string, args: string[], extra: Record<string, string> = {}) => runCli(['--policy', policyFile, ...args], env(host, extra));
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));

  /** The repository as a test reads it: the manifests of `runIds`, and a plan. */
  const withRepo = async <T>(f: (repo: Repository) => Promise<T>): Promise<T> => f(await Repository.open(testS3Store(repoBucket, 'r/'), { password: async () => PASSWORD }));

  beforeAll(async () => {
    dir = tempDir('it-shards');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-shards'), createTestBucket('lg-shards-repo')]);
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source] });
    const limit = pLimit(16);
    await Promise.all(lakeKeys().map((k) => limit(() => put(k, `{"key":"${k}"}`))));
    ok(await cli('host-0', ['init']));
  });
  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  /** Checks the ranges of one run set's manifests: consecutive, open at both ends, one per index. */
  const expectCoverOnce = (manifests: RunManifest[], of: number): ShardRange[] => {
    const shards = manifests.map((m) => m.shard!).sort((a, b) => a.index - b.index);
    expect(shards.map((s) => s.index)).toEqual([...Array(of).keys()]);
    expect(new Set(shards.map((s) => s.set)).size).toBe(1);
    expect(shards.every((s) => s.of === of)).toBe(true);
    expect(shards[0]!.range.after).toBeUndefined();
    expect(shards.at(-1)!.range.upTo).toBeUndefined();
    for (let i = 1; i < of; i++) expect(shards[i]!.range.after).toEqual(shards[i - 1]!.range.upTo);
    for (let i = 1; i < of - 1; i++) expect(compareBucketKeys(shards[i]!.range.after!, shards[i]!.range.upTo!)).toBeLessThanOrEqual(0);
    return shards.map((s) => s.range);
  };

  it('three shard processes split a seed, then an incremental run, each change recorded once', async () => {
    const seed = await Promise.all([0, 1, 2].map((i) => cli(`host-${i}`, ['backup', '--json', '--shards', '3', '--shard', String(i), '--run-set', 'seed-1'])));
    const summaries = seed.map((r) => summaryOf(ok(r)));
    expect(summaries.map((s) => s.shard)).toEqual([0, 1, 2].map((index) => ({ set: summaries[0]!.shard.set, name: 'seed-1', index, of: 3 })));
    expect(summaries.reduce((n, s) => n + (s.counters.objectsNew as number), 0)).toBe(300);
    const manifests = await withRepo((repo) => Promise.all(summaries.map((s) => repo.readDocument<RunManifest>('runs', s.runId as string))));
    expectCoverOnce(manifests, 3);
    // The plan in the repository is the one every shard used.
    const plan = await withRepo((repo) => repo.readDocument<RunSetPlan>('runsets', 'seed-1'));
    expect(plan).toMatchObject({ version: 1, name: 'seed-1', shards: 3 });
    expect(plan.groups.lake!.run).toBe(summaries[0]!.shard.set);

    // Each host's catalog was fresh: the shard keeps only its range, in its own file beside the host's catalog.db, which
    // stays whole (docs/scale-out.md "A shard on a fresh host syncs only its key range"); catalog info lists the file.
    const info = summaryOf(ok(await cli('host-0', ['catalog', 'info', '--json'])));
    expect(info.scope).toBeNull();
    const files = (info.shardCatalogs as { path: string }[]).map((f) => f.path);
    expect(files.map((f) => basename(f))).toEqual(['shard-0-of-3.db']);
    const scope = summaryOf(ok(await cli('host-0', ['--catalog', files[0]!, 'catalog', 'info', '--json']))).scope as { bucket: string; prefix: string; after?: string; upTo?: string }[];
    expect(scope).toEqual([{ bucket: source, prefix: '', upTo: plan.groups.lake!.bounds[0]![1] }]);

    // Changes spread over the key space: deletions in the big partition and in small ones.
    const deleted = ['events/dt=2026-11-01/part-0.json', 'events/dt=2026-12-01/part-0100.json', 'events/dt=2026-12-01/part-0199.json'];
    for (const k of deleted) await s3.send(new DeleteObjectCommand({ Bucket: source, Key: k }));
    const added = ['a-first.json', 'events/dt=2026-12-01/part-0100a.json', 'zz-last.json'];
    for (const k of added) await put(k, 'new');
    await put('events/dt=2026-11-10/part-1.json', 'changed');

    // The same hosts (each shard file holds its seed range: the new plan keeps the seed's boundaries, which
    // still balance the work within 25%, so each file syncs on incrementally), the index from JOB_COMPLETION_INDEX.
    const k8s = (i: number) => ({ JOB_COMPLETION_INDEX: String(i), LAKEGUARD_SHARDS: '3', LAKEGUARD_RUN_SET: 'inc-1' });
    const inc = (await Promise.all([0, 1, 2].map((i) => cli(`host-${i}`, ['backup', '--json'], k8s(i))))).map((r) => summaryOf(ok(r)));
    const total = (field: string) => inc.reduce((n, s) => n + (s.counters[field] as number), 0);
    expect([total('objectsNew'), total('objectsChanged'), total('objectsDeleted'), total('objectsUnchanged')]).toEqual([3, 1, 3, 296]);
    const incManifests = await withRepo((repo) => Promise.all(inc.map((s) => repo.readDocument<RunManifest>('runs', s.runId as string))));
    const ranges = expectCoverOnce(incManifests, 3);
    const incPlan = await withRepo((repo) => repo.readDocument<RunSetPlan>('runsets', 'inc-1'));
    expect([incPlan.groups.lake!.bounds, incPlan.groups.lake!.boundsFrom]).toEqual([plan.groups.lake!.bounds, { runSet: 'seed-1', run: plan.groups.lake!.run }]);
    // Balanced (planned from a listing: three record blobs are too few to plan from): no shard holds more than a third and a tenth of the 303 keys.
    const inShard = (k: BucketKey) => ranges.findIndex((r) => (r.after === undefined || compareBucketKeys(k, r.after) > 0) && (r.upTo === undefined || compareBucketKeys(k, r.upTo) <= 0));
    const sizes = [0, 0, 0];
    for (const k of [...lakeKeys().filter((x) => !deleted.includes(x)), ...added]) sizes[inShard([source, k])]!++;
    for (const n of sizes) expect(n).toBeLessThanOrEqual(110);

    // An engine retries a shard that finished: it says so, exits 0 and writes nothing.
    const before = await withRepo(async (repo) => [...(await repo.listNames('runs')), ...(await repo.listNames('index'))].sort());
    const again = summaryOf(ok(await cli('host-fresh', ['backup', '--json'], k8s(1))));
    expect(again).toMatchObject({ runId: inc[1]!.runId, alreadyComplete: true, status: 'complete', shard: { index: 1, of: 3, name: 'inc-1' } });
    expect(await withRepo(async (repo) => [...(await repo.listNames('runs')), ...(await repo.listNames('index'))].sort())).toEqual(before);
    expect(await withRepo((repo) => repo.listNames('locks'))).toEqual([]);
  });

  it('a shard started with another shard count than the plan, or without a count, exits 2 with one line', async () => {
    const wrong = await cli('host-0', ['backup', '--shards', '4', '--shard', '0', '--run-set', 'seed-1']);
    expect(wrong.code, wrong.stderr).toBe(2);
    expect(wrong.stderr).toMatch(/run set seed-1 was planned for 3 shards, not 4/);
    const noCount = await cli('host-0', ['backup'], { JOB_COMPLETION_INDEX: '1', LAKEGUARD_RUN_SET: 'x' });
    expect(noCount.code).toBe(2);
    expect(noCount.stderr).toMatch(/JOB_COMPLETION_INDEX=1 gives a shard index but no shard count/);
  });
});
