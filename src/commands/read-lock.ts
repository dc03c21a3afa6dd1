import type { EventSink } from '../engine/events.js';
import { acquireForReading, type RepositoryLock } from '../repository/locks.js';
import type { Repository } from '../repository/repository.js';

/** `--no-lock` of the commands that only read the repository (restore, verify). */
export const NO_LOCK_FLAG = '--no-lock';
export const NO_LOCK_HELP = 'take no shared repository lock (read-only credentials); a prune running meanwhile could delete packs being read';

/**
 * The shared lock of a command that reads packs (so that prune, exclusive, cannot delete them
 * meanwhile), or with --no-lock none, and a warning saying what that risks.
 */
export async function lockForReading(repo: Repository, command: string, lock: boolean, events: EventSink): Promise<RepositoryLock | null> {
  if (lock) return acquireForReading(repo, command, `${command} with --no-lock`);
  events({ type: 'warning', message: `--no-lock: ${command} takes no repository lock; a prune running meanwhile could delete packs it reads (${command} then fails, naming them)` });
  return null;
}
