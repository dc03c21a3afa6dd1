import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog, type PackRecord, type Scope, type StateCut } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import type { RestoreItem, RunCounters, VersionRecord } from '../../src/catalog/types.js';
import { emptyCounters } from '../../src/engine/events.js';
import { LakeguardError } from '../../src/errors.js';
import { tempDir } from '../helpers/fixtures.js';
import { selectState, statePage } from '../../src/catalog/restore-selection.js';
import { blobsOfPack, danglingBlobReferences, referencedPacks, versionsUsingBlobs } from '../../src/catalog/verify-queries.js';
import { hasLiveKeys, latestPage } from '../../src/catalog/backup-lookups.js';

const REPO = 'a1'.repeat(16);

/** A deterministic 32-byte blob id. */
const hash = (name: string): Buffer => createHash('sha256').update(name).digest();
const hex = (name: string): string => hash(name).toString('hex');

function counters(objectsSeen = 0): RunCounters {
  return { ...emptyCounters(), objectsSeen };
}

/** A pack whose blobs (by name) lie back to back with the given lengths (default 100 + i). */
function pack(name: string, blobNames: string[], lengths?: number[]): PackRecord {
  let offset = 0;
  return {
    name,
    size: 0,
    blobs: blobNames.map((b, i) => {
      const length = lengths?.[i] ?? 100 + i;
      const entry = { hash: hash(b), offset, length, rawLength: length * 2, flags: i % 2 };
      offset += length;
      return entry;
    }),
  };
}

function version(bucket: string, key: string, o: Partial<VersionRecord> & { validFrom: number }): VersionRecord {
  return {
    bucket,
    key,
    versionId: null,
    deleteMarker: false,
    size: 10,
    etag: `etag-${key}-${o.validFrom}`,
    lastModified: o.validFrom,
    blobs: [],
    ...o,
  };
}

/** Every item of the selected state, paging `limit` at a time. */
function allState(cat: Catalog, scopes: Scope[], cut: StateCut, limit = 1000): RestoreItem[] {
  const n = selectState(cat, scopes, cut);
  const items: RestoreItem[] = [];
  for (let after = 0; ; ) {
    const page = statePage(cat, after, limit);
    if (page.items.length === 0) break;
    expect(page.items.length).toBeLessThanOrEqual(limit);
    items.push(...page.items);
    after = page.rowid;
  }
  expect(items).toHaveLength(n);
  return items;
}
const keysOf = (items: { key: string }[]) => items.map((i) => i.key).sort(utf8Compare);

/** S3 / SQLite BINARY order, computed independently of the code under test. */
function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

let dirs: { cleanup: () => void }[] = [];
let catalogs: Catalog[] = [];
afterEach(() => {
  catalogs.splice(0).forEach((c) => c.close());
  dirs.splice(0).forEach((d) => d.cleanup());
});
function memCatalog(): Catalog {
  const c = Catalog.open(':memory:', REPO);
  catalogs.push(c);
  return c;
}
function fileCatalog(name = 'catalog.db', repo = REPO): { cat: Catalog; path: string } {
  const dir = tempDir('catalog');
  dirs.push(dir);
  const path = join(dir.path, 'nested', name);
  const cat = Catalog.open(path, repo);
  catalogs.push(cat);
  return { cat, path };
}

describe('Catalog.open', () => {
  it('keeps its data across reopening and refuses another repository, naming both ids', () => {
    const { cat, path } = fileCatalog();
    expect(existsSync(path)).toBe(true);
    const seq = cat.beginRun({ id: '20261123T101500Z-aaaaaa', group: 'g', started: 1, host: 'h' });
    cat.close();

    const again = Catalog.open(path, REPO);
    catalogs.push(again);
    expect(again.findRun(String(seq))?.id).toBe('20261123T101500Z-aaaaaa');
    again.close();

    const other = 'b2'.repeat(16);
    let error: unknown;
    try {
      catalogs.push(Catalog.open(path, other));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(LakeguardError);
    expect((error as Error).message).toContain(REPO);
    expect((error as Error).message).toContain(other);
    // The refused open did not rewrite the owner.
    const third = Catalog.open(path, REPO);
    catalogs.push(third);
    expect(third.listRuns()).toHaveLength(1);
  });

  it('in memory, two catalogs are independent', () => {
    const a = memCatalog();
    const b = memCatalog();
    a.beginRun({ id: 'r1', group: 'g', started: 1, host: 'h' });
    expect(a.listRuns()).toHaveLength(1);
    expect(b.listRuns()).toHaveLength(0);
  });
});

describe('Catalog: newest version per key (latestPage)', () => {
  let cat: Catalog;
  beforeEach(() => {
    cat = memCatalog();
  });

  // Sorted by JS's UTF-16 comparison, '\u{1F600}' (a surrogate pair) comes before '\uFF5E';
  // in UTF-8 byte order (S3, SQLite) it comes after.
  const unicodeKeys = ['k\uFF5E', 'k\u{1F600}', 'k\uFFFF', 'k\uE000', 'kz', 'k\u00E9', 'k/'];

  function seed(): void {
    const r1 = cat.beginRun({ id: 'run-1', group: 'g', started: 1000, host: 'h' });
    const r2 = cat.beginRun({ id: 'run-2', group: 'g', started: 2000, host: 'h' });
    cat.transaction(() => {
      cat.insertPack(pack('p1', ['b1', 'b2', 'b3']), r1);
      // Inserted out of key order on purpose.
      const keys = ['m', 'c', 'a', 'e', 'b', 'd', ...unicodeKeys, 'deleted'];
      cat.insertVersions(
        r1,
        keys.map((key, i) => version('main', key, { validFrom: 100 + i, versionId: `v1-${key}`, blobs: [hex('b1')] })),
      );
      cat.insertVersions(r1, [version('other', 'a', { validFrom: 5, versionId: 'o1', size: 999 }), version('other', 'zz', { validFrom: 5 })]);
      // Run 2: new versions of c, a delete marker for 'deleted'.
      cat.insertVersions(r2, [
        version('main', 'c', { validFrom: 500, versionId: 'v2-c', size: 77, blobs: [hex('b2')] }),
        version('main', 'c', { validFrom: 600, versionId: 'v3-c', size: 78, blobs: [hex('b3')] }),
        version('main', 'deleted', { validFrom: 500, versionId: 'dm', deleteMarker: true, size: 0 }),
      ]);
    });
    cat.finishRun(r1, 'complete', 1500, counters());
    cat.finishRun(r2, 'complete', 2500, counters());
  }

  it('lists every key once, with its newest version, in UTF-8 byte order', () => {
    seed();
    const page = latestPage(cat, 'main', '', true, null, 1000);
    const expected = ['m', 'c', 'a', 'e', 'b', 'd', ...unicodeKeys, 'deleted'].sort(utf8Compare);
    expect(page.map((v) => v.key)).toEqual(expected);
    // The case where JS and UTF-8 disagree.
    const keys = page.map((v) => v.key);
    expect(keys.indexOf('k\u{1F600}')).toBeGreaterThan(keys.indexOf('k\uFF5E'));
    expect(keys.indexOf('k\u{1F600}')).toBeGreaterThan(keys.indexOf('k\uFFFF'));
    expect(['k\uFF5E', 'k\u{1F600}'].sort()).toEqual(['k\u{1F600}', 'k\uFF5E']); // JS's own order differs

    const c = page.find((v) => v.key === 'c')!;
    expect({ versionId: c.versionId, size: c.size, validFrom: c.validFrom, deleteMarker: c.deleteMarker }).toEqual({
      versionId: 'v3-c',
      size: 78,
      validFrom: 600,
      deleteMarker: false,
    });
    const d = page.find((v) => v.key === 'deleted')!;
    expect(d.deleteMarker).toBe(true);
    expect(d.versionId).toBe('dm');
    expect(page.find((v) => v.key === 'a')!.deleteMarker).toBe(false);
    // hasLiveKeys: a prefix with a current object, one whose only key is deleted, unknown ones.
    expect(hasLiveKeys(cat, 'main', 'c')).toBe(true);
    expect(hasLiveKeys(cat, 'main', 'deleted')).toBe(false);
    expect(hasLiveKeys(cat, 'main', 'nope')).toBe(false);
    expect(hasLiveKeys(cat, 'nobucket', 'c')).toBe(false);
  });

  it('honours inclusive and exclusive lower bounds, the upper bound, and pages by key', () => {
    seed();
    const all = latestPage(cat, 'main', '', true, null, 1000).map((v) => v.key);
    expect(latestPage(cat, 'main', 'c', true, null, 3).map((v) => v.key)).toEqual(['c', 'd', 'deleted']);
    expect(latestPage(cat, 'main', 'c', false, null, 3).map((v) => v.key)).toEqual(['d', 'deleted', 'e']);
    // A lower bound that is not a key.
    expect(latestPage(cat, 'main', 'bb', true, null, 2).map((v) => v.key)).toEqual(['c', 'd']);
    // Upper bound is exclusive.
    expect(latestPage(cat, 'main', 'a', true, 'd', 100).map((v) => v.key)).toEqual(['a', 'b', 'c']);
    expect(latestPage(cat, 'main', 'a', false, 'c', 100).map((v) => v.key)).toEqual(['b']);
    // Bounds inside the unicode range follow byte order: after U+FFFF comes the emoji.
    expect(latestPage(cat, 'main', 'k\uFFFF', false, 'l', 100).map((v) => v.key)).toEqual(['k\u{1F600}']);
    expect(latestPage(cat, 'main', 'k\uE000', true, 'k\u{1F600}', 100).map((v) => v.key)).toEqual(['k\uE000', 'k\uFF5E', 'k\uFFFF']);

    // Paging with an exclusive lower bound at the last key visits every key exactly once.
    for (const limit of [1, 2, 5]) {
      const paged: string[] = [];
      let lower = '';
      let inclusive = true;
      for (;;) {
        const page = latestPage(cat, 'main', lower, inclusive, null, limit);
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(limit);
        paged.push(...page.map((v) => v.key));
        lower = page.at(-1)!.key;
        inclusive = false;
      }
      expect(paged).toEqual(all);
    }
  });

  it('keeps buckets apart', () => {
    seed();
    expect(latestPage(cat, 'other', '', true, null, 100).map((v) => [v.key, v.versionId, v.size])).toEqual([
      ['a', 'o1', 999],
      ['zz', null, 10],
    ]);
    expect(latestPage(cat, 'main', 'a', true, 'b', 100).map((v) => v.versionId)).toEqual(['v1-a']);
    expect(latestPage(cat, 'nobucket', '', true, null, 100)).toEqual([]);
    expect(latestPage(cat, 'mai', '', true, null, 100)).toEqual([]);
  });

  it('objects.latest follows valid_from, not insertion order', () => {
    const r1 = cat.beginRun({ id: 'run-1', group: 'g', started: 1, host: 'h' });
    const r2 = cat.beginRun({ id: 'run-2', group: 'g', started: 2, host: 'h' });
    cat.insertVersions(r1, [version('main', 'x', { validFrom: 2000, versionId: 'newer' })]);
    // An older version discovered later (e.g. listing versions of a versioned bucket).
    expect(cat.insertVersions(r2, [version('main', 'x', { validFrom: 1000, versionId: 'older' })])).toBe(1);
    const [x] = latestPage(cat, 'main', 'x', true, null, 1);
    expect(x!.versionId).toBe('newer');
    expect(x!.validFrom).toBe(2000);
    // The state at run 2 is the newest by validFrom too, not the last inserted.
    expect(allState(cat, [{ bucket: 'main' }], { runSeq: r2 }).map((i) => i.versionId)).toEqual(['newer']);
    // And a newer one does move it.
    cat.insertVersions(r2, [version('main', 'x', { validFrom: 3000, versionId: 'newest' })]);
    expect(latestPage(cat, 'main', 'x', true, null, 1)[0]!.versionId).toBe('newest');
    // The run-2 cut sees the newest by validFrom; the run-1 cut only what run 1 recorded.
    expect(allState(cat, [{ bucket: 'main' }], { runSeq: r1 }).map((i) => i.versionId)).toEqual(['newer']);
    expect(allState(cat, [{ bucket: 'main' }], { runSeq: r2 }).map((i) => i.versionId)).toEqual(['newest']);
    expect(allState(cat, [{ bucket: 'main' }], { time: 1500 }).map((i) => i.versionId)).toEqual(['older']);
  });

  it('skips a version id that is already catalogued for the key, and counts what it inserted', () => {
    const r1 = cat.beginRun({ id: 'run-1', group: 'g', started: 1, host: 'h' });
    const r2 = cat.beginRun({ id: 'run-2', group: 'g', started: 2, host: 'h' });
    expect(cat.insertVersions(r1, [version('main', 'k', { validFrom: 1, versionId: 'v1' }), version('main', 'j', { validFrom: 1, versionId: 'v1' })])).toBe(2);
    expect(
      cat.insertVersions(r2, [
        version('main', 'k', { validFrom: 1, versionId: 'v1', size: 12345 }), // duplicate
        version('main', 'k', { validFrom: 2, versionId: 'v2' }),
        version('other', 'k', { validFrom: 1, versionId: 'v1' }), // same id, other bucket: a different object
      ]),
    ).toBe(2);
    expect(cat.stats().versions).toBe(4);
    expect(cat.versionsOfRun(r2, 0, 100).map((v) => [v.bucket, v.key, v.versionId])).toEqual([
      ['main', 'k', 'v2'],
      ['other', 'k', 'v1'],
    ]);
    // Unversioned sources (version id null) record every change.
    expect(cat.insertVersions(r2, [version('plain', 'f', { validFrom: 10 }), version('plain', 'f', { validFrom: 20 })])).toBe(2);
    expect(latestPage(cat, 'plain', '', true, null, 10)[0]!.validFrom).toBe(20);
  });
});

describe('Catalog: state of a run or an instant (selectState, statePage)', () => {
  let cat: Catalog;
  let r1: number;
  let r2: number;
  const T1 = 1_000;
  const T2 = 2_000;

  beforeEach(() => {
    cat = memCatalog();
    r1 = cat.beginRun({ id: '20261123T100000Z-111111', group: 'finance', started: T1, host: 'h' });
    cat.transaction(() => {
      // Two packs; blobs laid out so that key order and pack order disagree.
      cat.insertPack(pack('pack-A', ['a', 'dir1', 'm1', 'm2', 'b1'], [10, 20, 30, 40, 50]), r1);
      cat.insertPack(pack('pack-B', ['m3', 'ab', 'ax', 'dir2', 'c', 'shared'], [11, 21, 31, 41, 51, 61]), r1);
      cat.insertVersions(r1, [
        version('lake', 'dir/2', { validFrom: T1 + 1, blobs: [hex('dir2')] }),
        version('lake', 'a', { validFrom: T1 + 2, blobs: [hex('a')], meta: { contentType: 'text/plain', metadata: { k: 'v' } } }),
        version('lake', 'ab', { validFrom: T1 + 3, blobs: [hex('ab')] }),
        version('lake', 'a/x', { validFrom: T1 + 4, blobs: [hex('ax')] }),
        version('lake', 'b', { validFrom: T1 + 5, blobs: [hex('b1')], etag: 'b-first', size: 50 }),
        version('lake', 'c', { validFrom: T1 + 6, blobs: [hex('c')] }),
        version('lake', 'dir/1', { validFrom: T1 + 7, blobs: [hex('dir1')] }),
        // Blobs deliberately in neither pack nor offset order: content is m2 + m3 + m1.
        version('lake', 'multi', { validFrom: T1 + 8, blobs: [hex('m2'), hex('m3'), hex('m1')], size: 81 }),
        version('lake', 'empty', { validFrom: T1 + 9, blobs: [], size: 0 }),
        version('lake', 'copy-of-c', { validFrom: T1 + 10, blobs: [hex('shared')] }),
        version('other', 'a', { validFrom: T1 + 1, blobs: [hex('shared')] }),
      ]);
      cat.insertFailures(r1, [
        { bucket: 'lake', key: 'broken', versionId: null, code: 'AccessDenied', message: 'denied' },
        { bucket: 'lake', key: 'also-broken', versionId: 'v9', code: 'Other', message: 'truncated' },
      ]);
    });
    cat.finishRun(r1, 'partial', T1 + 500, counters(10));

    r2 = cat.beginRun({ id: '20261123T110000Z-222222', group: 'finance', started: T2, host: 'h' });
    cat.transaction(() => {
      cat.insertPack(pack('pack-C', ['b2', 'd']), r2);
      cat.insertVersions(r2, [
        version('lake', 'b', { validFrom: T2 + 1, blobs: [hex('b2')], etag: 'b-second', size: 100 }),
        version('lake', 'c', { validFrom: T2 + 2, deleteMarker: true, size: 0, etag: '' }),
        version('lake', 'd', { validFrom: T2 + 3, blobs: [hex('d')] }),
      ]);
      cat.insertFailures(r2, [{ bucket: 'lake', key: 'later', versionId: null, code: 'Other', message: 'x' }]);
    });
    cat.finishRun(r2, 'complete', T2 + 500, counters(11));
  });

  const run1Keys = ['a', 'a/x', 'ab', 'b', 'c', 'copy-of-c', 'dir/1', 'dir/2', 'empty', 'multi'];
  const run2Keys = ['a', 'a/x', 'ab', 'b', 'copy-of-c', 'd', 'dir/1', 'dir/2', 'empty', 'multi'];

  it('run 1: overwritten objects in their first form, later deletions present, later creations absent', () => {
    const items = allState(cat, [{ bucket: 'lake' }], { runSeq: r1 });
    expect(keysOf(items)).toEqual(run1Keys);
    const b = items.find((i) => i.key === 'b')!;
    expect([b.etag, b.size, b.blobs.map((x) => x.hash.toString('hex'))]).toEqual(['b-first', 50, [hex('b1')]]);
    expect(items.every((i) => i.bucket === 'lake')).toBe(true);
  });

  it('run 2: the overwrite wins, the deleted key is gone, the new key is there', () => {
    const items = allState(cat, [{ bucket: 'lake' }], { runSeq: r2 });
    expect(keysOf(items)).toEqual(run2Keys);
    const b = items.find((i) => i.key === 'b')!;
    expect([b.etag, b.size, b.blobs.map((x) => x.hash.toString('hex'))]).toEqual(['b-second', 100, [hex('b2')]]);
    expect(b.blobs[0]!.pack).toBe('pack-C');
  });

  it('a time cut picks the versions valid at that instant', () => {
    expect(keysOf(allState(cat, [{ bucket: 'lake' }], { time: T1 - 1 }))).toEqual([]);
    expect(keysOf(allState(cat, [{ bucket: 'lake' }], { time: T1 + 5 }))).toEqual(['a', 'a/x', 'ab', 'b', 'dir/2']);
    expect(keysOf(allState(cat, [{ bucket: 'lake' }], { time: T2 }))).toEqual(run1Keys);
    const atT2b = allState(cat, [{ bucket: 'lake' }], { time: T2 + 2 });
    expect(keysOf(atT2b)).toEqual(run1Keys.filter((k) => k !== 'c'));
    expect(atT2b.find((i) => i.key === 'b')!.etag).toBe('b-second');
    expect(keysOf(allState(cat, [{ bucket: 'lake' }], { time: T2 + 3 }))).toEqual(run2Keys);
  });

  it('scopes: an exact key matches only itself; a prefix only its keys; buckets stay apart', () => {
    const cut = { runSeq: r2 };
    expect(keysOf(allState(cat, [{ bucket: 'lake', key: 'a' }], cut))).toEqual(['a']);
    expect(keysOf(allState(cat, [{ bucket: 'lake', key: 'dir' }], cut))).toEqual([]);
    expect(keysOf(allState(cat, [{ bucket: 'lake', key: 'c' }], cut))).toEqual([]); // deleted
    expect(keysOf(allState(cat, [{ bucket: 'lake', key: 'c' }], { runSeq: r1 }))).toEqual(['c']);
    expect(keysOf(allState(cat, [{ bucket: 'lake', prefix: 'dir/' }], cut))).toEqual(['dir/1', 'dir/2']);
    expect(keysOf(allState(cat, [{ bucket: 'lake', prefix: 'a' }], cut))).toEqual(['a', 'a/x', 'ab']);
    expect(keysOf(allState(cat, [{ bucket: 'lake', prefix: 'a/' }], cut))).toEqual(['a/x']);
    expect(keysOf(allState(cat, [{ bucket: 'lake', prefix: 'zzz' }], cut))).toEqual([]);
    // Several scopes: a union without duplicates.
    expect(
      keysOf(allState(cat, [{ bucket: 'lake', key: 'a' }, { bucket: 'lake', prefix: 'a' }, { bucket: 'other', prefix: '' }], cut)),
    ).toEqual(['a', 'a', 'a/x', 'ab']);
    const mixed = allState(cat, [{ bucket: 'lake', key: 'a' }, { bucket: 'other' }], cut);
    expect(mixed.map((i) => `${i.bucket}:${i.key}`).sort()).toEqual(['lake:a', 'other:a']);
    expect(allState(cat, [{ bucket: 'nobucket' }], cut)).toEqual([]);
  });

  it('returns metadata and every blob of a multi-blob version in content order', () => {
    const items = allState(cat, [{ bucket: 'lake' }], { runSeq: r2 });
    const multi = items.find((i) => i.key === 'multi')!;
    expect(multi.blobs.map((b) => b.hash.toString('hex'))).toEqual([hex('m2'), hex('m3'), hex('m1')]);
    expect(multi.blobs.map((b) => [b.pack, b.offset, b.length])).toEqual([
      ['pack-A', 60, 40],
      ['pack-B', 0, 11],
      ['pack-A', 30, 30],
    ]);
    expect(multi.blobs.map((b) => b.rawLength)).toEqual([80, 22, 60]);
    expect(multi.blobs.map((b) => b.compressed)).toEqual([true, false, false]); // flags i % 2 in pack()
    expect(items.find((i) => i.key === 'empty')!.blobs).toEqual([]);
    expect(items.find((i) => i.key === 'a')!.meta).toEqual({ contentType: 'text/plain', metadata: { k: 'v' } });
    expect(items.find((i) => i.key === 'ab')!.meta).toEqual({});
  });

  it('orders single-blob items by pack, then offset, and multi-blob items last; pages agree', () => {
    const items = allState(cat, [{ bucket: 'lake' }], { runSeq: r2 });
    const single = items.filter((i) => i.blobs.length === 1);
    const multiIndex = items.findIndex((i) => i.blobs.length > 1);
    expect(multiIndex).toBe(items.length - 1);
    // Pack rows are numbered in insertion order: A, B, C.
    const packRank = { 'pack-A': 0, 'pack-B': 1, 'pack-C': 2 } as Record<string, number>;
    const positions = single.map((i) => [packRank[i.blobs[0]!.pack]!, i.blobs[0]!.offset] as const);
    const sorted = [...positions].sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    expect(positions).toEqual(sorted);
    expect(single.map((i) => i.key)).toEqual(['a', 'dir/1', 'ab', 'a/x', 'dir/2', 'copy-of-c', 'b', 'd']);
    // Small pages see the same sequence.
    expect(allState(cat, [{ bucket: 'lake' }], { runSeq: r2 }, 3).map((i) => i.key)).toEqual(items.map((i) => i.key));
  });

  it('versionsOfRun returns a run\'s records as inserted, with blob ids in order, page by page', () => {
    const page1 = cat.versionsOfRun(r1, 0, 4);
    const rest = cat.versionsOfRun(r1, page1.at(-1)!.row, 100);
    const all = [...page1, ...rest];
    expect(page1).toHaveLength(4);
    expect(all).toHaveLength(11);
    const multi = all.find((v) => v.key === 'multi')!;
    expect(multi.blobs).toEqual([hex('m2'), hex('m3'), hex('m1')]);
    const a = all.find((v) => v.key === 'a' && v.bucket === 'lake')!;
    const { row, ...record } = a;
    expect(row).toBeGreaterThan(0);
    expect(record).toEqual(version('lake', 'a', { validFrom: T1 + 2, blobs: [hex('a')], meta: { contentType: 'text/plain', metadata: { k: 'v' } } }));
    expect(all.find((v) => v.key === 'empty')!.blobs).toEqual([]);
    const run2 = cat.versionsOfRun(r2, 0, 100);
    expect(run2.map((v) => [v.key, v.deleteMarker])).toEqual([
      ['b', false],
      ['c', true],
      ['d', false],
    ]);
    expect(cat.versionsOfRun(r2, run2.at(-1)!.row, 100)).toEqual([]);
  });

  it('failuresOfRun returns that run\'s failures in order', () => {
    expect(cat.failuresOfRun(r1)).toEqual([
      { bucket: 'lake', key: 'broken', versionId: null, code: 'AccessDenied', message: 'denied' },
      { bucket: 'lake', key: 'also-broken', versionId: 'v9', code: 'Other', message: 'truncated' },
    ]);
    expect(cat.failuresOfRun(r2).map((f) => f.key)).toEqual(['later']);
    expect(cat.failuresOfRun(999)).toEqual([]);
  });

  it('versionsUsingBlobs names every version that needs a blob; the catalog has no dangling references', () => {
    expect(versionsUsingBlobs(cat, [hash('shared')])).toEqual([
      { bucket: 'lake', key: 'copy-of-c', versionId: null, run: '20261123T100000Z-111111' },
      { bucket: 'other', key: 'a', versionId: null, run: '20261123T100000Z-111111' },
    ]);
    expect(versionsUsingBlobs(cat, [hash('m1'), hash('b2'), hash('unknown')]).map((v) => [v.key, v.run])).toEqual([
      ['b', '20261123T110000Z-222222'],
      ['multi', '20261123T100000Z-111111'],
    ]);
    expect(versionsUsingBlobs(cat, [hash('unknown')])).toEqual([]);
    expect(versionsUsingBlobs(cat, [])).toEqual([]);
    expect(danglingBlobReferences(cat)).toBe(0);
  });
});

describe('Catalog: runs', () => {
  it('findRun by id, unique prefix and sequence; latestRun by status and group', () => {
    const cat = memCatalog();
    const seqs = [
      cat.beginRun({ id: '20261123T100000Z-aaaaaa', group: 'finance', started: 1, host: 'h1' }),
      cat.beginRun({ id: '20261123T110000Z-bbbbbb', group: 'finance', started: 2, host: 'h1' }),
      cat.beginRun({ id: '20261124T100000Z-cccccc', group: 'ops', started: 3, host: 'h2' }),
      cat.beginRun({ id: '20261125T100000Z-dddddd', group: 'finance', started: 4, host: 'h1' }),
    ];
    cat.finishRun(seqs[0]!, 'complete', 10, counters(1));
    cat.finishRun(seqs[1]!, 'partial', 20, counters(2));
    cat.finishRun(seqs[2]!, 'complete', 30, counters(3));
    cat.finishRun(seqs[3]!, 'failed', 40, counters(4));

    const full = cat.findRun('20261123T110000Z-bbbbbb')!;
    expect(full).toMatchObject({ seq: seqs[1], group: 'finance', status: 'partial', started: 2, finished: 20, host: 'h1' });
    expect(full.counters?.objectsSeen).toBe(2);
    expect(cat.findRun('20261124')?.id).toBe('20261124T100000Z-cccccc'); // unique prefix
    expect(cat.findRun('20261123')).toBeUndefined(); // ambiguous
    expect(cat.findRun('20261123T1_')).toBeUndefined(); // LIKE wildcards are literal
    expect(cat.findRun('2026112%')).toBeUndefined();
    expect(cat.findRun(String(seqs[2]))?.id).toBe('20261124T100000Z-cccccc');
    expect(cat.findRun('nope')).toBeUndefined();
    expect(cat.findRun('999')).toBeUndefined();

    expect(cat.latestRun({ statuses: ['complete'] })?.id).toBe('20261124T100000Z-cccccc');
    expect(cat.latestRun({ statuses: ['complete'], group: 'finance' })?.id).toBe('20261123T100000Z-aaaaaa');
    expect(cat.latestRun({ statuses: ['complete', 'partial'], group: 'finance' })?.id).toBe('20261123T110000Z-bbbbbb');
    expect(cat.latestRun({ statuses: ['failed', 'complete'] })?.id).toBe('20261125T100000Z-dddddd');
    expect(cat.latestRun({ statuses: ['interrupted'] })).toBeUndefined();
    expect(cat.latestRun({ statuses: ['complete'], group: 'none' })).toBeUndefined();
    expect(cat.listRuns({ group: 'finance' }).map((r) => r.seq)).toEqual([seqs[0], seqs[1], seqs[3]]);
  });

  it('a running run has no finish time and no counters', () => {
    const cat = memCatalog();
    const seq = cat.beginRun({ id: 'r', group: 'g', started: 5, host: 'h' });
    expect(cat.findRun('r')).toEqual({ seq, id: 'r', group: 'g', started: 5, finished: null, status: 'running', host: 'h', counters: null });
    expect(cat.latestRun({ statuses: ['complete', 'partial'] })).toBeUndefined();
  });
});

describe('Catalog: blobs and index files', () => {
  it('unindexedBlobs lists blobs no index file names yet; markIndexed removes them', () => {
    const cat = memCatalog();
    const r = cat.beginRun({ id: 'r', group: 'g', started: 1, host: 'h' });
    cat.insertPack({ ...pack('p-indexed', ['i1', 'i2']), size: 500 }, r, 'index-0');
    cat.insertPack({ ...pack('p1', ['u1', 'u2', 'u3']), size: 1000 }, r);
    cat.insertPack({ ...pack('p2', ['u4']), size: 2000 }, null);
    expect(cat.hasBlob(hash('u1'))).toBe(true);
    expect(cat.hasBlob(hash('nope'))).toBe(false);

    const all = [...cat.unindexedBlobs(100)];
    expect(all.map((b) => b.hash.toString('hex'))).toEqual(['u1', 'u2', 'u3', 'u4'].map(hex));
    expect(all[1]).toMatchObject({ pack: 'p1', packSize: 1000, offset: 100, length: 101, rawLength: 202, flags: 1 });
    expect([...cat.unindexedBlobs(2)].map((b) => b.hash.toString('hex'))).toEqual(['u1', 'u2'].map(hex));

    cat.markIndexed('index-1', all.slice(0, 3).map((b) => b.row));
    expect([...cat.unindexedBlobs(100)].map((b) => b.hash.toString('hex'))).toEqual([hex('u4')]);
    expect([...cat.knownIndexFiles()].sort()).toEqual(['index-1']);
    cat.addIndexFile('index-0');
    expect([...cat.knownIndexFiles()].sort()).toEqual(['index-0', 'index-1']);
    cat.markIndexed('index-2', [all[3]!.row]);
    expect([...cat.unindexedBlobs(100)]).toEqual([]);

    expect(blobsOfPack(cat, 'p1').map((b) => [b.offset, b.length])).toEqual([
      [0, 100],
      [100, 101],
      [201, 102],
    ]);
    expect(cat.packs().map((p) => p.name)).toEqual(['p-indexed', 'p1', 'p2']);
  });

  it('insertVersions refuses a version whose blob is not in any pack, and a transaction leaves no trace of it', () => {
    const cat = memCatalog();
    const r = cat.beginRun({ id: 'r', group: 'g', started: 1, host: 'h' });
    cat.insertPack(pack('p', ['known']), r);
    expect(() =>
      cat.transaction(() =>
        cat.insertVersions(r, [
          version('lake', 'ok', { validFrom: 1, blobs: [hex('known')] }),
          version('lake', 'bad', { validFrom: 2, blobs: [hex('known'), hex('missing')] }),
        ]),
      ),
    ).toThrow(new RegExp(`lake/bad.*${hex('missing')}`));
    expect(cat.stats()).toMatchObject({ versions: 0 });
    expect(latestPage(cat, 'lake', '', true, null, 10)).toEqual([]);
    expect(danglingBlobReferences(cat)).toBe(0);
    expect(referencedPacks(cat)).toEqual([]);
    cat.insertVersions(r, [version('lake', 'ok', { validFrom: 1, blobs: [hex('known')] })]);
    expect(referencedPacks(cat).map((p) => p.name)).toEqual(['p']);
  });
  it('after a rolled-back transaction, buckets and metadata created in it are not reused from a cache', () => {
    const cat = memCatalog();
    const r = cat.beginRun({ id: 'r', group: 'g', started: 1, host: 'h' });
    cat.insertPack(pack('p', ['known']), r);
    const meta = { contentType: 'text/csv' };
    expect(() =>
      cat.transaction(() => {
        cat.insertVersions(r, [version('lake', 'first', { validFrom: 1, meta, blobs: [hex('known')] })]);
        throw new Error('abort the batch');
      }),
    ).toThrow('abort the batch');
    // Another bucket is created first now (and may get the row id the rolled-back one had).
    cat.transaction(() => cat.insertVersions(r, [version('other', 'o', { validFrom: 2, meta: { contentType: 'x/y' } })]));
    cat.transaction(() => cat.insertVersions(r, [version('lake', 'first', { validFrom: 3, meta, blobs: [hex('known')] })]));
    expect(latestPage(cat, 'lake', '', true, null, 10).map((v) => v.key)).toEqual(['first']);
    expect(latestPage(cat, 'other', '', true, null, 10).map((v) => v.key)).toEqual(['o']);
    const items = allState(cat, [{ bucket: 'lake' }, { bucket: 'other' }], { runSeq: r });
    expect(items.map((i) => [i.bucket, i.key, i.meta])).toEqual(
      expect.arrayContaining([
        ['lake', 'first', meta],
        ['other', 'o', { contentType: 'x/y' }],
      ]),
    );
    expect(items).toHaveLength(2);
  });
});

describe('Catalog: size and insert rate (measured, printed)', () => {
  it('inserts 100,000 single-blob versions in batches of 2,000', { timeout: 300_000 }, () => {
    const { cat, path } = fileCatalog('measure.db');
    const TOTAL = 100_000;
    const BATCH = 2_000;
    const run = cat.beginRun({ id: '20261123T100000Z-000000', group: 'g', started: 1, host: 'h' });
    const meta = { contentType: 'application/octet-stream' };
    let insertMs = 0;
    let inserted = 0;
    for (let b = 0; b < TOTAL / BATCH; b++) {
      // Build inputs outside the timed section.
      const blobs = Array.from({ length: BATCH }, () => randomBytes(32));
      let offset = 0;
      const packRec: PackRecord = {
        name: randomBytes(32).toString('hex'),
        size: 0,
        blobs: blobs.map((hash) => {
          const length = 4096 + 28;
          const e = { hash, offset, length, rawLength: 4096, flags: 1 };
          offset += length;
          return e;
        }),
      };
      packRec.size = offset + 4 + BATCH * 41 + 28;
      const records: VersionRecord[] = blobs.map((h, i) => {
        const n = b * BATCH + i;
        const t = 1_700_000_000_000 + n;
        return {
          bucket: 'raw-events',
          key: `events/table=t${n % 10}/dt=2026-11-${String((n % 28) + 1).padStart(2, '0')}/part-${String(n).padStart(6, '0')}-${randomBytes(8).toString('hex')}.parquet`,
          versionId: randomBytes(24).toString('base64url'),
          deleteMarker: false,
          size: 4096,
          etag: createHash('md5').update(h).digest('hex'),
          lastModified: t,
          validFrom: t,
          storageClass: 'STANDARD',
          meta,
          blobs: [h.toString('hex')],
        };
      });
      const start = performance.now();
      cat.transaction(() => {
        cat.insertPack(packRec, run);
        inserted += cat.insertVersions(run, records);
      });
      insertMs += performance.now() - start;
    }
    expect(inserted).toBe(TOTAL);
    expect(cat.stats()).toMatchObject({ versions: TOTAL, objects: TOTAL, blobs: TOTAL, packs: TOTAL / BATCH });
    expect(danglingBlobReferences(cat)).toBe(0);
    const keyBytes = latestPage(cat, 'raw-events', '', true, null, TOTAL).reduce((n, v) => n + Buffer.byteLength(v.key), 0);
    cat.close(); // checkpoints the WAL into the main file
    expect(existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0).toBe(0);
    const size = statSync(path).size;
    const line = [
      `catalog: ${TOTAL} single-blob versions in batches of ${BATCH}`,
      `file ${(size / 1024 / 1024).toFixed(1)} MiB = ${Math.round(size / TOTAL)} bytes/version (keys average ${Math.round(keyBytes / TOTAL)} bytes)`,
      `insert ${(insertMs / 1000).toFixed(2)} s = ${Math.round(TOTAL / (insertMs / 1000))} versions/s`,
    ].join('; ');
    console.log(line);
  });
});

describe('Catalog migrations', () => {
  it('adds the runs.pid column to a catalog written before it existed', () => {
    const dir = tempDir('catalog-migrate');
    try {
      const path = join(dir.path, 'old.db');
      const old = Catalog.open(path, 'repo-1');
      sqlite(old).exec('ALTER TABLE runs DROP COLUMN pid');
      old.close();
      const cat = Catalog.open(path, 'repo-1');
      const seq = cat.beginRun({ id: 'r1', group: 'g', started: 1, host: 'h', pid: 4242 });
      expect(cat.orphanedRuns('h', () => false).map((r) => r.seq)).toEqual([seq]);
      expect(cat.orphanedRuns('h', (pid) => pid === 4242)).toEqual([]);
      cat.close();
    } finally {
      dir.cleanup();
    }
  });
  // Schemas 1 and 2 → 3: test/unit/catalog-migration.test.ts.
});
