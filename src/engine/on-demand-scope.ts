/**
 * What a command's sync adds to a catalog that is scoped on demand (docs/catalog.md "On-demand
 * catalogs"). A command says what it selects (a `Demand`); the sync decides from it, under its
 * lease, what changes: this is the one place that decision is taken, so another process's change
 * of scope between a command's start and its sync cannot leave the two disagreeing.
 */
import type { Catalog } from '../catalog/catalog.js';
import { catalogScope, scopeCovers, scopeHoldsKey, scopeIsOnDemand, type CatalogPrefix } from '../catalog/scope.js';
import { catalogIsFresh } from '../catalog/sync.js';

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
 * What a command needs the catalog to hold: the keys it selects ([] for none: `runs` reads the
 * manifests only), or 'all' when it needs every version or cannot say before the sync (a group
 * only the catalog knows).
 */
export type Demand = readonly KeySelection[] | 'all';

/** Whether a scope holds everything `s` selects (a part of no bucket: never). */
export function selectionHeld(scope: readonly CatalogPrefix[], s: KeySelection): boolean {
  if (s.bucket === null) return false;
  // A key checked as a prefix would reach past a shard range's upper end (keys starting with it).
  return s.exact === true ? scopeHoldsKey(scope, s.bucket, s.prefix) : scopeCovers(scope, s.bucket, s.prefix);
}

/**
 * What `demand` changes in `catalog` as it is now: the parts to add (a fresh catalog is scoped
 * to them, on demand; one scoped on demand adds them), 'all' for an on-demand catalog that must
 * become whole, or undefined when the scope stays. A fresh catalog syncs whole (undefined) for a
 * demand of 'all' or of every bucket; a whole catalog, and one scoped by `catalog sync --prefix`
 * or a shard, always stay as they are.
 */
export function onDemandChange(catalog: Catalog, demand: Demand): readonly CatalogPrefix[] | 'all' | undefined {
  const scope = catalogScope(catalog);
  const everything = demand === 'all' || demand.some((s) => s.bucket === null);
  if (scope === null) return everything || !catalogIsFresh(catalog) ? undefined : scopeParts(demand as readonly (KeySelection & { bucket: string })[]);
  if (!scopeIsOnDemand(catalog)) return undefined;
  if (everything) return 'all';
  const outside = (demand as readonly (KeySelection & { bucket: string })[]).filter((s) => !selectionHeld(scope, s));
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
