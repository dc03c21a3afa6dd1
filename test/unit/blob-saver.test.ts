// Deduplication of the same bytes read by two objects at once (backup-dedup.ts BlobSaver): the
// second copy must wait for the first, whatever the packer does in between. The packer here is
// the seam's shape only: it holds every add until the test releases it, the way a real one does
// while its sealed pack waits for an upload slot.
import { describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { BlobSaver } from '../../src/engine/backup-dedup.js';
import { emptyCounters } from '../../src/engine/events.js';
import type { BlobEncoder } from '../../src/repository/encode-pool.js';
import { BlobType } from '../../src/repository/pack.js';
import type { Packer } from '../../src/repository/packer.js';
import type { EncodedBlob, Repository } from '../../src/repository/repository.js';

function blob(byte: number): EncodedBlob {
  return { id: Buffer.alloc(32, byte), type: BlobType.data, stored: Buffer.alloc(10, byte), compressed: false, rawLength: 10 };
}

describe('BlobSaver', () => {
  it('stores bytes two objects bring at once one time, while the packer is still busy with the first', async () => {
    const known = new Set<string>();
    const catalog = { hasBlob: (id: Buffer) => known.has(id.toString('hex')) } as unknown as Catalog;
    let release!: () => void;
    const busy = new Promise<void>((resolve) => (release = resolve));
    const added: string[] = [];
    let written!: () => void;
    const packWritten = new Promise<void>((resolve) => (written = resolve));
    const packer = {
      add: async (b: EncodedBlob) => {
        added.push(b.id.toString('hex'));
        await busy;
        return { stored: packWritten };
      },
    } as unknown as Packer;
    const counters = emptyCounters();
    const saver = new BlobSaver({} as Repository, catalog, packer, counters, {} as BlobEncoder);
    const a = blob(1);
    const hex = a.id.toString('hex');
    const first = saver.add(a, hex);
    const second = saver.add(blob(1), hex);
    release();
    await Promise.all([first, second]);
    expect([added.length, counters.blobsNew, counters.blobsDeduplicated]).toEqual([1, 1, 1]);

    // Once its pack is written and catalogued, the same bytes again are found in the catalog.
    known.add(hex);
    written();
    await (await first).stored;
    await saver.add(blob(1), hex);
    expect([added.length, counters.blobsNew, counters.blobsDeduplicated]).toEqual([1, 1, 2]);
  });
});
