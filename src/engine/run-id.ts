import { randomBytes } from 'node:crypto';

/**
 * A new run id: the UTC start time to the second, then 3 random bytes, so ids sort by start
 * time and two runs started in the same second on two hosts still differ
 * (`20261206T220000Z-a1b2c3`). Its own module so that commands which only read runs (sync,
 * forget, prune) do not load the backup engine to name one.
 */
export function newRunId(at: Date): string {
  return `${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/** The time a run id or marker names (its YYYYMMDDTHHMMSSZ prefix), or null when it has another form. */
export function runIdTime(name: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(name);
  return m === null ? null : Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}
