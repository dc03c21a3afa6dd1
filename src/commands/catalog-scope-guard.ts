/**
 * What a command may answer from a scoped catalog (issue 20; docs/catalog.md "Commands on a
 * scoped catalog"). A scoped catalog holds every version of some prefixes and nothing else, so:
 *
 * - a command that decides from every version of the repository (backup, forget, prune, verify,
 *   cost, lock extend) refuses it outright: `requireWholeCatalog` (src/catalog/scope.ts: the
 *   engines of backup, forget, prune and lock extend call it again);
 * - a command that selects keys (restore, ls, versions, find, diff, rollback, `serve`) answers
 *   only when everything it selected lies inside the scope, exactly as a whole catalog would,
 *   and refuses otherwise: `requireInScope` (or `uncoveredSelection` for a caller that answers
 *   the refusal its own way). A selection that only overlaps the scope is refused too: a
 *   restricted answer (counts, a restore, a diff) would read as the whole one.
 *
 * Both refusals are usage errors (exit 2) in one line naming the scope the catalog holds and the
 * command that widens it. Every check here only reads the catalog: call it before anything is
 * written (to the repository, a live bucket or a restore target).
 */
import type { Catalog } from '../catalog/catalog.js';
import { ON_DEMAND_NOT_SYNCED, WHOLE_SYNC_COMMAND, catalogScope, holdsOnly, scopeIsOnDemand } from '../catalog/scope.js';
import { selectionHeld, type Demand, type KeySelection } from '../engine/on-demand-scope.js';
import { UsageError } from '../errors.js';
import { printable } from '../util/printable.js';

export type { KeySelection } from '../engine/on-demand-scope.js';

/**
 * What a command's sync is asked to hold before the command answers (SyncOptions.demand; the
 * sync decides under its lease what that changes: onDemandChange). `selection`: what the
 * command selects, null when it cannot say before the sync (a group only the catalog knows),
 * [] when it reads no key (`runs`), undefined when it does not say (the scope stays, and a fresh
 * catalog syncs whole, as before). `wholeCatalog`: the command needs every version.
 */
export function commandDemand(selection: readonly KeySelection[] | null | undefined, wholeCatalog: boolean): Demand | undefined {
  if (wholeCatalog || selection === null) return 'all';
  return selection;
}

/** The first selection that reaches outside the catalog's scope; null when all are inside (or the catalog is whole). */
export function uncoveredSelection(catalog: Catalog, selections: Iterable<KeySelection>): KeySelection | null {
  const scope = catalogScope(catalog);
  if (scope === null) return null;
  for (const s of selections) if (!selectionHeld(scope, s)) return s;
  return null;
}

/**
 * Refuses a command whose selection reaches outside the catalog's scope, naming the first part
 * that does, the scope, and the two ways on: narrow the selection, or sync that prefix too.
 */
export function requireInScope(catalog: Catalog, command: string, selections: Iterable<KeySelection>): void {
  const outside = uncoveredSelection(catalog, selections);
  if (outside === null) return;
  const scope = catalogScope(catalog)!;
  if (scopeIsOnDemand(catalog)) {
    const url = printable(selectionUrl(outside));
    throw new UsageError(
      outside.bucket === null
        ? `${command}: ${url} is not in this catalog: ${holdsOnly(scope, true)}, which becomes whole when a command that reads every bucket syncs it: ${ON_DEMAND_NOT_SYNCED}, or run \`${WHOLE_SYNC_COMMAND}\` first`
        : `${command}: ${url} is not in this catalog: ${holdsOnly(scope, true)}, which adds what a command selects when it syncs: ${ON_DEMAND_NOT_SYNCED}, or run \`lakeguard catalog sync --prefix ${url}\` first`,
    );
  }
  const widen =
    outside.bucket === null
      ? `\`${WHOLE_SYNC_COMMAND}\` (every bucket)`
      : `\`lakeguard catalog sync --prefix ${printable(selectionUrl(outside))}\` (adds it) or \`${WHOLE_SYNC_COMMAND}\``;
  throw new UsageError(`${command}: ${printable(selectionUrl(outside))} reaches outside the catalog's scope: ${holdsOnly(scope)}. Narrow the selection to that, or run ${widen} first`);
}

/**
 * Refuses a scoped catalog to a command that takes a group's buckets from the catalog (a group
 * the policy does not name: its buckets are those its runs recorded). A scoped catalog knows only
 * the buckets of its scope, so the group's other buckets would be left out without a word.
 */
export function requireGroupBucketsKnown(catalog: Catalog, command: string, group: string): void {
  const scope = catalogScope(catalog);
  if (scope === null) return;
  throw new UsageError(
    `${command}: group ${printable(JSON.stringify(group))} is not in the policy, so its buckets are known only to a whole catalog; ${holdsOnly(scope, scopeIsOnDemand(catalog))}. Give --bucket (with --prefix inside the scope), the policy that names the group, or run \`${WHOLE_SYNC_COMMAND}\` first`,
  );
}

function selectionUrl(s: KeySelection): string {
  return s.bucket === null ? (s.prefix === '' ? 'every bucket' : `${s.prefix} in every bucket`) : `s3://${s.bucket}/${s.prefix}`;
}
