/**
 * Which runs a retention policy keeps, and why: a pure function of the runs, the rules, the
 * current time and the policy's time zone (table-tested in test/unit/retention.test.ts).
 *
 * The rules follow restic's `forget`: runs are taken newest first (equal start times: the
 * greater run id counts as newer); `keep_last N` keeps the N newest; `keep_daily N` keeps the
 * newest run of each of the N newest days that have runs (likewise hourly, weekly = ISO week,
 * monthly, yearly), with days cut in the policy's time zone; `keep_within D` keeps every run
 * started within D of the newest run. On top of that, lakeguard always keeps the newest
 * complete or partial run (incremental backups compare against it), runs still `running`, and
 * every run younger than `min_age_days` (the compliance floor wins over everything).
 * Failed and interrupted runs are never counted by keep_last or the calendar rules.
 */
import type { RunStatus } from '../catalog/types.js';
import type { Retention } from '../policy/types.js';
import { hasRules } from '../policy/retention.js';

export interface RetentionRun {
  id: string;
  /** Start time, ms since the epoch. */
  started: number;
  status: RunStatus;
}

export interface RetentionDecision {
  keep: boolean;
  /** Why it is kept (`latest`, `last-1`, `daily-3`, `monthly-1`, `within-30d`, `min-age`, ...); empty when removed. */
  reasons: string[];
}

const DAY = 86_400_000;

type Calendar = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';
const CALENDAR_RULES: readonly [Calendar, keyof Retention][] = [
  ['hourly', 'keepHourly'],
  ['daily', 'keepDaily'],
  ['weekly', 'keepWeekly'],
  ['monthly', 'keepMonthly'],
  ['yearly', 'keepYearly'],
];

export function decideRetention(
  runs: readonly RetentionRun[],
  rules: Retention,
  opts: { now: number; timeZone: string },
): Map<string, RetentionDecision> {
  const decisions = new Map<string, RetentionDecision>(runs.map((r) => [r.id, { keep: false, reasons: [] }]));
  const keep = (run: RetentionRun, reason: string): void => {
    const d = decisions.get(run.id)!;
    d.keep = true;
    d.reasons.push(reason);
  };
  if (!hasRules(rules)) {
    for (const r of runs) keep(r, 'no-policy');
    return decisions;
  }
  const newestFirst = [...runs].sort((a, b) => b.started - a.started || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const counted = newestFirst.filter((r) => r.status === 'complete' || r.status === 'partial');

  if (counted[0] !== undefined) keep(counted[0], 'latest');
  for (const r of newestFirst) if (r.status === 'running') keep(r, 'running');

  if (rules.keepLast !== undefined) counted.slice(0, rules.keepLast).forEach((r, i) => keep(r, `last-${i + 1}`));

  const buckets = new BucketKeys(opts.timeZone);
  for (const [calendar, rule] of CALENDAR_RULES) {
    const limit = rules[rule] as number | undefined;
    if (limit === undefined || limit === 0) continue;
    let last: string | null = null;
    let n = 0;
    for (const r of counted) {
      const key = buckets.key(r.started, calendar);
      if (key === last) continue;
      last = key;
      keep(r, `${calendar}-${++n}`);
      if (n === limit) break;
    }
  }

  if (rules.keepWithin !== undefined && newestFirst[0] !== undefined) {
    const newest = (counted[0] ?? newestFirst[0]).started;
    const from = subtractDuration(newest, rules.keepWithin, opts.timeZone);
    for (const r of newestFirst) if (r.started > from) keep(r, `within-${rules.keepWithin}`);
  }

  if (rules.minAgeDays !== undefined) {
    const youngerThan = opts.now - rules.minAgeDays * DAY;
    for (const r of newestFirst) if (r.started > youngerThan) keep(r, 'min-age');
  }
  return decisions;
}

/**
 * Calendar bucket keys in a time zone. An hour key carries the UTC offset, so the repeated
 * hour when clocks go back is two hours (two buckets), as it is in elapsed time.
 */
export class BucketKeys {
  private readonly format: Intl.DateTimeFormat;

  constructor(timeZone: string) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      timeZoneName: 'longOffset',
    });
  }

  key(time: number, calendar: Calendar): string {
    const parts: Record<string, string> = {};
    for (const p of this.format.formatToParts(new Date(time))) parts[p.type] = p.value;
    const { year, month, day, hour, timeZoneName } = parts;
    switch (calendar) {
      case 'yearly':
        return year!;
      case 'monthly':
        return `${year}-${month}`;
      case 'weekly':
        return isoWeek(Number(year), Number(month), Number(day));
      case 'daily':
        return `${year}-${month}-${day}`;
      case 'hourly':
        return `${year}-${month}-${day}T${hour} ${timeZoneName}`;
    }
  }
}

/** ISO 8601 week of a calendar date, e.g. `2026-W48` (weeks start on Monday; week 1 holds the first Thursday). */
export function isoWeek(year: number, month: number, day: number): string {
  const date = new Date(Date.UTC(year, month - 1, day));
  const weekday = (date.getUTCDay() + 6) % 7; // Monday = 0
  date.setUTCDate(date.getUTCDate() - weekday + 3); // the Thursday of this week decides the year
  const weekYear = date.getUTCFullYear();
  const week = 1 + Math.floor((date.getTime() - Date.UTC(weekYear, 0, 1)) / (7 * DAY));
  return `${weekYear}-W${String(week).padStart(2, '0')}`;
}

/**
 * `time` minus a duration such as `30d`, `12h`, `2w`, `6m` (months) or `1y6m`. Years and
 * months are calendar steps of the wall clock in `timeZone` (the policy's, where the calendar
 * rules cut their buckets), clamped to the month's last day (31 March − 1m = 28 or 29
 * February); a wall time that a DST change skips is moved forward by the gap, a repeated one
 * means its first occurrence. Weeks, days and hours are then subtracted as fixed lengths.
 */
export function subtractDuration(time: number, duration: string, timeZone = 'UTC'): number {
  let years = 0;
  let months = 0;
  let ms = 0;
  for (const [, n, unit] of duration.matchAll(/(\d+)([ymwdh])/g)) {
    const v = Number(n);
    if (unit === 'y') years += v;
    else if (unit === 'm') months += v;
    else if (unit === 'w') ms += v * 7 * DAY;
    else if (unit === 'd') ms += v * DAY;
    else ms += v * 3_600_000;
  }
  if (years === 0 && months === 0) return time - ms;
  const wall = new WallClock(timeZone);
  const d = new Date(wall.of(time)); // the wall time in timeZone, as if it were UTC
  const totalMonths = d.getUTCFullYear() * 12 + d.getUTCMonth() - years * 12 - months;
  const year = Math.floor(totalMonths / 12);
  const month = totalMonths - year * 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const shifted = Date.UTC(year, month, Math.min(d.getUTCDate(), lastDay), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds());
  // Beyond the range of a Date (some 275,000 years back) the step is NaN, and a comparison with
  // NaN would keep nothing: a duration that long reaches before every run.
  return Number.isNaN(shifted) ? -Infinity : wall.instant(shifted) - ms;
}

/** Wall-clock times in a time zone, written as UTC milliseconds (`of`), and back (`instant`). */
class WallClock {
  private readonly format: Intl.DateTimeFormat | null;

  constructor(timeZone: string) {
    this.format =
      timeZone === 'UTC'
        ? null
        : new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  of(time: number): number {
    if (this.format === null || !Number.isFinite(time)) return time;
    const p: Record<string, string> = {};
    for (const part of this.format.formatToParts(new Date(time))) p[part.type] = part.value;
    const date = new Date(Date.UTC(2000, Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second), ((time % 1000) + 1000) % 1000));
    date.setUTCFullYear(Number(p.year), Number(p.month) - 1, Number(p.day)); // years 0-99 too
    return date.getTime();
  }

  /** The instant whose wall time is `wall`: the first of two (clocks going back), or after the gap (clocks going forward). */
  instant(wall: number): number {
    if (this.format === null) return wall;
    // A zone's offset changes at most once within a day either side (one DST change).
    const before = this.of(wall - DAY) - (wall - DAY);
    const after = this.of(wall + DAY) - (wall + DAY);
    const candidates = [wall - before, wall - after].filter((t) => this.of(t) === wall).sort((x, y) => x - y);
    return candidates[0] ?? wall - before;
  }
}
