// `lakeguard prune`: the plan (table-tested), and the end result on a real filesystem
// repository with unused data made honestly (a simulated forget, a crashed run's packs):
// kept runs restore byte-identically, verify is clean, a rebuilt catalog answers the same,
// unused bytes end within --max-unused, and a crash at every single write leaves a
// repository that verifies, restores and is finished by the next prune.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { newRunId } from '../../src/engine/run-id.js';
import { prune } from '../../src/engine/prune.js';
import { restore } from '../../src/engine/restore.js';
import { packOverhead, planPrune, type PackFacts } from '../../src/engine/prune-plan.js';
import { verify } from '../../src/engine/verify.js';
import { LakeguardError } from '../../src/errors.js';
import { removeLocks } from '../../src/repository/locks.js';
import { BlobType, packKey } from '../../src/repository/pack.js';
import { Packer, packRecord } from '../../src/repository/packer.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { getBytes } from '../../src/storage/types.js';
import type { IndexDocument, RunManifest } from '../../src/engine/finalize.js';
import { repack, writeIndexes, type RepackRun } from '../../src/engine/prune-repack.js';
import { runCli } from '../helpers/cli.js';
import { prng, tempDir } from '../helpers/fixtures.js';
import { buildScenario, catalogAnswers, rebuilt, restoredState, stateOf, type Scenario } from '../helpers/prune-scenario.js';
import { packUsage, setPruneRecordBlobs, usedBlobsOfPack } from '../../src/catalog/prune-queries.js';

const pack = (name: string, size: number | null, blobs: number, usedBlobs: number, usedBytes: number, known = true): PackFacts => ({ name, size, known, blobs, usedBlobs, usedBytes });

describe('planPrune', () => {
  // Unencrypted, so overhead = 8 + 41 × blobs.
  const o = (n: number) => packOverhead(n, false);
  it.each([
    {
      what: 'unused packs go, fully used ones stay',
      packs: [pack('a', 1000, 4, 0, 0), pack('b', 1000 + o(2), 2, 2, 1000), pack('c', 500, 0, 0, 0, false)],
      maxUnused: 0.05,
      remove: ['a', 'c'],
      repack: [],
      keep: ['b'],
      unusedAfter: 0,
    },
    {
      what: 'emptiest packs are repacked until unused ≤ 5 % of what remains',
      // used 1000 + overhead each; unused 900 (p), 300 (q), 20 (r). limit = used × 0.05 / 0.95.
      packs: [pack('q', 1300 + o(2), 2, 1, 1000), pack('p', 1900 + o(2), 2, 1, 1000), pack('r', 1020 + o(2), 2, 1, 1000)],
      maxUnused: 0.05,
      remove: [],
      repack: ['p', 'q'],
      keep: ['r'],
      unusedAfter: 20,
    },
    {
      what: 'a generous limit repacks nothing',
      packs: [pack('p', 1900 + o(2), 2, 1, 1000), pack('q', 1300 + o(2), 2, 1, 1000)],
      maxUnused: 0.6,
      remove: [],
      repack: [],
      keep: ['p', 'q'],
      unusedAfter: 1200,
    },
    {
      what: '0 % repacks every pack with an unused byte',
      packs: [pack('p', 1001 + o(2), 2, 1, 1000), pack('q', 1000 + o(1), 1, 1, 1000)],
      maxUnused: 0,
      remove: [],
      repack: ['p'],
      keep: ['q'],
      unusedAfter: 0,
    },
    {
      what: 'packs absent from the repository: used → missing, unused → catalog rows only',
      packs: [pack('m', null, 2, 1, 10), pack('f', null, 2, 0, 0), pack('k', 100 + o(1), 1, 1, 100)],
      maxUnused: 0.05,
      remove: [],
      repack: [],
      keep: ['k'],
      unusedAfter: 0,
      missing: ['m'],
      forgetInCatalog: ['f'],
    },
  ])('$what', ({ packs, maxUnused, remove, repack, keep, unusedAfter, missing = [], forgetInCatalog = [] }) => {
    const plan = planPrune(packs, { maxUnused, encrypted: false });
    expect(plan.remove.map((p) => p.name).sort()).toEqual(remove);
    expect(plan.repack.map((p) => p.name)).toEqual(repack);
    expect(plan.keep.map((p) => p.name).sort()).toEqual(keep);
    expect(plan.unusedAfter).toBe(unusedAfter);
    expect(plan.missing).toEqual(missing);
    expect(plan.forgetInCatalog).toEqual(forgetInCatalog);
    expect(plan.unusedAfter).toBeLessThanOrEqual(plan.limitBytes);
  });

  it('a partly used pack still under Object Lock is kept as it is: repacking would store its data twice', () => {
    const now = Date.parse('2026-11-23T00:00:00Z');
    const retained = { ...pack('p', 1900 + o(2), 2, 1, 1000), retainedUntil: now + 1 };
    const expired = { ...pack('q', 1300 + o(2), 2, 1, 1000), retainedUntil: now };
    const plan = planPrune([retained, expired], { maxUnused: 0, encrypted: false, now });
    expect(plan.keep.map((p) => p.name)).toEqual(['p']);
    expect(plan.repack.map((p) => p.name)).toEqual(['q']);
    expect(plan.unusedAfter).toBe(900);
  });

  it('encrypted pack headers (28-byte seal) count as used', () => {
    const plan = planPrune([pack('e', 1000 + packOverhead(3, true), 3, 3, 1000)], { maxUnused: 0, encrypted: true });
    expect(plan.keep.map((p) => p.unusedBytes)).toEqual([0]);
    expect(planPrune([pack('e', 1000 + packOverhead(3, true), 3, 3, 1000)], { maxUnused: 0, encrypted: false }).repack).toHaveLength(1);
  });
});

/** Every object in the repository directory (key → size), to prove what changed. */
async function objects(store: FsStore): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const item of store.list('')) if (item.kind === 'object' && !item.key.startsWith('locks/')) out.set(item.key, item.size);
  return out;
}

async function expectHealthy(s: Pick<Scenario, 'repo' | 'kept'>, catalog: Catalog, what: string): Promise<void> {
  const v = await verify({ repo: s.repo, catalog, readData: 1, concurrency: 4 });
  expect(v.damage, what).toEqual([]);
  for (const run of s.kept) expect(await restoredState(s.repo, catalog, run.id), `${what}: run ${run.id}`).toEqual(run.state);
}

describe.each([{ password: 'test-password' }, { password: null }])('prune end to end (password: $password)', ({ password }) => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.cleanup());

  it('deletes unused packs, repacks partly used ones, and leaves every kept run restorable', async () => {
    dir = tempDir('prune');
    const s = await buildScenario(dir.path, { password });
    const before = await objects(s.store);
    for (const p of s.orphanPacks) expect(before.has(packKey(p))).toBe(true);

    const dry = await prune({ repo: s.repo, catalog: s.catalog, maxUnused: 0.05, dryRun: true });
    expect(await objects(s.store)).toEqual(before);
    expect(dry.requests.put + dry.requests.delete).toBe(0);
    expect(dry.packs.removed).toBeGreaterThanOrEqual(2);
    expect(dry.packs.repacked).toBeGreaterThanOrEqual(1);

    const report = await prune({ repo: s.repo, catalog: s.catalog, maxUnused: 0.05 });
    expect(report).toMatchObject({ dryRun: false, damaged: [], missing: [], retained: [], packs: { removed: dry.packs.removed, repacked: dry.packs.repacked } });
    expect(report.bytes.unusedBefore).toBeGreaterThan(report.bytes.before * 0.05);
    expect(report.unusedAfterPercent).toBeLessThanOrEqual(5);
    expect(report.bytes.freed).toBeGreaterThan(report.bytes.written);
    expect(report.requests.delete).toBeGreaterThanOrEqual(report.packs.removed + report.packs.repacked + report.indexFiles.removed);
    expect(report.requests.put).toBeGreaterThanOrEqual(report.packs.written + report.indexFiles.written);

    const after = await objects(s.store);
    for (const p of s.orphanPacks) expect(after.has(packKey(p))).toBe(false);
    const packBytes = [...after].filter(([k]) => k.startsWith('packs/')).reduce((n, [, size]) => n + size, 0);
    const indexFreed = [...before].filter(([k]) => k.startsWith('index/') && !after.has(k)).reduce((n, [, size]) => n + size, 0);
    expect(packBytes).toBe(report.bytes.before - (report.bytes.freed - indexFreed) + report.bytes.written);
    await expectHealthy(s, s.catalog, 'after prune');
    // The catalog's record of index files matches the repository's, and every blob row's index file exists.
    const indexNames = [...after.keys()].filter((k) => k.startsWith('index/')).map((k) => k.slice(6)).sort();
    expect([...s.catalog.knownIndexFiles()].sort()).toEqual(indexNames);
    const rowFiles = sqlite(s.catalog).prepare('SELECT DISTINCT f.name FROM blobs b JOIN blob_index_files f ON f.id = b.index_file').pluck().all() as string[];
    expect(rowFiles.filter((f) => !indexNames.includes(f))).toEqual([]);

    // A second prune finds nothing to do, and measures the same unused share independently.
    const again = await prune({ repo: s.repo, catalog: s.catalog, maxUnused: 0.05 });
    expect(again.packs).toMatchObject({ removed: 0, repacked: 0, written: 0 });
    expect(again.bytes.unusedBefore).toBeLessThanOrEqual(again.bytes.before * 0.05);

    // The catalog rebuilt from the repository alone answers like the pruned catalog.
    const fresh = await rebuilt(await Repository.open(s.store, { password: async () => 'test-password' }), join(dir.path, 'rebuilt.db'));
    try {
      expect(catalogAnswers(fresh)).toEqual(catalogAnswers(s.catalog));
      expect(fresh.listRuns().map((r) => r.id)).toEqual(s.kept.map((r) => r.id));
      await expectHealthy(s, fresh, 'rebuilt catalog');
    } finally {
      fresh.close();
    }

    // Pruned content is not deduplicated against any more: backing it up again stores it again.
    await s.lake.put('back/1', s.prunedContent);
    const next = await s.backup();
    expect(next.counters.blobsNew).toBe(1);
    const restored = await restoredState(s.repo, s.catalog, next.runId);
    expect(restored.get('back/1')).toBe((await stateOf(s.lake)).get('back/1'));
    s.catalog.close();
  });
});

describe('prune refuses when the catalog does not know the repository', () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.cleanup());

  const REBUILD = /^run `lakeguard catalog rebuild` first, then prune again$/;
  // Objects that fail authentication: no rebuild imports them, so the hint must not send the operator to one.
  const NOT_AUTHENTIC = /^restore that object from a copy of the repository, or delete it if lakeguard did not write it/;
  it.each([
    {
      what: 'a run manifest the catalog does not know',
      plant: async (s: Scenario) => {
        const m = await s.repo.readDocument<RunManifest>('runs', s.kept[0]!.id);
        await s.repo.writeDocument('runs', '20991231T000000Z-abcdef', { ...m, id: '20991231T000000Z-abcdef' });
      },
      message: /has run 20991231T000000Z-abcdef, which catalog .* does not know/,
      hint: REBUILD,
    },
    {
      what: 'a forget document the catalog has not applied',
      plant: async (s: Scenario) =>
        void (await s.repo.writeDocument('forgets', '20991231T000000Z-000001-0001', { version: 1, id: '20991231T000000Z-000001', part: 1, parts: 1, created: new Date().toISOString(), host: 'h', forgotten: [], dropped: [] })),
      message: /has forget document forgets\/20991231T000000Z-000001-0001, which catalog .* has not applied/,
      hint: REBUILD,
    },
    {
      what: 'a run the catalog knows whose manifest is gone',
      plant: async (s: Scenario) => void (await s.store.delete(`runs/${s.kept[0]!.id}`)),
      message: /lacks the manifest of run \S+, which catalog .* knows; prune would delete the records that can bring it back$/,
      hint: /^restore runs\/<id> from a copy of the repository/,
    },
    {
      what: 'a planted run manifest (not authentic)',
      plant: async (s: Scenario) => void (await s.store.put('runs/20991231T000000Z-abcdef', Buffer.from('{}'))),
      message: /runs\/20991231T000000Z-abcdef: failed authentication \(corrupted or tampered\); the catalog cannot import it, so prune cannot tell which data it needs$/,
      hint: NOT_AUTHENTIC,
    },
    {
      what: 'a planted forget document (not authentic)',
      plant: async (s: Scenario) => void (await s.store.put('forgets/20991231T000000Z-000001', Buffer.from('{}'))),
      message: /forgets\/20991231T000000Z-000001: failed authentication \(corrupted or tampered\); the catalog cannot import it/,
      hint: NOT_AUTHENTIC,
    },
  ])('$what: exit 1 naming it and the next step, nothing deleted', async ({ plant, message, hint }) => {
    dir = tempDir('prune-refuse');
    const s = await buildScenario(dir.path);
    await plant(s);
    const before = await objects(s.store);
    const err = await prune({ repo: s.repo, catalog: s.catalog, maxUnused: 0.05 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LakeguardError);
    expect((err as LakeguardError).message).toMatch(message);
    expect((err as LakeguardError).hint).toMatch(hint);
    expect((err as LakeguardError).exitCode).toBe(1);
    expect(await objects(s.store)).toEqual(before);
    s.catalog.close();
  });
});

describe('prune and damage', () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.cleanup());

  it('a partly used pack whose used blob fails authentication is reported and kept whole', async () => {
    dir = tempDir('prune-damage');
    const s = await buildScenario(dir.path);
    setPruneRecordBlobs(s.catalog, []);
    const partly = packUsage(s.catalog).find((p) => p.usedBlobs > 0 && p.usedBlobs < p.blobs)!;
    expect(partly).toBeDefined();
    const blob = usedBlobsOfPack(s.catalog, partly.name)[0]!;
    const file = join(dir.path, 'repo', packKey(partly.name));
    const body = readFileSync(file);
    body[blob.offset + Math.floor(blob.length / 2)]! ^= 0xff;
    writeFileSync(file, body);

    const report = await prune({ repo: s.repo, catalog: s.catalog, maxUnused: 0 });
    expect(report.damaged.map((d) => d.what)).toEqual([`pack ${partly.name}`]);
    expect(report.damaged[0]!.problem).toMatch(/kept as it is/);
    expect(existsSync(file)).toBe(true);
    expect(report.packs.repacked).toBeGreaterThan(0);
    // The damage stays visible where it belongs: verify names the pack.
    const v = await verify({ repo: s.repo, catalog: s.catalog, readData: 1, concurrency: 4 });
    expect(v.damage.map((d) => d.what)).toEqual([`pack ${partly.name}`]);

    const cli = await runCli(['--repo', join(dir.path, 'repo'), '--catalog', s.catalogPath, 'prune', '--json'], { LAKEGUARD_PASSWORD: 'test-password' });
    s.catalog.close();
    expect(cli.code, cli.stderr).toBe(1);
  });
});

describe('repack holds the entries of the packs it writes in the catalog, not in memory', () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.cleanup());

  it('returns each new pack as name, size and blob count; index files and the catalog get its entries from temp.prune_written', async () => {
    // Before, every entry of every new pack (about 400 bytes of heap a blob) was held until the
    // catalog recorded them: 200,000 objects, 60 % rewritten, `--max-unused 0%`: 49.5 MB of
    // live heap against 25.5 MB at 50,000.
    dir = tempDir('prune-repack');
    const s = await buildScenario(dir.path);
    setPruneRecordBlobs(s.catalog, []);
    const partly = packUsage(s.catalog).filter((p) => p.usedBlobs > 0 && p.usedBlobs < p.blobs);
    expect(partly.length).toBeGreaterThan(0);
    const sizes = new Map([...(await objects(s.store))].map(([k, size]) => [k, size]));
    const run: RepackRun = {
      repo: s.repo,
      catalog: s.catalog,
      events: () => {},
      signal: undefined,
      damage: (what, problem) => {
        throw new Error(`${what}: ${problem}`);
      },
      progress: () => {},
      rewritten: () => {},
      checkSignal: () => {},
    };
    const planned = partly.map((p) => ({ name: p.name, size: sizes.get(packKey(p.name))!, usedBytes: p.usedBytes, unusedBytes: 0, usedBlobs: p.usedBlobs }));
    const { written, repacked } = await repack(run, planned);
    expect(repacked.length).toBe(partly.length);
    const used = partly.reduce((n, p) => n + p.usedBlobs, 0);
    for (const p of written) expect(Object.keys(p).sort()).toEqual(['blobs', 'id', 'size']);
    expect(written.reduce((n, p) => n + p.blobs, 0)).toBe(used);
    expect(sqlite(s.catalog).prepare('SELECT count(*) FROM temp.prune_written').pluck().get()).toBe(used);
    // The index files written for the new packs list every blob copied, read back from the table.
    const { names } = await writeIndexes(run, written, [], new Set());
    let listed = 0;
    for (const name of names) for (const p of (await s.repo.readDocument<IndexDocument>('index', name)).packs) listed += p.blobs.length;
    expect(listed).toBe(used);
    s.catalog.close();
  });
});

describe('prune and blobs no index file lists yet', () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.cleanup());

  it('writes their index first, so the repository describes every kept blob afterwards', async () => {
    dir = tempDir('prune-unindexed');
    const s = await buildScenario(dir.path);
    // As if the last backup had been killed after its packs and adopted without its index file.
    const last = await s.repo.readDocument<RunManifest>('runs', s.kept[1]!.id);
    expect(last.indexes.length).toBeGreaterThan(0);
    for (const name of last.indexes) {
      await s.store.delete(`index/${name}`);
      sqlite(s.catalog).prepare('UPDATE blobs SET index_file = NULL WHERE index_file = (SELECT id FROM blob_index_files WHERE name = ?)').run(name);
      sqlite(s.catalog).prepare('DELETE FROM index_files WHERE name = ?').run(name);
    }
    const damaged = await verify({ repo: s.repo, catalog: s.catalog, readData: 0, concurrency: 4 });
    expect(damaged.damage.map((d) => d.problem).join()).toMatch(/in no index file/);

    await prune({ repo: s.repo, catalog: s.catalog, maxUnused: 0.05 });
    await expectHealthy(s, s.catalog, 'after prune');
    const fresh = await rebuilt(s.repo, join(dir.path, 'rebuilt.db'));
    try {
      expect(catalogAnswers(fresh)).toEqual(catalogAnswers(s.catalog));
    } finally {
      fresh.close();
      s.catalog.close();
    }
  });
});

describe('prune and a killed backup still marked running', () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.cleanup());

  it('keeps everything its versions use; the next backup records the run as interrupted', async () => {
    dir = tempDir('prune-running');
    const s = await buildScenario(dir.path);
    // A backup killed after storing one object: its pack and version are in the catalog, no index file, no manifest.
    const seq = s.catalog.beginRun({ id: newRunId(new Date()), group: 'lake', started: Date.now(), host: hostname(), pid: 2 ** 22 + 1 });
    const content = prng(99)(9000);
    const blob = s.repo.encodeBlob(content, BlobType.data);
    let pack = '';
    const packer = new Packer(s.repo, {
      onPackWritten: (p) => {
        pack = p.id;
        s.catalog.transaction(() => s.catalog.insertPack(packRecord(p), seq));
      },
    });
    await packer.add(blob);
    await packer.flush();
    const now = Date.now();
    s.catalog.transaction(() =>
      s.catalog.insertVersions(seq, [{ bucket: 'lake', key: 'killed/one', versionId: null, deleteMarker: false, size: content.length, etag: 'e', lastModified: now, validFrom: now, blobs: [blob.id.toString('hex')] }]),
    );

    const report = await prune({ repo: s.repo, catalog: s.catalog, maxUnused: 0 });
    expect(report.damaged).toEqual([]);
    expect(existsSync(join(dir.path, 'repo', packKey(pack)))).toBe(true);
    await expectHealthy(s, s.catalog, 'after prune');
    const target = new MemStore();
    await restore({ repo: s.repo, catalog: s.catalog, scopes: [{ bucket: 'lake', key: 'killed/one' }], cut: { runSeq: seq }, target, bucketDirs: false, concurrency: 2 });
    expect((await getBytes(target, 'killed/one')).equals(content)).toBe(true);

    // The next backup adopts the run; a rebuilt catalog then has it too, with its version.
    await s.backup();
    expect(s.catalog.findRun(String(seq))?.status).toBe('interrupted');
    const fresh = await rebuilt(s.repo, join(dir.path, 'rebuilt.db'));
    try {
      expect(catalogAnswers(fresh)).toEqual(catalogAnswers(s.catalog));
    } finally {
      fresh.close();
      s.catalog.close();
    }
  });
});

/** An FsStore that "crashes" at its n-th write: that write and every later request fail, as for a dead process. */
class CrashingFs extends FsStore {
  writes = 0;
  crashAt = Number.POSITIVE_INFINITY;
  dead = false;
  private check(): void {
    if (this.dead) throw new Error('simulated crash (process is dead)');
  }
  private write(): void {
    this.check();
    if (++this.writes >= this.crashAt) {
      this.dead = true;
      throw new Error('simulated crash');
    }
  }
  override async put(...args: Parameters<FsStore['put']>) {
    this.write();
    return super.put(...args);
  }
  override async delete(...args: Parameters<FsStore['delete']>) {
    this.write();
    return super.delete(...args);
  }
  override async get(...args: Parameters<FsStore['get']>) {
    this.check();
    return super.get(...args);
  }
  override list(...args: Parameters<FsStore['list']>) {
    this.check();
    return super.list(...args);
  }
}

describe('prune crashed at every write', () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.cleanup());

  it('leaves a repository that verifies and restores; the next prune finishes the job', async () => {
    // How many writes a whole prune makes, on the same (seeded) scenario.
    dir = tempDir('prune-crash');
    const probe = await buildScenario(dir.path);
    const full = await prune({ repo: probe.repo, catalog: probe.catalog, maxUnused: 0.05 });
    probe.catalog.close();
    const writes = full.requests.put + full.requests.delete;
    expect(writes).toBeGreaterThan(8);
    dir.cleanup();

    for (let n = 1; n <= writes; n++) {
      dir = tempDir(`prune-crash-${n}`);
      const store = new CrashingFs({ root: join(dir.path, 'repo'), fsync: false });
      const s = await buildScenario(dir.path, { store });
      store.crashAt = store.writes + n;
      const crashed = await prune({ repo: s.repo, catalog: s.catalog, maxUnused: 0.05 }).catch((e: unknown) => e);
      s.catalog.close();
      if (n < writes) expect(String(crashed), `crash at write ${n}`).toMatch(/simulated crash/);

      // A new process: fresh store, repository and catalog connection; the dead one's lock is stale.
      const repo = await Repository.open(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { password: async () => 'test-password' });
      await removeLocks(repo, { all: true });
      const catalog = Catalog.open(s.catalogPath, repo.id);
      try {
        await expectHealthy({ repo, kept: s.kept }, catalog, `after a crash at write ${n}`);
        const rerun = await prune({ repo, catalog, maxUnused: 0.05 });
        expect(rerun.damaged, `rerun after write ${n}`).toEqual([]);
        expect(rerun.unusedAfterPercent).toBeLessThanOrEqual(5);
        for (const p of s.orphanPacks) expect(existsSync(join(dir.path, 'repo', packKey(p)))).toBe(false);
        await expectHealthy({ repo, kept: s.kept }, catalog, `after the rerun (crash at write ${n})`);
        const settled = await prune({ repo, catalog, maxUnused: 0.05, dryRun: true });
        expect(settled.packs, `nothing left to do after write ${n}`).toMatchObject({ removed: 0, repacked: 0 });
      } finally {
        catalog.close();
      }
      dir.cleanup();
    }
    dir = tempDir('prune-crash-done');
  }, 240_000);
});

describe('lakeguard prune (command)', () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.cleanup());

  it('--dry-run --json changes nothing; a real run reports packs, bytes and requests; bad --max-unused is exit 2', async () => {
    dir = tempDir('prune-cli');
    const s = await buildScenario(dir.path);
    s.catalog.close();
    const cli = (...args: string[]) => runCli(['--repo', join(dir.path, 'repo'), '--catalog', s.catalogPath, 'prune', ...args], { LAKEGUARD_PASSWORD: 'test-password' });
    const before = await objects(s.store);

    const bad = await cli('--max-unused', 'lots');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-unused lots: expected a percentage from 0% to 100%/);

    const dry = await cli('--dry-run', '--json');
    expect(dry.code, dry.stderr).toBe(0);
    const plan = dry.messages.find((m) => m.message_type === 'summary') as Record<string, any>;
    expect(plan).toMatchObject({ dryRun: true, ok: true, requests: { put: 0, delete: 0 } });
    expect(plan.packs.removed).toBeGreaterThan(0);
    expect(await objects(s.store)).toEqual(before);

    const text = await cli('--max-unused', '0%');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/packs deleted: \d+, repacked: \d+, kept: \d+, written: \d+/);
    expect(text.stdout).toMatch(/freed .*, rewrote .*; unused now 0 B \(0% of pack bytes; limit 0%\)/);
    expect(text.stdout).toMatch(/requests: \d+ list, \d+ get, \d+ put, \d+ delete/);

    const quiet = await cli('--quiet');
    expect(quiet).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });
});
