/**
 * `notify:` (docs/monitoring.md): webhooks get a JSON POST when a run starts and ends
 * (success, partial, failure), when a run is suspect (anomaly), and with a drill's result;
 * healthchecks-style pings get `<url>/start`, `<url>` (success) and `<url>/fail`.
 *
 * Monitoring must never break what it monitors: sends run beside the work, each attempt is cut
 * at 5 s, failed attempts are retried with backoff, and a target that still fails costs one
 * warning per command, never the command's exit code. URLs often carry a token in their path
 * or query: messages show only scheme and host.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { BackupSummary } from '../engine/events.js';
import type { NotifyEvent, NotifyPolicy, NotifyTarget } from '../policy/types.js';
import { backoffDelay } from '../util/retry.js';

export const NOTIFY_TIMEOUT_MS = 5000;
const ATTEMPTS = 3;

export interface NotifierOptions {
  /** Said once per failing target (a command's warning). */
  warn: (message: string) => void;
  /** Tests: shorter waits between attempts (default 1 s, doubling with jitter). */
  baseDelayMs?: number;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** A run as webhooks are told about it. */
export interface RunNotice {
  group: string;
  runId?: string;
  status?: 'complete' | 'partial' | 'failed' | 'interrupted';
  counters?: unknown;
  suspect?: boolean;
  anomalies?: unknown;
  error?: string;
}

/** What webhooks are told of a finished run (backup's and watch's runs alike). */
export function runNoticeOf(summary: BackupSummary): RunNotice {
  return {
    group: summary.group,
    runId: summary.runId,
    status: summary.status === 'running' ? 'failed' : summary.status,
    counters: summary.counters,
    suspect: summary.anomalies?.suspect === true,
    ...(summary.anomalies?.suspect ? { anomalies: { flaggedObjects: summary.anomalies.flaggedObjects, findings: summary.anomalies.findings } } : {}),
  };
}

/** `scheme://host/…`: what a message may show of a URL that may hold a token. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' && u.search === '' ? '/' : '/…'}`;
  } catch {
    return '(an invalid URL)';
  }
}

export class Notifier {
  private readonly pending = new Set<Promise<void>>();
  private readonly warned = new Set<string>();
  private readonly baseDelayMs: number;
  private readonly timeoutMs: number;
  private readonly env: NodeJS.ProcessEnv;

  constructor(
    private readonly policy: NotifyPolicy | undefined,
    private readonly opts: NotifierOptions,
  ) {
    this.baseDelayMs = opts.baseDelayMs ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? NOTIFY_TIMEOUT_MS;
    this.env = opts.env ?? process.env;
  }

  get active(): boolean {
    return this.policy !== undefined && this.policy.webhooks.length + this.policy.pings.length > 0;
  }

  runStarted(run: RunNotice): void {
    this.webhooks('start', { ...run });
    this.pings('/start', `lakeguard: backup of group ${run.group} started`);
  }

  runEnded(run: RunNotice): void {
    const event: NotifyEvent = run.status === 'complete' ? 'success' : run.status === 'partial' ? 'partial' : 'failure';
    this.webhooks(event, { ...run });
    if (run.suspect === true) this.webhooks('anomaly', { ...run });
    // A suspect run is a failure for a dead-man's switch: someone must look at it.
    const ok = run.status === 'complete' && run.suspect !== true;
    this.pings(ok ? '' : '/fail', `lakeguard: backup of group ${run.group}: ${run.status ?? 'failed'}${run.suspect ? ', suspect' : ''}${run.error === undefined ? '' : `: ${run.error}`}`);
  }

  drillEnded(report: { ok: boolean; scope: string } & Record<string, unknown>): void {
    this.webhooks('drill', { group: report.scope.startsWith('group:') ? report.scope.slice(6) : undefined, drill: report });
  }

  /** Waits for every send in flight (bounded: attempts × timeout plus backoff). */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private webhooks(event: NotifyEvent, data: Record<string, unknown>): void {
    (this.policy?.webhooks ?? []).forEach((target, i) => {
      if (target.events !== undefined && !target.events.includes(event)) return;
      const body = JSON.stringify({ source: 'lakeguard', version: 1, event, host: hostname(), time: new Date().toISOString(), ...data });
      this.send(`webhook ${i + 1}`, target, '', body);
    });
  }

  private pings(suffix: string, text: string): void {
    (this.policy?.pings ?? []).forEach((target, i) => this.send(`ping ${i + 1}`, target, suffix, text));
  }

  private send(name: string, target: NotifyTarget, suffix: string, body: string): void {
    const url = this.resolve(name, target);
    if (url === null) return;
    const full = suffix === '' ? url : url.replace(/\/+$/, '') + suffix;
    const p = this.deliver(full, body)
      .then((problem) => {
        if (problem !== null) this.warnOnce(name, `${name} (${redactUrl(full)}${describeSource(target)}): ${problem}; the command goes on`);
      })
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** The target's URL (from the policy, the environment or a file), or null after a warning. */
  private resolve(name: string, target: NotifyTarget): string | null {
    let url: string | undefined = target.url;
    if (target.urlEnv !== undefined) {
      url = this.env[target.urlEnv];
      if (url === undefined || url === '') {
        this.warnOnce(name, `${name}: ${target.urlEnv} is not set (notify url_env): nothing sent`);
        return null;
      }
    } else if (target.urlFile !== undefined) {
      try {
        url = readFileSync(target.urlFile, 'utf8').trim();
      } catch (err) {
        this.warnOnce(name, `${name}: cannot read ${target.urlFile} (notify url_file): ${(err as NodeJS.ErrnoException).code ?? 'error'}; nothing sent`);
        return null;
      }
    }
    if (url === undefined || !/^https?:\/\//i.test(url)) {
      this.warnOnce(name, `${name}${describeSource(target)}: not an http(s) URL; nothing sent`);
      return null;
    }
    return url;
  }

  /** Sends with retries; null when delivered, else what went wrong (without the URL). */
  private async deliver(url: string, body: string): Promise<string | null> {
    let problem = '';
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      if (attempt > 1) await delay(backoffDelay(attempt - 1, this.baseDelayMs, this.baseDelayMs * 8));
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': body.startsWith('{') ? 'application/json' : 'text/plain; charset=utf-8', 'user-agent': 'lakeguard' },
          body,
          signal: AbortSignal.timeout(this.timeoutMs),
          redirect: 'error',
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return null;
        problem = `HTTP ${res.status}`;
        // A 4xx other than 408/429 will not change by asking again.
        if (res.status < 500 && res.status !== 408 && res.status !== 429) return `${problem} (not retried)`;
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } };
        problem = e.name === 'TimeoutError' ? `no answer within ${this.timeoutMs / 1000} s` : (e.cause?.code ?? e.name);
      }
    }
    return `${problem} after ${ATTEMPTS} attempts`;
  }

  private warnOnce(name: string, message: string): void {
    if (this.warned.has(name)) return;
    this.warned.add(name);
    this.opts.warn(message);
  }
}

function describeSource(target: NotifyTarget): string {
  return target.urlEnv !== undefined ? ` from $${target.urlEnv}` : target.urlFile !== undefined ? ` from ${target.urlFile}` : '';
}
