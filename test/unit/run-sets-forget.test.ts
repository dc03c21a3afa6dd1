// forget and prune with run sets: a run set is kept or forgotten as one unit, keep_last counts
// run sets, a running one is never forgotten, and prune leaves what the kept shards need.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { CatalogQueries } from '../../src/catalog/queries.js';
import { runSetCut, runSetsOf } from '../../src/catalog/run-sets.js';
import { newRunId } from '../../src/engine/run-id.js';
import { forget, planForget } from '../../src/engine/forget.js';
import { prune } from '../../src/engine/prune.js';
import type { RunSetPlan } from '../../src/engine/shard-plan.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { verify } from '../../src/engine/verify.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { initRepo, tempDir, TEST_KDF, testPolicy } from '../helpers/fixtures.js';
import { writeShardAttempt } from '../helpers/shards.js';

const DAY = 86_400_000;

describe('forget and prune with run sets', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let host: Catalog;
  let policy: Policy;
  const now = Date.now();
  const sets: string[] = [];

  /** A run set planned `daysAgo` days ago, shards writing c/ (index 0) and h/ (index 1) with `tag` content. */
  const runSet = async (daysAgo: number, tag: string, indexes: number[], status?: 'failed' | 'interrupted'): Promise<string> => {
    const planned = now - daysAgo * DAY;
    const set = newRunId(new Date(planned));
    for (const index of indexes) {
      const prefix = index === 0 ? 'c' : 'h';
      const objects = Array.from({ length: 3 }, (_, i) => ({ bucket: 'lake', key: `${prefix}/${i}.json`, body: `${prefix}${i}-${tag}` }));
      const range = index === 0 ? { upTo: ['lake', 'g'] as [string, string] } : { after: ['lake', 'g'] as [string, string] };
      await writeShardAttempt(repo, { group: 'lake', set, name: `day-${daysAgo}`, index, of: 2, range, started: planned + index * 1000, objects, ...(status === undefined ? {} : { status }) });
    }
    sets.push(set);
    return set;
  };

  beforeEach(async () => {
    dir = tempDir('run-sets-forget');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    const group: Group = { name: 'lake', sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }], retention: { keepLast: 1 } };
    policy = testPolicy(`file://${join(dir.path, 'repo')}`, [group]);
    sets.length = 0;
    await runSet(3, 'mon', [0, 1]);
    await runSet(2, 'tue', [0, 1]);
    await runSet(1, 'wed', [0]); // still running: shard 1 has not finished
    host = Catalog.open(join(dir.path, 'host.db'), repo.id);
    await syncCatalog({ repo, catalog: host });
  });
  afterEach(() => {
    host.close();
    dir.cleanup();
  });

  it('keep_last 1 keeps the newest complete run set whole and the running one; the oldest goes whole', async () => {
    const [mon, tue, wed] = sets as [string, string, string];
    expect(runSetsOf(host).map((s) => [s.id, s.status])).toEqual([
      [mon, 'complete'],
      [tue, 'complete'],
      [wed, 'running'],
    ]);
    const plan = planForget(host, policy, { now });
    const verdict = (set: string) => plan.verdicts.filter((v) => v.run.shard?.set === set).map((v) => [v.keep, v.reasons.join(',')]);
    expect(verdict(mon)).toEqual([
      [false, ''],
      [false, ''],
    ]);
    expect(verdict(tue)).toEqual([
      [true, 'latest,last-1'],
      [true, 'latest,last-1'],
    ]);
    expect(verdict(wed)).toEqual([[true, 'running']]);
    // Monday's six versions go; Tuesday's state (and Wednesday's shard) stay.
    expect(plan.dropped).toHaveLength(6);
    expect(plan.emptyRuns).toHaveLength(2);
    // The run sets' plans, as their first shards wrote them.
    for (const [days, set] of [[3, mon], [2, tue], [1, wed]] as const) {
      const doc: RunSetPlan = { version: 1, name: `day-${days}`, shards: 2, created: new Date(now - days * DAY).toISOString(), host: 'h', groups: { lake: { run: set, bounds: [['lake', 'g']] } } };
      await repo.writeDocument('runsets', doc.name, doc);
    }

    const done = await forget(repo, host, policy, { dryRun: false, now });
    expect(done.manifestsDeleted).toHaveLength(2);
    expect(runSetsOf(host).map((s) => s.id)).toEqual([tue, wed]);
    // Monday's plan went with its last attempt; the kept and the running run sets keep theirs.
    expect(done.plansDeleted).toEqual(['day-3']);
    expect(await repo.listNames('runsets')).toEqual(['day-1', 'day-2']);

    // prune frees Monday's data and keeps every pack the kept shards' versions and records use.
    const pruned = await prune({ repo, catalog: host, maxUnused: 0 });
    expect(pruned.packs.removed + pruned.packs.repacked).toBeGreaterThan(0);
    expect(pruned.missing).toEqual([]);
    expect((await verify({ repo, catalog: host, readData: 1, concurrency: 4 })).damage).toEqual([]);
    const tuesday = runSetsOf(host).find((s) => s.id === tue)!;
    const state = [...new CatalogQueries(host).stateAt('lake', '', runSetCut(host, tuesday))].map((o) => o.key);
    expect(state).toHaveLength(6);

    // Another host learns all of it by syncing: the same run sets.
    const other = Catalog.open(join(dir.path, 'other.db'), repo.id);
    try {
      await syncCatalog({ repo, catalog: other });
      expect(runSetsOf(other).map((s) => [s.id, s.status])).toEqual([
        [tue, 'complete'],
        [wed, 'running'],
      ]);
    } finally {
      other.close();
    }
  });

  it('a running run set is never forgotten, whatever keep_last says', async () => {
    const [, tue, wed] = sets as [string, string, string];
    await runSet(0, 'thu', [0, 1]);
    const plan = planForget(host, policy, { now });
    expect(plan.verdicts.filter((v) => v.run.shard?.set === wed).map((v) => v.keep)).toEqual([true]);
    // Before the sync of Thursday's set, Tuesday is still the newest complete one.
    expect(plan.verdicts.filter((v) => v.run.shard?.set === tue).every((v) => v.keep)).toBe(true);
    await syncCatalog({ repo, catalog: host });
    const after = planForget(host, policy, { now });
    expect(after.verdicts.filter((v) => v.run.shard?.set === tue).every((v) => !v.keep)).toBe(true);
    expect(after.verdicts.filter((v) => v.run.shard?.set === wed).map((v) => [v.keep, v.reasons])).toEqual([[true, ['running']]]);
  });

  it('a run set left running 30 days after its last attempt counts as partial: no longer kept for ever', async () => {
    const [mon, tue, wed] = sets as [string, string, string];
    const verdict = (plan: ReturnType<typeof planForget>, set: string) => [...new Set(plan.verdicts.filter((v) => v.run.shard?.set === set).map((v) => (v.keep ? v.reasons.join(',') : 'remove')))];
    // Wednesday's shard 1 never ran (its attempt started a day ago): still running a month later.
    const monthLater = now + 29 * DAY;
    expect([mon, tue, wed].map((s) => verdict(planForget(host, policy, { now: monthLater }), s))).toEqual([['remove'], ['latest,last-1'], ['running']]);
    // 30 days after it, nothing will finish it: the newest partial run set, as keep_last counts.
    const later = now + 31 * DAY;
    const plan = planForget(host, policy, { now: later });
    expect([mon, tue, wed].map((s) => verdict(plan, s))).toEqual([['remove'], ['remove'], ['latest,last-1']]);
    // Its state stays restorable as it was: shard 0's keys from it, shard 1's from Tuesday.
    const done = await forget(repo, host, policy, { dryRun: false, now: later });
    expect(runSetsOf(host).map((s) => s.id)).toEqual([wed]);
    expect(done.manifestsDeleted.length + done.manifestsKept.length).toBe(4);
    const state = [...new CatalogQueries(host).stateAt('lake', '', runSetCut(host, runSetsOf(host)[0]!))].map((o) => o.key).sort();
    expect(state).toEqual(['c/0.json', 'c/1.json', 'c/2.json', 'h/0.json', 'h/1.json', 'h/2.json']);
  });

  it('a run set whose every attempt failed takes no keep_last slot: the newest complete one stays', async () => {
    const [mon, tue, wed] = sets as [string, string, string];
    const failed = await runSet(0, 'thu', [0, 1], 'failed');
    await syncCatalog({ repo, catalog: host });
    expect(runSetsOf(host).find((s) => s.id === failed)?.status).toBe('failed');
    const plan = planForget(host, policy, { now });
    const verdict = (set: string) => [...new Set(plan.verdicts.filter((v) => v.run.shard?.set === set).map((v) => (v.keep ? v.reasons.join(',') : 'remove')))];
    expect([mon, tue, wed, failed].map(verdict)).toEqual([['remove'], ['latest,last-1'], ['running'], ['newest']]);
    // Only Monday's six versions go: Tuesday's state and every version after it stay.
    expect(plan.dropped).toHaveLength(6);
  });

  it('under Object Lock, a forgotten run set\'s plan is kept, remembered, and deleted by a later forget once it expires', async () => {
    host.close();
    const store = new MemStore({ objectLock: true });
    repo = await Repository.init(store, { password: 'pw', kdf: { ...TEST_KDF }, objectLock: { mode: 'GOVERNANCE', retentionDays: 1 } });
    sets.length = 0;
    await runSet(3, 'mon', [0, 1]);
    await runSet(2, 'tue', [0, 1]);
    const doc: RunSetPlan = { version: 1, name: 'day-3', shards: 2, created: new Date(now - 3 * DAY).toISOString(), host: 'h', groups: { lake: { run: sets[0]!, bounds: [['lake', 'g']] } } };
    await repo.writeDocument('runsets', doc.name, doc);
    host = Catalog.open(join(dir.path, 'locked.db'), repo.id);
    await syncCatalog({ repo, catalog: host });
    const first = await forget(repo, host, policy, { dryRun: false, now });
    expect(first.plansDeleted).toEqual([]);
    expect(first.manifestsLocked.map((l) => l.name)).toContain('runsets/day-3');
    expect(await repo.listNames('runsets')).toEqual(['day-3']);
    for (const l of first.manifestsLocked) await store.putRetention(l.name, { mode: 'GOVERNANCE', retainUntil: new Date(Date.now() - 1000) }, {});
    const second = await forget(repo, host, policy, { dryRun: false, now });
    expect(second.plansDeleted).toEqual(['day-3']);
    expect(second.manifestsLocked).toEqual([]);
    expect(await repo.listNames('runsets')).toEqual([]);
  });
});

