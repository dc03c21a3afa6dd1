/**
 * S3 lists keys in UTF-8 byte order and SQLite's BINARY collation compares UTF-8 bytes too,
 * but JavaScript compares UTF-16 code units. The two orders differ only when a surrogate
 * (U+D800–DFFF, part of an astral character) meets a code unit in U+E000–FFFF, so we compare
 * code units and fix up just that case. Merge-joins of listings against the catalog rely on it.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) return rank(x) - rank(y);
      return x - y;
    }
  }
  return a.length - b.length;
}

/** Surrogates encode code points above U+FFFF, so in UTF-8 they sort after U+E000–FFFF. */
function rank(unit: number): number {
  return unit <= 0xdfff ? unit + 0x10000 : unit;
}

/** The smallest string greater than every string that starts with `prefix` ('' means no bound). */
export function prefixUpperBound(prefix: string): string | null {
  if (prefix === '') return null;
  // U+10FFFF sorts after every other code point in UTF-8 order; keys that start with the prefix
  // followed by it are impossible in practice (S3 keys are valid UTF-8 of at most 1024 bytes).
  return prefix + '\u{10FFFF}';
}

/** One key of a merge-join: the item of each side that has it. */
export interface KeyPair<L, R> {
  key: string;
  left?: L;
  right?: R;
}

/**
 * Merge-joins two sequences that are each in S3 key order (compareKeys) with unique keys: a
 * catalog's state against a listing, say. Yields one pair per key, in key order, holding one
 * item of each side at a time: neither side is ever read whole.
 */
export async function* mergeByKey<L, R>(
  left: Iterable<L> | AsyncIterable<L>,
  right: Iterable<R> | AsyncIterable<R>,
  leftKey: (item: L) => string,
  rightKey: (item: R) => string,
): AsyncGenerator<KeyPair<L, R>> {
  const ls = iteratorOf(left);
  const rs = iteratorOf(right);
  let l = await ls.next();
  let r = await rs.next();
  while (!l.done || !r.done) {
    const order = l.done ? 1 : r.done ? -1 : compareKeys(leftKey(l.value), rightKey(r.value));
    if (order < 0) {
      yield { key: leftKey(l.value as L), left: l.value as L };
      l = await ls.next();
    } else if (order > 0) {
      yield { key: rightKey(r.value as R), right: r.value as R };
      r = await rs.next();
    } else {
      yield { key: leftKey(l.value as L), left: l.value as L, right: r.value as R };
      [l, r] = await Promise.all([ls.next(), rs.next()]);
    }
  }
}

function iteratorOf<T>(items: Iterable<T> | AsyncIterable<T>): AsyncIterator<T> | Iterator<T> {
  return Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
}

/** A (bucket, key) pair: the order of a repository's record blobs and of shard ranges. */
export type BucketKey = readonly [bucket: string, key: string];

/** (bucket, key) order: by bucket name, then by key, both in UTF-8 byte order (compareKeys). */
export function compareBucketKeys(a: BucketKey, b: BucketKey): number {
  return compareKeys(a[0], b[0]) || compareKeys(a[1], b[1]);
}
