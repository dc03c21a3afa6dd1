import type { Catalog, Scope, StateCut } from '../catalog/catalog.js';
import { selectState } from '../catalog/restore-selection.js';
import { beginUploadQueue, queueUploads, recordedAfter, uploadQueuePage, wantedBlobs, wantedKey, wantedWithMeta } from '../catalog/rollback-queries.js';
import { InterruptedError, StorageError, errorMessage } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { statsDelta, type ObjectMeta, type ObjectStore } from '../storage/types.js';
import { TaskGroup } from '../util/task-group.js';
import { holdsStoredMeta } from './backup-records.js';
import { noEvents, type EventSink } from './events.js';
import { isBackedUpContent, restore } from './restore.js';
import { parseFileToken } from '../storage/fs-entries.js';
import { ROLLBACK_ACTIONS, planKeys, planPrefix, type PlanContext, type PlannedKey, type RollbackAction } from './rollback-plan.js';

export interface RollbackOptions {
  repo: Repository;
  catalog: Catalog;
  /** The source's name in the catalog (its bucket) and its live store: the only place written. */
  bucket: string;
  store: ObjectStore;
  /** What to roll back: prefixes of the bucket, or keys named one by one (never both). */
  scope: { prefixes: string[] } | { keys: string[] };
  cut: StateCut;
  /** The instant of the cut in ms (a run's: when it started): live keys older than it that the backup lacks are kept. */
  cutTime: number;
  /** Keys the policy excludes from the backup: never touched. */
  isExcluded: (key: string) => boolean;
  keepNew: boolean;
  dryRun: boolean;
  concurrency: number;
  events?: EventSink;
  /**
   * Resolves once the events sink has passed on what it was given (the CLI: stdout drained).
   * Awaited after each object a dry run reports (with --json, one line each): listing pages come
   * faster than a slow reader takes them, and without it the whole plan would queue in memory.
   */
  eventsDrained?: () => Promise<void>;
  signal?: AbortSignal;
}

export interface RollbackFailure {
  bucket: string;
  key: string;
  action: RollbackAction;
  code: string;
  message: string;
}

export interface RollbackSummary {
  bucket: string;
  dryRun: boolean;
  /** The bucket keeps versions (enabled, or suspended with old versions): copy and undelete are possible. */
  versioned: boolean;
  objectLock: boolean;
  /** Keys and bytes per action (in a dry run: planned; else the keys for which it succeeded). */
  actions: Record<RollbackAction, { keys: number; bytes: number }>;
  failed: number;
  failures: RollbackFailure[];
  /** Requests made: to the bucket by type (`copy` counts CopyObject and multipart copy steps), and GETs of the repository. */
  requests: { list: number; head: number; copy: number; put: number; delete: number; repositoryGet: number };
  /** Bytes through this process: object bytes read from the repository and the bucket, and written to the bucket. */
  bytesThroughClient: number;
  durationMs: number;
}

const KEEP_FAILURES = 1000;
/** Keys uploaded from the repository per restore pass (one selection of the catalog each). */
const UPLOAD_BATCH = 1000;

/**
 * Makes the live bucket (or its prefixes, or the named keys) equal to the state at an instant,
 * touching only what differs: see rollback-plan.ts for the action per key. Copies, undeletes
 * and deletes run while the listing streams; uploads from the repository are queued in the
 * catalog and written afterwards by the restore engine (same reads, same authentication, same
 * metadata and tags). Converges: run again after an interruption or a failure, it finds the
 * keys already done unchanged.
 */
export async function rollback(opts: RollbackOptions): Promise<RollbackSummary> {
  try {
    return await rollbackOnce(opts);
  } catch (err) {
    // An interruption says what it left. An upload stopped by the signal ends in the store's
    // AbortError: the same interruption.
    if (!(err instanceof InterruptedError) && opts.signal?.aborted !== true) throw err;
    throw new InterruptedError(
      opts.dryRun
        ? 'rollback interrupted: a dry run, nothing was written'
        : 'rollback interrupted: the keys it rolled back so far stay so; run the same command again to finish (it plans from the bucket as it is now, and does nothing twice)',
    );
  }
}

/** The scopes of a rollback's selection, as the restore selection takes them. */
export function rollbackScopes(bucket: string, scope: RollbackOptions['scope']): Scope[] {
  return 'keys' in scope ? scope.keys.map((key) => ({ bucket, key })) : scope.prefixes.map((prefix) => ({ bucket, ...(prefix === '' ? {} : { prefix }) }));
}

async function rollbackOnce(opts: RollbackOptions): Promise<RollbackSummary> {
  const started = Date.now();
  const events = opts.events ?? noEvents;
  const { store, bucket } = opts;
  const storeBefore = { ...store.stats };
  const repoBefore = opts.repo.requestCounts();
  const signal = opts.signal === undefined ? {} : { signal: opts.signal };

  const versioned = store.capabilities.versions ? await store.versioningEnabled() : false;
  const objectLock = store.capabilities.objectLock ? await store.objectLockEnabled(signal) : false;
  if (!versioned) {
    events({
      type: 'warning',
      message: `${store.location} keeps no versions: nothing can be copied or undeleted server-side, every changed or deleted key is uploaded from the repository, and deleting a key created since is final`,
    });
  }
  if (objectLock) {
    events({
      type: 'warning',
      message: `${store.location} has Object Lock: rollback adds versions and delete markers and removes only delete markers, which a retention allows; a key the bucket still refuses is listed and the rollback exits 3`,
    });
  }
  const ctx: PlanContext = {
    canCopy: versioned && store.capabilities.serverSideCopy,
    keepNew: opts.keepNew,
    cutTime: opts.cutTime,
    recordedAfterCut: (key, live) => recordedAfter(opts.catalog, bucket, key, live.size, live.etag ?? '', opts.cutTime),
  };
  const summary: RollbackSummary = {
    bucket,
    dryRun: opts.dryRun,
    versioned,
    objectLock,
    actions: Object.fromEntries(ROLLBACK_ACTIONS.map((a) => [a, { keys: 0, bytes: 0 }])) as RollbackSummary['actions'],
    failed: 0,
    failures: [],
    requests: { list: 0, head: 0, copy: 0, put: 0, delete: 0, repositoryGet: 0 },
    bytesThroughClient: 0,
    durationMs: 0,
  };

  const scopes = rollbackScopes(bucket, opts.scope);
  selectState(opts.catalog, scopes, opts.cut);
  beginUploadQueue(opts.catalog);

  let done = 0;
  let lastProgress = 0;
  const progress = (force = false): void => {
    if (!force && Date.now() - lastProgress < 500) return;
    lastProgress = Date.now();
    const bytes = ROLLBACK_ACTIONS.reduce((n, a) => n + (a === 'unchanged' || a === 'keep' ? 0 : summary.actions[a].bytes), 0);
    events({ type: 'progress', phase: opts.dryRun ? 'rollback (dry run)' : 'rollback', done, bytes, failed: summary.failed });
  };
  const count = (p: PlannedKey): void => {
    summary.actions[p.action].keys++;
    summary.actions[p.action].bytes += p.size;
    done++;
    progress();
  };
  const fail = (key: string, action: RollbackAction, code: string, message: string): void => {
    summary.failed++;
    done++;
    if (summary.failures.length < KEEP_FAILURES) summary.failures.push({ bucket, key, action, code, message });
    events({ type: 'failure', bucket, key, versionId: null, code, message });
    progress();
  };

  const tasks = new TaskGroup();
  let uploads: string[] = [];
  const plan = 'keys' in opts.scope
    ? [planKeys({ catalog: opts.catalog, bucket, store, keys: opts.scope.keys, isExcluded: opts.isExcluded, ctx, ...signal })]
    : opts.scope.prefixes.map((prefix) => planPrefix({ catalog: opts.catalog, bucket, store, prefix, isExcluded: opts.isExcluded, ctx, ...signal }));
  // Keys planned unchanged are confirmed a few at a time (a file read and cut into blobs, or a
  // HEAD), then handled in plan order.
  const confirming: Promise<PlannedKey>[] = [];
  const confirmAhead = Math.max(1, Math.min(CONFIRM_AHEAD, opts.concurrency));
  const handle = async (p: PlannedKey): Promise<void> => {
    if (opts.dryRun) {
      events({ type: 'rollback-action', bucket, ...p });
      count(p);
      await opts.eventsDrained?.();
    } else if (p.action === 'unchanged' || p.action === 'keep') {
      count(p);
    } else if (p.action === 'upload') {
      uploads.push(p.key);
      if (uploads.length >= UPLOAD_BATCH) {
        queueUploads(opts.catalog, uploads);
        uploads = [];
      }
    } else {
      await tasks.waitBelow(opts.concurrency);
      tasks.spawn(async () => {
        try {
          await apply(store, p, opts.signal);
          count(p);
        } catch (err) {
          if (err instanceof InterruptedError || opts.signal?.aborted) throw err;
          fail(p.key, p.action, err instanceof StorageError ? err.backendCode : 'Error', errorMessage(err));
        }
      });
    }
  };
  for (const keys of plan) {
    for await (const planned of keys) {
      if (opts.signal?.aborted) throw new InterruptedError('rollback interrupted');
      tasks.throwIfFailed();
      const confirmed = confirmUnchanged(opts, planned);
      confirmed.catch(() => {}); // awaited below, in order; not an unhandled rejection meanwhile
      confirming.push(confirmed);
      if (confirming.length >= confirmAhead) await handle(await confirming.shift()!);
    }
  }
  while (confirming.length > 0) await handle(await confirming.shift()!);
  await tasks.wait();
  queueUploads(opts.catalog, uploads);
  const uploadRequests = opts.dryRun ? 0 : await uploadQueued(opts, summary, { fail });
  progress(true);

  const s = statsDelta(storeBefore, store.stats);
  const repo = statsDelta(repoBefore, opts.repo.requestCounts());
  summary.requests = {
    list: s.list,
    head: s.head,
    copy: s.put - uploadRequests,
    put: uploadRequests,
    delete: s.delete,
    repositoryGet: repo.get,
  };
  // Object bytes only: the repository's reads of packs for uploads, and the bucket's GETs and PUTs.
  summary.bytesThroughClient = s.bytesIn + s.bytesOut + repo.bytesIn;
  summary.durationMs = Date.now() - started;
  return summary;
}

/** Keys planned `unchanged` confirmed at once (bounded by the concurrency): each may read a whole file. */
const CONFIRM_AHEAD = 8;

/**
 * A key planned `unchanged` as the engine does it: a file of a `path:` source whose content
 * differs is uploaded; an S3 object with the wanted bytes (size and ETag) in another version, or
 * rewritten since, must also have the wanted metadata (content type, encoding, cache control,
 * disposition, user metadata: a copy onto itself with `Content-Encoding: gzip` keeps the ETag),
 * else the wanted version is copied back (or uploaded when it is gone). Tags are not compared.
 */
async function confirmUnchanged(opts: RollbackOptions, planned: PlannedKey): Promise<PlannedKey> {
  if (planned.action !== 'unchanged') return planned;
  const { sameBytes, ...p } = planned;
  if (!(await holdsWantedContent(opts, p))) return { key: p.key, action: 'upload', size: p.size };
  if (sameBytes === undefined) return p;
  const wanted = wantedWithMeta(opts.catalog, opts.bucket, p.key);
  if (wanted === undefined || wanted.lastModified === sameBytes.lastModified) return p;
  let meta: ObjectMeta;
  try {
    meta = await opts.store.head(p.key, opts.signal === undefined ? {} : { signal: opts.signal });
  } catch (err) {
    if (err instanceof InterruptedError || opts.signal?.aborted) throw err;
    return p; // the copy or upload would not fare better; the bytes are the wanted ones
  }
  if (holdsStoredMeta(meta, wanted.meta)) return p;
  return sameBytes.copyFrom === undefined ? { key: p.key, action: 'upload', size: p.size } : { key: p.key, action: 'copy', size: p.size, versionId: sameBytes.copyFrom };
}

/**
 * Whether a key planned `unchanged` holds the wanted content. A file of a `path:` source is
 * planned so by its size and modification time, which whoever wrote it set: a file changed in
 * place with both kept (ransomware that encrypts in place and puts the time back) would stay.
 * So its bytes are read and cut into blobs as the backup did, and compared with the recorded
 * blob ids (nothing is read from the repository). An S3 object's ETag names its content.
 */
async function holdsWantedContent(opts: RollbackOptions, p: PlannedKey): Promise<boolean> {
  // Only a store whose writers set the times (a directory) plans keys by a file token; an S3
  // object planned unchanged has the wanted ETag, so no catalog lookup per key is needed.
  if (opts.store.capabilities.writerTimes !== true) return true;
  const wanted = wantedKey(opts.catalog, opts.bucket, p.key);
  if (wanted === undefined || wanted.size === 0 || wanted.etag === null || parseFileToken(wanted.etag) === null) return true;
  try {
    const { body } = await opts.store.get(p.key, opts.signal === undefined ? {} : { signal: opts.signal });
    return await isBackedUpContent(opts.repo, body, wantedBlobs(opts.catalog, opts.bucket, p.key).map((hash) => ({ hash })));
  } catch (err) {
    if (err instanceof InterruptedError || opts.signal?.aborted) throw err;
    return false; // unreadable: written from the repository, as restore does
  }
}

/** One copy, undelete or delete. */
async function apply(store: ObjectStore, p: PlannedKey, signal: AbortSignal | undefined): Promise<void> {
  const sig = signal === undefined ? {} : { signal };
  switch (p.action) {
    case 'copy':
      await store.copyVersion(p.key, { key: p.key, versionId: p.versionId!, size: p.size }, sig);
      return;
    case 'undelete':
      // Newest first: if one removal fails, what is left is still a stack of markers over the version.
      for (const marker of p.markers ?? []) await store.delete(p.key, { versionId: marker ?? 'null', ...sig });
      return;
    case 'delete':
      await store.delete(p.key, sig);
      return;
    default:
      throw new Error(`rollback: no request for action ${p.action}`);
  }
}

/**
 * Writes the queued keys from the repository with the restore engine, a batch at a time (its
 * selection is per batch; the batches need not fit in memory together). Returns the PUT
 * requests they took.
 */
async function uploadQueued(
  opts: RollbackOptions,
  summary: RollbackSummary,
  report: { fail: (key: string, action: RollbackAction, code: string, message: string) => void },
): Promise<number> {
  let puts = 0;
  for (let after = 0; ; ) {
    const page = uploadQueuePage(opts.catalog, after, UPLOAD_BATCH);
    if (page.length === 0) return puts;
    after = page.at(-1)!.rowid;
    const restored = await restore({
      repo: opts.repo,
      catalog: opts.catalog,
      scopes: page.map((r) => ({ bucket: opts.bucket, key: r.key })),
      cut: opts.cut,
      target: opts.store,
      bucketDirs: false,
      overwrite: 'always',
      // The plan listed the bucket: the uploads take no LIST of their own.
      targetListed: true,
      concurrency: opts.concurrency,
      // Its failures are counted as the rollback's; its progress shows as the rollback's uploads.
      events: (e) => {
        if (e.type === 'failure') report.fail(e.key, 'upload', e.code, e.message);
        else if (e.type === 'warning') (opts.events ?? noEvents)(e);
        else if (e.type === 'progress') (opts.events ?? noEvents)({ ...e, phase: 'rollback: uploads' });
      },
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
    summary.actions.upload.keys += restored.restored;
    summary.actions.upload.bytes += restored.bytes;
    puts += restored.requests.put;
  }
}
