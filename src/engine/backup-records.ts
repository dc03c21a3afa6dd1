/**
 * Backup: what a run observed, as catalog records (object versions, delete markers, failures).
 * Records of stored objects reach the writer only once their blobs are in written packs
 * (backup-archiver.ts); nothing is written in a dry run.
 */
import type { ObjectSignal } from '../catalog/anomaly-types.js';
import type { Catalog } from '../catalog/catalog.js';
import type { LatestVersion, RunCounters, StoredMeta, VersionRecord } from '../catalog/types.js';
import type { StorageError } from '../errors.js';
import type { ObjectEntry, ObjectMeta, SkippedEntry } from '../storage/types.js';
import type { ObjectRead } from './backup-transfer.js';
import type { EventSink } from './events.js';
import { RecordWriter } from './record-writer.js';

/** Turns observations into catalog records (nothing in a dry run). */
export class RunWriter {
  private readonly writer: RecordWriter | null;

  constructor(
    private readonly catalog: Catalog,
    private readonly events: EventSink | undefined,
    runSeq: number | null,
    private readonly counters: RunCounters,
  ) {
    this.writer = runSeq === null ? null : new RecordWriter(catalog, runSeq);
  }

  version(record: VersionRecord): void {
    this.writer?.addVersion(record);
  }

  /**
   * An unversioned key that disappeared: a synthetic delete marker stamped with the time it was
   * seen gone: the run's time, or `at`, the time of the inventory report the run listed from
   * (the key was gone then), so that what another run saw of the key after the report (a watch
   * run on another host, its records merged later) stays newer.
   */
  deleted(bucket: string, key: string, previousValidFrom: number, at = Date.now()): void {
    const now = at;
    this.writer?.addVersion({
      bucket,
      key,
      versionId: null,
      deleteMarker: true,
      size: 0,
      etag: '',
      lastModified: now,
      validFrom: Math.max(now, previousValidFrom + 1),
      blobs: [],
    });
  }

  /**
   * A delete marker listed by a versioned bucket; `reinstated`: one the catalog has, current
   * again; `validFrom`: when it starts if not at its time (a newer version shares its millisecond).
   */
  deleteMarker(bucket: string, entry: ObjectEntry, reinstated?: { previous: LatestVersion | null; seenAt?: number | undefined }, validFrom?: number): void {
    const at = entry.lastModified.getTime();
    const record: VersionRecord = { bucket, key: entry.key, versionId: entry.versionId, deleteMarker: true, size: 0, etag: '', lastModified: at, validFrom: validFrom ?? at, blobs: [] };
    this.writer?.addVersion(reinstated === undefined ? record : reinstate(record, reinstated.previous, reinstated.seenAt));
  }

  /**
   * A catalogued version (row `version`) that is the key's current version again: the same
   * record (content, metadata, blobs: nothing is read) from the run's observation time on
   * (`seenAt`, see reinstate).
   */
  reinstated(version: number, previous: LatestVersion | null, seenAt?: number): void {
    if (this.writer === null) return;
    this.writer.addVersion(reinstate(this.catalog.versionRecordAt(version), previous, seenAt));
  }

  /**
   * An entry passed over on purpose (a symbolic link or special file in a directory source):
   * kept with the run's failures, under its own code, so `runs show --failures` lists it, but
   * counted apart: it does not make the run partial.
   */
  skipped(bucket: string, entry: SkippedEntry): void {
    this.counters.objectsSkipped = (this.counters.objectsSkipped ?? 0) + 1;
    this.events?.({ type: 'warning', message: `skipped ${bucket}/${entry.key}: ${entry.message}` });
    this.writer?.addFailure({ bucket, key: entry.key, versionId: null, code: entry.code, message: entry.message });
  }

  failed(bucket: string, entry: { key: string; versionId: string | null }, err: StorageError): void {
    this.counters.objectsFailed++;
    const failure = { bucket, key: entry.key, versionId: entry.versionId, code: err.backendCode, message: err.message };
    this.events?.({ type: 'failure', ...failure });
    this.writer?.addFailure(failure);
  }

  flush(): void {
    this.writer?.flush();
  }
}

/**
 * Whether a changed object read back as the catalogued version after all: what the listing said
 * about it differed only because the listing was damaged in flight (an altered ETag cannot be
 * told from a real one).
 */
export function isCataloguedVersion(read: ObjectRead, previous: LatestVersion | null): boolean {
  return previous !== null && read.meta.etag === previous.etag && read.size === previous.size && sameSecond(read.meta.lastModified.getTime(), previous.lastModified);
}

/** The record of a version read from `bucket`, with what anomaly detection saw in it (none: undefined). */
export function versionRecord(bucket: string, entry: ObjectEntry, previous: LatestVersion | null, read: ObjectRead, signals?: ObjectSignal[]): VersionRecord {
  const { meta, size, tags, blobs } = read;
  // Same object as listed (etag): keep the listing's timestamp, which has ms precision (GET's has seconds).
  const lastModified = (meta.etag === entry.etag ? entry.lastModified : meta.lastModified).getTime();
  return {
    bucket,
    key: entry.key,
    versionId: meta.versionId,
    deleteMarker: false,
    size,
    etag: meta.etag,
    lastModified,
    validFrom: previous === null ? lastModified : Math.max(lastModified, previous.validFrom + 1),
    ...((entry.storageClass ?? meta.storageClass) === undefined ? {} : { storageClass: (entry.storageClass ?? meta.storageClass)! }),
    meta: storedMeta(meta, tags),
    blobs,
    ...(signals === undefined || signals.length === 0 ? {} : { signals }),
  };
}

/**
 * When a version of a file starts (a source whose times the writer sets: StoreCapabilities.
 * writerTimes). Its modification time dates the change only when it falls after everything the
 * catalog already observed of the key (`floor`: its previous version or delete marker, the end
 * of the group's previous run) and is not in the future; otherwise (`cp -p`, `tar x`, a rename,
 * a restore, a planted file backdated by an attacker, a clock ahead) the version starts when this
 * run saw it (`seenAt`). So `--at` a time never shows a state no run saw, and a rollback to a
 * time before an attack finds a backdated planted file new.
 */
export function fileVersionStart(mtime: number, floor: number | null, seenAt: number): number {
  const after = floor ?? -Infinity;
  return mtime > after && mtime <= seenAt ? mtime : Math.max(seenAt, after + 1);
}

/**
 * `record` as a reinstatement (VersionRecord.reinstated): the key's state from when the run saw
 * it (`seenAt`: now, or the time of the inventory report it listed from); when it came back
 * between two runs is unknown. Always after the record it replaces.
 */
export function reinstate(record: VersionRecord, previous: LatestVersion | null, seenAt = Date.now()): VersionRecord {
  return { ...record, validFrom: previous === null ? seenAt : Math.max(seenAt, previous.validFrom + 1), reinstated: true };
}

/** GET's Last-Modified has whole seconds; a listing's may have milliseconds. */
function sameSecond(a: number, b: number): boolean {
  return Math.floor(a / 1000) === Math.floor(b / 1000);
}

function storedMeta(meta: ObjectMeta, tags: Record<string, string> | undefined): StoredMeta {
  const out: StoredMeta = {};
  if (tags !== undefined && Object.keys(tags).length > 0) out.tags = tags;
  if (meta.contentType !== undefined) out.contentType = meta.contentType;
  if (meta.contentEncoding !== undefined) out.contentEncoding = meta.contentEncoding;
  if (meta.cacheControl !== undefined) out.cacheControl = meta.cacheControl;
  if (meta.contentDisposition !== undefined) out.contentDisposition = meta.contentDisposition;
  if (Object.keys(meta.metadata).length > 0) out.metadata = meta.metadata;
  if (meta.mode !== undefined) out.mode = meta.mode;
  return out;
}

/**
 * Whether an object's metadata (a HEAD) is the recorded one, as `storedMeta` records it: content
 * type, encoding, cache control, disposition and user metadata. Tags and mode are not compared (a
 * HEAD shows neither); a content type the backup did not record (a file of a `path:` source) is
 * the server's default, so any matches it.
 */
export function holdsStoredMeta(meta: ObjectMeta, recorded: StoredMeta): boolean {
  if (recorded.contentType !== undefined && meta.contentType !== recorded.contentType) return false;
  if (meta.contentEncoding !== recorded.contentEncoding || meta.cacheControl !== recorded.cacheControl || meta.contentDisposition !== recorded.contentDisposition) return false;
  const want = recorded.metadata ?? {};
  const have = meta.metadata;
  return Object.keys(want).length === Object.keys(have).length && Object.entries(want).every(([k, v]) => have[k] === v);
}
