import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Catalog, type PackRecord } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { decodeStorageClass, encodeEtag, encodeStorageClass, etagSql } from '../../src/catalog/codec.js';
import { CatalogQueries } from '../../src/catalog/queries.js';
import { blobHashIs, blobReferencedSql } from '../../src/catalog/schema.js';
import type { VersionRecord } from '../../src/catalog/types.js';
import { selectState, statePage } from '../../src/catalog/restore-selection.js';
import { hasVersion, latestPage } from '../../src/catalog/backup-lookups.js';

const md5 = createHash('md5').update('x').digest('hex');

describe('etag encoding', () => {
  const db = new Database(':memory:');
  const decode = (stored: string | Buffer | null): unknown => db.prepare(`SELECT ${etagSql('x.etag')} FROM (SELECT ? AS etag) x`).pluck().get(stored);

  it.each([
    [md5, 16],
    [`${md5}-1`, 18],
    [`${md5}-10000`, 22],
    [`${md5}-01`, 19],
  ])('stores %s in %i bytes and reads it back', (etag, bytes) => {
    const stored = encodeEtag(etag);
    expect(Buffer.isBuffer(stored) && stored.length).toBe(bytes);
    expect(decode(stored)).toBe(etag);
  });

  it.each(['', 'abc', md5.toUpperCase(), `${md5}0`, md5.slice(1), `${md5}-`, `${md5}-1a`, `"${md5}"`, '4096-1762000000123456789'])('keeps %j as text', (etag) => {
    expect(encodeEtag(etag)).toBe(etag);
    expect(decode(etag)).toBe(etag);
  });

  it('reads NULL as null', () => {
    expect(decode(null)).toBeNull();
  });
});

describe('storage class encoding', () => {
  it('stores known classes as codes and anything else as it is', () => {
    expect(encodeStorageClass('STANDARD')).toBe(1n);
    expect(encodeStorageClass(undefined)).toBeNull();
    for (const name of ['STANDARD', 'GLACIER', 'DEEP_ARCHIVE', 'EXPRESS_ONEZONE', 'MY_TIER', '1', '']) {
      const stored = encodeStorageClass(name);
      expect(decodeStorageClass(typeof stored === 'bigint' ? Number(stored) : stored)).toBe(name);
    }
    expect(() => decodeStorageClass(99)).toThrow(/unknown storage class code 99/);
  });
});

describe('encoded columns in a catalog', () => {
  const hash = (n: string) => createHash('sha256').update(n).digest();
  const pack: PackRecord = { name: 'p', size: 1, blobs: ['a', 'b'].map((n, i) => ({ hash: hash(n), offset: i, length: 1, rawLength: 1, flags: 0 })) };
  const record = (key: string, etag: string, storageClass: string | undefined, lastModified: number): VersionRecord => ({
    bucket: 'b',
    key,
    versionId: null,
    deleteMarker: false,
    size: 1,
    etag,
    lastModified,
    validFrom: 1000,
    ...(storageClass === undefined ? {} : { storageClass }),
    blobs: [hash('a').toString('hex')],
  });

  it('every reader returns what was written, and the columns hold the compact forms', () => {
    const cat = Catalog.open(':memory:', 'r');
    const seq = cat.beginRun({ id: 'r1', group: 'g', started: 1, host: 'h' });
    const records = [record('k1', md5, 'STANDARD', 1000), record('k2', `${md5}-7`, 'GLACIER', 999), record('k3', 'W/"x"', '42', 1000), record('k4', '', undefined, 5)];
    cat.transaction(() => {
      cat.insertPack(pack, seq);
      cat.insertVersions(seq, records);
    });
    expect(cat.versionsOfRun(seq, 0, 10).map(({ row: _row, ...r }) => r)).toEqual(records);
    expect(latestPage(cat, 'b', '', true, null, 10).map((r) => [r.etag, r.lastModified])).toEqual(records.map((r) => [r.etag, r.lastModified]));
    selectState(cat, [{ bucket: 'b' }], { runSeq: seq });
    expect(statePage(cat, 0, 10).items.map((i) => [i.key, i.etag, i.lastModified])).toEqual(records.map((r) => [r.key, r.etag, r.lastModified]));
    const q = new CatalogQueries(cat);
    expect(q.find('**').items.map((f) => [f.etag, f.storageClass, f.lastModified])).toEqual(records.map((r) => [r.etag, r.storageClass ?? null, r.lastModified]));
    expect(q.ls('b', '').items.map((e) => [e.etag, e.storageClass, e.lastModified])).toEqual(records.map((r) => [r.etag, r.storageClass ?? null, r.lastModified]));
    expect(q.versionsOf('b', 'k2').items.map((v) => [v.etag, v.storageClass, v.lastModified])).toEqual([[`${md5}-7`, 'GLACIER', 999]]);
    expect(hasVersion(cat, 'b', { key: 'k2', versionId: null, isDeleteMarker: false, etag: `${md5}-7`, size: 1, lastModified: new Date(999) })).toBe(true);
    expect(
      sqlite(cat)
        .prepare('SELECT typeof(etag), typeof(storage_class), quote(storage_class), last_modified, blob FROM versions ORDER BY id')
        .raw()
        .all(),
    ).toEqual([
      ['blob', 'integer', '1', null, 1],
      ['blob', 'integer', '6', 999, 1],
      ['text', 'text', "'42'", null, 1],
      ['text', 'null', 'NULL', 5, 1],
    ]);
    cat.close();
  });

  it('finds blobs whose ids share the indexed prefix, and keeps one row per id', () => {
    const cat = Catalog.open(':memory:', 'r');
    const twin = Buffer.concat([hash('a').subarray(0, 4), hash('z').subarray(4)]);
    const seq = cat.beginRun({ id: 'r1', group: 'g', started: 1, host: 'h' });
    const p2: PackRecord = { name: 'p2', size: 1, blobs: [{ hash: twin, offset: 7, length: 2, rawLength: 2, flags: 0 }, { ...pack.blobs[0]!, offset: 9 }] };
    cat.transaction(() => {
      cat.insertPack(pack, seq);
      cat.insertPack(p2, seq); // a's second location is not recorded
      cat.insertVersions(seq, [{ ...record('k1', md5, undefined, 1000), blobs: [twin.toString('hex'), hash('a').toString('hex')] }]);
    });
    expect(cat.stats().blobs).toBe(3);
    expect(cat.hasBlob(twin)).toBe(true);
    expect(cat.hasBlob(Buffer.concat([hash('a').subarray(0, 4), hash('y').subarray(4)]))).toBe(false);
    selectState(cat, [{ bucket: 'b' }], { runSeq: seq });
    expect(statePage(cat, 0, 10).items[0]!.blobs.map((b) => [b.hash, b.pack, b.offset])).toEqual([
      [twin, 'p2', 7],
      [hash('a'), 'p', 0],
    ]);
    cat.close();
  });

  it('blob lookups seek the prefix index; reference checks seek versions_by_blob and version_blobs_by_blob', () => {
    const cat = Catalog.open(':memory:', 'r');
    const plan = (sql: string) => (sqlite(cat).prepare(`EXPLAIN QUERY PLAN ${sql}`).all({ hash: Buffer.alloc(32) }) as { detail: string }[]).map((r) => r.detail).join('\n');
    expect(plan(`SELECT id FROM blobs b WHERE ${blobHashIs('b', '@hash')}`)).toMatch(/SEARCH b USING INDEX blobs_by_hash \(<expr>=\?\)/);
    const used = plan(`SELECT id FROM blobs b WHERE b.pack = 1 AND ${blobReferencedSql('b')}`);
    expect(used).toMatch(/SEARCH rv USING COVERING INDEX versions_by_blob \(blob=\?\)/);
    expect(used).toMatch(/SEARCH rvb USING COVERING INDEX version_blobs_by_blob \(blob=\?\)/);
    expect(used).not.toMatch(/SCAN/);
    cat.close();
  });
});
