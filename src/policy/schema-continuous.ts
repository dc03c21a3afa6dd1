/**
 * The `continuous:` map of the policy schema (top level, group, source) and a source's
 * `events:` URL: how `lakeguard watch` batches changes and where it hears of them
 * (meaning: docs/watch.md; inheritance: continuous.ts).
 */
import { isScalar } from 'yaml';
import type { ContinuousLevel } from './continuous.js';
import { describe, read, withoutUndefined, type Checker, type Field } from './yaml-check.js';

export const CONTINUOUS_KEYS = ['interval', 'min_updates', 'max_interval', 'reconcile', 'max_pending'] as const;

export function checkContinuous(c: Checker, f: Field): ContinuousLevel | undefined {
  const m = c.map(f, CONTINUOUS_KEYS, `a map of ${CONTINUOUS_KEYS.join(', ')}`);
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const level: ContinuousLevel = withoutUndefined({
    intervalMs: read(m, 'interval', (x) => checkWatchDuration(c, x)),
    minUpdates: read(m, 'min_updates', (x) => c.integer(x, 1, 1_000_000)),
    maxIntervalMs: read(m, 'max_interval', (x) => checkWatchDuration(c, x)),
    reconcileMs: read(m, 'reconcile', (x) => checkReconcile(c, x)),
    maxPending: read(m, 'max_pending', (x) => c.integer(x, 1, 10_000_000)),
  });
  if (level.intervalMs !== undefined && level.maxIntervalMs !== undefined && level.maxIntervalMs < level.intervalMs) {
    c.report(m.get('max_interval')!, 'max_interval must be at least interval (it bounds how long a change below min_updates may wait)');
  }
  return c.problems.length > before ? undefined : level;
}

/** `reconcile: 24h`, or `off` (events are then the only truth: not recommended, docs/watch.md). */
function checkReconcile(c: Checker, f: Field): number | null | undefined {
  const value = isScalar(f.node) ? f.node.value : undefined;
  if (value === 'off' || value === false) return null;
  return checkWatchDuration(c, f, ' or off');
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const WATCH_DURATION = /^(\d+(?:ms|s|m|h|d))+$/;
/** Long enough for any schedule, short enough for a timer (setTimeout takes up to 2^31-1 ms). */
const MAX_WATCH_MS = 24 * 86_400_000;

/**
 * `15m`, `1h`, `1h30m`, `30s`, `500ms`: here `m` means minutes, as in Go and Prometheus (in
 * retention's keep_within it means months; a watch interval of months makes no sense).
 */
export function parseWatchDuration(text: string): number | undefined {
  const t = text.trim();
  if (!WATCH_DURATION.test(t)) return undefined;
  let ms = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)(ms|s|m|h|d)/g)) ms += Number(n) * UNIT_MS[unit!]!;
  return ms;
}

function checkWatchDuration(c: Checker, f: Field, orElse = ''): number | undefined {
  const expected = `a duration such as 15m, 1h, 1h30m or 30s (m = minutes)${orElse}`;
  const value = isScalar(f.node) ? f.node.value : undefined;
  const ms = typeof value === 'string' ? parseWatchDuration(value) : undefined;
  if (ms !== undefined && ms >= 1 && ms <= MAX_WATCH_MS) return ms;
  if (ms !== undefined) c.report(f, `expected ${expected} from 1ms to 24d, got ${JSON.stringify(value)}`);
  else c.report(f, `expected ${expected}, got ${describe(f.node)}${typeof value === 'number' ? ` (add a unit, e.g. "${value}s")` : ''}`);
  return undefined;
}

/** Where watch hears of a source's changes (docs/watch.md "Event sources"). */
export type EventsSpec =
  /** An SQS queue: `url` is the queue's https URL (or http for a local SQS-compatible server). */
  | { kind: 'sqs'; url: string; text: string }
  /** An HTTP push endpoint watch listens on (Ceph RGW topics with push-endpoint). */
  | { kind: 'http'; host: string; port: number; path: string; text: string };

/**
 * `sqs://sqs.<region>.amazonaws.com/<account>/<queue>` (https), `sqs+http://host:port/<account>/<queue>`
 * (a local SQS-compatible server), or `http://127.0.0.1:PORT/path` (a push endpoint to listen on).
 * Secrets never go here: a push token comes from the environment (docs/watch.md).
 */
export function checkEvents(c: Checker, f: Field): EventsSpec | undefined {
  const expected = 'sqs://sqs.<region>.amazonaws.com/<account>/<queue> or http://127.0.0.1:<port>/';
  const raw = c.string(f, `an events URL such as ${expected}`);
  if (raw === undefined) return undefined;
  const parsed = parseEvents(raw);
  if (typeof parsed === 'string') c.report(f, `${parsed} (expected ${expected})`);
  return typeof parsed === 'string' ? undefined : parsed;
}

export function parseEvents(raw: string): EventsSpec | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `invalid events URL ${JSON.stringify(raw)}`;
  }
  if (url.username !== '' || url.password !== '' || url.search !== '') {
    return 'the events URL must carry no credentials or query: a push token comes from LAKEGUARD_WATCH_TOKEN or --token-file';
  }
  if (url.protocol === 'sqs:' || url.protocol === 'sqs+http:' || url.protocol === 'sqs+https:') {
    if (url.host === '' || !/^\/[^/]+\/[^/]+$/.test(url.pathname)) return `events URL ${JSON.stringify(raw)} does not name a queue as <host>/<account>/<queue>`;
    const scheme = url.protocol === 'sqs+http:' ? 'http' : 'https';
    return { kind: 'sqs', url: `${scheme}://${url.host}${url.pathname}`, text: raw };
  }
  if (url.protocol === 'http:') {
    if (url.port === '') return `events URL ${JSON.stringify(raw)} needs a port to listen on, e.g. http://127.0.0.1:8085/`;
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    return { kind: 'http', host, port: Number(url.port), path: url.pathname, text: raw };
  }
  return `unsupported events URL scheme ${JSON.stringify(url.protocol)}`;
}
