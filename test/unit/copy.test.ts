// copy between two directory repositories (each with its own password): the target alone (a fresh
// catalog synced from it) restores every copied run byte-identically and verifies; a re-run copies
// nothing; --since selects; an interrupted or killed copy leaves nothing but packs, and a re-run
// completes it.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { copiedRunIds } from '../../src/catalog/copied-runs.js';
import { applyForgetDocument } from '../../src/catalog/forget.js';
import { parseAt } from '../../src/catalog/instant.js';
import { backupGroup } from '../../src/engine/backup.js';
import { copyRuns, type CopyOptions } from '../../src/engine/copy.js';
import { forget } from '../../src/engine/forget.js';
import type { RunManifest } from '../../src/engine/finalize.js';
import { restore } from '../../src/engine/restore.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { verify } from '../../src/engine/verify.js';
import type { Group } from '../../src/policy/types.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import type { PutOptions, PutResult } from '../../src/storage/types.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { hashTree, initRepo, prng, tempDir, testPolicy } from '../helpers/fixtures.js';

const group: Group = { name: 'lake', sources: [] };

describe('copy', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: Repository;
  let target: Repository;
  let sourceCatalog: Catalog;
  let targetCatalog: Catalog;
  let clock: number;
  let bucket: MemStore;
  const random = prng(23);

  beforeEach(async () => {
    dir = tempDir('copy');
    // Small packs, so a run spans several and an interruption can fall between them.
    source = await initRepo(new FsStore({ root: join(dir.path, 'source'), fsync: false }), { packSize: 64 * 1024 });
    target = await initRepo(new FsStore({ root: join(dir.path, 'target'), fsync: false }), { password: 'another-password', packSize: 64 * 1024 });
    sourceCatalog = Catalog.open(join(dir.path, 'source.db'), source.id);
    targetCatalog = Catalog.open(join(dir.path, 'target.db'), target.id);
    clock = Date.parse('2026-11-20T10:00:00Z');
    bucket = new MemStore({ versioning: true, now: () => new Date(clock), name: 'lake' });
  });
  afterEach(() => {
    sourceCatalog.close();
    targetCatalog.close();
    dir.cleanup();
  });

  const backup = async (): Promise<string> => {
    const sources = [{ bucket: 'lake', objectStore: bucket, prefixes: [''], isExcluded: () => false }];
    return (await backupGroup({ repo: source, catalog: sourceCatalog, policy: testPolicy(source.location, [group]), group, sources })).runId;
  };
  const put = async (key: string, body: Buffer | string): Promise<void> => {
    clock += 60_000;
    await bucket.put(key, Buffer.from(body));
  };
  const copy = (more: Partial<CopyOptions> = {}) => copyRuns({ source: { repo: source, catalog: sourceCatalog }, target: { repo: target, catalog: targetCatalog }, ...more });

  /** Three runs: new objects, an overwrite and a deletion, content shared between keys. */
  async function history(): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) await put(`data/part-${i}.bin`, random(8000 + i));
    await put('same-a.txt', 'same content');
    await put('same-b.txt', 'same content');
    ids.push(await backup());
    await put('data/part-3.bin', random(70_000));
    await bucket.delete('same-b.txt');
    ids.push(await backup());
    await put('late.txt', 'arrived late');
    ids.push(await backup());
    return ids;
  }

  /** The state of the lake at a run, restored from `repo` with `catalog`. */
  async function restoreAt(repo: Repository, catalog: Catalog, runId: string, name: string): Promise<Record<string, string>> {
    const run = catalog.findRun(runId)!;
    const out = join(dir.path, name);
    await restore({ repo, catalog, scopes: [{ bucket: 'lake' }], cut: { runSeq: run.seq }, target: new FsStore({ root: out, fsync: false }), bucketDirs: false, concurrency: 4 });
    return Object.fromEntries(hashTree(out));
  }

  /** The target as a fresh host sees it: opened with its own password, a new catalog synced from it alone. */
  async function targetAlone(): Promise<{ repo: Repository; catalog: Catalog }> {
    const repo = await Repository.open(new FsStore({ root: join(dir.path, 'target'), fsync: false }), { password: async () => 'another-password' });
    const catalog = Catalog.open(join(dir.path, `fresh-${Math.random()}.db`), repo.id);
    await syncCatalog({ repo, catalog });
    return { repo, catalog };
  }

  /** The copy of each source run in `catalog`, by the source run id (from the manifests' copiedFrom). */
  async function copiesIn(repo: Repository, catalog: Catalog): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const r of catalog.listRuns()) {
      const m = await repo.readDocument<RunManifest>('runs', r.id);
      expect(m.copiedFrom?.repository).toBe(source.id);
      out.set(m.copiedFrom!.run, r.id);
    }
    return out;
  }

  it('copies every run; the target alone restores each byte-identically and verifies; a re-run copies nothing', async () => {
    const ids = await history();
    const report = await copy();
    expect(report.copied.map((c) => c.source)).toEqual(ids);
    expect(report.copied.map((c) => c.versions)).toEqual([22, 2, 1]);
    // same-a and same-b share one blob; the re-encoded content is deduplicated in the target too.
    expect(report.copied[0]!.blobsDeduplicated).toBeGreaterThanOrEqual(1);
    expect(report.packsWritten).toBeGreaterThan(3);

    const alone = await targetAlone();
    const copies = await copiesIn(alone.repo, alone.catalog);
    expect([...copies.keys()]).toEqual(ids);
    for (const [i, id] of ids.entries()) {
      const fromSource = await restoreAt(source, sourceCatalog, id, `source-${i}`);
      const fromTarget = await restoreAt(alone.repo, alone.catalog, copies.get(id)!, `target-${i}`);
      expect(Object.keys(fromTarget).length).toBe(i === 0 ? 22 : i === 1 ? 21 : 22);
      expect(fromTarget).toEqual(fromSource);
      const sourceRun = sourceCatalog.findRun(id)!;
      const copied = alone.catalog.findRun(copies.get(id)!)!;
      expect([copied.started, copied.finished, copied.status, copied.host, copied.group]).toEqual([sourceRun.started, sourceRun.finished, sourceRun.status, sourceRun.host, sourceRun.group]);
    }
    const checked = await verify({ repo: alone.repo, catalog: alone.catalog, readData: 1, concurrency: 4 });
    expect(checked.damage).toEqual([]);
    expect(checked.unreferencedPacks.count).toBe(0);
    alone.catalog.close();

    const again = await copy();
    expect(again.copied).toEqual([]);
    expect(again.alreadyCopied).toBe(3);
    expect((await target.listNames('runs')).length).toBe(3);

    // A responder on the target gives a run id of the source (from an alert, the source's `runs`): named, with its copy.
    const fresh = await targetAlone();
    expect(() => parseAt(ids[1]!, fresh.catalog)).toThrow(`"${ids[1]}" is a run of repository ${source.id}; lakeguard copy brought it here as run ${copies.get(ids[1]!)}`);
    fresh.catalog.close();
  });

  it('--since copies only runs started at or after it; --dry-run writes nothing', async () => {
    const ids = await history();
    const since = sourceCatalog.findRun(ids[1]!)!.started;
    const dry = await copy({ since, dryRun: true });
    expect(dry.copied.map((c) => [c.source, c.versions])).toEqual([
      [ids[1], 2],
      [ids[2], 1],
    ]);
    expect(await target.listNames('runs')).toEqual([]);
    expect(await target.listNames('packs')).toEqual([]);
    const report = await copy({ since });
    expect(report.copied.map((c) => c.source)).toEqual([ids[1], ids[2]]);
    // The later runs alone hold only their own versions; the first run follows when asked.
    const rest = await copy();
    expect(rest.copied.map((c) => c.source)).toEqual([ids[0]]);
    expect(rest.alreadyCopied).toBe(2);
    const alone = await targetAlone();
    const copies = await copiesIn(alone.repo, alone.catalog);
    expect(await restoreAt(alone.repo, alone.catalog, copies.get(ids[2]!)!, 'out-target')).toEqual(await restoreAt(source, sourceCatalog, ids[2]!, 'out-source'));
    alone.catalog.close();
  });

  it('an interrupted copy records nothing but packs; a re-run completes it', async () => {
    const ids = await history();
    const abort = new AbortController();
    // Interrupted inside the first run, once two of its packs are written (of about three).
    let packPuts = 0;
    class AbortAfterTwoPacks extends StoreDecorator {
      override async put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult> {
        const result = await this.inner.put(key, body, opts);
        if (key.startsWith('packs/') && ++packPuts === 2) abort.abort();
        return result;
      }
    }
    const watched = await Repository.open(new AbortAfterTwoPacks(new FsStore({ root: join(dir.path, 'target'), fsync: false })), { password: async () => 'another-password' });
    await expect(copyRuns({ source: { repo: source, catalog: sourceCatalog }, target: { repo: watched, catalog: targetCatalog }, signal: abort.signal })).rejects.toThrow(/interrupted/);
    expect(targetCatalog.listRuns()).toEqual([]);
    expect(await target.listNames('runs')).toEqual([]);
    const partialPacks = targetCatalog.packs().length;
    expect(partialPacks).toBeGreaterThanOrEqual(2);

    const report = await copy();
    expect(report.copied.map((c) => c.source)).toEqual(ids);
    // What the interrupted copy stored is deduplicated, not written again.
    expect(report.copied[0]!.blobsDeduplicated).toBeGreaterThan(1);
    const alone = await targetAlone();
    const copies = await copiesIn(alone.repo, alone.catalog);
    expect(await restoreAt(alone.repo, alone.catalog, copies.get(ids[0]!)!, 'out-target')).toEqual(await restoreAt(source, sourceCatalog, ids[0]!, 'out-source'));
    alone.catalog.close();
  });

  it('a copy whose process was killed mid-run is discarded and copied again', async () => {
    const ids = await history();
    const first = sourceCatalog.findRun(ids[0]!)!;
    // What a killed copy leaves in the target's catalog: the run "running", begun by a dead process.
    const dead = 2 ** 22 + 17;
    targetCatalog.beginRun({ id: '20261120T100000Z-dead01', group: first.group, started: first.started, host: first.host ?? hostname(), pid: dead });
    const report = await copy();
    expect(report.copied.map((c) => c.source)).toEqual(ids);
    expect(targetCatalog.findRun('20261120T100000Z-dead01')).toBeUndefined();
    expect(targetCatalog.listRuns().map((r) => r.status)).toEqual(['complete', 'complete', 'complete']);

    // One that a live process is copying is left to it.
    sqlite(targetCatalog).prepare("UPDATE runs SET status = 'running', pid = ? WHERE seq = (SELECT max(seq) FROM runs)").run(process.pid);
    sqlite(targetCatalog).prepare('DELETE FROM copied_runs WHERE source_run = ?').run(ids[2]);
    const busy = await copy();
    expect(busy.busy).toEqual([ids[2]]);
    expect(busy.copied).toEqual([]);
  });

  it('a copy forgotten in the target is not copied again; a catalog synced from the target knows the copies', async () => {
    const ids = await history();
    await copy();
    const firstCopy = targetCatalog.listRuns()[0]!.id;
    // What a forget in the target does to its catalog (sync applies the same document).
    applyForgetDocument(targetCatalog, '20261206T000000Z-f0f0f0-0000', {
      version: 1, id: '20261206T000000Z-f0f0f0', part: 0, parts: 1, created: new Date().toISOString(), host: 'h', forgotten: [firstCopy], dropped: [],
    });
    expect(targetCatalog.findRun(firstCopy)).toBeUndefined();
    const again = await copy();
    expect(again.copied).toEqual([]);
    expect(again.alreadyCopied).toBe(3);
    const alone = await targetAlone();
    expect([...copiedRunIds(alone.catalog, source.id)].sort()).toEqual([...ids].sort());
    alone.catalog.close();
  });

  it("the target's own forget: a fresh host of the target (its manifests deleted) copies none of the forgotten runs again", async () => {
    const ids = await history();
    // A fourth run rewrites every key: the first three hold nothing it needs, so forget deletes their manifests.
    for (const key of [...Array.from({ length: 20 }, (_, i) => `data/part-${i}.bin`), 'same-a.txt', 'same-b.txt', 'late.txt']) await put(key, `rewritten ${key}`);
    // (not judged: a rewrite of every key would be a suspect run, and forget keeps the run before it)
    const quiet: Group = { ...group, anomaly: { enabled: false } };
    const sources = [{ bucket: 'lake', objectStore: bucket, prefixes: [''], isExcluded: () => false }];
    ids.push((await backupGroup({ repo: source, catalog: sourceCatalog, policy: testPolicy(source.location, [quiet]), group: quiet, sources })).runId);
    await copy();
    const kept: Group = { ...group, sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }], retention: { keepLast: 1 } };
    const forgot = await forget(target, targetCatalog, testPolicy(target.location, [kept]), { dryRun: false });
    expect(forgot.forgotten).toHaveLength(3);
    expect(forgot.manifestsDeleted).toHaveLength(3);
    const alone = await targetAlone();
    const warnings: string[] = [];
    const again = await copyRuns({ source: { repo: source, catalog: sourceCatalog }, target: alone, events: (e) => e.type === 'warning' && warnings.push(e.message) });
    expect([again.copied.length, again.alreadyCopied]).toEqual([0, 4]);
    expect(warnings).toEqual([]);
    expect([...copiedRunIds(alone.catalog, source.id)].sort()).toEqual([...ids].sort());
    alone.catalog.close();
  });

  it('refuses to copy a run the source catalog holds only in part (an index file damaged), then copies it whole once repaired', async () => {
    const ids = await history();
    // The first run's index files altered: a fresh host's sync cannot read that run's records.
    const { indexes } = await source.readDocument<RunManifest>('runs', ids[0]!);
    const good = new Map(indexes.map((name) => [name, readFileSync(join(dir.path, 'source', 'index', name))]));
    for (const [name, bytes] of good) {
      const bad = Buffer.from(bytes);
      bad[bad.length - 1]! ^= 1;
      writeFileSync(join(dir.path, 'source', 'index', name), bad);
    }
    const partial = Catalog.open(join(dir.path, 'partial.db'), source.id);
    try {
      await syncCatalog({ repo: source, catalog: partial, events: () => {} });
      for (const dryRun of [true, false]) {
        await expect(copyRuns({ source: { repo: source, catalog: partial }, target: { repo: target, catalog: targetCatalog }, dryRun })).rejects.toThrow(
          new RegExp(`holds run ${ids[0]!} only in part \\(a sync could not read all of it\\); its copy would lack those versions for good$`),
        );
      }
    } finally {
      partial.close();
    }
    expect(targetCatalog.listRuns()).toEqual([]);

    for (const [name, bytes] of good) writeFileSync(join(dir.path, 'source', 'index', name), bytes);
    const report = await copy();
    expect(report.copied.map((c) => c.source)).toEqual(ids);
    const alone = await targetAlone();
    const copies = await copiesIn(alone.repo, alone.catalog);
    expect(await restoreAt(alone.repo, alone.catalog, copies.get(ids[0]!)!, 'copied-first')).toEqual(await restoreAt(source, sourceCatalog, ids[0]!, 'source-first'));
    alone.catalog.close();
  });

  it('refuses to copy a repository into itself', async () => {
    await history();
    await expect(copyRuns({ source: { repo: source, catalog: sourceCatalog }, target: { repo: source, catalog: sourceCatalog } })).rejects.toThrow(/same repository/);
  });
});


