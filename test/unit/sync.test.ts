// `catalog sync`: a catalog follows the repository that other hosts write, incrementally. Two
// catalogs ("host A", "host B") over one filesystem repository.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { importingRun, setImportingRun, syncMarker } from '../../src/catalog/sync.js';
import { backupGroup } from '../../src/engine/backup.js';
import { newRunId } from '../../src/engine/run-id.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { forget } from '../../src/engine/forget.js';
import { prune } from '../../src/engine/prune.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { markerAt, syncCatalog } from '../../src/engine/sync.js';
import { verify } from '../../src/engine/verify.js';
import { StorageError } from '../../src/errors.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { packKey } from '../../src/repository/pack.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import type { GetOptions, ListItem, ListOptions } from '../../src/storage/types.js';
import { initRepo, tempDir, testPolicy } from '../helpers/fixtures.js';
import { latestPage } from '../../src/catalog/backup-lookups.js';
import { describeSync } from '../../src/commands/catalog.js';
import { flipByte } from '../helpers/damage.js';

const SMALL_CHUNKER = { minSize: 16 * 1024, avgSize: 32 * 1024, maxSize: 64 * 1024 };

/** The repository directory, with a switch that makes pack reads fail as a network would. */
class FlakyFs extends FsStore {
  failPacks = false;
  override async get(key: string, opts?: GetOptions) {
    if (this.failPacks && key.startsWith('packs/')) throw new StorageError('Network', `GET ${this.location}${key}: ECONNRESET`);
    return super.get(key, opts);
  }
}

/** A source whose listing waits until `release` is called: a backup that runs long. */
class SlowBucket extends MemStore {
  readonly release: () => void;
  readonly listed: Promise<void>;
  private readonly gate: Promise<void>;
  private readonly onList: () => void;
  constructor(opts: ConstructorParameters<typeof MemStore>[0]) {
    super(opts);
    let release = (): void => {};
    let onList = (): void => {};
    this.gate = new Promise((resolve) => (release = resolve));
    this.listed = new Promise((resolve) => (onList = resolve));
    this.release = release;
    this.onList = onList;
  }
  override async *list(prefix: string, opts?: ListOptions): AsyncGenerator<ListItem> {
    this.onList();
    await this.gate;
    yield* super.list(prefix, opts);
  }
}

const source = (bucket: string, store: MemStore): OpenedSource => ({ bucket, objectStore: store, prefixes: [''], isExcluded: compileExcludes([]) });

interface Hosts {
  store: FlakyFs;
  repo: Repository;
  lake: MemStore;
  policy: Policy;
  group: Group;
  a: Catalog;
  b: Catalog;
  backup(catalog: Catalog, sources?: OpenedSource[]): ReturnType<typeof backupGroup>;
}

/** What a user can ask a catalog about the lake: runs, and every version with its content. */
function answers(cat: Catalog) {
  const versions = sqlite(cat)
    .prepare(
      `SELECT b.name AS bucket, o.key AS key, v.version_id AS versionId, v.delete_marker AS dm, v.size AS size, v.valid_from AS validFrom, r.id AS run
       FROM versions v JOIN objects o ON o.id = v.object JOIN buckets b ON b.id = o.bucket JOIN runs r ON r.seq = v.run ORDER BY bucket, key, validFrom`,
    )
    .all();
  const latest = latestPage(cat, 'lake', '', true, null, 10_000).map((v) => `${v.key}:${v.deleteMarker ? 'deleted' : v.etag}`);
  return { runs: cat.listRuns().map((r) => `${r.id}:${r.status}`).sort(), versions, latest };
}

describe('catalog sync', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let h: Hosts;

  beforeEach(async () => {
    dir = tempDir('sync');
    const store = new FlakyFs({ root: join(dir.path, 'repo'), fsync: false });
    const repo = await initRepo(store, { packSize: 64 * 1024, chunker: SMALL_CHUNKER });
    const lake = new MemStore({ name: 'lake' });
    // The policy names the source `lake` (for forget's retention scopes); backups get the MemStore.
    const group: Group = { name: 'lake', sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }], retention: { keepLast: 1 } };
    const policy = testPolicy(store.location, [group]);
    h = {
      store,
      repo,
      lake,
      policy,
      group,
      a: Catalog.open(join(dir.path, 'a.db'), repo.id),
      b: Catalog.open(join(dir.path, 'b.db'), repo.id),
      backup: (catalog, sources = [source('lake', lake)]) => backupGroup({ repo, catalog, policy, group, sources }),
    };
  });
  afterEach(() => {
    vi.useRealTimers();
    h.a.close();
    h.b.close();
    dir.cleanup();
  });

  it("host B's empty catalog gets A's runs, then only what is new; nothing new costs four LIST requests (runs, forgets, acks, drills)", async () => {
    await h.lake.put('a.json', Buffer.from('{"a":1}'));
    await h.lake.put('b.json', Buffer.from('{"b":1}'));
    await h.backup(h.a);
    await h.lake.put('a.json', Buffer.from('{"a":2}'));
    await h.lake.delete('b.json');
    await h.backup(h.a);

    const first = await syncCatalog({ repo: h.repo, catalog: h.b });
    expect(first).toMatchObject({ full: true, runs: 2, damage: [], missingCount: 0 });
    expect(answers(h.b)).toEqual(answers(h.a));
    expect(answers(h.b).latest[1]).toBe('b.json:deleted');

    await h.lake.put('c.json', Buffer.from('{"c":1}'));
    const third = await h.backup(h.a);
    const next = await syncCatalog({ repo: h.repo, catalog: h.b });
    expect(next).toMatchObject({ full: false, runs: 1, runIds: [third.runId] });
    // Only the new manifest, its index file and its record blob were read.
    expect(next.requests.get).toBe(3);
    expect(answers(h.b)).toEqual(answers(h.a));

    const idle = await syncCatalog({ repo: h.repo, catalog: h.b });
    expect(idle).toMatchObject({ runs: 0, indexFiles: 0, forgets: 0, prunes: 0 });
    expect(idle.requests).toMatchObject({ list: 4, get: 0, head: 0, put: 0 });
    // Host A's own catalog knows its runs: its first sync imports nothing.
    expect((await syncCatalog({ repo: h.repo, catalog: h.a })).runs).toBe(0);
  });

  it('a long run that started before a short one and ended after it is not missed (the marker stays before live locks)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.UTC(2026, 11, 1, 8, 0, 0);
    vi.setSystemTime(t0);
    const slow = new SlowBucket({ name: 'slow' });
    await slow.put('big.bin', Buffer.from('written by the long run'));
    // Host A starts a run at t0 that lists for hours.
    const long = h.backup(h.a, [source('slow', slow)]);
    await slow.listed;

    // Three hours later host B backs up (a short run) and syncs: A's manifest does not exist yet.
    vi.setSystemTime(t0 + 3 * 3600_000);
    await h.lake.put('short.json', Buffer.from('{}'));
    const short = await h.backup(h.b);
    const during = await syncCatalog({ repo: h.repo, catalog: h.b });
    expect(during.runs).toBe(0);
    expect(syncMarker(h.b)! <= markerAt(t0)).toBe(true);

    // A's run ends, its manifest named by its start (before B's run).
    vi.setSystemTime(t0 + 4 * 3600_000);
    slow.release();
    const done = await long;
    expect(done.runId < short.runId).toBe(true);
    const after = await syncCatalog({ repo: h.repo, catalog: h.b });
    expect(after.runIds).toEqual([done.runId]);
    expect(h.b.listRuns().map((r) => r.id).sort()).toEqual([done.runId, short.runId].sort());
    expect(latestPage(h.b, 'slow', '', true, null, 10).map((v) => v.key)).toEqual(['big.bin']);
    // With no lock left, the marker moves on (an hour before now).
    expect(syncMarker(h.b)).toBe(markerAt(t0 + 3 * 3600_000));
  });

  it('a run whose process died, recorded later by the next backup, gets a new id and reaches other catalogs', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.UTC(2026, 11, 1, 8, 0, 0);
    vi.setSystemTime(t0);
    await h.lake.put('x.json', Buffer.from('{}'));
    await h.backup(h.a);
    // A backup on host A was killed at t0: its run stays "running" in A's catalog, with no manifest.
    const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    const orphan = newRunId(new Date(t0));
    h.a.beginRun({ id: orphan, group: 'lake', started: t0, host: hostname(), pid: dead });

    vi.setSystemTime(t0 + 3 * 3600_000);
    await syncCatalog({ repo: h.repo, catalog: h.b });
    const next = await h.backup(h.a);
    const recovered = h.a.listRuns().find((r) => r.status === 'interrupted')!;
    expect(recovered.started).toBe(t0);
    expect(recovered.id).not.toBe(orphan);
    expect(recovered.id > syncMarker(h.b)!).toBe(true);
    const after = await syncCatalog({ repo: h.repo, catalog: h.b });
    expect(after.runIds.sort()).toEqual([recovered.id, next.runId].sort());
    expect(answers(h.b)).toEqual(answers(h.a));
  });

  it("forget and prune on host A reach host B: dropped runs and versions go, nothing points at a deleted pack", async () => {
    await h.lake.put('a.json', Buffer.from('a'.repeat(40_000)));
    await h.lake.put('b.json', Buffer.from('b'.repeat(40_000)));
    await h.backup(h.a);
    await h.lake.put('a.json', Buffer.from('A'.repeat(40_000)));
    await h.backup(h.a);
    await h.lake.put('c.json', Buffer.from('c'.repeat(40_000)));
    await h.lake.delete('b.json');
    await h.backup(h.a);
    expect((await syncCatalog({ repo: h.repo, catalog: h.b })).runs).toBe(3);
    const packsBefore = h.b.packs().map((p) => p.name);

    const forgotten = await forget(h.repo, h.a, h.policy, { dryRun: false });
    expect(forgotten.forgotten.length).toBe(2);
    expect(forgotten.dropped.length).toBeGreaterThan(0);
    const pruned = await prune({ repo: h.repo, catalog: h.a, maxUnused: 0 });
    expect(pruned.packs.removed + pruned.packs.repacked).toBeGreaterThan(0);

    const report = await syncCatalog({ repo: h.repo, catalog: h.b });
    expect(report).toMatchObject({ runs: 0, forgets: forgotten.documents.length, prunes: 1, damage: [] });
    expect(answers(h.b)).toEqual(answers(h.a));
    expect(h.b.listRuns()).toHaveLength(1);
    // Every pack B's catalog knows exists; deleted ones are gone from it.
    for (const p of h.b.packs()) expect(existsSync(join(dir.path, 'repo', packKey(p.name))), p.name).toBe(true);
    expect(packsBefore.some((p) => !existsSync(join(dir.path, 'repo', packKey(p))))).toBe(true);
    // And every byte B would restore is readable and authentic.
    expect((await verify({ repo: h.repo, catalog: h.b, readData: 1, concurrency: 4 })).damage).toEqual([]);
  });

  it('a sync that fails half-way leaves nothing half-applied; the next one imports the run whole', async () => {
    for (let i = 0; i < 5; i++) await h.lake.put(`k${i}.json`, Buffer.from(`{"i":${i}}`));
    await h.backup(h.a);
    h.store.failPacks = true;
    await expect(syncCatalog({ repo: h.repo, catalog: h.b })).rejects.toThrow(/ECONNRESET/);
    expect(h.b.listRuns()).toEqual([]);
    expect(h.b.stats().versions).toBe(0);
    expect(syncMarker(h.b)).toBeNull();
    expect(importingRun(h.b)).toBeNull();

    // A process killed while importing leaves its mark: the next sync removes the part and imports it again.
    h.store.failPacks = false;
    await syncCatalog({ repo: h.repo, catalog: h.b });
    const id = h.b.listRuns()[0]!.id;
    setImportingRun(h.b, id);
    await syncCatalog({ repo: h.repo, catalog: h.b });
    expect(importingRun(h.b)).toBeNull();
    expect(answers(h.b)).toEqual(answers(h.a));
  });

  it('a run imported without part of its data (index file gone) is named by every later sync', async () => {
    await h.lake.put('x.json', Buffer.from('{}'));
    const run = await h.backup(h.a);
    for (const name of await h.repo.listNames('index')) rmSync(join(dir.path, 'repo', 'index', name));
    const warnings: string[] = [];
    const events = (e: EngineEvent) => e.type === 'warning' && warnings.push(e.message);
    await syncCatalog({ repo: h.repo, catalog: h.b, events });
    const said = new RegExp(`^run ${run.runId} is incomplete in this catalog \\(0 object versions whose blobs are in no index file, 1 unreadable record blobs\\); run \`lakeguard verify\`, then \`lakeguard catalog rebuild\`$`);
    expect(warnings.filter((w) => said.test(w))).toHaveLength(1);
    warnings.length = 0;
    const idle = await syncCatalog({ repo: h.repo, catalog: h.b, events });
    expect(idle.requests.list).toBe(4);
    expect(warnings.filter((w) => said.test(w))).toHaveLength(1);
    // The verify the warning sends the operator to says so too (exit 1), not "no damage found".
    const checked = await verify({ repo: h.repo, catalog: h.b, readData: 0, concurrency: 4 });
    expect(checked.damage.filter((d) => d.what === 'catalog' && d.problem.startsWith(`run ${run.runId} was imported incomplete`))).toHaveLength(1);
  });

  it('a document that fails authentication is named with the next step, by the warning and by catalog sync\'s report', async () => {
    await h.lake.put('x.json', Buffer.from('{}'));
    await h.backup(h.a);
    await h.lake.put('y.json', Buffer.from('{}'));
    const run = await h.backup(h.a);
    flipByte(join(dir.path, 'repo', 'runs', run.runId), 40);
    const warnings: string[] = [];
    const report = await syncCatalog({ repo: h.repo, catalog: h.b, events: (e) => e.type === 'warning' && warnings.push(e.message) });
    expect(report.damage.map((d) => d.what)).toEqual([`runs/${run.runId}`]);
    expect(warnings.filter((w) => w.startsWith(`runs/${run.runId}: `))).toEqual([expect.stringMatching(/; the run is left out; run `lakeguard verify` to name every damaged object$/)]);
    expect(describeSync(report, 'b.db', h.repo.location).split('\n').at(-1)).toBe('the repository is damaged; run `lakeguard verify` to name every damaged object');
  });

  it('two connections syncing one catalog file at once import each run once', async () => {
    await h.lake.put('x.json', Buffer.from('{}'));
    await h.backup(h.a);
    await h.lake.put('y.json', Buffer.from('{}'));
    await h.backup(h.a);
    const b2 = Catalog.open(join(dir.path, 'b.db'), h.repo.id);
    try {
      const [one, two] = await Promise.all([syncCatalog({ repo: h.repo, catalog: h.b }), syncCatalog({ repo: h.repo, catalog: b2 })]);
      expect(one.runs + two.runs).toBe(2);
      expect(answers(h.b)).toEqual(answers(h.a));
    } finally {
      b2.close();
    }
  });
});
