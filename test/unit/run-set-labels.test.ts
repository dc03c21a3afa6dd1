// One label for a run set wherever it is shown: `runs` (--json), `runs show`, `calendar`,
// `restore --at <set>`'s description and restore's choice of the newest state. A run set whose
// every attempt failed is `failed`, as a failed run is, and restore never takes it for data.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { describeRunSetCut } from '../../src/catalog/instant.js';
import { CatalogQueries } from '../../src/catalog/queries.js';
import { runSet, runSetsOf } from '../../src/catalog/run-sets.js';
import type { RunStatus } from '../../src/catalog/types.js';
import { pickCut } from '../../src/commands/restore.js';
import { runSetMessage, runSetStatus, showRunSet } from '../../src/commands/runs-sets.js';
import { newRunId } from '../../src/engine/run-id.js';
import { syncCatalog } from '../../src/engine/sync.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { initRepo, tempDir } from '../helpers/fixtures.js';
import { writeShardAttempt } from '../helpers/shards.js';

const HOUR = 3_600_000;

describe('run set labels', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let host: Catalog;
  const base = Date.now() - 6 * HOUR;
  const ids = { complete: '', rerun: '', oneFailed: '', allFailed: '', unstarted: '' };

  /** A run set of two shards whose attempts end with the statuses given per index, in order. */
  const runSetOf = async (offset: number, attempts: RunStatus[][]): Promise<string> => {
    const planned = base + offset * HOUR;
    const set = newRunId(new Date(planned));
    let n = 0;
    for (const [index, statuses] of attempts.entries()) {
      for (const status of statuses) {
        const objects = [{ bucket: 'lake', key: `${index === 0 ? 'c' : 'h'}/${n}.json`, body: `${set}-${n}` }];
        const range = index === 0 ? { upTo: ['lake', 'g'] as [string, string] } : { after: ['lake', 'g'] as [string, string] };
        await writeShardAttempt(repo, { group: 'lake', set, name: `set-${offset}`, index, of: 2, range, started: planned + ++n * 1000, objects, status });
      }
    }
    return set;
  };

  beforeAll(async () => {
    dir = tempDir('run-set-labels');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    ids.complete = await runSetOf(0, [['complete'], ['complete']]);
    ids.rerun = await runSetOf(1, [['interrupted', 'complete'], ['complete']]);
    ids.oneFailed = await runSetOf(2, [['complete'], ['failed']]);
    ids.allFailed = await runSetOf(3, [['failed'], ['failed', 'interrupted']]);
    // Index 1 never ran (as a Kubernetes Job with completions 1 and --shards 2 leaves it).
    ids.unstarted = await runSetOf(4, [['complete']]);
    host = Catalog.open(join(dir.path, 'host.db'), repo.id);
    await syncCatalog({ repo, catalog: host });
  });
  afterAll(() => {
    host.close();
    dir.cleanup();
  });

  it('runs, runs show, calendar and restore --at give each run set the same label', () => {
    const expected = { [ids.complete]: 'complete', [ids.rerun]: 'complete', [ids.oneFailed]: 'partial', [ids.allFailed]: 'failed', [ids.unstarted]: 'running' };
    expect(Object.fromEntries(runSetsOf(host).map((s) => [s.id, s.status]))).toEqual(expected);
    const calendarRow = (id: string, started: number) => {
      const d = new Date(started);
      const month = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
      return new CatalogQueries(host).calendar(month).days.flatMap((day) => day.runs).find((r) => r.id === id);
    };
    for (const [id, status] of Object.entries(expected)) {
      const set = runSet(host, id)!;
      expect(runSetMessage(set, () => null).status, `runs --json ${id}`).toBe(status);
      expect(runSetStatus(set, null), `runs ${id}`).toMatch(new RegExp(`^${status} \\(shards`));
      expect(describeRunSetCut(host, id), `restore --at ${id}`).toContain(`, ${status}: `);
      expect(calendarRow(id, set.started)?.status, `calendar ${id}`).toBe(status);
      const shown: string[] = [];
      showRunSet(set, { json: false, info: (text: string) => shown.push(text) } as never, () => null, {});
      expect(shown[0], `runs show ${id}`).toMatch(new RegExp(`^status +${status}: `, 'm'));
    }
  });

  it('runs show says why a run set whose every attempt failed holds nothing to restore', () => {
    const shown: string[] = [];
    showRunSet(runSet(host, ids.allFailed)!, { json: false, info: (text: string) => shown.push(text) } as never, () => null, {});
    expect(shown[0]).toMatch(/^status +failed: 0 of 2 shards complete; every shard attempt failed or was interrupted: no state to restore from/m);
  });

  it('restore without --at takes the newest partial run set, not the newer one whose every shard failed', () => {
    const picked = pickCut({ catalog: host, policy: { groups: [] } } as never, {} as never);
    expect('runSeq' in picked.cut && picked.cut.runSet?.id).toBe(ids.oneFailed);
    expect(picked.label).toContain(`run set ${ids.oneFailed} (set-2, partial: 1 of 2 shards complete`);
  });

  it('a shard index of which no attempt is known is named, with how long the run set has waited, in runs, runs show and --json', () => {
    const set = runSet(host, ids.unstarted)!;
    expect(set).toMatchObject({ status: 'running', missing: [1], notStarted: [1] });
    expect(runSet(host, ids.complete)!.notStarted).toEqual([]);
    const now = set.started + 3 * HOUR;
    expect(runSetStatus(set, null, now)).toBe('running (shards 1/2, shard 1 with nothing recorded in 3h00m)');
    expect(runSetStatus(set, null, set.started + 76 * HOUR + 59_000)).toBe('running (shards 1/2, shard 1 with nothing recorded in 3d04h)');
    expect(runSetStatus(set, null, set.started + 119_600)).toBe('running (shards 1/2, shard 1 with nothing recorded in 2m00s)');
    expect(runSetMessage(set, () => null).shards).toMatchObject({ missing: [1], notStarted: [1], notStartedSince: set.started, notStartedSinceIso: new Date(set.started).toISOString() });
    expect(runSetMessage(runSet(host, ids.complete)!, () => null).shards).toMatchObject({ notStarted: [], notStartedSince: null });
    const lines: string[] = [];
    showRunSet(set, { json: false, info: (text: string) => lines.push(text) } as never, () => null, {}, false, now);
    expect(lines.at(-1)).toBe(
      'nothing recorded: 1 shard (1) with no attempt recorded 3h00m after the run set began (a shard\'s manifest comes at its end, so one may still be running elsewhere, or was stopped before it wrote anything); ' +
        "if the engine runs fewer than 2 indexes (a Kubernetes Job's `completions`, an array's size), they never will: make it 2, as `--shards`/LAKEGUARD_SHARDS says",
    );
  });
});
