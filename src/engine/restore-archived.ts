/**
 * Restore's side of archived packs (GLACIER, DEEP_ARCHIVE): the failure that names such a pack,
 * and the thaw requests (S3 RestoreObject) of `restore --thaw-days`.
 */
import pLimit from 'p-limit';
import { StorageError, type LakeguardError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import type { ThawState, ThawTier } from '../storage/types.js';

/** A GET of a pack answered InvalidObjectState: the pack is archived (GLACIER, DEEP_ARCHIVE) and not thawed. */
export class ArchivedPackError extends StorageError {
  constructor(
    readonly pack: string,
    err: StorageError,
  ) {
    super(err.code, `pack ${pack}: ${err.message} (the pack is archived: thaw it with an S3 RestoreObject, then run the restore again)`, { backendCode: err.backendCode, cause: err });
  }
}

/** A failed read of a pack, as the error of the objects in it: named by pack. */
export function packError(pack: string, err: StorageError): LakeguardError {
  if (err.code === 'InvalidObjectState') return new ArchivedPackError(pack, err);
  return new StorageError(err.code, `pack ${pack}: ${err.message}`, { backendCode: err.backendCode, cause: err });
}

/** Asks for a thaw of each archived pack; a refusal stops the restore (the objects are already counted). */
export async function thawPacks(
  repo: Repository,
  thaw: { days: number; tier: ThawTier },
  packs: ReadonlySet<string>,
  concurrency: number,
  signal: AbortSignal | undefined,
): Promise<Record<ThawState, number>> {
  const counts: Record<ThawState, number> = { started: 0, 'in-progress': 0, ready: 0 };
  const limit = pLimit(concurrency);
  await Promise.all(
    [...packs].map((pack) =>
      limit(async () => {
        counts[await repo.thawPack(pack, { ...thaw, ...(signal === undefined ? {} : { signal }) })]++;
      }),
    ),
  );
  return counts;
}
