/**
 * `lakeguard copy`: runs of one repository copied into another (docs/copy.md). Blob ids are
 * keyed by each repository's own keys, so every blob a copied run refers to is read from the
 * source's packs (authenticated), encoded again with the target's keys and deduplicated against
 * the target's catalog; the run's records go into the target's catalog and finalize.ts writes
 * its record blobs, index files and manifest there, as a backup's.
 */
import { hostname } from 'node:os';
import { acksOfRun } from '../catalog/anomalies.js';
import type { Catalog } from '../catalog/catalog.js';
import { copiedRunIds, copiesOf, recordCopiedRun } from '../catalog/copied-runs.js';
import { discardUnfinishedRun } from '../catalog/discard-run.js';
import { completeShardAttempt, recordRunShard, shardOfRun } from '../catalog/run-sets.js';
import { requireWholeCatalog } from '../catalog/scope.js';
import { incompleteRuns } from '../catalog/sync.js';
import { writeAck } from './ack.js';
import type { RunRow, VersionRecord } from '../catalog/types.js';
import { IntegrityError, InterruptedError, LakeguardError, UsageError } from '../errors.js';
import { BlobType, flagsCompressed } from '../repository/pack.js';
import { Packer, packRecord } from '../repository/packer.js';
import { RepositoryLock } from '../repository/locks.js';
import type { Repository } from '../repository/repository.js';
import { isProcessAlive } from '../util/process.js';
import { TaskGroup } from '../util/task-group.js';
import { newRunId } from './run-id.js';
import { noEvents, type EventSink } from './events.js';
import { finalizeRun, type RunManifest } from './finalize.js';
import { decodeLocatedBlob, readPackRangeRetrying } from './pack-reads.js';
import { RecordWriter } from './record-writer.js';

/** Source blobs read at once (each one ranged GET of a source pack). */
const READS_IN_FLIGHT = 8;
const PAGE = 1000;
/** Source-to-target blob ids remembered (BlobCopier.targetIds). */
const KNOWN_BLOBS = 100_000;

/** One repository with its synced catalog. */
export interface CopyEnd {
  repo: Repository;
  catalog: Catalog;
}

export interface CopyOptions {
  source: CopyEnd;
  target: CopyEnd;
  /** Only runs of this protection group. */
  group?: string;
  /** Only runs started at or after this time (ms since epoch). */
  since?: number;
  /** Only say what would be copied (runs and acknowledgements); nothing is written. */
  dryRun?: boolean;
  events?: EventSink;
  signal?: AbortSignal;
}

export interface CopiedRun {
  /** The run's id in the source, and the id of its copy in the target (named when copied: docs/copy.md). */
  source: string;
  target: string | null;
  group: string;
  started: string;
  versions: number;
  blobsNew: number;
  blobsDeduplicated: number;
  bytesStored: number;
  /** Its acknowledgements (runs ack) written with the copy (in a dry run: that would be). */
  acks: number;
}

/** Acknowledgements made in the source after an earlier copy of their run (or lost by a killed copy), for that copy. */
export interface AcksOfEarlierCopy {
  source: string;
  target: string;
  acks: number;
}

export interface CopyReport {
  dryRun: boolean;
  source: string;
  target: string;
  copied: CopiedRun[];
  /** Selected runs the target has already (copied earlier). */
  alreadyCopied: number;
  /** Selected runs another copy process is copying right now (left to it). */
  busy: string[];
  /** Selected complete shard attempts superseded by another complete attempt of their index: not copied (the catalog holds none of their versions). */
  superseded: number;
  /** Acknowledgements (runs ack) written in the target (in a dry run: that would be): of the runs copied now, and those made in the source after an earlier copy. */
  acksCopied: number;
  /** The earlier copies that get acknowledgements now (in a dry run: would). */
  acksOfEarlierCopies: AcksOfEarlierCopy[];
  packsWritten: number;
  bytesStored: number;
}

/** The key under which a run and its copy are recognised: the same group, host and start (ms). */
function runKey(run: Pick<RunRow, 'group' | 'host' | 'started'>): string {
  return `${run.group}\u0000${run.host ?? ''}\u0000${run.started}`;
}

/**
 * Refuses to copy a run the source catalog holds only in part (a sync could not read part of it:
 * an index file or record blob damaged, or a kept manifest missing; every sync warns). Its copy
 * would lack those versions, and, being a copy, would never be brought again: the target's history
 * would miss them for good.
 */
function requireCompleteRuns(catalog: Catalog, todo: readonly RunRow[]): void {
  const wanted = new Set(todo.map((r) => r.id));
  const incomplete = incompleteRuns(catalog).filter((r) => wanted.has(r.run));
  if (incomplete.length === 0) return;
  const more = incomplete.length > 1 ? ` and ${incomplete.length - 1} more` : '';
  throw new LakeguardError(`copy: catalog ${catalog.path} holds run ${incomplete[0]!.run}${more} only in part (a sync could not read all of it); its copy would lack those versions for good`, {
    hint: 'restore from a copy what `lakeguard verify` names, then run `lakeguard catalog rebuild` and copy again',
  });
}

/**
 * Copies the selected finished runs of the source that the target does not have, oldest first,
 * each completely (versions, content, failures, manifest) before the next one begins.
 */
export async function copyRuns(opts: CopyOptions): Promise<CopyReport> {
  const { source, target } = opts;
  const events = opts.events ?? noEvents;
  requireWholeCatalog(source.catalog, 'copy', 'every version of the source repository');
  requireWholeCatalog(target.catalog, 'copy', 'every version of the target repository');
  if (source.repo.id === target.repo.id) throw new UsageError(`copy: the source and the target are the same repository (${source.repo.id})`, { hint: '--to-policy must name a second repository' });
  const report: CopyReport = { dryRun: opts.dryRun ?? false, source: source.repo.location, target: target.repo.location, copied: [], alreadyCopied: 0, busy: [], superseded: 0, acksCopied: 0, acksOfEarlierCopies: [], packsWritten: 0, bytesStored: 0 };

  const copiedBefore = copiedRunIds(target.catalog, source.repo.id);
  const inTarget = new Map<string, RunRow>();
  for (const r of target.catalog.listRuns()) inTarget.set(runKey(r), r);
  const selected = source.catalog
    .listRuns(opts.group === undefined ? {} : { group: opts.group })
    // A run still "running" in the source's catalog has no manifest in the source (yet), nor
    // has one that ended while the source refused its manifest (the next backup records it).
    .filter((r) => r.status !== 'running' && source.catalog.unrecordedError(r.seq) === undefined && (opts.since === undefined || r.started >= opts.since));
  const todo: RunRow[] = [];
  for (const run of selected) {
    // Its copy would be an empty complete attempt with a new id, which may sort before the
    // copy of the attempt that counts and so supersede it in every catalog of the target.
    if (isSupersededComplete(source.catalog, run)) {
      report.superseded++;
      continue;
    }
    const copy = inTarget.get(runKey(run));
    // Copied before, and perhaps forgotten there since: not brought again.
    if (copiedBefore.has(run.id)) report.alreadyCopied++;
    else if (copy === undefined) todo.push(run);
    else if (copy.status !== 'running') report.alreadyCopied++;
    else if (isOrphaned(target.catalog, copy)) todo.push(run);
    else report.busy.push(run.id);
  }
  for (const id of report.busy) events({ type: 'warning', message: `run ${id} is being copied by another process right now; left to it` });
  requireCompleteRuns(source.catalog, todo);
  warnIfForgottenInTarget(target.catalog, inTarget, todo, events);
  if (todo.length > 0 && source.repo.encrypted && !target.repo.encrypted) {
    events({ type: 'warning', message: `the target ${target.repo.location} is not encrypted: the runs copied from the encrypted ${source.repo.location} are stored there in plaintext` });
  }

  const acksMissing = acksToBringOver(source, target, selected);
  if (report.dryRun) {
    // Everything the copy would write: each run (its acks travel with it), then the acks of earlier copies.
    const counts = source.catalog.versionCountsByRun();
    for (const run of todo) {
      const copied = emptyCopied(run, null, counts.get(run.seq) ?? 0);
      copied.acks = acksOfRun(source.catalog, run.id).length;
      report.copied.push(copied);
      report.acksCopied += copied.acks;
    }
    for (const [from, to] of acksMissing) {
      const acks = acksOfRun(source.catalog, from).length;
      report.acksOfEarlierCopies.push({ source: from, target: to, acks });
      report.acksCopied += acks;
    }
    return report;
  }
  if (todo.length === 0 && acksMissing.length === 0) return report;
  target.repo.requireWritable();

  const sourceLock = await RepositoryLock.acquire(source.repo, 'shared', `copy to ${target.repo.location}`);
  try {
    const targetLock = await RepositoryLock.acquire(target.repo, 'shared', `copy from ${source.repo.location}`);
    try {
      const signal = AbortSignal.any([sourceLock.signal, targetLock.signal, ...(opts.signal === undefined ? [] : [opts.signal])]);
      let done = 0;
      for (const run of todo) {
        if (signal.aborted) throw new InterruptedError('copy interrupted');
        // A copy of this run left by a killed process: its packs stay (they deduplicate), its rows go.
        const left = inTarget.get(runKey(run));
        if (left !== undefined) discardUnfinishedRun(target.catalog, left.seq);
        events({ type: 'phase', phase: 'copy', detail: `run ${run.id} (${++done} of ${todo.length})` });
        const copied = await copyRun({ ...opts, events }, run, signal, () => {
          sourceLock.throwIfLost();
          targetLock.throwIfLost();
        });
        report.copied.push(copied.run);
        report.packsWritten += copied.packs;
        report.bytesStored += copied.run.bytesStored;
        report.acksCopied += copied.run.acks;
      }
      for (const [from, to] of acksMissing) {
        if (signal.aborted) throw new InterruptedError('copy interrupted');
        const acks = await copyAcks(opts, from, to, () => {
          sourceLock.throwIfLost();
          targetLock.throwIfLost();
        });
        report.acksOfEarlierCopies.push({ source: from, target: to, acks });
        report.acksCopied += acks;
      }
    } finally {
      await targetLock.release().catch(() => {});
    }
  } finally {
    await sourceLock.release().catch(() => {});
  }
  return report;
}

/**
 * Runs copied earlier whose copy the target keeps without any acknowledgement while the source
 * has one (acknowledged after the copy, or a copy killed between its manifest and its acks).
 */
function acksToBringOver(source: CopyEnd, target: CopyEnd, selected: readonly RunRow[]): [string, string][] {
  const copies = copiesOf(target.catalog, source.repo.id);
  const out: [string, string][] = [];
  for (const run of selected) {
    const copy = copies.get(run.id);
    if (copy === undefined || target.catalog.findRun(copy) === undefined) continue;
    if (acksOfRun(target.catalog, copy).length === 0 && acksOfRun(source.catalog, run.id).length > 0) out.push([run.id, copy]);
  }
  return out;
}

/**
 * A copy forgotten in the target before this catalog imported it (another host's catalog, a
 * rebuilt one) is unknown here, so its source run is selected again (docs/copy.md "Limits").
 * Said when it shows: a run to copy that started before the oldest run its group keeps in a
 * target that has forgotten runs.
 */
function warnIfForgottenInTarget(catalog: Catalog, inTarget: ReadonlyMap<string, RunRow>, todo: readonly RunRow[], events: EventSink): void {
  const forgotten = catalog.knownRunIds().size - inTarget.size;
  if (forgotten <= 0) return;
  const oldest = new Map<string, number>();
  for (const r of inTarget.values()) oldest.set(r.group, Math.min(oldest.get(r.group) ?? Infinity, r.started));
  const older = todo.filter((r) => r.started < (oldest.get(r.group) ?? -Infinity));
  if (older.length === 0) return;
  events({
    type: 'warning',
    message: `the target has forgotten ${forgotten} runs and ${older.length} runs to copy are older than every run it keeps (first: ${older[0]!.id}); if forget removed their copies there before this catalog saw them (on another host, or before a catalog rebuild), they are copied again: pass --since to copy only newer runs`,
  });
}

/** A complete shard attempt another complete attempt of its index supersedes (docs/scale-out.md). */
function isSupersededComplete(catalog: Catalog, run: RunRow): boolean {
  if (run.status !== 'complete') return false;
  const shard = shardOfRun(catalog, run.seq);
  return shard !== undefined && completeShardAttempt(catalog, shard.set, shard.index) !== run.id;
}

/** A target run still "running" whose process is gone (killed, power loss). */
function isOrphaned(catalog: Catalog, run: RunRow): boolean {
  return catalog.orphanedRuns(run.host ?? hostname(), isProcessAlive).some((r) => r.seq === run.seq);
}

function emptyCopied(run: RunRow, target: string | null, versions: number): CopiedRun {
  return { source: run.id, target, group: run.group, started: new Date(run.started).toISOString(), versions, blobsNew: 0, blobsDeduplicated: 0, bytesStored: 0, acks: 0 };
}

/**
 * One run: its versions' content into the target's packs, its records into the target's catalog
 * once their blobs are in written packs, then finalizeRun. On any failure the run's rows leave the
 * target's catalog again (its packs stay catalogued, and deduplicate the next attempt).
 */
async function copyRun(opts: CopyOptions, run: RunRow, signal: AbortSignal, checkLocks: () => void): Promise<{ run: CopiedRun; packs: number }> {
  const { source, target } = opts;
  const manifest = await source.repo.readDocument<RunManifest>('runs', run.id);
  const targetRun: RunRow = { seq: 0, id: newRunId(new Date()), group: run.group, started: run.started, finished: null, status: 'running', host: manifest.host, counters: null };
  targetRun.seq = target.catalog.beginRun({ id: targetRun.id, group: targetRun.group, started: targetRun.started, host: manifest.host, pid: process.pid });
  const copied = emptyCopied(run, targetRun.id, 0);
  let packs = 0;
  try {
    if (manifest.shard !== undefined) {
      targetRun.shard = manifest.shard;
      target.catalog.transaction(() => recordRunShard(target.catalog, targetRun.seq, manifest.shard!));
    }
    const packer = new Packer(target.repo, {
      onPackWritten: (pack) => {
        packs++;
        target.catalog.transaction(() => target.catalog.insertPack(packRecord(pack), targetRun.seq));
      },
    });
    const writer = new RecordWriter(target.catalog, targetRun.seq);
    const blobs = new BlobCopier(source, target, packer, signal, copied);
    const reads = new TaskGroup();
    // Records wait here until every blob they name is in a written pack (the catalog locates it).
    const records = new TaskGroup();
    for (let after = 0; ; ) {
      const page = source.catalog.versionsOfRun(run.seq, after, PAGE);
      if (page.length === 0) break;
      after = page[page.length - 1]!.row;
      for (const { row: _row, locs: _locs, ...record } of page) {
        if (signal.aborted) throw new InterruptedError('copy interrupted');
        await reads.waitBelow(READS_IN_FLIGHT);
        reads.throwIfFailed();
        records.throwIfFailed();
        reads.spawn(async () => {
          const copies: { id: string; stored: Promise<void> | null }[] = [];
          for (const hex of record.blobs) copies.push(await blobs.copy(hex, `${record.bucket}/${record.key}`));
          const out: VersionRecord = { ...record, blobs: copies.map((c) => c.id) };
          records.spawn(async () => {
            for (const c of copies) await c.stored;
            writer.addVersion(out);
          });
        });
        copied.versions++;
      }
    }
    await reads.wait();
    await packer.flush();
    await records.wait();
    for (const f of source.catalog.failuresOfRun(run.seq)) writer.addFailure(f);
    writer.flush();
    // The last moment to stop without a manifest (after it, the run is copied).
    if (signal.aborted) throw new InterruptedError(`copy of run ${run.id} interrupted`);
    checkLocks();
    const from = { repository: source.repo.id, run: run.id };
    await finalizeRun(target.repo, target.catalog, packer, targetRun, manifest.status, manifest.counters, checkLocks, manifest.anomalies, [], {
      finished: Date.parse(manifest.finished),
      from,
    });
    recordCopiedRun(target.catalog, from, targetRun.id);
  } catch (err) {
    discardUnfinishedRun(target.catalog, targetRun.seq);
    throw signal.aborted && !(err instanceof InterruptedError) ? new InterruptedError(`copy of run ${run.id} interrupted`) : err;
  }
  // After the manifest the run is copied, whatever happens to its acks: a copy killed or refused
  // in between (AccessDenied on acks/) gets them on the next copy (acksToBringOver).
  try {
    copied.acks = await copyAcks(opts, run.id, targetRun.id, checkLocks);
  } catch (err) {
    if (err instanceof InterruptedError || !(err instanceof LakeguardError)) throw err;
    throw new LakeguardError(`run ${run.id} was copied as ${targetRun.id}, but not its acknowledgements: ${err.message}`, {
      cause: err,
      exitCode: err.exitCode,
      hint: 'run the copy again once the target accepts acks/: it writes them for that copy',
    });
  }
  return { run: copied, packs };
}

/**
 * The source's acknowledgements of a run (runs ack, --incident), written again in the target for
 * its copy: who, when, the note and the kind travel; the name is new (chosen under the target's
 * lock, as catalog sync needs) and the document names the copy's run id.
 */
async function copyAcks(opts: CopyOptions, sourceRun: string, targetRun: string, checkLocks: () => void): Promise<number> {
  const acks = acksOfRun(opts.source.catalog, sourceRun);
  for (const a of acks) {
    checkLocks();
    await writeAck(opts.target.repo, opts.target.catalog, { run: targetRun, host: a.host, created: new Date(a.created), by: a.by, note: a.note, incident: a.incident === 1 });
  }
  return acks.length;
}

/** Reads source blobs and stores them, encoded with the target's keys, once per target blob id. */
class BlobCopier {
  /** Target blob ids (hex) in a pack not written yet: their pack's "written" promise. */
  private readonly pending = new Map<string, Promise<void>>();
  /**
   * Source blob id -> target blob id (hex) of blobs met before: content the source deduplicated
   * (the same file under many keys, or kept across runs) is read once, not once per version.
   * Cleared when full (~100 bytes an entry).
   */
  private readonly targetIds = new Map<string, string>();

  constructor(
    private readonly source: CopyEnd,
    private readonly target: CopyEnd,
    private readonly packer: Packer,
    private readonly signal: AbortSignal,
    private readonly counts: CopiedRun,
  ) {}

  /** The target id of a source blob, and when it is durable in the target. */
  async copy(sourceHex: string, what: string): Promise<{ id: string; stored: Promise<void> | null }> {
    const known = this.targetIds.get(sourceHex);
    const again = known === undefined ? null : this.inTarget(known);
    if (again !== null) return again;
    const hash = Buffer.from(sourceHex, 'hex');
    const loc = this.source.catalog.blobLocation(hash);
    if (loc === undefined) {
      throw new IntegrityError(`cannot copy ${what}: its blob ${sourceHex} is in no pack the source's catalog knows`, { hint: 'run `lakeguard verify` on the source' });
    }
    const stored = await readPackRangeRetrying(this.source.repo, loc.pack, loc.offset, loc.offset + loc.length, this.signal);
    const raw = decodeLocatedBlob(this.source.repo, stored, { hash, pack: loc.pack, offset: loc.offset, length: loc.length, rawLength: loc.rawLength, compressed: flagsCompressed(loc.flags) }, `cannot copy ${what}`);
    const blob = this.target.repo.encodeBlob(raw, BlobType.data);
    const id = blob.id.toString('hex');
    if (this.targetIds.size >= KNOWN_BLOBS) this.targetIds.clear();
    this.targetIds.set(sourceHex, id);
    const existing = this.inTarget(id);
    if (existing !== null) return existing;
    // Claimed before the first await, so a concurrent copy of the same content waits for this one.
    let settle!: { resolve: () => void; reject: (err: unknown) => void };
    const written = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    written.catch(() => {}); // awaited by the records that need it; must not be an unhandled rejection meanwhile
    this.pending.set(id, written);
    this.counts.blobsNew++;
    this.counts.bytesStored += blob.stored.length;
    try {
      const added = await this.packer.add(blob);
      added.stored.then(settle.resolve, settle.reject).finally(() => this.pending.delete(id));
    } catch (err) {
      this.pending.delete(id);
      settle.reject(err);
      throw err;
    }
    return { id, stored: written };
  }

  /** A target blob already stored or on its way into a pack (counted as deduplicated); null when it is not. */
  private inTarget(id: string): { id: string; stored: Promise<void> | null } | null {
    const waiting = this.pending.get(id);
    if (waiting === undefined && !this.target.catalog.hasBlob(Buffer.from(id, 'hex'))) return null;
    this.counts.blobsDeduplicated++;
    return { id, stored: waiting ?? null };
  }
}
