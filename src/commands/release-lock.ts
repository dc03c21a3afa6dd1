import { errorMessage } from '../errors.js';
import { STALE_AFTER_MS, type RepositoryLock } from '../repository/locks.js';
import type { Reporter } from './reporter.js';

/**
 * Removes a command's repository lock at its end. Releasing is best effort (the work is done),
 * but a lock file left behind holds off prune and forget until it goes stale: said in a
 * warning, also with --quiet, so an unattended job's log shows it (docs/permissions.md).
 */
export async function releaseLock(lock: RepositoryLock | null | undefined, reporter: Reporter): Promise<void> {
  if (lock === undefined || lock === null) return;
  try {
    await lock.release();
  } catch (err) {
    reporter.warnAlways(
      `could not remove the repository lock ${lock.key}: ${errorMessage(err)}; it holds off prune and forget until it goes stale (${STALE_AFTER_MS / 60_000} minutes; then \`lakeguard unlock\` removes it). The credentials need s3:DeleteObject on locks/* (docs/permissions.md)`,
    );
  }
}
