/**
 * What forget keeps or forgets as one: an ordinary run, or a run set (every shard attempt of one
 * sharded backup of a group; docs/scale-out.md "Shards"). Retention rules see a run set as one
 * run (its id, its first attempt's start, its status), so `keep_last N` counts run sets, and a
 * run set still `running` (an index without a finished attempt) is kept, until ABANDONED_SHARD_MS
 * after its last attempt: then no engine will finish it, and it counts as `partial` (its state is
 * restorable as any partial run's: the keys of its missing indexes as they were before it).
 */
import type { Catalog } from '../catalog/catalog.js';
import { runSetCut, runSetsOf, type RunSet } from '../catalog/run-sets.js';
import type { RunRow, RunStatus } from '../catalog/types.js';
import { ABANDONED_SHARD_MS } from './resume.js';
import type { RetentionRun } from './retention.js';

export class RetentionUnits {
  private readonly sets: Map<string, RunSet>;
  private readonly runs: RunRow[];
  /** Run id -> run set id, for shard attempts. */
  private readonly setOfRun = new Map<string, string>();

  constructor(
    private readonly catalog: Catalog,
    now: number = Date.now(),
  ) {
    this.runs = catalog.listRuns();
    this.sets = new Map(runSetsOf(catalog).map((s) => [s.id, abandonedAsPartial(s, now)]));
    for (const r of this.runs) if (r.shard !== undefined && this.sets.has(r.shard.set)) this.setOfRun.set(r.id, r.shard.set);
  }

  /** The units of a group as retention rules see them. */
  ofGroup(group: string): RetentionRun[] {
    const ordinary = this.runs.filter((r) => r.group === group && !this.setOfRun.has(r.id)).map((r) => ({ id: r.id, started: r.started, status: r.status }));
    const sets = [...this.sets.values()].filter((s) => s.group === group).map((s) => ({ id: s.id, started: s.started, status: s.status }));
    return [...ordinary, ...sets];
  }

  /** The unit a run belongs to: its run set's id, or its own. */
  unitOf(run: RunRow): string {
    return this.unitOfId(run.id);
  }

  unitOfId(runId: string): string {
    return this.setOfRun.get(runId) ?? runId;
  }

  /** A run's status as retention counts it: its run set's for a shard attempt. */
  statusOf(run: RunRow): RunStatus {
    const set = this.setOfRun.get(run.id);
    return set === undefined ? run.status : this.sets.get(set)!.status;
  }

  /** The state cuts of the run sets `kept` says are kept. */
  *keptSetCuts(kept: (setId: string) => boolean): Generator<{ upTo: number; plus: ReadonlySet<number> }> {
    for (const set of this.sets.values()) {
      if (!kept(set.id)) continue;
      const cut = runSetCut(this.catalog, set);
      if ('runSeq' in cut) yield { upTo: cut.runSeq, plus: new Set(cut.runSet?.seqs ?? []) };
    }
  }
}

/** A run set still `running` whose last attempt started or ended ABANDONED_SHARD_MS before `now`, as `partial`. */
function abandonedAsPartial(set: RunSet, now: number): RunSet {
  if (set.status !== 'running') return set;
  const last = Math.max(...set.attempts.map((a) => a.run.finished ?? a.run.started));
  return now - last > ABANDONED_SHARD_MS ? { ...set, status: 'partial' } : set;
}
