/**
 * What planning a run set asks the catalog (src/engine/shard-bounds.ts): how many keys a prefix
 * holds, to place balanced shard boundaries with Catalog.nthKey. Keys are counted as nthKey
 * walks them (every catalogued key, deleted ones included: an incremental scan's merge-join
 * reads them too).
 */
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';

type Statement = { get(params: unknown): unknown };
const statements = new WeakMap<Catalog, { count: Statement; last: Statement }>();

function statementsOf(catalog: Catalog): { count: Statement; last: Statement } {
  let stmts = statements.get(catalog);
  if (stmts === undefined) {
    const db = sqlite(catalog);
    stmts = {
      count: db.prepare('SELECT count(*) FROM objects WHERE bucket = @bucket AND key >= @lower AND key < @upper').pluck(),
      last: db.prepare('SELECT key FROM objects WHERE bucket = @bucket AND key >= @lower AND key < @upper ORDER BY key DESC LIMIT 1').pluck(),
    };
    statements.set(catalog, stmts);
  }
  return stmts;
}

/** The range of keys under `prefix`: the same upper bound as nthKey, so they agree on which keys a prefix holds. */
function prefixParams(id: number, prefix: string): { bucket: number; lower: string; upper: string } {
  return { bucket: id, lower: prefix, upper: prefix + '\u{10FFFF}' };
}

/** The number of catalogued keys of `bucket` under `prefix` (one indexed range count). */
export function keyCount(catalog: Catalog, bucket: string, prefix: string): number {
  const id = catalog.findBucketId(bucket);
  return id === undefined ? 0 : (statementsOf(catalog).count.get(prefixParams(id, prefix)) as number);
}

/** The greatest catalogued key of `bucket` under `prefix` (one index seek), undefined when none. */
export function lastKey(catalog: Catalog, bucket: string, prefix: string): string | undefined {
  const id = catalog.findBucketId(bucket);
  return id === undefined ? undefined : (statementsOf(catalog).last.get(prefixParams(id, prefix)) as string | undefined);
}
