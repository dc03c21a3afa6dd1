// A shard lists and records only its part of the key space: changes (new, changed, deleted) in
// both halves of a bucket are each recorded by one shard only, and the shards together record
// what one unsharded run records. Each shard has its own catalog (its own host), synced from the
// repository first, as a shard started by an engine does.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { shardRange, type BucketKey, type RunShard, inShardRange } from '../../src/engine/shards.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { syncCatalog } from '../../src/engine/sync.js';
import type { RunManifest } from '../../src/engine/finalize.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import type { ListOptions } from '../../src/storage/types.js';
import { initRepo, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';

const group: Group = { name: 'g', sources: [] };
const policy = (repo: Repository) => testPolicy(repo.location, [group], { concurrency: { list: 4, transfer: 4 } });
const key = (p: number, i: number) => `dt=${String(p).padStart(2, '0')}/part-${String(i).padStart(3, '0')}.json`;

/** What a run recorded, as comparable lines (validFrom differs between runs and is left out). */
function recorded(catalog: Catalog, runId: string): string[] {
  const run = catalog.findRun(runId)!;
  return catalog
    .versionsOfRun(run.seq, 0, 100_000)
    .map((v) => `${v.bucket}/${v.key} ${v.deleteMarker ? 'deleted' : `${v.size} ${v.etag}`}${v.versionId === null ? '' : ` ${v.versionId}`}`)
    .sort();
}

for (const versioned of [false, true]) {
  describe(`shards of one ${versioned ? 'versioned' : 'unversioned'} bucket`, () => {
    let dir: ReturnType<typeof tempDir>;
    let bucket: MemStore;
    const catalogs: Catalog[] = [];

    beforeEach(() => {
      dir = tempDir('shard-scan');
      bucket = new MemStore({ versioning: versioned, name: 'lake' });
    });
    afterEach(() => {
      for (const c of catalogs.splice(0)) c.close();
      dir.cleanup();
    });

    const source = (): OpenedSource => ({ bucket: 'lake', objectStore: bucket, prefixes: [''], isExcluded: () => false, versioned });
    const repository = async (name: string) => {
      const repo = await initRepo(new FsStore({ root: join(dir.path, name), fsync: false }), { password: null });
      return repo;
    };
    const host = (repo: Repository, name: string): Catalog => {
      const c = openCatalog(join(dir.path, name), repo);
      catalogs.push(c);
      return c;
    };

    it('each shard records only its own half; together they record what one run does', async () => {
      for (let p = 0; p < 6; p++) for (let i = 0; i < 30; i++) await bucket.put(key(p, i), Buffer.from(`{"p":${p},"i":${i}}`));
      // The boundary lies inside partition dt=02 (not at a sub-prefix edge): the shallow listing of
      // shard 1 starts inside a sub-prefix, which a delimiter listing may leave out.
      const bounds: BucketKey[] = [['lake', key(2, 14)]];
      const shard = (index: number): RunShard => ({ set: '20261206T000000Z-5e7a11', name: 'nightly', index, of: 2, range: shardRange(bounds, index) });

      const unsharded = await repository('repo-u');
      const u = host(unsharded, 'u');
      const sharded = await repository('repo-s');
      const hosts = [host(sharded, 'h0'), host(sharded, 'h1')];
      // Incremental runs list in key ranges of 20 catalogued keys, cut inside each shard's range.
      let listRanges: { keysPerRange: number; minKeys: number } | undefined;
      const runShard = async (index: number) => {
        const catalog = hosts[index]!;
        await syncCatalog({ repo: sharded, catalog });
        return backupGroup({ repo: sharded, catalog, policy: policy(sharded), group, sources: [source()], shard: shard(index), ...(listRanges === undefined ? {} : { listRanges }) });
      };

      // The seed: delimiter listings (the catalogs know nothing yet).
      const seedU = await backupGroup({ repo: unsharded, catalog: u, policy: policy(unsharded), group, sources: [source()] });
      const seeds = [await runShard(0), await runShard(1)];
      expect(seeds.map((s) => s.counters.objectsNew)).toEqual([75, 105]);
      expect(seeds.map((s) => s.shard)).toEqual([0, 1].map((index) => ({ set: '20261206T000000Z-5e7a11', name: 'nightly', index, of: 2 })));
      expect([...recorded(hosts[0]!, seeds[0]!.runId), ...recorded(hosts[1]!, seeds[1]!.runId)].sort()).toEqual(recorded(u, seedU.runId));

      // Changes in both halves, at the boundary too.
      for (const k of [key(0, 3), key(2, 14), key(2, 15), key(5, 29)]) await bucket.delete(k);
      for (const k of [key(1, 0), key(4, 4)]) await bucket.put(k, Buffer.from('changed'));
      for (const k of ['dt=00/a-new', `${key(2, 14)}~`, 'dt=99/new', 'top-level']) await bucket.put(k, Buffer.from(k));

      listRanges = { keysPerRange: 20, minKeys: 10 };
      const second = await backupGroup({ repo: unsharded, catalog: u, policy: policy(unsharded), group, sources: [source()], listRanges });
      const halves = [await runShard(0), await runShard(1)];
      // A versioned bucket records an overwrite as a new version, not a changed key.
      expect(halves.map((h) => [h.counters.objectsNew, h.counters.objectsChanged, h.counters.objectsDeleted])).toEqual(
        versioned
          ? [
              [2, 0, 2],
              [4, 0, 2],
            ]
          : [
              [1, 1, 2],
              [3, 1, 2],
            ],
      );
      const union = [...recorded(hosts[0]!, halves[0]!.runId), ...recorded(hosts[1]!, halves[1]!.runId)].sort();
      expect(union).toEqual(recorded(u, second.runId));
      // Each shard's records lie in its range.
      for (const [index, h] of halves.entries()) {
        for (const line of recorded(hosts[index]!, h.runId)) {
          const k = line.slice('lake/'.length, line.indexOf(' '));
          expect(inShardRange(shard(index).range, ['lake', k]), `${line} (shard ${index})`).toBe(true);
        }
      }
      // Every shard's manifest carries its shard field.
      const manifest = await sharded.readDocument<RunManifest>('runs', halves[1]!.runId);
      expect(manifest.shard).toEqual(shard(1));
    });

    it('a shard whose range holds none of a prefix does not list it', async () => {
      for (let i = 0; i < 10; i++) await bucket.put(`a/${i}`, Buffer.from('a'));
      for (let i = 0; i < 10; i++) await bucket.put(`b/${i}`, Buffer.from('b'));
      const repo = await repository('repo');
      const catalog = host(repo, 'h');
      const listed: string[] = [];
      const list = bucket.list.bind(bucket);
      bucket.list = (prefix: string, opts?: ListOptions) => (listed.push(prefix), list(prefix, opts));
      const src = { ...source(), prefixes: ['a/', 'b/'] };
      const shard: RunShard = { set: '20261206T000000Z-5e7a11', name: 'n', index: 1, of: 2, range: { after: ['lake', 'a0'] } }; // 'a0' sorts after every key under 'a/'
      const run = await backupGroup({ repo, catalog, policy: policy(repo), group, sources: [src], shard });
      expect(run.counters.objectsNew).toBe(10);
      expect(listed.every((p) => p.startsWith('b/'))).toBe(true);
    });
  });
}
