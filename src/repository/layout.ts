/**
 * Where each type of repository file lives (the listing at the top of docs/repository-format.md).
 * The one place that spells the directories: everything outside src/repository/ names a file by
 * its type and name, and asks `objectKey` when it must show the object to a user (a damaged
 * file, a retained one) or key a record by it (the catalog's retention dates and pending
 * deletions).
 */

/** The types of file a repository holds besides `config`, each in the directory of its name. */
export type FileType = 'packs' | 'index' | 'runs' | 'forgets' | 'acks' | 'runsets' | 'drills' | 'checkpoints' | 'keys' | 'locks';

const PACK_ID = /^[0-9a-f]{64}$/;

/** The object key (relative to the repository root) of a file: `index/<name>`, `packs/<aa>/<id>`. */
export function objectKey(type: FileType, name: string): string {
  return type === 'packs' ? `packs/${name.slice(0, 2)}/${name}` : `${type}/${name}`;
}

/** The prefix a LIST of every file of one type starts from. */
export function listPrefix(type: FileType): string {
  return `${type}/`;
}

/**
 * The name of the file of `type` stored under `key`, or null when `key` is not one. A pack's key
 * must be exactly `packs/<aa>/<id>` (64 hex digits, `aa` its first two): anything else under
 * packs/ is a stray object, no pack. The one parser of pack keys (prune, verify, rebuild).
 */
export function fileName(type: FileType, key: string): string | null {
  const prefix = listPrefix(type);
  if (!key.startsWith(prefix)) return null;
  if (type !== 'packs') return key.slice(prefix.length);
  const id = key.slice(key.lastIndexOf('/') + 1);
  return PACK_ID.test(id) && key === objectKey('packs', id) ? id : null;
}
