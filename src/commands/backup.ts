import type { Command } from 'commander';
import type { BackupSummary } from '../engine/events.js';
import { backupGroup, recordedRunOf } from '../engine/backup.js';
import { repositoryCanDelete } from '../engine/permission-probe.js';
import { ExitCode, UsageError, errorMessage } from '../errors.js';
import { Notifier, runNoticeOf } from '../report/notify.js';
import type { Group } from '../policy/types.js';
import type { RunMetricInput } from '../report/metrics.js';
import { defaultEncodeThreads } from '../repository/encode-pool.js';
import { encodeWorkerScript } from '../repository/encode-worker-path.js';
import { RepositoryLock } from '../repository/locks.js';
import { formatBytes, formatDuration } from '../util/format.js';
import { plural } from './query-common.js';
import { action } from './action.js';
import { anomalyMessages, suspectBlock } from './runs-anomalies.js';
import { inventoryListing } from './runs.js';
import { openAll, selectGroups } from './context.js';
import { describeShard, planShards } from './backup-shards.js';
import { shardCatalogScope } from '../engine/shard-scope.js';
import { releaseLock } from './release-lock.js';
import { shardIdentity, type ShardFlags } from './shard-options.js';
import { drained } from './query-common.js';

export function register(program: Command): void {
  program
    .command('backup')
    .description('back up every group of the policy (or one), copying only what changed since the last run')
    .option('-g, --group <name>', 'back up only this protection group')
    .option('-n, --dry-run', 'list and compare, but read and write nothing; show what would be backed up (with --json: one "would_back_up" message per object)')
    .option('--full-versions', 'versioned buckets: list every version of every key, not only the keys that changed (done on a seed and every 24th run anyway; docs/versioned-incremental.md)')
    .option('--shards <n>', 'this backup is one of N shards of one run (docs/scale-out.md); default: $LAKEGUARD_SHARDS, or the engine array size')
    .option('--shard <i>', 'which shard this process backs up, 0 to N-1; default: the engine index (JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX, SLURM_ARRAY_TASK_ID)')
    .option('--run-set <name>', 'the name every shard of the run shares; default: $LAKEGUARD_RUN_SET, or derived from the Slurm or AWS Batch job id')
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const opts = cmd.opts<{ group?: string; dryRun?: boolean; fullVersions?: boolean } & ShardFlags>();
        // Before anything is opened: a bad shard setting is a usage error at once.
        const shard = shardIdentity(opts, process.env);
        const encodeThreads = threadsSetting(process.env);
        // A shard on a host whose catalog holds nothing yet syncs only its range (planned first).
        let early: Awaited<ReturnType<typeof shardCatalogScope>>['planned'];
        const ctx = await openAll(cmd, {
          reporter,
          writes: true,
          wholeCatalog: shard === null || shard.of === 1,
          signal,
          ...(shard === null || shard.of === 1
            ? {}
            : {
                // Its own catalog file unless the host's holds the whole repository (or one was named).
                shardCatalog: { index: shard.index, of: shard.of, ...(opts.group === undefined ? {} : { group: opts.group }) },
                // Its keys are known only once planned: a catalog scoped on demand (a named file an
                // `ls` scoped) becomes whole, as for any backup. A fresh one syncs the shard's range
                // (scopeBeforeSync), and a whole or range-scoped one stays as it is.
                selects: () => null,
                scopeBeforeSync: async ({ repo, catalog, policy }) => {
                  const groups = selectGroups(policy, opts.group);
                  const r = await shardCatalogScope({ repo, catalog, policy, groups, shard, dryRun: opts.dryRun ?? false, concurrency: Math.min(16, policy.concurrency.transfer), signal });
                  early = r.planned;
                  return r.scopeTo;
                },
              }),
        });
        // The single-file binary has no worker script: it encodes in the main thread whatever
        // LAKEGUARD_THREADS says, and says so rather than ignoring the setting without a word.
        if (encodeThreads !== undefined && encodeThreads > 1 && !opts.dryRun && encodeWorkerScript() === null) {
          reporter.event({ type: 'warning', message: `LAKEGUARD_THREADS=${process.env.LAKEGUARD_THREADS?.trim()} has no effect: there is no encode worker script beside this program (the single-file binary has none), so this backup encodes in the main thread` });
        }
        let lock: RepositoryLock | undefined;
        // Dry runs tell nobody: no run happens.
        const notifier = new Notifier(opts.dryRun ? undefined : ctx.policy.notify, { warn: (message) => reporter.warnAlways(message) });
        try {
          const groups = selectGroups(ctx.policy, opts.group);
          // A policy that names the repository's own credentials asks for a create-only backup
          // role: say so when this one can delete packs (before counting the run's requests).
          if (!opts.dryRun && ctx.policy.repository.credentials !== undefined && (await repositoryCanDelete(ctx.repo)) === true) {
            reporter.event({ type: 'warning', message: `the repository credentials can delete packs in ${ctx.repo.location}: a backup role needs to create objects only (docs/permissions.md)` });
          }
          // One shared lock for every group: a lock's write, checks and removal are 5 requests.
          // Its requests are counted with the first group's run.
          const requestsBefore = ctx.repo.requestCounts();
          if (!opts.dryRun) ctx.repo.requireWritable();
          const planned = shard === null ? null : await planShards(ctx, shard, groups, { dryRun: opts.dryRun ?? false, reporter, signal, ...(early === undefined ? {} : { planned: early }) });
          const shards = planned?.shards ?? null;
          const todo = shards === null ? groups : groups.filter((g) => shards.has(g.name));
          let partial = false;
          // A shard complete already counts with its verdict: suspect and not acknowledged exits 4.
          let suspect = planned?.suspect ?? false;
          // Every group's shard is complete already: nothing written.
          if (todo.length === 0) return suspect ? ExitCode.suspect : ExitCode.ok;
          if (!opts.dryRun) lock = await RepositoryLock.acquire(ctx.repo, 'shared', `backup of ${describeGroups(todo)}${shard === null ? '' : ` (${describeShard(shard)})`}`);
          for (const [i, group] of todo.entries()) {
            const runShard = shards?.get(group.name);
            const groupStarted = Date.now();
            notifier.runStarted({ group: group.name });
            const summary = await backupGroup({
              ...(lock === undefined ? {} : { lock }),
              ...(i === 0 ? { repositoryRequestsBefore: requestsBefore } : {}),
              ...(runShard === undefined ? {} : { shard: runShard }),
              repo: ctx.repo,
              catalog: ctx.catalog,
              policy: ctx.policy,
              group,
              dryRun: opts.dryRun ?? false,
              fullVersions: opts.fullVersions ?? false,
              events: reporter.event,
              eventsDrained: drained,
              signal,
              ...(encodeThreads === undefined ? {} : { encodeThreads }),
            }).catch((err: unknown) => {
              // A failed group throws: its metrics still say so (the run row says it too).
              const status = signal.aborted ? 'interrupted' : 'failed';
              if (!opts.dryRun) reporter.metrics.backupRun({ group: group.name, status, started: groupStarted, finished: Date.now(), counters: null });
              notifier.runEnded({ group: group.name, status, error: errorMessage(err) });
              // A recorded run still gets its summary, so a script learns its id and counters.
              const recorded = recordedRunOf(err);
              if (recorded !== undefined) reporter.summary({ ...recorded }, describe(recorded));
              throw err;
            });
            if (!summary.dryRun) reporter.metrics.backupRun(runMetricInput(summary, groupStarted));
            notifier.runEnded(runNoticeOf(summary));
            partial ||= summary.status === 'partial';
            suspect ||= summary.anomalies?.suspect === true;
            if (reporter.json) for (const message of anomalyMessages(summary)) reporter.data(message, '');
            // A dry run records no run: its id would name a run that never exists.
            const { runId, anomalies, ...rest } = summary;
            const verdict = anomalies === undefined ? {} : { suspect: anomalies.suspect, flaggedObjects: anomalies.flaggedObjects, findings: anomalies.findings.length };
            reporter.summary(summary.dryRun ? rest : { runId, ...rest, ...verdict }, describe(summary) + suspectBlock(summary));
            // Quiet prints no summary; a cron job's mail still says that what it stored may be damage.
            if (reporter.quiet && anomalies?.suspect === true && !summary.dryRun) {
              reporter.warnAlways(`run ${runId} (group ${summary.group}) is SUSPECT: ${plural(anomalies.findings.length, 'partition')} with anomalies, ${plural(anomalies.flaggedObjects, 'object')} flagged; see \`lakeguard runs show ${runId} --anomalies\``);
            }
          }
          // 1 (a failed group threw) > 3 > 4 > 0: a partial and suspect run exits 3, still named suspect above.
          return partial ? ExitCode.partial : suspect ? ExitCode.suspect : ExitCode.ok;
        } finally {
          await releaseLock(lock, reporter);
          await notifier.flush();
          ctx.close();
        }
      }),
    );
}

function runMetricInput(s: BackupSummary, started: number): RunMetricInput {
  const a = s.anomalies;
  return {
    group: s.group,
    status: s.status,
    started,
    finished: Date.now(),
    counters: s.counters,
    ...(a === undefined ? {} : { anomalies: { suspect: a.suspect, flaggedObjects: a.flaggedObjects, findings: a.findings.length } }),
  };
}

function describeGroups(groups: readonly Group[]): string {
  return groups.length === 1 ? `group ${groups[0]!.name}` : `groups ${groups.map((g) => g.name).join(', ')}`;
}

function describe(s: BackupSummary): string {
  const c = s.counters;
  const r = c.requests;
  const lines = [
    s.dryRun ? `dry run for group ${s.group}: nothing was read or written` : `run ${s.runId} (group ${s.group}): ${s.status}${s.anomalies?.suspect ? ', SUSPECT' : ''}`,
    ...(s.shard === undefined ? [] : [`  shard     ${s.shard.index} of ${s.shard.of} (0-based) of run set ${s.shard.name}, run ${s.shard.set}`]),
    `  objects   ${c.objectsSeen} seen: ${c.objectsNew} new, ${c.objectsChanged} changed${c.objectsCarried ? ` (${c.objectsCarried} of them carried from a killed attempt's checkpoints, not read)` : ''}, ${c.objectsUnchanged} unchanged, ${c.objectsReinstated ? `${c.objectsReinstated} back (an older version current again), ` : ''}${c.objectsDeleted} deleted, ${c.objectsFailed} failed${c.objectsExcluded ? `, ${c.objectsExcluded} excluded` : ''}${c.objectsNewerThanReport ? `, ${c.objectsNewerThanReport} kept as the catalog knows them (newer than the inventory report)` : ''}${c.objectsSkipped ? `, ${c.objectsSkipped} skipped (links and special files${s.dryRun ? '' : `: \`lakeguard runs show ${s.runId} --failures\``})` : ''}`,
    // What the run knows of a bucket listed from a report is as of the report: said, not implied.
    ...Object.entries(c.inventory ?? {}).map(([bucket, at]) => `  inventory ${inventoryListing(bucket, at)}`),
    s.dryRun
      ? `  would read ${formatBytes(c.bytesNew)}`
      : `  data      ${formatBytes(c.bytesRead)} read, ${formatBytes(c.bytesStored)} stored in ${plural(c.packsWritten, 'pack')} (${plural(c.blobsNew, 'new blob')}, ${c.blobsDeduplicated} deduplicated)`,
    `  requests  ${r.list} LIST, ${r.get} GET, ${r.head} HEAD, ${r.put} PUT, ${r.delete} DELETE in ${formatDuration(c.durationMs)}`,
  ];
  if (s.status === 'partial') {
    // objectsFailed counts listings that failed too (a prefix, or a whole missing bucket).
    const what = c.objectsFailed === 1 ? 'object or prefix' : 'objects or prefixes';
    lines.push(`  ${c.objectsFailed} ${what} could not be read (the failed: lines above${s.dryRun ? '' : `, recorded with the run: \`lakeguard runs show ${s.runId} --failures\``}); the next backup tries them again`);
  }
  return lines.join('\n');
}

/**
 * $LAKEGUARD_THREADS: threads that encode new blobs (and chunk and identify the files of a
 * directory source); unset or 1: all in the main thread (the default: on the bench the
 * threads did not pay for themselves, docs/scale-out.md "Threads inside one worker"); `auto`:
 * one per core the process may use.
 */
export function threadsSetting(env: NodeJS.ProcessEnv): number | undefined {
  const value = env.LAKEGUARD_THREADS?.trim();
  if (value === undefined || value === '') return undefined;
  if (value === 'auto') return defaultEncodeThreads();
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 64)) throw new UsageError(`LAKEGUARD_THREADS ${JSON.stringify(value)}: expected a whole number of threads from 1 to 64, or auto`, { hint: 'e.g. LAKEGUARD_THREADS=2, or auto for one per core' });
  return n;
}
