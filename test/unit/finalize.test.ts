// Index files written at the end of a run: built as text while the catalog rows stream by,
// they must be exactly the document JSON.stringify would give, and list every unindexed blob.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { RunVersionsByKey } from '../../src/catalog/version-records.js';
import { emptyCounters } from '../../src/engine/events.js';
import { finalizeRun, indexDocumentJson, writePendingIndexes, type IndexDocument, type RunManifest } from '../../src/engine/finalize.js';
import { checkManifest } from '../../src/engine/rebuild-manifests.js';
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
    const page = RunVersionsByKey.prototype.page;
    const spy = vi.spyOn(RunVersionsByKey.prototype, 'page').mockImplementation(function (this: RunVersionsByKey, limit: number) {
      seen.push(ticks);
      return page.call(this, limit);
    });
    try {
      const run = catalog.listRuns()[0]!;
      const manifest = await finalizeRun(repo, catalog, packer, run, 'complete', emptyCounters());
      expect(manifest.records.length).toBeGreaterThan(0);
    } finally {
      ticking = false;
      spy.mockRestore();
    }
    expect(seen.length).toBe(4); // three pages and the empty one that ends the loop
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
  });

  it('finalizeRun writes records in (bucket, key) order, each blob with its first and last (bucket, key)', async () => {
    const repo = await initRepo(new MemStore());
    const catalog = Catalog.open(':memory:', repo.id);
    catalogs.push(catalog);
    const seq = catalog.beginRun({ id: 'r', group: 'g', started: 1, host: 'h' });
    // Keys whose (directory, leaf) order is not their order, an astral character (after U+FFFD
    // in UTF-8, before it in UTF-16), two records of one key (their order must stay), two
    // buckets inserted in reverse; 14,000 filler keys so the records take two blobs (4 MiB each).
    const odd = ['a/b', 'a-b', 'a/b/c', 'a0', 'a/a/z', 'x\u{1F600}', 'x\uFFFD'];
    const filler = Array.from({ length: 14_000 }, (_, i) => `m/${'p'.repeat(200)}/${String((i * 7919) % 14_000).padStart(5, '0')}`);
    const record = (bucket: string, key: string, versionId: string | null, validFrom: number) => ({
      bucket,
      key,
      versionId,
      deleteMarker: false,
      size: 10,
      etag: 'd41d8cd98f00b204e9800998ecf8427e',
      lastModified: validFrom,
      validFrom,
      blobs: [],
    });
    catalog.transaction(() => {
      catalog.insertVersions(seq, [...odd, ...filler].map((key, i) => record('zeta', key, null, 1000 + i)));
      catalog.insertVersions(seq, [record('alpha', 'k', 'v2', 2000), ...odd.map((key) => record('alpha', key, null, 1000)), record('alpha', 'k', 'v1', 1000)]);
      catalog.insertFailures(seq, [{ bucket: 'zeta', key: 'a/b/d', versionId: null, code: 'AccessDenied', message: 'no' }]);
    });
    const packer = new Packer(repo, { onPackWritten: (pack) => catalog.transaction(() => catalog.insertPack(packRecord(pack), seq)) });
    const manifest = await finalizeRun(repo, catalog, packer, catalog.listRuns()[0]!, 'complete', emptyCounters());

    const blobs = await Promise.all(
      manifest.records.map(async (hex) => {
        const loc = catalog.blobLocation(Buffer.from(hex, 'hex'))!;
        const stored = await repo.readPackRange(loc.pack, loc.offset, loc.offset + loc.length);
        const raw = repo.decodeBlob(stored, { id: Buffer.from(hex, 'hex'), compressed: (loc.flags & 1) === 1, rawLength: loc.rawLength }, loc.pack);
        expect(raw.at(-1)).toBe(0x0a); // whole lines: each blob can be read alone
        return raw.toString('utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as { t: string; bucket: string; key: string; versionId: string | null });
      }),
    );
    expect(blobs.length).toBe(2);
    expect(manifest.recordRanges).toHaveLength(2);
    const versions = blobs.flat().filter((r) => r.t === 'v');
    const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
    const expected = [...versions].sort((a, b) => Buffer.compare(utf8(a.bucket), utf8(b.bucket)) || Buffer.compare(utf8(a.key), utf8(b.key)));
    expect(versions.map((r) => [r.bucket, r.key])).toEqual(expected.map((r) => [r.bucket, r.key]));
    expect(versions.slice(0, 9).map((r) => r.key)).toEqual(['a-b', 'a/a/z', 'a/b', 'a/b/c', 'a0', 'k', 'k', 'x\uFFFD', 'x\u{1F600}']);
    expect(versions.filter((r) => r.key === 'k').map((r) => r.versionId)).toEqual(['v2', 'v1']); // as the catalog holds them
    blobs.forEach((lines, i) => {
      const keys = lines.map((r) => [r.bucket, r.key]).sort((a, b) => Buffer.compare(utf8(a[0]!), utf8(b[0]!)) || Buffer.compare(utf8(a[1]!), utf8(b[1]!)));
      expect(manifest.recordRanges![i]).toEqual({ first: keys[0], last: keys.at(-1) });
    });
    // The failure (zeta, a/b/d) is in the last blob, whose range therefore reaches back to it.
    expect(manifest.recordRanges![1]!.first).toEqual(['zeta', 'a/b/d']);
    expect(manifest.recordRanges![0]).toEqual({ first: ['alpha', 'a-b'], last: expect.arrayContaining(['zeta']) as unknown });

    // Readers check the field like the rest of the manifest: one range per blob, pairs of strings.
    expect(checkManifest(manifest, 'r', repo)).toBe(manifest);
    expect(() => checkManifest({ ...manifest, recordRanges: manifest.recordRanges!.slice(1) }, 'r', repo)).toThrow(/malformed recordRanges/);
    expect(() => checkManifest({ ...manifest, recordRanges: [manifest.recordRanges![0]!, { first: ['zeta'], last: ['zeta', 'k'] }] } as unknown as RunManifest, 'r', repo)).toThrow(
      /malformed recordRanges/,
    );
  });
});
