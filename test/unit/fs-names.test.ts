// Keys of file names that are not UTF-8 (docs/repository-format.md, "Keys of directory sources").
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileNameOf, keySegmentOf } from '../../src/storage/fs-names.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { tempDir } from '../helpers/fixtures.js';

describe('file names <-> key segments', () => {
  it('keeps UTF-8 names (with % escapes of their own) as they are and escapes only what is not UTF-8, and backslashes', () => {
    const cases: [Buffer, string][] = [
      [Buffer.from('dt=2024-01-01%2000%3A00'), 'dt=2024-01-01%2000%3A00'],
      [Buffer.from('ünï 🦆'), 'ünï 🦆'],
      [Buffer.from([0x61, 0xff, 0x62]), 'a\\xffb'],
      [Buffer.from('a\\b'), 'a\\x5cb'],
      [Buffer.from('a\\xffb'), 'a\\x5cxffb'], // a UTF-8 name that looks like an escape
      [Buffer.from([0xed, 0xa0, 0x80]), '\\xed\\xa0\\x80'], // an encoded surrogate is not UTF-8
      [Buffer.from([0xe2, 0x82]), '\\xe2\\x82'], // a cut-off sequence
    ];
    for (const [name, key] of cases) {
      expect(keySegmentOf(name)).toBe(key);
      expect(fileNameOf(key)?.equals(name)).toBe(true);
    }
  });

  it('accepts only the canonical escape: every key names one file, every file has one key', () => {
    for (const key of ['\\x41', '\\xFF', '\\x2f', '\\x00', 'a\\', '\\x5', 'a\\yb']) expect(fileNameOf(key)).toBeNull();
  });

  it('an FsStore writes the raw name of an escaped key, and still refuses other backslashes', async () => {
    const dir = tempDir('fs-names');
    try {
      const store = new FsStore({ root: dir.path, fsync: false, userFiles: true });
      await store.put('d\\xe9j\\xe0/caf\\xe9', Buffer.from('x'));
      await store.put('50%25off', Buffer.from('y'));
      expect(readdirSync(dir.path, { encoding: 'buffer' }).map((n) => n.toString('hex')).sort()).toEqual(
        [Buffer.from('50%25off'), Buffer.from([0x64, 0xe9, 0x6a, 0xe0])].map((b) => b.toString('hex')).sort(),
      );
      expect(readdirSync(Buffer.from(join(dir.path, 'd\xe9j\xe0'), 'latin1'), { encoding: 'buffer' })[0]!.equals(Buffer.from([0x63, 0x61, 0x66, 0xe9]))).toBe(true);
      const keys: string[] = [];
      for await (const item of store.list('')) if (item.kind === 'object') keys.push(item.key);
      expect(keys).toEqual(['50%25off', 'd\\xe9j\\xe0/caf\\xe9']);
      await expect(store.put('a\\x41', Buffer.from('z'))).rejects.toThrow(/contains a backslash that is not a \\xHH escape/);
      await store.delete('d\\xe9j\\xe0/caf\\xe9');
      expect(readdirSync(dir.path)).toEqual(['50%25off']);
    } finally {
      dir.cleanup();
    }
  });
});
