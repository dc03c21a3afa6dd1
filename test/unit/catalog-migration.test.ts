import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog, type PackRecord, type StateCut } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { groupUsage, repositoryUsage } from '../../src/catalog/cost-usage.js';
import { objectsWithVersions } from '../../src/catalog/forget.js';
import { LockDates } from '../../src/catalog/lock-dates.js';
import { CatalogQueries, allPages, type Page } from '../../src/catalog/queries.js';
import { SCHEMA_VERSION } from '../../src/catalog/schema.js';
import type { RestoreItem, VersionRecord } from '../../src/catalog/types.js';
import { emptyCounters } from '../../src/engine/events.js';
import { tempDir } from '../helpers/fixtures.js';
import { SCHEMA_3, SCHEMA_4, writeOldCatalog, type OldRun } from '../helpers/old-catalog.js';
import { recordRunShard, runSetsOf } from '../../src/catalog/run-sets.js';
import { lastCleanRun, recordRunAnomalies, suspectRuns } from '../../src/catalog/anomalies.js';
import { packUsage, setPruneRecordBlobs, usedBlobsOfPack } from '../../src/catalog/prune-queries.js';
import { selectState, selectedHas, statePage } from '../../src/catalog/restore-selection.js';
import { blobsOfPack, danglingBlobReferences, referencedPacks, versionsUsingBlobs } from '../../src/catalog/verify-queries.js';
import { hasVersion, latestPage } from '../../src/catalog/backup-lookups.js';

const REPO = 'c3'.repeat(16);
const at = (day: number, hour: number, minute = 0): number => Date.UTC(2026, 10, day, hour, minute);
const blobId = (name: string): Buffer => createHash('sha256').update(name).digest();
const md5 = (text: string): string => createHash('md5').update(text).digest('hex');

function pack(name: string, blobNames: string[]): PackRecord {
  return {
    name: createHash('sha256').update(name).digest('hex'),
    size: 1000 + blobNames.length,
    blobs: blobNames.map((b, i) => ({ hash: blobId(b), offset: i * 100, length: 90 + i, rawLength: 200 + i, flags: i % 8 })),
  };
}

function v(bucket: string, key: string, validFrom: number, o: Partial<VersionRecord>): VersionRecord {
  return { bucket, key, versionId: null, deleteMarker: false, size: 10, etag: md5(`${key}@${validFrom}`), lastModified: validFrom, validFrom, blobs: [], ...o };
}
const marker = (bucket: string, key: string, validFrom: number, versionId: string | null): VersionRecord =>
  v(bucket, key, validFrom, { deleteMarker: true, size: 0, etag: '', versionId });
const blobs = (...names: string[]): string[] => names.map((n) => blobId(n).toString('hex'));

/**
 * Every shape a version can take: one blob, several (one of them twice), none; MD5, multipart,
 * upper-case, file-system and empty etags; known, unknown and numeric-looking storage classes;
 * last-modified before valid_from; user metadata; a version id seen twice; blobs deduplicated
 * across runs and packs; indexed and unindexed packs; a pack that prune removed.
 */
const RUNS: OldRun[] = [
  {
    id: '20261102T100000Z-aaaaaa',
    group: 'finance',
    started: at(2, 10),
    status: 'complete',
    finished: at(2, 10, 5),
    counters: { ...emptyCounters(), objectsSeen: 5, objectsNew: 5 },
    packs: [
      { pack: pack('p1', ['b1', 'b2', 'b3', 'b4', 'b5', 'b6']), index: 'idx-1' },
      { pack: pack('p2', ['b7', 'b8']), index: null },
    ],
    records: [
      v('raw', 'a/1.csv', at(2, 5), { versionId: '1-a', storageClass: 'STANDARD', meta: { contentType: 'text/csv' }, blobs: blobs('b1') }),
      v('raw', 'a/2.csv', at(2, 6), { versionId: '2-a', size: 3000, etag: `${md5('2')}-3`, storageClass: 'GLACIER', blobs: blobs('b2', 'b3', 'b4') }),
      v('raw', 'a/b/3.csv', at(2, 7), { versionId: '3-a', etag: md5('3').toUpperCase(), storageClass: 'MY_TIER', lastModified: at(2, 6, 59), blobs: blobs('b5', 'b5') }),
      v('raw', 'empty.txt', at(2, 8), { versionId: 'e-a', size: 0, etag: md5(''), storageClass: '1' }),
      v('raw', 'c.txt', at(2, 9), {
        versionId: 'c-a',
        etag: '4096-1762000000123456789',
        meta: { contentType: 'text/plain', metadata: { owner: 'finance' }, tags: { team: 'a' } },
        blobs: blobs('b7'),
      }),
    ],
    failures: [],
  },
  {
    id: '20261103T100000Z-bbbbbb',
    group: 'finance',
    started: at(3, 10),
    status: 'partial',
    finished: at(3, 10, 5),
    counters: { ...emptyCounters(), objectsSeen: 5, objectsChanged: 1, objectsDeleted: 1, objectsFailed: 2 },
    packs: [{ pack: pack('p3', ['b9', 'b10', 'b1']), index: 'idx-2' }],
    records: [
      v('raw', 'a/1.csv', at(2, 5), { versionId: '1-a', blobs: blobs('b1') }), // already catalogued: skipped
      v('raw', 'a/1.csv', at(3, 5), { versionId: '1-b', etag: `${md5('1b')}-10000`, lastModified: at(3, 5) - 1, storageClass: 'STANDARD', blobs: blobs('b9') }),
      marker('raw', 'a/2.csv', at(3, 9), '2-dm'),
      v('raw', 'a/b/4.csv', at(3, 6), { versionId: '4-a', storageClass: 'STANDARD_IA', blobs: blobs('b1') }),
    ],
    failures: [
      { bucket: 'raw', key: 'a/locked.csv', versionId: 'x1', code: 'AccessDenied', message: 'Access Denied' },
      { bucket: 'raw', key: 'a/gone.csv', versionId: null, code: 'NotFound', message: 'gone' },
    ],
  },
  {
    id: '20261104T180000Z-cccccc',
    group: 'logs',
    started: at(4, 18),
    status: 'complete',
    finished: at(4, 18, 5),
    counters: { ...emptyCounters(), objectsSeen: 3, objectsNew: 3 },
    packs: [{ pack: pack('p-gone', ['bg']), index: 'idx-3' }],
    records: [
      v('logs', 'x/y.log', at(4, 13), { blobs: blobs('bg') }),
      v('logs', 'z.log', at(4, 14), { etag: 'abc', size: 2000, blobs: blobs('b10', 'b9') }),
      v('logs', 'a/1.csv', at(4, 12), { etag: `${md5('l1')}-1`, blobs: blobs('b6') }),
    ],
    failures: [],
  },
  {
    id: '20261110T100000Z-dddddd',
    group: 'logs',
    started: at(10, 10),
    status: 'interrupted',
    finished: at(10, 10, 5),
    counters: { ...emptyCounters(), objectsSeen: 1 },
    packs: [],
    records: [marker('logs', 'x/y.log', at(10, 10), null)],
    failures: [],
  },
];

/** What both catalogs get after the runs: a pack pruned away under a catalogued version, and forget's tables. */
const AFTERWARDS = `
  DELETE FROM blobs WHERE pack = (SELECT id FROM packs WHERE name = '${pack('p-gone', []).name}');
  DELETE FROM packs WHERE name = '${pack('p-gone', []).name}';
  INSERT INTO forgotten_runs (id, forget) VALUES ('20261101T000000Z-ffffff', 'forget-1');
  INSERT INTO dropped_versions VALUES (1, 'old-version');
  INSERT INTO forgets VALUES ('forget-1', ${at(5, 0)});
  INSERT INTO pending_deletions VALUES ('runs/20261101T000000Z-ffffff', ${at(30, 0)});
`;

/** The same runs written by this lakeguard. */
function freshCatalog(path: string): Catalog {
  const cat = Catalog.open(path, REPO);
  for (const run of RUNS) {
    const seq = cat.beginRun({ id: run.id, group: run.group, started: run.started, host: 'backup-1' });
    cat.transaction(() => {
      for (const p of run.packs) {
        cat.insertPack(p.pack, seq, p.index);
        if (p.index !== null) cat.addIndexFile(p.index);
      }
      cat.insertVersions(seq, run.records);
      cat.insertFailures(seq, run.failures);
    });
    cat.finishRun(seq, run.status, run.finished, run.counters);
  }
  sqlite(cat).exec(AFTERWARDS);
  return cat;
}

function oldCatalog(path: string, schema: 1 | 2): void {
  const db = writeOldCatalog(path, REPO, RUNS, schema);
  db.exec(AFTERWARDS);
  db.close();
}

/** Everything the catalog answers, through every module that reads it. */
function answers(cat: Catalog): Record<string, unknown> {
  const q = new CatalogQueries(cat);
  const runs = cat.listRuns();
  const cuts: StateCut[] = [...runs.map((r) => ({ runSeq: r.seq })), { time: at(2, 7) }, { time: at(3, 12) }, { time: at(20, 0) }];
  const keys = [...['a/1.csv', 'a/2.csv', 'a/b/3.csv', 'a/b/4.csv', 'empty.txt', 'c.txt'].map((k) => ['raw', k]), ...['x/y.log', 'z.log', 'a/1.csv'].map((k) => ['logs', k])];
  const state = (): RestoreItem[] => {
    const items: RestoreItem[] = [];
    for (let after = 0; ; ) {
      const page = statePage(cat, after, 2);
      if (page.items.length === 0) return items;
      items.push(...page.items);
      after = page.rowid;
    }
  };
  const pages = <T>(fetch: (after: any) => Page<T, unknown>): T[] => [...allPages(fetch(null), (c) => fetch(c))].flat();
  const packNames = cat.packs().map((p) => p.name);
  const out: Record<string, unknown> = {
    stats: cat.stats(),
    runs,
    records: runs.map((r) => cat.versionsOfRun(r.seq, 0, 1000)),
    recordsPaged: runs.map((r) => [cat.versionsOfRun(r.seq, 0, 1), cat.versionsOfRun(r.seq, 2, 2)]),
    failures: runs.map((r) => cat.failuresOfRun(r.seq)),
    latest: ['raw', 'logs'].map((b) => [latestPage(cat, b, '', true, null, 100), latestPage(cat, b, 'a/', false, 'a0', 1)]),
    hasBlob: ['b1', 'b5', 'b7', 'b8', 'b10', 'bg', 'nope'].map((n) => cat.hasBlob(blobId(n))),
    hasVersion: [
      hasVersion(cat, 'raw', { key: 'a/1.csv', versionId: '1-b', isDeleteMarker: false, etag: '', size: 0, lastModified: new Date(0) }),
      hasVersion(cat, 'logs', { key: 'z.log', versionId: null, isDeleteMarker: false, etag: 'abc', size: 2000, lastModified: new Date(at(4, 14)) }),
      hasVersion(cat, 'logs', { key: 'a/1.csv', versionId: null, isDeleteMarker: false, etag: `${md5('l1')}-1`, size: 10, lastModified: new Date(at(4, 12)) }),
      hasVersion(cat, 'logs', { key: 'x/y.log', versionId: null, isDeleteMarker: true, etag: '', size: 0, lastModified: new Date(0) }),
    ],
    states: cuts.map((cut) => [selectState(cat, [{ bucket: 'raw' }, { bucket: 'logs', prefix: 'a/' }, { bucket: 'logs', key: 'z.log' }], cut), state()]),
    exact: [selectState(cat, [{ bucket: 'raw', key: 'a/2.csv', versionId: '2-a' }], { runSeq: 1 }), state(), selectedHas(cat, 'raw', 'a/2.csv')],
    dangling: danglingBlobReferences(cat),
    packs: cat.packs(),
    referencedPacks: referencedPacks(cat),
    blobsOfPack: packNames.map((p) => blobsOfPack(cat, p)),
    unindexed: [...cat.unindexedBlobs(100)].map(({ row: _row, ...b }) => b),
    indexFiles: [...cat.knownIndexFiles()].sort(),
    using: versionsUsingBlobs(cat, [blobId('b1'), blobId('b5'), blobId('b9'), blobId('nope')]),
    bucketsOfGroup: ['finance', 'logs', 'none'].map((g) => cat.bucketsOfGroup(g)),
    notLocated: setPruneRecordBlobs(cat, [blobId('b8'), blobId('nope')]),
    packUsage: packUsage(cat),
    usedBlobsOfPack: packNames.map((p) => usedBlobsOfPack(cat, p)),
    versionsOf: keys.map(([b, k]) => pages((after) => q.versionsOf(b!, k!, { limit: 2, after }))),
    find: [
      pages((after) => q.find('**', {}, { limit: 2, after })),
      pages((after) => q.find('a/**', { bucket: 'raw', at: { runSeq: 1 } }, { after })),
      pages((after) => q.find('**', { deleted: true, at: { time: at(20, 0) } }, { after })),
      pages((after) => q.find('*.csv', { largerThan: 100 }, { after })),
      pages((after) => q.find('**', { since: { runSeq: 1 } }, { after })),
    ],
    ls: cuts.flatMap((cut) => ['', 'a/', 'a/b/'].flatMap((p) => ['raw', 'logs'].map((b) => pages((after) => q.ls(b, p, cut, { limit: 1, after }))))),
    lsNow: pages((after) => q.ls('raw', '', undefined, { after })),
    diff: cuts.slice(1).map((to, i) => [q.diffSummary(cuts[i]!, to), pages((after) => q.diffDetails(cuts[i]!, to, {}, { limit: 2, after }))]),
    calendar: q.calendar('2026-11'),
    runShow: runs.map((r) => q.runShow(r.id)),
    cost: [groupUsage(cat, 'finance', 128 * 1024), groupUsage(cat, 'logs', 128 * 1024), repositoryUsage(cat, 128 * 1024)],
    livePacks: new LockDates(cat).livePacksAfter('', 100),
    forgetPlan: [...objectsWithVersions(cat, 2)].flat(),
  };
  return out;
}

/** Table and index definitions, as sqlite_schema has them (without the indexes queries add on demand). */
function schemaOf(db: Database.Database): unknown[] {
  return db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT IN ('objects_by_key', 'runs_by_started', 'lock_until') ORDER BY name").all();
}

describe('catalog schema 3 migration', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir('catalog-migration');
  });
  afterEach(() => dir.cleanup());

  it.each([2, 1] as const)('opens a schema %i catalog as schema 3 with every row and every answer unchanged', (schema) => {
    const fresh = freshCatalog(join(dir.path, 'fresh.db'));
    const path = join(dir.path, `schema-${schema}.db`);
    oldCatalog(path, schema);
    const migrated = Catalog.open(path, REPO);
    try {
      const db = sqlite(migrated);
      expect(db.prepare("SELECT value FROM catalog_info WHERE name = 'schema'").pluck().get()).toBe(String(SCHEMA_VERSION));
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(db.pragma('foreign_key_check')).toEqual([]);
      expect(schemaOf(db)).toEqual(schemaOf(sqlite(fresh)));
      expect(answers(migrated)).toEqual(answers(fresh));

      // The records read back are exactly those written: the repeat of version 1-a was skipped, and
      // x/y.log's blob went with its pack.
      const written = RUNS.map((r) =>
        r.records.filter((_, i) => !(r.id.endsWith('bbbbbb') && i === 0)).map((rec) => (rec.key === 'x/y.log' && !rec.deleteMarker ? { ...rec, blobs: [] } : rec)),
      );
      const seqs = migrated.listRuns().map((r) => r.seq);
      expect(seqs.map((seq) => migrated.versionsOfRun(seq, 0, 100).map(({ row: _row, ...rec }) => rec))).toEqual(written);

      // Stored compactly: MD5 etags as 16 bytes (+ `-N`), STANDARD as code 1, equal times as NULL,
      // a one-blob version's blob inline, version_blobs only for versions of two or more blobs.
      const row = (key: string, versionId: string | null) =>
        db
          .prepare(
            `SELECT typeof(v.etag) AS etagType, length(v.etag) AS etagLength, typeof(v.storage_class) AS classType, v.last_modified AS lastModified,
                    v.blob IS NOT NULL AS inline, (SELECT count(*) FROM version_blobs vb WHERE vb.version = v.id) AS listed
             FROM versions v JOIN objects o ON o.id = v.object WHERE o.key = ? AND v.version_id IS ?`,
          )
          .get(key, versionId);
      expect(row('a/1.csv', '1-a')).toEqual({ etagType: 'blob', etagLength: 16, classType: 'integer', lastModified: null, inline: 1, listed: 0 });
      expect(row('a/1.csv', '1-b')).toEqual({ etagType: 'blob', etagLength: 22, classType: 'integer', lastModified: at(3, 5) - 1, inline: 1, listed: 0 });
      expect(row('a/2.csv', '2-a')).toMatchObject({ etagType: 'blob', etagLength: 18, classType: 'integer', inline: 0, listed: 3 });
      expect(row('a/b/3.csv', '3-a')).toMatchObject({ etagType: 'text', classType: 'text', inline: 0, listed: 2 });
      expect(row('empty.txt', 'e-a')).toMatchObject({ etagType: 'blob', classType: 'text', inline: 0, listed: 0 });
      expect(row('a/2.csv', '2-dm')).toMatchObject({ etagType: 'text', classType: 'null', inline: 0, listed: 0 });
      expect(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_v2'").pluck().get()).toBe(0);
    } finally {
      migrated.close();
      fresh.close();
    }
    // Opening again finds nothing to migrate.
    const again = Catalog.open(path, REPO);
    expect(again.stats()).toMatchObject({ versions: 12, objects: 9, blobs: 10, runs: 4 });
    again.close();
  });

  it('a migration that fails leaves the schema 2 catalog as it was', () => {
    const path = join(dir.path, 'old.db');
    oldCatalog(path, 2);
    const dump = (db: Database.Database) =>
      ['versions', 'version_blobs', 'blobs', 'objects', 'catalog_info'].map((t) => db.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all());
    let db = new Database(path);
    const before = dump(db);
    const schemaBefore = schemaOf(db);
    db.exec('CREATE TABLE versions_v2 (x)'); // the rename inside the migration fails on it
    db.close();
    expect(() => Catalog.open(path, REPO)).toThrow(/cannot open catalog .*versions_v2/);
    db = new Database(path);
    db.exec('DROP TABLE versions_v2');
    expect(dump(db)).toEqual(before);
    expect(schemaOf(db)).toEqual(schemaBefore);
    db.close();
    const cat = Catalog.open(path, REPO);
    expect(cat.stats()).toMatchObject({ versions: 12, objects: 9, blobs: 10, runs: 4 });
    cat.close();
  });

  it('refuses a catalog of a newer schema, naming it', () => {
    const path = join(dir.path, 'new.db');
    const cat = freshCatalog(path);
    sqlite(cat).exec(`UPDATE catalog_info SET value = '${SCHEMA_VERSION + 1}' WHERE name = 'schema'`);
    cat.close();
    expect(() => Catalog.open(path, REPO)).toThrow(new RegExp(`catalog schema ${SCHEMA_VERSION + 1} was written by a newer lakeguard`));
  });
});

describe('catalog schema 4 migration', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir('catalog-migration-4');
  });
  afterEach(() => dir.cleanup());

  it('upgrades a schema 3 catalog file in place: anomaly tables added, every row kept, runs not suspect', () => {
    const path = join(dir.path, 'schema-3.db');
    const old = new Database(path);
    old.exec(SCHEMA_3);
    old.exec(`
      INSERT INTO catalog_info (name, value) VALUES ('repository', '${REPO}'), ('schema', '3');
      INSERT INTO runs (seq, id, grp, started, finished, status, host, counters) VALUES (1, '20261102T100000Z-aaaaaa', 'g', 1, 2, 'complete', 'h', '{}');
      INSERT INTO buckets (id, name) VALUES (1, 'raw');
      INSERT INTO objects (id, bucket, key, latest) VALUES (1, 1, 'a.csv', 1);
      INSERT INTO versions (id, object, version_id, delete_marker, size, etag, last_modified, valid_from, storage_class, meta, run, blob)
        VALUES (1, 1, NULL, 0, 10, 'x', NULL, 1, 1, NULL, 1, NULL);
    `);
    old.close();

    const migrated = Catalog.open(path, REPO);
    const fresh = Catalog.open(join(dir.path, 'fresh.db'), REPO);
    try {
      const db = sqlite(migrated);
      expect(db.prepare("SELECT value FROM catalog_info WHERE name = 'schema'").pluck().get()).toBe(String(SCHEMA_VERSION));
      expect(schemaOf(db)).toEqual(schemaOf(sqlite(fresh)));
      expect(migrated.stats()).toMatchObject({ runs: 1, objects: 1, versions: 1 });
      expect(migrated.versionsOfRun(1, 0, 10)).toEqual([expect.objectContaining({ key: 'a.csv', etag: 'x', storageClass: 'STANDARD' })]);
      expect(suspectRuns(migrated).size).toBe(0);
      expect(lastCleanRun(migrated, ['g']).lastClean?.id).toBe('20261102T100000Z-aaaaaa');
      // The new tables work: a verdict recorded now, and dropped with its run's versions.
      recordRunAnomalies(migrated, 1, { suspect: true, findings: [], partitions: [], flaggedObjects: 0 });
      expect(suspectRuns(migrated)).toEqual(new Map([['20261102T100000Z-aaaaaa', { acknowledged: false }]]));
    } finally {
      migrated.close();
      fresh.close();
    }
  });
});

describe('catalog schema 5 migration', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir('catalog-migration-5');
  });
  afterEach(() => dir.cleanup());

  it('upgrades a schema 4 catalog file in place: run_shards added, every row kept, every run an ordinary run', () => {
    const path = join(dir.path, 'schema-4.db');
    const old = new Database(path);
    old.exec(SCHEMA_4);
    old.exec(`
      INSERT INTO catalog_info (name, value) VALUES ('repository', '${REPO}'), ('schema', '4');
      INSERT INTO runs (seq, id, grp, started, finished, status, host, counters) VALUES (1, '20261102T100000Z-aaaaaa', 'g', 1, 2, 'complete', 'h', '{}');
      INSERT INTO buckets (id, name) VALUES (1, 'raw');
      INSERT INTO objects (id, bucket, key, latest) VALUES (1, 1, 'a.csv', 1);
      INSERT INTO versions (id, object, version_id, delete_marker, size, etag, last_modified, valid_from, storage_class, meta, run, blob)
        VALUES (1, 1, NULL, 0, 10, 'x', NULL, 1, 1, NULL, 1, NULL);
    `);
    old.close();

    const migrated = Catalog.open(path, REPO);
    const fresh = Catalog.open(join(dir.path, 'fresh.db'), REPO);
    try {
      const db = sqlite(migrated);
      expect(db.prepare("SELECT value FROM catalog_info WHERE name = 'schema'").pluck().get()).toBe(String(SCHEMA_VERSION));
      expect(schemaOf(db)).toEqual(schemaOf(sqlite(fresh)));
      expect(migrated.stats()).toMatchObject({ runs: 1, objects: 1, versions: 1 });
      expect(migrated.listRuns()).toEqual([expect.not.objectContaining({ shard: expect.anything() })]);
      expect(runSetsOf(migrated)).toEqual([]);
      // The new table works, and its row goes with its run.
      const shard = { set: '20261102T110000Z-bbbbbb', name: 'nightly', index: 0, of: 2, range: { upTo: ['raw', 'm'] as [string, string] } };
      recordRunShard(migrated, 1, shard);
      expect(migrated.findRun('1')?.shard).toEqual(shard);
      expect(runSetsOf(migrated)).toEqual([expect.objectContaining({ id: shard.set, status: 'running', missing: [1], complete: 1 })]);
      db.exec('DELETE FROM versions; DELETE FROM runs');
      expect(db.prepare('SELECT count(*) FROM run_shards').pluck().get()).toBe(0);
    } finally {
      migrated.close();
      fresh.close();
    }
  });
});
