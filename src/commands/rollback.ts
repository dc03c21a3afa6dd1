import type { Command } from 'commander';
import type { StateCut } from '../catalog/catalog.js';
import { describeTimeCut } from '../catalog/instant.js';
import { runSet } from '../catalog/run-sets.js';
import { CatalogQueries } from '../catalog/queries.js';
import type { EventSink } from '../engine/events.js';
import { rollback, rollbackScopes, type RollbackSummary } from '../engine/rollback.js';
import { ROLLBACK_ACTIONS } from '../engine/rollback-plan.js';
import { openSource, outermostPrefixes, prefixesWithin, sourceName } from '../engine/sources.js';
import { ExitCode, UsageError } from '../errors.js';
import type { Policy, Source } from '../policy/types.js';
import type { RepositoryLock } from '../repository/locks.js';
import { formatBytes, formatDuration } from '../util/format.js';
import { action } from './action.js';
import { releaseLock } from './release-lock.js';
import { requireInScope } from './catalog-scope-guard.js';
import { openAll, type Opened } from './context.js';
import { groupsCovering, isLastClean, lastCleanWhy, resolveLastClean } from './last-clean.js';
import { drained, instantOption, requireBucket } from './query-common.js';
import { warnSuspectState } from './suspect-state.js';
import { NO_LOCK_FLAG, NO_LOCK_HELP, lockForReading } from './read-lock.js';
import { keysFromFile } from './restore.js';

interface RollbackFlags {
  bucket?: string;
  prefix?: string;
  keysFrom?: string;
  at?: string;
  dryRun?: boolean;
  keepNew?: boolean;
  lock: boolean;
}

export function register(program: Command): void {
  program
    .command('rollback')
    .description('make a source bucket (or a prefix of it) equal to its state at an instant, in place: server-side copies and undeletes where the old versions still exist')
    .requiredOption('-b, --bucket <name>', 'the source bucket to roll back (one the policy names)')
    .option('-p, --prefix <prefix>', 'only keys starting with this prefix: a/b also takes a/bc; end it with / for a directory')
    .option('--keys-from <file>', 'only the keys listed in this file, one per line: s3://bucket/key or key')
    .option('--at <time>', 'the instant: ISO 8601, a run id, 2h / 3d ago, or last-clean (before the oldest unacknowledged suspect run)')
    .option('--dry-run', 'print the plan (keys and bytes per action; with --json one line per key) and change nothing')
    .option('--keep-new', 'keep keys created after the instant (default: delete them; a versioned bucket keeps them as old versions)')
    .option(NO_LOCK_FLAG, NO_LOCK_HELP)
    .addHelpText('after', '\nDetails: docs/rollback.md.')
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const flags = cmd.opts<RollbackFlags>();
        if (flags.at === undefined) throw new UsageError('say which instant to roll back to: --at <time|run|last-clean>', { hint: 'list runs with `lakeguard runs`' });
        if (flags.keysFrom !== undefined && flags.prefix !== undefined) throw new UsageError('give --prefix or --keys-from, not both');
        const bucket = flags.bucket!;
        // Keys (--keys-from) or prefixes: either way, what every selected key starts with.
        let selected: string[] | undefined;
        const select = (policy: Policy): string[] => {
          const source = policySource(policy, bucket);
          return (selected ??= flags.keysFrom !== undefined ? namedKeys(flags.keysFrom, bucket, source) : scopePrefixes(source, flags.prefix ?? ''));
        };
        const ctx = await openAll(cmd, { reporter, signal, selects: (policy) => select(policy).map((prefix) => ({ bucket, prefix })) });
        let lock: RepositoryLock | null = null;
        try {
          const source = policySource(ctx.policy, bucket);
          const keys = select(ctx.policy);
          const scope = flags.keysFrom !== undefined ? { keys } : { prefixes: keys };
          // Rollback deletes live keys the catalog does not know: it must know every version it selects.
          requireInScope(ctx.catalog, 'rollback', keys.map((prefix) => ({ bucket, prefix })));
          requireBucket(new CatalogQueries(ctx.catalog), bucket);
          const { cut, cutTime, label } = rollbackInstant(ctx, flags.at, source, reporter.event);
          // As restore says it: going back to a state a suspect run recorded writes its damage into the live lake again.
          if (!isLastClean(flags.at)) warnSuspectState(ctx, cut, rollbackScopes(bucket, scope), reporter.event);
          // Shared: prune (exclusive) must not delete packs an upload reads.
          lock = await lockForReading(ctx.repo, 'rollback', flags.lock, reporter.event);
          const opened = openSource(source, ctx.policy, { maxSockets: ctx.policy.concurrency.transfer * 2 });
          const summary = await rollback({
            repo: ctx.repo,
            catalog: ctx.catalog,
            bucket,
            store: opened.objectStore,
            scope,
            cut,
            cutTime,
            isExcluded: opened.isExcluded,
            keepNew: flags.keepNew ?? false,
            dryRun: flags.dryRun ?? false,
            concurrency: ctx.policy.concurrency.transfer,
            events: reporter.event,
            eventsDrained: drained,
            signal,
          });
          const where = `${opened.objectStore.location}${flags.prefix ?? ''}`;
          reporter.summary({ state: label, target: where, ...summary }, describe(summary, label, where));
          return summary.failed > 0 ? ExitCode.partial : ExitCode.ok;
        } finally {
          await releaseLock(lock, reporter);
          ctx.close();
        }
      }),
    );
}

/** The policy's source named `bucket`: rollback writes nowhere else. */
function policySource(policy: Policy, bucket: string): Source {
  const sources = policy.groups.flatMap((g) => g.sources);
  const source = sources.find((s) => sourceName(s) === bucket);
  if (source !== undefined) return source;
  throw new UsageError(`rollback writes only to a source the policy names, and ${JSON.stringify(bucket)} is none`, {
    hint: sources.length > 0 ? `sources: ${[...new Set(sources.map(sourceName))].join(', ')}` : 'the policy names no sources (give --policy)',
  });
}

/**
 * The prefixes to roll back: `prefix` within what the policy backs up of the source. A key
 * outside the source's prefixes was never in a backup, so rolling it back would delete it.
 */
function scopePrefixes(source: Source, prefix: string): string[] {
  const scopes = prefixesWithin(source.prefixes, prefix);
  if (scopes.length > 0) return scopes;
  const backedUp = outermostPrefixes(source.prefixes);
  throw new UsageError(`--prefix ${JSON.stringify(prefix)} is outside what the policy backs up of ${sourceName(source)}`, { hint: `its prefixes: ${backedUp.map((p) => JSON.stringify(p)).join(', ')}` });
}

/** --keys-from: keys of this bucket, each inside what the policy backs up of it. */
function namedKeys(file: string, bucket: string, source: Source): string[] {
  const prefixes = outermostPrefixes(source.prefixes);
  return keysFromFile(file, bucket).map((s) => {
    if (s.bucket !== bucket) throw new UsageError(`--keys-from ${file}: s3://${s.bucket}/${s.key} is not in --bucket ${bucket}`);
    const key = s.key!;
    if (!prefixes.some((p) => key.startsWith(p))) throw new UsageError(`--keys-from ${file}: ${key} is outside what the policy backs up of ${bucket}`, { hint: `its prefixes: ${prefixes.join(', ')}` });
    return key;
  });
}

/**
 * The instant: what restore's --at accepts, or `last-clean`. The cut's time is the instant
 * itself, or for a run the time it started (a live key older than that which the run did not
 * record was never backed up, and is kept).
 */
function rollbackInstant(ctx: Opened, at: string, source: Source, events: EventSink): { cut: StateCut; cutTime: number; label: string } {
  if (isLastClean(at)) {
    const groups = groupsCovering(ctx.policy, sourceName(source));
    const last = resolveLastClean(ctx.catalog, groups, events, '--at');
    return { cut: last.cut, cutTime: last.started, label: `state ${last.what} recorded (${lastCleanWhy(last)})` };
  }
  const cut = instantOption(at, ctx.catalog, '--at');
  if ('time' in cut) return { cut, cutTime: cut.time, label: describeTimeCut(ctx.catalog, cut.time) };
  if (cut.runSet !== undefined) {
    const set = runSet(ctx.catalog, cut.runSet.id)!;
    return { cut, cutTime: set.started, label: `state after run set ${set.id}` };
  }
  const run = ctx.catalog.listRuns().find((r) => r.seq === cut.runSeq)!;
  return { cut, cutTime: run.started, label: `state run ${run.id} recorded` };
}

function describe(s: RollbackSummary, label: string, where: string): string {
  const lines = [
    s.dryRun
      ? `dry run: rolling back ${where} to the ${label} would do (nothing was changed):`
      : `rolled back ${where} to the ${label} in ${formatDuration(s.durationMs)}:`,
  ];
  const widest = Math.max(...ROLLBACK_ACTIONS.map((a) => String(s.actions[a].keys).length));
  for (const a of ROLLBACK_ACTIONS) {
    const { keys, bytes } = s.actions[a];
    if (a === 'keep' && keys === 0) continue;
    lines.push(`  ${a.padEnd(10)} ${String(keys).padStart(widest)} keys  ${formatBytes(bytes)}${ACTION_NOTES[a]}`);
  }
  if (!s.dryRun || s.requests.list > 0) {
    const r = s.requests;
    lines.push(
      `  requests   ${r.list} LIST, ${r.copy} COPY, ${r.delete} DELETE, ${r.put} PUT, ${r.head} HEAD to the bucket; ${r.repositoryGet} GET from the repository`,
      `  ${formatBytes(s.bytesThroughClient)} of objects through this machine`,
    );
  }
  if (!s.versioned) lines.push('  the bucket keeps no versions: changed and deleted keys come from the repository (upload)');
  if (s.failed > 0) lines.push(`  ${s.failed} keys failed (listed above): run the same command again once fixed; it does only what is left`);
  return lines.join('\n');
}

const ACTION_NOTES: Record<(typeof ROLLBACK_ACTIONS)[number], string> = {
  copy: '  (server-side copy of the old version)',
  undelete: '  (delete markers removed)',
  upload: '  (from the repository)',
  delete: '  (created after the instant)',
  unchanged: '',
  keep: '  (not deleted: --keep-new, or never in a backup)',
};
