/**
 * The `notify:` and `drill:` sections (docs/monitoring.md, docs/drill.md): where runs report
 * to (webhooks, healthchecks-style pings) and the restore-drill schedule `watch` runs. A URL
 * that carries a token comes from an environment variable or a file (`url_env`, `url_file`),
 * read when a notification is sent, never stored in the policy.
 */
import type { DrillSchedule, NotifyEvent, NotifyPolicy, NotifyTarget } from './types.js';
import { NOTIFY_EVENTS } from './types.js';
import { checkEnvName, checkLocalPath } from './values.js';
import { read, withoutUndefined, type Checker, type Field } from './yaml-check.js';
import type { Context } from './schema-groups.js';

const NOTIFY_KEYS = ['webhooks', 'pings'] as const;
const TARGET_KEYS = ['url', 'url_env', 'url_file', 'events'] as const;
const PING_KEYS = ['url', 'url_env', 'url_file'] as const;
const DRILL_KEYS = ['every', 'sample', 'to', 'to_dir', 'groups'] as const;
const INTERVAL = /^(\d+)(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function checkNotify(c: Checker, f: Field, ctx: Context): NotifyPolicy | undefined {
  const m = c.map(f, NOTIFY_KEYS, 'a map with webhooks and/or pings');
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const webhooks = read(m, 'webhooks', (x) => c.list(x, 'a list of { url | url_env | url_file, events }')?.map((t) => checkTarget(c, t, ctx, true)));
  const pings = read(m, 'pings', (x) => c.list(x, 'a list of { url | url_env | url_file }')?.map((t) => checkTarget(c, t, ctx, false)));
  if (c.problems.length > before) return undefined;
  return { webhooks: (webhooks ?? []) as NotifyTarget[], pings: (pings ?? []) as NotifyTarget[] };
}

function checkTarget(c: Checker, f: Field, ctx: Context, webhook: boolean): NotifyTarget | undefined {
  const m = c.map(f, webhook ? TARGET_KEYS : PING_KEYS, 'a map with one of url, url_env, url_file');
  if (m === undefined) return undefined;
  const given = (['url', 'url_env', 'url_file'] as const).filter((k) => m.has(k));
  if (given.length !== 1) {
    c.report(f, given.length === 0 ? 'give the URL: url, url_env (an environment variable holding it) or url_file (a file holding it)' : `set only one of url, url_env and url_file (${given.join(' and ')} are set)`);
    return undefined;
  }
  const url = read(m, 'url', (x) => checkHttpUrl(c, x));
  const urlEnv = read(m, 'url_env', (x) => checkEnvName(c, x));
  const urlFile = read(m, 'url_file', (x) => checkLocalPath(c, x, ctx, 'a file path'));
  const events = read(m, 'events', (x) => checkEvents(c, x));
  return withoutUndefined({ url, urlEnv, urlFile, events });
}

function checkHttpUrl(c: Checker, f: Field): string | undefined {
  const raw = c.string(f, 'an http:// or https:// URL');
  if (raw === undefined) return undefined;
  try {
    const u = new URL(raw);
    if (u.protocol === 'http:' || u.protocol === 'https:') return raw;
  } catch {
    // reported below
  }
  c.report(f, 'expected an http:// or https:// URL (a URL holding a token belongs in url_env or url_file)');
  return undefined;
}

function checkEvents(c: Checker, f: Field): NotifyEvent[] | undefined {
  const items = c.list(f, `a list of ${NOTIFY_EVENTS.join(', ')}`);
  if (items === undefined) return undefined;
  const events: NotifyEvent[] = [];
  for (const item of items) {
    const name = c.string(item, NOTIFY_EVENTS.join(', '));
    if (name === undefined) continue;
    if ((NOTIFY_EVENTS as readonly string[]).includes(name)) events.push(name as NotifyEvent);
    else c.report(item, `unknown event ${JSON.stringify(name)}: expected ${NOTIFY_EVENTS.join(', ')}`);
  }
  return events;
}

export function checkDrillSchedule(c: Checker, f: Field, ctx: Context): DrillSchedule | undefined {
  const m = c.map(f, DRILL_KEYS, 'a map with every, sample and to (or to_dir)');
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const everyField = m.get('every');
  if (everyField === undefined) c.missing(f, 'every', 'every: 7d');
  const everyMs = everyField && checkInterval(c, everyField);
  const sample = read(m, 'sample', (x) => c.integer(x, 1, 100_000)) ?? 100;
  const to = read(m, 'to', (x) => {
    const raw = c.string(x, 's3://bucket/prefix/');
    if (raw !== undefined && !/^s3:\/\/[^/]+/.test(raw)) c.report(x, 'expected s3://bucket/prefix/');
    return raw;
  });
  const toDir = read(m, 'to_dir', (x) => checkLocalPath(c, x, ctx, 'a directory'));
  if (!m.has('to') && !m.has('to_dir')) c.missing(f, 'to', 'to: s3://scratch-bucket/drills/ (or to_dir: /var/tmp/drills)');
  else if (m.has('to') && m.has('to_dir')) c.report(f, 'set only one of to and to_dir');
  const groups = read(m, 'groups', (x) => c.list(x, 'a list of group names')?.map((g) => c.string(g, 'a group name')));
  if (c.problems.length > before || everyMs === undefined) return undefined;
  return withoutUndefined({ everyMs, sample, to, toDir, groups: groups?.filter((g): g is string => g !== undefined) });
}

/** `30s`, `15m`, `1h`, `7d`, `2w` in ms. */
function checkInterval(c: Checker, f: Field): number | undefined {
  const raw = c.string(f, 'an interval such as 12h, 7d or 2w');
  const m = raw === undefined ? null : INTERVAL.exec(raw);
  if (m === null || Number(m[1]) === 0) {
    if (raw !== undefined) c.report(f, `expected an interval such as 12h, 7d or 2w, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}
