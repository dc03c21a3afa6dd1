import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import pLimit from 'p-limit';
import type { Catalog } from '../catalog/catalog.js';
import type { RunCounters, RunRow, RunStatus, StoredMeta, VersionRecord } from '../catalog/types.js';
import { InterruptedError, StorageError, errorMessage } from '../errors.js';
import type { Group, Policy } from '../policy/types.js';
import { chunkStream } from '../repository/chunker.js';
import { RepositoryLock } from '../repository/locks.js';
import { BlobType } from '../repository/pack.js';
import { Packer } from '../repository/packer.js';
import type { Repository } from '../repository/repository.js';
import { statsDelta, type ObjectEntry, type ObjectMeta, type RequestStats } from '../storage/types.js';
import { TaskGroup } from '../util/task-group.js';
import { emptyCounters, noEvents, type BackupSummary, type EventSink } from './events.js';
import { finalizeRun } from './finalize.js';
import { RecordWriter } from './record-writer.js';
import { scanRange, scanVersions, type Change } from './scan.js';
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
}

/** Listing fan-out: descend one more level while a level has fewer sub-prefixes than this factor × list concurrency. */
const MAX_FANOUT_DEPTH = 3;
const PROGRESS_EVERY_MS = 500;

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
  const repoStatsBefore = { ...repo.store.stats };
  await Promise.all(
    sources.map(async (s) => {
      s.versioned ??= (await s.store.versioningEnabled?.().catch((err: unknown) => {
        if (isUnreadable(err)) return false; // the listing reports it, as a failure of this source
        throw err;
      })) ?? false;
    }),
  );

  if (dryRun) {
    const ctx = new RunContext(opts, sources, counters, null, null);
    await ctx.scanAll();
    counters.durationMs = Date.now() - startedAt.getTime();
    addRequests(counters, sources.map((s) => s.store.stats));
    return { runId, group: group.name, status: counters.objectsFailed > 0 ? 'partial' : 'complete', dryRun, counters };
  }

  const lock = await RepositoryLock.acquire(repo, 'shared', `backup of group ${group.name}`);
  try {
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
    run.seq = catalog.beginRun({ id: run.id, group: run.group, started: run.started, host: run.host! });
    const packer = new Packer(repo, {
      onPackWritten: (pack) => {
        counters.packsWritten++;
        catalog.transaction(() =>
          catalog.insertPack(
            {
              name: pack.id,
              size: pack.size,
              blobs: pack.entries.map((e) => ({ hash: e.id, offset: e.offset, length: e.length, rawLength: e.rawLength, flags: (e.compressed ? 1 : 0) | (e.type << 1) })),
            },
            run.seq,
          ),
        );
      },
    });
    const ctx = new RunContext(opts, sources, counters, packer, run.seq);
    let status: RunStatus;
    let fatal: unknown = null;
    try {
      await ctx.scanAll();
      await packer.flush();
      await ctx.settled();
      status = counters.objectsFailed > 0 ? 'partial' : 'complete';
    } catch (err) {
      fatal = err;
      status = err instanceof InterruptedError ? 'interrupted' : 'failed';
    }
    ctx.writer.flush();
    const countRequests = (): void => {
      counters.durationMs = Date.now() - startedAt.getTime();
      counters.requests = emptyCounters().requests;
      addRequests(counters, [...sources.map((s) => s.store.stats), statsDelta(repoStatsBefore, repo.store.stats)]);
    };
    countRequests();
    try {
      // Record what was stored even when the run failed: its versions are real and restorable.
      await finalizeRun(repo, catalog, packer, run, status, counters, countRequests);
    } catch (err) {
      if (fatal === null) throw err;
      events({ type: 'warning', message: `could not record the failed run ${runId} in the repository: ${errorMessage(err)}` });
    }
    if (fatal !== null) throw fatal;
    return { runId, group: group.name, status, dryRun, counters };
  } finally {
    await lock.release().catch(() => {});
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
    for (const source of this.sources) for (const prefix of source.prefixes) this.listings.spawn(() => this.listLimit(() => this.scan(source, prefix, 0)));
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

  private async scan(source: OpenedSource, prefix: string, depth: number): Promise<void> {
    const shallow = depth < MAX_FANOUT_DEPTH;
    const subPrefixes: string[] = [];
    const changes = (source.versioned ? scanVersions : scanRange)(this.opts.catalog, source, prefix, {
      shallow,
      onPrefix: (p) => subPrefixes.push(p),
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
          c.objectsNew++;
          await this.startTransfer(source, change.entry, null);
        }
        break;
      case 'changed':
        c.objectsSeen++;
        c.objectsChanged++;
        await this.startTransfer(source, change.entry, change.previous.validFrom);
        break;
    }
    this.progress(false);
  }

  private async startTransfer(source: OpenedSource, entry: ObjectEntry, previousValidFrom: number | null): Promise<void> {
    this.counters.bytesNew += entry.size;
    if (this.packer === null) return;
    // Back-pressure: keep the listing at most a few batches ahead of the transfers.
    await this.transfers.waitBelow(this.opts.policy.concurrency.transfer * 4);
    this.transfers.spawn(() => this.transferLimit(() => this.transfer(source, entry, previousValidFrom)));
  }

  private async transfer(source: OpenedSource, entry: ObjectEntry, previousValidFrom: number | null): Promise<void> {
    const packer = this.packer!;
    const c = this.counters;
    const blobs: string[] = [];
    const stored: Promise<void>[] = [];
    let meta: ObjectMeta;
    let size = 0;
    let tags: Record<string, string> | undefined;
    let repoStep = false;
    try {
      const got = await source.store.get(entry.key, {
        ...(source.versioned && entry.versionId !== null ? { versionId: entry.versionId } : {}),
        ...(this.opts.signal === undefined ? {} : { signal: this.opts.signal }),
      });
      meta = got.meta;
      // Tags cost a request, so only for objects that have any (x-amz-tagging-count).
      if (meta.tagCount && source.store.getTags) {
        tags = await source.store.getTags(entry.key, meta.versionId === null ? {} : { versionId: meta.versionId });
      }
      for await (const chunk of chunkStream(got.body, this.opts.repo.chunker)) {
        size += chunk.length;
        c.bytesRead += chunk.length;
        repoStep = true;
        const id = this.opts.repo.blobId(chunk);
        const hex = id.toString('hex');
        blobs.push(hex);
        const pending = this.pendingBlobs.get(hex);
        if (pending !== undefined) {
          stored.push(pending);
          c.blobsDeduplicated++;
        } else if (this.opts.catalog.hasBlob(id)) {
          c.blobsDeduplicated++;
        } else {
          const blob = this.opts.repo.encodeBlob(chunk, BlobType.data, id);
          c.blobsNew++;
          c.bytesStored += blob.stored.length;
          const added = await packer.add(blob);
          this.pendingBlobs.set(hex, added.stored);
          void added.stored.then(() => this.pendingBlobs.delete(hex), () => {});
          stored.push(added.stored);
        }
        repoStep = false;
      }
      if (size !== meta.size) {
        throw new StorageError('Other', `GET ${source.store.location}${entry.key}: read ${size} bytes, expected ${meta.size} (truncated body)`, {
          backendCode: 'TruncatedBody',
        });
      }
    } catch (err) {
      if (repoStep || !(err instanceof StorageError)) throw err;
      this.writer.failed(source.bucket, entry, err);
      return;
    }
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
      validFrom: previousValidFrom === null ? lastModified : Math.max(lastModified, previousValidFrom + 1),
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

