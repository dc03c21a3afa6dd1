// A file written with a recorded modification time (restore, rollback of a `path:` source) gets
// that time back closely enough that its change token names the recorded state: backup and
// rollback then find it unchanged. Node hands libuv a double of seconds, which libuv truncates to
// whole microseconds; asked for plainly, about 3% of times landed more than 1 µs early.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileEtag, parseFileToken, sameFileToken } from '../../src/storage/fs-entries.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { prng, tempDir } from '../helpers/fixtures.js';

describe('file modification times set by FsStore.put', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir('file-times');
  });
  afterEach(() => dir.cleanup());

  it('puts 400 files at random nanosecond times: each lands within 500 ns and keeps its change token', async () => {
    const store = new FsStore({ root: dir.path, fsync: false });
    const rnd = prng(4242);
    const base = 1_765_000_000_000_000_000n; // December 2025, in ns
    for (let i = 0; i < 400; i++) {
      const offset = rnd(6).readUIntLE(0, 6); // up to ~3 days of ns, every digit random
      const wanted = base + BigInt(offset);
      const key = `f/${i % 8}.bin`;
      await store.put(key, Buffer.from('x'), { modifiedNs: wanted });
      const got = statSync(join(dir.path, key), { bigint: true });
      const off = got.mtimeNs - wanted;
      expect(off < 0n ? -off : off, `file ${i} asked for ${wanted}`).toBeLessThanOrEqual(500n);
      expect(sameFileToken(fileEtag(got), `1-${wanted}`)).toBe(true);
    }
  });

  it('a time before 1970 or after 2106 comes back to the millisecond, and its change token still names the state', async () => {
    const store = new FsStore({ root: dir.path, fsync: false });
    // 1960 (Node takes a negative number of seconds for "now") and 2400 (a double of seconds has no microseconds there).
    for (const wanted of [-315_619_199_876_543_210n, 13_569_465_600_987_654_321n]) {
      await store.put('old.bin', Buffer.from('xy'), { modifiedNs: wanted });
      const got = statSync(join(dir.path, 'old.bin'), { bigint: true });
      const off = got.mtimeNs - wanted;
      expect(off < 0n ? -off : off, `asked for ${wanted}, got ${got.mtimeNs}`).toBeLessThan(1_000_000n);
      expect(sameFileToken(fileEtag(got), `2-${wanted}`)).toBe(true);
    }
    expect(parseFileToken('2--315619199876543210')).toEqual({ size: 2n, mtimeNs: -315_619_199_876_543_210n });
    // Inside 1970-2106 a microsecond is all the slack there is.
    expect(sameFileToken('2-1765000000000000000', '2-1765000000000002000')).toBe(false);
  });
});
