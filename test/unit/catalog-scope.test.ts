// Scoped catalogs (issue 20 section 3): record lines that locate their blobs, and a catalog that
// imports one prefix of a repository from only the record blobs that overlap it, no index file.
// Host A backs up a lake partition by partition into a filesystem repository; host B syncs scoped.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { catalogScope, scopeCovers, scopeOverlapsRange, type CatalogPrefix } from '../../src/catalog/scope.js';
import { importingRun, syncMarker } from '../../src/catalog/sync.js';
import type { RecordedBlob } from '../../src/catalog/types.js';
import { blobLocationOf } from '../../src/catalog/version-records.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { RunManifest } from '../../src/engine/finalize.js';
import { forget } from '../../src/engine/forget.js';
import { prune } from '../../src/engine/prune.js';
import { checkManifest } from '../../src/engine/rebuild-manifests.js';
import { restore } from '../../src/engine/restore.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { IntegrityError, StorageError } from '../../src/errors.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { packKey } from '../../src/repository/pack.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { getBytes, type GetOptions } from '../../src/storage/types.js';
import { runCli } from '../helpers/cli.js';
import { initRepo, keysUnder, tempDir, testPolicy } from '../helpers/fixtures.js';

const SMALL_CHUNKER = { minSize: 16 * 1024, avgSize: 32 * 1024, maxSize: 64 * 1024 };

/** The repository directory, counting reads by directory, with a switch that makes pack reads fail as a network would. */
class CountingFs extends FsStore {
  failPacks = false;
  reads = { packs: 0, index: 0, runs: 0 };
  override async get(key: string, opts?: GetOptions) {
    const dir = key.split('/')[0] as keyof CountingFs['reads'];
    if (dir in this.reads) this.reads[dir]++;
    if (this.failPacks && key.startsWith('packs/')) throw new StorageError('Network', `GET ${this.location}${key}: ECONNRESET`);
    return super.get(key, opts);
  }
  resetReads(): void {
    this.reads = { packs: 0, index: 0, runs: 0 };
  }
}

/** Every version a catalog holds, as the user sees it, optionally only inside some prefixes. */
function versions(cat: Catalog, scope: readonly CatalogPrefix[] | null = null) {
  const rows = sqlite(cat)
    .prepare(
      `SELECT b.name AS bucket, o.key AS key, v.version_id AS versionId, v.delete_marker AS dm, v.size AS size, v.valid_from AS validFrom, r.id AS run
       FROM versions v JOIN objects o ON o.id = v.object JOIN buckets b ON b.id = o.bucket JOIN runs r ON r.seq = v.run ORDER BY bucket, key, validFrom`,
    )
    .all() as { bucket: string; key: string }[];
  return scope === null ? rows : rows.filter((r) => scope.some((p) => p.bucket === r.bucket && r.key.startsWith(p.prefix)));
}


const source = (store: MemStore): OpenedSource => ({ bucket: 'lake', objectStore: store, prefixes: [''], isExcluded: compileExcludes([]) });
const dt = (day: number): CatalogPrefix => ({ bucket: 'lake', prefix: `dt=0${day}/` });

describe('scoped catalogs', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let store: CountingFs;
  let repo: Repository;
  let lake: MemStore;
  let policy: Policy;
  let group: Group;
  let a: Catalog;
  let b: Catalog;
  const backup = (catalog: Catalog) => backupGroup({ repo, catalog, policy, group, sources: [source(lake)] });
  /** One partition of a day: 30 small JSON files and one object of several chunks. */
  const addDay = async (day: number, version = 1): Promise<void> => {
    for (let i = 0; i < 30; i++) await lake.put(`dt=0${day}/part-${String(i).padStart(3, '0')}.json`, Buffer.from(JSON.stringify({ day, i, version, pad: 'x'.repeat(i * 7) })));
    const big = Buffer.alloc(150 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + day * 7 + version) & 0xff;
    await lake.put(`dt=0${day}/big.bin`, big);
  };

  beforeEach(async () => {
    dir = tempDir('scope');
    store = new CountingFs({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store, { packSize: 64 * 1024, chunker: SMALL_CHUNKER });
    lake = new MemStore({ name: 'lake' });
    group = { name: 'lake', sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }], retention: { keepLast: 1 } };
    policy = testPolicy(store.location, [group]);
    a = Catalog.open(join(dir.path, 'a.db'), repo.id);
    b = Catalog.open(join(dir.path, 'b.db'), repo.id);
    // Three runs, each adding a day (a lake partitioned by date); the third also changes day 1.
    await addDay(1);
    await backup(a);
    await addDay(2);
    await backup(a);
    await addDay(3);
    await lake.put('dt=01/part-000.json', Buffer.from('{"changed":true}'));
    await backup(a);
    store.resetReads();
  });
  afterEach(() => {
    a.close();
    b.close();
    dir.cleanup();
  });

  it('a manifest locates its record blobs and every version record locates its blobs, as the catalog has them', async () => {
    const names = (await repo.listNames('runs')).sort();
    expect(names).toHaveLength(3);
    let lines = 0;
    for (const name of names) {
      const m = checkManifest(await repo.readDocument<RunManifest>('runs', name), name, repo);
      expect(m.recordLocations).toHaveLength(m.records.length);
      m.records.forEach((hex, i) => expect(m.recordLocations![i]).toEqual(blobLocationOf(a, Buffer.from(hex, 'hex'))));
      for (const [i, hex] of m.records.entries()) {
        const [pack, , offset, length, rawLength, compressed] = m.recordLocations![i]!;
        const stored = await repo.readPackRange(pack, offset, offset + length);
        const raw = repo.decodeBlob(stored, { id: Buffer.from(hex, 'hex'), compressed: compressed === 1, rawLength }, 'test');
        for (const text of raw.toString('utf8').trim().split('\n')) {
          const rec = JSON.parse(text) as { t: string; blobs: string[]; locs?: RecordedBlob[] };
          if (rec.t !== 'v') continue;
          lines++;
          expect(rec.locs).toHaveLength(rec.blobs.length);
          rec.blobs.forEach((blob, j) => expect(rec.locs![j]).toEqual(blobLocationOf(a, Buffer.from(blob, 'hex'))));
          // The location reads the blob back (authenticated by its id).
          for (const [j, [p, , off, len, rawLen, comp]] of rec.locs!.entries()) {
            const data = repo.decodeBlob(await repo.readPackRange(p, off, off + len), { id: Buffer.from(rec.blobs[j]!, 'hex'), compressed: comp === 1, rawLength: rawLen }, 'test');
            expect(data.length).toBe(rawLen);
          }
        }
      }
    }
    expect(lines).toBe(31 * 3 + 1);
    const m = await repo.readDocument<RunManifest>('runs', names[0]!);
    expect(() => checkManifest({ ...m, recordLocations: [['zz', 1, 0, 1, 1, 0]] }, names[0]!, repo)).toThrow(IntegrityError);
    expect(() => checkManifest({ ...m, recordLocations: m.recordLocations!.map((l) => [l[0], 1, 0, 5, 5, 0]) }, names[0]!, repo)).toThrow(/recordLocations/);
  });

  it('scopeOverlapsRange: a record blob is read only when its key range can hold a key of the scope', () => {
    const scope = [dt(2)];
    expect(scopeOverlapsRange(scope, ['lake', 'dt=01/a'], ['lake', 'dt=01/z'])).toBe(false);
    expect(scopeOverlapsRange(scope, ['lake', 'dt=01/a'], ['lake', 'dt=02/'])).toBe(true);
    expect(scopeOverlapsRange(scope, ['lake', 'dt=02/x'], ['lake', 'dt=02/y'])).toBe(true);
    expect(scopeOverlapsRange(scope, ['lake', 'dt=01/a'], ['lake', 'dt=03/a'])).toBe(true);
    expect(scopeOverlapsRange(scope, ['lake', 'dt=020'], ['lake', 'dt=03/a'])).toBe(false);
    expect(scopeOverlapsRange(scope, ['other', 'dt=02/a'], ['other', 'dt=02/b'])).toBe(false);
    expect(scopeOverlapsRange(scope, ['a-bucket', 'x'], ['zz-bucket', 'x'])).toBe(true);
    expect(scopeOverlapsRange([{ bucket: 'lake', prefix: '' }], ['lake', 'q'], ['lake', 'r'])).toBe(true);
    expect(scopeOverlapsRange([{ bucket: 'lake', prefix: '' }], ['lakf', 'a'], ['lakf', 'b'])).toBe(false);
    expect(scopeOverlapsRange(null, ['x', 'y'], ['x', 'y'])).toBe(true);
    // A bucket named like the start of another: `lake` is not `lake2`, either way round.
    expect(scopeOverlapsRange([{ bucket: 'lake', prefix: '' }], ['lake2', 'a'], ['lake2', 'z'])).toBe(false);
    expect(scopeOverlapsRange([{ bucket: 'lake2', prefix: '' }], ['lake', 'a'], ['lake', 'z'])).toBe(false);
    expect(scopeOverlapsRange([{ bucket: 'lake', prefix: '' }], ['lake', 'z'], ['lake2', 'a'])).toBe(true);
    expect(scopeCovers([{ bucket: 'lake', prefix: '' }], 'lake2', '')).toBe(false);
    // Keys sorting between a prefix and its slash: `dt=01-old/` ('-' < '/') is not inside `dt=01/`.
    expect(scopeOverlapsRange([dt(1)], ['lake', 'dt=01-old/a'], ['lake', 'dt=01-old/z'])).toBe(false);
    expect(scopeOverlapsRange([dt(1)], ['lake', 'dt=00/a'], ['lake', 'dt=01-old/z'])).toBe(false);
    expect(scopeOverlapsRange([dt(1)], ['lake', 'dt=01-old/a'], ['lake', 'dt=01/a'])).toBe(true);
    // A prefix without its slash holds every key that starts with it; one equal to a key holds it.
    expect(scopeCovers([{ bucket: 'lake', prefix: 'dt=0' }], 'lake', 'dt=0x')).toBe(true);
    expect(scopeOverlapsRange([{ bucket: 'lake', prefix: 'dt=01/a.csv' }], ['lake', 'dt=01/a.csv'], ['lake', 'dt=01/a.csv'])).toBe(true);
    // Non-ASCII, in UTF-8 order (S3's): U+FFFF sorts before an astral character, U+D7FF before U+E000.
    expect(scopeOverlapsRange([{ bucket: 'lake', prefix: 'k\uffff' }], ['lake', 'k\u{10000}'], ['lake', 'k\u{10001}'])).toBe(false);
    expect(scopeOverlapsRange([{ bucket: 'lake', prefix: 'k\u{10000}' }], ['lake', 'k\uffff'], ['lake', 'k\u{10000}x'])).toBe(true);
    expect(scopeOverlapsRange([{ bucket: 'lake', prefix: 'k\ud7ff' }], ['lake', 'k\ue000'], ['lake', 'k\ue001'])).toBe(false);
  });

  it('--prefix on a fresh catalog imports only that prefix, from the overlapping record blobs, reading no index file; restore is byte-identical', async () => {
    const wholeCatalog = Catalog.open(join(dir.path, 'whole.db'), repo.id);
    const whole = await syncCatalog({ repo, catalog: wholeCatalog });
    wholeCatalog.close();
    const wholeReads = { ...store.reads };
    store.resetReads();

    const report = await syncCatalog({ repo, catalog: b, widen: [dt(2)] });
    expect(report).toMatchObject({ full: true, runs: 3, scope: [dt(2)], scopeChanged: true, unlocatedRuns: 0, damage: [], missingCount: 0 });
    expect(catalogScope(b)).toEqual([dt(2)]);
    // Three manifests; of the packs, only the record blobs of runs 2 and 3 (run 3's records go from
    // dt=01/part-000.json to dt=03/: their range spans day 2), not run 1's, and no index file.
    expect(store.reads).toEqual({ runs: 3, index: 0, packs: 2 });
    expect(wholeReads).toMatchObject({ runs: 3, packs: 3 });
    expect(wholeReads.index).toBeGreaterThan(0);
    expect(report.bytesRead).toBeLessThan(whole.bytesRead);
    expect(versions(b)).toEqual(versions(a, [dt(2)]));
    expect(versions(b)).toHaveLength(31);
    // Failures, blobs: nothing of another day.
    expect(sqlite(b).prepare("SELECT count(*) FROM objects WHERE key NOT LIKE 'dt=02/%'").pluck().get()).toBe(0);

    const target = new MemStore({ name: 'restored' });
    const restored = await restore({ repo, catalog: b, scopes: [{ bucket: 'lake', prefix: 'dt=02/' }], cut: { runSeq: b.latestRun({ statuses: ['complete'] })!.seq }, target, bucketDirs: false, concurrency: 4 });
    expect(restored.failures).toEqual([]);
    const keys = await keysUnder(lake, 'dt=02/');
    expect(keys).toHaveLength(31);
    for (const key of keys) expect((await getBytes(target, key)).equals(await getBytes(lake, key))).toBe(true);
  });

  it('later syncs import new runs the same scoped way; a key outside the scope costs nothing', async () => {
    await syncCatalog({ repo, catalog: b, widen: [dt(2)] });
    await lake.put('dt=02/part-001.json', Buffer.from('{"rewritten":true}'));
    await addDay(4);
    await backup(a);
    store.resetReads();
    const next = await syncCatalog({ repo, catalog: b });
    expect(next).toMatchObject({ full: false, runs: 1, scope: [dt(2)], scopeChanged: false });
    expect(store.reads.index).toBe(0);
    expect(versions(b)).toEqual(versions(a, [dt(2)]));
    expect(versions(b)).toHaveLength(32);
  });

  it('adding a prefix widens the scope; --all makes the catalog whole; --prefix on a whole catalog changes nothing', async () => {
    await syncCatalog({ repo, catalog: b, widen: [dt(2)] });
    const wider = await syncCatalog({ repo, catalog: b, widen: [dt(3), dt(2), { bucket: 'lake', prefix: 'dt=02/part-0' }] });
    expect(wider).toMatchObject({ scope: [dt(2), dt(3)], scopeChanged: true, damage: [] });
    expect(versions(b)).toEqual(versions(a, [dt(2), dt(3)]));
    const same = await syncCatalog({ repo, catalog: b, widen: [dt(3)] });
    expect(same).toMatchObject({ scopeChanged: false, runs: 0 });

    const all = await syncCatalog({ repo, catalog: b, widen: 'all' });
    expect(all).toMatchObject({ scope: null, scopeChanged: true, widenedInPlace: false, runs: 3, damage: [], missingCount: 0 });
    expect(catalogScope(b)).toBeNull();
    expect(versions(b)).toEqual(versions(a));
    expect(b.stats().blobs).toBe(a.stats().blobs);

    const warnings: string[] = [];
    const plain = await syncCatalog({ repo, catalog: b, widen: [dt(1)], events: (e) => e.type === 'warning' && warnings.push(e.message) });
    expect(plain).toMatchObject({ scope: null, scopeChanged: false });
    expect(warnings).toEqual(['this catalog holds the whole repository already: --prefix changes nothing']);
  });

  it('adding a prefix goes on while another process has the catalog open (nothing is emptied); --all is refused then: it would answer from an emptied catalog', async () => {
    await syncCatalog({ repo, catalog: b, widen: [dt(2)] });
    const held = versions(b);
    // A `serve` (or a long restore) on the same file: another connection, open.
    const reader = Catalog.open(join(dir.path, 'b.db'), repo.id);
    try {
      // Widening imports day 3 in place, in one transaction: the reader sees the old scope or the new one.
      expect(await syncCatalog({ repo, catalog: b, widen: [dt(3)] })).toMatchObject({ scope: [dt(2), dt(3)], scopeChanged: true, damage: [] });
      expect(catalogScope(reader)).toEqual([dt(2), dt(3)]);
      expect(versions(reader)).toEqual(versions(a, [dt(2), dt(3)]));
      await expect(syncCatalog({ repo, catalog: b, widen: 'all' })).rejects.toThrow(/^catalog .*b\.db is in use by another lakeguard process, and changing its scope empties it first$/);
      // Nothing changed: the reader still answers from the scope it had.
      expect(catalogScope(reader)).toEqual([dt(2), dt(3)]);
      expect(versions(reader).length).toBeGreaterThan(held.length);
      // A plain sync (no scope change) goes on as always.
      expect(await syncCatalog({ repo, catalog: b })).toMatchObject({ scopeChanged: false, damage: [] });
    } finally {
      reader.close();
    }
    expect(await syncCatalog({ repo, catalog: b, widen: 'all' })).toMatchObject({ scope: null, scopeChanged: true, damage: [] });
    expect(versions(b)).toEqual(versions(a));
    // The file is shared again: another connection opens and writes it.
    const after = Catalog.open(join(dir.path, 'b.db'), repo.id);
    try {
      expect(await syncCatalog({ repo, catalog: after })).toMatchObject({ damage: [] });
      expect(versions(after)).toEqual(versions(b));
    } finally {
      after.close();
    }
  });

  it('a scoped sync killed half-way leaves the scope without a marker, and the next sync completes it', async () => {
    store.failPacks = true;
    await expect(syncCatalog({ repo, catalog: b, widen: [dt(2), dt(3)] })).rejects.toThrow(/ECONNRESET/);
    expect(catalogScope(b)).toEqual([dt(2), dt(3)]);
    expect(syncMarker(b)).toBeNull();
    expect(importingRun(b)).toBeNull();
    store.failPacks = false;
    const next = await syncCatalog({ repo, catalog: b });
    expect(next).toMatchObject({ full: true, scope: [dt(2), dt(3)], damage: [], missingCount: 0 });
    expect(syncMarker(b)).not.toBeNull();
    expect(versions(b)).toEqual(versions(a, [dt(2), dt(3)]));
  });

  it('forget and prune on host A reach a scoped catalog: moved blobs are found at their new place', async () => {
    await syncCatalog({ repo, catalog: b, widen: [dt(1)] });
    const usedPacks = () =>
      new Set(sqlite(b).prepare('SELECT DISTINCT p.name FROM versions v JOIN blobs bl ON bl.id = v.blob JOIN packs p ON p.id = bl.pack').pluck().all() as string[]);
    const packsBefore = usedPacks();
    // keep_last 1: the first two runs are forgotten; day 1's first part-000 goes, the packs holding it are repacked.
    const forgotten = await forget(repo, a, policy, { dryRun: false });
    expect(forgotten.forgotten.length).toBe(2);
    const pruned = await prune({ repo, catalog: a, maxUnused: 0 });
    expect(pruned.packs.removed + pruned.packs.repacked).toBeGreaterThan(0);
    const after = await syncCatalog({ repo, catalog: b });
    expect(after).toMatchObject({ damage: [], missingCount: 0 });
    expect(versions(b)).toEqual(versions(a, [dt(1)]));
    // Some of day 1's content moved out of packs the prune deleted; B finds it in existing packs only.
    const packsAfter = usedPacks();
    expect([...packsBefore].some((p) => !packsAfter.has(p))).toBe(true);
    for (const p of packsAfter) expect(existsSync(join(dir.path, 'repo', packKey(p))), p).toBe(true);
    const target = new MemStore({ name: 'restored' });
    const restored = await restore({ repo, catalog: b, scopes: [{ bucket: 'lake', prefix: 'dt=01/' }], cut: { runSeq: b.latestRun({ statuses: ['complete'] })!.seq }, target, bucketDirs: false, concurrency: 4 });
    expect(restored.failures).toEqual([]);
    for (const key of await keysUnder(lake, 'dt=01/')) expect((await getBytes(target, key)).equals(await getBytes(lake, key))).toBe(true);
  });

  it('prunes that move blobs again between two syncs (the middle index files gone): incremental, fresh and widened scoped catalogs agree and restore', async () => {
    await syncCatalog({ repo, catalog: b, widen: [dt(1)] });
    // Where A locates the chunks of dt=01/big.bin (never rewritten), cycle after cycle.
    const bigBlobs = sqlite(a)
      .prepare(`SELECT hex(bl.hash) FROM objects o JOIN versions v ON v.object = o.id JOIN version_blobs vb ON vb.version = v.id JOIN blobs bl ON bl.id = vb.blob WHERE o.key = 'dt=01/big.bin'`)
      .pluck()
      .all() as string[];
    expect(bigBlobs.length).toBeGreaterThan(1);
    const packsOfBig = () => new Set(bigBlobs.map((h) => blobLocationOf(a, Buffer.from(h, 'hex'))![0]));
    const seen = [packsOfBig()];
    const damage: unknown[] = [];
    const indexFiles: Set<string>[] = [];
    for (let cycle = 1; cycle <= 4; cycle++) {
      // A fifth of the partition rewritten (below the anomaly rules' threshold): keep_last 1 forgets the run before.
      for (let i = cycle; i < 30; i += 5) await lake.put(`dt=01/part-${String(i).padStart(3, '0')}.json`, Buffer.from(JSON.stringify({ cycle, i })));
      await backup(a);
      expect((await forget(repo, a, policy, { dryRun: false })).forgotten.length).toBeGreaterThan(0);
      expect((await prune({ repo, catalog: a, maxUnused: 0 })).damaged).toEqual([]);
      seen.push(packsOfBig());
      const names = new Set(await repo.listNames('index'));
      indexFiles.push(names);
      // Index files there after the first prune of a pair that the second deleted: B never reads them.
      if (cycle % 2 === 0) expect([...indexFiles.at(-2)!].filter((n) => !names.has(n)).length).toBeGreaterThan(0);
      if (cycle % 2 === 0) damage.push(...(await syncCatalog({ repo, catalog: b })).damage);
    }
    // The unchanged content moved at every prune: twice between B's syncs.
    for (let i = 1; i < seen.length; i++) expect([...seen[i]!].some((p) => seen[i - 1]!.has(p))).toBe(false);
    expect(damage).toEqual([]);
    expect(versions(b)).toEqual(versions(a, [dt(1)]));
    const fresh = Catalog.open(join(dir.path, 'fresh.db'), repo.id);
    try {
      expect((await syncCatalog({ repo, catalog: fresh, widen: [dt(1)] })).damage).toEqual([]);
      expect(versions(fresh)).toEqual(versions(a, [dt(1)]));
      for (const catalog of [b, fresh]) {
        const target = new MemStore({ name: 'restored' });
        const restored = await restore({ repo, catalog, scopes: [dt(1)], cut: { runSeq: catalog.latestRun({ statuses: ['complete'] })!.seq }, target, bucketDirs: false, concurrency: 2 });
        expect(restored.failures).toEqual([]);
        for (const key of await keysUnder(lake, 'dt=01/')) expect((await getBytes(target, key)).equals(await getBytes(lake, key)), key).toBe(true);
      }
    } finally {
      fresh.close();
    }
    expect((await syncCatalog({ repo, catalog: b, widen: [dt(3)] })).damage).toEqual([]);
    expect(versions(b)).toEqual(versions(a, [dt(1), dt(3)]));
  });

  it('catalog sync through the CLI: --prefix with --all is bad usage (exit 2, one line); --json carries the scope', async () => {
    const cli = (...argv: string[]) => runCli(['--repo', join(dir.path, 'repo'), '--catalog', join(dir.path, 'cli.db'), ...argv], { LAKEGUARD_PASSWORD: 'test-password' });
    const both = await cli('catalog', 'sync', '--prefix', 's3://lake/dt=01/', '--all');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^lakeguard: catalog sync: give --prefix or --all, not both\n/);
    const scoped = await cli('--json', 'catalog', 'sync', '--prefix', 's3://lake/dt=01/');
    expect(scoped.code, scoped.stderr).toBe(0);
    expect(scoped.messages.at(-1)).toMatchObject({ message_type: 'summary', scope: [dt(1)], scopeChanged: true, runs: 3, ok: true });
  });

  it('runs written before records located their blobs: read through index files, said in one line', async () => {
    // An older lakeguard's manifest: no recordLocations (its record lines have no locs either).
    const names = (await repo.listNames('runs')).sort();
    const { recordLocations: _dropped, ...old } = await repo.readDocument<RunManifest>('runs', names[1]!);
    await store.delete(`runs/${names[1]}`);
    await repo.writeDocument('runs', names[1]!, old);
    store.resetReads();
    const warnings: string[] = [];
    const report = await syncCatalog({ repo, catalog: b, widen: [dt(2)], events: (e) => e.type === 'warning' && warnings.push(e.message) });
    expect(report).toMatchObject({ unlocatedRuns: 1, damage: [], missingCount: 0 });
    expect(warnings).toEqual([expect.stringMatching(/^1 runs were written by a lakeguard whose records do not locate their blobs/)]);
    expect(store.reads.index).toBeGreaterThan(0);
    expect(versions(b)).toEqual(versions(a, [dt(2)]));
  });
});
