/**
 * Run sets (schema 5): the shard attempts of one sharded backup of a group, read as one run.
 * All of their SQL is here (docs/catalog.md "Run sets", docs/scale-out.md "Shards").
 *
 * A run set is identified by the run id its plan gave the group (`run_shards.set_run`); each
 * shard attempt is an ordinary run with a `run_shards` row. Of several attempts of one index,
 * a complete one supersedes the others, and among complete ones the id that sorts first counts:
 * the catalog holds no versions of a superseded complete attempt (the same keys, recorded
 * twice). An incomplete attempt's versions stay (they are real captures; the re-run that
 * completed the index copied only what was left).
 */
import { UsageError } from '../errors.js';
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';
import { toRunRow, toShard } from './run-rows.js';
import type { RunCounters, RunRow, RunShard, ShardRange, StateCut } from './types.js';

/**
 * `running` while some index has no finished attempt; `complete` when every index has a
 * complete attempt; `partial` when every index has finished and some attempt stored a complete
 * or partial state; `failed` (or `interrupted`, when no attempt failed) when every attempt
 * failed or was interrupted: read as a failed run is, it holds no state to restore or keep.
 */
export type RunSetStatus = 'complete' | 'partial' | 'failed' | 'interrupted' | 'running';

/** One shard attempt of a run set. */
export interface ShardAttempt {
  run: RunRow;
  index: number;
  range: ShardRange;
  /**
   * Another attempt of its index counts instead: a complete attempt, or, for a complete one,
   * a complete attempt whose id sorts first.
   */
  superseded: boolean;
  /** Its versions are in the catalog and its counters in the run set's (not a superseded complete attempt). */
  counts: boolean;
}

export interface RunSet {
  /** The group's run-set run id (the plan's): what users pass to `runs show`, `--at`, `diff`. */
  id: string;
  name: string;
  group: string;
  of: number;
  status: RunSetStatus;
  /** Indexes with a complete attempt. */
  complete: number;
  /** Indexes without any finished attempt, ascending. */
  missing: number[];
  /**
   * Of `missing`, the indexes of which this catalog knows no attempt at all, ascending: never
   * started (an engine that runs fewer indexes than the run set's count, such as a Kubernetes
   * Job whose `completions` is below `--shards`), or still running on another host (a shard's
   * manifest is written at its end).
   */
  notStarted: number[];
  attempts: ShardAttempt[];
  /** Earliest start of an attempt. */
  started: number;
  /** Latest end of an attempt that counts (not a superseded complete one) once every index has a finished one; null while running. */
  finished: number | null;
  /** Sum over the counting attempts; durationMs is the wall time from `started` to `finished`. */
  counters: RunCounters | null;
  /** Run numbers: the first attempt's (where `runs` lists the set) and the last attempt's. */
  firstSeq: number;
  lastSeq: number;
}

type Row = Record<string, unknown>;

/** Records that run `seq` is a shard attempt (idempotent). */
export function recordRunShard(catalog: Catalog, seq: number, shard: RunShard): void {
  sqlite(catalog)
    .prepare('INSERT OR REPLACE INTO run_shards (run, set_run, set_name, shard_index, shard_count, shard_range) VALUES (?, ?, ?, ?, ?, ?)')
    .run(seq, shard.set, shard.name, shard.index, shard.of, JSON.stringify(shard.range));
}

/** The run set membership of run `seq`, if it is a shard attempt. */
export function shardOfRun(catalog: Catalog, seq: number): RunShard | undefined {
  const r = sqlite(catalog).prepare('SELECT * FROM run_shards WHERE run = ?').get(seq) as Row | undefined;
  return r === undefined ? undefined : toShard(r);
}

/**
 * Is index `index` of run set `set` complete: the id of its counting complete attempt (the
 * complete one whose id sorts first), or null. A shard re-run asks this before doing anything
 * (the idempotent re-run).
 */
export function completeShardAttempt(catalog: Catalog, set: string, index: number): string | null {
  const id = sqlite(catalog)
    .prepare(
      `SELECT r.id FROM run_shards s JOIN runs r ON r.seq = s.run
       WHERE s.set_run = ? AND s.shard_index = ? AND r.status = 'complete' ORDER BY r.id LIMIT 1`,
    )
    .pluck()
    .get(set, index) as string | undefined;
  return id ?? null;
}

/** Whether index `index` of run set `set` has a complete attempt. */
export function isShardComplete(catalog: Catalog, set: string, index: number): boolean {
  return completeShardAttempt(catalog, set, index) !== null;
}

/**
 * Complete attempts of `set`'s index `index` other than `keeper` (which sorts first) that still
 * have rows in the catalog: the attempts it supersedes whose versions must go.
 */
export function supersededCompleteAttempts(catalog: Catalog, set: string, index: number, keeper: string): number[] {
  return sqlite(catalog)
    .prepare(
      `SELECT s.run FROM run_shards s JOIN runs r ON r.seq = s.run
       WHERE s.set_run = ? AND s.shard_index = ? AND r.status = 'complete' AND r.id > ?
         AND (EXISTS (SELECT 1 FROM versions v WHERE v.run = s.run) OR EXISTS (SELECT 1 FROM failures f WHERE f.run = s.run)
              OR EXISTS (SELECT 1 FROM run_anomalies a WHERE a.run = s.run))`,
    )
    .pluck()
    .all(set, index, keeper) as number[];
}

/** Indexes of `set` without a finished attempt (none: every shard has recorded its end). */
export function missingShardIndexes(catalog: Catalog, set: string): number[] {
  return runSet(catalog, set)?.missing ?? [];
}

/** The run sets of a group (all groups when absent), in the order `runs` lists them (first attempt's run number). */
export function runSetsOf(catalog: Catalog, opts: { group?: string } = {}): RunSet[] {
  const rows = sqlite(catalog)
    .prepare(
      `SELECT r.*, s.set_run, s.set_name, s.shard_index, s.shard_count, s.shard_range FROM run_shards s JOIN runs r ON r.seq = s.run
       ${opts.group === undefined ? '' : 'WHERE r.grp = @group'} ORDER BY s.set_run, r.seq`,
    )
    .all(opts.group === undefined ? {} : { group: opts.group }) as Row[];
  const sets: RunSet[] = [];
  for (let i = 0; i < rows.length; ) {
    let j = i;
    while (j < rows.length && rows[j]!.set_run === rows[i]!.set_run) j++;
    sets.push(toRunSet(rows.slice(i, j)));
    i = j;
  }
  return sets.sort((a, b) => a.firstSeq - b.firstSeq);
}

/** The run set with this id, or undefined. */
export function runSet(catalog: Catalog, set: string): RunSet | undefined {
  const rows = sqlite(catalog)
    .prepare(
      `SELECT r.*, s.set_run, s.set_name, s.shard_index, s.shard_count, s.shard_range FROM run_shards s JOIN runs r ON r.seq = s.run
       WHERE s.set_run = ? ORDER BY r.seq`,
    )
    .all(set) as Row[];
  return rows.length === 0 ? undefined : toRunSet(rows);
}

/** The run sets whose attempts carry the run-set name `name` (the plan's object name). */
export function runSetsNamed(catalog: Catalog, name: string): RunSet[] {
  const ids = sqlite(catalog).prepare('SELECT DISTINCT set_run FROM run_shards WHERE set_name = ? ORDER BY set_run').pluck().all(name) as string[];
  return ids.map((id) => runSet(catalog, id)!);
}

/**
 * A run set by its full id, a unique prefix of it, or its run-set name (`--run-set`, what an
 * operator knows it by) when one run set bears it (undefined: none, or several: a name given to
 * the run sets of several groups, or reused, is ambiguous; see ambiguousRunSetName).
 */
export function findRunSet(catalog: Catalog, ref: string): RunSet | undefined {
  const exact = runSet(catalog, ref);
  if (exact !== undefined || ref === '') return exact;
  const ids = sqlite(catalog)
    .prepare("SELECT DISTINCT set_run FROM run_shards WHERE set_run LIKE ? || '%' ESCAPE '\\' LIMIT 2")
    .pluck()
    .all(ref.replace(/[%_\\]/g, '\\$&')) as string[];
  if (ids.length > 0) return ids.length === 1 ? runSet(catalog, ids[0]!) : undefined;
  const named = runSetsNamed(catalog, ref);
  return named.length === 1 ? named[0] : undefined;
}

/**
 * The run set a command's run argument (`runs show`, `runs ack`) names: its id; else, when no
 * run has that id, prefix or number, a unique prefix of its id or its name (findRunSet).
 */
export function runSetOfRef(catalog: Catalog, ref: string): RunSet | undefined {
  return runSet(catalog, ref) ?? (catalog.findRun(ref) === undefined ? findRunSet(catalog, ref) : undefined);
}

/** Refuses a run-set name that several run sets bear, naming them (group and id); undefined otherwise. */
export function ambiguousRunSetName(catalog: Catalog, ref: string): UsageError | undefined {
  const named = runSetsNamed(catalog, ref);
  if (named.length < 2) return undefined;
  const which = named.slice(0, 4).map((s) => `${s.id} (group ${s.group})`);
  return new UsageError(`run set name ${JSON.stringify(ref)} names ${named.length} run sets: ${which.join(', ')}${named.length > 4 ? ', …' : ''}`, {
    hint: 'give the id of one (`lakeguard runs` lists them)',
  });
}

/** Run-set ids starting with `prefix` (for an ambiguity message), at most `limit`. */
export function runSetsStartingWith(catalog: Catalog, prefix: string, limit: number): string[] {
  return sqlite(catalog)
    .prepare("SELECT DISTINCT set_run FROM run_shards WHERE set_run LIKE ? || '%' ESCAPE '\\' ORDER BY set_run LIMIT ?")
    .pluck()
    .all(prefix.replace(/[%_\\]/g, '\\$&'), limit) as string[];
}

/**
 * The state after a run set's recorded shards: every run numbered before its first attempt,
 * its attempts (a superseded complete attempt holds no versions, so including it changes
 * nothing), and the runs numbered after its first attempt that started before it did (an
 * earlier run set's late shard, a long run synced late). Other runs numbered between or after
 * its attempts are left out: the next run set of the group may land between two of its
 * shards, and its versions would hide this one's. docs/catalog.md "Run sets".
 */
export function runSetCut(catalog: Catalog, set: RunSet): StateCut {
  const earlier = sqlite(catalog).prepare('SELECT seq FROM runs WHERE seq > ? AND started < ? ORDER BY seq').pluck().all(set.firstSeq, set.started) as number[];
  const seqs = [...new Set([...set.attempts.map((a) => a.run.seq), ...earlier])].sort((a, b) => a - b);
  return { runSeq: set.firstSeq - 1, runSet: { id: set.id, seqs } };
}

/**
 * Where a sync's listing marker must stay at or before: the earliest time part of the id and
 * attempt ids of every run set that still has an index without a finished attempt, so a late
 * shard's manifest is listed even if it is named before the locks now present (docs/catalog.md
 * "Sync", "Run sets"). Null when no run set is running.
 */
export function runningRunSetsFloor(catalog: Catalog): string | null {
  const row = sqlite(catalog)
    .prepare(
      `SELECT min(first) FROM (
         SELECT min(s.set_run, min(r.id)) AS first, max(s.shard_count) AS shards,
                count(DISTINCT CASE WHEN r.status <> 'running' THEN s.shard_index END) AS ended
         FROM run_shards s JOIN runs r ON r.seq = s.run GROUP BY s.set_run HAVING ended < shards)`,
    )
    .pluck()
    .get() as string | null;
  return row ?? null;
}

function toRunSet(rows: Row[]): RunSet {
  const first = rows[0]!;
  const of = Math.max(...rows.map((r) => r.shard_count as number));
  const attempts: ShardAttempt[] = rows.map((r) => ({
    run: toRunRow(r),
    index: r.shard_index as number,
    range: JSON.parse(r.shard_range as string) as ShardRange,
    superseded: false,
    counts: true,
  }));
  const completeKeeper = new Map<number, string>();
  for (const a of attempts) {
    if (a.run.status !== 'complete') continue;
    const k = completeKeeper.get(a.index);
    if (k === undefined || a.run.id < k) completeKeeper.set(a.index, a.run.id);
  }
  for (const a of attempts) {
    const keeper = completeKeeper.get(a.index);
    a.superseded = keeper !== undefined && keeper !== a.run.id;
    a.counts = !(a.superseded && a.run.status === 'complete');
  }
  const finishedIndexes = new Set(attempts.filter((a) => a.run.status !== 'running').map((a) => a.index));
  const missing: number[] = [];
  for (let i = 0; i < of; i++) if (!finishedIndexes.has(i)) missing.push(i);
  const attempted = new Set(attempts.map((a) => a.index));
  const notStarted = missing.filter((i) => !attempted.has(i));
  const status: RunSetStatus =
    missing.length > 0
      ? 'running'
      : completeKeeper.size >= of
        ? 'complete'
        : attempts.some((a) => a.run.status === 'complete' || a.run.status === 'partial')
          ? 'partial'
          : attempts.some((a) => a.run.status === 'failed')
            ? 'failed'
            : 'interrupted';
  const started = Math.min(...attempts.map((a) => a.run.started));
  // A superseded complete attempt changes no state (the catalog holds none of its versions), and
  // copy leaves it out: the run set ends with the last attempt that counts.
  const finished = status === 'running' ? null : Math.max(...attempts.filter((a) => a.counts).map((a) => a.run.finished ?? a.run.started));
  const seqs = attempts.map((a) => a.run.seq);
  return {
    id: first.set_run as string,
    name: first.set_name as string,
    group: first.grp as string,
    of,
    status,
    complete: completeKeeper.size,
    missing,
    notStarted,
    attempts: attempts.sort((a, b) => a.index - b.index || a.run.seq - b.run.seq),
    started,
    finished,
    counters: sumCounters(attempts.filter((a) => a.counts).map((a) => a.run.counters), finished === null ? null : finished - started),
    firstSeq: Math.min(...seqs),
    lastSeq: Math.max(...seqs),
  };
}

/** Counters summed over attempts (null when none has any); durationMs is the wall time given (0 while running). */
function sumCounters(list: readonly (RunCounters | null)[], wallMs: number | null): RunCounters | null {
  const present = list.filter((c): c is RunCounters => c !== null);
  if (present.length === 0) return null;
  const sum = (pick: (c: RunCounters) => number | undefined): number => present.reduce((n, c) => n + (pick(c) ?? 0), 0);
  const total: RunCounters = {
    objectsSeen: sum((c) => c.objectsSeen),
    objectsNew: sum((c) => c.objectsNew),
    objectsChanged: sum((c) => c.objectsChanged),
    objectsUnchanged: sum((c) => c.objectsUnchanged),
    objectsDeleted: sum((c) => c.objectsDeleted),
    objectsFailed: sum((c) => c.objectsFailed),
    objectsExcluded: sum((c) => c.objectsExcluded),
    bytesRead: sum((c) => c.bytesRead),
    bytesNew: sum((c) => c.bytesNew),
    bytesStored: sum((c) => c.bytesStored),
    blobsNew: sum((c) => c.blobsNew),
    blobsDeduplicated: sum((c) => c.blobsDeduplicated),
    packsWritten: sum((c) => c.packsWritten),
    requests: {
      list: sum((c) => c.requests?.list),
      get: sum((c) => c.requests?.get),
      head: sum((c) => c.requests?.head),
      put: sum((c) => c.requests?.put),
      delete: sum((c) => c.requests?.delete),
    },
    durationMs: wallMs ?? 0,
  };
  if (present.some((c) => c.objectsSkipped !== undefined)) total.objectsSkipped = sum((c) => c.objectsSkipped);
  if (present.some((c) => c.objectsReinstated !== undefined)) total.objectsReinstated = sum((c) => c.objectsReinstated);
  if (present.some((c) => c.objectsCarried !== undefined)) total.objectsCarried = sum((c) => c.objectsCarried);
  if (present.some((c) => c.objectsGoneSinceReport !== undefined)) total.objectsGoneSinceReport = sum((c) => c.objectsGoneSinceReport);
  if (present.some((c) => c.objectsNewerThanReport !== undefined)) total.objectsNewerThanReport = sum((c) => c.objectsNewerThanReport);
  // Listed from S3 Inventory: per bucket, the oldest report any attempt used (what the run set knows).
  const inventory: Record<string, string> = {};
  for (const c of present) for (const [bucket, at] of Object.entries(c.inventory ?? {})) if (inventory[bucket] === undefined || at < inventory[bucket]) inventory[bucket] = at;
  if (Object.keys(inventory).length > 0) total.inventory = inventory;
  return total;
}
