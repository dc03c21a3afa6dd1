// Tools for tests that damage a repository on purpose (verify, rebuild): find where a blob is,
// flip one byte of a file.
import { readFileSync, writeFileSync } from 'node:fs';
import type { IndexDocument } from '../../src/engine/finalize.js';
import type { Repository } from '../../src/repository/repository.js';

/** Where a blob is, according to the first index file (in name order) that lists it. */
export async function locateBlob(repo: Repository, hex: string): Promise<{ pack: string; offset: number; length: number; indexFile: string }> {
  for (const name of (await repo.listNames('index')).sort()) {
    for (const p of (await repo.readDocument<IndexDocument>('index', name)).packs) {
      const b = p.blobs.find((e) => e[0] === hex);
      if (b !== undefined) return { pack: p.id, offset: b[2], length: b[3], indexFile: name };
    }
  }
  throw new Error(`blob ${hex} is in no index file`);
}

/** Flips one bit of the byte at `at` in a file. */
export function flipByte(path: string, at: number): void {
  const bytes = readFileSync(path);
  bytes[at]! ^= 0x20;
  writeFileSync(path, bytes);
}
