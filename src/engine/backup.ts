import { createHash, randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { hostname } from 'node:os';
import pLimit from 'p-limit';
import type { Catalog } from '../catalog/catalog.js';
import type { LatestVersion, RunCounters, RunRow, RunStatus, StoredMeta, VersionRecord } from '../catalog/types.js';
import { InterruptedError, StorageError, errorMessage } from '../errors.js';
import type { Group, Policy } from '../policy/types.js';
import { chunkStream } from '../repository/chunker.js';
import { RepositoryLock } from '../repository/locks.js';
import { BlobType } from '../repository/pack.js';
import { Packer, packRecord } from '../repository/packer.js';
import type { EncodedBlob, Repository } from '../repository/repository.js';
import { statsDelta, type ObjectEntry, type ObjectMeta, type RequestStats, type SkippedEntry } from '../storage/types.js';
import { isProcessAlive } from '../util/process.js';
import { backoffDelay } from '../util/retry.js';
import { TaskGroup } from '../util/task-group.js';
import { emptyCounters, noEvents, type BackupSummary, type EventSink } from './events.js';
import { finalizeRun } from './finalize.js';
import { RecordWriter } from './record-writer.js';
import { scanRange, scanVersions, type Change, type KeyRange } from './scan.js';
import { openSource, type OpenedSource } from './sources.js';

export interface BackupOptions {
  repo: Repository;
  catalog: Catalog;
  policy: Policy;
  group: Group;
  dryRun?: boolean;
  events?: EventSink;
  signal?: AbortSignal;
  /** Already opened sources (tests); by default opened from the policy. */
  sources?: OpenedSource[];
  /** Listing ranges of incremental runs (tests): keys per range, and the fewest keys to split at all. */
  listRanges?: { keysPerRange: number; minKeys: number };
  /**
   * A shared lock the caller holds for this and other groups (the backup command takes one for
   * all of them); by default the run takes and releases its own.
   */
  lock?: RepositoryLock;
  /**
   * The repository's request counts to count this run's requests from (default: at its start).
   * The backup command passes the counts from before its lock to its first group, so that the
   * lock's requests are a run's (the cost estimate is built from runs' request counts).
   */
  repositoryRequestsBefore?: RequestStats;
}

/** Listing fan-out: descend one more level while a level has fewer sub-prefixes than this factor × list concurrency. */
const MAX_FANOUT_DEPTH = 3;
/**
 * Catalogued keys per listing range of an incremental run. The last page of a range overshoots
 * into the next one by up to 999 keys (listed twice, ignored once): at 20,000 that is <= 5 %.
 */
const RANGE_KEYS = 20_000;
/** Below this many catalogued keys a prefix is listed with the delimiter fan-out (a seed, or nearly). */
const MIN_KEYS_FOR_RANGES = 1000;
/** Reads of one object (a body cut off or altered in flight is read again). */
const OBJECT_ATTEMPTS = 5;
/** Objects whose new blobs fit in this many bytes are checksummed before anything is stored. */
const VERIFY_BEFORE_STORE = 32 * 1024 * 1024;
/** Storage classes that cannot be read without a restore request. */
const ARCHIVED = new Set(['GLACIER', 'DEEP_ARCHIVE']);
const PROGRESS_EVERY_MS = 500;
/**
 * Objects read but not yet durable (their packs are still open or uploading) keep their records
 * in memory. Tiny objects fill a 16 MiB pack slowly (12,000 objects of 1.3 KiB stored), and with
 * five packs open or in flight those records took 180 MB of heap; past this many, the open pack
 * is sealed early instead. Packs stay large enough for <= 1 PUT per 1,000 objects.
 */
const MAX_PENDING_RECORDS = 8000;

export function newRunId(at: Date): string {
  return `${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/**
 * Backs up one protection group: lists every source in parallel with a prefix fan-out,
 * merge-joins each listing with the catalog, and copies only new or changed objects into
 * packs. The run is recorded as complete, partial (some objects could not be read: each is
 * listed), failed, or interrupted.
 */
export async function backupGroup(opts: BackupOptions): Promise<BackupSummary> {
  const { repo, catalog, policy, group } = opts;
  const dryRun = opts.dryRun ?? false;
  const events = opts.events ?? noEvents;
  const startedAt = new Date();
  const runId = newRunId(startedAt);
  const counters = emptyCounters();
  const sources = opts.sources ?? group.sources.map((s) => openSource(s, policy, { maxSockets: policy.concurrency.transfer * 2 }));
  const repoStatsBefore = opts.repositoryRequestsBefore ?? repo.requestCounts();
  await Promise.all(
    sources.map(async (s) => {
      s.versioned ??= (await s.objectStore.versioningEnabled?.().catch((err: unknown) => {
        if (isUnreadable(err)) return false; // the listing reports it, as a failure of this source
        throw err;
      })) ?? false;
    }),
  );

  if (dryRun) {
    const ctx = new RunContext(opts, sources, counters, null, null);
    await ctx.scanAll();
    counters.durationMs = Date.now() - startedAt.getTime();
    addRequests(counters, sources.map((s) => s.objectStore.stats));
    return { runId, group: group.name, status: counters.objectsFailed > 0 ? 'partial' : 'complete', dryRun, counters };
  }

  const lock = opts.lock ?? (await RepositoryLock.acquire(repo, 'shared', `backup of group ${group.name}`));
  try {
    // A lost lock (removed elsewhere, or its refresh refused) stops the run like an interruption,
    // with its own error (exit 11); nothing more is recorded in the repository without it.
    lock.throwIfLost();
    const signal = opts.signal === undefined ? lock.signal : AbortSignal.any([opts.signal, lock.signal]);
    setMaxListeners(0, signal); // every request in flight listens on it
    const runOpts: BackupOptions = { ...opts, signal };
    const run: RunRow = {
      seq: 0,
      id: runId,
      group: group.name,
      started: startedAt.getTime(),
      finished: null,
      status: 'running',
      host: hostname(),
      counters: null,
    };
    run.seq = catalog.beginRun({ id: run.id, group: run.group, started: run.started, host: run.host!, pid: process.pid });
    const packer = new Packer(repo, {
      onPackWritten: (pack) => {
        counters.packsWritten++;
        catalog.transaction(() => catalog.insertPack(packRecord(pack), run.seq));
      },
    });
    await recoverOrphanedRuns(repo, catalog, packer, events);
    const ctx = new RunContext(runOpts, sources, counters, packer, run.seq);
    let status: RunStatus;
    let fatal: unknown = null;
    try {
      await ctx.scanAll();
      await packer.flush();
      await ctx.settled();
      status = counters.objectsFailed > 0 ? 'partial' : 'complete';
    } catch (err) {
      // Requests cut short by the abort signal fail with their own errors: it is an interruption.
      fatal = lock.signal.aborted
        ? lock.signal.reason
        : opts.signal?.aborted && !(err instanceof InterruptedError)
          ? new InterruptedError(`backup of group ${group.name} interrupted`)
          : err;
      status = fatal instanceof InterruptedError ? 'interrupted' : 'failed';
    }
    ctx.writer.flush();
    const countRequests = (): void => {
      counters.durationMs = Date.now() - startedAt.getTime();
      counters.requests = emptyCounters().requests;
      addRequests(counters, [...sources.map((s) => s.objectStore.stats), statsDelta(repoStatsBefore, repo.requestCounts())]);
    };
    countRequests();
    // Without the lock a prune may have removed what this run wrote: write no index or manifest
    // that could name a deleted pack. The run stays in the catalog as a dead process's, and the
    // next backup on this host records it (recoverOrphanedRuns), under its own lock.
    lock.throwIfLost();
    try {
      // Record what was stored even when the run failed: its versions are real and restorable.
      await finalizeRun(repo, catalog, packer, run, status, counters, () => {
        lock.throwIfLost();
        countRequests();
      });
    } catch (err) {
      if (fatal === null) throw err;
      events({ type: 'warning', message: `could not record the failed run ${runId} in the repository: ${errorMessage(err)}` });
    }
    if (fatal !== null) throw fatal;
    return { runId, group: group.name, status, dryRun, counters };
  } finally {
    if (opts.lock === undefined) await lock.release().catch(() => {});
  }
}

/**
 * Runs of this host whose process died (killed, power loss) stay "running" in the catalog,
 * with versions whose packs were written but no manifest: record them now, as interrupted,
 * so the repository knows every version the catalog does (and a rebuild loses nothing).
 */
async function recoverOrphanedRuns(repo: Repository, catalog: Catalog, packer: Packer, events: EventSink): Promise<void> {
  for (const found of catalog.orphanedRuns(hostname(), isProcessAlive)) {
    // Named anew, by the time it is recorded: other hosts' catalogs find new manifests by
    // listing runs/ after a time marker, which a manifest named at its old start would precede.
    const orphan = { ...found, id: newRunId(new Date()) };
    catalog.renameRun(orphan.seq, orphan.id);
    events({ type: 'warning', message: `run ${found.id} (group ${orphan.group}) was interrupted; recording what it stored as interrupted run ${orphan.id}` });
    await finalizeRun(repo, catalog, packer, orphan, 'interrupted', orphan.counters ?? emptyCounters());
  }
}

/** State of one backup run while it scans and transfers. */
class RunContext {
  readonly writer: RunWriter;
  private readonly listLimit: ReturnType<typeof pLimit>;
  private readonly transferLimit: ReturnType<typeof pLimit>;
  /** Listings of prefixes (each may spawn more) and object transfers, each bounded by its limiter. */
  private readonly listings = new TaskGroup();
  private readonly transfers = new TaskGroup();
  /** Blobs added to a pack that is not written yet: dedup against them too. */
  private readonly pendingBlobs = new Map<string, Promise<void>>();
  /** Records waiting for their packs to be written. */
  private readonly durable = new TaskGroup();
  /** Set while the open pack is sealed early because too many records wait (MAX_PENDING_RECORDS). */
  private draining: Promise<void> | null = null;
  private lastProgress = 0;

  constructor(
    private readonly opts: BackupOptions,
    private readonly sources: OpenedSource[],
    private readonly counters: RunCounters,
    private readonly packer: Packer | null,
    runSeq: number | null,
  ) {
    this.listLimit = pLimit(opts.policy.concurrency.list);
    this.transferLimit = pLimit(opts.policy.concurrency.transfer);
    this.writer = new RunWriter(opts, runSeq, counters);
  }

  async scanAll(): Promise<void> {
    for (const source of this.sources) {
      for (const prefix of source.prefixes) {
        const ranges = source.versioned ? null : this.keyRanges(source, prefix);
        if (ranges === null) this.listings.spawn(() => this.listLimit(() => this.scan(source, prefix, 0)));
        else for (const range of ranges) this.listings.spawn(() => this.listLimit(() => this.scan(source, prefix, MAX_FANOUT_DEPTH, range)));
      }
    }
    // Listings spawn more listings (sub-prefixes) and transfers: wait until none is left.
    // Wait for both even after a failure, so nothing still writes while the run is finalized.
    await this.listings.waitBelow(1);
    await this.transfers.waitBelow(1);
    this.throwIfFatal();
    this.progress(true);
  }

  /** Waits until every stored object's record reached the catalog writer. */
  async settled(): Promise<void> {
    await this.durable.wait();
  }

  private throwIfFatal(): void {
    this.listings.throwIfFailed();
    this.transfers.throwIfFailed();
    this.durable.throwIfFailed();
    if (this.opts.signal?.aborted) throw new InterruptedError('backup interrupted');
  }

  /**
   * A prefix the catalog already knows well enough is split into ranges of RANGE_KEYS catalogued
   * keys, each listed without a delimiter from its first key (StartAfter), in parallel: a full
   * 1,000-key page per request, whatever the layout. The delimiter fan-out (`scan` from depth 0)
   * needs one request per sub-prefix, however small (240 date partitions of 80 keys: 12x the
   * requests of one sequential listing), and is only used where the catalog cannot guide:
   * a seed, a prefix with few catalogued keys, a versioned bucket.
   */
  private keyRanges(source: OpenedSource, prefix: string): KeyRange[] | null {
    const catalog = this.opts.catalog;
    const { keysPerRange, minKeys } = this.opts.listRanges ?? { keysPerRange: RANGE_KEYS, minKeys: MIN_KEYS_FOR_RANGES };
    if (catalog.nthKey(source.bucket, prefix, null, minKeys) === undefined) return null;
    const ranges: KeyRange[] = [];
    let after: string | undefined;
    for (;;) {
      const upTo = catalog.nthKey(source.bucket, prefix, after ?? null, keysPerRange);
      // The last range is open: keys added after the last catalogued one belong to it.
      if (upTo === undefined || catalog.nthKey(source.bucket, prefix, upTo, 1) === undefined) {
        ranges.push(after === undefined ? {} : { after });
        return ranges;
      }
      ranges.push(after === undefined ? { upTo } : { after, upTo });
      after = upTo;
    }
  }

  private async scan(source: OpenedSource, prefix: string, depth: number, range?: KeyRange): Promise<void> {
    const shallow = depth < MAX_FANOUT_DEPTH;
    const subPrefixes: string[] = [];
    const changes = (source.versioned ? scanVersions : scanRange)(this.opts.catalog, source, prefix, {
      shallow,
      onPrefix: (p) => subPrefixes.push(p),
      ...(range === undefined ? {} : { range }),
      ...(this.opts.signal === undefined ? {} : { signal: this.opts.signal }),
    });
    try {
      for await (const change of changes) {
        this.throwIfFatal();
        await this.handle(source, change);
      }
    } catch (err) {
      // A prefix (or bucket) that cannot be listed does not stop the run: it is recorded as a
      // failure and nothing under it is taken as deleted. Anything else is fatal.
      if (!isUnreadable(err)) throw err;
      this.writer.failed(source.bucket, { key: prefix, versionId: null }, err);
      return;
    }
    // Few sub-prefixes: list each one level deeper to get enough parallel listings; many: list each fully.
    const descend = subPrefixes.length < this.opts.policy.concurrency.list && depth + 1 < MAX_FANOUT_DEPTH;
    for (const p of subPrefixes) this.listings.spawn(() => this.listLimit(() => this.scan(source, p, descend ? depth + 1 : MAX_FANOUT_DEPTH)));
  }

  private async handle(source: OpenedSource, change: Change): Promise<void> {
    const c = this.counters;
    switch (change.kind) {
      case 'excluded':
        c.objectsExcluded++;
        return;
      case 'skipped':
        this.writer.skipped(source.bucket, change.entry);
        break;
      case 'unchanged':
        c.objectsSeen++;
        c.objectsUnchanged++;
        break;
      case 'deleted':
        c.objectsDeleted++;
        this.writer.deleted(source.bucket, change.previous.key, change.previous.validFrom);
        break;
      case 'new':
        c.objectsSeen++;
        if (change.entry.isDeleteMarker) {
          // A real delete marker of a versioned bucket: recorded as it is, nothing to read.
          c.objectsDeleted++;
          this.writer.deleteMarker(source.bucket, change.entry);
        } else {
          await this.startTransfer(source, change.entry, null);
        }
        break;
      case 'changed':
        c.objectsSeen++;
        await this.startTransfer(source, change.entry, change.previous);
        break;
    }
    this.progress(false);
  }

  /**
   * Counts a new or changed object once its version is read (a dry run: once listed). An object
   * that fails to read is counted as failed only: "new" in a run's counters means recorded.
   */
  private countCopied(entry: ObjectEntry, previous: LatestVersion | null): void {
    if (previous === null) this.counters.objectsNew++;
    else this.counters.objectsChanged++;
    this.counters.bytesNew += entry.size;
  }

  private async startTransfer(source: OpenedSource, entry: ObjectEntry, previous: LatestVersion | null): Promise<void> {
    if (this.packer === null) {
      this.countCopied(entry, previous);
      this.opts.events?.({ type: 'would-back-up', bucket: source.bucket, key: entry.key, versionId: entry.versionId, size: entry.size, change: previous === null ? 'new' : 'changed' });
      return;
    }
    // Back-pressure: keep the listing at most a few batches ahead of the transfers.
    await this.transfers.waitBelow(this.opts.policy.concurrency.transfer * 4);
    if (this.durable.size >= MAX_PENDING_RECORDS) {
      // One drain at a time: concurrent listings each sealing would make many tiny packs.
      const packer = this.packer;
      this.draining ??= (async () => {
        await packer.sealOpen();
        await this.durable.waitBelow(MAX_PENDING_RECORDS / 2);
      })().finally(() => (this.draining = null));
      await this.draining;
    }
    this.transfers.spawn(() => this.transferLimit(() => this.transfer(source, entry, previous)));
  }

  private async transfer(source: OpenedSource, entry: ObjectEntry, previous: LatestVersion | null): Promise<void> {
    if (entry.storageClass !== undefined && ARCHIVED.has(entry.storageClass)) {
      const err = new StorageError('InvalidObjectState', `GET ${source.objectStore.location}${entry.key}: stored in ${entry.storageClass}; it must be restored (an S3 restore request) before it can be read`, {
        backendCode: 'ArchivedObject',
      });
      this.writer.failed(source.bucket, entry, err);
      return;
    }
    let read: ObjectRead;
    for (let attempt = 1; ; attempt++) {
      try {
        read = await this.readObject(source, entry);
        break;
      } catch (err) {
        if (err instanceof RepositoryFailure) throw err.cause;
        if (!(err instanceof StorageError)) throw err;
        // A body cut off or altered in flight: read the whole object again.
        if (err.retryable && attempt < OBJECT_ATTEMPTS && !this.opts.signal?.aborted) {
          await delay(backoffDelay(attempt, 200, 5000));
          continue;
        }
        this.writer.failed(source.bucket, entry, err);
        return;
      }
    }
    const { meta, size, tags, blobs, stored } = read;
    if (previous !== null && meta.etag === previous.etag && size === previous.size && sameSecond(meta.lastModified.getTime(), previous.lastModified)) {
      // The catalogued version after all: what the listing said about it differed only because
      // the listing was damaged in flight (an altered ETag cannot be told from a real one).
      this.counters.objectsUnchanged++;
      this.durable.spawn(() => Promise.all(stored).then(() => undefined));
      return;
    }
    this.countCopied(entry, previous);
    // Same object as listed (etag): keep the listing's timestamp, which has ms precision (GET's has seconds).
    const lastModified = (meta.etag === entry.etag ? entry.lastModified : meta.lastModified).getTime();
    const record: VersionRecord = {
      bucket: source.bucket,
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
    };
    // The record may reach the catalog only once every blob it needs is in a written pack.
    this.durable.spawn(async () => {
      await Promise.all(stored);
      this.writer.version(record);
    });
  }

  /**
   * Reads one object into blobs. Its bytes are checked against the ETag when that is an MD5
   * (single-part, not SSE-KMS/SSE-C) and against its length; blobs of objects up to
   * VERIFY_BEFORE_STORE are added to packs only after the check, so a damaged read stores
   * nothing. Repository errors come out wrapped in RepositoryFailure: they are fatal.
   */
  private async readObject(source: OpenedSource, entry: ObjectEntry): Promise<ObjectRead> {
    const c = this.counters;
    const got = await source.objectStore.get(entry.key, {
      ...(source.versioned && entry.versionId !== null ? { versionId: entry.versionId } : {}),
      ...(this.opts.signal === undefined ? {} : { signal: this.opts.signal }),
    });
    const meta = got.meta;
    // Tags cost a request, so only for objects that have any (x-amz-tagging-count).
    const tags = meta.tagCount && source.objectStore.getTags ? await source.objectStore.getTags(entry.key, meta.versionId === null ? {} : { versionId: meta.versionId }) : undefined;
    const md5 = /^[0-9a-f]{32}$/.test(meta.etag) && (meta.sse === undefined || meta.sse === 'AES256') ? createHash('md5') : null;
    const blobs: string[] = [];
    const stored: Promise<void>[] = [];
    let held: { blob: EncodedBlob; hex: string }[] = [];
    let heldBytes = 0;
    let size = 0;
    const store = async (): Promise<void> => {
      try {
        for (const { blob, hex } of held) stored.push((await this.addBlob(blob, hex)).stored);
      } catch (err) {
        throw new RepositoryFailure(err);
      }
      held = [];
      heldBytes = 0;
    };
    for await (const chunk of chunkStream(got.body, this.opts.repo.chunker)) {
      size += chunk.length;
      c.bytesRead += chunk.length;
      md5?.update(chunk);
      const id = this.opts.repo.blobId(chunk);
      const hex = id.toString('hex');
      blobs.push(hex);
      const pending = this.pendingBlobs.get(hex);
      if (pending !== undefined) {
        stored.push(pending);
        c.blobsDeduplicated++;
      } else if (this.opts.catalog.hasBlob(id) || held.some((h) => h.hex === hex)) {
        c.blobsDeduplicated++;
      } else {
        const blob = this.opts.repo.encodeBlob(chunk, BlobType.data, id);
        held.push({ blob, hex });
        heldBytes += blob.stored.length;
        if (heldBytes > VERIFY_BEFORE_STORE) await store();
      }
    }
    const where = `GET ${source.objectStore.location}${entry.key}${meta.versionId === null ? '' : ` (version ${meta.versionId})`}`;
    if (size !== meta.size) {
      throw new StorageError('Network', `${where}: read ${size} bytes, expected ${meta.size} (truncated body)`, { backendCode: 'TruncatedBody', retryable: true });
    }
    if (md5 !== null && md5.digest('hex') !== meta.etag) {
      throw new StorageError('Network', `${where}: content does not match its ETag (MD5): altered in transit`, { backendCode: 'ChecksumMismatch', retryable: true });
    }
    await store();
    return { meta, size, tags, blobs, stored };
  }

  /**
   * Adds a new blob to the open pack. `stored` settles when its pack is written (wrapped in an
   * object: awaiting a promise of a promise would wait for the pack).
   */
  private async addBlob(blob: EncodedBlob, hex: string): Promise<{ stored: Promise<void> }> {
    const pending = this.pendingBlobs.get(hex);
    if (pending !== undefined) return { stored: pending };
    this.counters.blobsNew++;
    this.counters.bytesStored += blob.stored.length;
    const added = await this.packer!.add(blob);
    this.pendingBlobs.set(hex, added.stored);
    void added.stored.then(() => this.pendingBlobs.delete(hex), () => {});
    return added;
  }

  private progress(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastProgress < PROGRESS_EVERY_MS) return;
    this.lastProgress = now;
    const c = this.counters;
    this.opts.events?.({ type: 'progress', phase: 'backup', done: c.objectsSeen, bytes: c.bytesRead, failed: c.objectsFailed });
  }
}

/** Turns observations into catalog records (nothing in a dry run). */
class RunWriter {
  private readonly writer: RecordWriter | null;

  constructor(
    private readonly opts: BackupOptions,
    runSeq: number | null,
    private readonly counters: RunCounters,
  ) {
    this.writer = runSeq === null ? null : new RecordWriter(opts.catalog, runSeq);
  }

  version(record: VersionRecord): void {
    this.writer?.addVersion(record);
  }

  /** An unversioned key that disappeared: a synthetic delete marker stamped with the run's time. */
  deleted(bucket: string, key: string, previousValidFrom: number): void {
    const now = Date.now();
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

  /** A delete marker listed by a versioned bucket. */
  deleteMarker(bucket: string, entry: ObjectEntry): void {
    const at = entry.lastModified.getTime();
    this.writer?.addVersion({ bucket, key: entry.key, versionId: entry.versionId, deleteMarker: true, size: 0, etag: '', lastModified: at, validFrom: at, blobs: [] });
  }

  /**
   * An entry passed over on purpose (a symbolic link or special file in a directory source):
   * kept with the run's failures, under its own code, so `runs show --failures` lists it, but
   * counted apart: it does not make the run partial.
   */
  skipped(bucket: string, entry: SkippedEntry): void {
    this.counters.objectsSkipped = (this.counters.objectsSkipped ?? 0) + 1;
    this.opts.events?.({ type: 'warning', message: `skipped ${bucket}/${entry.key}: ${entry.message}` });
    this.writer?.addFailure({ bucket, key: entry.key, versionId: null, code: entry.code, message: entry.message });
  }

  failed(bucket: string, entry: { key: string; versionId: string | null }, err: StorageError): void {
    this.counters.objectsFailed++;
    const failure = { bucket, key: entry.key, versionId: entry.versionId, code: err.backendCode, message: err.message };
    this.opts.events?.({ type: 'failure', ...failure });
    this.writer?.addFailure(failure);
  }

  flush(): void {
    this.writer?.flush();
  }
}

interface ObjectRead {
  meta: ObjectMeta;
  size: number;
  tags: Record<string, string> | undefined;
  blobs: string[];
  stored: Promise<void>[];
}

/** A failure writing to the repository while reading an object: fatal for the run, never an object failure. */
class RepositoryFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('repository write failed');
  }
}

/** GET's Last-Modified has whole seconds; a listing's may have milliseconds. */
function sameSecond(a: number, b: number): boolean {
  return Math.floor(a / 1000) === Math.floor(b / 1000);
}

/** Errors that make one object, prefix or bucket unreadable without making the run pointless. */
function isUnreadable(err: unknown): err is StorageError {
  return err instanceof StorageError && ['AccessDenied', 'NoSuchBucket', 'NotFound', 'InvalidObjectState'].includes(err.code);
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

function addRequests(counters: RunCounters, stats: RequestStats[]): void {
  for (const s of stats) {
    counters.requests.list += s.list;
    counters.requests.get += s.get;
    counters.requests.head += s.head;
    counters.requests.put += s.put;
    counters.requests.delete += s.delete;
  }
}

