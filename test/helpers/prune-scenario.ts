// A repository with data to prune, made honestly: three backups of a MemStore bucket, the
// first run forgotten (simulated, see simulate-forget.ts) after the second re-used half of its
// content under new keys — so its packs become partly used — and packs left by a crashed run
// (one listed by an index file, one not). Kept runs and their states are recorded for checks.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { IndexDocument } from '../../src/engine/finalize.js';
import { rebuildCatalog } from '../../src/engine/rebuild.js';
import { restore } from '../../src/engine/restore.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { BlobType } from '../../src/repository/pack.js';
import { Packer } from '../../src/repository/packer.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { getBytes, type ObjectStore } from '../../src/storage/types.js';
import { initRepo, prng, testPolicy } from './fixtures.js';
import { simulateForgetInCatalog } from './simulate-forget.js';
import { selectState, statePage } from '../../src/catalog/restore-selection.js';

export const SMALL_CHUNKER = { minSize: 16 * 1024, avgSize: 32 * 1024, maxSize: 64 * 1024 };

export interface Scenario {
  store: FsStore;
  repo: Repository;
  catalog: Catalog;
  catalogPath: string;
  lake: MemStore;
  policy: Policy;
  group: Group;
  /** Runs that must stay restorable, with the bucket state each recorded (key → sha256). */
  kept: { id: string; state: Map<string, string> }[];
  forgotten: string;
  /** Packs a crashed run left behind (not in the catalog). */
  orphanPacks: string[];
  /** Content of a key the forgotten run alone held (its blob is unused, so pruned). */
  prunedContent: Buffer;
  backup(): ReturnType<typeof backupGroup>;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export async function stateOf(store: ObjectStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const item of store.list('')) if (item.kind === 'object') out.set(item.key, sha(await getBytes(store, item.key)));
  return out;
}

/** `store` defaults to a filesystem repository in `<dir>/repo`. */
export async function buildScenario(dir: string, opts: { store?: FsStore; password?: string | null } = {}): Promise<Scenario> {
  const store = opts.store ?? new FsStore({ root: join(dir, 'repo'), fsync: false });
  const rnd = prng(7);
  const lake = new MemStore({ name: 'lake' });
  const repo = await initRepo(store, { password: opts.password === undefined ? 'test-password' : opts.password, packSize: 64 * 1024, chunker: SMALL_CHUNKER });
  const catalogPath = join(dir, 'catalog.db');
  const catalog = Catalog.open(catalogPath, repo.id);
  const group: Group = { name: 'lake', sources: [] };
  const policy = testPolicy(store.location, [group]);
  const backup = () => backupGroup({ repo, catalog, policy, group, sources: [{ bucket: 'lake', objectStore: lake, prefixes: [''], isExcluded: compileExcludes([]) }] });

  // Run 1: 30 small objects and one of several chunks.
  const old: Buffer[] = [];
  for (let i = 0; i < 30; i++) {
    old.push(rnd(3000 + i * 200));
    await lake.put(`old/${i}`, old[i]!);
  }
  const big = rnd(200 * 1024);
  await lake.put('old/big.bin', big);
  const first = await backup();

  // Run 2: old/ deleted; half of its content comes back under new keys (deduplicated), plus new data.
  for (let i = 0; i < 30; i++) await lake.delete(`old/${i}`);
  await lake.delete('old/big.bin');
  for (let i = 0; i < 30; i += 2) await lake.put(`new/${i}`, old[i]!);
  await lake.put('new/big.bin', big);
  for (let i = 0; i < 10; i++) await lake.put(`fresh/${i}`, rnd(5000 + i * 300));
  const second = await backup();
  const kept = [{ id: second.runId, state: await stateOf(lake) }];

  // Run 3: a few changes.
  await lake.put('fresh/0', rnd(7000));
  for (let i = 0; i < 5; i++) await lake.put(`more/${i}`, rnd(4000));
  const third = await backup();
  kept.push({ id: third.runId, state: await stateOf(lake) });

  // Forget run 1: its versions no later state needs (run 2 deleted them all).
  simulateForgetInCatalog(sqlite(catalog), first.runId);
  await store.delete(`runs/${first.runId}`);

  // A crashed run's packs: one made it into an index file, the other did not.
  const orphanPacks: string[] = [];
  const listed: IndexDocument['packs'] = [];
  for (let k = 0; k < 2; k++) {
    const packer = new Packer(repo, {
      onPackWritten: (p) => {
        orphanPacks.push(p.id);
        if (k === 0) listed.push({ id: p.id, size: p.size, blobs: p.entries.map((e) => [e.id.toString('hex'), e.type, e.offset, e.length, e.rawLength, e.compressed ? 1 : 0]) });
      },
    });
    for (let j = 0; j < 3; j++) await packer.add(repo.encodeBlob(rnd(6000), BlobType.data));
    await packer.flush();
  }
  await repo.writeDocument('index', null, { version: 1, packs: listed } satisfies IndexDocument);

  return { store, repo, catalog, catalogPath, lake, policy, group, kept, forgotten: first.runId, orphanPacks, prunedContent: old[1]!, backup };
}

/** Restores a run's state into a fresh in-memory bucket and returns it as key → sha256. */
export async function restoredState(repo: Repository, catalog: Catalog, runId: string): Promise<Map<string, string>> {
  const run = catalog.findRun(runId);
  if (run === undefined) throw new Error(`no run ${runId} in the catalog`);
  const target = new MemStore();
  const summary = await restore({ repo, catalog, scopes: [{ bucket: 'lake' }], cut: { runSeq: run.seq }, target, bucketDirs: false, concurrency: 4 });
  if (summary.failed > 0) throw new Error(`restore of ${runId} failed: ${JSON.stringify(summary.failures)}`);
  return stateOf(target);
}

/** What a user can ask the catalog about the kept runs (no row ids), for rebuild comparisons. */
export function catalogAnswers(catalog: Catalog): unknown {
  return catalog.listRuns().map(({ seq, ...run }) => {
    selectState(catalog, [{ bucket: 'lake' }], { runSeq: seq });
    const state: unknown[] = [];
    for (let after = 0; ; ) {
      const page = statePage(catalog, after, 500);
      if (page.items.length === 0) break;
      after = page.rowid;
      for (const { versionRow: _v, blobs, ...item } of page.items) state.push({ ...item, blobs: blobs.map((b) => b.hash.toString('hex')) });
    }
    // Restore order follows pack row ids, which a rebuild numbers differently: compare as sets.
    const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    return { run, versions: catalog.versionsOfRun(seq, 0, 1_000_000).map(({ row: _row, ...v }) => v).sort(byKey), state: (state as { key: string }[]).sort(byKey) };
  });
}

/** Rebuilds a catalog from the repository alone into `path` and opens it. */
export async function rebuilt(repo: Repository, path: string): Promise<Catalog> {
  const report = await rebuildCatalog({ repo, catalogPath: path });
  if (report.damage.length > 0 || report.missingCount > 0) throw new Error(`rebuild found damage: ${JSON.stringify(report.damage)} ${JSON.stringify(report.missing)}`);
  return Catalog.open(path, repo.id);
}
