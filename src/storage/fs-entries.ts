import { readlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { keySegmentOf, type FsPath } from './fs-names.js';
import type { ObjectEntry, ObjectMeta, SkippedEntry } from './types.js';

// What FsStore reports of a file: its listing entry, its metadata, or why it is skipped.

/** The ETag of a file: `<size>-<mtime ns>` (hashing every file to list it would be far too slow). */
export function fileEtag(st: BigIntStats): string {
  return `${st.size}-${st.mtimeNs}`;
}

/** A file's change token (fileEtag) as numbers; null for another ETag (an MD5, an S3 object's). */
export function parseFileToken(etag: string): { size: bigint; mtimeNs: bigint } | null {
  // Bounded so that no S3 ETag reads as one (a multipart MD5 of 32 digits and a part count).
  const m = /^(\d{1,19})-(-?\d{1,20})$/.exec(etag);
  return m === null ? null : { size: BigInt(m[1]!), mtimeNs: BigInt(m[2]!) };
}

/** How far apart two modification times of one file state may be: a time set by fileTimeSeconds is within 500 ns of the one asked for. */
const SAME_TIME_NS = 1000n;
/** Outside 1970 to 2106 fileTimeSeconds sets whole milliseconds (before 1970) or cannot reach a microsecond (a double of seconds). */
const SAME_TIME_OUTSIDE_NS = 1_000_000n;
const LATEST_PRECISE_NS = 2n ** 32n * 1_000_000_000n;

/**
 * The seconds to give Node's utimes/futimes so that a file gets the modification time nearest
 * `ns`. Node passes a double of seconds (within 240 ns of a time of today) and libuv truncates it
 * to whole microseconds: a time asked for plainly lands up to 1.24 µs early (3% of files were
 * more than 1 µs off, and a rollback rerun uploaded them again). Aiming at the middle of the
 * nearest microsecond lands on that microsecond: within 500 ns of `ns`.
 */
export function fileTimeSeconds(ns: bigint): number | Date {
  // Node takes a negative number for "now"; a Date before 1970 it passes on, to the millisecond.
  if (ns < 0n) return new Date(Math.round(Number(ns) / 1e6));
  const us = (ns + 500n) / 1000n;
  return (Number(us) + 0.5) / 1e6;
}

/**
 * Whether two change tokens name one file state: the same size, and modification times within a
 * microsecond (a millisecond outside 1970 to 2106). A file restored with its recorded time
 * (PutOptions.modifiedNs, fileTimeSeconds) is within that of it, and a filesystem's own times are
 * coarser (ext4 takes them from a clock of milliseconds).
 */
export function sameFileToken(a: string, b: string): boolean {
  if (a === b) return true;
  const x = parseFileToken(a);
  const y = parseFileToken(b);
  if (x === null || y === null || x.size !== y.size) return false;
  const d = x.mtimeNs - y.mtimeNs;
  const outside = (ns: bigint): boolean => ns < 0n || ns >= LATEST_PRECISE_NS;
  const slack = outside(x.mtimeNs) || outside(y.mtimeNs) ? SAME_TIME_OUTSIDE_NS : SAME_TIME_NS;
  return d < slack && -d < slack;
}

/** A listed file. */
export function fileEntry(key: string, st: BigIntStats): ObjectEntry {
  return {
    kind: 'object',
    key,
    size: Number(st.size),
    etag: fileEtag(st),
    lastModified: new Date(Number(st.mtimeMs)),
    versionId: null,
    isLatest: true,
    isDeleteMarker: false,
  };
}

/** A symbolic link or special file in a directory of user files: not followed, not read. */
export async function skippedEntry(key: string, file: FsPath, st: BigIntStats): Promise<SkippedEntry> {
  if (st.isSymbolicLink()) {
    const target = await readlink(file, { encoding: 'buffer' }).then(
      (t) => JSON.stringify(keySegmentOf(t)),
      () => 'an unreadable target',
    );
    return { key, code: 'Symlink', message: `symbolic link to ${target}, not followed` };
  }
  const what = st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : 'not a regular file';
  return { key, code: 'SpecialFile', message: `${what}, not a regular file: not read` };
}

/** A file's metadata: size, ETag, mtime and permission bits. */
export function fileMeta(st: BigIntStats): ObjectMeta {
  return { size: Number(st.size), etag: fileEtag(st), lastModified: new Date(Number(st.mtimeMs)), versionId: null, metadata: {}, mode: Number(st.mode & 0o7777n) };
}
