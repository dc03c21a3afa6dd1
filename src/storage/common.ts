import type { Readable } from 'node:stream';
import { compareKeys } from '../util/key-order.js';
import { watchAbort } from '../util/abort-watch.js';
import { fileNameOf } from './fs-names.js';
import type { ListItem, ObjectEntry } from './types.js';

// Helpers shared by the store implementations (not part of the ObjectStore seam).

/**
 * Listing helpers shared by the stores that list themselves (MemStore, FsStore): S3 semantics
 * for delimiter roll-up and startAfter, in S3's UTF-8 byte order (`compareKeys`).
 *
 * startAfter with a delimiter: a common prefix is yielded only when it sorts after startAfter.
 * When startAfter lies inside a common prefix (e.g. `a/x` for `a/`), that prefix is skipped as
 * a whole, so resuming a delimiter listing from its last item never repeats it. This is what
 * Ceph RGW does; AWS may still report the prefix. Callers should not rely on either.
 */
export async function* rollUp(
  entries: AsyncIterable<ObjectEntry> | Iterable<ObjectEntry>,
  prefix: string,
  delimiter: string | undefined,
  startAfter: string | undefined,
): AsyncGenerator<ListItem> {
  let lastPrefix: string | null = null;
  for await (const e of entries) {
    if (startAfter !== undefined && compareKeys(e.key, startAfter) <= 0) continue;
    if (delimiter) {
      const at = e.key.indexOf(delimiter, prefix.length);
      if (at >= 0) {
        const common = e.key.slice(0, at + delimiter.length);
        if (common === lastPrefix) continue;
        lastPrefix = common;
        if (startAfter !== undefined && compareKeys(common, startAfter) <= 0) continue;
        yield { kind: 'prefix', prefix: common };
        continue;
      }
    }
    yield e;
  }
}

/**
 * Why `key` cannot be a file path under a root directory, or null when it can. A backslash in
 * a segment must be the escape of a file name that is not UTF-8 (fs-names.ts). `userFiles`: the
 * directory holds user files (a source or restore target), where `.lg-tmp-*` is a name like any other.
 */
export function fsKeyProblem(key: string, userFiles = false): string | null {
  if (key === '') return 'empty key';
  if (key.includes('\0')) return 'contains a NUL byte';
  if (Buffer.byteLength(key) > 4096) return 'longer than 4096 bytes';
  for (const seg of key.split('/')) {
    if (seg === '') return "has an empty path segment (leading, trailing or doubled '/')";
    if (seg === '.' || seg === '..') return `has a '${seg}' path segment`;
    if (!userFiles && seg.startsWith(TMP_PREFIX)) return `has a segment starting with ${TMP_PREFIX}, reserved for temporary files`;
    // Most segments hold no backslash: their file name is their UTF-8 bytes, no Buffer needed.
    const name = seg.includes('\\') ? fileNameOf(seg) : { length: Buffer.byteLength(seg) };
    if (name === null) return "contains a backslash that is not a \\xHH escape of a file name that is not UTF-8 (keys use '/' as separator)";
    if (name.length > 255) return 'has a path segment longer than 255 bytes';
  }
  return null;
}

/** Names of in-flight temporary files; never listed, never a valid key segment. */
export const TMP_PREFIX = '.lg-tmp-';

/** Destroy `body` with the abort reason when `signal` aborts (a GET body outlives the call). */
export function abortable<T extends Readable>(body: T, signal: AbortSignal | undefined): T {
  if (!signal) return body;
  if (signal.aborted) {
    body.destroy(signal.reason as Error);
    return body;
  }
  // Through the signal's one shared listener, as the lean GETs are (util/abort-watch.ts).
  body.once('close', watchAbort(signal, () => body.destroy(signal.reason as Error)));
  return body;
}
