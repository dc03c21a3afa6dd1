// Anomaly signals on the real S3 server: a versioned bucket of real Parquet files, one overwritten
// with random bytes of the same size, one deleted, a ransom note and an extension swap; the
// catalog holds each flagged version's signals, and the run's partition counts are right.
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { flaggedObjects } from '../../src/catalog/anomalies.js';
import { noHistory, type RunAnomalies } from '../../src/catalog/anomaly-types.js';
import type { Catalog } from '../../src/catalog/catalog.js';
import { AnomalyDetector } from '../../src/engine/anomaly-detector.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { initRepo, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testS3Client, testS3Store } from '../helpers/s3-env.js';

const s3 = testS3Client();

function parquet(seed: number): Buffer {
  const ids = Array.from({ length: 300 }, (_, i) => seed * 1000 + i);
  return Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'id', data: ids, type: 'INT32' }, { name: 'city', data: ids.map((i) => `city-${i % 11}`), type: 'STRING' }] }));
}

describe('anomaly signals on the real server', () => {
  let dir: ReturnType<typeof tempDir>;
  let bucket: string;
  let repo: Repository;
  let catalog: Catalog;
  const detectors: (AnomalyDetector | null)[] = [];
  const group: Group = { name: 'lake', sources: [] };
  const put = (key: string, body: Buffer) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  const key = (i: number) => `lake/events/part-${i}.parquet`;

  beforeAll(async () => {
    dir = tempDir('it-anomaly');
    bucket = await createTestBucket('lg-anomaly', { versioning: true });
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    catalog = openCatalog(dir.path, repo);
    const create = AnomalyDetector.create.bind(AnomalyDetector);
    vi.spyOn(AnomalyDetector, 'create').mockImplementation((...args) => {
      const detector = create(...args);
      detectors.push(detector);
      return detector;
    });
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    catalog?.close();
    if (bucket !== undefined) await emptyAndDeleteBucket(bucket);
    dir?.cleanup();
  });

  const backup = async (): Promise<{ anomalies: RunAnomalies; seq: number }> => {
    const result = await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [{ bucket, objectStore: testS3Store(bucket), prefixes: ['lake/'], isExcluded: () => false }] });
    expect(result.status).toBe('complete');
    return { anomalies: detectors.at(-1)!.finish(noHistory), seq: catalog.findRun(result.runId)!.seq };
  };

  it('records the signals of flagged versions in the catalog, and counts the partition', async () => {
    for (let i = 0; i < 6; i++) await put(key(i), parquet(i));
    const seed = await backup();
    expect(seed.anomalies.partitions).toMatchObject([{ partition: 'lake/events/', before: 0, added: 6 }]);
    expect([...flaggedObjects(catalog, seed.seq)]).toEqual([]);

    const size = parquet(0).length;
    await put(key(0), randomBytes(size));
    await put(key(1), parquet(1)); // the same bytes again
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key(2) }));
    await put(`${key(2)}.locked`, randomBytes(size));
    await put('lake/events/HOW_TO_DECRYPT_FILES.txt', Buffer.from('send coins'));
    const run = await backup();
    expect(run.anomalies.partitions).toMatchObject([
      { partition: 'lake/events/', before: 6, changed: 2, added: 2, deleted: 1, bytesDeleted: parquet(2).length, signals: { format: 1, identical: 1, 'extension-swap': 1, 'ransom-note': 1 } },
    ]);
    expect(run.anomalies.findings.map((f) => f.rules)).toEqual([['ransom-notes']]); // 6 keys: judged by counts only
    const flagged = [...flaggedObjects(catalog, run.seq)].map((f) => [f.key, f.signals]);
    expect(flagged).toEqual([
      ['lake/events/HOW_TO_DECRYPT_FILES.txt', ['ransom-note']],
      [key(0), ['format']],
      [key(1), ['identical']],
      [`${key(2)}.locked`, ['extension-swap']], // no known format: only its name speaks
    ]);
  });
});
