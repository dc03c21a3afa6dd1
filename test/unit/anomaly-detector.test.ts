// The detector inside real backup runs (MemStore buckets, FsStore repository): what it counts per
// partition, the signals it puts on version records, and the verdict of an ordinary day and of
// the incident on a small Parquet lake.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CatalogAnomalyHistory } from '../../src/catalog/anomalies.js';
import { noHistory, type PartitionStats, type RunAnomalies } from '../../src/catalog/anomaly-types.js';
import type { Catalog } from '../../src/catalog/catalog.js';
import type { VersionRecord } from '../../src/catalog/types.js';
import { AnomalyDetector, partitionOf } from '../../src/engine/anomaly-detector.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import type { AnomalyLevel } from '../../src/policy/anomaly.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { initRepo, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';

/** A real Parquet file; `seed` varies its rows. */
function parquet(seed: number, rows = 200): Buffer {
  const ids = Array.from({ length: rows }, (_, i) => seed * 100_000 + i);
  return Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'id', data: ids, type: 'INT32' }, { name: 'city', data: ids.map((i) => `city-${i % 13}`), type: 'STRING' }] }));
}

const DAYS = ['2026-12-01', '2026-12-02'];
const FILES_PER_DAY = 30;
const key = (day: string, i: number) => `events/date=${day}/part-${String(i).padStart(4, '0')}.parquet`;

describe('anomaly detector in backup runs', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  let clock: number;
  let records: VersionRecord[];
  let detectors: (AnomalyDetector | null)[];

  beforeEach(async () => {
    dir = tempDir('anomaly');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    catalog = openCatalog(dir.path, repo);
    clock = Date.parse('2026-12-01T10:00:00Z');
    records = [];
    detectors = [];
    const insert = catalog.insertVersions.bind(catalog);
    vi.spyOn(catalog, 'insertVersions').mockImplementation((run, recs) => {
      records.push(...recs);
      return insert(run, recs);
    });
    const create = AnomalyDetector.create.bind(AnomalyDetector);
    vi.spyOn(AnomalyDetector, 'create').mockImplementation((...args) => {
      const detector = create(...args);
      detectors.push(detector);
      return detector;
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    catalog.close();
    dir.cleanup();
  });

  const newBucket = (versioning: boolean) => new MemStore({ versioning, now: () => new Date(clock), name: 'lake' });

  /** Runs a backup of `bucket` under `prefixes`; returns its verdict (history: none) and the records it wrote. */
  async function backup(bucket: MemStore, opts: { prefixes?: string[]; anomaly?: AnomalyLevel } = {}): Promise<{ anomalies: RunAnomalies | undefined; records: VersionRecord[] }> {
    clock += 3_600_000;
    records = [];
    const group: Group = { name: 'lake', sources: [], ...(opts.anomaly === undefined ? {} : { anomaly: opts.anomaly }) };
    const source: OpenedSource = { bucket: 'lake', objectStore: bucket, prefixes: opts.prefixes ?? ['events/'], isExcluded: () => false };
    const before = detectors.length;
    await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source] });
    expect(detectors.length).toBe(before + 1);
    return { anomalies: detectors.at(-1)?.finish(noHistory), records };
  }

  async function seedLake(bucket: MemStore): Promise<void> {
    for (const day of DAYS) for (let i = 0; i < FILES_PER_DAY; i++) await bucket.put(key(day, i), parquet(i + day.length));
  }
  const stateKey = 'events/state.bin';

  const byPartition = (a: RunAnomalies | undefined) => new Map((a?.partitions ?? []).map((p) => [p.partition, p]));

  it('partitions are a policy prefix and its first level below', () => {
    expect(partitionOf('events/', 'events/date=1/part-0.parquet')).toBe('events/date=1/');
    expect(partitionOf('events/', 'events/_SUCCESS')).toBe('events/');
    expect(partitionOf('', 'events/date=1/x')).toBe('events/');
    expect(partitionOf('', 'top.json')).toBe('');
  });

  it("the issue's incident on an unversioned bucket: counted per partition, flagged objects carry signals, the run is suspect", async () => {
    const bucket = newBucket(false);
    await seedLake(bucket);
    await bucket.put(stateKey, Buffer.from('compressible state '.repeat(4000)));
    const seed = await backup(bucket);
    expect(seed.anomalies?.suspect).toBe(false);
    expect(seed.anomalies?.partitions.map((p) => [p.partition, p.before, p.added])).toEqual([['events/', 0, 1], ...DAYS.map((d) => [`events/date=${d}/`, 0, FILES_PER_DAY])]);
    expect(seed.records.filter((r) => r.signals !== undefined)).toEqual([]);

    // A third overwritten with random bytes of the same size, a tenth deleted, a note in each day.
    const overwritten: string[] = [];
    for (const day of DAYS) {
      for (let i = 0; i < FILES_PER_DAY; i++) {
        const k = key(day, i);
        if (i % 3 === 0) {
          const size = (await bucket.head(k)).size;
          await bucket.put(k, randomBytes(size));
          overwritten.push(k);
        } else if ([1, 13, 26].includes(i)) {
          await bucket.delete(k);
        }
      }
      await bucket.put(`events/date=${day}/HOW_TO_DECRYPT_FILES.txt`, Buffer.from('pay us'));
    }
    await bucket.put(stateKey, randomBytes(64 * 1024));
    const incident = await backup(bucket);
    const parts = byPartition(incident.anomalies);
    for (const day of DAYS) {
      expect(parts.get(`events/date=${day}/`)).toMatchObject({ before: 30, added: 1, changed: 10, deleted: 3, changedVerified: 0, signals: { format: 10, 'ransom-note': 1 } });
    }
    expect(incident.anomalies?.suspect).toBe(true);
    expect(incident.anomalies?.findings.map((f) => [f.partition, f.rules])).toEqual(
      DAYS.map((d) => [`events/date=${d}/`, ['overwritten', 'deleted', 'broken-formats', 'ransom-notes']]),
    );
    // One incompressible file is below min_flagged_objects: a signal on its record, no finding.
    expect(parts.get('events/')).toMatchObject({ before: 1, changed: 1, signals: { incompressible: 1 } });
    expect(incident.anomalies?.flaggedObjects).toBe(overwritten.length + DAYS.length + 1);
    const flagged = new Map(incident.records.filter((r) => r.signals !== undefined).map((r) => [r.key, r.signals]));
    for (const k of overwritten) expect(flagged.get(k)).toEqual(['format']);
    expect(flagged.get(`events/date=${DAYS[0]}/HOW_TO_DECRYPT_FILES.txt`)).toEqual(['ransom-note']);
    expect(flagged.get(stateKey)).toEqual(['incompressible']);
  });

  it('an ordinary day does not fire: valid rewrites, a compaction, a new partition', async () => {
    const bucket = newBucket(false);
    await seedLake(bucket);
    await backup(bucket);
    const [first, second] = DAYS;
    // Rewrite two files of the first day with new valid Parquet data.
    for (let i = 0; i < 2; i++) await bucket.put(key(first!, i), parquet(1000 + i));
    // Compact the second day: every small file deleted, one large file written.
    for (let i = 0; i < FILES_PER_DAY; i++) await bucket.delete(key(second!, i));
    await bucket.put(`events/date=${second}/compacted-0000.parquet`, parquet(7, 200 * FILES_PER_DAY));
    // A new day.
    for (let i = 0; i < 5; i++) await bucket.put(key('2026-12-03', i), parquet(50 + i));
    const day = await backup(bucket);
    expect(day.anomalies?.findings).toEqual([]);
    const parts = byPartition(day.anomalies);
    expect(parts.get(`events/date=${first}/`)).toMatchObject({ before: 30, changed: 2, changedVerified: 2 });
    expect(parts.get(`events/date=${second}/`)).toMatchObject({ before: 30, added: 1, deleted: 30 });
    expect(parts.get('events/date=2026-12-03/')).toMatchObject({ before: 0, added: 5 });

    // The verified rewrites reach the catalog's history (the run recorded its verdict), newest first.
    expect(new CatalogAnomalyHistory(catalog).partitionHistory('lake', `events/date=${first}/`, 10)).toMatchObject([
      { changed: 2, changedVerified: 2 },
      { added: FILES_PER_DAY, changed: 0 },
    ]);
  });

  it('a versioned bucket: a new version is a change or an addition by what the catalog had before; delete markers are deletions; identical rewrites', async () => {
    const bucket = newBucket(true);
    for (let i = 0; i < 4; i++) await bucket.put(`events/part-${i}.csv`, Buffer.from(`id,name\n${i},x\n`));
    await bucket.put('events/state.bin', Buffer.from('compressible state '.repeat(4000)));
    const seed = await backup(bucket);
    expect(byPartition(seed.anomalies).get('events/')).toMatchObject({ before: 0, added: 5, changed: 0 });

    await bucket.put('events/part-0.csv', Buffer.from('id,name\n0,y\n'));
    await bucket.put('events/part-1.csv', Buffer.from('id,name\n1,x\n')); // the same bytes again: a new version
    await bucket.delete('events/part-2.csv');
    await bucket.put('events/part-2.csv.x7k2q', randomBytes(64)); // an extension swap
    await bucket.put('events/part-9.csv', Buffer.from([0xff, 0xfe, 0, 1]));
    await bucket.put('events/state.bin', randomBytes(64 * 1024)); // it compressed well: now it does not
    const run = await backup(bucket);
    expect(byPartition(run.anomalies).get('events/')).toMatchObject({
      before: 5,
      added: 2,
      changed: 3,
      deleted: 1,
      bytesDeleted: 12,
      signals: { identical: 1, 'extension-swap': 1, format: 1, incompressible: 1 },
    });
    const signals = Object.fromEntries(run.records.filter((r) => r.signals !== undefined).map((r) => [r.key, r.signals]));
    expect(signals).toEqual({
      'events/part-1.csv': ['identical'],
      'events/part-2.csv.x7k2q': ['extension-swap'],
      'events/part-9.csv': ['format'],
      'events/state.bin': ['incompressible'],
    });
  });

  it('a versioned bucket: removed delete markers (a mass undelete) are no added or changed keys; a permanently deleted key is a deletion', async () => {
    const bucket = newBucket(true);
    await seedLake(bucket);
    await backup(bucket);
    const day = DAYS[0]!;
    // Half of a partition deleted (markers), then the markers removed as rollback's undeletes do.
    const hit = Array.from({ length: FILES_PER_DAY / 2 }, (_, i) => key(day, i));
    for (const k of hit) await bucket.delete(k);
    await backup(bucket);
    for (const k of hit) {
      for await (const e of bucket.list(k, { versions: true })) if (e.kind === 'object' && e.key === k && e.isDeleteMarker) await bucket.delete(k, { versionId: e.versionId! });
    }
    const undeleted = await backup(bucket);
    expect(undeleted.anomalies?.suspect).toBe(false);
    expect(undeleted.records.map((r) => [r.key, r.reinstated])).toEqual(hit.map((k) => [k, true]));
    // Nothing changed in a partition: no entry for it.
    expect(byPartition(undeleted.anomalies).get(`events/date=${day}/`)).toBeUndefined();

    // Every version of one key permanently deleted: a deletion of a live key.
    const gone = key(day, FILES_PER_DAY - 1);
    for (const id of await (async () => {
      const ids: string[] = [];
      for await (const e of bucket.list(gone, { versions: true })) if (e.kind === 'object' && e.key === gone) ids.push(e.versionId!);
      return ids;
    })()) await bucket.delete(gone, { versionId: id });
    const purged = await backup(bucket);
    expect(byPartition(purged.anomalies).get(`events/date=${day}/`)).toMatchObject({ before: FILES_PER_DAY, deleted: 1, added: 0, changed: 0 });
    expect(purged.records.map((r) => [r.key, r.versionId, r.deleteMarker])).toEqual([[gone, null, true]]);
  });

  it('enabled: false watches nothing: no detector, no signals', async () => {
    const bucket = newBucket(false);
    await bucket.put('events/a.parquet', randomBytes(100));
    clock += 3_600_000;
    const group: Group = { name: 'lake', sources: [], anomaly: { enabled: false } };
    const source: OpenedSource = { bucket: 'lake', objectStore: bucket, prefixes: ['events/'], isExcluded: () => false };
    await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source] });
    expect(detectors).toEqual([null]);
    expect(records.map((r) => r.signals)).toEqual([undefined]);
  });

  it('history given to finish raises the bar', async () => {
    const bucket = newBucket(false);
    await seedLake(bucket);
    await backup(bucket);
    for (let i = 0; i < 5; i++) await bucket.delete(key(DAYS[0]!, i));
    const run = await backup(bucket);
    expect(run.anomalies?.findings.map((f) => f.rules)).toEqual([['deleted']]);
    const past: PartitionStats = { ...run.anomalies!.partitions[0]!, deleted: 3 }; // 10 %: 2 x 10 % > 16.7 %
    const asked: [string, string, number][] = [];
    const again = detectors.at(-1)!.finish({
      partitionHistory: (b, p, limit) => {
        asked.push([b, p, limit]);
        return [past];
      },
    });
    expect(asked).toEqual([['lake', `events/date=${DAYS[0]}/`, 10]]);
    expect(again.findings).toEqual([]);
  });
});
