/**
 * What a restore says about what it did not find: keys asked for by name that the selected
 * state lacks (reported one by one), and, for a selection that came out empty, what was asked,
 * at which instant, and where the catalog has data instead.
 */
import type { Catalog, Scope, StateCut } from '../catalog/catalog.js';
import { CatalogQueries } from '../catalog/queries.js';
import { catalogScope, scopeCovers } from '../catalog/scope.js';
import { dataRunsAround, selectedHas } from '../catalog/restore-selection.js';
import { NothingFoundError } from '../errors.js';
import type { EventSink } from './events.js';
import type { RestoreOptions } from './restore.js';

/**
 * Keys the scopes name (--key, --keys-from, --version-id) that the selected state does not
 * hold: each is reported as a failure naming it (never a silent "0 restored"). Returns the count.
 */
export function reportMissingKeys(opts: RestoreOptions, events: EventSink): number {
  let missing = 0;
  let cut: string | undefined;
  for (const scope of opts.scopes) {
    if (scope.key === undefined || selectedHas(opts.catalog, scope.bucket, scope.key)) continue;
    missing++;
    cut ??= describeCut(opts.catalog, opts.cut);
    const what = scope.versionId !== undefined ? `version ${scope.versionId} is` : 'it is';
    const message = opts.catalog.hasBucket(scope.bucket)
      ? `not in the backup: ${what} not in the ${cut} (never backed up, or deleted by then)`
      : `not in the backup: no bucket or source ${JSON.stringify(scope.bucket)} in the catalog`;
    events({ type: 'failure', bucket: scope.bucket, key: scope.key, versionId: scope.versionId ?? null, code: 'NotInBackup', message });
  }
  return missing;
}

/** The error for a selection that is empty: what was asked, at which instant, and where data is. */
export function nothingSelected(catalog: Catalog, scopes: readonly Scope[], cut: StateCut): NothingFoundError {
  const names = scopes.map((s) => `${s.bucket}/${s.prefix ?? ''}`);
  const what = names.length <= 3 ? names.join(', ') : `${names.slice(0, 3).join(', ')} and ${names.length - 3} more`;
  const { before, after, ever } = dataRunsAround(catalog, scopes, cut);
  if (!ever) {
    const only = scopes.length === 1 ? scopes[0]! : undefined;
    // The "directory" the prefix would be in: `a/` for `a/b/` and for `a/b`.
    const trimmed = only?.prefix?.replace(/\/$/, '');
    const parent = trimmed?.slice(0, trimmed.lastIndexOf('/') + 1);
    // Only from a part of the repository the catalog holds whole: a scoped one may hold part of the parent.
    const near =
      only === undefined || parent === undefined || !scopeCovers(catalogScope(catalog), only.bucket, parent)
        ? []
        : new CatalogQueries(catalog).ls(only.bucket, parent, undefined, { limit: 10 }).items.map((e) => e.name);
    return new NothingFoundError(`nothing to restore: the catalog has no key under ${what}`, {
      hint:
        near.length > 0
          ? `${only!.bucket}/${parent} holds: ${near.join(', ')}${near.length === 10 ? ', …' : ''}`
          : 'check --bucket/--prefix/--group (`lakeguard ls` shows what the catalog holds; `lakeguard find` searches keys)',
    });
  }
  const near = [before === null ? null : `run ${before.id} (${new Date(before.started).toISOString()}) recorded data there before`, after === null ? null : `run ${after.id} (${new Date(after.started).toISOString()}) after`].filter((x) => x !== null);
  return new NothingFoundError(`nothing to restore: ${what} held no objects in the ${describeCut(catalog, cut)}`, {
    hint: `${near.length === 0 ? 'every key there was deleted' : near.join('; ')}: pick it with --run or --at`,
  });
}

export function describeCut(catalog: Catalog, cut: StateCut): string {
  if ('time' in cut) return `state at ${new Date(cut.time).toISOString()}`;
  if (cut.runSet !== undefined) return `state after run set ${cut.runSet.id}`;
  const run = catalog.listRuns().find((r) => r.seq === cut.runSeq);
  return `state of run ${run?.id ?? cut.runSeq}`;
}
