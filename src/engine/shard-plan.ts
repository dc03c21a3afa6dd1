/**
 * The plan of a run set (`runsets/<name>`, docs/repository-format.md): how many shards, and per
 * group its run-set id and the N-1 boundaries of its key space. Written create-only by whichever
 * shard starts first; every other shard, and every re-run, reads it and uses it, so all shards
 * split the key space at the same points without a coordinator.
 */
import { hostname } from 'node:os';
import { IntegrityError, StorageError, UsageError, isNotFound } from '../errors.js';
import type { Catalog } from '../catalog/catalog.js';
import { completeShardAttempt, runSetsNamed } from '../catalog/run-sets.js';
import type { Group, Policy } from '../policy/types.js';
import type { Repository } from '../repository/repository.js';
import { compareKeys } from '../util/key-order.js';
import { newRunId } from './run-id.js';
import { groupSegments, groupWeighing, recordedWeighing, sampledWeighing, segmentKeys, type KeySource, type RecordedRange, type Weighing } from './shard-bounds.js';
import { scratchDirOf } from './inventory-store.js';
import { compareBucketKeys, shardRange, type BucketKey, type RunShard, type ShardIdentity } from './shards.js';
import { openSource, outermostPrefixes, sourceName } from './sources.js';

export interface RunSetPlan {
  version: 1;
  name: string;
  shards: number;
  created: string;
  host: string;
  groups: Record<string, RunSetGroup>;
}

export interface RunSetGroup {
  /** The group's run-set run id (a fresh run id when planned): the id users see for the run set. */
  run: string;
  /** N-1 boundaries; shard I covers (bounds[I-1], bounds[I]]. */
  bounds: BucketKey[];
  /**
   * Which keys the group backs up, as the planning shard's policy said (absent in plans written
   * before lakeguard recorded it): a shard whose policy says otherwise is refused, so every shard
   * of a run set backs up the same key set.
   */
  sources?: PlannedSource[];
  /**
   * Where `bounds` came from when they are an earlier run set's (plan stability): that run set's
   * name and its run-set id for the group. Absent when they were computed for this plan (and in
   * plans written before lakeguard reused boundaries).
   */
  boundsFrom?: { runSet: string; run: string };
}

/** One source of a group as far as it decides which keys are backed up. */
export interface PlannedSource {
  /** Its catalog name (the bucket, or a directory source's name). */
  bucket: string;
  /** Outermost prefixes, sorted. */
  prefixes: string[];
  /** Exclude globs as written, deduplicated and sorted. */
  exclude: string[];
}

/** What decides a group's key set: its sources' names, prefixes and excludes, in a canonical order. */
export function plannedSources(group: Group): PlannedSource[] {
  return group.sources
    .map((s) => ({ bucket: sourceName(s), prefixes: outermostPrefixes(s.prefixes), exclude: [...new Set(s.exclude)].sort() }))
    .sort((a, b) => compareKeys(JSON.stringify(a), JSON.stringify(b)));
}

/** Where a new plan's boundaries of a group came from (the catalog's key counts, run manifests' record ranges, a listing, an inventory report). */
export type PlannedFrom = 'catalog' | 'records' | 'listing' | 'inventory';

/**
 * Computes one group's boundaries for a new plan: the boundaries themselves, or the group's work
 * as weighed (a Weighing), by which an earlier plan's boundaries can be judged and reused.
 */
export type PlanGroup = (group: string) => Promise<BucketKey[] | Weighing>;

/**
 * How far from an even share (1/N of the group's work, as the planner weighs it) any shard may
 * be for a new run set to keep the boundaries of the newest earlier plan: ±25%. The run set takes
 * as long as its slowest shard, so reuse makes a night at most 1.25 times as long as a balanced
 * one; a new split costs every persistent shard catalog whose range moves the record blobs of the
 * key slices it gains (it is resized in place: Sync.resize), and a range import from scratch where
 * that cannot be done (at a billion versions, N = 8: 11.5 GB read, 45-60 minutes per shard). Nightly drift (a few partitions changed, a day's tail) stays well inside it;
 * a tail that grows night after night crosses it and is replanned. The planner's own precision
 * (a sample block, 1/64 of a shard; a record blob per boundary) is far below it.
 */
export const REUSE_TOLERANCE = 0.25;

/**
 * Whether a new plan's group kept an earlier plan's boundaries (`from`), or why not; then `kept`
 * counts the earlier boundaries the new ones keep all the same (keepEarlierBounds), when any.
 */
export type PlanReuse = { from: { runSet: string; run: string }; worst: number } | { why: string; kept?: number };

const RUN_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;

/**
 * The run set's plan: the one in the repository, else a new one for `groups` (written
 * create-only unless `write` is false, a dry run). A shard that loses the race to write it reads
 * the winner's. A plan for another shard count, without one of `groups`, or made for other
 * `sources` of a group (another key set), is a usage error.
 */
export async function runSetPlan(
  repo: Repository,
  shard: ShardIdentity,
  groups: readonly string[],
  plan: PlanGroup,
  opts: { write: boolean; sources?: (group: string) => PlannedSource[]; beforeNewPlan?: () => void | Promise<void> },
): Promise<{ plan: RunSetPlan; created: boolean; reuse: Map<string, PlanReuse> }> {
  const reuse = new Map<string, PlanReuse>();
  const existing = await readPlan(repo, shard.runSet);
  if (existing !== null) return { plan: usable(existing, shard, groups, opts.sources), created: false, reuse };
  await opts.beforeNewPlan?.();
  const created = new Date();
  const fresh: RunSetPlan = { version: 1, name: shard.runSet, shards: shard.of, created: created.toISOString(), host: hostname(), groups: {} };
  const earlier = shard.of === 1 ? [] : await earlierPlans(repo, shard, groups, opts.sources);
  for (const group of groups) {
    const sources = opts.sources?.(group);
    let bounds: BucketKey[] = [];
    let boundsFrom: RunSetGroup['boundsFrom'];
    if (shard.of > 1) {
      const made = await plan(group);
      if (Array.isArray(made)) bounds = made;
      else {
        const chosen = reusable(earlier, group, sources, made, shard.of);
        reuse.set(group, chosen);
        if ('from' in chosen) {
          bounds = earlier.find((p) => p.name === chosen.from.runSet)!.groups[group]!.bounds.map((b) => [...b] as BucketKey);
          boundsFrom = chosen.from;
        } else {
          bounds = made.bounds();
          const last = earlier.find((p) => offers(p, group, sources));
          if (last !== undefined) {
            const some = keepEarlierBounds(last.groups[group]!.bounds, bounds, made, shard.of);
            bounds = some.bounds;
            if (some.kept > 0) reuse.set(group, { ...chosen, kept: some.kept });
          }
        }
      }
    }
    fresh.groups[group] = { run: newRunId(created), bounds, ...(sources === undefined ? {} : { sources }), ...(boundsFrom === undefined ? {} : { boundsFrom }) };
  }
  if (!opts.write) return { plan: fresh, created: true, reuse };
  try {
    await repo.writeDocument('runsets', shard.runSet, fresh);
    return { plan: fresh, created: true, reuse };
  } catch (err) {
    if (!(err instanceof StorageError && err.code === 'PreconditionFailed')) throw err;
  }
  // Another shard wrote it first: its plan is the run set's.
  const winner = await readPlan(repo, shard.runSet);
  if (winner === null) throw new IntegrityError(`${repo.where('runsets', shard.runSet)}: refused as existing, then not found`);
  return { plan: usable(winner, shard, groups, opts.sources), created: false, reuse: new Map() };
}

/**
 * Plans written this long before the newest one offering a group's boundaries are not read: a
 * plan's `created` (the planning host's clock) and its object's time (the store's) may disagree
 * by this much. Nightly run sets are a day apart: the newest usable plan costs one GET.
 */
const PLAN_CLOCK_MARGIN_MS = 60 * 60 * 1000;

/**
 * The earlier plans in runsets/ of `shard.of` shards that may offer boundaries to `groups`,
 * newest first (by `created`): one LIST, then GETs (a few hundred bytes each), one at a time
 * from the newest object down, stopping once every group has a plan of its sources and what is
 * left was written well before it (PLAN_CLOCK_MARGIN_MS). So the cost does not grow with the
 * run sets kept (forget deletes the plans of forgotten run sets too). A plan that cannot be read or fails
 * its checks is passed over: it only offers boundaries to reuse.
 */
async function earlierPlans(repo: Repository, shard: ShardIdentity, groups: readonly string[], sources: ((group: string) => PlannedSource[]) | undefined): Promise<RunSetPlan[]> {
  const files: { name: string; lastModified: Date }[] = [];
  for await (const f of repo.list('runsets')) if (f.name !== shard.runSet) files.push(f);
  files.sort((a, b) => b.lastModified.getTime() - a.lastModified.getTime() || compareKeys(b.name, a.name));
  const wanted = new Map(groups.map((g) => [g, sources?.(g)]));
  const found = new Map<string, number>(); // group -> object time of the newest plan offering it
  const plans: RunSetPlan[] = [];
  for (const file of files) {
    const time = file.lastModified.getTime();
    if (found.size === wanted.size && [...found.values()].every((t) => time < t - PLAN_CLOCK_MARGIN_MS)) break;
    const p = await readPlan(repo, file.name).catch(() => null);
    if (p === null || p.shards !== shard.of) continue;
    plans.push(p);
    for (const [group, s] of wanted) if (!found.has(group) && offers(p, group, s)) found.set(group, time);
  }
  return plans.sort((a, b) => compareKeys(b.created ?? '', a.created ?? ''));
}

/** Whether `plan` has boundaries of `group` made for these sources (any, when not known). */
function offers(plan: RunSetPlan, group: string, sources: readonly PlannedSource[] | undefined): boolean {
  const g = plan.groups[group];
  return g !== undefined && (sources === undefined || (g.sources !== undefined && sourcesDifference(g.sources, sources) === null));
}

/**
 * The boundaries of `group` to reuse from the newest earlier plan of the same shard count and
 * the same sources of the group, when under them every shard's part of the group's work (as
 * `weighing` weighs it now) is within REUSE_TOLERANCE of an even share; else why not.
 */
function reusable(earlier: readonly RunSetPlan[], group: string, sources: readonly PlannedSource[] | undefined, weighing: Weighing, shards: number): PlanReuse {
  const last = earlier.find((p) => offers(p, group, sources));
  if (last === undefined) return { why: `no earlier plan of ${shards} shards for these sources` };
  const g = last.groups[group]!;
  const from = { runSet: last.name, run: g.run };
  const shares = weighing.shares(g.bounds);
  if (shares.every((x) => x === 0)) return { from, worst: 0 }; // no work to balance
  // The shard farthest from an even share; of two as far, the busier (the one the night waits for).
  let worst = 0;
  for (const [i, share] of shares.entries()) {
    const [d, w] = [Math.abs(share * shards - 1), Math.abs(shares[worst]! * shards - 1)];
    if (d > w + 1e-9 || (d > w - 1e-9 && share > shares[worst]!)) worst = i;
  }
  const off = shares[worst]! * shards - 1;
  if (Math.abs(off) <= REUSE_TOLERANCE) return { from, worst: off };
  return {
    why: `run set ${last.name}'s boundaries would give shard ${worst} ${percent(shares[worst]!)} of the work, not ${percent(1 / shards)} ± ${Math.round(REUSE_TOLERANCE * 100)}%`,
  };
}

/**
 * New boundaries that keep as many of the earlier plan's as balance allows: from left to right,
 * each new boundary is replaced by the earlier one at its place when the boundaries stay in order
 * and every shard's part of the work (as `weighing` weighs it now) stays within REUSE_TOLERANCE of
 * an even share, the rule by which a whole plan is reused. A shard whose two boundaries are kept
 * keeps its range, and each kept boundary spares the shard beside it the slice a move would add to
 * its range (docs/scale-out.md "Stable boundaries"): on a time-partitioned lake, whose new day
 * lands past the last boundary, the boundaries in the old days can often stay while those near the
 * new keys move. Deterministic: the planning shard computes it once, and the plan records the result.
 */
export function keepEarlierBounds(earlier: readonly BucketKey[], fresh: readonly BucketKey[], weighing: Pick<Weighing, 'shares'>, shards: number): { bounds: BucketKey[]; kept: number } {
  let bounds = fresh.map((b) => [...b] as BucketKey);
  const within = (b: readonly BucketKey[]): boolean => weighing.shares(b).every((x) => Math.abs(x * shards - 1) <= REUSE_TOLERANCE);
  const same = (a: BucketKey, b: BucketKey): boolean => compareBucketKeys(a, b) === 0;
  if (earlier.length === fresh.length && within(bounds)) {
    for (let i = 0; i < bounds.length; i++) {
      const old = earlier[i]!;
      if (same(bounds[i]!, old)) continue;
      if ((i > 0 && compareBucketKeys(bounds[i - 1]!, old) > 0) || (i + 1 < bounds.length && compareBucketKeys(old, bounds[i + 1]!) > 0)) continue;
      const trial = bounds.map((b, j) => (j === i ? ([...old] as BucketKey) : b));
      if (within(trial)) bounds = trial;
    }
  }
  return { bounds, kept: earlier.length === bounds.length ? bounds.filter((b, i) => same(b, earlier[i]!)).length : 0 };
}

function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** The plan of `name`, checked; null when there is none. */
export async function readPlan(repo: Repository, name: string): Promise<RunSetPlan | null> {
  try {
    return checkPlan(await repo.readDocument<RunSetPlan>('runsets', name), name, repo);
  } catch (err) {
    if (isNotFound(err)) return null;
    if (!(err instanceof IntegrityError)) throw err;
    throw new IntegrityError(err.message, {
      cause: err,
      hint: `no shard of run set ${name} can start without its plan: restore ${repo.where('runsets', name)} from a copy of the repository (an earlier object version), or name a new run set (--run-set)`,
    });
  }
}

/**
 * A run set named `name` that is still running (`sets`: the run sets of that name a synced
 * catalog knows, or that the run manifests hold): a shard of it that finds no plan must not make
 * a new one, which would split the run set in two (a second run-set id, other boundaries). Its
 * plan was deleted meanwhile.
 */
function refuseMissingPlan(sets: readonly { id: string; missing: readonly number[] }[], repo: Repository, name: string): void {
  const running = sets.find((set) => set.missing.length > 0);
  if (running === undefined) return;
  throw new IntegrityError(
    `${repo.where('runsets', name)} is missing, but run set ${name} (${running.id}) is still running: shards ${running.missing.join(', ')} of it have not finished`,
    {
      hint: `put the plan back (an earlier object version, or a copy) and start the shard again, or name a new run set (--run-set); a new plan would split ${running.id} in two`,
    },
  );
}

/** The run sets named `name` among finished shard attempts, with the indexes none of them covers. */
function unfinishedRunSets(attempts: readonly RunShard[], name: string): { id: string; missing: number[] }[] {
  const sets = new Map<string, { of: number; done: Set<number> }>();
  for (const a of attempts) {
    if (a.name !== name) continue;
    const set = sets.get(a.set) ?? { of: a.of, done: new Set<number>() };
    set.done.add(a.index);
    sets.set(a.set, set);
  }
  return [...sets].map(([id, { of, done }]) => ({ id, missing: Array.from({ length: of }, (_, i) => i).filter((i) => !done.has(i)) }));
}

/** A plan document as it must be; an IntegrityError naming what is wrong otherwise. */
export function checkPlan(doc: RunSetPlan, name: string, repo: Repository): RunSetPlan {
  const bad = (why: string): IntegrityError => new IntegrityError(`${repo.where('runsets', name)}: not a valid run-set plan (${why})`);
  if (doc === null || typeof doc !== 'object' || doc.version !== 1) throw bad('not version 1');
  if (doc.name !== name) throw bad(`it names run set ${JSON.stringify(doc.name)}`);
  if (!Number.isInteger(doc.shards) || doc.shards < 1) throw bad(`shards ${JSON.stringify(doc.shards)}`);
  if (doc.groups === null || typeof doc.groups !== 'object') throw bad('groups missing');
  for (const [group, g] of Object.entries(doc.groups)) {
    if (g === null || typeof g !== 'object' || typeof g.run !== 'string' || !RUN_ID.test(g.run)) throw bad(`group ${group}: run id`);
    if (!Array.isArray(g.bounds) || g.bounds.length !== doc.shards - 1) throw bad(`group ${group}: ${doc.shards - 1} boundaries expected`);
    for (const [i, b] of g.bounds.entries()) {
      if (!Array.isArray(b) || b.length !== 2 || typeof b[0] !== 'string' || typeof b[1] !== 'string') throw bad(`group ${group}: boundary ${i}`);
      if (i > 0 && compareBucketKeys(g.bounds[i - 1]!, b) > 0) throw bad(`group ${group}: boundaries out of order`);
    }
    const strings = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');
    if (g.sources !== undefined && !(Array.isArray(g.sources) && g.sources.every((s) => s !== null && typeof s === 'object' && typeof s.bucket === 'string' && strings(s.prefixes) && strings(s.exclude)))) {
      throw bad(`group ${group}: sources`);
    }
    if (g.boundsFrom !== undefined && !(g.boundsFrom !== null && typeof g.boundsFrom === 'object' && typeof g.boundsFrom.runSet === 'string' && typeof g.boundsFrom.run === 'string')) {
      throw bad(`group ${group}: boundsFrom`);
    }
  }
  return doc;
}

function usable(plan: RunSetPlan, shard: ShardIdentity, groups: readonly string[], sources?: (group: string) => PlannedSource[]): RunSetPlan {
  if (plan.shards !== shard.of) {
    throw new UsageError(`run set ${shard.runSet} was planned for ${plan.shards} shards, not ${shard.of}`, {
      hint: `start every shard of it with ${plan.shards} shards, or name a new run set (--run-set)`,
    });
  }
  const missing = groups.filter((g) => plan.groups[g] === undefined);
  if (missing.length > 0) {
    throw new UsageError(`run set ${shard.runSet} was planned for ${describe(Object.keys(plan.groups))}, not for ${describe(missing)}`, {
      hint: 'back up every shard of a run set with the same --group (or none), or name a new run set (--run-set)',
    });
  }
  // Another key set (a prefix or an exclude added or removed since the plan): this shard would
  // back up other keys than its siblings, and the run set would read as one state that never was.
  for (const group of groups) {
    const planned = plan.groups[group]!.sources;
    if (planned === undefined || sources === undefined) continue;
    const difference = sourcesDifference(planned, sources(group));
    if (difference !== null) {
      throw new UsageError(`run set ${shard.runSet} was planned for other sources of group ${group}: ${difference}`, {
        hint: 'start every shard of a run set with the policy it was planned with (the same sources, prefixes and exclude), or name a new run set (--run-set)',
      });
    }
  }
  return plan;
}

/** The first source whose key selection differs, in words; null when none does. */
function sourcesDifference(planned: readonly PlannedSource[], now: readonly PlannedSource[]): string | null {
  const byBucket = (list: readonly PlannedSource[]): Map<string, string> => {
    const out = new Map<string, string[]>();
    for (const s of list) out.set(s.bucket, [...(out.get(s.bucket) ?? []), `prefixes ${JSON.stringify(s.prefixes)} exclude ${JSON.stringify(s.exclude)}`]);
    return new Map([...out].map(([bucket, parts]) => [bucket, parts.join(' and ')]));
  };
  const [before, after] = [byBucket(planned), byBucket(now)];
  for (const bucket of [...new Set([...before.keys(), ...after.keys()])].sort(compareKeys)) {
    const [b, a] = [before.get(bucket), after.get(bucket)];
    if (b === a) continue;
    return `source ${bucket} has ${b ?? 'no entry'} in the plan, ${a ?? 'no entry'} in this policy`;
  }
  return null;
}

function describe(groups: readonly string[]): string {
  return groups.length === 1 ? `group ${groups[0]}` : `groups ${groups.join(', ')}`;
}

/**
 * The shard attempt of each group for this process: the run set's plan (read, or made and
 * written by this shard when it is the first), and this shard's range in each group. `planned`
 * tells how a new plan was made, per group (PlannedFrom).
 */
export interface PlanRunSetOptions {
  repo: Repository;
  catalog: Catalog;
  policy: Policy;
  groups: readonly Group[];
  shard: ShardIdentity;
  dryRun: boolean;
  /** Where planning takes a source's keys (tests); default: a listing or the inventory report. */
  keys?: KeySource;
  /**
   * Plan from the run manifests instead of the catalog (a shard whose catalog is not synced yet:
   * it will hold only its range): their record ranges, and their shard attempts (a run set still
   * running). Read only when there is no plan yet.
   */
  recorded?: () => Promise<RecordedRuns>;
  signal?: AbortSignal;
}

/** What planning without a catalog takes from the run manifests (shard-scope.ts readRecordedRuns). */
export interface RecordedRuns {
  /** Sizes of the record blobs of every run manifest, by group. */
  ranges: ReadonlyMap<string, readonly RecordedRange[]>;
  /** The shard attempts among them (each one finished: a manifest is written at its end). */
  attempts: readonly RunShard[];
}

/** What planRunSet answers: the plan, whether this process made it, and each group's shard. */
export interface PlannedRunSet {
  plan: RunSetPlan;
  created: boolean;
  planned: Map<string, PlannedFrom>;
  reuse: Map<string, PlanReuse>;
  shards: Map<string, RunShard>;
}

export async function planRunSet(opts: PlanRunSetOptions): Promise<PlannedRunSet> {
  const { shard } = opts;
  const planned = new Map<string, PlannedFrom>();
  let recorded: RecordedRuns | undefined;
  const bounds: PlanGroup = async (name) => {
    const group = opts.groups.find((g) => g.name === name)!;
    const sources = group.sources.map((s) => openSource(s, opts.policy));
    if (opts.recorded !== undefined) {
      recorded ??= await opts.recorded();
      const keys = opts.keys ?? segmentKeys({ scratchDir: scratchDirOf(opts.catalog) });
      const fromRecords = await recordedWeighing(recorded.ranges.get(name) ?? [], groupSegments(sources), shard.of, keys, opts.signal);
      if (fromRecords !== null) {
        planned.set(name, 'records');
        return fromRecords;
      }
      // Too few records: listed as a seed is (this catalog holds one shard's range at most, so its counts would mislead).
      planned.set(name, sources.some((s) => s.inventory !== undefined) ? 'inventory' : 'listing');
      return sampledWeighing(groupSegments(sources), shard.of, keys, opts.signal);
    }
    const made = await groupWeighing(opts.catalog, sources, shard.of, opts.keys, opts.signal);
    planned.set(name, made.from);
    return made.weighing;
  };
  const { plan, created, reuse } = await runSetPlan(
    opts.repo,
    shard,
    opts.groups.map((g) => g.name),
    bounds,
    {
      write: !opts.dryRun,
      sources: (name) => plannedSources(opts.groups.find((g) => g.name === name)!),
      // A catalog not synced yet knows no run set: the manifests say which attempts there are.
      beforeNewPlan: async () => {
        if (opts.recorded !== undefined) recorded ??= await opts.recorded();
        refuseMissingPlan(recorded === undefined ? runSetsNamed(opts.catalog, shard.runSet) : unfinishedRunSets(recorded.attempts, shard.runSet), opts.repo, shard.runSet);
      },
    },
  );
  const shards = new Map<string, RunShard>();
  for (const g of opts.groups) {
    const entry = plan.groups[g.name]!;
    shards.set(g.name, { set: entry.run, name: plan.name, index: shard.index, of: plan.shards, range: shardRange(entry.bounds, shard.index) });
  }
  return { plan, created, planned, reuse, shards };
}

/**
 * The shards of `shards` (group -> this process's shard) that already have a complete attempt
 * in the catalog (synced first, so attempts on other hosts count), with that attempt's run id.
 */
export function completedShards(catalog: Catalog, shards: ReadonlyMap<string, RunShard>): Map<string, { shard: RunShard; attempt: string }> {
  const done = new Map<string, { shard: RunShard; attempt: string }>();
  for (const [group, shard] of shards) {
    const attempt = completeShardAttempt(catalog, shard.set, shard.index);
    if (attempt !== null) done.set(group, { shard, attempt });
  }
  return done;
}
