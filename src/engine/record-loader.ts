/**
 * A run's record blobs into the catalog (catalog rebuild and sync). For a scoped catalog
 * (catalog/scope.ts) only the record blobs whose key range overlaps the scope are read, only the
 * lines inside it are kept, and their blobs are located from the lines themselves (`locs`), so
 * no index file is needed (docs/catalog.md "Scoped catalogs").
 */
import { completeShardAttempt, recordRunShard, supersededCompleteAttempts } from '../catalog/run-sets.js';
import { scopeHoldsKey, scopeOverlapsRange, type CatalogPrefix } from '../catalog/scope.js';
import { dropRunRecords, LOCATED_BY_RECORDS } from '../catalog/sync.js';
import type { Catalog } from '../catalog/catalog.js';
import type { ForgetDocument } from '../catalog/forget.js';
import type { FailureRecord, RecordedBlob, RunShard, VersionRecord } from '../catalog/types.js';
import { IntegrityError, errorMessage, isNotFound } from '../errors.js';
import { objectKey } from '../repository/layout.js';
import { BlobType, blobFlags, flagsCompressed } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import { inOrder } from '../util/in-order.js';
import { recordFinishedRun, type RunManifest } from './finalize.js';
import { recordCopiedRun } from '../catalog/copied-runs.js';
import { anomaliesProblem, recordSignals } from './import-anomalies.js';
import { isBlobLocation, shardProblem } from './rebuild-manifests.js';
import type { ImportTally } from './rebuild.js';
import { RecordWriter } from './record-writer.js';

/** Listed damage is capped so a badly damaged repository cannot exhaust memory; the counts stay exact. */
const MAX_LISTED = 1000;

/**
 * Whether a scoped catalog can import this run from its record lines alone: its manifest
 * locates its record blobs and (by the same writer) its record lines locate their blobs.
 */
export function recordsLocateBlobs(m: RunManifest): boolean {
  return m.recordRanges !== undefined && m.recordLocations !== undefined;
}

/** Streams each run's record blobs (a few read ahead) into the catalog, thousands of rows per transaction. */
export class RecordLoader {
  constructor(
    private readonly repo: Repository,
    private readonly catalog: Catalog,
    private readonly report: ImportTally,
    private readonly damaged: (what: string, problem: string) => void,
    private readonly ahead: number,
    private readonly checkSignal: () => void,
    /** The catalog's scope: only these keys are imported (null: every key). */
    private readonly scope: readonly CatalogPrefix[] | null = null,
  ) {}

  /**
   * Versions that forget documents still to be applied drop (keys of forgottenVersionKey): a
   * prune after that forget may have removed their blobs, so one whose blob is in no index file
   * is left out as the forget would leave it, not counted missing.
   */
  forgottenVersions: ReadonlySet<string> = new Set();

  async loadRun(m: RunManifest): Promise<void> {
    const seq = this.catalog.beginRun({ id: m.id, group: m.group, started: Date.parse(m.started), host: m.host });
    // Its record packs, which no version refers to: its group's in `cost`, as on the host that wrote them.
    if (m.recordLocations !== undefined) this.catalog.claimPacks(seq, m.recordLocations.map(([pack]) => pack));
    // A copied run (docs/copy.md): remembered apart from the run, so a forget of it does not make copy bring it again.
    const from = m.copiedFrom;
    if (typeof from?.repository === 'string' && typeof from.run === 'string') recordCopiedRun(this.catalog, from, m.id);
    const shard = this.shardOf(m);
    if (shard !== undefined) {
      recordRunShard(this.catalog, seq, shard);
      // A complete attempt whose index already has a complete attempt sorting first is
      // superseded: its versions would be the same keys recorded twice (docs/catalog.md "Run sets").
      const keeper = m.status === 'complete' ? completeShardAttempt(this.catalog, shard.set, shard.index) : null;
      if (keeper !== null && keeper < m.id) {
        recordFinishedRun(this.catalog, seq, m.status, Date.parse(m.finished), m.counters, undefined);
        return;
      }
    }
    // A version whose blob is in no index file is left out, and counted here.
    const writer = new RecordWriter(this.catalog, seq, (version, blob) => {
      if (this.forgottenVersions.has(forgottenVersionKey(version))) return;
      this.report.missingCount++;
      if (this.report.missing.length < MAX_LISTED) {
        this.report.missing.push({ run: m.id, bucket: version.bucket, key: version.key, versionId: version.versionId ?? null, blob });
      }
    });
    await this.readLines(m, this.recordBlobsToRead(m, this.scope), (text, line) => this.record(m.id, writer, text, line));
    writer.flush();
    // A malformed verdict costs the verdict, not the run's versions; it is reported, not guessed.
    const problem = anomaliesProblem(m.anomalies);
    if (problem !== null) this.damaged(objectKey('runs', m.id), `${problem}; the run is imported without its anomaly verdict (not marked suspect)`);
    recordFinishedRun(this.catalog, seq, m.status, Date.parse(m.finished), m.counters, problem === null ? m.anomalies : undefined);
    // Complete attempts of the index imported before, whose ids sort after this one, are superseded now.
    if (shard !== undefined && m.status === 'complete') {
      for (const other of supersededCompleteAttempts(this.catalog, shard.set, shard.index, m.id)) dropRunRecords(this.catalog, other);
    }
  }

  /**
   * Widening a scoped catalog in place (sync.ts): run `m`'s versions of the keys `holds` accepts
   * (and its failures of them, with `failures`), added to run row `seq` (the run they end in),
   * read from only the record blobs whose key range overlaps `read`. Returns the versions left
   * out because a blob is in no index file.
   */
  async addKeys(m: RunManifest, seq: number, read: readonly CatalogPrefix[], holds: (bucket: string, key: string) => boolean, failures: boolean): Promise<number> {
    let missing = 0;
    const writer = new RecordWriter(this.catalog, seq, (version, blob) => {
      if (this.forgottenVersions.has(forgottenVersionKey(version))) return;
      missing++;
      this.report.missingCount++;
      if (this.report.missing.length < MAX_LISTED) {
        this.report.missing.push({ run: m.id, bucket: version.bucket, key: version.key, versionId: version.versionId ?? null, blob });
      }
    });
    await this.readLines(m, this.recordBlobsToRead(m, read), (text, line) => this.record(m.id, writer, text, line, { holds, failures }));
    writer.flush();
    return missing;
  }

  /** Hands each line of the record blobs to `onLine`, a few blobs read ahead. */
  private async readLines(m: RunManifest, records: readonly string[], onLine: (text: string, line: number) => void): Promise<void> {
    // Lines normally end within their blob, but the format only promises that the concatenation is NDJSON.
    let carry: Buffer | null = null;
    let line = 0;
    await inOrder(
      records,
      Math.min(this.ahead, 4),
      async (hex) => {
        this.checkSignal();
        return this.readRecordBlob(m.id, hex);
      },
      (raw) => {
        if (raw === null) {
          carry = null; // the rest of a line cut by a missing blob is useless
          return;
        }
        const buf: Buffer = carry === null ? raw : Buffer.concat([carry, raw]);
        let start = 0;
        for (let nl = buf.indexOf(0x0a, start); nl >= 0; nl = buf.indexOf(0x0a, start)) {
          onLine(buf.toString('utf8', start, nl), ++line);
          start = nl + 1;
        }
        carry = start < buf.length ? buf.subarray(start) : null;
      },
    );
    const rest = carry as Buffer | null;
    if (rest !== null) onLine(rest.toString('utf8'), ++line);
  }

  /**
   * The record blobs to read: all of them, or for a scoped catalog those whose key range
   * overlaps the scope (every one when the manifest has no ranges). Blobs the manifest locates
   * are recorded in the catalog first, so none needs an index file.
   */
  private recordBlobsToRead(m: RunManifest, scope: readonly CatalogPrefix[] | null): string[] {
    const ranges = m.recordRanges;
    if (scope === null || ranges === undefined) return m.records;
    const wanted = m.records.flatMap((hex, i) => (scopeOverlapsRange(scope, ranges[i]!.first, ranges[i]!.last) ? [i] : []));
    const locations = m.recordLocations;
    if (locations !== undefined) {
      this.catalog.transaction(() => {
        for (const i of wanted) insertLocated(this.catalog, m.records[i]!, locations[i]!, BlobType.records);
      });
    }
    return wanted.map((i) => m.records[i]!);
  }

  /** The manifest's run-set membership; a malformed one is reported and the run imported as an ordinary run. */
  private shardOf(m: RunManifest): RunShard | undefined {
    const problem = shardProblem(m.shard);
    if (problem !== null) this.damaged(objectKey('runs', m.id), `${problem}; the run is imported as an ordinary run, not as a shard of its run set`);
    return problem === null ? m.shard : undefined;
  }

  /** One record blob's plaintext, or null (reported) when it is not in any index file or unreadable. */
  private async readRecordBlob(run: string, hex: string): Promise<Buffer | null> {
    const id = Buffer.from(hex, 'hex');
    const loc = this.catalog.blobLocation(id);
    if (loc === undefined) {
      this.damaged(`run ${run}`, `record blob ${hex} is in no index file; the versions it recorded are missing from the catalog`);
      return null;
    }
    try {
      const stored = await this.repo.readPackRange(loc.pack, loc.offset, loc.offset + loc.length);
      this.report.bytesRead += stored.length;
      if (stored.length !== loc.length) throw new IntegrityError(`pack ${loc.pack}: range returned ${stored.length} of ${loc.length} bytes (truncated pack?)`);
      return this.repo.decodeBlob(stored, { id, compressed: flagsCompressed(loc.flags), rawLength: loc.rawLength }, `pack ${loc.pack}`);
    } catch (err) {
      // A missing or damaged pack is damage to report; anything else (network, permissions) stops the rebuild.
      if (!(err instanceof IntegrityError) && !isNotFound(err)) throw err;
      this.damaged(`run ${run}`, `record blob ${hex} cannot be read (${errorMessage(err)}); the versions it recorded are missing from the catalog`);
      return null;
    }
  }

  private record(
    run: string,
    writer: RecordWriter,
    text: string,
    line: number,
    /** Widening: only these keys, and their failures only when `failures` (a malformed failure line was kept by the first import). */
    widening?: { holds: (bucket: string, key: string) => boolean; failures: boolean },
  ): void {
    const holds = widening?.holds ?? ((bucket: string, key: string): boolean => scopeHoldsKey(this.scope, bucket, key));
    if (text.trim() === '') return;
    let rec: { t?: unknown } & Record<string, unknown>;
    try {
      rec = JSON.parse(text) as typeof rec;
    } catch {
      this.damaged(`run ${run}`, `record ${line} is not JSON; skipped`);
      return;
    }
    if (rec.t === 'v') {
      const { t: _t, sig, locs, ...version } = rec as unknown as VersionRecord & { t: 'v'; sig?: unknown };
      const signals = recordSignals(sig);
      if (signals !== undefined) version.signals = signals;
      if (version.reinstated !== undefined && version.reinstated !== true) delete version.reinstated;
      if (typeof version.bucket !== 'string' || typeof version.key !== 'string' || !Array.isArray(version.blobs)) {
        this.damaged(`run ${run}`, `record ${line} is not a valid version record; skipped`);
        return;
      }
      if (!holds(version.bucket, version.key)) return;
      // A scoped catalog reads no index file for runs whose lines locate their blobs.
      if (this.scope !== null && Array.isArray(locs) && locs.length === version.blobs.length && locs.every(isBlobLocation)) {
        version.blobs.forEach((hex, i) => {
          if (typeof hex === 'string') writer.locate(hex, locs[i]!);
        });
      }
      // Its blobs are looked up when the writer flushes: one in no index file makes it missing then.
      writer.addVersion(version);
    } else if (rec.t === 'f') {
      const { bucket, key, versionId, code, message } = rec as unknown as FailureRecord;
      const named = typeof bucket === 'string' && typeof key === 'string';
      if (widening === undefined ? named && !holds(bucket, key) : !widening.failures || !named || !holds(bucket, key)) return;
      writer.addFailure({ bucket, key, versionId: versionId ?? null, code: String(code), message: String(message) });
    } else {
      // A later format revision may add record types; they do not change what versions exist.
      return;
    }
  }
}

/**
 * Records where a blob is (a record line's or a manifest's location) unless the catalog knows
 * it already: a location learned from an index file, or moved there by a prune document, wins.
 */
export function insertLocated(catalog: Catalog, hex: string, loc: RecordedBlob, type: BlobType): void {
  const hash = Buffer.from(hex, 'hex');
  if (catalog.hasBlob(hash)) return;
  const [pack, size, offset, length, rawLength, compressed] = loc;
  // The run that recorded it had written an index file listing it before its manifest: marked
  // indexed, so a backup on this (shard's) catalog does not list it in an index file again, and a
  // prune document's deletion does not take it for an unfinished run's unlisted blob.
  catalog.insertPack({ name: pack, size, blobs: [{ hash, offset, length, rawLength, flags: blobFlags(compressed === 1, type) }] }, null, LOCATED_BY_RECORDS);
}

export { LOCATED_BY_RECORDS };

/** A version as forget documents list it (DroppedVersion), as one string. */
export function forgottenVersionKey(v: Pick<VersionRecord, 'bucket' | 'key' | 'versionId' | 'validFrom' | 'deleteMarker'>): string {
  return JSON.stringify([v.bucket, v.key, v.versionId, v.validFrom, v.deleteMarker ? 1 : 0]);
}

/** The versions forget documents drop, as forgottenVersionKey strings. */
export function forgottenVersionKeys(docs: Iterable<ForgetDocument>): Set<string> {
  const keys = new Set<string>();
  for (const doc of docs) for (const [bucket, key, versionId, validFrom, deleteMarker] of doc.dropped) keys.add(JSON.stringify([bucket, key, versionId, validFrom, deleteMarker]));
  return keys;
}
