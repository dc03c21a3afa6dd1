// mergeByKey (S3 key order, both sides streamed) and the prefixes `diff <T> live` lists.
import { describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { CatalogQueries, StateObject } from '../../src/catalog/queries.js';
import { compareLive, isMultipartEtag, livePrefixes } from '../../src/engine/live-diff.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';
import { mergeByKey } from '../../src/util/key-order.js';

async function pairs(left: string[], right: string[]): Promise<string[]> {
  async function* slowly(keys: string[]) {
    for (const k of keys) yield await Promise.resolve(k);
  }
  const out: string[] = [];
  for await (const p of mergeByKey(left, slowly(right), (k) => k, (k) => k)) out.push(`${p.left ?? '-'}|${p.right ?? '-'}`);
  return out;
}

describe('mergeByKey', () => {
  it('pairs equal keys and keeps either side alone, in key order', async () => {
    expect(await pairs(['a', 'c', 'd'], ['b', 'c', 'e'])).toEqual(['a|-', '-|b', 'c|c', 'd|-', '-|e']);
    expect(await pairs([], ['x'])).toEqual(['-|x']);
    expect(await pairs(['x'], [])).toEqual(['x|-']);
    expect(await pairs([], [])).toEqual([]);
  });

  it('orders as S3 does (UTF-8 bytes), not as JavaScript compares UTF-16 units', async () => {
    // U+FF61 sorts before U+1F600 in UTF-8 but after its surrogates in UTF-16.
    expect(await pairs(['\uff61', '😀'], ['\uff61', '😀'])).toEqual(['\uff61|\uff61', '😀|😀']);
  });
});

describe('livePrefixes', () => {
  const source = (prefixes: string[]): OpenedSource => ({ bucket: 'b', objectStore: new MemStore(), prefixes, isExcluded: () => false });

  it('lists the policy prefixes inside --prefix, or --prefix inside a policy prefix', () => {
    expect(livePrefixes(source(['']), undefined)).toEqual(['']);
    expect(livePrefixes(source(['']), 'a/b/')).toEqual(['a/b/']);
    expect(livePrefixes(source(['a/', 'c/']), undefined)).toEqual(['a/', 'c/']);
    expect(livePrefixes(source(['a/x/', 'a/y/', 'c/']), 'a/')).toEqual(['a/x/', 'a/y/']);
    expect(livePrefixes(source(['a/']), 'a/b')).toEqual(['a/b']);
    // Outside every policy prefix: nothing was backed up there, nothing is compared.
    expect(livePrefixes(source(['a/']), 'z/')).toEqual([]);
    // Policy prefixes one inside another: the outer one only, so no key is compared twice.
    expect(livePrefixes(source(['a/', 'a/b/']), undefined)).toEqual(['a/']);
    expect(livePrefixes(source(['a/', 'a/b/']), 'a/b/c/')).toEqual(['a/b/c/']);
  });

  it('knows a multipart ETag', () => {
    expect(isMultipartEtag('"0123456789abcdef0123456789abcdef-3"')).toBe(true);
    expect(isMultipartEtag('0123456789abcdef0123456789abcdef')).toBe(false);
    expect(isMultipartEtag(null)).toBe(false);
    // A file's change token (size and modification time) is not.
    expect(isMultipartEtag('6-1796683944264892683')).toBe(false);
  });
});

describe('compareLive on a directory', () => {
  it('takes a file within a microsecond of its recorded time as unchanged, as backup does, and never calls its token multipart', async () => {
    const dir = tempDir('live-diff');
    try {
      writeTree(dir.path, { 'a.csv': 'abc', 'b.csv': 'def' });
      const store = new FsStore({ root: dir.path, fsync: false });
      const source: OpenedSource = { bucket: 'lake', objectStore: store, prefixes: [''], isExcluded: () => false };
      const token = (key: string, shiftNs: bigint) => {
        const st = statSync(join(dir.path, key), { bigint: true });
        return `${st.size}-${st.mtimeNs + shiftNs}`;
      };
      // The catalog's state: a.csv as a restore with its recorded time leaves it (400 ns off), b.csv touched since (5 µs).
      const state: StateObject[] = [
        { key: 'a.csv', versionId: null, size: 3, etag: token('a.csv', 400n), time: 0 },
        { key: 'b.csv', versionId: null, size: 3, etag: token('b.csv', -5000n), time: 0 },
      ];
      const q = { *stateAt() { yield* state; } } as unknown as CatalogQueries;
      const got = [];
      for await (const c of compareLive(q, source, '', { time: Date.now() })) got.push(c.kind === 'change' ? `${c.entry.key} ${c.entry.change} ${c.multipartEtag}` : `${c.key} unchanged`);
      expect(got).toEqual(['a.csv unchanged', 'b.csv changed false']);
    } finally {
      dir.cleanup();
    }
  });
});
