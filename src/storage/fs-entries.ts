import { readlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { keySegmentOf, type FsPath } from './fs-names.js';
import type { ObjectEntry, ObjectMeta, SkippedEntry } from './types.js';

// What FsStore reports of a file: its listing entry, its metadata, or why it is skipped.

/** The ETag of a file: `<size>-<mtime ns>` (hashing every file to list it would be far too slow). */
export function fileEtag(st: BigIntStats): string {
  return `${st.size}-${st.mtimeNs}`;
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
