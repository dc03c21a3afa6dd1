// Prune crash safety on the real server: a real `lakeguard prune` is killed with SIGKILL just
// before a seeded random write (test/helpers/crash-cli.mjs), at least 10 times; after
// each kill verify (reading every blob) is clean, the kept run restores byte-identically, and
// the next prune completes within --max-unused. Unused data comes from a simulated forget (see
// test/helpers/simulate-forget.ts) of the previous run, half of whose content the new run
// re-uses under new keys, so its packs become partly used and are repacked.
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { repositoryStore } from '../../src/commands/context.js';
import { backupGroup } from '../../src/engine/backup.js';
import { prune } from '../../src/engine/prune.js';
import { restore } from '../../src/engine/restore.js';
import { verify } from '../../src/engine/verify.js';
import { loadPolicy } from '../../src/policy/load.js';
import { Repository } from '../../src/repository/repository.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { getBytes } from '../../src/storage/types.js';
import { runCli, runCliKilledBeforeWrite } from '../helpers/cli.js';
import { hashTree, prng, tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';
import { simulateForgetInCatalog } from '../helpers/simulate-forget.js';

const s3 = testS3Client();
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('prune crash safety', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policy: string;
  let catalogPath: string;
  const state = new Map<string, string>();
  const env = (extra: Record<string, string> = {}) => ({ ...testEnv(), LAKEGUARD_PASSWORD: 'prune-crash', ...extra });
  const cli = (args: string[], extra: Record<string, string> = {}) => runCli(['--policy', policy, '--catalog', catalogPath, ...args], env(extra));
  const rnd = prng(7007);
  const limit = pLimit(16);
  const put = (key: string, body: Buffer) =>
    limit(async () => {
      await s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));
      state.set(key, sha(body));
    });
  const remove = (key: string) =>
    limit(async () => {
      await s3.send(new DeleteObjectCommand({ Bucket: source, Key: key }));
      state.delete(key);
    });

  beforeAll(async () => {
    dir = tempDir('it-prune-crash');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-prune-src'), createTestBucket('lg-prune-repo')]);
    policy = join(dir.path, 'policy.yaml');
    catalogPath = join(dir.path, 'catalog.db');
    writeS3Policy(policy, { repo: `${repoBucket}/r`, buckets: [source], repositoryExtra: ['pack_size: 1MiB'], extra: ['concurrency: { list: 4, transfer: 8 }'] });
    expect((await cli(['init'])).code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('survives SIGKILL at 10 random writes; every crash leaves a repository that verifies, restores and is finished by the next prune', async () => {
    // Only prune runs as a child (to be killed); backups, checks and re-runs run in this
    // process, which keeps the test short on a busy machine. The catalog is opened per step,
    // as a new process would.
    Object.assign(process.env, testEnv());
    const loaded = loadPolicy(policy);
    const repo = await Repository.open(repositoryStore(loaded), { password: async () => 'prune-crash' });
    const withCatalog = async <T>(fn: (catalog: Catalog) => Promise<T>): Promise<T> => {
      const catalog = Catalog.open(catalogPath, repo.id);
      try {
        return await fn(catalog);
      } finally {
        catalog.close();
      }
    };
    const pick = prng(20261123);
    let previous: { runId: string; contents: Buffer[] } | null = null;
    let crashes = 0;
    const points: number[] = [];
    for (let round = 0; crashes < 10; round++) {
      expect(round, 'too few rounds ended in a crash').toBeLessThan(16);
      // The new run deletes everything the previous one wrote and re-uses half of its content.
      const contents = Array.from({ length: 16 }, (_, i) => rnd(3000 + ((round * 16 + i) % 7) * 900));
      const changes: Promise<void>[] = [];
      for (const key of [...state.keys()]) changes.push(remove(key));
      contents.forEach((c, i) => changes.push(put(`g${round}/obj-${i}`, c)));
      if (previous !== null) previous.contents.forEach((c, i) => i % 2 === 0 && changes.push(put(`g${round}/copy-${i}`, c)));
      await Promise.all(changes);
      const backup = await withCatalog((catalog) => backupGroup({ repo, catalog, policy: loaded, group: loaded.groups[0]! }));
      expect(backup.status).toBe('complete');

      // Forget the previous run (simulated): its versions leave the catalog, its manifest the repository.
      if (previous !== null) {
        const db = new Database(catalogPath);
        try {
          simulateForgetInCatalog(db, previous.runId);
        } finally {
          db.close();
        }
        await s3.send(new DeleteObjectCommand({ Bucket: repoBucket, Key: `r/runs/${previous.runId}` }));
      }
      previous = { runId: backup.runId, contents };

      const at = 1 + (pick(2).readUInt16LE(0) % 10);
      const killed = await runCliKilledBeforeWrite(at, ['--policy', policy, '--catalog', catalogPath, 'prune', '--json'], env());
      if (killed.code === -1) {
        crashes++;
        points.push(at);
      } else {
        expect(killed.code, `round ${round}: prune not killed before write ${at}: ${killed.stderr}`).toBe(0);
      }

      await withCatalog(async (catalog) => {
        const what = `round ${round}, killed before write ${at}`;
        const checked = await verify({ repo, catalog, readData: 1, concurrency: 8 });
        expect(checked.damage, what).toEqual([]);
        const target = new MemStore();
        const run = catalog.findRun(backup.runId)!;
        const restored = await restore({ repo, catalog, scopes: [{ bucket: source }], cut: { runSeq: run.seq }, target, bucketDirs: false, concurrency: 8 });
        expect(restored.failed, what).toBe(0);
        const got = new Map<string, string>();
        for await (const item of target.list('')) if (item.kind === 'object') got.set(item.key, sha(await getBytes(target, item.key)));
        expect(got, what).toEqual(state);

        const rerun = await prune({ repo, catalog, maxUnused: 0.05 });
        expect(rerun.damaged, what).toEqual([]);
        expect(rerun.unusedAfterPercent, what).toBeLessThanOrEqual(5);
      });
    }
    // The kill points were spread over the write sequence (lock, packs, index, deletions).
    expect(new Set(points).size).toBeGreaterThanOrEqual(5);

    // At the end, through the CLI: verified, and a catalog rebuilt from the repository restores the kept run the same.
    const checked = await cli(['verify', '--read-data']);
    expect(checked.code, checked.stdout).toBe(0);
    const rebuild = await runCli(['--policy', policy, '--catalog', join(dir.path, 'rebuilt.db'), 'catalog', 'rebuild'], env());
    expect(rebuild.code, rebuild.stderr).toBe(0);
    const out = join(dir.path, 'from-rebuilt');
    const restored = await runCli(['--policy', policy, '--catalog', join(dir.path, 'rebuilt.db'), 'restore', '--run', previous!.runId, '--to-dir', out], env());
    expect(restored.code, restored.stderr).toBe(0);
    expect(hashTree(out)).toEqual(state);
  }, 600_000);
});
