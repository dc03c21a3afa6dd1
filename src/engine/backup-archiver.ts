/**
 * Backup, part 1 of 3: the archiver of one run (restic's archiver). Lists every source with the
 * fan-out backup-plan.ts chooses, merge-joins each listing with the catalog (scan.ts), and
 * hands new and changed objects to transfers (backup-transfer.ts, which stores their blobs
 * through backup-dedup.ts); the records of what it saw go to backup-records.ts. Listings and
 * transfers each run under their own concurrency limit, with back-pressure between them.
 */
import pLimit from 'p-limit';
import type { AnomalyHistory, RunAnomalies } from '../catalog/anomaly-types.js';
import type { LatestVersion, RunCounters } from '../catalog/types.js';
import { InterruptedError, StorageError } from '../errors.js';
import { blobEncoder, type BlobEncoder } from '../repository/encode-pool.js';
import type { Packer } from '../repository/packer.js';
import type { ObjectEntry } from '../storage/types.js';
import { TaskGroup } from '../util/task-group.js';
import { pollHeapPacer } from '../util/heap-pacer.js';
import type { BackupOptions } from './backup.js';
import { AnomalyDetector } from './anomaly-detector.js';
import type { CarriedVersions } from './resume.js';
import { BlobSaver } from './backup-dedup.js';
import { MAX_FANOUT_DEPTH, everyVersionOf, fullVersionListing, keyRanges, subPrefixDepth } from './backup-plan.js';
import { RunWriter, fileVersionStart, isCataloguedVersion, reinstate, versionRecord } from './backup-records.js';
import { keysToRetry, lastObservation } from '../catalog/backup-lookups.js';
import { ObjectReader, isUnreadable } from './backup-transfer.js';
import { InventoryStore, newerThanReport } from './inventory-store.js';
import { scanChangedVersions, scanRange, scanVersions, type Change, type KeyRange } from './scan.js';
import { intersectKeyRange, keyRangeWithin } from './shards.js';
import type { OpenedSource } from './sources.js';

const PROGRESS_EVERY_MS = 500;
/**
 * Objects read but not yet durable (their packs are still open or uploading) keep their records
 * in memory. Tiny objects fill a 16 MiB pack slowly (12,000 objects of 1.3 KiB stored), and with
 * five packs open or in flight those records took 180 MB of heap; past this many, the open pack
 * is sealed early instead. Packs stay large enough for <= 1 PUT per 1,000 objects.
 */
const MAX_PENDING_RECORDS = 8000;

/** State of one backup run while it scans and transfers. */
export class Archiver {
  readonly writer: RunWriter;
  private readonly listLimit: ReturnType<typeof pLimit>;
  private readonly transferLimit: ReturnType<typeof pLimit>;
  /** Listings of prefixes (each may spawn more) and object transfers, each bounded by its limiter. */
  private readonly listings = new TaskGroup();
  private readonly transfers = new TaskGroup();
  /** Reads objects into blobs; null in a dry run, which reads nothing. */
  private readonly reader: ObjectReader | null;
  /** Watches changes and content for anomalies (docs/anomalies.md); null in a dry run or with detection off everywhere. */
  private readonly detector: AnomalyDetector | null;
  /** Records waiting for their packs to be written. */
  private readonly durable = new TaskGroup();
  /** Set while the open pack is sealed early because too many records wait (MAX_PENDING_RECORDS). */
  private draining: Promise<void> | null = null;
  private lastProgress = 0;
  /** Sources listed from an inventory report: which catalogued states are newer than it (scan.ts ScanOptions.newerThanReport). */
  private readonly newerThanReport = new Map<OpenedSource, (latest: LatestVersion) => boolean>();
  /** When the group's earlier runs last observed its sources (the end of the latest; null: none): files changed since start after it. */
  private readonly observedUntil: number | null;

  constructor(
    private readonly opts: BackupOptions,
    private readonly sources: OpenedSource[],
    private readonly counters: RunCounters,
    private readonly packer: Packer | null,
    runSeq: number | null,
    encoder?: BlobEncoder,
    /** Versions an earlier, killed attempt of this shard stored (resume.ts): recorded without a read when the listing matches. */
    private readonly carried: CarriedVersions | null = null,
  ) {
    this.listLimit = pLimit(opts.policy.concurrency.list);
    this.transferLimit = pLimit(opts.policy.concurrency.transfer);
    this.writer = new RunWriter(opts.catalog, opts.events, runSeq, counters);
    // Without an encoder (a dry run reads nothing; tests), blobs are encoded in this thread.
    const enc = encoder ?? blobEncoder(opts.repo, 1);
    this.reader = packer === null ? null : new ObjectReader(new BlobSaver(opts.repo, opts.catalog, packer, counters, enc), opts.repo.chunker, counters, opts.signal);
    this.detector = packer === null || runSeq === null ? null : AnomalyDetector.create(opts.catalog, opts.policy, opts.group, sources, runSeq, opts.keys !== undefined, opts.shard);
    this.observedUntil = lastObservation(opts.catalog, opts.group.name, runSeq);
    for (const source of sources) {
      if (source.objectStore instanceof InventoryStore) this.newerThanReport.set(source, newerThanReport(opts.catalog, source.bucket, source.objectStore.report.created, opts.inventoryLagMs));
    }
  }

  /**
   * The run's anomaly verdict, judged against `history` (call once, after `settled`); undefined
   * when nothing was watched (a dry run, or detection off for every prefix).
   */
  anomalies(history: AnomalyHistory): RunAnomalies | undefined {
    return this.detector?.finish(history);
  }

  async scanAll(): Promise<void> {
    if (this.opts.keys !== undefined) this.scanKeys(this.opts.keys);
    else this.scanPrefixes();
    // Listings spawn more listings (sub-prefixes) and transfers: wait until none is left.
    // Wait for both even after a failure, so nothing still writes while the run is finalized.
    await this.listings.waitBelow(1);
    await this.transfers.waitBelow(1);
    this.throwIfFatal();
    this.progress(true);
  }

  /**
   * A key-driven run (BackupOptions.keys): each key is a listing of its own, the key as prefix,
   * ending at the key itself ({ upTo: key }): the listing and the catalog cursor then hold that
   * key only, and scan.ts decides new, changed, unchanged, deleted (absent from the listing) or,
   * in a versioned bucket, each version and delete marker not yet catalogued (every version of
   * a named key is listed: one key's versions are one request).
   */
  private scanKeys(keys: ReadonlyMap<string, Iterable<string>>): void {
    for (const source of this.sources) {
      const named = keys.get(source.bucket);
      if (named === undefined) continue;
      for (const key of new Set(named)) {
        if (!source.prefixes.some((p) => key.startsWith(p))) continue;
        this.counters.keysNamed = (this.counters.keysNamed ?? 0) + 1;
        this.listings.spawn(() => this.listLimit(() => this.scan(source, key, MAX_FANOUT_DEPTH, source.versioned === true, { upTo: key })));
      }
    }
  }

  private scanPrefixes(): void {
    const fullRun = this.sources.some((s) => s.versioned === true) && fullVersionListing(this.opts.catalog, this.opts.group.name, this.opts.fullVersions ?? false);
    let listedEveryVersion = true;
    for (const source of this.sources) {
      for (const prefix of source.prefixes) {
        // A shard lists only its part of each prefix (none: every key of it is another shard's).
        const within = keyRangeWithin(this.opts.shard?.range, source.bucket, prefix);
        if (within === null) continue;
        const everyVersion = source.versioned === true && everyVersionOf(this.opts.catalog, source.bucket, prefix, fullRun);
        if (source.versioned === true && !everyVersion) listedEveryVersion = false;
        const ranges = everyVersion ? null : keyRanges(this.opts.catalog, source.bucket, prefix, this.opts.listRanges, within);
        if (ranges === null) this.listings.spawn(() => this.listLimit(() => this.scan(source, prefix, 0, everyVersion, within)));
        else for (const range of ranges) this.listings.spawn(() => this.listLimit(() => this.scan(source, prefix, MAX_FANOUT_DEPTH, everyVersion, range)));
      }
    }
    if (this.sources.some((s) => s.versioned === true)) this.counters.versionListing = listedEveryVersion ? 'full' : 'changed';
  }

  /** Waits until every stored object's record reached the catalog writer. */
  async settled(): Promise<void> {
    await this.durable.wait();
  }

  /** Set once the run's records are written out for good (backup.ts, before the last flush): a transfer that ends later records and counts nothing. */
  private recordsClosed = false;

  /**
   * Ends recording: what reaches the writer after this (a transfer an interruption did not wait
   * for) is neither recorded nor counted, so the run's counters are what it recorded.
   */
  closeRecords(): void {
    this.recordsClosed = true;
  }

  private throwIfFatal(): void {
    this.listings.throwIfFailed();
    this.transfers.throwIfFailed();
    this.durable.throwIfFailed();
    if (this.opts.signal?.aborted) throw new InterruptedError('backup interrupted');
  }

  /** `everyVersion`: a versioned source's prefix listed with every version (else its current keys, and the versions of those that changed). */
  private async scan(source: OpenedSource, prefix: string, depth: number, everyVersion: boolean, range?: KeyRange): Promise<void> {
    const shallow = depth < MAX_FANOUT_DEPTH;
    const subPrefixes: string[] = [];
    const scanner = source.versioned !== true ? scanRange : everyVersion ? scanVersions : scanChangedVersions;
    const newer = this.newerThanReport.get(source);
    const retry = scanner === scanChangedVersions ? this.retryKeys(source) : undefined;
    const changes = scanner(this.opts.catalog, source, prefix, {
      shallow,
      ...(retry === undefined || retry.length === 0 ? {} : { retry }),
      ...(newer === undefined ? {} : { newerThanReport: newer }),
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
      // Not every version was listed: the run does not count as a full version listing (the
      // next runs would otherwise wait FULL_VERSION_LISTING_EVERY runs for what it missed).
      if (everyVersion && this.counters.versionListing === 'full') this.counters.versionListing = 'changed';
      return;
    }
    const next = subPrefixDepth(subPrefixes.length, this.opts.policy.concurrency.list, depth);
    for (const p of subPrefixes) {
      // A sub-prefix the range reaches into is listed only as far as the range goes.
      const within = range === undefined ? undefined : intersectKeyRange(range, p);
      if (within === null) continue;
      this.listings.spawn(() => this.listLimit(() => this.scan(source, p, next, everyVersion, within)));
    }
  }

  /** Per versioned source: keys whose reads failed in earlier runs and are still missing (looked up once per run). */
  private readonly retry = new Map<OpenedSource, readonly string[]>();

  private retryKeys(source: OpenedSource): readonly string[] {
    let keys = this.retry.get(source);
    if (keys === undefined) this.retry.set(source, (keys = keysToRetry(this.opts.catalog, this.opts.group.name, source.bucket)));
    return keys;
  }

  private async handle(source: OpenedSource, change: Change): Promise<void> {
    const c = this.counters;
    // A backup of local files may not return to the event loop for seconds (heap-pacer.ts).
    pollHeapPacer();
    this.detector?.observe(source.bucket, source.versioned === true, change);
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
      case 'kept':
        // The report is behind what the catalog knows of the key (watch saw it later): nothing to record.
        c.objectsNewerThanReport = (c.objectsNewerThanReport ?? 0) + 1;
        break;
      case 'deleted':
        c.objectsDeleted++;
        // Listed from a report: gone as of the report's time.
        this.writer.deleted(source.bucket, change.previous.key, change.previous.validFrom, seenAt(source));
        break;
      case 'new':
        c.objectsSeen++;
        if (change.entry.isDeleteMarker) {
          // A real delete marker of a versioned bucket: recorded as it is, nothing to read.
          c.objectsDeleted++;
          this.writer.deleteMarker(source.bucket, change.entry, undefined, change.validFrom);
        } else {
          await this.startTransfer(source, change.entry, null, false, change.deletedAt, change.validFrom);
        }
        break;
      case 'changed':
        c.objectsSeen++;
        await this.startTransfer(source, change.entry, change.previous);
        break;
      case 'reinstated':
        c.objectsSeen++;
        c.objectsReinstated = (c.objectsReinstated ?? 0) + 1;
        // Listed from a report: current again as of the report's time.
        if (change.version !== null) this.writer.reinstated(change.version, change.previous, seenAt(source));
        else if (change.entry.isDeleteMarker) this.writer.deleteMarker(source.bucket, change.entry, { previous: change.previous, seenAt: seenAt(source) });
        // Forget dropped every record of it: the content is read again, recorded as a reinstatement.
        else await this.startTransfer(source, change.entry, change.previous, true);
        break;
    }
    this.progress(false);
  }

  /**
   * Counts a new or changed object once its version goes to the catalog writer (its packs are
   * written; a dry run: once listed). An object that fails to read is counted as failed only,
   * and one whose packs an interruption left unwritten not at all: "new" in a run's counters
   * means recorded.
   */
  private countCopied(entry: ObjectEntry, previous: LatestVersion | null): void {
    if (previous === null) this.counters.objectsNew++;
    else this.counters.objectsChanged++;
    this.counters.bytesNew += entry.size;
  }

  /**
   * `deletedAt`: the key's catalogued delete marker's valid_from, which its new version must
   * follow (scan.ts Change). `validFrom`: when the version starts if not at its time (a newer
   * version shares its millisecond: scan.ts KeyTimes).
   */
  private async startTransfer(source: OpenedSource, entry: ObjectEntry, previous: LatestVersion | null, reinstating = false, deletedAt?: number, validFrom?: number): Promise<void> {
    if (this.packer === null) {
      if (reinstating) return; // counted as reinstated
      this.countCopied(entry, previous);
      this.opts.events?.({ type: 'would-back-up', bucket: source.bucket, key: entry.key, versionId: entry.versionId, size: entry.size, change: previous === null ? 'new' : 'changed' });
      await this.opts.eventsDrained?.();
      return;
    }
    const carried = reinstating ? undefined : this.carried?.of(source.bucket, entry);
    if (carried !== undefined) {
      // Stored by a killed attempt of this shard, and listed unchanged since: recorded as this
      // run's own version (the same blobs), nothing read or stored. Its blobs are in packs an
      // index file lists, so the record may go to the writer at once.
      this.countCopied(entry, previous);
      this.counters.objectsCarried = (this.counters.objectsCarried ?? 0) + 1;
      // Judged as that attempt judged its content when it read it (anomaly detection counts it as read).
      this.detector?.versionCarried(source.bucket, source.versioned === true, entry, previous, carried.signals);
      const own = previous === null ? carried.lastModified : Math.max(carried.lastModified, previous.validFrom + 1);
      this.writer.version({ ...carried, validFrom: beforeNewer(this.versionStart(source, carried.lastModified, own, previous, deletedAt), validFrom) });
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
    this.transfers.spawn(() => this.transferLimit(() => this.transfer(source, entry, previous, reinstating, deletedAt, validFrom)));
  }

  private async transfer(source: OpenedSource, entry: ObjectEntry, previous: LatestVersion | null, reinstating: boolean, deletedAt: number | undefined, validFrom: number | undefined): Promise<void> {
    // A key seen before may well hold blobs already stored: dedup before encoding.
    const read = await this.reader!.read(source, entry, this.detector?.snifferFor(source.bucket, entry.key), previous !== null || reinstating);
    if (read instanceof StorageError) {
      // Listed by an inventory report but deleted since it was made: the report's lag, not a
      // failure (a LIST would not have shown it); counted, and the next report shows it gone.
      if (source.inventory !== undefined && read.code === 'NotFound') this.counters.objectsGoneSinceReport = (this.counters.objectsGoneSinceReport ?? 0) + 1;
      else this.writer.failed(source.bucket, entry, read);
      return;
    }
    if (isCataloguedVersion(read, previous)) {
      // The catalogued version after all (the listing was damaged in flight): nothing new.
      this.counters.objectsUnchanged++;
      this.durable.spawn(() => Promise.all(read.stored).then(() => undefined));
      return;
    }
    const signals = reinstating || read.sample === undefined ? undefined : this.detector?.versionRead(source.bucket, source.versioned === true, entry, previous, read.sample);
    const listed = versionRecord(source.bucket, entry, previous, read, signals);
    const start = this.versionStart(source, listed.lastModified, listed.validFrom, previous, deletedAt);
    const observed = { ...listed, validFrom: beforeNewer(start, validFrom) };
    const record = reinstating ? reinstate(observed, previous, seenAt(source)) : observed;
    // The record may reach the catalog only once every blob it needs is in a written pack; it
    // is counted then, so an interrupted run counts only what it recorded. A reinstated version
    // read again (forget had dropped it) is neither new data nor judged again.
    this.durable.spawn(async () => {
      await Promise.all(read.stored);
      // After an interruption the run's records are already written out: nothing more is recorded.
      if (this.recordsClosed) return;
      if (!reinstating) this.countCopied(entry, previous);
      this.writer.version(record);
    });
  }

  /**
   * A new version's valid_from, given the one its own time gives (`validFrom`): after the delete
   * marker it follows (`deletedAt`); for a file, from when this run saw it unless its time dates
   * the change (backup-records.ts fileVersionStart).
   */
  private versionStart(source: OpenedSource, lastModified: number, validFrom: number, previous: LatestVersion | null, deletedAt: number | undefined): number {
    if (source.objectStore.capabilities.writerTimes !== true) return after(deletedAt, validFrom);
    const floors = [previous?.validFrom, deletedAt, this.observedUntil ?? undefined].filter((t): t is number => t !== undefined);
    return fileVersionStart(lastModified, floors.length === 0 ? null : Math.max(...floors), Date.now());
  }

  private progress(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastProgress < PROGRESS_EVERY_MS) return;
    this.lastProgress = now;
    const c = this.counters;
    this.opts.events?.({ type: 'progress', phase: 'backup', done: c.objectsSeen, bytes: c.bytesRead, failed: c.objectsFailed });
  }
}

/**
 * When a run saw the state its listing shows: undefined (now) when it listed the bucket, the
 * report's time when the listing is an inventory report's (deletions and reinstatements found
 * there are valid from then, before anything another run saw after the report).
 */
function seenAt(source: OpenedSource): number | undefined {
  return source.objectStore instanceof InventoryStore ? source.objectStore.report.created.getTime() : undefined;
}

/**
 * A version's start, moved before a newer version of its key that bears the same millisecond
 * (`validFrom`, scan.ts KeyTimes), so the newer one is the state at that instant.
 */
function beforeNewer(start: number, validFrom: number | undefined): number {
  return validFrom === undefined ? start : Math.min(start, validFrom);
}

/** A version's valid_from, moved after the delete marker it follows (`deletedAt`) when its own time is not. */
function after(deletedAt: number | undefined, validFrom: number): number {
  return deletedAt === undefined ? validFrom : Math.max(validFrom, deletedAt + 1);
}
