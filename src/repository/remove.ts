import { StorageError, isNotFound } from '../errors.js';
import type { ObjectEntry, ObjectStore } from '../storage/types.js';
import type { Repository } from './repository.js';

/** What happened when a repository object was to be deleted. */
export type RemoveResult = { removed: true } | { removed: false; lockedUntil: Date };

/**
 * Deletes one repository object (a key relative to the repository root, e.g. `packs/ab/ab12…`).
 * The single place where prune and forget delete repository data, so that Object Lock
 * (retention dates, versioned lock buckets) is handled once.
 *
 * In a versioned bucket (every Object Lock bucket is one) a plain DELETE only adds a delete
 * marker and frees nothing, so each version is deleted by id. The retention of every version
 * is checked first: an object under retention is left whole (no delete marker either) and its
 * retain-until date returned. Retention is never bypassed, not even GOVERNANCE: that is for an
 * administrator to do by hand.
 */
export async function removeRepositoryObject(repo: Repository, name: string): Promise<RemoveResult> {
  if (!(await isVersionAware(repo))) {
    try {
      await repo.deleteObject(name);
      return { removed: true };
    } catch (err) {
      // A bucket default retention can lock objects the repository config does not know about.
      const until = isDenied(err) ? await retainedUntil(repo, name, undefined).catch(() => null) : null;
      if (until !== null) return { removed: false, lockedUntil: until };
      throw err;
    }
  }
  const versions = await repo.objectVersions(name);
  // Without Object Lock in the config there is nothing to ask (S3 refuses retention requests on such buckets).
  const until = repo.objectLock === null ? null : await latestRetention(repo, name, versions);
  if (until !== null) return { removed: false, lockedUntil: until };
  for (const v of versions) {
    const versionId = v.versionId ?? 'null';
    try {
      await repo.deleteObject(name, { versionId });
    } catch (err) {
      if (isNotFound(err)) continue;
      // Locked between our check and the delete (e.g. by `lock extend` elsewhere): same answer.
      const locked = isDenied(err) ? await retainedUntil(repo, name, versionId).catch(() => null) : null;
      if (locked !== null) return { removed: false, lockedUntil: locked };
      throw err;
    }
  }
  return { removed: true };
}

/**
 * When `name` becomes deletable: the latest retain-until date of its versions that is still in
 * the future, or null when nothing retains it (or it does not exist). Deletes nothing.
 */
export async function lockedUntil(repo: Repository, name: string): Promise<Date | null> {
  if (!repo.canReadRetention || repo.objectLock === null) return null;
  return latestRetention(repo, name, await repo.objectVersions(name));
}

const versionAware = new WeakMap<Repository, Promise<boolean>>();

/** Whether deletes must go version by version: an Object Lock repository, or a versioned bucket. */
function isVersionAware(repo: Repository): Promise<boolean> {
  let known = versionAware.get(repo);
  if (known === undefined) {
    // Credentials without s3:GetBucketVersioning still delete the old way (one plain DELETE).
    known = repo.objectLock !== null ? Promise.resolve(true) : repo.bucketVersioned();
    versionAware.set(repo, known);
  }
  return known;
}

/** Every version and delete marker of exactly this key, newest first. */
export async function versionsOf(store: ObjectStore, name: string): Promise<ObjectEntry[]> {
  const out: ObjectEntry[] = [];
  for await (const item of store.list(name, { versions: true })) {
    if (item.kind !== 'object') continue;
    if (item.key === name) out.push(item);
    else if (out.length > 0) break; // keys come sorted: past ours, nothing more to find
  }
  return out;
}

async function latestRetention(repo: Repository, name: string, versions: ObjectEntry[]): Promise<Date | null> {
  let latest: Date | null = null;
  for (const v of versions) {
    if (v.isDeleteMarker) continue; // markers carry no retention and may always be removed
    const until = await retainedUntil(repo, name, v.versionId ?? 'null');
    if (until !== null && (latest === null || until > latest)) latest = until;
  }
  return latest;
}

/** The retain-until date of one version if it is still in the future, else null. */
async function retainedUntil(repo: Repository, name: string, versionId: string | undefined): Promise<Date | null> {
  if (!repo.canReadRetention) return null;
  try {
    const r = await repo.getRetention(name, versionId === undefined ? {} : { versionId });
    return r !== null && r.retainUntil.getTime() > Date.now() ? r.retainUntil : null;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

function isDenied(err: unknown): boolean {
  return err instanceof StorageError && err.code === 'AccessDenied';
}
