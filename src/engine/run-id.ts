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
