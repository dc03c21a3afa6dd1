// A hand-built catalog with fixed dates for the query tests: two buckets of two groups, keys
// created, overwritten, deleted and re-created over five runs in November 2026, a partial run
// with failures, a failed and an interrupted run, and one version whose pack is gone.
import { createHash } from 'node:crypto';
import type { Catalog, PackRecord } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import type { RunStatus, VersionRecord } from '../../src/catalog/types.js';
import { emptyCounters } from '../../src/engine/events.js';

export const MiB = 1024 * 1024;
export const at = (day: number, hour: number, minute = 0): number => Date.UTC(2026, 10, day, hour, minute);

const blobId = (name: string): Buffer => createHash('sha256').update(name).digest();

function pack(name: string, blobNames: string[]): PackRecord {
  return { name, size: 1000, blobs: blobNames.map((b, i) => ({ hash: blobId(b), offset: i * 10, length: 10, rawLength: 10, flags: 0 })) };
}

function v(bucket: string, key: string, validFrom: number, o: Partial<VersionRecord> = {}): VersionRecord {
  const deleteMarker = o.deleteMarker ?? false;
  return {
    bucket,
    key,
    versionId: null,
    deleteMarker,
    size: deleteMarker ? 0 : 10,
    etag: deleteMarker ? '' : `"etag-${key}-${validFrom}"`,
    lastModified: validFrom,
    validFrom,
    blobs: deleteMarker ? [] : [blobId(`${bucket}/${key}@${validFrom}`).toString('hex')],
    ...o,
  };
}

export interface SeededRuns {
  r1: number;
  r2: number;
  r3: number;
  r4: number;
  r5: number;
}

/**
 * raw (group finance, versioned):
 *   run 1, Nov 2 10:00 complete:    a/1.csv 100 B (05:00), a/2.csv 200 (06:00), a/b/3.csv 300 (07:00), c.txt 50 (08:00)
 *   run 2, Nov 3 10:00 partial:     a/1.csv 110 (Nov 3 05:00), a/2.csv deleted (09:00), a/b/4.csv 400 (06:00); 2 failures
 *   run 3, Nov 4 10:00 complete:    a/1.csv 120 (Nov 4 05:00) then deleted (07:00), a/2.csv back 210 (06:00), d.bin 5 MiB (08:00)
 * logs (group logs, unversioned):
 *   run 4, Nov 4 18:00 failed:      a/1.csv 10 (12:00), x/y.log 1000 (13:00)
 *   run 5, Nov 10 10:00 interrupted: x/y.log deleted (Nov 10 10:00)
 * The pack holding c.txt's blob is gone (c.txt's data is missing).
 */
export function seedQueryCatalog(cat: Catalog): SeededRuns {
  const run = (id: string, group: string, started: number) => cat.beginRun({ id, group, started, host: 'backup-1' });
  const finish = (seq: number, status: RunStatus, started: number, extra: Partial<ReturnType<typeof emptyCounters>> = {}) =>
    cat.finishRun(seq, status, started + 5 * 60_000, { ...emptyCounters(), durationMs: 300_000, ...extra });
  const vid = (n: string) => ({ versionId: n });

  const r1 = run('20261102T100000Z-aaaaaa', 'finance', at(2, 10));
  const r2 = run('20261103T100000Z-bbbbbb', 'finance', at(3, 10));
  const r3 = run('20261104T100000Z-cccccc', 'finance', at(4, 10));
  const r4 = run('20261104T180000Z-dddddd', 'logs', at(4, 18));
  const r5 = run('20261110T100000Z-eeeeee', 'logs', at(10, 10));

  const versions: [number, VersionRecord[]][] = [
    [
      r1,
      [
        v('raw', 'a/1.csv', at(2, 5), { size: 100, ...vid('1-a') }),
        v('raw', 'a/2.csv', at(2, 6), { size: 200, ...vid('2-a') }),
        v('raw', 'a/b/3.csv', at(2, 7), { size: 300, ...vid('3-a') }),
        v('raw', 'c.txt', at(2, 8), { size: 50, ...vid('c-a'), storageClass: 'STANDARD_IA' }),
      ],
    ],
    [
      r2,
      [
        v('raw', 'a/1.csv', at(3, 5), { size: 110, ...vid('1-b') }),
        v('raw', 'a/2.csv', at(3, 9), { deleteMarker: true, ...vid('2-dm') }),
        v('raw', 'a/b/4.csv', at(3, 6), { size: 400, ...vid('4-a') }),
      ],
    ],
    [
      r3,
      [
        v('raw', 'a/1.csv', at(4, 5), { size: 120, ...vid('1-c') }),
        v('raw', 'a/1.csv', at(4, 7), { deleteMarker: true, ...vid('1-dm') }),
        v('raw', 'a/2.csv', at(4, 6), { size: 210, ...vid('2-b') }),
        v('raw', 'd.bin', at(4, 8), { size: 5 * MiB, ...vid('d-a') }),
      ],
    ],
    [r4, [v('logs', 'a/1.csv', at(4, 12), { size: 10 }), v('logs', 'x/y.log', at(4, 13), { size: 1000 })]],
    [r5, [v('logs', 'x/y.log', at(10, 10), { deleteMarker: true })]],
  ];

  cat.transaction(() => {
    for (const [seq, records] of versions) {
      const names = records.filter((r) => !r.deleteMarker).map((r) => `${r.bucket}/${r.key}@${r.validFrom}`);
      // c.txt's blob in a pack of its own, which is then "pruned" below.
      cat.insertPack(pack(`pack-${seq}`, names.filter((n) => !n.startsWith('raw/c.txt'))), seq);
      if (names.some((n) => n.startsWith('raw/c.txt'))) cat.insertPack(pack('pack-gone', names.filter((n) => n.startsWith('raw/c.txt'))), seq);
      cat.insertVersions(seq, records);
    }
    cat.insertFailures(r2, [
      { bucket: 'raw', key: 'a/locked.csv', versionId: 'x1', code: 'AccessDenied', message: 'Access Denied' },
      { bucket: 'raw', key: 'a/with,comma "quoted".csv', versionId: null, code: 'NotFound', message: 'gone, between list and get' },
    ]);
  });
  // As a prune would leave it: the pack and its blobs gone, the version still catalogued.
  sqlite(cat).exec("DELETE FROM blobs WHERE pack = (SELECT id FROM packs WHERE name = 'pack-gone'); DELETE FROM packs WHERE name = 'pack-gone'");

  finish(r1, 'complete', at(2, 10), { objectsSeen: 4, objectsNew: 4 });
  finish(r2, 'partial', at(3, 10), { objectsSeen: 4, objectsNew: 1, objectsChanged: 1, objectsDeleted: 1, objectsFailed: 2 });
  finish(r3, 'complete', at(4, 10), { objectsSeen: 5 });
  finish(r4, 'failed', at(4, 18), { objectsSeen: 2 });
  finish(r5, 'interrupted', at(10, 10), { objectsSeen: 1 });
  return { r1, r2, r3, r4, r5 };
}
