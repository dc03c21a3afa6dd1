/**
 * `runs` and `runs show` for run sets (docs/scale-out.md "Shards"): a run set is listed as one
 * run (one row per run set per group, at its first shard attempt's place), and `runs show
 * <run set id>` lists its shards and the indexes still missing. An attempt's own id still
 * shows that attempt as a run.
 */
import type { Catalog } from '../catalog/catalog.js';
import { runSetsOf, type RunSet, type ShardAttempt } from '../catalog/run-sets.js';
import type { RunCounters, RunRow, ShardRange } from '../catalog/types.js';
import { UsageError } from '../errors.js';
import { formatBytes, formatDuration, formatTimeMs, table } from '../util/format.js';
import { plural, withIso } from './query-common.js';
import type { Reporter } from './reporter.js';

type Mark = 'suspect' | 'acknowledged' | null;
type RunMark = (runId: string) => Mark;

/** Ordinary runs and run sets of a group (all groups when absent), in run order. */
export function runsAndRunSets(catalog: Catalog, group?: string): (RunRow | RunSet)[] {
  const opts = group === undefined ? {} : { group };
  const runs: (RunRow | RunSet)[] = catalog.listRuns(opts).filter((r) => r.shard === undefined);
  const sets = runSetsOf(catalog, opts);
  return [...runs, ...sets].sort((a, b) => seqOf(a) - seqOf(b));
}

export function isRunSet(r: RunRow | RunSet): r is RunSet {
  return 'attempts' in r;
}

/** A run as messages name it: `run <id>`, or for a shard attempt `run set <id>` (the id `runs` shows). */
export function runUnitName(r: RunRow): string {
  return r.shard === undefined ? `run ${r.id}` : `run set ${r.shard.set}`;
}

function seqOf(r: RunRow | RunSet): number {
  return isRunSet(r) ? r.firstSeq : r.seq;
}

/** A run set is suspect when any of its counting shard attempts is (and not acknowledged). */
export function runSetMark(set: RunSet, mark: RunMark): Mark {
  const marks = set.attempts.filter((a) => a.counts).map((a) => mark(a.run.id));
  return marks.includes('suspect') ? 'suspect' : marks.includes('acknowledged') ? 'acknowledged' : null;
}

/** `runs --json`'s message for a run set: a run's fields, then `shards` (each attempt with its own mark). */
export function runSetMessage(set: RunSet, runMark: RunMark): { message_type: 'run' } & Record<string, unknown> {
  const mark = runSetMark(set, runMark);
  return {
    message_type: 'run',
    ...withIso(
      { seq: set.firstSeq, id: set.id, group: set.group, started: set.started, finished: set.finished, status: set.status, host: null, counters: set.counters },
      'started',
      'finished',
    ),
    suspect: mark === 'suspect',
    acknowledged: mark === 'acknowledged',
    runSet: set.name,
    shards: shardsJson(set, runMark),
  };
}

function shardsJson(set: RunSet, runMark: RunMark): Record<string, unknown> {
  return {
    of: set.of,
    complete: set.complete,
    missing: set.missing,
    // Indexes with no attempt known at all, and since when the run set waits for them (its start).
    notStarted: set.notStarted,
    ...withIso({ notStartedSince: set.notStarted.length === 0 ? null : set.started }, 'notStartedSince'),
    attempts: set.attempts.map((a) => ({
      index: a.index,
      ...withIso({ id: a.run.id, seq: a.run.seq, status: a.run.status, host: a.run.host, started: a.run.started, finished: a.run.finished }, 'started', 'finished'),
      superseded: a.superseded,
      counts: a.counts,
      suspect: runMark(a.run.id) === 'suspect',
      acknowledged: runMark(a.run.id) === 'acknowledged',
      range: a.range,
      counters: a.run.counters,
    })),
  };
}

/**
 * The STATUS cell of `runs`: `complete (shards 4/4)`, `running ! SUSPECT (shards 3/4)`,
 * `running (shards 4/5, shard 4 with nothing recorded in 3h 5m)`.
 */
export function runSetStatus(set: RunSet, mark: Mark, now = Date.now()): string {
  // "shard 0 with nothing recorded", never "0 with …": a bare index reads as a count of none. Not
  // "not started": a shard killed before it wrote anything had started, and the repository cannot tell.
  const which = `${set.notStarted.length === 1 ? 'shard' : 'shards'} ${listIndexes(set.notStarted)}`;
  const waiting = set.notStarted.length === 0 ? '' : `, ${which} with nothing recorded in ${formatDuration(Math.max(0, now - set.started))}`;
  return `${set.status}${mark === 'suspect' ? ' ! SUSPECT' : ''} (shards ${set.complete}/${set.of}${waiting})`;
}

/** `4`, `3, 4`, `0, 1, 2, … (7 in all)`. */
function listIndexes(indexes: readonly number[]): string {
  return indexes.length <= 5 ? indexes.join(', ') : `${indexes.slice(0, 3).join(', ')}, … (${indexes.length} in all)`;
}

/** `runs show <run set id>`: the run set's summary, then one line per shard attempt and per missing index. */
export function showRunSet(
  set: RunSet,
  reporter: Reporter,
  runMark: RunMark,
  flags: { versions?: boolean; failures?: boolean; csv?: boolean; anomalies?: boolean },
  scoped = false,
  now = Date.now(),
  /** The repository its attempts were copied from (lakeguard copy), when they are copies. */
  copiedFrom?: string,
  /**
   * The `--group` a re-run of a missing shard needs: the run set's group, when the policy has
   * groups the run-set name was not used for (it was started with --group), which a re-run
   * without --group would back up too, and be refused (the plan has no boundaries for them).
   */
  rerunGroup?: string,
): void {
  const mark = runSetMark(set, runMark);
  // The counting attempts a person has to look at (what makes the set suspect).
  const suspect = set.attempts.filter((a) => a.counts && runMark(a.run.id) === 'suspect').map((a) => a.run.id);
  const option = flags.versions ? '--versions' : flags.failures ? '--failures' : flags.csv ? '--csv' : flags.anomalies ? '--anomalies' : null;
  if (option !== null) {
    // For --anomalies, the example is an attempt that has some: a clean one would say "not suspect".
    const first = (option === '--anomalies' ? suspect[0] : undefined) ?? set.attempts.find((a) => a.counts)?.run.id ?? set.attempts[0]!.run.id;
    const others = option === '--anomalies' && suspect.length > 1 ? `; suspect too: ${suspect.slice(1).join(', ')}` : '';
    throw new UsageError(`${set.id} is a run set of ${plural(set.attempts.length, 'shard attempt')}: ${option} lists what one attempt recorded`, {
      hint: `give one attempt's id, e.g. \`lakeguard runs show ${first} ${option}\`${others} (\`lakeguard runs show ${set.id}\` lists them)`,
    });
  }
  if (reporter.json) {
    const { message_type: _, ...fields } = runSetMessage(set, runMark);
    reporter.summary(fields, '');
    return;
  }
  const c = set.counters;
  const lines: [string, string][] = [
    ['run set', `${set.id} (${set.name}, ${plural(set.of, 'shard')})`],
    ['group', set.group],
    ['status', `${set.status}${mark === 'suspect' ? ` ! SUSPECT (${suspectNote(suspect, scoped)})` : ''}: ${statusDetail(set)}`],
    ['started', formatTimeMs(set.started)],
    ['finished', set.finished === null ? '-' : `${formatTimeMs(set.finished)} (${formatDuration(set.finished - set.started)})`],
  ];
  if (c !== null) lines.push(...counterLines(c));
  reporter.info(lines.map(([k, v]) => `${k.padEnd(9)} ${v}`).join('\n'));
  reporter.info('');
  const rows: (string | number)[][] = [];
  for (let index = 0; index < set.of; index++) {
    const attempts = set.attempts.filter((a) => a.index === index);
    if (attempts.length === 0) rows.push([index, '-', 'missing', '-', '-', '-', '-', '-']);
    for (const a of attempts) rows.push(attemptRow(a, runMark(a.run.id)));
  }
  reporter.info(table(['SHARD', 'ATTEMPT', 'STATUS', 'RANGE', 'SEEN', 'NEW', 'FAILED', 'HOST'], rows));
  if (set.missing.length > 0 && copiedFrom !== undefined) {
    // A copy's target: its shards are backed up in the source, and come here by copy.
    reporter.info(
      `\nmissing: ${plural(set.missing.length, 'shard')} (${set.missing.join(', ')}) without a finished attempt in this repository; its attempts are copies from repository ${copiedFrom}: ` +
        'run `lakeguard copy` again once they have finished there',
    );
    return;
  }
  if (set.missing.length > 0) {
    reporter.info(`\nmissing: ${plural(set.missing.length, 'shard')} (${set.missing.join(', ')}) without a finished attempt; run ${set.missing.length === 1 ? 'it' : 'them'} again with \`lakeguard backup${rerunGroup === undefined ? '' : ` --group ${rerunGroup}`} --run-set ${set.name} --shards ${set.of} --shard ${set.missing.length === 1 ? set.missing[0] : 'I'}\` (or let the engine retry ${set.missing.length === 1 ? 'it' : 'them'})`);
  }
  if (set.notStarted.length > 0) {
    reporter.info(
      `nothing recorded: ${plural(set.notStarted.length, 'shard')} (${set.notStarted.join(', ')}) with no attempt recorded ${formatDuration(Math.max(0, now - set.started))} after the run set began ` +
        `(a shard's manifest comes at its end, so one may still be running elsewhere, or was stopped before it wrote anything); if the engine runs fewer than ${set.of} indexes ` +
        `(a Kubernetes Job's \`completions\`, an array's size), they never will: make it ${set.of}, as \`--shards\`/LAKEGUARD_SHARDS says`,
    );
  }
}

/** Which attempts make the set suspect, and the command that says why (which a scoped catalog refuses). */
function suspectNote(ids: string[], scoped: boolean): string {
  const where = scoped ? ' on a whole catalog' : '';
  if (ids.length === 1) return `shard attempt ${ids[0]} is suspect: \`lakeguard runs show ${ids[0]} --anomalies\`${where}`;
  return `shard attempts ${ids.join(', ')} are suspect: \`lakeguard runs show <attempt id> --anomalies\` for each${where}`;
}

function statusDetail(set: RunSet): string {
  const done = `${set.complete} of ${plural(set.of, 'shard')} complete`;
  if (set.status === 'running') return `${done}; missing: ${set.missing.join(', ')}`;
  if (set.status === 'partial') return `${done}; every shard has finished, some partial, failed or interrupted`;
  if (set.status === 'failed' || set.status === 'interrupted') return `${done}; every shard attempt failed or was interrupted: no state to restore from (see each attempt below)`;
  return done;
}

function attemptRow(a: ShardAttempt, mark: Mark): (string | number)[] {
  const c = a.run.counters;
  const status = `${a.run.status}${mark === 'suspect' ? ' ! SUSPECT' : ''}${a.superseded ? ` (superseded${a.counts ? '' : ', not imported'})` : ''}`;
  return [a.index, a.run.id, status, describeRange(a.range), c?.objectsSeen ?? 0, (c?.objectsNew ?? 0) + (c?.objectsChanged ?? 0), c?.objectsFailed ?? 0, a.run.host ?? '-'];
}

/** A shard's key range: `after s3://b/k up to s3://b/k2`, `up to …`, `after …`, or `every key`. */
export function describeRange(r: ShardRange): string {
  const at = (b: [string, string]): string => `s3://${b[0]}/${b[1]}`;
  if (r.after === undefined && r.upTo === undefined) return 'every key';
  if (r.after === undefined) return `up to ${at(r.upTo!)}`;
  if (r.upTo === undefined) return `after ${at(r.after)}`;
  return `after ${at(r.after)} up to ${at(r.upTo)}`;
}

function counterLines(c: RunCounters): [string, string][] {
  return [
    [
      'listing',
      `${c.objectsSeen} seen: ${c.objectsNew} new, ${c.objectsChanged} changed, ${c.objectsUnchanged} unchanged, ` +
        `${c.objectsDeleted} deleted, ${c.objectsFailed} failed, ${c.objectsExcluded} excluded (sum over its shard attempts)`,
    ],
    ['data', `${formatBytes(c.bytesRead)} read, ${formatBytes(c.bytesNew)} new, ${formatBytes(c.bytesStored)} stored in ${plural(c.packsWritten, 'pack')}`],
    ['blobs', `${c.blobsNew} new, ${c.blobsDeduplicated} deduplicated`],
    ['requests', Object.entries(c.requests).map(([k, v]) => `${v} ${k}`).join(', ')],
  ];
}
