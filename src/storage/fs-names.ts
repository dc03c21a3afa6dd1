import { isUtf8 } from 'node:buffer';
import path from 'node:path';

/**
 * File names <-> key segments for directory stores (docs/repository-format.md, "Keys of
 * directory sources").
 *
 * A key is a string, a Linux file name is any bytes but '/' and NUL. A name that is valid
 * UTF-8 and holds no backslash is its key segment unchanged, as it always was. Any other name
 * is written with `\xHH` (two lowercase hex digits) for each byte that is not part of a valid
 * UTF-8 sequence and for each backslash; the rest stays as it is. A key segment with a
 * backslash therefore always is such an escape, and only the canonical one counts: `\x41` is
 * not an escape of "A" (which needs none) but an invalid key, as a backslash was before. So the
 * mapping is one-to-one, no name that could be stored before changes its key, and an S3 key
 * with a backslash that happens to be restored into a directory keeps being refused unless it
 * is exactly such an escape.
 *
 * Why not percent-encoding: `%` is common in object keys (Hive partitions escape with it,
 * `dt=2024-01-01%2000%3A00`), and such keys restored into a directory must keep their names.
 */

const BACKSLASH = 0x5c;

/** The key segment of a file name. */
export function keySegmentOf(name: Buffer): string {
  if (isUtf8(name) && !name.includes(BACKSLASH)) return name.toString('utf8');
  let out = '';
  for (let i = 0; i < name.length; ) {
    const n = name[i] === BACKSLASH ? 0 : utf8SequenceLength(name, i);
    if (n === 0) {
      out += `\\x${name[i]!.toString(16).padStart(2, '0')}`;
      i++;
    } else {
      out += name.toString('utf8', i, i + n);
      i += n;
    }
  }
  return out;
}

/** The file name of a key segment, or null when it holds a backslash that is not the canonical escape of a name. */
export function fileNameOf(segment: string): Buffer | null {
  if (!segment.includes('\\')) return Buffer.from(segment, 'utf8');
  const bytes: number[] = [];
  for (let i = 0; i < segment.length; ) {
    if (segment[i] === '\\') {
      const m = /^\\x([0-9a-f]{2})/.exec(segment.slice(i, i + 4));
      if (m === null) return null;
      bytes.push(parseInt(m[1]!, 16));
      i += 4;
    } else {
      const cp = segment.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...Buffer.from(ch, 'utf8'));
      i += ch.length;
    }
  }
  const name = Buffer.from(bytes);
  return keySegmentOf(name) === segment ? name : null;
}

/** A filesystem path: a string when every name in it is UTF-8, else bytes. */
export type FsPath = string | Buffer;

/** `root` joined with the file names of a key's segments (the key is already validated). */
export function fsPathOf(root: string, key: string): FsPath {
  const segments = key.split('/').filter((s) => s !== '');
  if (!key.includes('\\')) return path.join(root, ...segments);
  let p: FsPath = root;
  for (const s of segments) p = childPath(p, fileNameOf(s)!);
  return p;
}

/** `dir/name`, as a string while both are UTF-8. */
export function childPath(dir: FsPath, name: Buffer | string): FsPath {
  if (typeof dir === 'string' && (typeof name === 'string' || isUtf8(name))) return path.join(dir, name.toString());
  const base = Buffer.from(dir);
  return Buffer.concat([base, base.at(-1) === 0x2f ? Buffer.alloc(0) : Buffer.from('/'), Buffer.from(name)]);
}

/** The directory holding `p`. */
export function parentPath(p: FsPath): FsPath {
  if (typeof p === 'string') return path.dirname(p);
  const slash = p.lastIndexOf(0x2f);
  return slash <= 0 ? Buffer.from('/') : p.subarray(0, slash);
}

/** Length of the valid UTF-8 sequence starting at `i` (RFC 3629: no overlongs, no surrogates), or 0. */
function utf8SequenceLength(b: Buffer, i: number): number {
  const b0 = b[i]!;
  if (b0 < 0x80) return 1;
  const cont = (j: number, lo = 0x80, hi = 0xbf): boolean => i + j < b.length && b[i + j]! >= lo && b[i + j]! <= hi;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const lo = b0 === 0xe0 ? 0xa0 : 0x80;
    const hi = b0 === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const lo = b0 === 0xf0 ? 0x90 : 0x80;
    const hi = b0 === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}
