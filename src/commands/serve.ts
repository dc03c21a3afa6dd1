import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Command } from 'commander';
import type { Catalog } from '../catalog/catalog.js';
import { catalogScope, describeScope, scopeCovers, type CatalogPrefix } from '../catalog/scope.js';
import { ExitCode, LakeguardError, UsageError, errorMessage } from '../errors.js';
import { sourceName } from '../engine/sources.js';
import type { Policy } from '../policy/types.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_REQUESTS, startS3Server, type AccessEntry, type RunningServer } from '../serve/http-server.js';
import { addCatalogMetrics } from '../report/catalog-metrics.js';
import { MetricsCollector } from '../report/metrics.js';
import { startMetricsServer, type RunningMetricsServer } from '../report/metrics-server.js';
import { renderPrometheus } from '../report/prometheus.js';
import { openServeView, type OpenedServeView } from '../serve/open-view.js';
import type { Credentials } from '../storage/s3-sigv4.js';
import { printable } from '../util/printable.js';
import { onNextStopSignal } from '../util/process.js';
import { action } from './action.js';
import { requireGroupBucketsKnown, requireInScope, type KeySelection } from './catalog-scope-guard.js';
import { openAll } from './context.js';
import { NO_LOCK_FLAG, NO_LOCK_HELP } from './read-lock.js';
import type { Reporter } from './reporter.js';
import { warnPartialRun } from './partial-state.js';
import { warnSuspectState } from './suspect-state.js';

interface ServeFlags {
  at?: string;
  run?: string;
  group?: string;
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  insecureListen?: boolean;
  lock: boolean;
  metricsListen?: string;
  metricsTokenFile?: string;
  maxConnections: string;
  maxRequests: string;
}

export const DEFAULT_LISTEN = '127.0.0.1:9000';
/** How long requests in flight may take to finish once serve is told to stop. */
const STOP_GRACE_MS = 10_000;
export const ACCESS_KEY_ENV = 'LAKEGUARD_SERVE_ACCESS_KEY_ID';
export const SECRET_KEY_ENV = 'LAKEGUARD_SERVE_SECRET_ACCESS_KEY';
export const METRICS_TOKEN_ENV = 'LAKEGUARD_METRICS_TOKEN';

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve the backups as a read-only S3 endpoint, as of an instant (per request too), for S3 clients and query engines')
    .option('--at <time>', 'the default instant: ISO 8601, a run id, or 2h / 3d / 1w ago (default: the newest state, at start)')
    .option('-r, --run <id>', 'the default state: as a run (or run set) recorded it')
    .option('-g, --group <name>', 'serve only this protection group\'s buckets')
    .option('--listen <host:port>', 'address to listen on (port 0: any free port, printed)', DEFAULT_LISTEN)
    .option('--tls-cert <file>', 'serve https with this PEM certificate (chain)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert')
    .option('--max-connections <n>', 'open connections at once; more are closed as they arrive', String(DEFAULT_MAX_CONNECTIONS))
    .option('--max-requests <n>', 'requests answered at once; more get 503 SlowDown (clients retry)', String(DEFAULT_MAX_REQUESTS))
    .option('--insecure-listen', 'allow plain http on an address that is not loopback (e.g. behind a TLS-terminating proxy)')
    .option(NO_LOCK_FLAG, NO_LOCK_HELP)
    .option('--metrics-listen <host:port>', 'also serve Prometheus /metrics on this address (bearer token; docs/monitoring.md)')
    .option('--metrics-token-file <file>', `the bearer token scrapers send to /metrics (default: $${METRICS_TOKEN_ENV}, else one generated and printed at start)`)
    .addHelpText(
      'after',
      `
Clients sign (SigV4) with the keys in ${ACCESS_KEY_ENV} and
${SECRET_KEY_ENV}, else with a pair generated at start and printed once.
Per request, the header x-lakeguard-at: <instant or run id>, or a bucket alias
<bucket>--at--20261201t100000z (or <bucket>--at--<run id>), picks another instant.
SIGINT/SIGTERM stop it (exit 130). Details: docs/serve.md.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const flags = cmd.opts<ServeFlags>();
        // Everything that can be refused without the repository is refused first.
        const listen = parseListen(flags.listen);
        const tls = readTls(flags);
        if (tls === undefined && !isLoopback(listen.host) && !flags.insecureListen) {
          throw new UsageError(`--listen ${flags.listen} is not a loopback address, and plain http would expose the backups to the network`, {
            hint: 'give --tls-cert and --tls-key for https, or --insecure-listen when a TLS proxy or a private network protects it',
          });
        }
        if (flags.at !== undefined && flags.run !== undefined) throw new UsageError('give --at or --run, not both');
        const maxConnections = positiveCount(flags.maxConnections, '--max-connections');
        const maxRequests = positiveCount(flags.maxRequests, '--max-requests');
        const metricsListen = flags.metricsListen === undefined ? undefined : parseListen(flags.metricsListen, '--metrics-listen');
        if (metricsListen !== undefined && !isLoopback(metricsListen.host) && !flags.insecureListen) {
          throw new UsageError(`--metrics-listen ${flags.metricsListen} is not a loopback address, and its bearer token would cross the network in plain http`, {
            hint: 'listen on loopback and let a local agent or proxy scrape it, or give --insecure-listen on a private network',
          });
        }
        const metricsToken = metricsListen === undefined ? undefined : metricsBearerToken(flags.metricsTokenFile);
        const { credentials, generated } = serveCredentials();
        // A policy group's buckets, whole; anything else is every bucket (docs/catalog.md "On-demand catalogs").
        const selects = (policy: Policy): KeySelection[] | null => {
          const group = flags.group === undefined ? undefined : policy.groups.find((g) => g.name === flags.group);
          return group === undefined ? null : group.sources.map((s) => ({ bucket: sourceName(s), prefix: '' }));
        };
        const ctx = await openAll(cmd, { reporter, signal, selects });
        const requests = new RequestCounts();
        let view: OpenedServeView | null = null;
        let server: RunningServer | null = null;
        let metricsServer: RunningMetricsServer | null = null;
        try {
          // A group the policy does not name is served with the buckets its runs recorded: only a whole catalog knows them all.
          const policyGroup = flags.group === undefined ? undefined : ctx.policy.groups.find((g) => g.name === flags.group);
          if (flags.group !== undefined && policyGroup === undefined) requireGroupBucketsKnown(ctx.catalog, 'serve', flags.group);
          view = await openServeView(ctx, {
            ...(flags.at === undefined ? {} : { at: flags.at }),
            ...(flags.run === undefined ? {} : { run: flags.run }),
            ...(flags.group === undefined ? {} : { group: flags.group }),
            lock: flags.lock,
            events: reporter.event,
          });
          // As restore and ls say it: the default state may be a suspect run's (the newest one,
          // right after an incident) or a partial run's. Clients of the endpoint cannot be told.
          const served = view.buckets().map((bucket) => ({ bucket }));
          warnSuspectState(ctx, view.defaultCut.cut, served, reporter.event);
          warnPartialRun(ctx, view.defaultCut.cut, served, reporter.event);
          const startedAt = Date.now();
          server = await startS3Server(
            {
              view,
              credentials,
              startedAt,
              onAccess: (entry) => {
                requests.count(entry);
                if (reporter.json) reporter.data({ message_type: 'access', ...entry }, '');
              },
              // Content that could not be read, floods refused: an operator must see them, --quiet too.
              onWarning: (message) => reporter.warnAlways(message),
              maxRequests,
              ...scopeGuard(ctx.catalog, policyGroup === undefined ? null : new Set(view.buckets())),
            },
            { ...listen, maxConnections, ...(tls === undefined ? {} : { tls }) },
          ).catch((err: unknown) => {
            throw listenError(flags.listen, err);
          });
          if (metricsListen !== undefined && metricsToken !== undefined) {
            const catalog = ctx.catalog;
            metricsServer = await startMetricsServer({
              ...metricsListen,
              token: metricsToken.token,
              render: () => {
                const m = new MetricsCollector();
                addCatalogMetrics(catalog, m);
                requests.addTo(m, startedAt);
                return renderPrometheus(m.toFamilies());
              },
            }).catch((err: unknown) => {
              throw listenError(flags.metricsListen!, err);
            });
          }
          announce(reporter, server, view, credentials, generated, catalogScope(ctx.catalog));
          if (metricsServer !== null) announceMetrics(reporter, metricsServer, metricsToken!);
          const stoppedBy = await stopRequested(signal, view.lockLost);
          // A second SIGINT/SIGTERM cuts the requests still in flight; the lock is still released.
          const hurry = new AbortController();
          const stopListening = onNextStopSignal(() => hurry.abort());
          if (stoppedBy === 'signal') {
            const detail = `requests in flight may finish within ${STOP_GRACE_MS / 1000} s; SIGINT or SIGTERM again cuts them`;
            reporter.event({ type: 'phase', phase: 'stopping', detail });
            reporter.info(`lakeguard serve: stopping: ${detail}`);
          }
          try {
            await server.stop(STOP_GRACE_MS, hurry.signal);
          } finally {
            stopListening();
          }
          server = null;
          await metricsServer?.stop();
          metricsServer = null;
          if (stoppedBy !== 'signal') throw stoppedBy;
          reporter.info('lakeguard serve: stopped');
          return ExitCode.interrupted;
        } finally {
          await server?.stop(0).catch(() => {});
          await metricsServer?.stop().catch(() => {});
          await view?.close().catch(() => {});
          ctx.close();
        }
      }),
    );
}

/**
 * For a scoped catalog: the refusal of a request outside its scope (catalog-scope-guard.ts words
 * it). Also asked about a bucket that is not served: a scoped catalog knows only its scope's
 * buckets, so another may well be in the repository. `exact`: the buckets served when they are
 * a policy group's (any other bucket is then not served, as on a whole catalog: 404).
 */
function scopeGuard(catalog: Catalog, exact: ReadonlySet<string> | null): { outsideScope?: (bucket: string, prefix: string) => string | undefined } {
  const scope = catalogScope(catalog);
  if (scope === null) return {};
  return {
    outsideScope: (bucket, prefix) => {
      if (scopeCovers(scope, bucket, prefix) || (exact !== null && !exact.has(bucket))) return undefined;
      try {
        requireInScope(catalog, 'serve', [{ bucket, prefix }]);
      } catch (err) {
        if (err instanceof UsageError) return err.message;
        throw err;
      }
      return undefined;
    },
  };
}

/** Resolves when serve must stop: 'signal' (SIGINT/SIGTERM), or the error of a lost lock. */
export function stopRequested(signal: AbortSignal, lockLost: AbortSignal | null): Promise<'signal' | Error> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve('signal');
    if (lockLost?.aborted) return resolve(lockLost.reason as Error);
    signal.addEventListener('abort', () => resolve('signal'), { once: true });
    lockLost?.addEventListener('abort', () => resolve(lockLost.reason as Error), { once: true });
  });
}

/** The listening line (text on stderr, a `listening` message with --json) and the credentials. */
function announce(reporter: Reporter, server: RunningServer, view: OpenedServeView, credentials: Credentials, generated: boolean, scope: CatalogPrefix[] | null): void {
  const buckets = view.buckets();
  if (reporter.json) {
    reporter.data(
      {
        message_type: 'listening',
        url: server.url,
        port: server.port,
        view: view.defaultCut.label,
        description: view.description,
        synced_at: new Date(view.syncedAt).toISOString(),
        buckets: [...buckets],
        ...(scope === null ? {} : { scope }),
        access_key_id: credentials.accessKeyId,
        ...(generated ? { secret_access_key: credentials.secretAccessKey } : {}),
      },
      '',
    );
    return;
  }
  const shown = buckets.length <= 5 ? buckets.join(', ') : `${buckets.slice(0, 5).join(', ')}, …`;
  const lines = [
    `lakeguard serve: read-only S3 on ${server.url} (${buckets.length} bucket${buckets.length === 1 ? '' : 's'}: ${shown})`,
    `  as of              ${view.description}`,
    `  catalog synced     ${new Date(view.syncedAt).toISOString()} (a later instant needs a restart)`,
    `  access key id      ${credentials.accessKeyId}`,
    generated
      ? `  secret access key  ${credentials.secretAccessKey}  (generated for this run: set ${ACCESS_KEY_ENV} and ${SECRET_KEY_ENV} to choose)`
      : `  secret access key  from ${SECRET_KEY_ENV}`,
    ...(scope === null ? [] : [`  scope              ${printable(describeScope(scope))} only (a scoped catalog): other keys and buckets are refused (403)`]),
    '  Ctrl-C (or SIGTERM) stops it.',
  ];
  // With --quiet only a generated secret is printed: without it no client could connect.
  const text = reporter.mode === 'quiet' ? (generated ? lines.slice(3, 5) : []) : lines;
  if (text.length > 0) process.stderr.write(`${text.join('\n')}\n`);
}

/** The shortest secret taken from the environment (as watch's push token): one SigV4 request seen is enough to guess a short one offline. */
const MIN_SECRET_LENGTH = 16;

/**
 * The pair from the environment, or a random one (printed once at start). Surrounding
 * whitespace is not part of either: a Kubernetes Secret made from a file ends in a newline that
 * no client would sign with (every request would be SignatureDoesNotMatch).
 */
export function serveCredentials(env: NodeJS.ProcessEnv = process.env): { credentials: Credentials; generated: boolean } {
  const accessKeyId = env[ACCESS_KEY_ENV]?.trim();
  const secretAccessKey = env[SECRET_KEY_ENV]?.trim();
  if (accessKeyId && secretAccessKey) {
    // Clients write the key id into `Credential=<id>/<date>/...`: a '/' or ',' there cannot be read back.
    if (/[\s/,]/.test(accessKeyId)) throw new UsageError(`${ACCESS_KEY_ENV} holds a space, '/' or ',', which a signed request cannot carry in its key id`);
    if (secretAccessKey.length < MIN_SECRET_LENGTH) {
      throw new UsageError(`${SECRET_KEY_ENV} has ${secretAccessKey.length} characters: at least ${MIN_SECRET_LENGTH} are needed`, {
        hint: `set it to a random string (openssl rand -base64 30), or unset both ${ACCESS_KEY_ENV} and ${SECRET_KEY_ENV} for a generated pair`,
      });
    }
    return { credentials: { accessKeyId, secretAccessKey }, generated: false };
  }
  if (accessKeyId || secretAccessKey) {
    throw new UsageError(`set both ${ACCESS_KEY_ENV} and ${SECRET_KEY_ENV}, or neither (a pair is then generated)`);
  }
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const id = [...randomBytes(16)].map((b) => alphabet[b % 32]).join('');
  return { credentials: { accessKeyId: `LG${id}`, secretAccessKey: randomBytes(30).toString('base64url') }, generated: true };
}

/** The /metrics bearer token: --metrics-token-file, else $LAKEGUARD_METRICS_TOKEN, else a random one (printed at start). */
export function metricsBearerToken(file: string | undefined, env: NodeJS.ProcessEnv = process.env): { token: string; generated: boolean; from: string } {
  if (file !== undefined) {
    let token: string;
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`cannot read --metrics-token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    if (token === '') throw new UsageError(`--metrics-token-file ${file} is empty`);
    return { token, generated: false, from: file };
  }
  // Trimmed as the file's is (and as a scraper's header is): a trailing newline would refuse every scrape.
  const fromEnv = env[METRICS_TOKEN_ENV]?.trim();
  if (fromEnv) return { token: fromEnv, generated: false, from: METRICS_TOKEN_ENV };
  return { token: randomBytes(24).toString('base64url'), generated: true, from: 'generated' };
}

/** serve's own requests for /metrics: by S3 operation and status, and bytes sent. */
class RequestCounts {
  private readonly byKey = new Map<string, { operation: string; status: string; n: number }>();
  private bytes = 0;

  count(entry: AccessEntry): void {
    const operation = entry.operation ?? 'unknown';
    const status = String(entry.status);
    const key = `${operation} ${status}`;
    const row = this.byKey.get(key) ?? { operation, status, n: 0 };
    row.n++;
    this.byKey.set(key, row);
    this.bytes += entry.bytes;
  }

  addTo(m: MetricsCollector, startedAt: number): void {
    m.add('lakeguard_serve_start_timestamp_seconds', 'gauge', 'When this serve process started (Unix time).', {}, startedAt / 1000);
    for (const r of this.byKey.values()) {
      m.add('lakeguard_serve_requests_total', 'counter', 'S3 requests serve answered, by operation and HTTP status.', { operation: r.operation, status: r.status }, r.n);
    }
    m.add('lakeguard_serve_sent_bytes_total', 'counter', 'Response body bytes serve sent.', {}, this.bytes);
  }
}

function announceMetrics(reporter: Reporter, server: RunningMetricsServer, token: { token: string; generated: boolean; from: string }): void {
  if (reporter.json) {
    reporter.data({ message_type: 'metrics_listening', url: server.url, port: server.port, ...(token.generated ? { bearer_token: token.token } : { bearer_token_from: token.from }) }, '');
    return;
  }
  // The token is printed only when it was generated: nobody could scrape otherwise.
  if (reporter.mode !== 'quiet' || token.generated) {
    process.stderr.write(`  metrics            ${server.url} (bearer token ${token.generated ? `${token.token}, generated for this run: set ${METRICS_TOKEN_ENV} or --metrics-token-file to choose` : `from ${token.from}`})\n`);
  }
}

/** A whole number from 1 to 1,000,000 given to `option`. */
export function positiveCount(text: string, option: string): number {
  const n = /^\d{1,7}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!(n >= 1 && n <= 1_000_000)) throw new UsageError(`${option} ${JSON.stringify(text)}: expected a whole number from 1 to 1000000`);
  return n;
}

/** `host:port`, `[v6]:port`, or `:port` (loopback); port 0 picks a free one. */
export function parseListen(text: string, option = '--listen'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = m === null ? NaN : Number(m[3]);
  const host = m === null ? '' : (m[1] ?? m[2] ?? '');
  if (m === null || port > 65535 || (m[1] !== undefined && isIP(host) !== 6)) {
    throw new UsageError(`${option} ${JSON.stringify(text)}: expected host:port (e.g. ${DEFAULT_LISTEN}, [::1]:9000, 0.0.0.0:9000)`);
  }
  return { host: host === '' ? '127.0.0.1' : host, port };
}

export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

function readTls(flags: ServeFlags): { cert: Buffer; key: Buffer } | undefined {
  if (flags.tlsCert === undefined && flags.tlsKey === undefined) return undefined;
  if (flags.tlsCert === undefined || flags.tlsKey === undefined) throw new UsageError('give both --tls-cert and --tls-key');
  const read = (file: string, option: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new UsageError(`cannot read ${option} ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
    }
  };
  const pair = { cert: read(flags.tlsCert, '--tls-cert'), key: read(flags.tlsKey, '--tls-key') };
  try {
    // Checked now, before the repository is opened: not PEM, or a key that is not the certificate's.
    createSecureContext(pair);
  } catch (err) {
    throw new UsageError(`cannot use --tls-cert ${flags.tlsCert} with --tls-key ${flags.tlsKey}: ${errorMessage(err)}`, { hint: 'give a PEM certificate (chain) and its PEM private key' });
  }
  return pair;
}

function listenError(listen: string, err: unknown): LakeguardError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new LakeguardError(`cannot listen on ${listen}: the address is in use`, { hint: 'choose another port with --listen, or stop what holds it' });
  if (code === 'EADDRNOTAVAIL') return new UsageError(`cannot listen on ${listen}: no interface of this machine has that address`);
  if (code === 'EACCES') return new LakeguardError(`cannot listen on ${listen}: permission denied`, { hint: 'ports below 1024 need privileges: choose a higher one' });
  return new LakeguardError(`cannot listen on ${listen}: ${errorMessage(err)}`);
}
