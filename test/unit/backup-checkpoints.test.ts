// Progress checkpoints: a run writes index files every few packs, so a run killed before its
// manifest (SIGKILL) leaves packs that a re-run on a fresh host finds and does not upload again.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { RunManifest } from '../../src/engine/finalize.js';
import { syncCatalog } from '../../src/engine/sync.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { initRepo, openCatalog, prng, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';

describe('index-file checkpoints during a run', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let group: Group;
  const catalogs: Catalog[] = [];
  const host = (name: string): Catalog => {
    const c = openCatalog(join(dir.path, name), repo);
    catalogs.push(c);
    return c;
  };

  beforeEach(async () => {
    dir = tempDir('checkpoints');
    const rnd = prng(7);
    const files: Record<string, Buffer> = {};
    // 48 incompressible objects of 24 KiB in packs of 64 KiB: 3 objects per pack (a pack closes at the target), 16 packs.
    for (let i = 0; i < 48; i++) files[`p/${String(i).padStart(3, '0')}.bin`] = rnd(24 * 1024);
    writeTree(join(dir.path, 'lake'), files);
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: null, packSize: 64 * 1024 });
    group = { name: 'g', sources: [{ kind: 'path', path: join(dir.path, 'lake'), prefixes: [''], exclude: [] }] };
  });
  afterEach(() => {
    for (const c of catalogs.splice(0)) c.close();
    dir.cleanup();
  });

  /** A run on host `a`, then its manifest and last index file removed (killed before them), then a re-run on fresh host `b`. */
  async function killedThenRerun(checkpointPacks: number) {
    const policy = testPolicy(repo.location, [group]);
    const first = await backupGroup({ repo, catalog: host('a'), policy, group, checkpointPacks });
    const manifest = await repo.readDocument<RunManifest>('runs', first.runId);
    // Every index file of the run is named by its manifest (checkpoints too): other hosts read those.
    expect([...manifest.indexes].sort()).toEqual((await repo.listNames('index')).sort());
    await repo.deleteObject(`runs/${first.runId}`);
    await repo.deleteObject(`index/${manifest.indexes.at(-1)!}`);
    const fresh = host('b');
    await syncCatalog({ repo, catalog: fresh });
    const again = await backupGroup({ repo, catalog: fresh, policy, group, checkpointPacks });
    return { first, manifest, again };
  }

  it('a fresh host`s re-run uploads only what was packed after the last checkpoint', async () => {
    const { first, manifest, again } = await killedThenRerun(4);
    expect(first.counters.packsWritten).toBeGreaterThanOrEqual(15);
    expect(manifest.indexes.length).toBeGreaterThanOrEqual(4);
    expect(again.counters.objectsNew).toBe(48);
    // At most the packs after the last checkpoint (< 4), plus the run's own record pack.
    expect(again.counters.packsWritten).toBeLessThanOrEqual(5);
    expect(again.counters.blobsDeduplicated).toBeGreaterThanOrEqual(48 - 3 * 4);
  });

  it('without checkpoints the same re-run uploads everything again', async () => {
    const { first, manifest, again } = await killedThenRerun(1000);
    expect(manifest.indexes).toHaveLength(1);
    expect(again.counters.packsWritten).toBeGreaterThanOrEqual(first.counters.packsWritten - 1);
  });
});
