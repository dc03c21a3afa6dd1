/**
 * Backup of one protection group: the run around the archiver. Takes the shared lock, opens the
 * run in the catalog and its Packer, lets the archiver (backup-archiver.ts) list and copy, and
 * records the run (finalize.ts) whatever its outcome. The jobs inside, as restic splits them:
 * fan-out planning (backup-plan.ts), reading sources (backup-transfer.ts, the one place a
 * source object is retried as a whole), dedup and packing (backup-dedup.ts), catalog records
 * (backup-records.ts).
 */
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { CatalogAnomalyHistory } from '../catalog/anomalies.js';
import type { RunAnomalies } from '../catalog/anomaly-types.js';
import type { Catalog } from '../catalog/catalog.js';
import { catalogFileHint, sqliteCode } from '../catalog/corrupt.js';
import { recordRunShard } from '../catalog/run-sets.js';
import type { RunCounters, RunRow, RunStatus } from '../catalog/types.js';
import { ExitCode, InterruptedError, LakeguardError, StorageError, errorMessage } from '../errors.js';
import type { Group, Policy } from '../policy/types.js';
import { RepositoryLock } from '../repository/locks.js';
import { blobEncoder, type BlobEncoder } from '../repository/encode-pool.js';
import { Packer, packRecord } from '../repository/packer.js';
import type { Repository } from '../repository/repository.js';
import { statsDelta, type RequestStats } from '../storage/types.js';
import { isProcessAlive } from '../util/process.js';
import { Archiver } from './backup-archiver.js';
import type { RangeSettings } from './backup-plan.js';
import { IndexCheckpoints } from './backup-checkpoints.js';
import type { RunWriter } from './backup-records.js';
import { isUnreadable } from './backup-transfer.js';
import { emptyCounters, noEvents, type BackupSummary, type EventSink } from './events.js';
import { finalizeRun } from './finalize.js';
import { closing, listFromInventories } from './inventory-store.js';
import { keyRangeWithin, type RunShard } from './shards.js';
import { openSource, type OpenedSource } from './sources.js';
import { newRunId } from './run-id.js';
import { requireBackupScope } from './shard-scope.js';
import { CarriedVersions, CheckpointWriter, resumeShard, type Resumed } from './resume.js';

export interface BackupOptions {
  repo: Repository;
  catalog: Catalog;
  policy: Policy;
  group: Group;
  dryRun?: boolean;
  events?: EventSink;
  /**
   * Resolves once the events sink has passed on what it was given (the CLI: stdout drained).
   * Awaited after each object a dry run reports (with --json, one line each): listing pages come
   * faster than a slow reader takes them, and without it the whole plan would queue in memory.
   */
  eventsDrained?: () => Promise<void>;
  signal?: AbortSignal;
  /** Already opened sources (tests); by default opened from the policy. */
  sources?: OpenedSource[];
  /**
   * List every version of the versioned sources (ListObjectVersions of each prefix) instead of
   * the current keys and the versions of the changed ones only (`backup --full-versions`;
   * docs/versioned-incremental.md). The engine also does on a seed and when one is due.
   */
  fullVersions?: boolean;
  /** Listing ranges of incremental runs (tests): keys per range, and the fewest keys to split at all. */
  listRanges?: RangeSettings;
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
  /** Packs between two index-file checkpoints (tests use small numbers; backup-checkpoints.ts). */
  checkpointPacks?: number;
  /** Version records per checkpoint document of a shard attempt (tests use small numbers; resume.ts RECORDS_PER_DOCUMENT). */
  checkpointRecords?: number;
  /**
   * This run is one shard of a run set: it lists and records only the keys of its range, and its
   * manifest says which shard it is (docs/scale-out.md "Shards").
   */
  shard?: RunShard;
  /** Threads that compress and seal new blobs (encode-pool.ts); 1 (the default) encodes in the main thread. */
  encodeThreads?: number;
  /** Raw bytes encoded in the main thread before the threads start (tests: 0; encode-pool.ts IN_THREAD_BYTES). */
  encodeInThreadBytes?: number;
  /**
   * Back up only these keys (catalog name of the source → keys), as `lakeguard watch` does
   * from change events: each key is listed alone (its versions, in a versioned bucket) and
   * merge-joined with the catalog like any listing, so the run records exactly what a full
   * listing would for it: a new or changed version, a delete marker, a deletion. Keys outside
   * the source's prefixes are ignored; other keys are left as the catalog has them.
   */
  keys?: ReadonlyMap<string, Iterable<string>>;
  /**
   * S3 Inventory's lag (tests: 0): catalogued states seen this long before a report on are not
   * contradicted by it (inventory-store.ts REPORT_LAG_MS, the default).
   */
  inventoryLagMs?: number;
}

/**
 * Backs up one protection group: lists every source in parallel with a prefix fan-out,
 * merge-joins each listing with the catalog, and copies only new or changed objects into
 * packs. The run is recorded as complete, partial (some objects could not be read: each is
 * listed), failed, or interrupted.
 */
export async function backupGroup(opts: BackupOptions): Promise<BackupSummary> {
  const { repo, catalog, policy, group } = opts;
  // A shard's catalog may hold only its range (shard-scope.ts); any other scoped catalog is refused.
  requireBackupScope(catalog, group, opts.shard);
  const dryRun = opts.dryRun ?? false;
  const events = opts.events ?? noEvents;
  const startedAt = new Date();
  const runId = newRunId(startedAt);
  const counters = emptyCounters();
  // A key-driven run lists its keys, never a whole bucket: marked so (refuseStaleReport, inventory-store.ts).
  if (opts.keys !== undefined) counters.keysNamed = 0;
  const sources = opts.sources ?? group.sources.map((s) => openSource(s, policy, { maxSockets: policy.concurrency.transfer * 2 }));
  const repoStatsBefore = opts.repositoryRequestsBefore ?? repo.requestCounts();
  /** Sources whose versioning state could not be read, though they may list: each a failure of the run. */
  const versioningUnknown = new Map<OpenedSource, StorageError>();
  await Promise.all(
    sources.map(async (s) => {
      // With the run's signal: against a bucket that does not answer, a stop (SIGTERM, watch's
      // --stop-grace) would otherwise wait out every retry of this first request.
      s.versioned ??= await s.objectStore.versioningEnabled(opts.signal === undefined ? {} : { signal: opts.signal }).catch((err: unknown) => {
        if (!isUnreadable(err)) throw err;
        // A bucket that cannot be read at all: its listing reports that. One that lists while
        // s3:GetBucketVersioning is refused is backed up as unversioned, which misses the
        // versions written between runs: never in silence (a failure, the run partial).
        if (err.code === 'AccessDenied') versioningUnknown.set(s, err);
        return false;
      });
    }),
  );
  const recordVersioningUnknown = (writer: RunWriter): void => {
    for (const [s, err] of versioningUnknown) {
      const message = `${err.message}: cannot tell whether bucket ${s.bucket} keeps versions; backed up as unversioned, so versions written between runs are not captured; grant s3:GetBucketVersioning (docs/permissions.md)`;
      writer.failed(s.bucket, { key: '', versionId: null }, new StorageError('AccessDenied', message, { backendCode: 'AccessDenied' }));
    }
  };
  // Sources with `inventory:` list from their newest report (scratch files removed on every way out).
  // A shard loads only its range of each report (the range in each bucket: shards.ts).
  const shardRange = opts.shard?.range;
  // A key-driven run lists its keys one by one, never from a report.
  const inventories = await listFromInventories(opts.keys === undefined ? sources : [], {
    catalog,
    group: group.name,
    counters,
    ...(shardRange === undefined ? {} : { range: (bucket: string) => keyRangeWithin(shardRange, bucket, '') }),
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    ...(opts.inventoryLagMs === undefined ? {} : { lagMs: opts.inventoryLagMs }),
    // What the run cannot know (an old report, a prefix it lists nothing under) qualifies its answer: also under --quiet.
    warn: (message) => events({ type: 'warning', message, qualifies: true }),
  });

  if (dryRun) {
    const ctx = new Archiver(opts, sources, counters, null, null);
    recordVersioningUnknown(ctx.writer);
    await ctx.scanAll().finally(() => inventories.close());
    counters.durationMs = Date.now() - startedAt.getTime();
    addRequests(counters, sources.map((s) => s.objectStore.stats));
    return { runId, group: group.name, status: counters.objectsFailed > 0 ? 'partial' : 'complete', dryRun, counters, ...shardOf(opts) };
  }

  const lock = opts.lock ?? (await RepositoryLock.acquire(repo, 'shared', `backup of group ${group.name}`).catch(closing(inventories)));
  let encoder: BlobEncoder | undefined;
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
    if (opts.shard !== undefined) {
      // Recorded at once: should this process die, the next backup on this host records the
      // run as an interrupted attempt of its shard (its manifest carries the shard, from here).
      run.shard = opts.shard;
      catalog.transaction(() => recordRunShard(catalog, run.seq, opts.shard!));
    }
    const checkpoints = new IndexCheckpoints(repo, catalog, lock, events, opts.checkpointPacks);
    const packer = new Packer(repo, {
      onPackWritten: (pack) => {
        counters.packsWritten++;
        catalog.transaction(() => catalog.insertPack(packRecord(pack), run.seq));
        checkpoints.packWritten();
      },
    });
    const recovered = await recoverOrphanedRuns(repo, catalog, packer, events);
    await recoverUnrecordedRuns(repo, catalog, packer, events);
    // A shard attempt takes over what earlier attempts of its shard, killed without a manifest,
    // checkpointed (resume.ts), and checkpoints what it records itself.
    let resumed: Resumed | null = null;
    let checkpointWriter: CheckpointWriter | null = null;
    if (opts.shard !== undefined && opts.keys === undefined) {
      // An attempt recovered just now (this host's) is in this catalog already: not resumed from.
      resumed = await resumeShard(repo, catalog, group.name, opts.shard, events, new Set(recovered)).catch((err: unknown) => {
        if (opts.signal?.aborted || lock.signal.aborted) throw err;
        events({ type: 'warning', message: `could not read the checkpoints of earlier attempts of shard ${opts.shard!.index} of run set ${opts.shard!.name}: ${errorMessage(err)}; backing up the whole range` });
        return null;
      });
      if (resumed !== null) {
        checkpoints.written.push(...resumed.indexes);
        const which = `${resumed.attempts.length === 1 ? 'attempt' : 'attempts'} ${resumed.attempts.join(', ')} of shard ${opts.shard.index} (killed without a manifest)`;
        events({
          type: 'warning',
          message:
            resumed.carryable > 0
              ? `resuming from ${which}: ${resumed.carryable} versions stored by ${resumed.attempts.length === 1 ? 'it' : 'them'} are recorded without a read where the listing shows them unchanged`
              : `not resuming from ${which}: no index file of this repository lists the blobs of the versions ${resumed.attempts.length === 1 ? 'it' : 'they'} checkpointed; backing up the whole range`,
        });
      }
      checkpointWriter = new CheckpointWriter(repo, catalog, { ...run, host: run.host!, shard: opts.shard }, resumed?.indexes ?? [], opts.checkpointRecords);
    }
    encoder = blobEncoder(repo, opts.encodeThreads ?? 1, opts.encodeInThreadBytes);
    const ctx = new Archiver(runOpts, sources, counters, packer, run.seq, encoder, resumed === null ? null : CarriedVersions.open(catalog));
    if (checkpointWriter !== null) checkpoints.withDocuments(checkpointWriter, () => ctx.writer.flush());
    recordVersioningUnknown(ctx.writer);
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
    ctx.closeRecords();
    ctx.writer.flush();
    // No checkpoint after this: the run records everything now (finalize's own packs would queue one).
    await checkpoints.close();
    // Judged once every record is in the catalog, against the history of earlier clean runs;
    // a failed or interrupted run is not judged (it saw only part of its changes).
    const anomalies = fatal === null ? judgeRun(ctx, catalog) : undefined;
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
      await finalizeRun(
        repo,
        catalog,
        packer,
        run,
        status,
        counters,
        () => {
          lock.throwIfLost();
          countRequests();
        },
        anomalies,
        checkpoints.written,
      );
      // The run is recorded as failed or interrupted: what it did so far is its summary, which
      // the command still prints (--json: a `summary` before the `exit_error`).
      if (fatal !== null && typeof fatal === 'object') recordedFailures.set(fatal, { runId, group: group.name, status, dryRun, counters, ...shardOf(opts) });
    } catch (err) {
      if (lock.signal.aborted) {
        // Without the lock, as above: left to the next backup on this host, as a dead process's run.
        if (fatal === null) throw err;
        events({ type: 'warning', message: `could not record the failed run ${runId} in the repository: ${errorMessage(err)}` });
        throw fatal;
      }
      // The repository refused its packs, index or manifest (access denied, Object Lock, gone):
      // the catalog must not keep the run `running` (later read as a dead process's and
      // recorded as interrupted), nor claim it succeeded. It ends failed here, at once, with the
      // error; the next backup on this host writes its manifest (recoverUnrecordedRuns).
      // Stopped (SIGINT/SIGTERM) while recording: an interruption, as before the recording.
      const ended: RunStatus = status === 'interrupted' || opts.signal?.aborted === true || err instanceof InterruptedError ? 'interrupted' : 'failed';
      catalog.finishUnrecordedRun(run.seq, ended, Date.now(), counters, errorMessage(err));
      // A catalog that could not be written (disk full, file locked) is not the repository's fault.
      const code = sqliteCode(err);
      const local = code === undefined ? undefined : catalogFileHint(code);
      const next =
        local === undefined
          ? 'the next `lakeguard backup` on this host records it in the repository once it accepts writes again (check the target\'s permissions and Object Lock: docs/permissions.md)'
          : `${local}; the next \`lakeguard backup\` on this host then records it in the repository`;
      const where = local === undefined ? 'in the repository' : `in the catalog ${catalog.path}`;
      events({ type: 'warning', message: `could not record run ${runId} (group ${group.name}) ${where}: ${errorMessage(err)}; the catalog records it as ${ended}, without a manifest; ${next}` });
      const thrown =
        fatal ??
        (ended === 'interrupted' ? new InterruptedError(`backup of group ${group.name} interrupted while run ${runId} was being recorded`) : null) ??
        new LakeguardError(`backup of group ${group.name} failed: run ${runId} could not be recorded ${where}: ${errorMessage(err)}`, {
          cause: err,
          exitCode: err instanceof LakeguardError ? err.exitCode : ExitCode.error,
          hint: `the catalog records it as failed; ${next}`,
        });
      if (typeof thrown === 'object' && thrown !== null) recordedFailures.set(thrown, { runId, group: group.name, status: ended, dryRun, counters, ...shardOf(opts) });
      throw thrown;
    }
    if (fatal !== null) throw fatal;
    return { runId, group: group.name, status, dryRun, counters, ...(anomalies === undefined ? {} : { anomalies }), ...shardOf(opts) };
  } finally {
    CarriedVersions.close(catalog);
    await encoder?.close();
    inventories.close();
    if (opts.lock === undefined) await lock.release().catch(() => {});
  }
}

/** The summary of the recorded run each failed or interrupted backupGroup threw its error for. */
const recordedFailures = new WeakMap<object, BackupSummary>();

/**
 * The run a failed or interrupted backupGroup recorded (status `failed` or `interrupted`, the
 * counters of what it did), from the error it threw; undefined when the error came before the
 * run started, or the run could not be recorded (it then stays in the catalog as a dead
 * process's run, which the next backup on this host records).
 */
export function recordedRunOf(err: unknown): BackupSummary | undefined {
  return typeof err === 'object' && err !== null ? recordedFailures.get(err) : undefined;
}

/**
 * Runs of this host that ended (failed or interrupted) without their manifest, the repository
 * having refused it: written now, with the status the catalog gave them. Named anew, as an
 * orphan is. One that fails again goes back on the list, and the error stops this backup.
 */
async function recoverUnrecordedRuns(repo: Repository, catalog: Catalog, packer: Packer, events: EventSink): Promise<void> {
  const taken = catalog.takeUnrecordedRuns(hostname());
  for (const [i, { run: found, error }] of taken.entries()) {
    const run = { ...found, id: newRunId(new Date()) };
    try {
      catalog.renameRun(run.seq, run.id);
      await finalizeRun(repo, catalog, packer, run, found.status, run.counters ?? emptyCounters());
      events({ type: 'warning', message: `run ${found.id} (group ${run.group}) ended ${found.status} without a manifest (${error}); recorded it in the repository as ${found.status} run ${run.id}` });
    } catch (err) {
      for (const { run: left, error: was } of taken.slice(i)) catalog.finishUnrecordedRun(left.seq, left.status, left.finished ?? Date.now(), left.counters ?? emptyCounters(), left === found ? errorMessage(err) : was);
      throw err;
    }
  }
}

/**
 * Runs of this host whose process died (killed, power loss) stay "running" in the catalog,
 * with versions whose packs were written but no manifest: record them now, as interrupted,
 * so the repository knows every version the catalog does (and a rebuild loses nothing).
 * Returns the ids they had (their checkpoints, resume.ts, bear them).
 */
async function recoverOrphanedRuns(repo: Repository, catalog: Catalog, packer: Packer, events: EventSink): Promise<string[]> {
  const recovered: string[] = [];
  for (const found of catalog.orphanedRuns(hostname(), isProcessAlive)) {
    recovered.push(found.id);
    // Named anew, by the time it is recorded: other hosts' catalogs find new manifests by
    // listing runs/ after a time marker, which a manifest named at its old start would precede.
    const orphan = { ...found, id: newRunId(new Date()) };
    catalog.renameRun(orphan.seq, orphan.id);
    events({ type: 'warning', message: `run ${found.id} (group ${orphan.group}) was interrupted; recording what it stored as interrupted run ${orphan.id}` });
    await finalizeRun(repo, catalog, packer, orphan, 'interrupted', orphan.counters ?? emptyCounters());
  }
  return recovered;
}

/** The run's verdict from the archiver's detector, compared with the catalog's history of clean or acknowledged runs. */
function judgeRun(ctx: Archiver, catalog: Catalog): RunAnomalies | undefined {
  return ctx.anomalies(new CatalogAnomalyHistory(catalog));
}

/** The summary's `shard` field of a shard attempt: which run set and which shard (the range is in the manifest). */
function shardOf(opts: BackupOptions): Pick<BackupSummary, 'shard'> {
  const s = opts.shard;
  return s === undefined ? {} : { shard: { set: s.set, name: s.name, index: s.index, of: s.of } };
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

