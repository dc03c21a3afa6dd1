// Adding a prefix to a scoped catalog imports only that prefix's keys, in place (docs/catalog.md
// "Widening a scoped catalog"): the result must be the catalog a fresh sync of the wider scope
// makes, after runs, a forget and a prune; it reads only the record blobs overlapping the new
// prefix; and a widening interrupted leaves the old scope whole.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { catalogScope, type CatalogPrefix } from '../../src/catalog/scope.js';
import { syncMarker } from '../../src/catalog/sync.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { RunManifest } from '../../src/engine/finalize.js';
import { forget } from '../../src/engine/forget.js';
import { prune } from '../../src/engine/prune.js';
import { restore } from '../../src/engine/restore.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group, Policy } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { getBytes } from '../../src/storage/types.js';
import { objectKey } from '../../src/repository/layout.js';
import { CountingFs, DenyingLake, catalogDump, recordBlobsOverlapping } from '../helpers/catalog-equivalence.js';
import { initRepo, keysUnder, tempDir, testPolicy } from '../helpers/fixtures.js';

const SMALL_CHUNKER = { minSize: 16 * 1024, avgSize: 32 * 1024, maxSize: 64 * 1024 };

/** catalogDump, and the acknowledgements a catalog applied. */
function dump(cat: Catalog) {
  return { ...catalogDump(cat, { indexFile: 'name' }), acks: sqlite(cat).prepare('SELECT * FROM acks ORDER BY 1').all() };
}


const source = (store: MemStore): OpenedSource => ({ bucket: 'lake', objectStore: store, prefixes: [''], isExcluded: compileExcludes([]) });
const dt = (day: number): CatalogPrefix => ({ bucket: 'lake', prefix: `dt=0${day}/` });

describe('widening a scoped catalog in place', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let store: CountingFs;
  let repo: Repository;
  let lake: DenyingLake;
  let policy: Policy;
  let group: Group;
  let a: Catalog;
  let b: Catalog;
  const backup = () => backupGroup({ repo, catalog: a, policy, group, sources: [source(lake)] });
  const addDay = async (day: number, version = 1): Promise<void> => {
    for (let i = 0; i < 20; i++) await lake.put(`dt=0${day}/part-${String(i).padStart(3, '0')}.json`, Buffer.from(JSON.stringify({ day, i, version, pad: 'x'.repeat(i * 7) })));
    const big = Buffer.alloc(150 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + day * 7 + version) & 0xff;
    await lake.put(`dt=0${day}/big.bin`, big);
  };

  beforeEach(async () => {
    dir = tempDir('widen');
    store = new CountingFs({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store, { packSize: 64 * 1024, chunker: SMALL_CHUNKER });
    lake = new DenyingLake({ name: 'lake' });
    group = { name: 'lake', sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }], retention: { keepLast: 1 } };
    policy = testPolicy(store.location, [group]);
    a = Catalog.open(join(dir.path, 'a.db'), repo.id);
    b = Catalog.open(join(dir.path, 'b.db'), repo.id);
    // A day per run; the third run also rewrites a file of day 1 and one of day 2.
    await addDay(1);
    await backup();
    await addDay(2);
    lake.denied.add('dt=02/part-007.json');
    await backup();
    lake.denied.clear();
    await addDay(3);
    await lake.put('dt=01/part-000.json', Buffer.from('{"changed":1}'));
    await lake.put('dt=02/part-001.json', Buffer.from('{"changed":2}'));
    await backup();
  });
  afterEach(() => {
    a.close();
    b.close();
    dir.cleanup();
  });

  it('after runs, a forget and a prune, adding a prefix gives the catalog a fresh sync of both makes, reading only the new prefix\'s record blobs', async () => {
    expect(await syncCatalog({ repo, catalog: b, widen: [dt(1)] })).toMatchObject({ scope: [dt(1)], damage: [] });
    // More runs: day 2 and day 1 change, a day is added; keep_last 1 forgets every run before the
    // last (their versions still current move to it; the rewritten ones are dropped); B syncs.
    await lake.put('dt=02/part-002.json', Buffer.from('{"changed":22}'));
    await lake.put('dt=01/part-003.json', Buffer.from('{"changed":13}'));
    await lake.delete('dt=02/part-004.json');
    await addDay(4);
    await backup();
    expect((await forget(repo, a, policy, { dryRun: false })).forgotten.length).toBeGreaterThan(0);
    expect((await syncCatalog({ repo, catalog: b })).damage).toEqual([]);
    // A prune repacks what the forget left unused, then one more run; B syncs again.
    const pruned = await prune({ repo, catalog: a, maxUnused: 0 });
    expect(pruned.packs.removed + pruned.packs.repacked).toBeGreaterThan(0);
    await lake.put('dt=02/part-005.json', Buffer.from('{"changed":25}'));
    await lake.put('dt=02/part-008.json', Buffer.from('{"changed":28}'));
    lake.denied.add('dt=02/part-008.json');
    await backup();
    lake.denied.clear();
    expect((await syncCatalog({ repo, catalog: b })).damage).toEqual([]);
    const runsBefore = dump(b).runs;
    const heldBefore = new Set(dump(b).blobs.map((x) => (x as { hash: string }).hash));
    /**
     * Which index file lists a blob the catalog held before the widening is not compared, only
     * whether one does: a scoped catalog that located a record blob from its manifest keeps
     * "(located by run records)" when a prune's new index file lists it later, where a fresh sync
     * reads that index file first (so before widening too). Blobs the widening adds are compared whole.
     */
    const canonical = (d: ReturnType<typeof dump>) => ({
      ...d,
      blobs: d.blobs.map((x) => {
        const blob = x as { hash: string; indexFile: string | null };
        return heldBefore.has(blob.hash) ? { ...blob, indexFile: blob.indexFile !== null } : blob;
      }),
    });

    store.resetReads();
    const widened = await syncCatalog({ repo, catalog: b, widen: [dt(2)] });
    expect(widened).toMatchObject({ scope: [dt(1), dt(2)], scopeChanged: true, widenedInPlace: true, damage: [], missingCount: 0 });
    // Only the record blobs overlapping day 2 (not those of day 1 alone), no index file; nothing emptied.
    const day2 = await recordBlobsOverlapping(repo, [dt(2)]);
    expect(store.reads).toMatchObject({ index: 0, packs: day2 });
    expect(day2).toBeLessThan(await recordBlobsOverlapping(repo, [dt(1), dt(2)]));
    expect(dump(b).runs).toEqual(runsBefore);

    // C: a fresh sync of both prefixes. Every table the same, and the versions A has there.
    const c = Catalog.open(join(dir.path, 'c.db'), repo.id);
    try {
      expect((await syncCatalog({ repo, catalog: c, widen: [dt(1), dt(2)] })).damage).toEqual([]);
      const wide = dump(b);
      expect(canonical(wide)).toEqual(canonical(dump(c)));
      expect(wide.versions.length).toBeGreaterThan(40);
      // The forget moved the forgotten runs' versions on and dropped day 2's rewritten ones.
      expect(wide.forgotten.length).toBe(3);
      // The failure of the last run is there; that of a forgotten run went with it.
      expect(wide.failures).toEqual([expect.objectContaining({ key: 'dt=02/part-008.json', code: 'AccessDenied' })]);
      expect(wide.versions.filter((v) => (v as { key: string }).key === 'dt=02/part-002.json')).toHaveLength(1);
      const inScope = (rows: { key: string }[]) => rows.filter((r) => r.key.startsWith('dt=01/') || r.key.startsWith('dt=02/'));
      expect(wide.versions).toEqual(inScope(dump(a).versions as { key: string }[]));
      // A later run reaches both the same way.
      await lake.put('dt=02/part-006.json', Buffer.from('{"changed":26}'));
      await backup();
      for (const cat of [b, c]) expect((await syncCatalog({ repo, catalog: cat })).damage).toEqual([]);
      expect(canonical(dump(b))).toEqual(canonical(dump(c)));
      // Both prefixes restore byte for byte from the widened catalog.
      const target = new MemStore({ name: 'restored' });
      const restored = await restore({ repo, catalog: b, scopes: [dt(1), dt(2)], cut: { runSeq: b.latestRun({ statuses: ['complete'] })!.seq }, target, bucketDirs: false, concurrency: 2 });
      expect(restored.failures).toEqual([]);
      const keys = [...(await keysUnder(lake, 'dt=01/')), ...(await keysUnder(lake, 'dt=02/'))];
      expect(await keysUnder(target, '')).toEqual(keys);
      for (const key of keys) expect((await getBytes(target, key)).equals(await getBytes(lake, key)), key).toBe(true);
    } finally {
      c.close();
    }
  });

  it('a catalog that has not synced the latest runs, forget and prune yet: widened, then synced, it agrees with a fresh sync', async () => {
    await syncCatalog({ repo, catalog: b, widen: [dt(1)] });
    await lake.put('dt=02/part-002.json', Buffer.from('{"changed":22}'));
    await lake.put('dt=01/part-003.json', Buffer.from('{"changed":13}'));
    await addDay(4);
    await backup();
    expect((await forget(repo, a, policy, { dryRun: false })).forgotten.length).toBeGreaterThan(0);
    expect((await prune({ repo, catalog: a, maxUnused: 0 })).damaged).toEqual([]);
    await lake.put('dt=02/part-005.json', Buffer.from('{"changed":25}'));
    await backup();
    // The widening replays what B knows (three runs, no document), then B's sync applies the rest to both prefixes.
    const widened = await syncCatalog({ repo, catalog: b, widen: [dt(2)] });
    expect(widened).toMatchObject({ scope: [dt(1), dt(2)], widenedInPlace: true, runs: 2, forgets: 1, prunes: 1, damage: [], missingCount: 0 });
    const c = Catalog.open(join(dir.path, 'c.db'), repo.id);
    try {
      expect((await syncCatalog({ repo, catalog: c, widen: [dt(1), dt(2)] })).damage).toEqual([]);
      // Which index file lists a blob B held before the prune is not compared, only whether one does (see above).
      const indexed = (d: ReturnType<typeof dump>) => ({ ...d, blobs: d.blobs.map((x) => ({ ...(x as object), indexFile: (x as { indexFile: string | null }).indexFile !== null })) });
      expect(indexed(dump(b))).toEqual(indexed(dump(c)));
      expect(dump(b).versions).toEqual(dump(c).versions);
    } finally {
      c.close();
    }
  });

  it('a widening interrupted half-way leaves the old scope whole; the next one completes it', async () => {
    await syncCatalog({ repo, catalog: b, widen: [dt(1)] });
    const before = dump(b);
    const marker = syncMarker(b);
    // Stopped after the first record blob it reads (Ctrl-C, or a crash: nothing is committed before the end).
    const stop = new AbortController();
    store.onPackRead = () => stop.abort();
    await expect(syncCatalog({ repo, catalog: b, widen: [dt(2)], signal: stop.signal })).rejects.toThrow(/interrupted/);
    store.onPackRead = null;
    expect(catalogScope(b)).toEqual([dt(1)]);
    expect(dump(b)).toEqual(before);
    expect(syncMarker(b)).toBe(marker);
    // A command's own sync goes on with the old scope; the widening again completes it.
    expect(await syncCatalog({ repo, catalog: b })).toMatchObject({ scope: [dt(1)], runs: 0, damage: [] });
    expect(await syncCatalog({ repo, catalog: b, widen: [dt(2)] })).toMatchObject({ scope: [dt(1), dt(2)], scopeChanged: true, damage: [] });
    const c = Catalog.open(join(dir.path, 'c.db'), repo.id);
    try {
      await syncCatalog({ repo, catalog: c, widen: [dt(2), dt(1)] });
      expect(dump(b)).toEqual(dump(c));
    } finally {
      c.close();
    }
  });
  it('a run already listed as incomplete that misses more in the widened prefix stays one entry, with both counts added', async () => {
    // Every pack holding a run's record blobs gone: each run is incomplete for each prefix it is imported for.
    for (const name of await repo.listNames('runs')) {
      const m = await repo.readDocument<RunManifest>('runs', name);
      for (const [pack] of m.recordLocations!) await store.delete(objectKey('packs', pack)).catch(() => undefined);
    }
    type Entry = { run: string; versions: number; recordBlobs: number };
    const entries = (cat: Catalog) => JSON.parse(dump(cat).incomplete as string) as Entry[];
    const first = await syncCatalog({ repo, catalog: b, widen: [dt(1)] });
    const before = entries(b);
    expect(before.length).toBeGreaterThan(0);
    const widened = await syncCatalog({ repo, catalog: b, widen: [dt(2)] });
    expect(widened).toMatchObject({ scope: [dt(1), dt(2)], widenedInPlace: true });
    const after = entries(b);
    expect(new Set(after.map((r) => r.run)).size).toBe(after.length);
    // The widening's damage is added to what the run already had.
    const damage = first.damage.length + widened.damage.length;
    expect(after.reduce((n, r) => n + r.recordBlobs, 0)).toBe(damage);
    for (const r of before) expect(after.find((x) => x.run === r.run)!.recordBlobs).toBeGreaterThanOrEqual(r.recordBlobs);
    // Every later sync warns once per run.
    const warned: string[] = [];
    await syncCatalog({ repo, catalog: b, events: (e) => { if (e.type === 'warning') warned.push(e.message); } });
    expect(warned.filter((w) => w.includes('is incomplete in this catalog')).length).toBe(after.length);
  });
});
