// Run sets on the read side: shard manifests written by independent attempts (each on its own
// empty catalog) are imported by sync and rebuild as one run set per group, with supersession of
// duplicate attempts and a sync marker that cannot skip a late shard.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lastCleanRun, recordRunAnomalies } from '../../src/catalog/anomalies.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { parseAt } from '../../src/catalog/instant.js';
import { CatalogQueries } from '../../src/catalog/queries.js';
import { selectState, statePage } from '../../src/catalog/restore-selection.js';
import { completeShardAttempt, isShardComplete, missingShardIndexes, runSet, runSetCut, runSetsOf } from '../../src/catalog/run-sets.js';
import { syncMarker } from '../../src/catalog/sync.js';
import { newRunId } from '../../src/engine/run-id.js';
import { rebuildCatalog } from '../../src/engine/rebuild.js';
import { markerAt, syncCatalog } from '../../src/engine/sync.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { initRepo, tempDir } from '../helpers/fixtures.js';
import { writeShardAttempt, type ShardObject } from '../helpers/shards.js';

const HOUR = 3_600_000;
const keys = (prefix: string, n: number, body = 'v1'): ShardObject[] =>
  Array.from({ length: n }, (_, i) => ({ bucket: 'lake', key: `${prefix}/${i}.json`, body: `${prefix}${i}:${body}` }));
const RANGES = [{ upTo: ['lake', 'g'] }, { after: ['lake', 'g'], upTo: ['lake', 'n'] }, { after: ['lake', 'n'], upTo: ['lake', 't'] }, { after: ['lake', 't'] }] as const;
const PREFIX = ['c', 'h', 'p', 'w'];

/** key -> number of versions the catalog holds of it. */
function versionsPerKey(cat: Catalog): Map<string, number> {
  const rows = sqlite(cat).prepare('SELECT o.key AS key, count(*) AS n FROM versions v JOIN objects o ON o.id = v.object GROUP BY o.key').all() as { key: string; n: number }[];
  return new Map(rows.map((r) => [r.key, r.n]));
}

describe('run sets: import', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  const catalogs: Catalog[] = [];
  const open = (name: string): Catalog => {
    const c = Catalog.open(join(dir.path, `${name}.db`), repo.id);
    catalogs.push(c);
    return c;
  };
  beforeEach(async () => {
    dir = tempDir('run-sets');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
  });
  afterEach(() => {
    for (const c of catalogs.splice(0)) c.close();
    dir.cleanup();
  });

  const shard = (set: string, index: number, started: number, extra: Partial<Parameters<typeof writeShardAttempt>[1]> = {}) =>
    writeShardAttempt(repo, {
      group: 'lake',
      set,
      name: 'nightly',
      index,
      of: 4,
      range: { ...RANGES[index] } as never,
      started,
      objects: keys(PREFIX[index]!, 5),
      ...extra,
    });

  it('a fresh host sees one run set: running with its missing index, then complete; rebuild agrees', async () => {
    const planned = Date.now() - 2 * HOUR;
    const set = newRunId(new Date(planned));
    const ids = [];
    for (const i of [0, 1, 2]) ids.push((await shard(set, i, planned + i * 1000)).id);
    const host = open('fresh');
    await syncCatalog({ repo, catalog: host });

    const [first] = runSetsOf(host);
    expect(runSetsOf(host)).toHaveLength(1);
    expect(first).toMatchObject({ id: set, name: 'nightly', group: 'lake', of: 4, status: 'running', complete: 3, missing: [3], finished: null });
    expect(first!.attempts.map((a) => [a.index, a.run.id, a.superseded, a.counts])).toEqual(ids.map((id, i) => [i, id, false, true]));
    expect(first!.counters).toMatchObject({ objectsSeen: 15, objectsNew: 15 });
    expect(missingShardIndexes(host, set)).toEqual([3]);
    expect(completeShardAttempt(host, set, 1)).toBe(ids[1]);
    expect(isShardComplete(host, set, 3)).toBe(false);
    // Each attempt is still a run of its own, with its membership.
    expect(host.findRun(ids[2]!)?.shard).toEqual({ set, name: 'nightly', index: 2, of: 4, range: RANGES[2] });
    // Its run-set name, which the operator gave (--run-set), names it too while only it bears it.
    expect(parseAt('nightly', host)).toEqual(runSetCut(host, first!));

    await shard(set, 3, Date.now());
    await syncCatalog({ repo, catalog: host });
    expect(runSet(host, set)).toMatchObject({ status: 'complete', complete: 4, missing: [] });
    expect(runSet(host, set)!.finished).toBeGreaterThan(0);
    expect(host.stats().versions).toBe(20);

    const rebuilt = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'rebuilt.db') });
    expect(rebuilt.damage).toEqual([]);
    const again = open('rebuilt');
    const strip = (c: Catalog) => runSetsOf(c).map((s) => ({ ...s, firstSeq: 0, lastSeq: 0, attempts: s.attempts.map((a) => [a.index, a.run.id, a.counts]) }));
    expect(strip(again)).toEqual(strip(host));
  });

  it('of two complete attempts of an index the id that sorts first counts, whatever order they arrive in; an interrupted attempt is kept', async () => {
    // Within the last minute: the attempt that lands last is named after the marker of the sync
    // before it, as its lock would have made sure.
    const planned = Date.now() - 60_000;
    const set = newRunId(new Date(planned));
    const time = newRunId(new Date(planned + 5000)).slice(0, 16);
    await shard(set, 0, planned);
    await shard(set, 3, planned);
    // Index 2: interrupted after 2 keys, then re-run for the other 3 (it had the first two after sync).
    const objects2 = keys('p', 5);
    await shard(set, 2, planned, { status: 'interrupted', objects: objects2.slice(0, 2) });
    await shard(set, 2, planned + 30_000, { objects: objects2.slice(2) });
    // Index 1: the engine started it twice (a pod it believed dead): the later-sorting one lands first.
    await shard(set, 1, planned + 5000, { id: `${time}-ffffff` });
    const host = open('host');
    await syncCatalog({ repo, catalog: host });
    expect(runSet(host, set)).toMatchObject({ status: 'complete', complete: 4 });
    expect(versionsPerKey(host).get('h/0.json')).toBe(1);
    // Scoped catalogs (docs/catalog.md "Scoped catalogs") of the keys of indexes 1 and 2: one
    // learns the attempt that sorts first after the other, one learns both at once.
    const scope = [{ bucket: 'lake', prefix: 'h/' }, { bucket: 'lake', prefix: 'p/' }];
    const early = open('scoped-early');
    await syncCatalog({ repo, catalog: early, widen: scope });

    await shard(set, 1, planned + 5000, { id: `${time}-aaaaaa` });
    await syncCatalog({ repo, catalog: host });
    await syncCatalog({ repo, catalog: early });
    const late = open('scoped-late');
    await syncCatalog({ repo, catalog: late, widen: scope });
    const attempts = (cat: Catalog) => runSetsOf(cat).map((s) => ({ ...s, firstSeq: 0, lastSeq: 0, attempts: s.attempts.map((a) => `${a.index} ${a.run.id} ${a.counts} ${a.superseded}`).sort() }));
    for (const cat of [early, late]) {
      // The run set once, as on the whole catalog; its keys once each, none of the superseded attempt's.
      expect(attempts(cat)).toEqual(attempts(host));
      expect([...versionsPerKey(cat)]).toEqual([...versionsPerKey(host)].filter(([key]) => key.startsWith('h/') || key.startsWith('p/')));
      expect(versionsPerKey(cat).size).toBe(10);
    }
    const rebuilt = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'rebuilt.db') });
    expect(rebuilt.damage).toEqual([]);
    for (const cat of [host, open('rebuilt')]) {
      const s = runSet(cat, set)!;
      expect(s.status).toBe('complete');
      const one = s.attempts.filter((a) => a.index === 1).sort((a, b) => (a.run.id < b.run.id ? -1 : 1));
      expect(one.map((a) => [a.run.id, a.superseded, a.counts])).toEqual([
        [`${time}-aaaaaa`, false, true],
        [`${time}-ffffff`, true, false],
      ]);
      expect(completeShardAttempt(cat, set, 1)).toBe(`${time}-aaaaaa`);
      // No duplicate versions: every key once, the superseded attempt's versions not in the catalog.
      const per = versionsPerKey(cat);
      expect(per.size).toBe(20);
      expect([...per.values()].every((n) => n === 1)).toBe(true);
      const ff = cat.findRun(`${time}-ffffff`)!;
      expect(cat.versionsOfRun(ff.seq, 0, 10)).toEqual([]);
      // Index 2: the interrupted attempt is superseded but counts (its 2 versions are real captures).
      expect(s.attempts.filter((a) => a.index === 2).map((a) => [a.run.status, a.superseded, a.counts])).toEqual([
        ['interrupted', true, true],
        ['complete', false, true],
      ]);
      expect(s.counters).toMatchObject({ objectsNew: 20 });
    }
  });

  it('a late shard is found by a host that synced in between, even one named before the locks of that sync', async () => {
    const now = Date.now();
    const planned = now - 3 * HOUR;
    const set = newRunId(new Date(planned));
    for (const i of [0, 1]) await shard(set, i, planned + i * 1000);
    const host = open('host');
    await syncCatalog({ repo, catalog: host });
    // No lock is left, so the lock rule alone would put the marker at now - 1 h; the running run
    // set holds it an hour before its id.
    expect(syncMarker(host)! <= markerAt(planned - HOUR)).toBe(true);

    // Shard 2 started hours after the plan (the engine queued it): named after the marker anyway.
    await shard(set, 2, now);
    // Shard 3 chose its id when the plan was made, and only now wrote its manifest (a suspended
    // VM, an attempt that waited for its lock): named before every lock-based marker since.
    await shard(set, 3, planned + 2000);
    await syncCatalog({ repo, catalog: host });
    expect(runSet(host, set)).toMatchObject({ status: 'complete', missing: [] });
    expect(host.stats().versions).toBe(20);
    // Complete: the marker moves on as for ordinary runs.
    expect(syncMarker(host)! >= markerAt(now - HOUR - 60_000)).toBe(true);
  });

  it("a run set's id is one instant: its shards' state, not a run numbered between them", async () => {
    const planned = Date.now() - 60_000;
    const monday = newRunId(new Date(planned));
    const tuesday = newRunId(new Date(planned + 20_000));
    await shard(monday, 0, planned, { of: 2, range: { upTo: ['lake', 'g'] } });
    // The next run set's shard 0 lands before Monday's late shard 1: it is numbered between them,
    // and Tuesday's instant still holds Monday's late shard (it started before Tuesday's).
    await shard(tuesday, 0, planned + 20_000, { of: 2, range: { upTo: ['lake', 'g'] }, objects: keys('c', 5, 'v2-longer') });
    const host = open('host');
    await syncCatalog({ repo, catalog: host });
    await shard(monday, 1, planned + 1000, { of: 2, range: { after: ['lake', 'g'] } });
    await syncCatalog({ repo, catalog: host });
    const set = runSet(host, monday)!;
    expect(set.attempts.map((a) => a.run.seq)).toEqual([1, 3]);
    expect(set.status).toBe('complete');

    const cut = parseAt(monday, host);
    expect(cut).toEqual(runSetCut(host, set));
    expect(parseAt(monday.slice(0, 22), host)).toEqual(cut); // a unique prefix
    const q = new CatalogQueries(host);
    const state = [...q.stateAt('lake', '', cut)].map((o) => `${o.key}:${o.size}`);
    expect(state).toHaveLength(10);
    expect(state).toContain('c/0.json:5'); // Monday's content ("c0:v1"), not Tuesday's
    // The same state for ls, find --at, diff and restore's selection.
    expect(q.ls('lake', '', cut).items.map((e) => [e.name, e.objects])).toEqual([
      ['c/', 5],
      ['h/', 5],
    ]);
    expect(q.find('c/*', { at: cut }).items.every((o) => o.run === set.attempts[0]!.run.id)).toBe(true);
    expect(q.diffSummary(cut, parseAt(tuesday, host))).toMatchObject({ changed: { objects: 5 }, added: { objects: 0 }, deleted: { objects: 0 } });
    expect(q.diffSummary({ runSeq: 0 }, cut)).toMatchObject({ added: { objects: 10 } });
    expect(selectState(host, [{ bucket: 'lake' }], cut)).toBe(10);
    expect(statePage(host, 0, 100).items.filter((item) => item.key.startsWith('c/')).map((item) => item.size)).toEqual([5, 5, 5, 5, 5]);
    // An attempt's own id is still a run: its versions and every run numbered before it.
    expect(parseAt(set.attempts[1]!.run.id, host)).toEqual({ runSeq: 3 });
    // Both run sets were given one name: it names neither, and the error names both.
    expect(() => parseAt('nightly', host)).toThrow(`run set name "nightly" names 2 run sets: ${monday} (group lake), ${tuesday} (group lake)`);
  });

  it('last-clean is a whole run set: never one attempt alone, never a set with a missing or suspect shard', async () => {
    const planned = Date.now() - 60_000;
    const [monday, tuesday, wednesday] = [0, 20_000, 40_000].map((d) => newRunId(new Date(planned + d)));
    const two = (i: number) => ({ of: 2, range: i === 0 ? { upTo: ['lake', 'g'] } : { after: ['lake', 'g'] } }) as never;
    for (const i of [0, 1]) await shard(monday!, i, planned + i, two(i));
    for (const i of [0, 1]) await shard(tuesday!, i, planned + 20_000 + i, { ...(two(i) as object), objects: keys(PREFIX[i]!, 5, 'v2') });
    // Wednesday has only one of its two shards: it is running, not a clean state.
    await shard(wednesday!, 0, planned + 40_000, { ...(two(0) as object), objects: keys('c', 5, 'v3') });
    const host = open('host');
    await syncCatalog({ repo, catalog: host });

    let state = lastCleanRun(host, ['lake']);
    expect(state.suspect).toBeUndefined();
    expect(state.lastCleanSet?.id).toBe(tuesday);
    expect(runSetCut(host, state.lastCleanSet!)).toMatchObject({ runSet: { id: tuesday, seqs: [expect.any(Number), expect.any(Number)] } });

    // Tuesday's second shard is suspect: the set is, and last-clean goes back to Monday.
    const suspectShard = runSet(host, tuesday!)!.attempts.find((a) => a.index === 1)!.run;
    recordRunAnomalies(host, suspectShard.seq, { suspect: true, findings: [], partitions: [], flaggedObjects: 0 });
    state = lastCleanRun(host, ['lake']);
    expect(state.suspect?.id).toBe(suspectShard.id);
    expect(state.lastCleanSet?.id).toBe(monday);
    expect(state.lastClean?.shard?.set).toBe(monday);
  });
});
