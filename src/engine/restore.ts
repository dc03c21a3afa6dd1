import { Readable } from 'node:stream';
import pLimit from 'p-limit';
import type { Catalog, Scope, StateCut, TargetKey } from '../catalog/catalog.js';
import type { BlobLocation, RestoreItem } from '../catalog/types.js';
import { addTargetKeys, beginTargetInventory, extraTargetKeys, selectState, selectedKeyBelow, statePage, targetKeyOf } from '../catalog/restore-selection.js';
import { IntegrityError, InterruptedError, LakeguardError, StorageError, UsageError, errorMessage, isNotFound } from '../errors.js';
import { chunkStream } from '../repository/chunker.js';
import type { Repository } from '../repository/repository.js';
import type { ObjectMeta, ObjectStore, PutOptions, ThawState, ThawTier } from '../storage/types.js';
import { setTimeout as delay } from 'node:timers/promises';
import { backoffDelay } from '../util/retry.js';
import { ByteBudget } from '../util/byte-budget.js';
import { pollHeapPacer } from '../util/heap-pacer.js';
import { TaskGroup } from '../util/task-group.js';
import { holdsStoredMeta } from './backup-records.js';
import { noEvents, type EventSink } from './events.js';
import { READ_RETRY, blobRuns, decodeLocatedBlob, readPackRange, readPackRangeRetrying } from './pack-reads.js';
import { nothingSelected, reportMissingKeys } from './restore-not-found.js';
import { ArchivedPackError, packError, thawPacks, waitForThaw, type ThawWait } from './restore-archived.js';
import { parseFileToken } from '../storage/fs-entries.js';
import { errCode } from '../storage/fs-errors.js';

export interface RestoreOptions {
  repo: Repository;
  catalog: Catalog;
  scopes: Scope[];
  cut: StateCut;
  /** Where a bucket's objects go (one store for all, or each bucket's own for in-place restores). */
  target: ObjectStore | ((bucket: string) => ObjectStore);
  /** Put each key under `<bucket>/` in the target (restoring several buckets at once). */
  bucketDirs: boolean;
  /** Afterwards, delete keys in the scopes that did not exist in the restored state. */
  deleteExtra?: boolean;
  /**
   * Whether the backup covers a key of a bucket (inside its source's prefixes, not excluded):
   * only those are deleted by `deleteExtra`, since what the backup never read may have existed
   * then and cannot be brought back. Absent: every key.
   */
  backedUp?: (bucket: string, key: string) => boolean;
  /**
   * The instant of the cut in ms (a time; for a run, when it started). An in-place restore into
   * a bucket whose times are the server's keeps, with `deleteExtra`, a key last modified at or
   * before it: it existed then, though no backup recorded it (a read that failed, or a write
   * after the last run before a time), as rollback keeps it. Absent: no such key is kept.
   */
  instant?: number;
  /** What to do with a key the target already has (default 'if-changed'). */
  overwrite?: OverwritePolicy;
  /** Decide and report every action (events of type 'action'), read and write nothing. */
  dryRun?: boolean;
  /** The caller has just listed the target (rollback): no LIST to check that its bucket exists. */
  targetListed?: boolean;
  concurrency: number;
  events?: EventSink;
  /**
   * Resolves once the events sink has passed on what it was given (the CLI: stdout drained).
   * Awaited after each page of a dry run, which reports every key without any I/O of its own
   * that would let a pipe to a slower reader drain: without it the whole plan would queue.
   */
  eventsDrained?: () => Promise<void>;
  signal?: AbortSignal;
  /**
   * Ask for a thaw (S3 RestoreObject) of each archived pack the restore could not read; with
   * `wait`, wait until every one is readable (restore-archived.ts `waitForThaw`) and restore
   * again, so the command ends with everything restored.
   */
  thaw?: { days: number; tier: ThawTier; wait?: ThawWait };
  /**
   * Writes refused in a row (TARGET_FAILURE_STREAK) that stop the restore with a
   * TargetRefusedError. A drill stops at the first: its scratch target refusing a write says
   * nothing about the backup, and must not be reported as damage.
   */
  targetFailureStreak?: number;
}

/** The target refuses the restore's writes (AccessDenied, bad credentials, a full or read-only disk, its bucket gone): the restore stopped. */
export class TargetRefusedError extends LakeguardError {
  constructor(
    message: string,
    /** The last refused write's own error message. */
    readonly refusal: string,
    hint: string,
  ) {
    super(message, { hint });
  }
}

/**
 * `always` writes every selected object; `if-changed` skips a key whose current content is
 * the backed-up version's (so an in-place restore adds no version for an unchanged object);
 * `never` skips every key the target already has.
 */
export type OverwritePolicy = 'always' | 'if-changed' | 'never';
export const OVERWRITE_POLICIES: readonly OverwritePolicy[] = ['always', 'if-changed', 'never'];

export type RestoreAction = 'write' | 'skip-identical' | 'skip-existing' | 'delete';

/**
 * The widest permission bits a restored file gets: the mode recorded at backup (path:
 * sources) less setuid/setgid/sticky and group/other write. Without a recorded mode (S3
 * sources, older records) the file gets 0644 less the umask.
 */
export const MODE_CAP = 0o755;

export interface RestoreFailure {
  bucket: string;
  key: string;
  code: string;
  message: string;
}

export interface RestoreSummary {
  /** Objects in the selected state. */
  objects: number;
  /** Objects written (in a dry run: that would be written), and their bytes. */
  restored: number;
  bytes: number;
  /**
   * Of `restored`, those written over a key the target held with other content (its inventory
   * saw it); null with `--overwrite always`, which compares nothing.
   */
  replaced: number | null;
  /** Skipped: the target already held the backed-up content (if-changed). */
  skippedIdentical: number;
  /** Skipped: the target already had the key (never). */
  skippedExisting: number;
  bytesSkipped: number;
  /** Keys named by the scopes (--key, --keys-from) that the selected state does not hold. */
  missing: number;
  failed: number;
  dryRun: boolean;
  /** Keys removed by --delete-extra (in a dry run: that would be removed). */
  deleted: number;
  /** The first failures (all of them are also reported as events). */
  failures: RestoreFailure[];
  /** Of the failed objects, those in packs archived in GLACIER or DEEP_ARCHIVE (S3 InvalidObjectState), and those packs. */
  archived: { objects: number; packs: number };
  /** With `thaw`: how the thaw requests of those packs went (null without `thaw`, or nothing archived). */
  thaw: Record<ThawState, number> | null;
  requests: { get: number; put: number };
  durationMs: number;
}

const PAGE = 1000;
/** Blobs of one pack closer than this are read with one ranged GET (reading the gap is cheaper than a request). */
const COALESCE_GAP = 1024 * 1024;
/** A coalesced range holds at most this many bytes: its stored bytes plus the decoded objects. */
const MAX_RANGE_MEMORY = 8 * 1024 * 1024;
/**
 * Consecutive blobs of a large object read with one GET, at most this many stored bytes. 8 MiB
 * ranges kept ~20 MB more resident while a 256 MiB object streamed (the range, its decoded
 * blobs, and the upload's parts all at once) for ~5 % more speed (6.3 vs 6.7 s for the bench's
 * three large objects).
 */
const MAX_STREAM_RANGE = 4 * 1024 * 1024;
/**
 * What the restore holds at once (ranges read and decoded, large objects in multipart upload),
 * so peak memory does not depend on pack layout or concurrency. 32 MiB ranges × 8 tasks plus
 * their decoded bytes reached 585 MB RSS at 100,000 objects; the process itself (SDK, SQLite,
 * garbage not yet collected) takes another 110-150 MB.
 */
const MEMORY_BUDGET = 64 * 1024 * 1024;
/**
 * What a streamed (multi-blob) object is charged: one read range and its decoded bytes, plus
 * the multipart upload's part buffers (8 MiB parts, two in flight for restore targets, one
 * being filled). Measured: one 96 MiB object alone took ~90 MB above the idle process with
 * four parts in flight; with 4 MiB ranges and two parts, a 256 MiB object reached ~50 MB
 * above the idle process (158-165 MB peak RSS).
 */
const STREAM_COST = 48 * 1024 * 1024;
const KEEP_FAILURES = 1000;
/**
 * A restore stops when this many writes in a row were refused (AccessDenied, bad credentials; a
 * local directory full or read-only) with the same error code and none succeeded in between: the target refuses everything, and
 * going on would fail every remaining key one by one. A bucket deleted under the restore
 * (NoSuchBucket) stops it at the first write.
 */
export const TARGET_FAILURE_STREAK = 100;
/** Errors of a local target directory that count towards that streak too: its file system is full or read-only. */
const TARGET_FULL = new Set(['ENOSPC', 'EDQUOT', 'EROFS']);

/**
 * Restores the state selected from the catalog into a target store. Objects stored in the
 * same pack are read with coalesced ranged GETs, packs in parallel; every blob is
 * authenticated and checked against its id before a byte is written.
 */
export async function restore(opts: RestoreOptions): Promise<RestoreSummary> {
  const started = Date.now();
  const events = opts.events ?? noEvents;
  const repoBefore = opts.repo.requestCounts();
  const targets = new Map<string, ObjectStore>();
  const targetFor = (bucket: string): ObjectStore => {
    let store = targets.get(bucket);
    if (store === undefined) {
      store = typeof opts.target === 'function' ? opts.target(bucket) : opts.target;
      targets.set(bucket, store);
    }
    return store;
  };
  const putsBefore = new Map<ObjectStore, number>();
  const countPuts = (): number => [...new Set(targets.values())].reduce((n, t) => n + t.stats.put - (putsBefore.get(t) ?? 0), 0);
  if (typeof opts.target !== 'function') putsBefore.set(opts.target, opts.target.stats.put);
  const total = selectState(opts.catalog, opts.scopes, opts.cut);
  const dryRun = opts.dryRun ?? false;
  const summary: RestoreSummary = {
    objects: total,
    restored: 0,
    bytes: 0,
    replaced: null,
    skippedIdentical: 0,
    skippedExisting: 0,
    bytesSkipped: 0,
    missing: 0,
    failed: 0,
    dryRun,
    deleted: 0,
    failures: [],
    archived: { objects: 0, packs: 0 },
    thaw: null,
    requests: { get: 0, put: 0 },
    durationMs: 0,
  };
  summary.missing = reportMissingKeys(opts, events);
  if (total === 0 && summary.missing === 0) throw nothingSelected(opts.catalog, opts.scopes, opts.cut);
  const overwrite = opts.overwrite ?? 'if-changed';
  // One LIST per target before anything is read: a bucket that does not exist is one error, not one failure per key.
  if (!dryRun && opts.targetListed !== true) await requireTargetBuckets(opts, targetFor);
  const inventory = overwrite !== 'always' || opts.deleteExtra === true;
  if (inventory) await takeInventory(opts, targetFor, events);
  if (inventory && overwrite !== 'always') summary.replaced = 0;
  /** Objects to be written over other content the target holds: counted as replaced once written. */
  const replacing = new Set<RestoreItem>();

  // Each task reads one coalesced range of a pack (or streams one large object) and holds its
  // slot until the objects it decoded are written: memory stays at a few ranges.
  const tasks = new TaskGroup();
  const budget = new ByteBudget(MEMORY_BUDGET);
  const spawnHolding = (cost: number, task: () => Promise<void>): void => tasks.spawn(() => task().finally(() => budget.release(cost)));
  const writes = pLimit(opts.concurrency);
  const checks = pLimit(opts.concurrency);
  let lastProgress = 0;

  const archivedPacks = new Set<string>();
  /** Consecutive write failures with one code and no write succeeding in between (TARGET_FAILURE_STREAK). */
  const streak = { code: '', count: 0 };
  const targetRefused = (item: RestoreItem, err: unknown): LakeguardError | null => {
    const store = targetFor(item.bucket);
    const full = errCode(err);
    if (full !== undefined && TARGET_FULL.has(full)) return streakOf(store, full, errorMessage(err), 'free space on the target (or restore a narrower selection), then run the same restore again: objects already there are skipped');
    if (!(err instanceof StorageError)) {
      streak.count = 0;
      return null;
    }
    if (err.code === 'NoSuchBucket' && store.location.startsWith('s3://')) {
      return new TargetRefusedError(
        `restore target ${store.location}: its bucket no longer exists (deleted during the restore?); ${summary.restored} objects were restored before, the others not`,
        errorMessage(err),
        'create the bucket (or check the target\'s endpoint, region and credentials), then run the same restore again: objects already there are skipped',
      );
    }
    // Only a refusal of whoever writes counts: a key the target cannot hold fails alone.
    if (err.code !== 'AccessDenied' && err.code !== 'InvalidCredentials') {
      streak.count = 0;
      return null;
    }
    return streakOf(store, err.backendCode, errorMessage(err), 'fix the target (its permissions, endpoint, region or credentials), then run the same restore again: objects already there are skipped');
  };
  const streakOf = (store: ObjectStore, code: string, message: string, hint: string): LakeguardError | null => {
    streak.count = streak.code === code ? streak.count + 1 : 1;
    streak.code = code;
    if (streak.count < (opts.targetFailureStreak ?? TARGET_FAILURE_STREAK)) return null;
    const writes = streak.count === 1 ? 'a write' : `the last ${streak.count} writes`;
    return new TargetRefusedError(
      `restore stopped: ${writes} to ${store.location} ${streak.count === 1 ? 'failed' : 'all failed'} with ${code} (${message}); ${summary.restored} objects were restored before, the others not`,
      message,
      hint,
    );
  };
  let stopped: LakeguardError | null = null;
  const fail = (item: RestoreItem, err: unknown): void => {
    summary.failed++;
    if (err instanceof ArchivedPackError) {
      archivedPacks.add(err.pack);
      summary.archived = { objects: summary.archived.objects + 1, packs: archivedPacks.size };
    }
    const failure = {
      bucket: item.bucket,
      key: item.key,
      code: err instanceof StorageError ? err.backendCode : err instanceof IntegrityError ? 'IntegrityError' : 'Error',
      message: errorMessage(err),
    };
    if (summary.failures.length < KEEP_FAILURES) summary.failures.push(failure);
    events({ type: 'failure', ...failure, versionId: item.versionId });
  };
  const progress = (force = false): void => {
    if (!force && Date.now() - lastProgress < 500) return;
    lastProgress = Date.now();
    const done = summary.restored + summary.failed + summary.skippedIdentical + summary.skippedExisting;
    events({ type: 'progress', phase: dryRun ? 'restore (dry run)' : 'restore', done, total, bytes: summary.bytes, failed: summary.failed });
  };
  /** Which objects of a page to write: the others are counted as skipped and not read at all. */
  const toWrite = async (items: RestoreItem[]): Promise<RestoreItem[]> => {
    const decisions = inventory ? await Promise.all(items.map((item) => checks(() => decide(opts, overwrite, targetFor, item)))) : items.map(() => 'write' as const);
    // A dry run says which writes the target would refuse (keys a directory cannot hold), as the restore would.
    const refusals = dryRun ? await Promise.all(items.map((item, i) => (decisions[i] === 'write' || decisions[i] === 'replace' ? checks(() => putRefusal(opts, targetFor, item)) : Promise.resolve(null)))) : [];
    const kept: RestoreItem[] = [];
    items.forEach((item, i) => {
      const decision = decisions[i]!;
      const refusal = refusals[i];
      if (refusal !== undefined && refusal !== null) {
        fail(item, refusal);
        return;
      }
      const action = decision === 'replace' ? 'write' : decision;
      if (dryRun) events({ type: 'action', action, bucket: item.bucket, key: item.key, size: item.size, ...(decision === 'replace' ? { replaces: true as const } : {}) });
      if (action === 'write' && !dryRun) {
        kept.push(item);
        if (decision === 'replace') replacing.add(item);
      } else if (action === 'write') {
        summary.restored++;
        summary.bytes += item.size;
        if (decision === 'replace') summary.replaced!++;
      } else {
        if (action === 'skip-identical') summary.skippedIdentical++;
        else summary.skippedExisting++;
        summary.bytesSkipped += item.size;
      }
    });
    progress();
    return kept;
  };
  const write = (item: RestoreItem, body: () => Buffer | Readable): Promise<void> =>
    writes(async () => {
      // A restore to a directory may not return to the event loop for long (heap-pacer.ts).
      pollHeapPacer();
      try {
        const target = targetFor(item.bucket);
        if (!putsBefore.has(target)) putsBefore.set(target, target.stats.put);
        if (stopped !== null) throw stopped;
        await target.put(targetKey(item, opts.bucketDirs), body(), putOptions(item, opts.signal));
        streak.count = 0;
        summary.restored++;
        summary.bytes += item.size;
        if (replacing.has(item)) summary.replaced!++;
      } catch (err) {
        if (err instanceof InterruptedError || opts.signal?.aborted) throw err;
        if (stopped !== null) throw stopped;
        // A streamed object's body reads the repository as it is written: its read errors are the repository's, not the target's.
        stopped = readFromRepository.has(err as object) ? null : targetRefused(item, err);
        if (stopped !== null) throw stopped;
        fail(item, err);
      } finally {
        replacing.delete(item);
      }
      progress();
    });
  const restoreRange = async (pack: string, range: Range<RestoreItem>): Promise<void> => {
    // A range cut off or altered in flight is read again; what still fails is damage at rest.
    // Its own loop, not withRetry: a range that arrived whole but does not authenticate is
    // read again too, and that is not a transport error withRetry would retry.
    let decoded: { item: RestoreItem; raw: Buffer | null; err?: unknown }[] = [];
    for (let attempt = 1; ; attempt++) {
      let data: Buffer;
      try {
        data = await readPackRange(opts.repo, pack, range.start, range.end, opts.signal);
      } catch (err) {
        if (!(err instanceof StorageError)) throw err;
        if (err.retryable && attempt < READ_RETRY.maxAttempts) {
          await delay(backoffDelay(attempt, READ_RETRY.baseDelayMs, READ_RETRY.maxDelayMs));
          continue;
        }
        for (const item of range.items) fail(item, packError(pack, err));
        return;
      }
      decoded = range.items.map((item) => {
        const blob = item.blobs[0]!;
        try {
          return { item, raw: decode(opts.repo, data.subarray(blob.offset - range.start, blob.offset - range.start + blob.length), blob, item) };
        } catch (err) {
          return { item, raw: null, err };
        }
      });
      if (decoded.every((d) => d.raw !== null) || attempt >= READ_RETRY.maxAttempts) break;
    }
    const pending: Promise<void>[] = [];
    for (const d of decoded) {
      if (d.raw === null) fail(d.item, d.err);
      else pending.push(write(d.item, () => d.raw!));
    }
    await Promise.all(pending);
  };

  const maxTasks = Math.max(2, Math.min(8, Math.ceil(opts.concurrency / 4)));
  for (let after = 0; ; ) {
    if (opts.signal?.aborted) throw new InterruptedError('restore interrupted');
    tasks.throwIfFailed();
    const page = statePage(opts.catalog, after, PAGE);
    if (page.items.length === 0) break;
    after = page.rowid;
    const kept = await toWrite(page.items);
    if (dryRun) await opts.eventsDrained?.();
    for (const group of groupByPack(kept)) {
      if (group.pack === null) {
        for (const item of group.items) {
          await tasks.waitBelow(opts.concurrency);
          const cost = item.blobs.length === 0 ? 0 : Math.min(STREAM_COST, 2 * item.size);
          await budget.acquire(cost);
          spawnHolding(cost, () => write(item, () => (item.blobs.length === 0 ? Buffer.alloc(0) : streamBlobs(opts, item))));
        }
        continue;
      }
      for (const range of coalesce(group.items)) {
        await tasks.waitBelow(maxTasks);
        await budget.acquire(range.memory);
        spawnHolding(range.memory, () => restoreRange(group.pack!, range));
      }
    }
  }
  await tasks.wait();
  progress(true);
  if (opts.thaw !== undefined && archivedPacks.size > 0) {
    summary.thaw = await thawPacks(opts.repo, opts.thaw, archivedPacks, opts.concurrency, opts.signal);
    if (opts.thaw.wait !== undefined) {
      await waitForThaw(opts.repo, opts.thaw, archivedPacks, opts.concurrency, opts.thaw.wait, events, opts.signal);
      return afterThaw(opts, summary, started, await restore({ ...opts, overwrite: opts.overwrite === 'always' ? 'if-changed' : opts.overwrite }));
    }
  }
  if (opts.deleteExtra) {
    if (summary.failed + summary.missing > 0) {
      events({ type: 'warning', message: `--delete-extra: nothing deleted because ${summary.failed + summary.missing} objects could not be restored` });
    } else {
      summary.deleted = await deleteExtra(opts, targetFor, dryRun ? (k) => events({ type: 'action', action: 'delete', bucket: k.bucket, key: k.key, size: k.size }) : null);
    }
  }
  summary.requests.get = opts.repo.requestCounts().get - repoBefore.get;
  summary.requests.put = countPuts();
  summary.durationMs = Date.now() - started;
  return summary;
}

/**
 * The summary of a restore that waited for thawed packs and ran again: the second pass finds what
 * the first wrote already there (skipped as identical, or as existing with `never`; `always`
 * runs the second pass as `if-changed`, so nothing is written twice) and writes the rest, and the
 * second pass's failures, deletions and archived packs are the outcome.
 */
function afterThaw(opts: RestoreOptions, first: RestoreSummary, started: number, second: RestoreSummary): RestoreSummary {
  const rewrittenAs = opts.overwrite === 'never' ? 'skippedExisting' : 'skippedIdentical';
  return {
    ...second,
    restored: first.restored + second.restored,
    bytes: first.bytes + second.bytes,
    replaced: first.replaced === null || second.replaced === null ? null : first.replaced + second.replaced,
    [rewrittenAs]: Math.max(0, second[rewrittenAs] - first.restored),
    bytesSkipped: Math.max(0, second.bytesSkipped - first.bytes),
    thaw: first.thaw,
    requests: { get: first.requests.get + second.requests.get, put: first.requests.put + second.requests.put },
    durationMs: Date.now() - started,
  };
}

/**
 * Refuses a target bucket that does not exist, with one LIST per target store before anything
 * is read or written (one page at most, under the first scope's prefix). Only NoSuchBucket is
 * decided here: a LIST that is denied (a role that may only PUT) says nothing about the writes.
 * A directory target is created by its first write (checked by the command before).
 */
async function requireTargetBuckets(opts: RestoreOptions, targetFor: (bucket: string) => ObjectStore): Promise<void> {
  const checked = new Set<ObjectStore>();
  for (const scope of opts.scopes) {
    const store = targetFor(scope.bucket);
    if (checked.has(store) || !store.location.startsWith('s3://')) continue;
    checked.add(store);
    const base = opts.bucketDirs ? `${scope.bucket}/` : '';
    try {
      for await (const _ of store.list(base + (scope.prefix ?? scope.key ?? ''), opts.signal === undefined ? {} : { signal: opts.signal })) break;
    } catch (err) {
      if (err instanceof InterruptedError || opts.signal?.aborted) throw err;
      if (!(err instanceof StorageError && err.code === 'NoSuchBucket')) continue;
      const bucket = /^s3:\/\/([^/]+)/.exec(store.location)![1]!;
      const inPlace = typeof opts.target === 'function';
      throw new UsageError(`restore target ${store.location}: bucket ${bucket} does not exist; nothing was written`, {
        hint: inPlace
          ? `create bucket ${bucket} again (with versioning if it had it), or restore elsewhere with --to s3://other-bucket/prefix/`
          : `create bucket ${bucket} first, or check the target's endpoint (--to-endpoint), region and credentials`,
      });
    }
  }
}

/**
 * Records what the target already holds in the scopes (in the catalog's temp inventory, never
 * in memory): one listing per bucket or prefix scope, one HEAD per named key.
 */
async function takeInventory(opts: RestoreOptions, targetFor: (bucket: string) => ObjectStore, events: EventSink): Promise<void> {
  const catalog = opts.catalog;
  beginTargetInventory(catalog);
  const signal = opts.signal === undefined ? {} : { signal: opts.signal };
  for (const scope of opts.scopes) {
    const base = opts.bucketDirs ? `${scope.bucket}/` : '';
    const store = targetFor(scope.bucket);
    if (scope.key !== undefined) {
      try {
        const meta = await store.head(base + scope.key, signal);
        addTargetKeys(catalog, [{ bucket: scope.bucket, key: scope.key, targetKey: base + scope.key, size: meta.size, etag: meta.etag, lastModified: meta.lastModified.getTime() }]);
      } catch (err) {
        // A key the target cannot hold (`a//b` in a directory) is not there: its write fails by name.
        if (!isNotFound(err) && !cannotHold(err)) throw err;
      }
      continue;
    }
    let rows: TargetKey[] = [];
    try {
      for await (const item of store.list(base + (scope.prefix ?? ''), signal)) {
        if (item.kind !== 'object') continue;
        rows.push({ bucket: scope.bucket, key: item.key.slice(base.length), targetKey: item.key, size: item.size, etag: item.etag, lastModified: item.lastModified.getTime() });
        if (rows.length >= PAGE) {
          addTargetKeys(catalog, rows);
          rows = [];
        }
      }
    } catch (err) {
      // A target that does not exist yet holds nothing (a directory is created by the first write).
      if (!(err instanceof StorageError && err.code === 'NoSuchBucket')) throw err;
      if (opts.dryRun && store.capabilities.createsRoot !== true) {
        events({ type: 'warning', message: `${store.location} does not exist (yet): every object would be written, once the bucket is created (the restore itself refuses a missing bucket)` });
      }
    }
    addTargetKeys(catalog, rows);
  }
}

/**
 * What to do with one selected object, given what the target holds at its key: `replace` is a
 * write over other content (reported as `write`, counted as replaced).
 */
async function decide(opts: RestoreOptions, overwrite: OverwritePolicy, targetFor: (bucket: string) => ObjectStore, item: RestoreItem): Promise<RestoreAction | 'replace'> {
  if (overwrite === 'always') return 'write';
  let existing = targetKeyOf(opts.catalog, item.bucket, item.key);
  // A marker found by a HEAD is a directory: it holds no content that a write would replace.
  const directory = existing === undefined && item.key.endsWith('/');
  if (directory) existing = await markerAt(opts, targetFor(item.bucket), item);
  if (existing === undefined) return 'write';
  if (overwrite === 'never') return 'skip-existing';
  if (existing.size !== item.size) return directory ? 'write' : 'replace';
  const store = targetFor(item.bucket);
  if (!(await sameContent(opts, store, existing, item))) return 'replace';
  return (await sameMetadata(opts, store, existing, item)) ? 'skip-identical' : 'replace';
}

/**
 * Whether a target that keeps metadata (S3) holds the object with the backed-up metadata:
 * content type, encoding, cache control, disposition and user metadata. An object that kept its
 * Last-Modified since the backup (in place, untouched) has it; another is asked with a HEAD, so
 * metadata changed alone (a copy onto itself with `Content-Encoding: gzip`) is written back.
 * Tags are not compared (a HEAD does not show them). A HEAD that fails counts as different.
 */
async function sameMetadata(opts: RestoreOptions, store: ObjectStore, existing: TargetKey, item: RestoreItem): Promise<boolean> {
  if (!store.capabilities.tags || item.key.endsWith('/')) return true;
  if (typeof existing.lastModified === 'number' && existing.lastModified === item.lastModified) return true;
  let meta: ObjectMeta;
  try {
    meta = await store.head(existing.targetKey, opts.signal === undefined ? {} : { signal: opts.signal });
  } catch (err) {
    if (err instanceof InterruptedError || opts.signal?.aborted) throw err;
    return false;
  }
  return holdsStoredMeta(meta, item.meta);
}

/**
 * Why the target would refuse to write this object (a dry run), or null: what the store says
 * of the key (FsStore: a key no path holds, a link or a file in the way), else a file key that
 * the selected state also holds keys below (`a` and `a/b`: a directory holds only one of them).
 */
async function putRefusal(opts: RestoreOptions, targetFor: (bucket: string) => ObjectStore, item: RestoreItem): Promise<StorageError | null> {
  const store = targetFor(item.bucket);
  if (store.putRefusal === undefined) return null;
  const key = targetKey(item, opts.bucketDirs);
  const refusal = await store.putRefusal(key, item.size);
  if (refusal !== null || item.key.endsWith('/')) return refusal;
  const below = selectedKeyBelow(opts.catalog, item.bucket, item.key);
  if (below === undefined) return null;
  return new StorageError('Other', `PUT ${store.location}${key}: the state also holds ${JSON.stringify(below)}: a directory cannot hold both \`${item.key}\` and keys below it, so one of them would not be written (which one depends on the order of the writes)`, {
    backendCode: 'EISDIR',
  });
}

/**
 * A folder marker (`p/`) the target holds, found by a HEAD: a directory target lists files, not
 * the directories that are its markers. One HEAD per marker the listing did not show.
 */
async function markerAt(opts: RestoreOptions, store: ObjectStore, item: RestoreItem): Promise<TargetKey | undefined> {
  const key = targetKey(item, opts.bucketDirs);
  try {
    const meta = await store.head(key, opts.signal === undefined ? {} : { signal: opts.signal });
    return { bucket: item.bucket, key: item.key, targetKey: key, size: meta.size, etag: meta.etag };
  } catch (err) {
    if (isNotFound(err) || cannotHold(err)) return undefined;
    throw err;
  }
}

/** A key the target store cannot hold as it is (a directory: `a//b`, `..`, a path too long). */
function cannotHold(err: unknown): boolean {
  return err instanceof StorageError && (err.backendCode === 'InvalidKey' || err.backendCode === 'ENAMETOOLONG');
}

const CONTENT_ETAG = /^[0-9a-f]{32}(-\d+)?$/;
const PLAIN_MD5 = /^[0-9a-f]{32}$/;

/**
 * Whether the target's object (of the same size) is the backed-up content. Equal S3 ETags
 * are (an MD5, or the MD5 of the parts' MD5s); two different plain MD5s are different content.
 * Otherwise (a directory target, whose ETags are size and mtime, or a multipart upload cut
 * differently) the target's bytes are read and cut into blobs as the backup did: equal blob
 * ids are equal content. Anything unreadable counts as changed (it is then rewritten).
 */
async function sameContent(opts: RestoreOptions, store: ObjectStore, existing: TargetKey, item: RestoreItem): Promise<boolean> {
  if (item.size === 0) return true;
  if (item.etag !== null && CONTENT_ETAG.test(item.etag)) {
    if (existing.etag === item.etag) return true;
    if (PLAIN_MD5.test(item.etag) && PLAIN_MD5.test(existing.etag)) return false;
  }
  try {
    const { body } = await store.get(existing.targetKey, opts.signal === undefined ? {} : { signal: opts.signal });
    return await isBackedUpContent(opts.repo, body, item.blobs);
  } catch (err) {
    if (err instanceof InterruptedError || opts.signal?.aborted) throw err;
    return false;
  }
}

/**
 * Whether `body` is exactly the content of these blobs: cut into blobs as the backup cut it, each
 * blob's id (an HMAC under the repository key when encrypted) equal to the catalog's, in order,
 * and no more. Stops reading (and destroys the stream) at the first difference.
 */
export async function isBackedUpContent(repo: Repository, body: Readable, blobs: readonly { hash: Buffer }[]): Promise<boolean> {
  let i = 0;
  for await (const chunk of chunkStream(body, repo.chunker)) {
    const blob = blobs[i++];
    if (blob === undefined || !blob.hash.equals(repo.blobId(chunk))) {
      body.destroy();
      return false;
    }
  }
  return i === blobs.length;
}

/**
 * Removes the inventoried target keys that the selected state does not have, so the target
 * matches the state exactly (in a dry run only reports them). On a versioned bucket a delete
 * only adds a delete marker: nothing is destroyed.
 */
async function deleteExtra(opts: RestoreOptions, targetFor: (bucket: string) => ObjectStore, report: ((key: TargetKey) => void) | null): Promise<number> {
  const limit = pLimit(opts.concurrency);
  let deleted = 0;
  let kept = 0;
  const done = (): number => {
    if (kept > 0) {
      opts.events?.({
        type: 'warning',
        message: `--delete-extra kept ${kept} key${kept === 1 ? '' : 's'} last modified before the instant that no backup recorded (a failed read, or written after the last run before it): ${kept === 1 ? 'it' : 'they'} existed then`,
      });
    }
    return deleted;
  };
  for (let after = 0; ; ) {
    const page = extraTargetKeys(opts.catalog, after, PAGE);
    if (page.length === 0) return done();
    after = page.at(-1)!.rowid;
    const covered = page.filter((r) => opts.backedUp?.(r.bucket, r.key) ?? true);
    const rows = covered.filter((r) => !existedThen(opts, targetFor, r));
    kept += covered.length - rows.length;
    if (report === null) {
      await Promise.all(rows.map((r) => limit(() => targetFor(r.bucket).delete(r.targetKey))));
    } else {
      rows.forEach(report);
      await opts.eventsDrained?.();
    }
    deleted += rows.length;
  }
}

/** A key the target held before the cut's instant (in place, S3 times): it existed then, see RestoreOptions.instant. */
function existedThen(opts: RestoreOptions, targetFor: (bucket: string) => ObjectStore, r: TargetKey): boolean {
  if (opts.instant === undefined || typeof opts.target !== 'function' || typeof r.lastModified !== 'number') return false;
  return targetFor(r.bucket).capabilities.writerTimes !== true && r.lastModified <= opts.instant;
}

export function targetKey(item: { bucket: string; key: string }, bucketDirs: boolean): string {
  return bucketDirs ? `${item.bucket}/${item.key}` : item.key;
}

function putOptions(item: RestoreItem, signal: AbortSignal | undefined): PutOptions {
  const m = item.meta;
  const opts: PutOptions = { size: item.size };
  // A mode from the repository is data like any other: only permission bits, capped.
  if (typeof m.mode === 'number' && Number.isInteger(m.mode) && m.mode >= 0) opts.mode = m.mode & MODE_CAP;
  // Its recorded time: a file's to the nanosecond (its change token), else the object's.
  const fileTime = item.etag === null ? undefined : parseFileToken(item.etag)?.mtimeNs;
  if (fileTime !== undefined) opts.modifiedNs = fileTime;
  else if (Number.isSafeInteger(item.lastModified)) opts.modifiedNs = BigInt(item.lastModified) * 1_000_000n;
  if (m.contentType !== undefined) opts.contentType = m.contentType;
  if (m.contentEncoding !== undefined) opts.contentEncoding = m.contentEncoding;
  if (m.cacheControl !== undefined) opts.cacheControl = m.cacheControl;
  if (m.contentDisposition !== undefined) opts.contentDisposition = m.contentDisposition;
  if (m.metadata !== undefined) opts.metadata = m.metadata;
  if (m.tags !== undefined) opts.tags = m.tags;
  if (signal !== undefined) opts.signal = signal;
  return opts;
}

/** Single-blob items grouped by pack (the plan is ordered by pack, offset); multi-blob and empty ones apart. */
function groupByPack(items: RestoreItem[]): { pack: string | null; items: RestoreItem[] }[] {
  const groups: { pack: string | null; items: RestoreItem[] }[] = [];
  for (const item of items) {
    const pack = item.blobs.length === 1 ? item.blobs[0]!.pack : null;
    const last = groups.at(-1);
    if (last !== undefined && last.pack === pack) last.items.push(item);
    else groups.push({ pack, items: [item] });
  }
  return groups;
}

interface Range<T> {
  start: number;
  end: number;
  items: T[];
  /** Bytes held while the range is restored: the bytes read plus every decoded object. */
  memory: number;
}

export function coalesce(items: RestoreItem[]): Range<RestoreItem>[] {
  const ranges: Range<RestoreItem>[] = [];
  for (const item of items) {
    const b = item.blobs[0]!;
    const last = ranges.at(-1);
    if (last !== undefined && b.offset - last.end <= COALESCE_GAP) {
      const end = Math.max(last.end, b.offset + b.length);
      const memory = last.memory - (last.end - last.start) + (end - last.start) + b.rawLength;
      if (memory <= MAX_RANGE_MEMORY) {
        last.end = end;
        last.memory = memory;
        last.items.push(item);
        continue;
      }
    }
    ranges.push({ start: b.offset, end: b.offset + b.length, items: [item], memory: b.length + b.rawLength });
  }
  return ranges;
}

function decode(repo: Repository, stored: Buffer, blob: BlobLocation, item: RestoreItem): Buffer {
  return decodeLocatedBlob(repo, stored, blob, `cannot restore ${item.bucket}/${item.key}`);
}

/** Errors a streamed object's body met reading the repository (streamBlobs): never the target refusing a write. */
const readFromRepository = new WeakSet<object>();

/** A large object's content, read blob run by blob run (consecutive blobs of a pack in one GET). */
function streamBlobs(opts: RestoreOptions, item: RestoreItem): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    let size = 0;
    for (const run of blobRuns(item.blobs, MAX_STREAM_RANGE)) {
      const data = await readPackRangeRetrying(opts.repo, run.pack, run.start, run.end, opts.signal).catch((err: unknown) => {
        const thrown = err instanceof StorageError && err.code === 'InvalidObjectState' ? packError(run.pack, err) : err;
        if (typeof thrown === 'object' && thrown !== null) readFromRepository.add(thrown);
        throw thrown;
      });
      for (const b of item.blobs.slice(run.first, run.last)) {
        const raw = decode(opts.repo, data.subarray(b.offset - run.start, b.offset - run.start + b.length), b, item);
        size += raw.length;
        yield raw;
      }
    }
    if (size !== item.size) throw new IntegrityError(`cannot restore ${item.bucket}/${item.key}: rebuilt ${size} bytes, catalog says ${item.size}`);
  }
  return Readable.from(generate(), { objectMode: false });
}
