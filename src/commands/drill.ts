import { randomBytes } from 'node:crypto';
import { rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Catalog, StateCut } from '../catalog/catalog.js';
import { runSet } from '../catalog/run-sets.js';
import { MAX_DRILL_SAMPLE, runDrill, type DrillReport, type DrillScratch } from '../engine/drill.js';
import { ExitCode, UsageError } from '../errors.js';
import { Notifier } from '../report/notify.js';
import { acquireForReading, type RepositoryLock } from '../repository/locks.js';
import { listDrills } from '../catalog/drills.js';
import type { EventSink } from '../engine/events.js';
import type { DrillSchedule } from '../policy/types.js';
import { formatBytes, formatDuration } from '../util/format.js';
import { printable } from '../util/printable.js';
import { action } from './action.js';
import { releaseLock } from './release-lock.js';
import { runsAndRunSets } from './runs-sets.js';
import { requireInScope } from './catalog-scope-guard.js';
import { openAll, type Opened } from './context.js';
import { csvRow } from './query-common.js';
import { openTarget, pickCut, restoreSelects, scopeSelections, scopesFor, type RestoreFlags } from './restore.js';

export interface DrillFlags {
  group?: string;
  bucket?: string;
  prefix?: string;
  keysFrom?: string;
  at?: string;
  run?: string;
  sample?: string;
  all?: boolean;
  to?: string;
  toDir?: string;
  toEndpoint?: string;
  keep?: boolean;
  csv?: boolean;
}

const DEFAULT_SAMPLE = 100;

export function register(program: Command): void {
  program
    .command('drill')
    .description('restore drill: restore a sample into a scratch target, verify every byte, measure RTO and RPO, record the result')
    .option('-g, --group <name>', 'drill this protection group')
    .option('-b, --bucket <name>', 'drill this bucket (or local source name)')
    .option('-p, --prefix <prefix>', 'only keys under this prefix (with --bucket)')
    .option('--keys-from <file>', 'only the keys listed in this file, one per line: s3://bucket/key, or key with --bucket')
    .option('--at <time>', 'the state at this instant (as restore --at); default: the latest complete or partial run')
    .option('-r, --run <id>', 'the state a run recorded')
    .option('--sample <n>', `restore this many objects chosen at random (default ${DEFAULT_SAMPLE}, at most ${MAX_DRILL_SAMPLE})`)
    .option('--all', 'restore every selected object')
    .option('--to <url>', 'scratch target s3://bucket/prefix/: the drill writes under prefix/lakeguard-drill-<random>/ only')
    .option('--to-dir <dir>', 'scratch target directory: the drill writes under DIR/lakeguard-drill-<random>/ only')
    .option('--to-endpoint <url>', "S3 endpoint of the --to bucket (default: the policy's s3.endpoint)")
    .option('--keep', 'keep what was restored (the report names where); default: remove it')
    .option('--csv', 'print the report as CSV (a header and one row) and nothing else')
    .addHelpText(
      'after',
      `
RTO is the restore's wall time (reading packs, writing the scratch target); the verification
that follows (every restored object read back and cut into blobs whose ids must equal the
catalog's) is reported apart. RPO is the age of the newest complete or partial run at the
drilled instant (--at: a time, or the end of the run it names; else now). The drill is recorded in the repository (drills/): \`runs\`
and \`calendar\` show it on every host. A damaged pack or object makes the drill exit 1 and
names each object. Details: docs/drill.md.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const flags = cmd.opts<DrillFlags>();
        const sample = checkFlags(flags, reporter.json);
        const ctx = await openAll(cmd, { reporter, signal, selects: (policy) => restoreSelects(policy, { ...flags, lock: true }) });
        try {
          // The drill document is named while this lock is held (catalog sync's marker relies on it).
          const lock = await acquireForReading(ctx.repo, 'drill', 'a drill cannot run: give it credentials that may write locks/ and drills/');
          try {
            const report = await drillFromFlags(ctx, flags, sample, { lock, events: reporter.event, signal });
            const notifier = new Notifier(ctx.policy.notify, { warn: (message) => reporter.warnAlways(message) });
            notifier.drillEnded({ ...report, ...rates(report) });
            await notifier.flush();
            reporter.metrics.drill({ scope: report.scope, finished: Date.parse(report.created), ok: report.ok, rtoMs: report.rtoMs, objects: report.objects.restored, bytes: report.bytes, damaged: report.objects.damaged, rpoMs: report.rpoMs });
            if (flags.csv && !reporter.json) process.stdout.write(drillCsv(report));
            else reporter.summary({ ...report, ...rates(report) }, describeDrill(report));
            return report.ok ? ExitCode.ok : ExitCode.error;
          } finally {
            await releaseLock(lock, reporter);
          }
        } finally {
          ctx.close();
        }
      }),
    );
}

/**
 * One drill as the command's flags describe it: the state, the scopes, the scratch root, the
 * RPO's run. `watch` runs the policy's `drill:` schedule through `scheduledDrill`, which ends here.
 */
export async function drillFromFlags(
  ctx: Opened,
  flags: DrillFlags,
  sample: number | 'all',
  run: { lock: RepositoryLock; events: EventSink; signal: AbortSignal },
): Promise<DrillReport> {
  const restoreFlags: RestoreFlags = { ...flags, lock: true };
  const { cut, label, group } = pickCut(ctx, restoreFlags, run.events);
  const scopes = scopesFor(ctx, restoreFlags, group, 'drill');
  requireInScope(ctx.catalog, 'drill', scopeSelections(scopes));
  const instant = cutInstant(ctx, cut, flags.at === undefined);
  return runDrill({
    repo: ctx.repo,
    catalog: ctx.catalog,
    scopes,
    cut,
    scopeLabel: scopeLabel(flags, group),
    stateLabel: label,
    rpo: { run: newestRunAt(ctx.catalog, group, instant), instant },
    sample,
    scratch: openScratch(ctx, flags),
    keep: flags.keep === true,
    lock: run.lock,
    concurrency: ctx.policy.concurrency.transfer,
    events: run.events,
    signal: run.signal,
  });
}

/**
 * The policy's `drill:` schedule for one group, as `watch` runs it when `every` has passed since
 * the group's last drill (`lastDrillOf`): its latest complete or partial run, `sample` objects,
 * into `to` or `to_dir`. The caller holds a shared lock (as for a restore) and tells monitoring
 * (Notifier.drillEnded, MetricsCollector.drill) what the report says.
 */
export function scheduledDrill(ctx: Opened, schedule: DrillSchedule, group: string, run: { lock: RepositoryLock; events: EventSink; signal: AbortSignal }): Promise<DrillReport> {
  const flags: DrillFlags = { group, ...(schedule.to === undefined ? {} : { to: schedule.to }), ...(schedule.toDir === undefined ? {} : { toDir: schedule.toDir }) };
  return drillFromFlags(ctx, flags, schedule.sample, run);
}

/** When the group's last drill ended (ms), or null: `watch` drills again once `every` has passed. */
export function lastDrillOf(catalog: Catalog, group: string): number | null {
  return listDrills(catalog).filter((d) => d.scope === `group:${group}`).at(-1)?.created ?? null;
}

/** The sample size, after checking the flags (before anything is opened). */
function checkFlags(flags: DrillFlags, json: boolean): number | 'all' {
  if (json && flags.csv === true) throw new UsageError('give --json or --csv, not both');
  if ((flags.to === undefined) === (flags.toDir === undefined)) throw new UsageError('give exactly one scratch target: --to s3://bucket/prefix/ or --to-dir DIR');
  if (flags.to !== undefined && !/^s3:\/\/[^/]+/.test(flags.to)) throw new UsageError(`--to ${printable(flags.to)}: expected s3://bucket/prefix/`);
  if (flags.toEndpoint !== undefined && flags.to === undefined) throw new UsageError('--to-endpoint is the S3 server of the --to bucket: give --to s3://bucket/prefix/ with it');
  if (flags.prefix !== undefined && flags.bucket === undefined) throw new UsageError('--prefix needs --bucket');
  if (flags.at !== undefined && flags.run !== undefined) throw new UsageError('give --at or --run, not both');
  if (flags.keysFrom !== undefined && flags.prefix !== undefined) throw new UsageError('--keys-from replaces --prefix');
  if (flags.all === true && flags.sample !== undefined) throw new UsageError('give --sample N or --all, not both');
  if (flags.all === true) return 'all';
  if (flags.sample === undefined) return DEFAULT_SAMPLE;
  const n = Number(flags.sample);
  if (!/^\d+$/.test(flags.sample) || n < 1 || n > MAX_DRILL_SAMPLE) {
    throw new UsageError(`--sample ${printable(flags.sample)}: expected a whole number from 1 to ${MAX_DRILL_SAMPLE}`, { hint: 'or --all to drill every object' });
  }
  return n;
}

/**
 * The drill's own scratch root, a fresh random name under the target: it writes nowhere else,
 * and the cleanup removes only the keys it restored there.
 */
function openScratch(ctx: Opened, flags: DrillFlags): DrillScratch {
  const name = `lakeguard-drill-${randomBytes(6).toString('hex')}`;
  if (flags.toDir !== undefined) {
    const root = join(resolve(flags.toDir), name);
    return { store: openTarget(ctx.policy, { toDir: root, lock: true }), location: `${root}/`, removeRoot: () => rmdir(root) };
  }
  const to = `${flags.to!.replace(/\/*$/, '')}/${name}/`;
  return { store: openTarget(ctx.policy, { to, lock: true, ...(flags.toEndpoint === undefined ? {} : { toEndpoint: flags.toEndpoint }) }), location: to };
}

/**
 * The drilled instant, for the RPO: `--at T` itself; the end of the run (or run set) `--at`
 * names (`--at <run>`, `--at last-clean`), whose state the drill restores; else now (the data a
 * disaster now would lose).
 */
function cutInstant(ctx: Opened, cut: StateCut, latest: boolean): number {
  if ('time' in cut) return cut.time;
  if (latest) return Date.now();
  if (cut.runSet !== undefined) return runSet(ctx.catalog, cut.runSet.id)?.finished ?? Date.now();
  const run = ctx.catalog.findRun(String(cut.runSeq));
  return run?.finished ?? run?.started ?? Date.now();
}

function scopeLabel(flags: DrillFlags, group: string | undefined): string {
  if (flags.keysFrom !== undefined) return `keys:${flags.keysFrom}`;
  if (flags.bucket !== undefined) return `bucket:${flags.bucket}/${flags.prefix ?? ''}`;
  return `group:${group ?? ''}`;
}

/**
 * The newest complete or partial run (of the group, when one is drilled) that ended by
 * `instant`. A run set counts as one run (as `runs` and `restore` read it): its status and end
 * are the whole set's, never one shard attempt's (a partial view of the group).
 */
export function newestRunAt(catalog: Catalog, group: string | undefined, instant: number): { id: string; finished: number } | null {
  let newest: { id: string; finished: number } | null = null;
  for (const r of runsAndRunSets(catalog, group)) {
    if ((r.status !== 'complete' && r.status !== 'partial') || r.finished === null || r.finished > instant) continue;
    if (newest === null || r.finished > newest.finished) newest = { id: r.id, finished: r.finished };
  }
  return newest;
}

export function rates(r: DrillReport): { objectsPerSecond: number; bytesPerSecond: number } {
  const perSecond = r.rtoMs > 0 ? 1000 / r.rtoMs : 0;
  return { objectsPerSecond: round(r.objects.restored * perSecond), bytesPerSecond: Math.round(r.bytes * perSecond) };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

const CSV_HEADER = ['drill', 'created', 'scope', 'state', 'run', 'ok', 'selected', 'sampled', 'restored', 'verified', 'damaged', 'bytes', 'rto_seconds', 'verify_seconds', 'objects_per_second', 'bytes_per_second', 'rpo_seconds', 'scratch', 'kept'];

/** The report as CSV: a header and one row (docs/drill.md). */
export function drillCsv(r: DrillReport): string {
  const { objectsPerSecond, bytesPerSecond } = rates(r);
  const o = r.objects;
  return (
    csvRow(CSV_HEADER) +
    csvRow([r.id, r.created, r.scope, r.state, r.run, r.ok ? 'true' : 'false', o.selected, o.sampled, o.restored, o.verified, o.damaged, r.bytes, r.rtoMs / 1000, r.verifyMs / 1000, objectsPerSecond, bytesPerSecond, r.rpoMs === null ? null : r.rpoMs / 1000, r.scratch, r.kept ? 'true' : 'false'])
  );
}

/** The report for people. */
export function describeDrill(r: DrillReport): string {
  const o = r.objects;
  const { objectsPerSecond, bytesPerSecond } = rates(r);
  const lines = [
    `drill ${r.recorded ? r.id : '(not recorded)'} of ${r.scope} (${r.state}): ${r.ok ? 'OK, every byte verified' : `FAILED, ${o.damaged} objects damaged`}`,
    `  sample    ${o.sampled} of ${o.selected} objects: ${o.restored} restored, ${o.verified} verified, ${o.damaged} damaged`,
    `  RTO       ${formatDuration(r.rtoMs)} to restore ${formatBytes(r.bytes)} (${objectsPerSecond} objects/s, ${formatBytes(bytesPerSecond)}/s); verified in ${formatDuration(r.verifyMs)}`,
    `  RPO       ${r.rpoMs === null ? 'no complete run at that instant' : `${formatDuration(r.rpoMs)} (newest run ${r.run})`}`,
    `  scratch   ${r.scratch} ${r.kept ? '(kept)' : r.cleanupFailed > 0 ? `(${r.cleanupFailed} objects could not be removed; see the warnings)` : '(removed)'}`,
  ];
  for (const d of r.damaged) lines.push(`  damaged   ${printable(`${d.bucket}/${d.key}`)}: ${printable(d.problem)}`);
  if (o.damaged > r.damaged.length) lines.push(`  … and ${o.damaged - r.damaged.length} more (each reported above)`);
  return lines.join('\n');
}
