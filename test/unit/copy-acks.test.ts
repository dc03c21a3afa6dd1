// copy of a suspect run carries its acknowledgements (runs ack, runs ack --incident) into the
// target: without them the target marks a run the source's operators already looked at as an
// unacknowledged suspect run, and a second host's catalog of the target agrees with the first.
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acksOfRun, runVerdict, suspectRuns } from '../../src/catalog/anomalies.js';
import type { RunAnomalies } from '../../src/catalog/anomaly-types.js';
import { Catalog } from '../../src/catalog/catalog.js';
import type { VersionRecord } from '../../src/catalog/types.js';
import { acknowledgeRun } from '../../src/engine/ack.js';
import { describeCopy } from '../../src/commands/copy.js';
import { copyRuns } from '../../src/engine/copy.js';
import { emptyCounters } from '../../src/engine/events.js';
import { finalizeRun } from '../../src/engine/finalize.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { StorageError } from '../../src/errors.js';
import { Packer, packRecord } from '../../src/repository/packer.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import type { PutOptions, PutResult } from '../../src/storage/types.js';
import { initRepo, tempDir } from '../helpers/fixtures.js';

const T0 = Date.UTC(2026, 11, 1, 2);
const DAY = 86_400_000;
const SUSPECT: RunAnomalies = {
  suspect: true,
  findings: [{ bucket: 'lake', partition: 'p/', rules: ['deleted'], reasons: ['deleted 1 of 3 keys'] }],
  partitions: [],
  flaggedObjects: 1,
};

async function recordRun(repo: Repository, catalog: Catalog, id: string, day: number, anomalies: RunAnomalies): Promise<void> {
  const seq = catalog.beginRun({ id, group: 'g', started: T0 + day * DAY, host: 'h1' });
  const at = T0 + day * DAY;
  const v: VersionRecord = { bucket: 'lake', key: `p/k${day}`, versionId: null, deleteMarker: false, size: 0, etag: `e${day}`, lastModified: at, validFrom: at, blobs: [] };
  catalog.transaction(() => catalog.insertVersions(seq, [v]));
  const packer = new Packer(repo, { onPackWritten: (pack) => catalog.transaction(() => catalog.insertPack(packRecord(pack), seq)) });
  await finalizeRun(repo, catalog, packer, catalog.findRun(id)!, 'complete', emptyCounters(), () => {}, anomalies);
}

describe('copy of acknowledged suspect runs', () => {
  let dir: ReturnType<typeof tempDir>;
  const open: Catalog[] = [];
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
    dir.cleanup();
  });
  let source: Repository;
  let target: Repository;
  let sc: Catalog;
  let tc: Catalog;
  beforeEach(async () => {
    dir = tempDir('copy-acks');
    source = await initRepo(new FsStore({ root: join(dir.path, 'source'), fsync: false }));
    target = await initRepo(new FsStore({ root: join(dir.path, 'target'), fsync: false }), { password: 'another-password' });
    sc = Catalog.open(join(dir.path, 's.db'), source.id);
    tc = Catalog.open(join(dir.path, 't.db'), target.id);
    open.push(sc, tc);
  });

  it('the acks of a copied run travel with it (expected changes and incident); an unacknowledged one stays unacknowledged', async () => {
    await recordRun(source, sc, '20261201T020000Z-aaaaaa', 0, SUSPECT);
    await recordRun(source, sc, '20261202T020000Z-bbbbbb', 1, SUSPECT);
    await recordRun(source, sc, '20261203T020000Z-cccccc', 2, SUSPECT);
    await acknowledgeRun(source, sc, sc.findRun('20261201T020000Z-aaaaaa')!, { note: 'compaction, expected', by: 'ana' });
    await acknowledgeRun(source, sc, sc.findRun('20261202T020000Z-bbbbbb')!, { note: 'rolled back', by: 'bo', incident: true });

    const report = await copyRuns({ source: { repo: source, catalog: sc }, target: { repo: target, catalog: tc } });
    expect(report.copied.map((c) => c.source)).toEqual(['20261201T020000Z-aaaaaa', '20261202T020000Z-bbbbbb', '20261203T020000Z-cccccc']);
    expect(report.acksCopied).toBe(2);
    const [a, b, c] = report.copied.map((x) => x.target!);

    // A second host's catalog of the target, from the repository alone.
    const other = Catalog.open(join(dir.path, 'other.db'), target.id);
    open.push(other);
    await syncCatalog({ repo: target, catalog: other });
    for (const cat of [tc, other]) {
      const ackA = acksOfRun(cat, a!);
      expect(ackA.map((x) => [x.by, x.note, x.incident, x.host])).toEqual([['ana', 'compaction, expected', 0, acksOfRun(sc, '20261201T020000Z-aaaaaa')[0]!.host]]);
      expect(ackA[0]!.created).toBe(acksOfRun(sc, '20261201T020000Z-aaaaaa')[0]!.created);
      expect(acksOfRun(cat, b!).map((x) => [x.by, x.note, x.incident])).toEqual([['bo', 'rolled back', 1]]);
      expect(acksOfRun(cat, c!)).toEqual([]);
      expect(runVerdict(cat, cat.findRun(c!)!.seq)?.suspect).toBe(true);
      expect(Object.fromEntries(suspectRuns(cat))).toEqual({ [a!]: { acknowledged: true }, [b!]: { acknowledged: true }, [c!]: { acknowledged: false } });
    }
  });

  it('an acknowledgement made in the source after the copy reaches the copy on the next copy, once', async () => {
    await recordRun(source, sc, '20261201T020000Z-aaaaaa', 0, SUSPECT);
    const copy = () => copyRuns({ source: { repo: source, catalog: sc }, target: { repo: target, catalog: tc } });
    const first = await copy();
    const t = first.copied[0]!.target!;
    expect(first.acksCopied).toBe(0);
    expect(suspectRuns(tc).get(t)).toEqual({ acknowledged: false });

    await acknowledgeRun(source, sc, sc.findRun('20261201T020000Z-aaaaaa')!, { by: 'ana', incident: true });
    const second = await copy();
    expect([second.copied.length, second.alreadyCopied, second.acksCopied]).toEqual([0, 1, 1]);
    expect(acksOfRun(tc, t).map((x) => [x.by, x.incident])).toEqual([['ana', 1]]);
    expect((await copy()).acksCopied).toBe(0);
    expect(await target.listNames('acks')).toHaveLength(1);
  });

  it('--dry-run lists the acknowledgements a copy would write (with new runs and for earlier copies) and writes none', async () => {
    await recordRun(source, sc, '20261201T020000Z-aaaaaa', 0, SUSPECT);
    const copy = (dryRun: boolean) => copyRuns({ source: { repo: source, catalog: sc }, target: { repo: target, catalog: tc }, dryRun });
    const earlier = (await copy(false)).copied[0]!.target!;
    await acknowledgeRun(source, sc, sc.findRun('20261201T020000Z-aaaaaa')!, { by: 'ana', incident: true });
    await recordRun(source, sc, '20261202T020000Z-bbbbbb', 1, SUSPECT);
    await acknowledgeRun(source, sc, sc.findRun('20261202T020000Z-bbbbbb')!, { by: 'bo' });
    await recordRun(source, sc, '20261203T020000Z-cccccc', 2, SUSPECT);

    const dry = await copy(true);
    expect(dry.copied.map((c) => [c.source, c.target, c.acks])).toEqual([
      ['20261202T020000Z-bbbbbb', null, 1],
      ['20261203T020000Z-cccccc', null, 0],
    ]);
    expect(dry.acksOfEarlierCopies).toEqual([{ source: '20261201T020000Z-aaaaaa', target: earlier, acks: 1 }]);
    expect(dry.acksCopied).toBe(2);
    expect(describeCopy(dry)).toContain(`would write 1 acknowledgement of run 20261201T020000Z-aaaaaa (copied earlier as ${earlier})`);
    expect(describeCopy(dry)).toMatch(/would copy run 20261202T020000Z-bbbbbb .*: 1 version, 1 acknowledgement$/m);
    expect(await target.listNames('acks')).toHaveLength(0);

    // The real copy writes exactly what the dry run listed.
    const real = await copy(false);
    expect(real.copied.map((c) => [c.source, c.acks])).toEqual(dry.copied.map((c) => [c.source, c.acks]));
    expect(real.acksOfEarlierCopies).toEqual(dry.acksOfEarlierCopies);
    expect(real.acksCopied).toBe(2);
    expect(await target.listNames('acks')).toHaveLength(2);
    const after = await copy(true);
    expect([after.copied.length, after.acksOfEarlierCopies.length, after.acksCopied]).toEqual([0, 0, 0]);
  });
  it('a target that refuses acks/ after the manifest: the run stays copied, the error names it, the next copy writes the acks', async () => {
    await recordRun(source, sc, '20261201T020000Z-aaaaaa', 0, SUSPECT);
    await recordRun(source, sc, '20261202T020000Z-bbbbbb', 1, SUSPECT);
    await acknowledgeRun(source, sc, sc.findRun('20261201T020000Z-aaaaaa')!, { by: 'ana', incident: true });
    class DenyAcks extends StoreDecorator {
      override async put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult> {
        if (key.startsWith('acks/')) throw new StorageError('AccessDenied', `Access Denied: ${key}`);
        return this.inner.put(key, body, opts);
      }
    }
    const denied = await Repository.open(new DenyAcks(new FsStore({ root: join(dir.path, 'target'), fsync: false })), { password: async () => 'another-password' });
    const err = await copyRuns({ source: { repo: source, catalog: sc }, target: { repo: denied, catalog: tc } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const [copied] = tc.listRuns();
    expect((err as Error).message).toMatch(new RegExp(`^run 20261201T020000Z-aaaaaa was copied as ${copied!.id}, but not its acknowledgements: Access Denied: acks/`));
    expect(tc.listRuns().map((r) => r.status)).toEqual(['complete']);
    expect(await target.listNames('runs')).toEqual([copied!.id]);

    const again = await copyRuns({ source: { repo: source, catalog: sc }, target: { repo: target, catalog: tc } });
    expect(again.copied.map((c) => c.source)).toEqual(['20261202T020000Z-bbbbbb']);
    expect(again.acksOfEarlierCopies).toEqual([{ source: '20261201T020000Z-aaaaaa', target: copied!.id, acks: 1 }]);
    expect(acksOfRun(tc, copied!.id).map((x) => [x.by, x.incident])).toEqual([['ana', 1]]);
  });
});
