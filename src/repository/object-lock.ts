import { listPrefix } from './layout.js';
import type { ObjectLockMode } from '../storage/types.js';

/** The repository's Object Lock setting, stored in `config` (and so covered by its MAC). */
export interface ObjectLockConfig {
  mode: ObjectLockMode;
  /** Every object the repository writes is retained at least this many days from its write. */
  retentionDays: number;
}

export const DAY_MS = 86_400_000;

/**
 * Added to every retention date. Signed S3 requests are refused when the client's clock is
 * more than 15 minutes off the server's (RequestTimeTooSkewed), so a local clock that is
 * behind can shorten a retention by at most that much; an hour covers it with room to spare.
 */
export const CLOCK_SKEW_MARGIN_MS = 60 * 60 * 1000;

const UNIT_DAYS: Record<string, number> = { d: 1, w: 7, y: 365 };
const MAX_RETENTION_DAYS = 100 * 365;

/**
 * `90d`, `12w`, `1y` (365 days), or a sum such as `1y30d` → a whole number of days, or null
 * when the text is not such a duration (or is zero, or longer than 100 years).
 */
export function parseRetentionDays(text: string): number | null {
  const t = text.trim().toLowerCase();
  if (!/^(\d+[dwy])+$/.test(t)) return null;
  let days = 0;
  for (const m of t.matchAll(/(\d+)([dwy])/g)) days += Number(m[1]) * UNIT_DAYS[m[2]!]!;
  return days >= 1 && days <= MAX_RETENTION_DAYS ? days : null;
}

/** `COMPLIANCE`/`GOVERNANCE` from the command line spelling (`compliance`, `governance`). */
export function parseLockMode(text: string): ObjectLockMode | null {
  const t = text.trim().toUpperCase();
  return t === 'COMPLIANCE' || t === 'GOVERNANCE' ? t : null;
}

/** The retention date an object written (or extended) at `now` gets: now + retention (+ margin), whole seconds. */
export function retainUntilFor(now: number, retentionDays: number, extraMs = 0): Date {
  const until = now + retentionDays * DAY_MS + CLOCK_SKEW_MARGIN_MS + extraMs;
  // Whole seconds: some servers keep only seconds, and the date recorded locally must equal the stored one.
  return new Date(Math.ceil(until / 1000) * 1000);
}

/**
 * How far beyond the retention `lock extend` (and every write) sets the date: a quarter of the
 * retention. An object is then extended about four times per retention period instead of
 * daily; a larger slack saves requests but keeps data that forget released longer (storage
 * costs far more than retention requests, so the slack stays modest).
 */
export function defaultSlackMs(retentionDays: number): number {
  return Math.round((retentionDays * DAY_MS) / 4);
}

/** The retention date of an object the repository writes at `now`: retention + default slack. */
export function writeRetainUntil(now: number, lock: ObjectLockConfig): Date {
  return retainUntilFor(now, lock.retentionDays, defaultSlackMs(lock.retentionDays));
}

/** Keys the repository rewrites or deletes as part of normal operation, so never locked. */
export function isLockable(key: string): boolean {
  return !key.startsWith(listPrefix('locks'));
}
