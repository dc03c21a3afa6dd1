import { DAMAGE_NEXT_STEP } from '../engine/sync.js';
import { LakeguardError } from '../errors.js';

/**
 * What the sync of this command could not read (damaged, tampered or planted objects: each was
 * warned about) is not in the catalog; an empty answer must say so, or it reads as "nothing was
 * ever backed up there" (docs/verify.md).
 */
export function unreadableNote(unreadable: number): string | null {
  if (unreadable === 0) return null;
  return `this command's sync could not read ${unreadable} repository object${unreadable === 1 ? '' : 's'} (warned above), and what ${unreadable === 1 ? 'it holds' : 'they hold'} is not in the catalog`;
}

/** An empty selection while the sync could not read part of the repository: the damage may be why (exit 1, not 2). */
export function unreadableAsCause(err: LakeguardError, unreadable: number): LakeguardError {
  const note = unreadableNote(unreadable);
  if (note === null) return err;
  return new LakeguardError(`${err.message}; ${note}`, { cause: err, hint: `${DAMAGE_NEXT_STEP}; put them back from a copy of the repository, then run this again` });
}
