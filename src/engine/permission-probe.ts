import { StorageError } from '../errors.js';
import type { Repository } from '../repository/repository.js';

/**
 * The key the delete probe asks about: under packs/, where a backup identity must not delete,
 * and not a pack name (those are hex), so no pack can ever be at it.
 */
export const DELETE_PROBE_KEY = 'packs/00/lakeguard-delete-probe';

/**
 * Whether the repository's credentials may delete packs, learnt without side effects: one
 * DELETE of DELETE_PROBE_KEY, which does not exist. Asked only where that DELETE deletes and
 * creates nothing: an S3 bucket that has never had versioning (on a versioned bucket, every
 * Object Lock bucket among them, it would write a delete marker). Null where it cannot tell:
 * another store, a versioned bucket, versioning not readable, any other answer.
 */
export async function repositoryCanDelete(repo: Repository): Promise<boolean | null> {
  if (!repo.location.startsWith('s3://') || repo.objectLock !== null) return null;
  if ((await repo.bucketVersioning()) !== false) return null;
  try {
    await repo.deleteObject(DELETE_PROBE_KEY);
    return true;
  } catch (err) {
    if (err instanceof StorageError && err.code === 'AccessDenied') return false;
    return null;
  }
}
