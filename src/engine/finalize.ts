import { hostname } from 'node:os';
import { setImmediate } from 'node:timers/promises';
import { recordRunAnomalies } from '../catalog/anomalies.js';
import type { RunAnomalies } from '../catalog/anomaly-types.js';
import type { Catalog } from '../catalog/catalog.js';
import { RunVersionsByKey, blobLocationOf, failuresOfRunByKey } from '../catalog/version-records.js';
import type { RecordedBlob, RunCounters, RunRow, RunShard, RunStatus } from '../catalog/types.js';
import { StorageError } from '../errors.js';
import { BlobType, flagsCompressed, flagsType } from '../repository/pack.js';
import type { Packer } from '../repository/packer.js';
import type { Repository } from '../repository/repository.js';
import { compareBucketKeys } from './shards.js';

/** One entry of an index file: [blob id hex, type, offset, length, raw length, compressed 0|1]. */
export type IndexBlobEntry = [string, number, number, number, number, number];

export interface IndexDocument {
  version: 1;
  packs: { id: string; size: number; blobs: IndexBlobEntry[] }[];
}

/** An index file's pack whose blob entries are JSON text already (see indexDocumentJson). */
interface PackEntriesJson {
  size: number;
  blobs: string[];
}

export interface RunManifest {
  version: 1;
  id: string;
  group: string;
  host: string;
  started: string;
  finished: string;
  status: RunStatus;
  counters: RunCounters;
  /** Record blobs: NDJSON of this run's version records ({"t":"v",...}) and failures ({"t":"f",...}). */
  records: string[];
  /**
   * Per record blob (same length and order as `records`), the least and the greatest (bucket,
   * key) of its lines: a reader that needs one prefix reads only the blobs whose range overlaps
   * it. Absent in manifests written before it existed (every blob may hold any key).
   */
  recordRanges?: RecordRange[];
  /**
   * Per record blob (same length and order as `records`), where it is stored. A manifest that
   * has it also has `recordRanges`, and its version records carry their blobs' locations
   * (`locs`): a scoped sync reads no index file. Absent in manifests written before it existed.
   */
  recordLocations?: RecordedBlob[];
  /** Index files this run wrote, as it went (checkpoints) and when it ended (older ones may also hold its blobs). */
  indexes: string[];
  /**
   * Anomaly detection's verdict (docs/anomalies.md); absent in runs recorded before it existed
   * and in runs recorded after their process died (nobody judged them).
   */
  anomalies?: RunAnomalies;
  /**
   * Present when the run is a shard attempt of a run set (docs/scale-out.md "Shards"): taken
   * from the run's catalog row (`recordRunShard` when the shard begins).
   */
  shard?: RunShard;
  /**
   * Present when `lakeguard copy` wrote this manifest (docs/copy.md): the repository and run it
   * was copied from. `started`, `finished`, `host`, `status` and `counters` are the source run's.
   */
  copiedFrom?: CopiedFrom;
}

/** Where a copied run came from: the source repository's id and the run's id there. */
export interface CopiedFrom {
  repository: string;
  run: string;
}

/** The (bucket, key) range of a record blob's lines, both ends included. */
export interface RecordRange {
  first: [bucket: string, key: string];
  last: [bucket: string, key: string];
}

/** Blob entries per index file (prune writes its new index files in the same size). */
export const INDEX_PAGE = 50_000;
const RECORD_BLOB_TARGET = 4 * 1024 * 1024;

/**
 * Writes index files for every blob in written packs that no index lists yet: this run's and
 * those of runs that crashed before writing theirs. Returns the new index file names.
 * `caughtUp`: stop after an index file that is not full (a progress checkpoint: packs written
 * meanwhile are the next checkpoint's; without it, a fast run kept one checkpoint writing a small
 * index file per pack, and its checkpoint document waited behind them).
 */
export async function writePendingIndexes(repo: Repository, catalog: Catalog, opts: { caughtUp?: boolean } = {}): Promise<string[]> {
  const names: string[] = [];
  for (;;) {
    // Each blob becomes its JSON text as its row is read: a page of 50,000 blobs held as row
    // objects and entry arrays took ~40 MB of heap at the end of a 1,000,000-object run.
    const rows: number[] = [];
    const packs = new Map<string, PackEntriesJson>();
    for (const r of catalog.unindexedBlobs(INDEX_PAGE)) {
      rows.push(r.row);
      let pack = packs.get(r.pack);
      if (pack === undefined) {
        pack = { size: r.packSize, blobs: [] };
        packs.set(r.pack, pack);
      }
      const entry: IndexBlobEntry = [r.hash.toString('hex'), flagsType(r.flags), r.offset, r.length, r.rawLength, flagsCompressed(r.flags) ? 1 : 0];
      pack.blobs.push(JSON.stringify(entry));
    }
    if (rows.length === 0) return names;
    const name = await repo.writeDocumentJson('index', null, indexDocumentJson(packs));
    catalog.markIndexed(name, rows);
    names.push(name);
    if (opts.caughtUp === true && rows.length < INDEX_PAGE) return names;
  }
}

/** The JSON text of an IndexDocument whose blob entries are JSON text already (the same text as JSON.stringify of the document). */
export function indexDocumentJson(packs: ReadonlyMap<string, PackEntriesJson>): string {
  const parts: string[] = [];
  for (const [id, pack] of packs) parts.push(`{"id":${JSON.stringify(id)},"size":${JSON.stringify(pack.size)},"blobs":[${pack.blobs.join(',')}]}`);
  return `{"version":1,"packs":[${parts.join(',')}]}`;
}

/**
 * Completes a run in the repository, in the crash-safe order: its records go into packs,
 * packs are flushed, index files written, and only then the manifest that refers to them.
 */
export async function finalizeRun(
  repo: Repository,
  catalog: Catalog,
  packer: Packer,
  run: RunRow,
  status: RunStatus,
  counters: RunCounters,
  /** Called once everything but the manifest is written, to complete the counters it records. */
  beforeManifest: () => void = () => {},
  /** The run's anomaly verdict, recorded in its manifest and in the catalog. */
  anomalies?: RunAnomalies,
  /** Index files the run wrote before it ended (progress checkpoints): the manifest names them too. */
  indexesWritten: readonly string[] = [],
  /** A copied run (copy.ts): the source run's end time and where it came from, recorded as they are. */
  copy?: { finished: number; from: CopiedFrom },
): Promise<RunManifest> {
  // Records in (bucket, key) order, so each blob covers one narrow key range (recordRanges).
  const records: string[] = [];
  const recordRanges: RecordRange[] = [];
  let lines: string[] = [];
  let size = 0;
  let range: RecordRange | null = null;
  const emit = async (): Promise<void> => {
    if (lines.length === 0 || range === null) return;
    const raw = Buffer.from(lines.join('\n') + '\n');
    const blob = repo.encodeBlob(raw, BlobType.records);
    const hex = blob.id.toString('hex');
    if (!catalog.hasBlob(blob.id)) await packer.add(blob);
    records.push(hex);
    recordRanges.push(range);
    lines = [];
    size = 0;
    range = null;
  };
  const push = async (line: string, bucket: string, key: string): Promise<void> => {
    lines.push(line);
    size += line.length + 1;
    const at: [string, string] = [bucket, key];
    if (range === null) range = { first: at, last: at };
    else if (compareBucketKeys(at, range.first) < 0) range.first = at;
    else if (compareBucketKeys(at, range.last) > 0) range.last = at;
    if (size >= RECORD_BLOB_TARGET) await emit();
  };

  const versions = new RunVersionsByKey(catalog, run.seq);
  try {
    for (;;) {
      const page = versions.page(5000);
      if (page.length === 0) break;
      for (const { row: _row, signals, ...record } of page) {
        await push(JSON.stringify({ t: 'v', ...record, ...(signals === undefined ? {} : { sig: signals }) }), record.bucket, record.key);
      }
      // A page is CPU work only (its pack uploads rarely wait): without this, the records of a
      // 1,000,000-object run held the event loop for 11 s, and progress and Ctrl-C with it.
      await setImmediate();
    }
  } finally {
    versions.close();
  }
  for (const f of failuresOfRunByKey(catalog, run.seq)) await push(JSON.stringify({ t: 'f', ...f }), f.bucket, f.key);
  await emit();
  await packer.flush();
  // Every record blob is in a written pack now (or was already), so the catalog locates it.
  const recordLocations = records.map((hex) => {
    const loc = blobLocationOf(catalog, Buffer.from(hex, 'hex'));
    if (loc === undefined) throw new Error(`finalize: record blob ${hex} of run ${run.id} has no pack`);
    return loc;
  });
  const indexes = [...indexesWritten, ...(await writePendingIndexes(repo, catalog))];
  beforeManifest();

  const finished = copy?.finished ?? Date.now();
  const manifest: RunManifest = {
    version: 1,
    id: run.id,
    group: run.group,
    host: run.host ?? hostname(),
    started: new Date(run.started).toISOString(),
    finished: new Date(finished).toISOString(),
    status,
    counters,
    records,
    recordRanges,
    recordLocations,
    indexes,
    ...(anomalies === undefined ? {} : { anomalies }),
    ...(run.shard === undefined ? {} : { shard: run.shard }),
    ...(copy === undefined ? {} : { copiedFrom: copy.from }),
  };
  try {
    await repo.writeDocument('runs', run.id, manifest);
  } catch (err) {
    // Recovering a run that died after writing its manifest: the manifest stands as written.
    if (!(err instanceof StorageError && err.code === 'PreconditionFailed')) throw err;
    const written = await repo.readDocument<RunManifest>('runs', run.id);
    recordFinishedRun(catalog, run.seq, written.status, Date.parse(written.finished), written.counters, written.anomalies);
    return written;
  }
  recordFinishedRun(catalog, run.seq, status, finished, counters, anomalies);
  return manifest;
}

/** Marks a run finished in the catalog with its verdict, in one transaction (backup, sync, rebuild). */
export function recordFinishedRun(catalog: Catalog, seq: number, status: RunStatus, finished: number, counters: RunCounters, anomalies: RunAnomalies | undefined): void {
  catalog.transaction(() => {
    catalog.finishRun(seq, status, finished, counters);
    if (anomalies !== undefined) recordRunAnomalies(catalog, seq, anomalies);
  });
}
