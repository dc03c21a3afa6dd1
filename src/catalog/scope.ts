/**
 * What part of the repository a catalog holds (issue 20: a laptop that restores one prefix of a
 * billion-version repository needs only that prefix's metadata). A whole catalog holds every
 * version; a scoped one holds every version of some (bucket, prefix) pairs and nothing else, and
 * must never answer a question outside them as if it knew (docs/scale-out.md "Scoped catalogs").
 * The scope lives in catalog_info; this module is its only reader and writer.
 */
import { compareKeys } from '../util/key-order.js';
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';
import { UsageError } from '../errors.js';
import { printable } from '../util/printable.js';
import { upperBound } from './key-range.js';

/**
 * A prefix of one bucket ('' for the whole bucket) a scoped catalog holds every version of; a
 * shard's catalog (docs/scale-out.md "A shard on a fresh host syncs only its key range") narrows it to the keys
 * after `after` up to and including `upTo` (both keys of the same bucket; absent: no bound).
 */
export interface CatalogPrefix {
  bucket: string;
  prefix: string;
  after?: string;
  upTo?: string;
}

/** Whether a scope part is narrowed to a key range (a shard's catalog), not a plain prefix. */
export function isRangePart(p: CatalogPrefix): boolean {
  return p.after !== undefined || p.upTo !== undefined;
}

/**
 * Whether a catalog's scope was made for a shard's key range: some part has a bound, or there is
 * no part at all (a shard whose range holds none of its prefixes; `catalog sync --prefix` always
 * names one). An on-demand catalog of no part (a fresh host's `runs`) is not: callers that can
 * meet one ask scopeIsOnDemand too.
 */
export function isRangeScope(scope: readonly CatalogPrefix[] | null): boolean {
  return scope !== null && (scope.length === 0 || scope.some(isRangePart));
}

const SCOPE = 'scope';
/** Present (value '1') while the scope was made by commands' selections (an on-demand catalog), not by `catalog sync --prefix`. */
const ON_DEMAND = 'scope_on_demand';

/** The catalog's scope, sorted by bucket then prefix; null: the whole repository. */
export function catalogScope(catalog: Catalog): CatalogPrefix[] | null {
  const text = sqlite(catalog).prepare('SELECT value FROM catalog_info WHERE name = ?').pluck().get(SCOPE) as string | undefined;
  return text === undefined ? null : (JSON.parse(text) as CatalogPrefix[]);
}

/**
 * Records the scope (null: the whole repository), with no prefix inside another. `onDemand`
 * says who made it: commands' selections (true), `catalog sync --prefix` or a shard (false);
 * absent, it stays as it was (a scope widened in place). A whole catalog is neither.
 */
export function setCatalogScope(catalog: Catalog, scope: readonly CatalogPrefix[] | null, onDemand?: boolean): void {
  const db = sqlite(catalog);
  const set = (name: string, value: string | null): void => {
    if (value === null) db.prepare('DELETE FROM catalog_info WHERE name = ?').run(name);
    else db.prepare('INSERT INTO catalog_info (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value').run(name, value);
  };
  set(SCOPE, scope === null ? null : JSON.stringify(normalizeScope(scope)));
  if (scope === null || onDemand !== undefined) set(ON_DEMAND, scope !== null && onDemand === true ? '1' : null);
}

/**
 * Whether the catalog is scoped on demand (docs/catalog.md "On-demand catalogs"): a fresh
 * host's first command that selected keys scoped it to them, so a later command that selects
 * others adds them, and one that needs the whole repository makes it whole, instead of being
 * refused as on a catalog `catalog sync --prefix` scoped.
 */
export function scopeIsOnDemand(catalog: Catalog): boolean {
  return catalogScope(catalog) !== null && sqlite(catalog).prepare('SELECT 1 FROM catalog_info WHERE name = ?').pluck().get(ON_DEMAND) !== undefined;
}

/** Sorted, without duplicates or parts that another of the list already covers. */
export function normalizeScope(scope: readonly CatalogPrefix[]): CatalogPrefix[] {
  const order = (a: string | undefined, b: string | undefined): number => (a === b ? 0 : a === undefined ? -1 : b === undefined ? 1 : compareKeys(a, b));
  const sorted = [...scope].sort((a, b) => compareKeys(a.bucket, b.bucket) || compareKeys(a.prefix, b.prefix) || order(a.after, b.after) || order(a.upTo, b.upTo));
  const out: CatalogPrefix[] = [];
  for (const p of sorted) {
    if (out.some((q) => partCovers(q, p))) continue;
    out.push({ bucket: p.bucket, prefix: p.prefix, ...(p.after === undefined ? {} : { after: p.after }), ...(p.upTo === undefined ? {} : { upTo: p.upTo }) });
  }
  return out;
}

/** Whether every key of `bucket` starting with `prefix` is inside the scope (null scope: always). */
export function scopeCovers(scope: readonly CatalogPrefix[] | null, bucket: string, prefix: string): boolean {
  return scopeCoversPart(scope, { bucket, prefix });
}

/** Whether every key of `part` (a prefix, possibly narrowed to a key range) is inside the scope (null scope: always). */
export function scopeCoversPart(scope: readonly CatalogPrefix[] | null, part: CatalogPrefix): boolean {
  if (scope === null) return true;
  return scope.some((p) => partCovers(p, part));
}

/** Whether scope part `p` holds every key of `part`. */
function partCovers(p: CatalogPrefix, part: CatalogPrefix): boolean {
  if (p.bucket !== part.bucket || !part.prefix.startsWith(p.prefix)) return false;
  // The part's keys start after part.after (or at its prefix itself, included) ...
  if (p.after !== undefined && (part.after === undefined ? compareKeys(p.after, part.prefix) >= 0 : compareKeys(p.after, part.after) > 0)) return false;
  // ... and end at part.upTo (included), or before the prefix's upper bound (every key of the bucket when there is none).
  if (p.upTo !== undefined) {
    if (part.upTo !== undefined) return compareKeys(part.upTo, p.upTo) <= 0;
    const upper = upperBound(part.prefix);
    return upper !== null && compareKeys(upper, p.upTo) <= 0;
  }
  return true;
}

/**
 * The keys of scope `a` that scope `b` does not hold, as scope parts: exact where `b` has one
 * part of the same bucket and prefix (a shard range that moved: the slices before and after it),
 * else the whole part of `a`. Never smaller than the difference; callers that need it exact
 * filter keys with scopeHoldsKey.
 */
export function scopeDifference(a: readonly CatalogPrefix[], b: readonly CatalogPrefix[]): CatalogPrefix[] {
  const out: CatalogPrefix[] = [];
  for (const p of a) {
    if (b.some((q) => partCovers(q, p))) continue;
    const same = b.filter((q) => q.bucket === p.bucket && q.prefix === p.prefix);
    if (same.length === 1) out.push(...rangeMinus(p, same[0]!));
    else out.push(p);
  }
  return normalizeScope(out);
}

/** The keys of `p` after `p.after` up to `p.upTo` that (q.after, q.upTo] leaves out; both of one bucket and prefix (an absent bound: none). */
function rangeMinus(p: CatalogPrefix, q: CatalogPrefix): CatalogPrefix[] {
  const { bucket, prefix } = p;
  // Disjoint: all of p.
  if ((q.upTo !== undefined && p.after !== undefined && compareKeys(q.upTo, p.after) <= 0) || (q.after !== undefined && p.upTo !== undefined && compareKeys(p.upTo, q.after) <= 0)) return [p];
  const out: CatalogPrefix[] = [];
  // Below q: (p.after, q.after].
  if (q.after !== undefined && (p.after === undefined || compareKeys(p.after, q.after) < 0)) out.push({ bucket, prefix, ...(p.after === undefined ? {} : { after: p.after }), upTo: q.after });
  // Above q: (q.upTo, p.upTo].
  if (q.upTo !== undefined && (p.upTo === undefined || compareKeys(p.upTo, q.upTo) > 0)) out.push({ bucket, prefix, after: q.upTo, ...(p.upTo === undefined ? {} : { upTo: p.upTo }) });
  return out;
}

/** Whether the scope holds the versions of this one key (null scope: always). */
export function scopeHoldsKey(scope: readonly CatalogPrefix[] | null, bucket: string, key: string): boolean {
  if (scope === null) return true;
  return scope.some(
    (p) => p.bucket === bucket && key.startsWith(p.prefix) && (p.after === undefined || compareKeys(key, p.after) > 0) && (p.upTo === undefined || compareKeys(key, p.upTo) <= 0),
  );
}

/** Whether any key of `bucket` starting with `prefix` can be inside the scope. */
export function scopeOverlaps(scope: readonly CatalogPrefix[] | null, bucket: string, prefix: string): boolean {
  if (scope === null) return true;
  return scope.some((p) => p.bucket === bucket && (prefix.startsWith(p.prefix) || p.prefix.startsWith(prefix)));
}

/**
 * Whether some (bucket, key) between `first` and `last` (both included, in S3 key order) can be
 * inside the scope: a record blob whose `recordRanges` entry is this range is read by a scoped
 * sync only then (null scope: always).
 */
export function scopeOverlapsRange(scope: readonly CatalogPrefix[] | null, first: readonly [string, string], last: readonly [string, string]): boolean {
  if (scope === null) return true;
  const cmp = (a: readonly [string, string], b: readonly [string, string]): number => compareKeys(a[0], b[0]) || compareKeys(a[1], b[1]);
  return scope.some((p) => {
    // The prefix's keys are [(bucket, prefix), (bucket, upper)), or the rest of the bucket when the prefix is ''.
    if (cmp(last, [p.bucket, p.prefix]) < 0) return false;
    const upper = upperBound(p.prefix);
    if (!(upper === null ? compareKeys(first[0], p.bucket) <= 0 : cmp(first, [p.bucket, upper]) < 0)) return false;
    // A shard's part: keys after `after`, up to `upTo` (included).
    if (p.after !== undefined && cmp(last, [p.bucket, p.after]) <= 0) return false;
    return p.upTo === undefined || cmp(first, [p.bucket, p.upTo]) <= 0;
  });
}

/** `s3://bucket/prefix` for messages; a shard's part adds its key range: `s3://b/p (keys after "x", up to "y")`. */
export function describeScope(scope: readonly CatalogPrefix[]): string {
  if (scope.length === 0) return 'no key';
  return scope
    .map((p) => {
      const range = [p.after === undefined ? null : `after ${JSON.stringify(p.after)}`, p.upTo === undefined ? null : `up to ${JSON.stringify(p.upTo)}`].filter((x) => x !== null);
      return `s3://${p.bucket}/${p.prefix}${range.length === 0 ? '' : ` (keys ${range.join(', ')})`}`;
    })
    .join(', ');
}

/** The command that makes a scoped catalog whole (docs/catalog.md "Scoped catalogs"). */
export const WHOLE_SYNC_COMMAND = 'lakeguard catalog sync --all';

/**
 * "this catalog holds only s3://b/p/ (scoped)": the scope named the same way by every refusal;
 * "(on demand)" for a scope a fresh host's commands made (scopeIsOnDemand).
 */
export function holdsOnly(scope: readonly CatalogPrefix[], onDemand = false): string {
  const how = onDemand ? '(on demand)' : '(scoped)';
  return scope.length === 0 ? `this catalog holds no key ${how}` : `this catalog holds only ${printable(describeScope(scope))} ${how}`;
}

/**
 * Why an on-demand catalog refused a command, and the way on: its commands add what they select
 * (or make it whole) as they sync, so it refuses only a command that did not sync. Said after
 * what the command does when it syncs ("adds what a command selects when it syncs").
 */
export const ON_DEMAND_NOT_SYNCED = '--offline (or LAKEGUARD_OFFLINE) skips that. Run it again without them';

/**
 * Refuses a scoped catalog to an operation that decides from every version of the repository
 * (`what`: what it needs, for the message): a usage error, exit 2. The commands check first
 * (src/commands/catalog-scope-guard.ts, before they sync); the engines of backup, forget, prune
 * and lock extend check again, so no caller can prune from a catalog that knows one prefix.
 */
export function requireWholeCatalog(catalog: Catalog, command: string, what = 'every version of the repository'): void {
  const scope = catalogScope(catalog);
  if (scope === null) return;
  if (scopeIsOnDemand(catalog)) {
    throw new UsageError(`${command} needs ${what}; ${holdsOnly(scope, true)}, which becomes whole when such a command syncs it: ${ON_DEMAND_NOT_SYNCED}, or run \`${WHOLE_SYNC_COMMAND}\` first`);
  }
  throw new UsageError(`${command} needs ${what}; ${holdsOnly(scope)}. Run it on a host with a whole catalog, or \`${WHOLE_SYNC_COMMAND}\` first`);
}
