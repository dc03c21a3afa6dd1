/**
 * The rules of removing a password (`key remove`, `key passwd`; docs/keys.md): which key an id
 * names, that the last usable key and (unless forced) the key in use are never removed, and how
 * each kind goes: a key file is deleted, the password of `config` is removed by rewriting config.
 */
import { UsageError } from '../errors.js';
import { CONFIG_KEY_ID } from './config.js';
import { objectKey } from './layout.js';
import { removeRepositoryObject } from './remove.js';
import type { Repository, RepositoryKey } from './repository.js';

/** The shortest prefix of a key file's id that `key remove` accepts (as `key list` prints it). */
export const MIN_KEY_ID_PREFIX = 8;

/** What `removeKey` did. */
export type KeyRemoval =
  /** Gone; `repo` is the repository as it is now (a new config when config's password went). */
  | { removed: true; id: string; repo: Repository }
  /** A key file under Object Lock retention: nothing was deleted; the password opens the repository until then. */
  | { removed: false; id: string; lockedUntil: Date };

/** The key `given` names: `config`, a key file's full id, or a unique prefix of at least MIN_KEY_ID_PREFIX characters. */
export function findKey(keys: readonly RepositoryKey[], given: string): RepositoryKey {
  const exact = keys.find((k) => k.id === given);
  if (exact !== undefined) return exact;
  const matches = given.length >= MIN_KEY_ID_PREFIX ? keys.filter((k) => k.id.startsWith(given)) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new UsageError(`key id ${given} is ambiguous: it starts ${matches.map((k) => k.id).join(', ')}`, { hint: 'give more of the id' });
  }
  const why = given.length < MIN_KEY_ID_PREFIX && given !== CONFIG_KEY_ID ? ` (give at least ${MIN_KEY_ID_PREFIX} characters of an id)` : '';
  throw new UsageError(`no key ${given} in this repository${why}`, { hint: 'see `lakeguard key list`' });
}

/**
 * Removes the key `given` names. Refuses (UsageError, exit 2) the last key any password can
 * still open (not counting `pending`: key files whose removal waits for their Object Lock
 * retention), and the key the repository was opened with unless `force`. The caller holds an
 * exclusive lock, so two removals cannot each leave the other's key as the "remaining" one.
 */
export async function removeKey(
  repo: Repository,
  given: string,
  { force = false, pending = new Set() }: { force?: boolean; pending?: ReadonlySet<string> } = {},
): Promise<KeyRemoval> {
  if (!repo.encrypted) throw new UsageError(`the repository at ${repo.location} is not encrypted; it has no passwords`);
  const keys = await repo.listKeys();
  const key = findKey(keys, given);
  // A key file whose removal waits for its retention is on its way out: it is no remaining key.
  if (!keys.some((k) => k.id !== key.id && k.problem === null && !pending.has(k.id))) {
    throw new UsageError(`key ${key.id} is the last password of the repository at ${repo.location}: without it nobody could open it`, {
      hint: 'add another password first (`lakeguard key add`), or use `lakeguard key passwd`',
    });
  }
  if (key.id === repo.openedWithKey && !force) {
    throw new UsageError(`key ${key.id} is the password this command opened the repository with`, {
      hint: 'open with another password (--password-file) to remove it, replace it with `lakeguard key passwd`, or add --force',
    });
  }
  if (key.id === CONFIG_KEY_ID) return { removed: true, id: key.id, repo: await repo.removeConfigPassword() };
  const result = await removeRepositoryObject(repo, objectKey('keys', key.id));
  return result.removed ? { removed: true, id: key.id, repo } : { removed: false, id: key.id, lockedUntil: result.lockedUntil };
}
