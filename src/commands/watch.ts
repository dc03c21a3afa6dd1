import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { backupGroup } from '../engine/backup.js';
import type { BackupSummary, EngineEvent } from '../engine/events.js';
import { syncCatalog } from '../engine/sync.js';
import { Watcher } from '../engine/watch.js';
import { startPushEndpoint, type PushEndpoint } from '../engine/watch-http.js';
import { WatchJournal } from '../engine/watch-journal.js';
import { SqsPoller } from '../engine/watch-sqs.js';
import { ExitCode, UsageError, errorMessage } from '../errors.js';
import { parseWatchDuration, type EventsSpec } from '../policy/schema-continuous.js';
import type { Group, S3Source } from '../policy/types.js';
import { action } from './action.js';
import { globalOptions, openAll, resolvePolicy, selectGroups } from './context.js';
import { addCatalogMetrics } from '../report/catalog-metrics.js';
import { MetricsCollector } from '../report/metrics.js';
import { startMetricsServer, type RunningMetricsServer } from '../report/metrics-server.js';
import { renderPrometheus } from '../report/prometheus.js';
import { Notifier, runNoticeOf } from '../report/notify.js';
import { acquireForReading } from '../repository/locks.js';
import { onNextStopSignal } from '../util/process.js';
import { describeDrill, lastDrillOf, rates, scheduledDrill } from './drill.js';
import { isLoopback, metricsBearerToken, parseListen, METRICS_TOKEN_ENV } from './serve.js';

export const TOKEN_ENV = 'LAKEGUARD_WATCH_TOKEN';
const DEFAULT_STOP_GRACE = '20s';

interface WatchFlags {
  group?: string;
  insecureListen?: boolean;
  tokenFile?: string;
  stopGrace: string;
  metricsListen?: string;
  metricsTokenFile?: string;
}

export function register(program: Command): void {
  program
    .command('watch')
    .description('keep backing up: consume S3 change events and back up the keys they name, batched by the policy\'s continuous thresholds')
    .option('-g, --group <name>', 'watch only this protection group')
    .option('--token-file <file>', `file holding the token every HTTP push must carry (default: $${TOKEN_ENV})`)
    .option('--insecure-listen', 'allow an http events address in the policy that is not loopback (plain http on a network)')
    .option('--stop-grace <duration>', 'on SIGTERM/SIGINT, let the current run finish this long before abandoning it', DEFAULT_STOP_GRACE)
    .option('--metrics-listen <host:port>', 'also serve Prometheus /metrics on this address (bearer token; docs/monitoring.md)')
    .option('--metrics-token-file <file>', `the bearer token scrapers send to /metrics (default: $${METRICS_TOKEN_ENV}, else one generated and printed at start)`)
    .addHelpText(
      'after',
      `
Each source's events: in the policy is an SQS queue (sqs://...) or an HTTP push
endpoint (http://127.0.0.1:PORT/) watch listens on. Changes are journaled next to
the catalog before a push is acknowledged, and forgotten only once a run covering
them is committed. SIGTERM: exit 0 when the current run finished within
--stop-grace (or none ran), 130 when it was abandoned. Details: docs/watch.md.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const flags = cmd.opts<WatchFlags>();
        const stopGraceMs = parseWatchDuration(flags.stopGrace);
        if (stopGraceMs === undefined) throw new UsageError(`--stop-grace ${JSON.stringify(flags.stopGrace)}: expected a duration such as 20s or 1m`);
        const metricsListen = flags.metricsListen === undefined ? undefined : parseListen(flags.metricsListen, '--metrics-listen');
        if (metricsListen !== undefined && !isLoopback(metricsListen.host) && flags.insecureListen !== true) {
          throw new UsageError(`--metrics-listen ${flags.metricsListen} is not a loopback address, and its bearer token would cross the network in plain http`, {
            hint: 'use a 127.0.0.1 address, or pass --insecure-listen on a private network',
          });
        }
        const metricsToken = metricsListen === undefined ? undefined : metricsBearerToken(flags.metricsTokenFile);
        // Bad usage (an events address that is not loopback, no push token) is told before the
        // repository is opened: not after a catalog sync, nor hidden behind a repository error.
        const listen = listenAddresses(selectGroups(resolvePolicy(globalOptions(cmd)), flags.group), flags.insecureListen === true);
        const token = listen.size === 0 ? '' : readToken(flags.tokenFile);
        const ctx = await openAll(cmd, { reporter, writes: true, wholeCatalog: true, signal });
        const endpoints: PushEndpoint[] = [];
        let metricsServer: RunningMetricsServer | undefined;
        const pollers: SqsPoller[] = [];
        let journal: WatchJournal | undefined;
        let notifier: Notifier | undefined;
        try {
          const groups = selectGroups(ctx.policy, flags.group);
          ctx.repo.requireWritable();
          journal = WatchJournal.open(`${ctx.catalog.path}.watch-journal`);
          // Runs report failures and warnings; their progress would drown the watch's own lines.
          const runEvents = (e: EngineEvent): void => {
            if (e.type === 'warning' || e.type === 'failure') reporter.event(e);
          };
          const runs = new AbortController();
          /** Runs by group, reason and status, for /metrics. */
          const runCounts = new Map<string, number>();
          notifier = new Notifier(ctx.policy.notify, { warn: (message) => reporter.warnAlways(message) });
          const notify = notifier;
          const drill = ctx.policy.drill;
          /** One run as `backup` makes it, told to notify: like backup's targets. */
          const runGroup = async (group: Group, o: { keys?: ReadonlyMap<string, Iterable<string>>; dryRun?: boolean; signal: AbortSignal }): Promise<BackupSummary> => {
            // watch lives for days: another host may have backed up, forgotten or pruned since the
            // last run, and a run must not deduplicate against blobs a prune removed meanwhile.
            await syncCatalog({ repo: ctx.repo, catalog: ctx.catalog, concurrency: Math.min(16, ctx.policy.concurrency.transfer), events: runEvents, signal: o.signal });
            const dryRun = o.dryRun ?? false;
            if (!dryRun) notify.runStarted({ group: group.name });
            let summary: BackupSummary;
            try {
              summary = await backupGroup({ repo: ctx.repo, catalog: ctx.catalog, policy: ctx.policy, group, events: runEvents, signal: o.signal, dryRun, ...(o.keys === undefined ? {} : { keys: o.keys }) });
            } catch (err) {
              if (!dryRun) notify.runEnded({ group: group.name, status: o.signal.aborted ? 'interrupted' : 'failed', error: errorMessage(err) });
              throw err;
            }
            if (!summary.dryRun) notify.runEnded(runNoticeOf(summary));
            return summary;
          };
          /** The policy's drill: schedule, for the groups it names, `every` after each one's last drill. */
          const drills =
            drill === undefined
              ? undefined
              : {
                  dueAt: (group: string): number | null => {
                    if (drill.groups !== undefined && !drill.groups.includes(group)) return null;
                    return (lastDrillOf(ctx.catalog, group) ?? 0) + drill.everyMs;
                  },
                  run: async (group: Group, signal: AbortSignal): Promise<void> => {
                    await syncCatalog({ repo: ctx.repo, catalog: ctx.catalog, concurrency: Math.min(16, ctx.policy.concurrency.transfer), events: runEvents, signal });
                    const lock = await acquireForReading(ctx.repo, 'scheduled drill', 'give watch credentials that may write locks/ and drills/');
                    try {
                      const report = await scheduledDrill(ctx, drill, group.name, { lock, events: runEvents, signal });
                      notify.drillEnded({ ...report, ...rates(report) });
                      reporter.data({ message_type: 'watch_drill', ...report, ...rates(report) }, `watch: ${describeDrill(report).split('\n')[0]}`);
                    } finally {
                      await lock.release().catch(() => {});
                    }
                  },
                };
          const watcher = new Watcher({
            policy: ctx.policy,
            catalog: ctx.catalog,
            groups,
            journal,
            // Its own warnings (a run that failed and is retried, an overflow, a damaged journal)
            // are how a long-running watch reports trouble: printed under --quiet too.
            events: (e) => (e.type === 'warning' ? reporter.warnAlways(e.message) : reporter.event(e)),
            runGroup,
            ...(drills === undefined ? {} : { drills }),
            onRun: ({ summary, reason, changes, startedAt }) => {
              const c = summary.counters;
              if (summary.dryRun) return;
              const key = `${summary.group}\0${reason}\0${summary.status}`;
              runCounts.set(key, (runCounts.get(key) ?? 0) + 1);
              reporter.data(
                { message_type: 'watch_run', run_id: summary.runId, group: summary.group, reason, changes, started_at: new Date(startedAt).toISOString(), status: summary.status, suspect: summary.anomalies?.suspect ?? false, counters: c },
                `watch: run ${summary.runId} (group ${summary.group}, ${reason}, ${changes} changes): ${summary.status}${summary.anomalies?.suspect ? ', SUSPECT' : ''}; ` +
                  `${c.objectsNew} new, ${c.objectsChanged} changed, ${c.objectsDeleted} deleted, ${c.objectsFailed} failed` +
                  (c.objectsNewerThanReport ? `, ${c.objectsNewerThanReport} kept (newer than the inventory report)` : ''),
              );
            },
          });
          for (const [address, host] of listen) {
            const endpoint = await startPushEndpoint({
              host: host.host,
              port: host.port,
              token,
              ingest: (changes) => watcher.ingest(changes),
              onWarning: (message) => reporter.warnAlways(message),
            }).catch((err: unknown) => {
              throw new UsageError(`cannot listen on ${address} (events of the policy): ${errorMessage(err)}`, { hint: 'choose another port in the policy, or stop what holds it' });
            });
            endpoints.push(endpoint);
          }
          if (metricsListen !== undefined && metricsToken !== undefined) {
            const catalog = ctx.catalog;
            metricsServer = await startMetricsServer({
              ...metricsListen,
              token: metricsToken.token,
              render: () => {
                const m = new MetricsCollector();
                addCatalogMetrics(catalog, m);
                for (const g of groups) m.add('lakeguard_watch_pending_changes', 'gauge', 'Changes journaled by watch and not yet backed up, by group.', { group: g.name }, watcher.waiting(g.name));
                for (const g of groups) {
                  m.add('lakeguard_watch_overflow', 'gauge', 'Whether the group overflowed continuous.max_pending (1): its next run is a full listing.', { group: g.name }, watcher.overflowed(g.name) ? 1 : 0);
                }
                for (const [key, n] of runCounts) {
                  const [group, reason, status] = key.split('\0') as [string, string, string];
                  m.add('lakeguard_watch_runs_total', 'counter', 'Runs watch made since it started, by group, reason and status.', { group, reason, status }, n);
                }
                return renderPrometheus(m.toFamilies());
              },
            }).catch((err: unknown) => {
              throw new UsageError(`cannot listen on --metrics-listen ${flags.metricsListen}: ${errorMessage(err)}`);
            });
            reporter.data(
              { message_type: 'metrics_listening', url: metricsServer.url, port: metricsServer.port, ...(metricsToken.generated ? { bearer_token: metricsToken.token } : { bearer_token_from: metricsToken.from }) },
              `lakeguard watch: metrics on ${metricsServer.url} (bearer token ${metricsToken.generated ? `${metricsToken.token}, generated: set ${METRICS_TOKEN_ENV} to choose` : `from ${metricsToken.from}`})`,
            );
          }
          for (const spec of sqsQueues(groups)) {
            const poller = new SqsPoller({ spec, region: ctx.policy.s3.region, ingest: (changes, done) => watcher.ingest(changes, done), onWarning: (message) => reporter.warnAlways(message) });
            pollers.push(poller);
            poller.start();
          }
          const overflowed = groups.map((g) => g.name).filter((g) => watcher.overflowed(g));
          reporter.data(
            { message_type: 'listening', endpoints: endpoints.map((e) => e.url), queues: pollers.map((p) => p.url), groups: groups.map((g) => g.name), journal: journal.path, pending: journal.pending().length, overflowed },
            `lakeguard watch: ${groups.map((g) => g.name).join(', ')}; ${endpoints.length === 0 ? '' : `push endpoint ${endpoints.map((e) => e.url).join(', ')}; `}` +
              `${pollers.length === 0 ? '' : `queues ${pollers.map((p) => p.url).join(', ')}; `}${journal.pending().length} changes pending from the journal` +
              `${overflowed.length === 0 ? '' : `; overflowed (a full listing is owed): ${overflowed.join(', ')}`}`,
          );
          let grace: NodeJS.Timeout | undefined;
          let stopListening: (() => void) | undefined;
          const onStop = (): void => {
            watcher.stop();
            for (const p of pollers) p.stop();
            grace = setTimeout(() => runs.abort(), stopGraceMs);
            // A second SIGINT/SIGTERM abandons the run at once, still recorded as interrupted.
            stopListening = onNextStopSignal(() => runs.abort());
            const detail = `a run in progress may finish within ${flags.stopGrace} (--stop-grace); SIGINT or SIGTERM again abandons it`;
            reporter.event({ type: 'phase', phase: 'stopping', detail });
            reporter.info(`lakeguard watch: stopping: ${detail}`);
          };
          if (signal.aborted) onStop();
          else signal.addEventListener('abort', onStop, { once: true });
          const { interrupted } = await watcher.run(runs.signal).finally(() => stopListening?.());
          clearTimeout(grace);
          reporter.info(interrupted ? 'lakeguard watch: stopped; the current run was abandoned, its changes stay journaled' : 'lakeguard watch: stopped');
          return interrupted ? ExitCode.interrupted : ExitCode.ok;
        } finally {
          for (const p of pollers) p.stop();
          await Promise.all([...endpoints.map((e) => e.stop()), ...pollers.map((p) => p.settled()), metricsServer?.stop()]).catch(() => {});
          await notifier?.flush();
          journal?.close();
          ctx.close();
        }
      }),
    );
}

/** The push endpoints to listen on (address → host and port), refused when not loopback without --insecure-listen. */
function listenAddresses(groups: readonly Group[], insecure: boolean): Map<string, { host: string; port: number }> {
  const out = new Map<string, { host: string; port: number }>();
  for (const spec of eventSpecs(groups)) {
    if (spec.kind !== 'http') continue;
    if (!isLoopback(spec.host) && !insecure) {
      throw new UsageError(`events ${spec.text} is not a loopback address: watch would take pushes from the network over plain http`, {
        hint: 'use a 127.0.0.1 address (RGW on the same host, or a TLS proxy in front), or pass --insecure-listen on a private network',
      });
    }
    out.set(`${spec.host}:${spec.port}`, { host: spec.host, port: spec.port });
  }
  return out;
}

function sqsQueues(groups: readonly Group[]): Extract<EventsSpec, { kind: 'sqs' }>[] {
  const seen = new Map<string, Extract<EventsSpec, { kind: 'sqs' }>>();
  for (const spec of eventSpecs(groups)) if (spec.kind === 'sqs') seen.set(spec.url, spec);
  return [...seen.values()];
}

function eventSpecs(groups: readonly Group[]): EventsSpec[] {
  return groups.flatMap((g) => g.sources.filter((s): s is S3Source => s.kind === 's3' && s.events !== undefined).map((s) => s.events!));
}

/** The push token: --token-file, else $LAKEGUARD_WATCH_TOKEN; never from the policy, never printed. */
export function readToken(file: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  let token: string | undefined;
  if (file !== undefined) {
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`cannot read --token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
    }
  } else {
    token = env[TOKEN_ENV]?.trim();
  }
  if (token === undefined || token.length < 16) {
    throw new UsageError(`an http events endpoint needs a push token of at least 16 characters (${file === undefined ? `$${TOKEN_ENV}` : `--token-file ${file}`})`, {
      hint: `set ${TOKEN_ENV} (or --token-file) to a random string, and put it in the topic's push-endpoint URL as ?token=... (docs/watch.md)`,
    });
  }
  return token;
}
