// Shard attempts of a run set written to a repository through the real finalize path (until the
// backup side, `backup --shards`, writes them): each attempt on its own empty catalog, as a pod
// with an empty HOME would, its objects' content packed and indexed, its manifest carrying the
// `shard` field finalizeRun takes from the catalog row.
import { createHash } from 'node:crypto';
import { Catalog } from '../../src/catalog/catalog.js';
import { recordRunShard } from '../../src/catalog/run-sets.js';
import type { RunAnomalies } from '../../src/catalog/anomaly-types.js';
import type { RunShard, RunStatus, ShardRange, VersionRecord } from '../../src/catalog/types.js';
import { newRunId } from '../../src/engine/run-id.js';
import { emptyCounters } from '../../src/engine/events.js';
import { finalizeRun, type RunManifest } from '../../src/engine/finalize.js';
import { BlobType } from '../../src/repository/pack.js';
import { Packer, packRecord } from '../../src/repository/packer.js';
import type { Repository } from '../../src/repository/repository.js';

export interface ShardObject {
  bucket: string;
  key: string;
  /** Content; null: a delete marker (the key was deleted from the source). */
  body: string | null;
  /** When the attempt observed it (ms); default: the attempt's start. */
  at?: number;
}

export interface ShardAttemptSpec {
  group: string;
  set: string;
  name: string;
  index: number;
  of: number;
  range?: ShardRange;
  /** Start time (the attempt's id is named by it unless `id` is given). */
  started: number;
  id?: string;
  status?: RunStatus;
  objects: ShardObject[];
  /** The attempt's anomaly verdict (recorded in its manifest, as a backup that judged its range would). */
  anomalies?: RunAnomalies;
}

/** Writes one shard attempt (packs, index, manifest) and returns its manifest. */
export async function writeShardAttempt(repo: Repository, spec: ShardAttemptSpec): Promise<RunManifest> {
  const catalog = Catalog.open(':memory:', repo.id);
  try {
    const id = spec.id ?? newRunId(new Date(spec.started));
    const seq = catalog.beginRun({ id, group: spec.group, started: spec.started, host: `shard-${spec.index}` });
    const shard: RunShard = { set: spec.set, name: spec.name, index: spec.index, of: spec.of, range: spec.range ?? {} };
    recordRunShard(catalog, seq, shard);
    const packer = new Packer(repo, { onPackWritten: (pack) => catalog.transaction(() => catalog.insertPack(packRecord(pack), seq)) });
    const records: VersionRecord[] = [];
    const counters = emptyCounters();
    for (const o of spec.objects) {
      const at = o.at ?? spec.started;
      if (o.body === null) {
        records.push({ bucket: o.bucket, key: o.key, versionId: null, deleteMarker: true, size: 0, etag: '', lastModified: at, validFrom: at, blobs: [] });
        counters.objectsDeleted++;
        continue;
      }
      const raw = Buffer.from(o.body);
      const blob = repo.encodeBlob(raw, BlobType.data);
      if (!catalog.hasBlob(blob.id)) await packer.add(blob);
      await packer.flush();
      records.push({
        bucket: o.bucket,
        key: o.key,
        versionId: null,
        deleteMarker: false,
        size: raw.length,
        etag: createHash('md5').update(raw).digest('hex'),
        lastModified: at,
        validFrom: at,
        blobs: [blob.id.toString('hex')],
      });
      counters.objectsSeen++;
      counters.objectsNew++;
      counters.bytesRead += raw.length;
    }
    catalog.transaction(() => catalog.insertVersions(seq, records));
    counters.durationMs = 1000;
    const run = catalog.listRuns()[0]!;
    return await finalizeRun(repo, catalog, packer, run, spec.status ?? 'complete', counters, undefined, spec.anomalies);
  } finally {
    catalog.close();
  }
}
