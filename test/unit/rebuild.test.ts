// `catalog rebuild`: a catalog recreated from the repository alone answers every query the
// same as the original; damage is reported, never silently dropped; the old catalog survives
// a failed rebuild; commands refuse an empty catalog for a repository with backups.
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog, type StateCut } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { IndexDocument, RunManifest } from '../../src/engine/finalize.js';
import { rebuildCatalog } from '../../src/engine/rebuild.js';
import { openSource, type OpenedSource } from '../../src/engine/sources.js';
import { verify } from '../../src/engine/verify.js';
import { IntegrityError, InterruptedError, LakeguardError, StorageError } from '../../src/errors.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { BlobType } from '../../src/repository/pack.js';
import { Packer } from '../../src/repository/packer.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import type { GetOptions } from '../../src/storage/types.js';
import { messagesOf, runCli } from '../helpers/cli.js';
import { hashTree, initRepo, prng, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';
import { selectState, statePage } from '../../src/catalog/restore-selection.js';
import { latestPage } from '../../src/catalog/backup-lookups.js';
import { RunVersionsByKey } from '../../src/catalog/version-records.js';
import type { VersionRecord } from '../../src/catalog/types.js';

const SMALL_CHUNKER = { minSize: 16 * 1024, avgSize: 32 * 1024, maxSize: 64 * 1024 };
const BUCKETS = ['lake', 'events', 'versioned', 'logs'];

/** A source bucket where some keys cannot be read (access denied): runs become partial. */
class DenyingBucket extends MemStore {
  denied = new Set<string>();
  override async get(key: string, opts?: GetOptions) {
    if (this.denied.has(key)) throw new StorageError('AccessDenied', `GET ${this.location}${key}: AccessDenied (403)`, { backendCode: 'AccessDenied' });
    return super.get(key, opts);
  }
}

/** The repository directory, with a switch that makes pack reads fail as a network would. */
class FlakyFs extends FsStore {
  failPacks = false;
  readOnly = false;
  override async put(key: string, body: Parameters<FsStore['put']>[1], opts?: Parameters<FsStore['put']>[2]) {
    if (this.readOnly) throw new StorageError('AccessDenied', `PUT ${this.location}${key}: AccessDenied (403)`);
    return super.put(key, body, opts);
  }
  override async get(key: string, opts?: GetOptions) {
    if (this.failPacks && key.startsWith('packs/')) throw new StorageError('Network', `GET ${this.location}${key}: ECONNRESET`);
    return super.get(key, opts);
  }
}

const memSource = (name: string, store: MemStore): OpenedSource => ({ bucket: name, objectStore: store, prefixes: [''], isExcluded: compileExcludes([]) });

/** Everything a user can ask the catalog, without its internal row ids. */
function dump(cat: Catalog, times: number[]) {
  const state = (cut: StateCut) => {
    const items: unknown[] = [];
    for (const bucket of BUCKETS) {
      selectState(cat, [{ bucket }], cut);
      for (let after = 0; ; ) {
        const page = statePage(cat, after, 100);
        if (page.items.length === 0) break;
        after = page.rowid;
        for (const { versionRow: _row, blobs, ...item } of page.items) {
          items.push({ ...item, blobs: blobs.map((b) => ({ ...b, hash: b.hash.toString('hex') })) });
        }
      }
    }
    return items.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  };
  const runs = cat.listRuns();
  return {
    runs: runs.map(({ seq: _seq, ...r }) => r),
    byRun: Object.fromEntries(
      runs.map((r) => [
        r.id,
        {
          state: state({ runSeq: r.seq }),
          // In (bucket, key) order, as manifests hold them (docs/repository-format.md "recordRanges"):
          // a rebuilt catalog holds a run's versions in that order, the writer's in the order it met them.
          versions: versionsByKey(cat, r.seq),
          failures: cat.failuresOfRun(r.seq),
        },
      ]),
    ),
    byTime: Object.fromEntries(times.map((t) => [t, state({ time: t })])),
    latest: Object.fromEntries(
      BUCKETS.map((b) => [b, latestPage(cat, b, '', true, null, 1_000_000).map(({ objectId: _o, versionRow: _v, ...rest }) => rest)]),
    ),
    stats: cat.stats(),
  };
}

function versionsByKey(cat: Catalog, seq: number): VersionRecord[] {
  const byKey = new RunVersionsByKey(cat, seq);
  try {
    return byKey.page(1_000_000).map(({ row: _row, ...v }) => v);
  } finally {
    byKey.close();
  }
}

/** A history of five runs in two groups: changes, deletions, versions, metadata and a partial run. */
async function makeHistory(dir: string, opts: { password: string | null }) {
  const lake = join(dir, 'src/lake');
  const rnd = prng(5);
  const files: Record<string, Buffer | string> = {
    'raw/big.bin': rnd(300 * 1024 + 17), // several chunks
    'raw/empty': '',
    'ünïcødé/日本語/ключ 🦆.txt': 'unicode',
    'dup/a.txt': 'same bytes\n'.repeat(50),
    'dup/b.txt': 'same bytes\n'.repeat(50),
    'only/once.txt': 'written once, never changed\n',
  };
  for (let i = 0; i < 60; i++) files[`t/dt=${i % 3}/part-${i}.json`] = JSON.stringify({ i, r: rnd(24).toString('hex') });
  writeTree(lake, files);
  const events = new DenyingBucket({ name: 'events' });
  for (let i = 0; i < 20; i++) await events.put(`e/${i}.json`, Buffer.from(`{"e":${i}}`), { contentType: 'application/json', metadata: { Source: `s${i % 2}` } });
  const versioned = new MemStore({ name: 'versioned', versioning: true });
  await versioned.put('v/a', Buffer.from('a1'));
  await versioned.put('v/b', Buffer.from('b1'), { cacheControl: 'max-age=60' });
  const logs = new MemStore({ name: 'logs' });
  await logs.put('l/1.log', Buffer.from('log 1\n'));

  const store = new FsStore({ root: join(dir, 'repo'), fsync: false });
  const repo = await initRepo(store, { password: opts.password, packSize: 64 * 1024, chunker: SMALL_CHUNKER });
  const catalog = Catalog.open(join(dir, 'original.db'), repo.id);
  const main: Group = { name: 'main', sources: [{ kind: 'path', path: lake, prefixes: [''], exclude: [] }] };
  const side: Group = { name: 'side', sources: [] };
  const policy: Policy = testPolicy(store.location, [main, side]);
  const run = (group: Group, sources: OpenedSource[]) => backupGroup({ repo, catalog, policy, group, sources });
  const mainSources = () => [openSource(main.sources[0]!, policy), memSource('events', events), memSource('versioned', versioned)];
  const snapshots: Map<string, string>[] = [];

  expect((await run(main, mainSources())).status).toBe('complete');
  snapshots.push(hashTree(lake));
  expect((await run(side, [memSource('logs', logs)])).status).toBe('complete');

  writeFileSync(join(lake, 't/dt=0/part-0.json'), '{"changed":1}');
  writeFileSync(join(lake, 'raw/new.txt'), 'new in run 3\n');
  rmSync(join(lake, 'dup/a.txt'));
  await events.put('e/new.json', Buffer.from('{"new":1}'));
  await events.put('e/secret.json', Buffer.from('{}'));
  events.denied.add('e/secret.json');
  await versioned.put('v/a', Buffer.from('a2'));
  await versioned.delete('v/b');
  const third = await run(main, mainSources());
  expect(third.status).toBe('partial');
  snapshots.push(hashTree(lake));

  rmSync(join(lake, 'raw/new.txt'));
  writeFileSync(join(lake, 'dup/a.txt'), 'back, with other bytes\n');
  events.denied.clear();
  await events.delete('e/0.json');
  await versioned.put('v/c', Buffer.from('c1'));
  expect((await run(main, mainSources())).status).toBe('complete');
  await logs.put('l/2.log', Buffer.from('log 2\n'));
  expect((await run(side, [memSource('logs', logs)])).status).toBe('complete');

  const runs = catalog.listRuns();
  const times = [0, ...runs.flatMap((r) => [r.started, r.finished!]), Date.now()];
  return { repo, store, catalog, policy, main, mainSources, lake, times, snapshots };
}

describe.each([
  { encrypted: true, password: 'test-password' },
  { encrypted: false, password: null },
])('rebuilt catalog answers the same (encrypted: $encrypted)', ({ password }) => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.cleanup());

  it('runs, versions, failures, point-in-time states and latest pages are identical', async () => {
    dir = tempDir('rebuild');
    const h = await makeHistory(dir.path, { password });
    expect(h.repo.encrypted).toBe(password !== null);
    const original = dump(h.catalog, h.times);
    expect(original.runs.map((r) => `${r.group}:${r.status}`)).toEqual(['main:complete', 'side:complete', 'main:partial', 'main:complete', 'side:complete']);
    expect(Object.values(original.byRun).some((r) => r.failures.length > 0)).toBe(true);
    expect(original.stats.versions).toBeGreaterThan(90);
    // The history has versioned objects with real delete markers, and states that differ over time.
    expect(original.latest.versioned!.some((v) => v.versionId !== null)).toBe(true);
    expect(original.latest.versioned!.some((v) => v.deleteMarker)).toBe(true);
    expect(new Set(Object.values(original.byTime).map((s) => JSON.stringify(s))).size).toBeGreaterThan(3);

    // A fresh process would open the repository anew: use a second Repository object.
    const repo = await Repository.open(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: async () => 'test-password' });
    const phases: string[] = [];
    const report = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'rebuilt.db'), events: (e) => e.type === 'phase' && phases.push(e.phase) });
    expect(report).toMatchObject({ runs: 5, versions: original.stats.versions, blobs: original.stats.blobs, packs: original.stats.packs, damage: [], missing: [], missingCount: 0, previousRuns: null });
    expect(report.failures).toBe(1);
    expect(report.indexFiles).toBe(5);
    expect(phases).toEqual(['list repository', 'read index', 'read runs', 'load records', 'apply forgets', 'install catalog']);
    expect(readdirSync(dir.path).filter((n) => n.startsWith('rebuilt.db'))).toEqual(['rebuilt.db']);

    const rebuilt = Catalog.open(join(dir.path, 'rebuilt.db'), repo.id);
    try {
      expect(dump(rebuilt, h.times)).toEqual(original);
      // Everything it refers to is there, and the next backup finds every object unchanged and stores nothing.
      expect((await verify({ repo, catalog: rebuilt, readData: 1, concurrency: 4 })).damage).toEqual([]);
      const next = await backupGroup({ repo, catalog: rebuilt, policy: h.policy, group: h.main, sources: h.mainSources() });
      expect(next.status).toBe('complete');
      expect(next.counters).toMatchObject({ objectsNew: 0, objectsChanged: 0, blobsNew: 0 });
    } finally {
      rebuilt.close();
      h.catalog.close();
    }
  });
});

describe('record lines split across record blobs', () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.cleanup());

  it('are joined (another writer may cut them anywhere, even inside a UTF-8 character)', async () => {
    dir = tempDir('rebuild-split');
    const h = await makeHistory(dir.path, { password: 'test-password' });
    const original = dump(h.catalog, h.times);
    const { repo } = h;
    const readRecords = async (hex: string): Promise<Buffer> => {
      const loc = h.catalog.blobLocation(Buffer.from(hex, 'hex'))!;
      const stored = await repo.readPackRange(loc.pack, loc.offset, loc.offset + loc.length);
      return repo.decodeBlob(stored, { id: Buffer.from(hex, 'hex'), compressed: (loc.flags & 1) === 1, rawLength: loc.rawLength }, loc.pack);
    };
    let cutInsideCharacter = false;
    for (const name of await repo.listNames('runs')) {
      const manifest = await repo.readDocument<RunManifest>('runs', name);
      const ndjson = Buffer.concat(await Promise.all(manifest.records.map(readRecords)));
      // Cut every 61 bytes, and once inside the 4-byte duck of the unicode key.
      const duck = ndjson.indexOf(Buffer.from('🦆'));
      const cuts = new Set<number>([...Array(Math.ceil(ndjson.length / 61)).keys()].map((i) => i * 61));
      if (duck >= 0) {
        cuts.add(duck + 2);
        cutInsideCharacter = true;
      }
      const sorted = [...cuts, ndjson.length].sort((a, b) => a - b);
      const pieces = sorted.slice(0, -1).map((start, i) => ndjson.subarray(start, sorted[i + 1]));
      const packs: IndexDocument['packs'] = [];
      const packer = new Packer(repo, {
        onPackWritten: (p) => {
          packs.push({ id: p.id, size: p.size, blobs: p.entries.map((e) => [e.id.toString('hex'), e.type, e.offset, e.length, e.rawLength, e.compressed ? 1 : 0]) });
        },
      });
      const records: string[] = [];
      for (const piece of pieces) {
        const blob = repo.encodeBlob(piece, BlobType.records);
        await packer.add(blob);
        records.push(blob.id.toString('hex'));
      }
      await packer.flush();
      await repo.writeDocument('index', null, { version: 1, packs } satisfies IndexDocument);
      await h.store.delete(`runs/${name}`);
      // A writer that cuts blobs anywhere gives no key ranges.
      await repo.writeDocument('runs', name, { ...manifest, records, recordRanges: undefined, recordLocations: undefined });
    }
    expect(cutInsideCharacter).toBe(true);
    const report = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'rebuilt.db') });
    expect(report.damage).toEqual([]);
    const rebuilt = Catalog.open(join(dir.path, 'rebuilt.db'), repo.id);
    try {
      const again = dump(rebuilt, h.times);
      // Same answers; only the record blobs (and their packs) are more numerous.
      expect({ ...again, stats: undefined }).toEqual({ ...original, stats: undefined });
      expect(again.stats.versions).toBe(original.stats.versions);
    } finally {
      rebuilt.close();
      h.catalog.close();
    }
  });
});

describe('catalog rebuild: damage and failures', () => {
  let dir: ReturnType<typeof tempDir>;
  let h: Awaited<ReturnType<typeof makeHistory>>;
  let flaky: FlakyFs;
  let repo: Repository;
  let target: string;
  let before: ReturnType<typeof dump>;

  beforeEach(async () => {
    dir = tempDir('rebuild-damage');
    h = await makeHistory(dir.path, { password: 'test-password' });
    flaky = new FlakyFs({ root: join(dir.path, 'repo'), fsync: false });
    repo = await Repository.open(flaky, { password: async () => 'test-password' });
    // The "old catalog" these tests protect: a complete one at the target path.
    target = join(dir.path, 'catalog.db');
    await rebuildCatalog({ repo, catalogPath: target });
    const cat = Catalog.open(target, repo.id);
    before = dump(cat, h.times);
    cat.close();
  });
  afterEach(() => {
    h.catalog.close();
    dir.cleanup();
  });

  const oldCatalogIntact = () => {
    expect(readdirSync(dir.path).filter((n) => n.startsWith('catalog.db'))).toEqual(['catalog.db']);
    const cat = Catalog.open(target, repo.id);
    try {
      expect(dump(cat, h.times)).toEqual(before);
    } finally {
      cat.close();
    }
  };

  it('a corrupted index file stops the rebuild with its name; --skip-damaged goes on and reports it', async () => {
    const name = (await repo.listNames('index')).sort()[2]!;
    const path = join(dir.path, 'repo/index', name);
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(path);
    bytes[bytes.length >> 1]! ^= 0x40;
    writeFileSync(path, bytes);

    const err = await rebuildCatalog({ repo, catalogPath: target }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).message).toBe(`${repo.location}index/${name}: failed authentication (corrupted or tampered)`);
    expect((err as IntegrityError).hint).toMatch(new RegExp(`index/${name} is damaged; .*--skip-damaged`));
    oldCatalogIntact();

    const report = await rebuildCatalog({ repo, catalogPath: target, skipDamaged: true });
    expect(report.damage[0]).toEqual({ what: `index/${name}`, problem: expect.stringContaining('failed authentication') });
    expect(report.indexFiles).toBe(4);
    // What only that index located is reported, not silently dropped.
    expect(report.damage.length + report.missingCount).toBeGreaterThan(1);
    expect(report.previousRuns).toBe(5);
  });

  it('a version whose blob is in no index file is left out and reported; everything else is rebuilt', async () => {
    selectState(h.catalog, [{ bucket: 'lake', key: 'only/once.txt' }], { runSeq: h.catalog.listRuns().at(-1)!.seq });
    const hex = statePage(h.catalog, 0, 1).items[0]!.blobs[0]!.hash.toString('hex');
    // Rewrite the index file that locates the blob without it (as if that entry had been lost).
    for (const name of await repo.listNames('index')) {
      const doc = await repo.readDocument<IndexDocument>('index', name);
      if (!doc.packs.some((p) => p.blobs.some((b) => b[0] === hex))) continue;
      for (const p of doc.packs) p.blobs = p.blobs.filter((b) => b[0] !== hex);
      await repo.writeDocument('index', null, doc);
      await flaky.delete(`index/${name}`);
    }
    const report = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'partial.db') });
    expect(report.missing).toEqual([{ run: h.catalog.listRuns()[0]!.id, bucket: 'lake', key: 'only/once.txt', versionId: null, blob: hex }]);
    expect(report.missingCount).toBe(1);
    expect(report.damage).toEqual([]);
    expect(report.versions).toBe(before.stats.versions - 1);
    expect(report.runs).toBe(5);
  });

  it('a rebuild that fails midway (pack reads fail) or is interrupted leaves the old catalog untouched', async () => {
    flaky.failPacks = true;
    const err = await rebuildCatalog({ repo, catalogPath: target }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).message).toMatch(/ECONNRESET/);
    oldCatalogIntact();

    flaky.failPacks = false;
    const controller = new AbortController();
    const interrupted = await rebuildCatalog({
      repo,
      catalogPath: target,
      signal: controller.signal,
      events: (e) => e.type === 'progress' && e.phase === 'load records' && controller.abort(),
    }).catch((e: unknown) => e);
    expect(interrupted).toBeInstanceOf(InterruptedError);
    oldCatalogIntact();
    // No lock is left behind either.
    expect(await repo.listNames('locks')).toEqual([]);
  });

  it('refuses a target open in another connection, and one that belongs to another repository', async () => {
    const inUse = Catalog.open(target, repo.id);
    try {
      await expect(rebuildCatalog({ repo, catalogPath: target })).rejects.toThrow(`catalog ${target} is in use by another lakeguard process`);
    } finally {
      inUse.close();
    }
    const foreign = join(dir.path, 'foreign.db');
    Catalog.open(foreign, 'f'.repeat(32)).close();
    const err = await rebuildCatalog({ repo, catalogPath: foreign }).catch((e: unknown) => e);
    expect((err as LakeguardError).message).toBe(`catalog ${foreign} belongs to repository ${'f'.repeat(32)}, not ${repo.id}`);
    // A file that is not a database at all is simply replaced.
    const junk = join(dir.path, 'junk.db');
    writeFileSync(junk, 'not sqlite '.repeat(100));
    expect((await rebuildCatalog({ repo, catalogPath: junk })).runs).toBe(5);
  });

  it('with read-only credentials, says to use --no-lock, which then works', async () => {
    flaky.readOnly = true;
    const err = await rebuildCatalog({ repo, catalogPath: target }).catch((e: unknown) => e);
    expect((err as StorageError).message).toMatch(/^cannot write a lock into the repository: PUT .*locks\/.*AccessDenied/);
    expect((err as StorageError).hint).toMatch(/--no-lock/);
    oldCatalogIntact();
    expect((await rebuildCatalog({ repo, catalogPath: target, lock: false })).runs).toBe(5);
  });

  it('removes temporary catalogs left by a rebuild that was killed', async () => {
    const { spawnSync } = await import('node:child_process');
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const leftover = join(dir.path, `catalog.db.rebuild-${gone}-0badf00d`);
    writeFileSync(leftover, 'half a catalog');
    writeFileSync(`${leftover}-wal`, '');
    await rebuildCatalog({ repo, catalogPath: target });
    expect(existsSync(leftover)).toBe(false);
    expect(existsSync(`${leftover}-wal`)).toBe(false);
  });
});

describe('catalog rebuild through the CLI', { timeout: 120_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.cleanup());

  it('a deleted catalog fills itself from the repository (no rebuild by hand), and rebuild still works', async () => {
    dir = tempDir('rebuild-cli');
    const lake = join(dir.path, 'lake');
    writeTree(lake, { 'a/1.json': '{"a":1}\n', 'a/2.json': '{"a":2}\n', 'b/big.bin': prng(9)(2 * 1024 * 1024), 'c/ü.txt': 'ü' });
    const policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    const env = { LAKEGUARD_PASSWORD: 'pw-rebuild', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') };
    const cli = (...args: string[]) => runCli(['--policy', policy, ...args], env);

    expect((await cli('init')).code).toBe(0);
    expect((await cli('backup')).code).toBe(0);
    const first = hashTree(lake);
    writeFileSync(join(lake, 'a/1.json'), '{"a":"changed"}\n');
    rmSync(join(lake, 'a/2.json'));
    expect((await cli('backup')).code).toBe(0);
    const runsBefore = await cli('runs', '--json');
    const runs = messagesOf(runsBefore, 'run');
    expect(runs).toHaveLength(2);

    // An empty cache is filled by the first command, which then answers as before.
    rmSync(join(dir.path, 'cache'), { recursive: true });
    const refilled = await cli('runs', '--json');
    expect(refilled.code, refilled.stderr).toBe(0);
    expect(refilled.stdout).toBe(runsBefore.stdout);
    const early = join(dir.path, 'early');
    rmSync(join(dir.path, 'cache'), { recursive: true });
    expect((await cli('restore', '--to-dir', early)).code).toBe(0);
    expect(hashTree(early)).toEqual(hashTree(lake));

    const rebuilt = await cli('catalog', 'rebuild');
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.stdout).toMatch(/^rebuilt catalog .*catalog\.db from file:\/\/.*\/repo\/ in /);
    expect(rebuilt.stdout).toMatch(/2 runs, \d+ object versions, 0 recorded failures/);
    expect((await cli('runs', '--json')).stdout).toBe(runsBefore.stdout);

    const latest = join(dir.path, 'latest');
    expect((await cli('restore', '--to-dir', latest)).code).toBe(0);
    expect(hashTree(latest)).toEqual(hashTree(lake));
    const old = join(dir.path, 'old');
    expect((await cli('restore', '--run', runs[0]!.id, '--to-dir', old)).code).toBe(0);
    expect(hashTree(old)).toEqual(first);

    // --catalog picks the file; --json gives the counts.
    const other = join(dir.path, 'elsewhere/catalog.db');
    const json = await runCli(['--policy', policy, '--catalog', other, 'catalog', 'rebuild', '--json'], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout.trim().split('\n').at(-1)!)).toMatchObject({ message_type: 'summary', catalog: other, runs: 2, ok: true, missingCount: 0 });
    expect(existsSync(other)).toBe(true);
  });
});
