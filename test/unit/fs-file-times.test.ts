// A file written with a recorded modification time (restore, rollback of a `path:` source) gets
// that time back closely enough that its change token names the recorded state: backup and
// rollback then find it unchanged. Node hands libuv a double of seconds, which libuv truncates to
// whole microseconds; asked for plainly, about 3% of times landed more than 1 µs early.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileEtag, sameFileToken } from '../../src/storage/fs-entries.js';
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
});
