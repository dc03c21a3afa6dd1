import { realpathSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
import type { Policy } from '../policy/types.js';
import { sameEndpoint, splitS3Url } from '../storage/s3-url.js';
import { isWithin } from '../util/path-within.js';
import { printable } from '../util/printable.js';

/**
 * A restore (or drill) target that overlaps the repository would write its objects among the
 * repository's (a source key `config` lands on the repository's `config`), and `--delete-extra`
 * would delete the repository's packs, index files and manifests as keys "that did not exist
 * then". Such a target is refused before anything is written.
 */

/** Where a restore writes: a local directory, or an S3 bucket and prefix on an endpoint. */
export type RestoreTargetPlace = { dir: string } | { url: string; endpoint: string | undefined };

/** Refuses (exit 2) a target inside the repository or holding it; names both and the way out. */
export function refuseTargetOverlappingRepository(policy: Policy, target: RestoreTargetPlace, flag: string): void {
  const repo = policy.repository.url;
  if (!overlaps(repo, policy.repository.endpoint, target)) return;
  const given = 'dir' in target ? target.dir : target.url;
  throw new UsageError(
    `${flag} ${printable(given)} overlaps the repository ${printable(repo)}: restored objects would land among its objects (and --delete-extra would delete them)`,
    { hint: `restore to a ${'dir' in target ? 'directory' : 'bucket or prefix'} outside the repository; nothing was written` },
  );
}

function overlaps(repo: string, repoEndpoint: string | undefined, target: RestoreTargetPlace): boolean {
  if ('dir' in target) {
    if (!repo.startsWith('file:')) return false;
    return nested(realish(fileURLToPath(repo)), realish(resolve(target.dir)));
  }
  if (!repo.startsWith('s3://') || !target.url.startsWith('s3://')) return false;
  const a = splitS3Url(repo);
  const b = splitS3Url(target.url);
  if ('problem' in a || 'problem' in b || a.bucket !== b.bucket) return false;
  if (!sameEndpoint(repoEndpoint, target.endpoint)) return false;
  return a.prefix === '' || b.prefix === '' || a.prefix === b.prefix || a.prefix.startsWith(`${b.prefix}/`) || b.prefix.startsWith(`${a.prefix}/`);
}

/** One path inside the other (or the same). */
function nested(a: string, b: string): boolean {
  return isWithin(a, b) || isWithin(b, a);
}

/** The real path of `p`, resolving links through its nearest existing ancestor (the target may not exist yet). */
function realish(p: string): string {
  const missing: string[] = [];
  for (let dir = p; ; dir = dirname(dir)) {
    try {
      return resolve(realpathSync(dir), ...missing);
    } catch {
      if (dirname(dir) === dir) return p;
      missing.unshift(relative(dirname(dir), dir));
    }
  }
}

