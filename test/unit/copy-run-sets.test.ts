// copy of a run set whose index has two complete attempts: the superseded one (the catalog holds
// none of its versions) is not copied, so its empty copy, named at copy time, can never sort
// before the copy of the attempt that counts and supersede it in another host's catalog.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { recordRunShard, runSetsOf } from '../../src/catalog/run-sets.js';
import type { RunShard, VersionRecord } from '../../src/catalog/types.js';
import { copyRuns } from '../../src/engine/copy.js';
import { copySourceOf } from '../../src/catalog/copied-runs.js';
import { showRunSet } from '../../src/commands/runs-sets.js';
import { forget } from '../../src/engine/forget.js';
import { emptyCounters } from '../../src/engine/events.js';
import { finalizeRun } from '../../src/engine/finalize.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { Packer, packRecord } from '../../src/repository/packer.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { initRepo, tempDir, testPolicy } from '../helpers/fixtures.js';

const T0 = Date.UTC(2026, 11, 1, 2);
const SHARD: RunShard = { set: '20261201T020000Z-000000', name: 'nightly', index: 0, of: 1, range: {} };

async function attempt(repo: Repository, catalog: Catalog, id: string, started: number, keys: string[]): Promise<void> {
  const seq = catalog.beginRun({ id, group: 'g', started, host: 'h1' });
  catalog.transaction(() => recordRunShard(catalog, seq, SHARD));
  const versions: VersionRecord[] = keys.map((key) => ({ bucket: 'lake', key, versionId: null, deleteMarker: false, size: 0, etag: key, lastModified: T0, validFrom: T0, blobs: [] }));
  catalog.transaction(() => catalog.insertVersions(seq, versions));
  const packer = new Packer(repo, { onPackWritten: (pack) => catalog.transaction(() => catalog.insertPack(packRecord(pack), seq)) });
  await finalizeRun(repo, catalog, packer, { ...catalog.findRun(id)!, shard: SHARD }, 'complete', emptyCounters(), () => {});
}

describe('copy of a run set', () => {
  let dir: ReturnType<typeof tempDir>;
  const open: Catalog[] = [];
  beforeEach(() => {
    dir = tempDir('copy-run-sets');
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
    dir.cleanup();
  });

  it('copies the complete attempt that counts, not a superseded one; another host of the target sees the run set whole', async () => {
    const source = await initRepo(new FsStore({ root: join(dir.path, 'source'), fsync: false }));
    const target = await initRepo(new FsStore({ root: join(dir.path, 'target'), fsync: false }), { password: 'another-password' });
    const sc = Catalog.open(join(dir.path, 's.db'), source.id);
    const tc = Catalog.open(join(dir.path, 't.db'), target.id);
    open.push(sc, tc);
    // Two attempts of index 0 started in the same second: the one whose id sorts first counts;
    // the other (started 5 ms earlier, so copied first) holds no versions in the catalog.
    await attempt(source, sc, '20261201T020001Z-bbbbbb', T0 + 1000, []);
    await attempt(source, sc, '20261201T020001Z-aaaaaa', T0 + 1005, ['p/a', 'p/b']);

    const report = await copyRuns({ source: { repo: source, catalog: sc }, target: { repo: target, catalog: tc } });
    expect(report.copied.map((c) => [c.source, c.versions])).toEqual([['20261201T020001Z-aaaaaa', 2]]);
    expect(report.superseded).toBe(1);
    expect((await copyRuns({ source: { repo: source, catalog: sc }, target: { repo: target, catalog: tc } })).copied).toEqual([]);

    const other = Catalog.open(join(dir.path, 'other.db'), target.id);
    open.push(other);
    await syncCatalog({ repo: target, catalog: other });
    for (const cat of [tc, other]) {
      const [set] = runSetsOf(cat);
      expect([set!.id, set!.status, set!.attempts.length]).toEqual([SHARD.set, 'complete', 1]);
      expect(cat.versionsOfRun(set!.attempts[0]!.run.seq, 0, 10).map((v) => v.key)).toEqual(['p/a', 'p/b']);
    }
  });
  it('a superseded attempt that ended last: the run set ends when its counted attempts do, in the source and in the target, with the same counters', async () => {
    const source = await initRepo(new FsStore({ root: join(dir.path, 'source'), fsync: false }));
    const target = await initRepo(new FsStore({ root: join(dir.path, 'target'), fsync: false }), { password: 'another-password' });
    const sc = Catalog.open(join(dir.path, 's.db'), source.id);
    const tc = Catalog.open(join(dir.path, 't.db'), target.id);
    open.push(sc, tc);
    // The attempt that counts ends at 03:00; an engine's retry of it (superseded) at 05:00.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(T0 + 3_600_000);
      await attempt(source, sc, '20261201T020001Z-aaaaaa', T0 + 1000, ['p/a']);
      vi.setSystemTime(T0 + 3 * 3_600_000);
      await attempt(source, sc, '20261201T020002Z-bbbbbb', T0 + 2000, ['p/a']);
    } finally {
      vi.useRealTimers();
    }
    await syncCatalog({ repo: source, catalog: sc });
    await copyRuns({ source: { repo: source, catalog: sc }, target: { repo: target, catalog: tc } });
    const [from] = runSetsOf(sc);
    const [to] = runSetsOf(tc);
    expect(from!.finished).toBe(T0 + 3_600_000);
    expect([to!.status, to!.finished, to!.counters]).toEqual([from!.status, from!.finished, from!.counters]);
  });
  it('forget in the target of a copied run set deletes no plan (copy carries none) and says none was deleted', async () => {
    const source = await initRepo(new FsStore({ root: join(dir.path, 'source'), fsync: false }));
    const target = await initRepo(new FsStore({ root: join(dir.path, 'target'), fsync: false }), { password: 'another-password' });
    const sc = Catalog.open(join(dir.path, 's.db'), source.id);
    const tc = Catalog.open(join(dir.path, 't.db'), target.id);
    open.push(sc, tc);
    await attempt(source, sc, '20261201T020001Z-aaaaaa', T0 + 1000, ['p/a']);
    const later = { ...SHARD, set: '20261202T020000Z-000000', name: 'nightly-2' };
    const seq = sc.beginRun({ id: '20261202T020001Z-cccccc', group: 'g', started: T0 + 86_400_000, host: 'h1' });
    sc.transaction(() => recordRunShard(sc, seq, later));
    const packer = new Packer(source, { onPackWritten: (pack) => sc.transaction(() => sc.insertPack(packRecord(pack), seq)) });
    await finalizeRun(source, sc, packer, { ...sc.findRun('20261202T020001Z-cccccc')!, shard: later }, 'complete', emptyCounters(), () => {});
    await copyRuns({ source: { repo: source, catalog: sc }, target: { repo: target, catalog: tc } });
    const group = { name: 'g', sources: [{ kind: 'path' as const, path: '/x/lake', prefixes: [''], exclude: [] }], retention: { keepLast: 1 } };
    const done = await forget(target, tc, testPolicy(target.location, [group]), { dryRun: false });
    expect(done.forgotten).toHaveLength(1);
    expect(done.plansDeleted).toEqual([]);
    expect(await target.listNames('runsets')).toEqual([]);
  });
  it('a run set copied in part reads running in the target, and runs show says to copy again, not to back up its shards there', async () => {
    const source = await initRepo(new FsStore({ root: join(dir.path, 'source'), fsync: false }));
    const target = await initRepo(new FsStore({ root: join(dir.path, 'target'), fsync: false }), { password: 'another-password' });
    const sc = Catalog.open(join(dir.path, 's.db'), source.id);
    const tc = Catalog.open(join(dir.path, 't.db'), target.id);
    open.push(sc, tc);
    // Index 0 of 2 has finished in the source; index 1 has not yet.
    const two = { ...SHARD, of: 2 };
    const seq = sc.beginRun({ id: '20261201T020001Z-aaaaaa', group: 'g', started: T0 + 1000, host: 'h1' });
    sc.transaction(() => recordRunShard(sc, seq, two));
    const packer = new Packer(source, { onPackWritten: (pack) => sc.transaction(() => sc.insertPack(packRecord(pack), seq)) });
    await finalizeRun(source, sc, packer, { ...sc.findRun('20261201T020001Z-aaaaaa')!, shard: two }, 'complete', emptyCounters(), () => {});
    await copyRuns({ source: { repo: source, catalog: sc }, target: { repo: target, catalog: tc } });
    const [set] = runSetsOf(tc);
    expect([set!.status, set!.missing]).toEqual(['running', [1]]);
    const lines: string[] = [];
    showRunSet(set!, { json: false, info: (text: string) => lines.push(text) } as never, () => null, {}, false, T0, copySourceOf(tc, set!.attempts.map((a) => a.run.id)));
    expect(lines.at(-1)).toBe(`\nmissing: 1 shard (1) without a finished attempt in this repository; its attempts are copies from repository ${source.id}: run \`lakeguard copy\` again once they have finished there`);
    expect(lines.join('\n')).not.toContain('lakeguard backup');
  });
});
