/**
 * What planning a run set asks the catalog (src/engine/shard-bounds.ts): how many keys a prefix
 * holds, to place balanced shard boundaries with Catalog.nthKey. Keys are counted as nthKey
 * walks them (every catalogued key, deleted ones included: an incremental scan's merge-join
 * reads them too).
 */
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';

const statements = new WeakMap<Catalog, { count: { get(params: unknown): unknown } }>();

/** The number of catalogued keys of `bucket` under `prefix` (one indexed range count). */
export function keyCount(catalog: Catalog, bucket: string, prefix: string): number {
  const id = catalog.findBucketId(bucket);
  if (id === undefined) return 0;
  let stmts = statements.get(catalog);
  if (stmts === undefined) {
    stmts = { count: sqlite(catalog).prepare('SELECT count(*) FROM objects WHERE bucket = @bucket AND key >= @lower AND key < @upper').pluck() };
    statements.set(catalog, stmts);
  }
  // The same upper bound as nthKey, so the two agree on which keys a prefix holds.
  return stmts.count.get({ bucket: id, lower: prefix, upper: prefix + '\u{10FFFF}' }) as number;
}
