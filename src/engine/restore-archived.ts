/**
 * Restore's side of archived packs (GLACIER, DEEP_ARCHIVE): the failure that names such a pack,
 * and the thaw requests (S3 RestoreObject) of `restore --thaw-days`.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import pLimit from 'p-limit';
import { StorageError, type LakeguardError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import type { ThawState, ThawTier } from '../storage/types.js';
import type { EventSink } from './events.js';

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

/**
 * How `restore --wait` checks thawing packs: the pauses between checks (the last one repeats).
 * S3 thaws take minutes (Expedited) to hours (Standard: 3-5 h, Bulk: 5-12 h for GLACIER, up to
 * 48 h for DEEP_ARCHIVE): one check a minute at first, then every 15 minutes, a few hundred
 * RestoreObject requests over a long thaw.
 */
export const THAW_POLL_MS: readonly number[] = [60_000, 120_000, 240_000, 480_000, 900_000];

export interface ThawWait {
  /** Pauses between checks (default THAW_POLL_MS); the last one repeats. */
  pollMs?: readonly number[];
  /** Sleeps `ms` or until `signal` aborts (default: a timer); tests pass their own. */
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

/**
 * Waits until every pack of `packs` is readable. A check asks S3 for the thaw again (RestoreObject):
 * 409 RestoreAlreadyInProgress while it runs, 200 once the thawed copy exists, which is what
 * S3 documents for asking twice; a pack whose thaw was lost is asked for again by the same call.
 * Aborting (SIGINT, SIGTERM) ends the wait at once.
 */
export async function waitForThaw(
  repo: Repository,
  thaw: { days: number; tier: ThawTier },
  packs: ReadonlySet<string>,
  concurrency: number,
  wait: ThawWait,
  events: EventSink,
  signal: AbortSignal | undefined,
): Promise<void> {
  const pauses = wait.pollMs ?? THAW_POLL_MS;
  const sleep = wait.sleep ?? ((ms: number, s: AbortSignal | undefined) => sleepFor(ms, undefined, s === undefined ? {} : { signal: s }));
  for (let check = 0; ; check++) {
    const pause = pauses[Math.min(check, pauses.length - 1)]!;
    events({ type: 'phase', phase: 'wait for thaw', detail: `${packs.size} archived packs; next check in ${Math.round(pause / 1000)} s` });
    await sleep(pause, signal);
    const counts = await thawPacks(repo, thaw, packs, concurrency, signal);
    if (counts.ready === packs.size) return;
  }
}
