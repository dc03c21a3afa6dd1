// What a verdict becomes (issue 19, "record"): the manifest's `anomalies`, the records' `sig`,
// acks/ documents, and catalog schema 4 (history, last-clean, flagged objects), on this host and,
// through sync and rebuild, on another one. Verdicts are built here: detection is tested on its own.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CatalogAnomalyHistory, flaggedObjects, lastCleanRun, runVerdict, suspectRuns, suspectRunsInState } from '../../src/catalog/anomalies.js';
import type { PartitionStats, RunAnomalies } from '../../src/catalog/anomaly-types.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import type { RunCounters, RunStatus, VersionRecord } from '../../src/catalog/types.js';
import { acknowledgeRun } from '../../src/engine/ack.js';
import { emptyCounters } from '../../src/engine/events.js';
import { finalizeRun, type RunManifest } from '../../src/engine/finalize.js';
import { rebuildCatalog } from '../../src/engine/rebuild.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { verify } from '../../src/engine/verify.js';
import { flagsCompressed } from '../../src/repository/pack.js';
import { Packer, packRecord } from '../../src/repository/packer.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { flipByte } from '../helpers/damage.js';
import { initRepo, tempDir } from '../helpers/fixtures.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 11, 1, 2);
const P1 = 'events/date=1/';
const P2 = 'events/date=2/';

function version(key: string, day: number, o: Partial<VersionRecord> = {}): VersionRecord {
  const at = T0 + day * DAY;
  return { bucket: 'lake', key, versionId: null, deleteMarker: false, size: 100, etag: `${key}@${day}`, lastModified: at, validFrom: at, blobs: [], ...o };
}

function stats(partition: string, o: Partial<PartitionStats>): PartitionStats {
  return { bucket: 'lake', partition, before: 10, added: 0, changed: 0, deleted: 0, bytesAdded: 0, bytesChanged: 0, bytesDeleted: 0, signals: {}, ...o };
}

/** Records a run as a backup does (versions in the catalog, then finalizeRun), with a given verdict. */
async function recordRun(
  repo: Repository,
  catalog: Catalog,
  id: string,
  day: number,
  records: VersionRecord[],
  anomalies?: RunAnomalies,
  status: RunStatus = 'complete',
  counters: Partial<RunCounters> = {},
): Promise<RunManifest> {
  const seq = catalog.beginRun({ id, group: 'g', started: T0 + day * DAY, host: 'h1' });
  catalog.transaction(() => catalog.insertVersions(seq, records));
  const packer = new Packer(repo, { onPackWritten: (pack) => catalog.transaction(() => catalog.insertPack(packRecord(pack), seq)) });
  const run = catalog.findRun(id)!;
  return finalizeRun(repo, catalog, packer, run, status, { ...emptyCounters(), ...counters }, () => {}, anomalies);
}

/** A run id of `day` (days after T0), as backups name them. */
function runIdOn(day: number, hex: string): string {
  return `${new Date(T0 + day * DAY).toISOString().replace(/[-:]/g, '').slice(0, 15)}Z-${hex}`;
}

const CLEAN: RunAnomalies = { suspect: false, findings: [], partitions: [stats(P1, { added: 2, bytesAdded: 200 }), stats(P2, { before: 0, added: 3, bytesAdded: 300 })], flaggedObjects: 0 };
const INCIDENT: RunAnomalies = {
  suspect: true,
  findings: [{ bucket: 'lake', partition: P2, rules: ['deleted', 'overwritten'], reasons: ['deleted 1 of 3 keys (33 %; threshold 20 %, history max 0 %)', 'overwrote 1 of 3 keys'] }],
  partitions: [stats(P1, { before: 2, changed: 1, changedVerified: 0, bytesChanged: 100 }), stats(P2, { before: 3, changed: 1, deleted: 1, added: 1, bytesChanged: 100, bytesDeleted: 100, signals: { 'ransom-note': 1 } })],
  flaggedObjects: 2,
};

describe('anomaly verdicts in the repository and the catalog', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let a: Catalog;
  const open: Catalog[] = [];
  beforeEach(async () => {
    dir = tempDir('anomaly-record');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo') }));
    a = Catalog.open(join(dir.path, 'a.db'), repo.id);
    open.push(a);
    await recordRun(repo, a, '20261201T020000Z-aaaaaa', 0, [version(`${P1}a.parquet`, 0), version(`${P1}b.parquet`, 0), version(`${P2}a.parquet`, 0), version(`${P2}b.parquet`, 0), version(`${P2}c.parquet`, 0)], CLEAN);
    await recordRun(repo, a, '20261202T020000Z-bbbbbb', 1, [
      version(`${P1}a.parquet`, 1, { signals: ['format', 'incompressible'] }), // flagged by its content, in a partition without finding
      version(`${P2}a.parquet`, 1), // overwritten in a partition whose `overwritten` rule fired
      version(`${P2}b.parquet`, 1, { deleteMarker: true, size: 0, etag: '' }), // deleted there
      version(`${P2}README-DECRYPT.txt`, 1, { signals: ['ransom-note'] }),
    ], INCIDENT);
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
    dir.cleanup();
  });

  it('the manifest carries the verdict and the records carry `sig` only on flagged versions', async () => {
    const manifest = await repo.readDocument<RunManifest>('runs', '20261202T020000Z-bbbbbb');
    expect(manifest.anomalies).toEqual(INCIDENT);
    const clean = await repo.readDocument<RunManifest>('runs', '20261201T020000Z-aaaaaa');
    expect(clean.anomalies).toEqual(CLEAN);
    const loc = a.blobLocation(Buffer.from(manifest.records[0]!, 'hex'))!;
    const stored = await repo.readPackRange(loc.pack, loc.offset, loc.offset + loc.length);
    const lines = repo
      .decodeBlob(stored, { id: Buffer.from(manifest.records[0]!, 'hex'), compressed: flagsCompressed(loc.flags), rawLength: loc.rawLength }, 'test')
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { key: string; sig?: string[]; signals?: unknown });
    // In key order (docs/repository-format.md "recordRanges"): 'R' sorts before 'a'.
    expect(lines.map((l) => [l.key, l.sig])).toEqual([
      [`${P1}a.parquet`, ['format', 'incompressible']],
      [`${P2}README-DECRYPT.txt`, ['ransom-note']],
      [`${P2}a.parquet`, undefined],
      [`${P2}b.parquet`, undefined],
    ]);
    expect(lines.every((l) => l.signals === undefined)).toBe(true);
    // A clean version costs no row: only the two flagged versions have one.
    expect(sqlite(a).prepare('SELECT count(*) FROM version_signals').pluck().get()).toBe(2);
  });

  it('history leaves out unacknowledged suspect runs; last-clean is the run before the incident; an ack changes both', async () => {
    const history = new CatalogAnomalyHistory(a);
    expect(history.partitionHistory('lake', P2, 5)).toEqual([CLEAN.partitions[1]]);
    expect(history.partitionHistory('lake', 'elsewhere/', 5)).toEqual([]);
    expect(history.partitionHistory('other-bucket', P2, 5)).toEqual([]);
    let state = lastCleanRun(a, ['g']);
    expect([state.suspect?.id, state.lastClean?.id]).toEqual(['20261202T020000Z-bbbbbb', '20261201T020000Z-aaaaaa']);
    expect(lastCleanRun(a, ['other'])).toEqual({ suspect: undefined, lastClean: undefined });
    expect(suspectRuns(a)).toEqual(new Map([['20261202T020000Z-bbbbbb', { acknowledged: false }]]));

    const { ack } = await acknowledgeRun(repo, a, a.findRun('20261202T020000Z-bbbbbb')!, { note: 'compaction gone wrong, repaired', by: 'ana' });
    expect(ack.id).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    expect(runVerdict(a, a.findRun('20261202T020000Z-bbbbbb')!.seq)).toMatchObject({ suspect: true, ack: { name: ack.id, by: 'ana', note: 'compaction gone wrong, repaired' } });
    expect(suspectRuns(a)).toEqual(new Map([['20261202T020000Z-bbbbbb', { acknowledged: true }]]));
    expect(history.partitionHistory('lake', P2, 5)).toEqual([INCIDENT.partitions[1], CLEAN.partitions[1]]);
    expect(history.partitionHistory('lake', P2, 1)).toEqual([INCIDENT.partitions[1]]);
    state = lastCleanRun(a, ['g']);
    expect([state.suspect?.id, state.lastClean?.id]).toEqual([undefined, '20261202T020000Z-bbbbbb']);
    // Twice is refused, naming who acknowledged it (and the one correction there is); so is a run that is not suspect.
    await expect(acknowledgeRun(repo, a, a.findRun('20261202T020000Z-bbbbbb')!)).rejects.toMatchObject({
      message: expect.stringMatching(/already acknowledged by ana on /),
      hint: expect.stringContaining('runs ack 20261202T020000Z-bbbbbb --incident'),
    });
    await expect(acknowledgeRun(repo, a, a.findRun('20261201T020000Z-aaaaaa')!)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/is not suspect/) });

    // Found to be damage after all: the incident acknowledgement counts over the first, on every host.
    await acknowledgeRun(repo, a, a.findRun('20261202T020000Z-bbbbbb')!, { incident: true, by: 'bo' });
    state = lastCleanRun(a, ['g']);
    expect([state.lastClean?.id, state.incident?.id]).toEqual(['20261201T020000Z-aaaaaa', '20261202T020000Z-bbbbbb']);
    expect(runVerdict(a, a.findRun('20261202T020000Z-bbbbbb')!.seq)?.ack).toMatchObject({ by: 'bo', incident: 1 });
    expect(history.partitionHistory('lake', P2, 5)).toEqual([CLEAN.partitions[1]]);
    const b = Catalog.open(join(dir.path, 'b-corrected.db'), repo.id);
    open.push(b);
    await syncCatalog({ repo, catalog: b });
    expect(lastCleanRun(b, ['g']).lastClean?.id).toBe('20261201T020000Z-aaaaaa');
    // Never the reverse, nor twice.
    await expect(acknowledgeRun(repo, a, a.findRun('20261202T020000Z-bbbbbb')!)).rejects.toThrow(/already acknowledged as an incident by bo/);
    await expect(acknowledgeRun(repo, a, a.findRun('20261202T020000Z-bbbbbb')!, { incident: true })).rejects.toThrow(/already acknowledged as an incident/);
  });

  it('an incident acknowledged (--incident) is unmarked, but its state is never last-clean and its statistics never history', async () => {
    const history = new CatalogAnomalyHistory(a);
    const { ack } = await acknowledgeRun(repo, a, a.findRun('20261202T020000Z-bbbbbb')!, { note: 'ransomware, rolled back', incident: true });
    expect(ack.incident).toBe(true);
    expect(suspectRuns(a)).toEqual(new Map([['20261202T020000Z-bbbbbb', { acknowledged: true }]]));
    expect(runVerdict(a, a.findRun('20261202T020000Z-bbbbbb')!.seq)?.ack).toMatchObject({ name: ack.id, incident: 1 });
    // The thresholds stay where the clean runs put them: the same damage again is flagged again.
    expect(history.partitionHistory('lake', P2, 5)).toEqual([CLEAN.partitions[1]]);
    // Right after the rollback (no backup of the repaired lake yet), last-clean is still the run
    // before the incident, not the incident's own state; and it says why.
    let state = lastCleanRun(a, ['g']);
    expect([state.suspect?.id, state.lastClean?.id, state.incident?.id]).toEqual([undefined, '20261201T020000Z-aaaaaa', '20261202T020000Z-bbbbbb']);
    // A restore of the newest state would hand out the damage: still said.
    const newest = () => ({ runSeq: a.latestRun({ statuses: ['complete'] })!.seq });
    const lake = [{ bucket: 'lake', prefix: '' }];
    expect(suspectRunsInState(a, newest(), lake).map((f) => [f.run.id, f.incident])).toEqual([['20261202T020000Z-bbbbbb', true]]);
    // A run that lists from the S3 Inventory report the incident's run used (older than the
    // rollback and the ack) finds nothing new: its state is still the incident's, not clean.
    const after = Math.ceil((Date.now() - T0) / DAY) + 1;
    const stale = runIdOn(after, 'cccccb');
    await recordRun(repo, a, stale, after, [], { ...CLEAN, partitions: [] }, 'complete', { inventory: { lake: new Date(T0 + DAY).toISOString() } });
    state = lastCleanRun(a, ['g']);
    expect([state.suspect?.id, state.lastClean?.id, state.incident?.id]).toEqual([undefined, '20261201T020000Z-aaaaaa', '20261202T020000Z-bbbbbb']);
    expect(suspectRunsInState(a, newest(), lake).map((f) => f.run.id)).toEqual(['20261202T020000Z-bbbbbb']);
    // The next clean run that saw the repaired lake (listed after the ack) is the last clean one
    // from then on, and the newest state is no longer the incident's.
    const repaired = runIdOn(after + 1, 'cccccc');
    await recordRun(repo, a, repaired, after + 1, [version(`${P2}a.parquet`, 0)], { ...CLEAN, partitions: [] });
    state = lastCleanRun(a, ['g']);
    expect([state.suspect?.id, state.lastClean?.id, state.incident]).toEqual([undefined, repaired, undefined]);
    expect(suspectRunsInState(a, newest(), lake)).toEqual([]);
    expect(suspectRunsInState(a, { runSeq: a.findRun('20261202T020000Z-bbbbbb')!.seq }, lake)).toHaveLength(1);
    // Another host learns the kind from the acks/ document.
    const c = Catalog.open(join(dir.path, 'c.db'), repo.id);
    open.push(c);
    await syncCatalog({ repo, catalog: c });
    expect(lastCleanRun(c, ['g']).lastClean?.id).toBe(repaired);
    expect(new CatalogAnomalyHistory(c).partitionHistory('lake', P2, 5)).toEqual(history.partitionHistory('lake', P2, 5));
  });

  it('last-clean skips failed and suspect runs and never looks past the oldest unacknowledged suspect run', async () => {
    await recordRun(repo, a, '20261203T020000Z-cccccc', 2, [version(`${P1}c.parquet`, 2)], { ...CLEAN, partitions: [] });
    await recordRun(repo, a, '20261204T020000Z-dddddd', 3, [version(`${P1}d.parquet`, 3)], undefined, 'failed');
    expect(lastCleanRun(a, ['g']).lastClean?.id).toBe('20261201T020000Z-aaaaaa');
    await acknowledgeRun(repo, a, a.findRun('20261202T020000Z-bbbbbb')!);
    expect(lastCleanRun(a, ['g']).lastClean?.id).toBe('20261203T020000Z-cccccc');
  });

  it('a finding at the top level of a bucket (partition \'\') reaches a selection of the bucket or its top-level keys, not one inside a directory', async () => {
    const note: RunAnomalies = { suspect: true, findings: [{ bucket: 'lake', partition: '', rules: ['added'], reasons: ['a ransom note'] }], partitions: [], flaggedObjects: 1 };
    await recordRun(repo, a, '20261203T020000Z-cccccc', 2, [version('HOW_TO_DECRYPT.txt', 2, { signals: ['ransom-note'] })], note);
    const cut = { runSeq: a.findRun('20261203T020000Z-cccccc')!.seq };
    const found = (prefix: string) => suspectRunsInState(a, cut, [{ bucket: 'lake', prefix }]).filter((f) => f.run.id === '20261203T020000Z-cccccc').length;
    expect([found(''), found('HOW'), found('reference/'), found('reference/x.csv')]).toEqual([1, 1, 0, 0]);
  });

  it('lists the flagged objects: versions with signals, and the deletes and overwrites of partitions whose rule fired', () => {
    const listed = [...flaggedObjects(a, a.findRun('20261202T020000Z-bbbbbb')!.seq)];
    expect(listed.map((f) => [f.key, f.change, f.signals, f.partition, f.rules])).toEqual([
      [`${P1}a.parquet`, 'changed', ['format', 'incompressible'], P1, []],
      [`${P2}README-DECRYPT.txt`, 'added', ['ransom-note'], P2, ['deleted', 'overwritten']],
      [`${P2}a.parquet`, 'changed', [], P2, ['deleted', 'overwritten']],
      [`${P2}b.parquet`, 'deleted', [], P2, ['deleted', 'overwritten']],
    ]);
    expect([...flaggedObjects(a, a.findRun('20261201T020000Z-aaaaaa')!.seq)]).toEqual([]);
    // A delete is as big as the version it deleted (its marker has no size).
    expect(listed.find((f) => f.change === 'deleted')?.size).toBe(100);
  });

  it('a second host sees the same suspect runs, signals and acks, by sync and by rebuild; verify names a damaged ack', async () => {
    const b = Catalog.open(join(dir.path, 'b.db'), repo.id);
    open.push(b);
    await syncCatalog({ repo, catalog: b });
    const view = (c: Catalog) => ({
      suspect: suspectRuns(c),
      verdicts: c.listRuns().map((r) => runVerdict(c, r.seq)),
      flagged: c.listRuns().map((r) => [...flaggedObjects(c, r.seq)]),
      history: new CatalogAnomalyHistory(c).partitionHistory('lake', P2, 5),
      lastClean: lastCleanRun(c, ['g']).lastClean?.id,
    });
    expect(view(b)).toEqual(view(a));
    expect(suspectRuns(b).get('20261202T020000Z-bbbbbb')).toEqual({ acknowledged: false });

    const { ack } = await acknowledgeRun(repo, a, a.findRun('20261202T020000Z-bbbbbb')!, { note: 'checked' });
    const synced = await syncCatalog({ repo, catalog: b });
    expect(synced.acks).toBe(1);
    expect(view(b)).toEqual(view(a));
    expect(suspectRuns(b).get('20261202T020000Z-bbbbbb')).toEqual({ acknowledged: true });

    const rebuilt = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'c.db') });
    expect(rebuilt.damage).toEqual([]);
    const c = Catalog.open(join(dir.path, 'c.db'), repo.id);
    open.push(c);
    expect(view(c)).toEqual(view(a));

    const clean = await verify({ repo, catalog: a, concurrency: 2, readData: 0 });
    expect(clean).toMatchObject({ acks: 1, damage: [] });
    const key = `acks/${ack.id}`;
    flipByte(join(dir.path, 'repo', key), 10);
    const damaged = await verify({ repo, catalog: a, concurrency: 2, readData: 0 });
    expect(damaged.damage.map((d) => d.what)).toEqual([key]);
    // A rebuild reports it, and the run stays suspect there (nothing is silently acknowledged).
    const again = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'd.db'), skipDamaged: true, acceptDamage: true });
    expect(again.damage.map((d) => d.what)).toEqual([key]);
    const d = Catalog.open(join(dir.path, 'd.db'), repo.id);
    open.push(d);
    expect(suspectRuns(d).get('20261202T020000Z-bbbbbb')).toEqual({ acknowledged: false });
  });

  it('a manifest whose verdict is malformed is damage, named: the run is imported without it, and verify says so', async () => {
    const good = await repo.readDocument<RunManifest>('runs', '20261201T020000Z-aaaaaa');
    const id = '20261203T020000Z-cccccc';
    await repo.writeDocument('runs', id, { ...good, id, started: '2026-12-03T02:00:00.000Z', anomalies: { suspect: 'yes', findings: [], partitions: [], flaggedObjects: 0 } });
    const rebuilt = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'e.db'), skipDamaged: true, acceptDamage: true });
    expect(rebuilt.damage).toEqual([{ what: `runs/${id}`, problem: 'malformed anomalies; the run is imported without its anomaly verdict (not marked suspect)' }]);
    expect(rebuilt.runs).toBe(3);
    const e = Catalog.open(join(dir.path, 'e.db'), repo.id);
    open.push(e);
    expect(runVerdict(e, e.findRun(id)!.seq)).toBeUndefined();
    expect(e.versionsOfRun(e.findRun(id)!.seq, 0, 10)).toHaveLength(5);
    const checked = await verify({ repo, catalog: a, concurrency: 2, readData: 0 });
    expect(checked.damage.map((d) => [d.what, d.problem])).toEqual([[`runs/${id}`, expect.stringMatching(/^malformed anomalies; a catalog rebuild would import the run without/)]]);
  });
});
