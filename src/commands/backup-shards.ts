/**
 * The backup command's part of shards: the run set's plan before any group is backed up, and
 * what it tells the operator about it (docs/scale-out.md "Shards").
 */
import { completedShards, planRunSet, REUSE_TOLERANCE, type PlannedRunSet, type PlanReuse, type PlannedFrom } from '../engine/shard-plan.js';
import type { RunShard, ShardIdentity } from '../engine/shards.js';
import type { Group } from '../policy/types.js';
import { formatTimeMs } from '../util/format.js';
import type { Opened } from './context.js';
import type { Reporter } from './reporter.js';
import { runMarks } from './runs-anomalies.js';

/**
 * A complete shard re-run this long after its attempt finished is most likely not an engine's
 * retry (a pod lost after its manifest was written is replaced within minutes) but a new backup
 * under a run-set name used before (a schedule passing a fixed --run-set): it copies nothing and
 * exits 0 every time, so it says so.
 */
const REUSED_RUN_SET_AFTER_MS = 60 * 60 * 1000;

/** "shard 2 of 4 (0-based) of run set nightly": how messages name a shard. */
export function describeShard(shard: ShardIdentity): string {
  return `shard ${shard.index} of ${shard.of} (0-based) of run set ${shard.runSet}`;
}

/**
 * How a new plan got a group's boundaries: "group g from the catalog's key counts; not reused: …",
 * or "group g: the boundaries of run set n (id) reused, every shard within ±25% of an even share
 * by the catalog's key counts (the farthest +3.1%)".
 */
export function describePlanned(group: string, from: PlannedFrom, reuse: PlanReuse | undefined): string {
  const weights = from === 'catalog' ? "the catalog's key counts" : from === 'records' ? "the run manifests' record ranges" : from === 'inventory' ? 'S3 Inventory reports' : 'a listing';
  if (reuse === undefined) return `group ${group} from ${weights}`;
  if ('why' in reuse) return `group ${group} from ${weights}; not reused: ${reuse.why}${reuse.kept === undefined ? '' : `; ${reuse.kept} of its boundaries kept, every shard still within ±${Math.round(REUSE_TOLERANCE * 100)}%`}`;
  const off = `${reuse.worst >= 0 ? '+' : ''}${(reuse.worst * 100).toFixed(1)}%`;
  return `group ${group}: the boundaries of run set ${reuse.from.runSet} (${reuse.from.run}) reused, every shard within ±${Math.round(REUSE_TOLERANCE * 100)}% of an even share by ${weights} (the farthest ${off})`;
}

/**
 * Each group's shard attempt for this process, from the run set's plan (read, or made and
 * written when this shard is the first to start). A group whose shard already has a complete
 * attempt in the (synced) catalog is left out and said so: re-running a finished shard writes
 * nothing (the idempotent re-run an engine's retry relies on).
 */
export async function planShards(
  ctx: Opened,
  shard: ShardIdentity,
  groups: readonly Group[],
  how: { dryRun: boolean; reporter: Reporter; signal: AbortSignal; planned?: PlannedRunSet },
): Promise<{ shards: Map<string, RunShard>; suspect: boolean }> {
  // Planned before the sync already when this shard's catalog holds only its range (shard-scope.ts).
  const { created, planned, reuse, shards } = how.planned ?? (await planRunSet({ repo: ctx.repo, catalog: ctx.catalog, policy: ctx.policy, groups, shard, dryRun: how.dryRun, signal: how.signal }));
  // One shard has no boundaries to place: it covers the whole key space.
  const how1 = planned.size === 0 ? 'one shard: the whole key space, no boundaries' : [...planned].map(([g, from]) => describePlanned(g, from, reuse.get(g))).join(', ');
  const made = created ? `planned it (${how1})` : 'read its plan';
  how.reporter.event({ type: 'phase', phase: 'plan', detail: `${describeShard(shard)}: ${made}${how.dryRun && created ? ', not written (dry run)' : ''}` });
  // A complete attempt that is suspect (and not acknowledged) still exits 4 when re-run: an
  // engine that retried a pod after its manifest was written must not turn the verdict into 0.
  const marks = runMarks(ctx.catalog);
  let suspect = false;
  for (const [group, runShard] of completedShards(ctx.catalog, shards)) {
    shards.delete(group);
    const { range: _range, ...which } = runShard.shard;
    const isSuspect = marks(runShard.attempt) === 'suspect';
    suspect ||= isSuspect;
    const finished = ctx.catalog.findRun(runShard.attempt)?.finished ?? null;
    if (finished !== null && Date.now() - finished > REUSED_RUN_SET_AFTER_MS) {
      how.reporter.event({
        type: 'warning',
        message: `${describeShard(shard)} completed at ${formatTimeMs(finished)} (run ${runShard.attempt}): this backup copies nothing; if it is meant as a new backup, give it a run-set name of its own (a fixed --run-set or LAKEGUARD_RUN_SET names the same run set every time: docs/scale-out.md "Engines")`,
      });
    }
    how.reporter.summary(
      { runId: runShard.attempt, group, status: 'complete', dryRun: how.dryRun, alreadyComplete: true, suspect: isSuspect, shard: which },
      `run ${runShard.attempt} (group ${group}): complete already${isSuspect ? ', SUSPECT' : ''}, as ${describeShard(shard)} (run set ${runShard.shard.set}); nothing to do${isSuspect ? ` (\`lakeguard runs show ${runShard.attempt} --anomalies\`)` : ''}`,
    );
  }
  return { shards, suspect };
}
