// A shard killed (SIGKILL: no manifest, its last packs in no index file) and re-run on a fresh
// host stores that content again; a prune on a third host deletes the killed attempt's unlisted
// packs. The killed host's catalog located the content in those packs: when it comes back it
// must move to the re-run's copies, not report them lost and then write an index file and an
// interrupted manifest that name deleted packs (which every fresh host then reports as damage
// and cannot restore from).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { runSetCut, runSetsOf } from '../../src/catalog/run-sets.js';
import { backupGroup } from '../../src/engine/backup.js';
import { prune } from '../../src/engine/prune.js';
import { restore } from '../../src/engine/restore.js';
import type { RunShard } from '../../src/engine/shards.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { verify } from '../../src/engine/verify.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import type { PutOptions, PutResult } from '../../src/storage/types.js';
import { initRepo, tempDir, testPolicy } from '../helpers/fixtures.js';

/** The repository as a process killed after its first checkpoint sees it: later index files and the manifest never land. */
class KilledAfterFirstCheckpoint extends StoreDecorator {
  private indexes = 0;
  override put(key: string, body: Parameters<StoreDecorator['put']>[1], opts?: PutOptions): Promise<PutResult> {
    if (key.startsWith('runs/') || (key.startsWith('index/') && ++this.indexes > 1)) return Promise.reject(new Error('killed'));
    return this.inner.put(key, body, opts);
  }
}

describe('a killed shard re-run elsewhere, then a prune', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let store: FsStore;
  let repo: Repository;
  let policy: Policy;
  let lake: MemStore;
  const group: Group = { name: 'g', sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }], retention: { keepLast: 10 } };
  const catalogs: Catalog[] = [];
  const host = (name: string): Catalog => {
    const c = Catalog.open(join(dir.path, `${name}.db`), repo.id);
    catalogs.push(c);
    return c;
  };
  const source = (): OpenedSource => ({ bucket: 'lake', objectStore: lake, prefixes: [''], isExcluded: () => false });
  const shard = (set: string, name: string): RunShard => ({ set, name, index: 0, of: 1, range: {} });
  const bodies = new Map<string, Buffer>();

  beforeEach(async () => {
    dir = tempDir('killed-shard-prune');
    store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    // Small packs: the killed attempt writes several checkpoints' worth, encrypted (a second copy is another pack).
    repo = await initRepo(store, { packSize: 4096 });
    policy = testPolicy(store.location, [group], { concurrency: { list: 2, transfer: 2 } });
    lake = new MemStore({ name: 'lake' });
    for (let i = 0; i < 60; i++) {
      const key = `${i < 30 ? 'a' : 'b'}/${String(i).padStart(3, '0')}.bin`;
      bodies.set(key, randomBytes(1500));
      await lake.put(key, bodies.get(key)!);
    }
  });
  afterEach(() => {
    for (const c of catalogs.splice(0)) c.close();
    dir.cleanup();
  });

  async function restoresAll(catalog: Catalog, prefix: string): Promise<void> {
    for (const set of runSetsOf(catalog)) {
      const target = new MemStore({ name: 'restored' });
      const r = await restore({ repo, catalog, scopes: [{ bucket: 'lake', prefix }], cut: runSetCut(catalog, set), target, bucketDirs: false, concurrency: 2 });
      expect(r.failures, `restore of run set ${set.id}`).toEqual([]);
      for (const [key, body] of bodies) {
        if (!key.startsWith(prefix)) continue;
        const chunks: Buffer[] = [];
        for await (const chunk of (await target.get(key)).body) chunks.push(chunk as Buffer);
        expect(Buffer.concat(chunks).equals(body), key).toBe(true);
      }
    }
  }

  /**
   * A shard killed after its first checkpoint on host `killed`, then (after `between`) re-run on
   * a fresh host, then a prune on a third host; returns the killed host's catalog.
   */
  async function killRerunPrune(between: () => Promise<void> = async () => {}, how: 'killed' | 'refused' = 'killed'): Promise<Catalog> {
    const killedHost = host('killed');
    const killedRepo = await Repository.open(new KilledAfterFirstCheckpoint(store), { password: async () => 'test-password' });
    await expect(backupGroup({ repo: killedRepo, catalog: killedHost, policy, group, sources: [source()], shard: shard('20261206T000000Z-5e7a11', 'n1') })).rejects.toThrow('killed');
    if (how === 'killed') {
      // Its process is gone: the next backup on this host records the attempt as interrupted. (The
      // refused PUT ended the run failed, without a manifest; a SIGKILL leaves it running: undo that.)
      sqlite(killedHost).prepare("UPDATE runs SET status = 'running', finished = NULL WHERE seq IN (SELECT run FROM unrecorded_runs)").run();
      sqlite(killedHost).prepare('DELETE FROM unrecorded_runs').run();
      sqlite(killedHost).prepare("UPDATE runs SET pid = 2147483646 WHERE status = 'running'").run();
    }
    await between();

    // The engine re-runs the shard on a fresh host: it reads every object again and stores what no index file listed.
    const rerunHost = host('rerun');
    await syncCatalog({ repo, catalog: rerunHost });
    const rerun = await backupGroup({ repo, catalog: rerunHost, policy, group, sources: [source()], shard: shard('20261206T000000Z-5e7a11', 'n1') });
    expect(rerun.status).toBe('complete');
    expect([rerun.counters.blobsNew > 0, rerun.counters.blobsDeduplicated > 0]).toEqual([true, true]);

    // A third host prunes: the killed attempt's unlisted packs go.
    const pruner = host('pruner');
    await syncCatalog({ repo, catalog: pruner });
    const pruned = await prune({ repo, catalog: pruner, maxUnused: 0 });
    expect(pruned.packs.removed).toBeGreaterThan(0);
    expect([pruned.missing, pruned.damaged]).toEqual([[], []]);
    return killedHost;
  }

  /** The killed host's next backup, then fresh hosts (whole, and scoped to b/) that sync, verify and restore every run set. */
  async function nextBackupThenFreshHosts(killedHost: Catalog, ended: 'interrupted' | 'failed' = 'interrupted'): Promise<void> {
    const next = await backupGroup({ repo, catalog: killedHost, policy, group, sources: [source()], shard: shard('20261207T000000Z-5e7a12', 'n2') });
    expect(next.status).toBe('complete');
    const fresh = host('fresh');
    expect((await syncCatalog({ repo, catalog: fresh })).damage).toEqual([]);
    expect(runSetsOf(fresh).map((s) => [s.status, s.attempts.map((a) => a.run.status).sort()])).toEqual([
      ['complete', ['complete', ended]],
      ['complete', ['complete']],
    ]);
    expect((await verify({ repo, catalog: fresh, readData: 1, concurrency: 2 })).damage).toEqual([]);
    await restoresAll(fresh, '');
    const scoped = host('scoped');
    expect((await syncCatalog({ repo, catalog: scoped, widen: [{ bucket: 'lake', prefix: 'b/' }] })).damage).toEqual([]);
    await restoresAll(scoped, 'b/');
  }

  it("the killed host's catalog moves its content to the re-run's copies; fresh hosts, whole and scoped, restore and verify clean", async () => {
    const killedHost = await killRerunPrune();
    // The killed host comes back: nothing is lost, and its next backup records the dead attempt.
    expect((await syncCatalog({ repo, catalog: killedHost })).damage).toEqual([]);
    await nextBackupThenFreshHosts(killedHost);
  });

  it('content only the killed attempt had stored is dropped from its catalog, said, and never recorded as if stored', async () => {
    // The last object changes before the re-run: its old content was only in the killed attempt's unlisted packs.
    const killedHost = await killRerunPrune(async () => {
      bodies.set('b/059.bin', randomBytes(1500));
      await lake.put('b/059.bin', bodies.get('b/059.bin')!);
    });
    const warnings: string[] = [];
    const sync = await syncCatalog({ repo, catalog: killedHost, events: (e) => void (e.type === 'warning' && warnings.push(e.message)) });
    expect(sync.damage).toEqual([]);
    expect(warnings).toEqual([expect.stringMatching(/^prune \S+ deleted packs of this host's unfinished run that no index file listed: 1 versions it had copied are dropped from this catalog/)]);
    await nextBackupThenFreshHosts(killedHost);
  });

  it('a run whose manifest the repository refused: content only it had stored is dropped as a killed run\'s is; it is recorded failed', async () => {
    const killedHost = await killRerunPrune(async () => {
      bodies.set('b/059.bin', randomBytes(1500));
      await lake.put('b/059.bin', bodies.get('b/059.bin')!);
    }, 'refused');
    expect(killedHost.listRuns().map((r) => r.status)).toEqual(['failed']);
    const warnings: string[] = [];
    const sync = await syncCatalog({ repo, catalog: killedHost, events: (e) => void (e.type === 'warning' && warnings.push(e.message)) });
    expect(sync.damage).toEqual([]);
    expect(warnings).toEqual([expect.stringMatching(/^prune \S+ deleted packs of this host's unfinished run that no index file listed: 1 versions it had copied are dropped from this catalog/)]);
    await nextBackupThenFreshHosts(killedHost, 'failed');
  });
});
