// Index files written at the end of a run: built as text while the catalog rows stream by,
// they must be exactly the document JSON.stringify would give, and list every unindexed blob.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { emptyCounters } from '../../src/engine/events.js';
import { finalizeRun, indexDocumentJson, writePendingIndexes, type IndexDocument } from '../../src/engine/finalize.js';
import { Packer, packRecord } from '../../src/repository/packer.js';
import { BlobType, blobFlags } from '../../src/repository/pack.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { initRepo } from '../helpers/fixtures.js';

const hash = (name: string): Buffer => createHash('sha256').update(name).digest();
const catalogs: Catalog[] = [];
afterEach(() => {
  for (const c of catalogs.splice(0)) c.close();
});

describe('index files of a run', () => {
  it('indexDocumentJson is the text of JSON.stringify of the same document', () => {
    const doc: IndexDocument = {
      version: 1,
      packs: [
        { id: 'ab'.repeat(32), size: 16_777_300, blobs: [[hash('a').toString('hex'), BlobType.data, 0, 120, 400, 1], [hash('b').toString('hex'), BlobType.records, 120, 7, 7, 0]] },
        { id: 'cd'.repeat(32), size: 0, blobs: [] },
      ],
    };
    const packs = new Map(doc.packs.map((p) => [p.id, { size: p.size, blobs: p.blobs.map((b) => JSON.stringify(b)) }]));
    expect(indexDocumentJson(packs)).toBe(JSON.stringify(doc));
    expect(indexDocumentJson(new Map())).toBe(JSON.stringify({ version: 1, packs: [] }));
  });

  it('writePendingIndexes lists every blob no index names yet, once, grouped by pack', async () => {
    const repo = await initRepo(new MemStore());
    const catalog = Catalog.open(':memory:', repo.id);
    catalogs.push(catalog);
    const run = catalog.beginRun({ id: 'r', group: 'g', started: 1, host: 'h' });
    const blob = (name: string, offset: number, type: BlobType, compressed: boolean) => ({
      hash: hash(name),
      offset,
      length: 10 + offset,
      rawLength: 30 + offset,
      flags: blobFlags(compressed, type),
    });
    catalog.insertPack({ name: 'p0', size: 50, blobs: [blob('old', 0, BlobType.data, true)] }, run, 'index-0');
    catalog.insertPack({ name: 'p1', size: 100, blobs: [blob('x', 0, BlobType.data, true), blob('y', 10, BlobType.records, false)] }, run);
    catalog.insertPack({ name: 'p2', size: 200, blobs: [blob('z', 0, BlobType.data, false)] }, null);

    const names = await writePendingIndexes(repo, catalog);
    expect(names).toHaveLength(1);
    const doc = await repo.readDocument<IndexDocument>('index', names[0]!);
    expect(doc).toEqual({
      version: 1,
      packs: [
        {
          id: 'p1',
          size: 100,
          blobs: [
            [hash('x').toString('hex'), BlobType.data, 0, 10, 30, 1],
            [hash('y').toString('hex'), BlobType.records, 10, 20, 40, 0],
          ],
        },
        { id: 'p2', size: 200, blobs: [[hash('z').toString('hex'), BlobType.data, 0, 10, 30, 0]] },
      ],
    });
    expect([...catalog.unindexedBlobs(100)]).toEqual([]);
    expect(catalog.knownIndexFiles().has(names[0]!)).toBe(true);
    expect(await writePendingIndexes(repo, catalog)).toEqual([]);
  });

  it('finalizeRun lets the event loop turn between pages of records, so progress and Ctrl-C are not held up', async () => {
    const repo = await initRepo(new MemStore());
    const catalog = Catalog.open(':memory:', repo.id);
    catalogs.push(catalog);
    const seq = catalog.beginRun({ id: 'r', group: 'g', started: 1, host: 'h' });
    const records = Array.from({ length: 12_000 }, (_, i) => ({
      bucket: 'lake',
      key: `k/${String(i).padStart(6, '0')}`,
      versionId: null,
      deleteMarker: false,
      size: 10,
      etag: 'd41d8cd98f00b204e9800998ecf8427e',
      lastModified: 1000 + i,
      validFrom: 1000 + i,
      blobs: [],
    }));
    catalog.transaction(() => catalog.insertVersions(seq, records));
    const packer = new Packer(repo, { onPackWritten: (pack) => catalog.transaction(() => catalog.insertPack(packRecord(pack), seq)) });

    // Turns of the event loop (a callback that re-queues itself in the check phase), seen each
    // time a page of records is read (5,000 per page: 3 pages).
    let ticks = 0;
    let ticking = true;
    const tick = (): void => {
      ticks++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const seen: number[] = [];
    const read = catalog.versionsOfRun.bind(catalog);
    catalog.versionsOfRun = (...args) => {
      seen.push(ticks);
      return read(...args);
    };
    try {
      const run = catalog.listRuns()[0]!;
      const manifest = await finalizeRun(repo, catalog, packer, run, 'complete', emptyCounters());
      expect(manifest.records.length).toBeGreaterThan(0);
    } finally {
      ticking = false;
    }
    expect(seen.length).toBe(4); // three pages and the empty one that ends the loop
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
  });
});
