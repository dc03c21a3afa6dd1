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
import { ON_DEMAND_NOT_SYNCED, WHOLE_SYNC_COMMAND, catalogScope, holdsOnly, scopeCovers, scopeHoldsKey, scopeIsOnDemand, type CatalogPrefix } from '../catalog/scope.js';
import { catalogIsFresh } from '../catalog/sync.js';
import { UsageError } from '../errors.js';
import { printable } from '../util/printable.js';

/**
 * Keys a command selected: every key of `bucket` (null: of every bucket) starting with
 * `prefix` ('' for all of them).
 */
export interface KeySelection {
  bucket: string | null;
  prefix: string;
  /** `prefix` is one exact key (`--key`, `versions KEY`): held when that key is, even at a shard range's upper end. */
  exact?: boolean;
}

/**
 * What a command's sync adds to an on-demand catalog before the command answers
 * (docs/catalog.md "On-demand catalogs"; SyncOptions.widen with onDemand), or undefined when the
 * scope stays. `selection`: what the command selects, null when it cannot say before the sync
 * (a group only the catalog knows), [] when it reads no key (`runs`), undefined when it does not
 * say (whole, as before). A fresh catalog is scoped to the selection when every part names a
 * bucket; one scoped on demand gets what it lacks, or becomes whole for a command that needs
 * every version (`wholeCatalog`) or every bucket. A whole catalog, and one scoped by `catalog sync --prefix` or a shard, stay as they are
 * (SyncOptions.onDemand applies this again under the sync's lease).
 */
export function onDemandWidening(catalog: Catalog, selection: readonly KeySelection[] | null | undefined, wholeCatalog: boolean): readonly CatalogPrefix[] | 'all' | undefined {
  const named = (s: readonly KeySelection[] | null | undefined): s is readonly (KeySelection & { bucket: string })[] => s != null && s.every((p) => p.bucket !== null);
  // Always 'all': the sync decides under its lease, after any other process's change of scope
  // (whole stays whole, a fresh catalog syncs whole, an on-demand one becomes whole, others stay).
  if (wholeCatalog) return 'all';
  // No part at all (`runs`): the catalog holds the runs, from the manifests, and no key.
  if (catalogScope(catalog) === null) return named(selection) && catalogIsFresh(catalog) ? scopeParts(selection) : undefined;
  if (!scopeIsOnDemand(catalog)) return undefined;
  if (selection === undefined) return undefined;
  if (!named(selection)) return 'all';
  const outside = selection.filter((s) => uncoveredSelection(catalog, [s]) !== null);
  return outside.length === 0 ? undefined : scopeParts(outside);
}

/** More parts of one bucket than this are held by their directories instead (a --keys-from of thousands). */
const MAX_PARTS_PER_BUCKET = 32;

/**
 * Selections as scope parts: a key is held as a prefix of itself. More than
 * MAX_PARTS_PER_BUCKET of one bucket are replaced by their directories (up to the last `/`), one
 * level up at a time until few enough: 1,000 keys of 10 partitions are held as those 10.
 */
function scopeParts(selection: readonly (KeySelection & { bucket: string })[]): CatalogPrefix[] {
  const byBucket = new Map<string, Set<string>>();
  for (const s of selection) byBucket.set(s.bucket, (byBucket.get(s.bucket) ?? new Set()).add(s.prefix));
  return [...byBucket].flatMap(([bucket, prefixes]) => {
    let parts = prefixes;
    while (parts.size > MAX_PARTS_PER_BUCKET) parts = new Set([...parts].map(parentDirectory));
    return [...parts].map((prefix) => ({ bucket, prefix }));
  });
}

/** `a/b/c.csv` and `a/b/c` -> `a/b/`; `a/b/` -> `a/`; `a/` and `a` -> ''. Always shorter, until ''. */
function parentDirectory(prefix: string): string {
  const inside = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return inside.slice(0, inside.lastIndexOf('/') + 1);
}

/** The first selection that reaches outside the catalog's scope; null when all are inside (or the catalog is whole). */
export function uncoveredSelection(catalog: Catalog, selections: Iterable<KeySelection>): KeySelection | null {
  const scope = catalogScope(catalog);
  if (scope === null) return null;
  for (const s of selections) {
    if (s.bucket === null) return s;
    // A key checked as a prefix would reach past a shard range's upper end (keys starting with it).
    if (!(s.exact === true ? scopeHoldsKey(scope, s.bucket, s.prefix) : scopeCovers(scope, s.bucket, s.prefix))) return s;
  }
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
  if (outside.bucket !== null && scopeIsOnDemand(catalog)) {
    const url = printable(selectionUrl(outside));
    throw new UsageError(`${command}: ${url} is not in this catalog: ${holdsOnly(scope, true)}, which adds what a command selects when it syncs: ${ON_DEMAND_NOT_SYNCED}, or run \`lakeguard catalog sync --prefix ${url}\` first`);
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
