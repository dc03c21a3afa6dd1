/**
 * Brings a catalog up to date with its repository, incrementally: the run manifests, index
 * files, forget/prune documents and acknowledgements written since its last sync, found by
 * listing `runs/`, `forgets/` and `acks/` after a time marker (their names start with a UTC time). An empty catalog is
 * filled the same way, from the beginning. Why the marker is safe, and what each step costs,
 * is in docs/catalog.md ("Sync"); the import itself is rebuild's (rebuild.ts).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Catalog } from '../catalog/catalog.js';
import {
  addIncompleteRun,
  advanceSyncMarker,
  requireAloneOnFile,
  runRowIds,
  dropKeysOutside,
  type DroppedOutside,
  CatalogInUseError,
  catalogHoldsNothing,
  catalogIsFresh,
  markWholeByRequest,
  discardRun,
  inOneTransaction,
  runSeqOf,
  isPruneDocument,
  dropPrunedPacks,
  importingRun,
  incompleteRuns,
  releaseSyncLease,
  resetCatalogForScope,
  setImportingRun,
  syncMarker,
  takeSyncLease,
  type IncompleteRun,
  type PruneDocument,
} from '../catalog/sync.js';
import { knownAcks } from '../catalog/anomalies.js';
import { runningRunSetsFloor } from '../catalog/run-sets.js';
import { catalogScope, describeScope, isRangeScope, normalizeScope, scopeDifference, scopeHoldsKey, scopeIsOnDemand, scopeOverlapsRange, setCatalogScope, type CatalogPrefix } from '../catalog/scope.js';
import { dropListedVersions, runIdTime, setPendingDeletion, type ForgetDocument } from '../catalog/forget.js';
import { completeShardAttempt } from '../catalog/run-sets.js';
import { onDemandChange, type Demand } from './on-demand-scope.js';
import { shardProblem } from './rebuild-manifests.js';
import { InterruptedError, LakeguardError, isNotFound } from '../errors.js';
import { objectKey } from '../repository/layout.js';
import { lockTimeFromId } from '../repository/locks.js';
import type { Repository } from '../repository/repository.js';
import { statsDelta, type RequestStats } from '../storage/types.js';
import { isProcessAlive } from '../util/process.js';
import { newRunId } from './run-id.js';
import { noEvents, type EventSink } from './events.js';
import type { RunManifest } from './finalize.js';
import { loadAcks } from './import-anomalies.js';
import { loadDrills } from './drill.js';
import { knownDrills } from '../catalog/drills.js';
import { readManifests } from './rebuild-manifests.js';
import { RecordLoader, forgottenVersionKeys, recordsLocateBlobs } from './record-loader.js';
import { applyForgets, loadIndexes, manifestsToImport, type ImportOptions, type ImportTally, type MissingBlob, type RebuildDamage } from './rebuild.js';

/** What a sync warning about a damaged repository object tells the operator to do next. */
export const DAMAGE_NEXT_STEP = 'run `lakeguard verify` to name every damaged object';
/** A problem that already names its next step (a verify or a rebuild) gets no second one. */
const NAMES_NEXT_STEP = /`lakeguard (verify|catalog rebuild)/;

/**
 * How far before the oldest lock (or now) the marker stays: covers clocks of different hosts
 * that disagree, and a run named a moment before its lock was written. Names listed again
 * because of it are known and skipped (one LIST page holds 1,000).
 */
export const SYNC_MARGIN_MS = 60 * 60 * 1000;
/** Known names listed after the marker before a sync moves the marker on although nothing was new. */
const RELISTED_BEFORE_ADVANCE = 200;
/** A time marker has the form of a run id's time part: YYYYMMDDTHHMMSSZ. */
const MARKER_LENGTH = 16;
const MAX_LISTED = 1000;
const LEASE_POLL_MS = 200;

export interface SyncOptions {
  repo: Repository;
  catalog: Catalog;
  /** Parallel reads of manifests, index files and record blobs. */
  concurrency?: number;
  events?: EventSink;
  signal?: AbortSignal;
  /**
   * Change what the catalog holds before syncing (`catalog sync --prefix/--all`): add prefixes
   * to a scoped catalog (or scope a catalog that holds nothing yet), or make it whole ('all').
   * Absent: the scope stays as it is (every command's sync).
   */
  widen?: readonly CatalogPrefix[] | 'all';
  /**
   * What a command selects (docs/catalog.md "On-demand catalogs"), not an operator's request: a
   * catalog that holds nothing yet is scoped to it on demand; one scoped on demand gets what it
   * lacks, or is made whole ('all') without marking it whole by request; a catalog scoped by
   * `catalog sync --prefix` or a shard, and a whole one, stay as they are. Decided under the
   * sync's lease (onDemandChange). Not with `widen`.
   */
  demand?: Demand;
  /**
   * A shard's key range (docs/scale-out.md "A shard on a fresh host syncs only its key range"): scope a catalog
   * that holds nothing yet to exactly these parts, or re-scope one a shard scoped to other parts
   * (emptied and imported anew); a whole catalog, and one scoped to prefixes, stay as they are.
   */
  scopeTo?: readonly CatalogPrefix[];
}

export interface SyncReport {
  /** No marker yet (an empty or never-synced catalog): everything was listed, index/ too. */
  full: boolean;
  /** Runs imported (their ids, capped at 1,000). */
  runs: number;
  runIds: string[];
  indexFiles: number;
  forgets: number;
  prunes: number;
  /** Acknowledgements (acks/) recorded. */
  acks: number;
  /** Restore drills (drills/) recorded. */
  drills: number;
  damage: RebuildDamage[];
  missing: MissingBlob[];
  missingCount: number;
  bytesRead: number;
  /** The listing marker after the sync (null: none). */
  marker: string | null;
  /** What the catalog holds after the sync: null for the whole repository, else the prefixes of a scoped catalog. */
  scope: CatalogPrefix[] | null;
  /** Whether that scope was made by commands' selections (docs/catalog.md "On-demand catalogs"). */
  scopeOnDemand: boolean;
  /** Whether `widen` changed the scope (the added prefixes imported in place, or the catalog emptied and synced anew for it). */
  scopeChanged: boolean;
  /** Whether the prefixes `widen` added were imported into the catalog in place (nothing emptied; docs/catalog.md "Widening"). */
  widenedInPlace: boolean;
  /**
   * A shard catalog whose key range moved in place (docs/scale-out.md "A shard on a fresh host
   * syncs only its key range"): what it dropped outside the new range; null when it did not
   * (the same range, a fresh catalog, or one emptied and imported anew).
   */
  resized: DroppedOutside | null;
  /** Runs a scoped catalog imported by reading index files: their records do not locate their blobs (older lakeguard). */
  unlocatedRuns: number;
  requests: RequestStats;
  durationMs: number;
}

export function isPruneName(name: string): boolean {
  return name.endsWith('-prune');
}

/** The marker for an instant: names of objects written from then on sort after it. */
export function markerAt(ms: number): string {
  return newRunId(new Date(ms)).slice(0, MARKER_LENGTH);
}

export async function syncCatalog(opts: SyncOptions): Promise<SyncReport> {
  const started = Date.now();
  const { repo, catalog } = opts;
  const events = opts.events ?? noEvents;
  const statsBefore = repo.requestCounts();
  const checkSignal = (): void => {
    if (opts.signal?.aborted) throw new InterruptedError('catalog sync interrupted; what was applied is complete, the rest follows next time');
  };
  const owner = `${process.pid}:${randomBytes(6).toString('hex')}`;
  await takeLease(catalog, owner, events, checkSignal);
  try {
    // Under the lease: no other process syncs this file while it is emptied for a new scope.
    let scopeChanged = false;
    let inPlace = false;
    let widened: Sync | undefined;
    if (opts.scopeTo !== undefined) {
      const change = scopeToRange(catalog, opts.scopeTo, events);
      if (typeof change === 'object') {
        // Another shard range on a synced catalog: moved in place, importing and dropping only the slices that differ.
        widened = new Sync(opts, events, checkSignal);
        try {
          requireAloneOnFile(catalog);
        } catch (err) {
          throw err instanceof CatalogInUseError ? inUseByAnother(catalog) : err;
        }
        inPlace = await widened.resize(change.before, change.after);
        if (!inPlace) reimportRange(catalog, change.before, change.after, events);
      }
      scopeChanged = change !== false;
    } else if (opts.widen !== undefined || opts.demand !== undefined) {
      const change = opts.demand !== undefined ? changeScopeOnDemand(catalog, opts.demand, events) : changeScope(catalog, opts.widen!, events);
      if (typeof change === 'object') {
        // Adding prefixes to a synced scoped catalog imports only their keys, in place; when
        // that cannot be shown to equal a fresh sync of the wider scope, the catalog is imported anew.
        widened = new Sync(opts, events, checkSignal);
        inPlace = await widened.widen(change.before, change.after);
        if (!inPlace) {
          resetCatalogForScope(catalog, change.after);
          events({ type: 'phase', phase: 'sync', detail: `importing the wider scope anew: ${describeScope(change.after)}` });
        }
      }
      scopeChanged = change !== false;
    }
    const report = await new Sync(opts, events, checkSignal, widened).run();
    report.scopeChanged = scopeChanged;
    report.widenedInPlace = inPlace && opts.scopeTo === undefined;
    report.resized = opts.scopeTo !== undefined && inPlace ? widened!.report.resized : null;
    report.requests = statsDelta(statsBefore, repo.requestCounts());
    report.durationMs = Date.now() - started;
    return report;
  } finally {
    releaseSyncLease(catalog, owner);
  }
}

/** One process syncs a catalog file at a time; the others wait, then find little or nothing new. */
async function takeLease(catalog: Catalog, owner: string, events: EventSink, checkSignal: () => void): Promise<void> {
  let told = false;
  for (;;) {
    const holder = takeSyncLease(catalog, owner, isProcessAlive);
    if (holder === null) return;
    if (!told) events({ type: 'phase', phase: 'sync', detail: `waiting for process ${holder.split(':')[0]}, which is syncing this catalog` });
    told = true;
    checkSignal();
    await delay(LEASE_POLL_MS);
  }
}

class Sync {
  private readonly repo: Repository;
  private readonly catalog: Catalog;
  private readonly concurrency: number;
  readonly report: SyncReport & ImportTally;
  /** Names that could not be applied: the marker stays before them, so every sync reports them again. */
  private readonly held: string[] = [];
  /** Every problem reported by this sync (the listed copy in the report is capped). */
  private damageCount = 0;

  constructor(
    private readonly opts: SyncOptions,
    private readonly events: EventSink,
    private readonly checkSignal: () => void,
    /** The widening that ran before this sync (its damage and missing versions are this sync's report too). */
    widened?: Sync,
  ) {
    this.repo = opts.repo;
    this.catalog = opts.catalog;
    this.concurrency = Math.max(1, opts.concurrency ?? 8);
    this.report = {
      full: false,
      runs: 0,
      runIds: [],
      indexFiles: 0,
      forgets: 0,
      prunes: 0,
      acks: 0,
      drills: 0,
      damage: [],
      missing: [],
      missingCount: 0,
      bytesRead: 0,
      marker: null,
      scope: catalogScope(opts.catalog),
      scopeOnDemand: scopeIsOnDemand(opts.catalog),
      scopeChanged: false,
      widenedInPlace: false,
      resized: null,
      unlocatedRuns: 0,
      requests: statsDelta(opts.repo.requestCounts(), opts.repo.requestCounts()),
      durationMs: 0,
    };
    if (widened !== undefined) {
      const w = widened.report;
      Object.assign(this.report, { damage: w.damage, missing: w.missing, missingCount: w.missingCount, bytesRead: w.bytesRead });
      this.held.push(...widened.held);
      this.damageCount = widened.damageCount;
    }
  }

  /**
   * Adds the keys of \`after\` that \`before\` does not hold to this scoped, synced catalog, as a
   * fresh sync of \`after\` would hold them at the point this catalog is synced to (docs/catalog.md
   * "Widening a scoped catalog"): the versions and failures the runs it knows recorded for those
   * keys, read from only the record blobs overlapping the new parts, each in the run it ends in
   * once the forget documents it applied have moved forgotten runs' versions; then those
   * documents' dropped versions of these keys, and the prune documents it applied, again. One
   * transaction, the new scope recorded in it: a widening interrupted leaves the old scope whole.
   * Returns false (nothing changed) when it cannot: a run whose records do not locate their
   * blobs (an older lakeguard), a run the catalog does not hold where a fresh sync would put
   * versions, a forget document it applied that cannot be read now, or a run half-imported.
   */
  async widen(before: readonly CatalogPrefix[], after: readonly CatalogPrefix[]): Promise<boolean> {
    const added = after.filter((p) => !before.some((q) => JSON.stringify(q) === JSON.stringify(p)));
    this.events({ type: 'phase', phase: 'sync', detail: `adding ${describeScope(added)}: importing only its keys` });
    return this.replay(before, after, added, null);
  }

  /**
   * Moves a shard catalog's key range in place (docs/scale-out.md "A shard on a fresh host syncs
   * only its key range"): the slices of \`after\` that \`before\` does not hold are imported as
   * widen() imports an added prefix (reading only the record blobs overlapping them), and what
   * \`after\` does not hold is dropped (dropKeysOutside), in one transaction with the new scope:
   * an interrupted resize leaves the old range whole. Besides widen()'s cases it returns false
   * when the catalog holds a run whose manifest the repository does not list (a backup of this
   * host that died before writing it): a fresh sync of the new range would not hold it.
   * The caller checks first that no other process has the file open (keys would go under it).
   */
  async resize(before: readonly CatalogPrefix[], after: readonly CatalogPrefix[]): Promise<boolean> {
    const added = scopeDifference(after, before);
    const removed = scopeDifference(before, after);
    this.events({
      type: 'phase',
      phase: 'sync',
      detail: `moving this shard's key range in place: importing ${added.length === 0 ? 'nothing' : describeScope(added)}, dropping ${removed.length === 0 ? 'nothing' : describeScope(removed)}`,
    });
    return this.replay(before, after, added, removed);
  }

  /**
   * widen() and resize(): imports the keys of \`after\` that \`before\` does not hold, reading the
   * record blobs overlapping \`read\`; with \`removed\` (a resize), also drops what \`after\` does not hold.
   */
  private async replay(before: readonly CatalogPrefix[], after: readonly CatalogPrefix[], read: CatalogPrefix[], removed: CatalogPrefix[] | null): Promise<boolean> {
    const { catalog, repo } = this;
    // A run a killed sync left half-imported is discarded and imported again by the sync that follows: import anew.
    if (importingRun(catalog) !== null) return false;
    const added = read;
    const holds = (bucket: string, key: string): boolean => scopeHoldsKey(after, bucket, key) && !scopeHoldsKey(before, bucket, key);
    // The runs this catalog knows (kept or forgotten) whose manifests are still there, in the order a fresh sync imports them (readManifests: by start).
    const known = catalog.knownRunIds();
    const listedAll = await this.listAfter('runs', null);
    const listed = listedAll.filter((n) => known.has(n));
    // A shard catalog's own run that has no manifest (its process died first) is not what a fresh sync holds: imported anew.
    if (removed !== null) {
      const names = new Set(listedAll);
      if (runRowIds(catalog).some((id) => !names.has(id))) return false;
    }
    const manifests = await readManifests(repo, listed, this.concurrency, { skipDamaged: true, skipMissing: true }, this.damaged, this.checkSignal);
    if (manifests.some((m) => !recordsLocateBlobs(m))) return false;
    // The forget and prune documents it applied, in the order a fresh sync applies them.
    const applied = catalog.knownForgets();
    const names = (await this.listAfter('forgets', null)).filter((n) => applied.has(n));
    const forgets: ForgetDocument[] = [];
    const prunes: [string, PruneDocument][] = [];
    for (const name of [...names.filter((n) => !isPruneName(n)), ...names.filter(isPruneName)]) {
      this.checkSignal();
      let doc: ForgetDocument | PruneDocument;
      try {
        doc = await repo.readDocument<ForgetDocument | PruneDocument>('forgets', name);
      } catch {
        return false; // read when it was applied, unreadable now: imported anew, and reported then
      }
      if (isPruneDocument(doc)) prunes.push([name, doc]);
      else forgets.push(doc);
    }
    // Where a fresh sync ends each run's versions: a forgotten run hands them to the next run that remains.
    const movedTo = new Map<string, string>();
    const remaining = manifests.map((m) => m.id);
    for (const doc of forgets) {
      const forgotten = new Set(doc.forgotten);
      for (const id of doc.forgotten) {
        const i = remaining.indexOf(id);
        if (i < 0) continue;
        const next = remaining.slice(i + 1).find((r) => !forgotten.has(r));
        if (next === undefined) continue;
        movedTo.set(id, next);
        remaining.splice(i, 1);
      }
    }
    const endsIn = (id: string): string => {
      let r = id;
      while (movedTo.has(r)) r = movedTo.get(r)!;
      return r;
    };
    if (manifests.some((m) => runSeqOf(catalog, endsIn(m.id)) === undefined)) return false;

    const loader = new RecordLoader(repo, catalog, this.report, this.damaged, this.concurrency, this.checkSignal, after);
    loader.forgottenVersions = forgottenVersionKeys(forgets);
    await inOneTransaction(catalog, async () => {
      for (const m of manifests) {
        this.checkSignal();
        // A complete shard attempt superseded by one sorting first recorded nothing (record-loader.ts).
        const shard = shardProblem(m.shard) === null ? m.shard : undefined;
        const keeper = shard !== undefined && m.status === 'complete' ? completeShardAttempt(catalog, shard.set, shard.index) : null;
        if (keeper !== null && keeper < m.id) continue;
        const target = endsIn(m.id);
        const damageBefore = this.damageCount;
        // A forgotten run's failures go with it; its versions move on.
        const missing = await loader.addKeys(m, runSeqOf(catalog, target)!, added, holds, target === m.id);
        if (missing > 0 || this.damageCount > damageBefore) {
          this.warnIncomplete(addIncompleteRun(catalog, { run: m.id, versions: missing, recordBlobs: this.damageCount - damageBefore }));
        }
      }
      for (const doc of forgets) dropListedVersions(catalog, doc, holds);
      // Blobs located from records in packs a prune deleted, that nothing uses now, go as in a fresh sync.
      for (const [name, doc] of prunes) this.applyPrune(name, doc);
      if (removed !== null && removed.length > 0) {
        // Record blobs a fresh sync of the new range reads (and so locates) stay; those of the old range only go.
        const kept = new Set<string>();
        const unused: string[] = [];
        for (const m of manifests) {
          m.records.forEach((hex, i) => {
            const r = m.recordRanges![i]!;
            if (scopeOverlapsRange(after, r.first, r.last)) kept.add(hex);
            else if (scopeOverlapsRange(before, r.first, r.last)) unused.push(hex);
          });
        }
        this.report.resized = dropKeysOutside(catalog, removed, after, unused, kept, prunes.flatMap(([, d]) => d.indexFilesAdded));
      } else if (removed !== null) this.report.resized = { objects: 0, versions: 0, failures: 0, blobs: 0, packs: 0 };
      setCatalogScope(catalog, after);
    });
    catalog.forgetCachedRowIds();
    this.events({ type: 'phase', phase: 'sync', detail: `the catalog now holds ${describeScope(after)}` });
    return true;
  }

  private readonly damaged = (what: string, problem: string): void => {
    this.damageCount++;
    if (this.report.damage.length < MAX_LISTED) this.report.damage.push({ what, problem });
    const m = /^(?:runs|forgets|acks|drills)\/(.+)$/.exec(what);
    if (m !== null) this.held.push(m[1]!);
    this.events({ type: 'warning', qualifies: true, message: `${what}: ${problem}${NAMES_NEXT_STEP.test(problem) ? '' : `; ${DAMAGE_NEXT_STEP}`}` });
  };

  async run(): Promise<SyncReport> {
    const { catalog, report } = this;
    // A sync killed while importing a run left part of it: remove it, it is imported again below.
    const half = importingRun(catalog);
    if (half !== null) discardRun(catalog, half);
    for (const r of incompleteRuns(catalog)) this.warnIncomplete(r);

    const now = Date.now();
    const marker = syncMarker(catalog);
    report.full = marker === null;
    report.marker = marker;
    this.events({ type: 'phase', phase: 'sync', detail: marker === null ? 'listing the repository' : `listing what is new since ${marker}` });
    // Runs before forgets: a forget document may name a run, never the other way round.
    const knownRuns = catalog.knownRunIds();
    const listedRuns = await this.listAfter('runs', marker);
    const newRuns = listedRuns.filter((n) => !knownRuns.has(n));
    const knownForgets = catalog.knownForgets();
    const listedForgets = await this.listAfter('forgets', marker);
    const newForgets = listedForgets.filter((n) => !knownForgets.has(n));
    const known = knownAcks(catalog);
    const listedAcks = await this.listAfter('acks', marker);
    const newAcks = listedAcks.filter((n) => !known.has(n));
    const drillsKnown = knownDrills(catalog);
    const listedDrills = await this.listAfter('drills', marker);
    const newDrills = listedDrills.filter((n) => !drillsKnown.has(n));
    this.checkSignal();
    const relisted = listedRuns.length + listedForgets.length + listedAcks.length + listedDrills.length;
    if (marker !== null && newRuns.length === 0 && newForgets.length === 0 && newAcks.length === 0 && newDrills.length === 0 && relisted < RELISTED_BEFORE_ADVANCE) {
      return report; // the common case: four LIST requests, nothing else
    }

    const importOpts: ImportOptions = { skipDamaged: true, skipMissing: true };
    const prunes = await this.readPrunes(newForgets.filter(isPruneName));
    // A prune after a forget may have removed the blobs of versions that forget drops: read the
    // new forgets first, so that the runs they thin out are not imported as incomplete. Also when
    // a new run is older than a new forget: that forget may have deleted its manifest (one back
    // in the repository is not imported, see manifestsDeletedBy).
    const forgetNames = newForgets.filter((n) => !isPruneName(n));
    const readAhead = prunes.size > 0 || (forgetNames.length > 0 && newRuns.some((id) => id < forgetNames.at(-1)!));
    const forgetDocs = readAhead ? await this.readForgets(forgetNames) : new Map<string, ForgetDocument>();
    const manifests = await readManifests(this.repo, manifestsToImport(newRuns, forgetDocs, this.events), this.concurrency, importOpts, this.damaged, this.checkSignal);
    await this.loadIndexFiles(manifests, prunes, report.full);

    this.events({ type: 'phase', phase: 'sync runs' });
    const loader = new RecordLoader(this.repo, catalog, report, this.damaged, this.concurrency, this.checkSignal, report.scope);
    loader.forgottenVersions = forgottenVersionKeys(forgetDocs.values());
    for (const m of manifests) {
      this.checkSignal();
      const missingBefore = report.missingCount;
      const damageBefore = this.damageCount;
      setImportingRun(catalog, m.id);
      try {
        await loader.loadRun(m);
      } catch (err) {
        // Nothing half-imported stays: the run is imported whole by a later sync.
        discardRun(catalog, m.id);
        throw err;
      }
      setImportingRun(catalog, null);
      if (report.missingCount > missingBefore || this.damageCount > damageBefore) {
        const incomplete = { run: m.id, versions: report.missingCount - missingBefore, recordBlobs: this.damageCount - damageBefore };
        addIncompleteRun(catalog, incomplete);
        this.warnIncomplete(incomplete);
      }
      report.runs++;
      if (report.runIds.length < MAX_LISTED) report.runIds.push(m.id);
      this.events({ type: 'progress', phase: 'sync runs', done: report.runs, total: manifests.length, bytes: report.bytesRead, failed: report.damage.length });
    }

    // Acknowledgements, after the runs they name.
    report.acks = await loadAcks(this.repo, catalog, newAcks, this.damaged, this.checkSignal);
    report.drills = await loadDrills(this.repo, catalog, newDrills, this.damaged, this.checkSignal);

    // Forget documents, oldest first, after the runs they may name (as a rebuild does); then
    // prune documents. Not all in name order: two written in one second sort by their random
    // part, and a prune applied before the forget it followed would find its packs still used.
    // Forgets first is right in any order: a pack's rows go only once nothing uses them.
    if (newForgets.length > 0) this.events({ type: 'phase', phase: 'sync forgets' });
    const ordered = [...newForgets.filter((n) => !isPruneName(n)), ...newForgets.filter(isPruneName)];
    const applied = await applyForgets(this.repo, catalog, ordered, this.damaged, this.checkSignal, (name, doc) => this.applyPrune(name, doc), new Map<string, ForgetDocument | PruneDocument>([...forgetDocs, ...prunes]));
    report.forgets = applied.forgets;
    report.prunes = applied.prunes;
    // Every later sync says so again, and verify counts it as damage, until a rebuild replaces the catalog.
    for (const k of applied.keptMissing) addIncompleteRun(catalog, { run: k.run, versions: 0, recordBlobs: 0, keptBy: k.forget });

    report.marker = await this.nextMarker(now);
    return report;
  }

  /** Said by every sync, not only the one that found it: answers about that run lack these versions. */
  private warnIncomplete(r: IncompleteRun): void {
    this.events({
      type: 'warning',
      qualifies: true,
      message:
        r.keptBy !== undefined
          ? `this catalog lacks versions kept runs need: forget ${r.keptBy} kept the manifest of run ${r.run} for them, and the repository lacked it when this catalog applied that forget; restore ${objectKey('runs', r.run)} from a copy of the repository, then \`lakeguard catalog rebuild\``
          : `run ${r.run} is incomplete in this catalog (${r.versions} object versions whose blobs are in no index file, ${r.recordBlobs} unreadable record blobs); run \`lakeguard verify\`, then \`lakeguard catalog rebuild\``,
    });
  }

  private async listAfter(dir: 'runs' | 'forgets' | 'acks' | 'drills', marker: string | null): Promise<string[]> {
    const names: string[] = [];
    const listing = this.repo.list(dir, {
      ...(marker === null ? {} : { after: marker }),
      ...(this.opts.signal === undefined ? {} : { signal: this.opts.signal }),
    });
    for await (const file of listing) names.push(file.name);
    return names.sort();
  }

  /** Forget documents, read ahead of the runs (one that cannot be read is read again, and reported, when forgets are applied). */
  private async readForgets(names: readonly string[]): Promise<Map<string, ForgetDocument>> {
    const docs = new Map<string, ForgetDocument>();
    for (const name of names) {
      this.checkSignal();
      try {
        const doc = await this.repo.readDocument<ForgetDocument | PruneDocument>('forgets', name);
        if (!isPruneDocument(doc) && Array.isArray(doc.dropped)) docs.set(name, doc);
      } catch {
        // read again, and reported, when forgets are applied
      }
    }
    return docs;
  }

  private async readPrunes(names: readonly string[]): Promise<Map<string, PruneDocument>> {
    const docs = new Map<string, PruneDocument>();
    for (const name of names) {
      this.checkSignal();
      try {
        const doc = await this.repo.readDocument<PruneDocument>('forgets', name);
        if (wellFormed(doc)) docs.set(name, doc);
      } catch {
        // read again, and reported, when forgets are applied
      }
    }
    return docs;
  }

  /**
   * Index files to read: those prune documents wrote (first: their blobs move out of deleted
   * packs), those the new manifests name, and, when that cannot be enough, every one not yet
   * read: on a first sync, for an interrupted run (recorded after its process died: its blobs
   * may be in index files written before, which it does not name), or when a record blob is
   * still not located. A scoped catalog reads none for runs whose records locate their blobs,
   * and every one not yet read when some new run's records do not (an older lakeguard wrote it).
   */
  private async loadIndexFiles(manifests: readonly RunManifest[], prunes: ReadonlyMap<string, PruneDocument>, full: boolean): Promise<void> {
    const known = this.catalog.knownIndexFiles();
    const fresh = (names: Iterable<string>): string[] => [...new Set(names)].filter((n) => !known.has(n)).sort();
    const load = async (names: string[], opts: ImportOptions): Promise<void> => {
      if (names.length === 0) return;
      this.events({ type: 'phase', phase: 'read index' });
      await loadIndexes(this.repo, this.catalog, names, this.concurrency, opts, this.report, this.damaged, this.events);
      for (const n of names) known.add(n);
      this.checkSignal();
    };
    const base: ImportOptions = { skipDamaged: true, skipMissing: true };
    const docs = [...prunes.values()];
    await load(fresh(docs.flatMap((d) => d.indexFilesAdded)), { ...base, movingFrom: new Set(docs.flatMap((d) => d.packsRemoved)) });
    const scoped = this.report.scope !== null;
    const unlocated = scoped ? manifests.filter((m) => !recordsLocateBlobs(m)) : manifests;
    if (scoped && unlocated.length > 0) {
      this.report.unlocatedRuns = unlocated.length;
      this.events({
        type: 'warning',
        message: `${unlocated.length} runs were written by a lakeguard whose records do not locate their blobs: this scoped sync reads every index file for them (runs written since need none)`,
      });
    }
    await load(fresh(unlocated.flatMap((m) => (Array.isArray(m.indexes) ? m.indexes : []))), base);
    const needAll = scoped
      ? unlocated.length > 0
      : full ||
        manifests.some((m) => m.status === 'interrupted' || !Array.isArray(m.indexes)) ||
        manifests.some((m) => m.records.some((hex) => !this.catalog.hasBlob(Buffer.from(hex, 'hex'))));
    if (needAll) await load(fresh(await this.repo.listNames('index')), base);
  }

  private applyPrune(name: string, doc: PruneDocument): void {
    if (!wellFormed(doc)) {
      this.damaged(objectKey('forgets', name), 'not a valid prune document; not applied');
      return;
    }
    const lost = { versions: 0 };
    const stranded = dropPrunedPacks(this.catalog, name, Date.parse(doc.created), doc.packsRemoved, doc.indexFilesRemoved, lost);
    if (this.repo.objectLock !== null) {
      // Object Lock may have kept some of them: this catalog's prunes retry their deletion
      // instead of planning them anew (a prune skips those no longer in the repository).
      for (const file of doc.indexFilesRemoved) setPendingDeletion(this.catalog, objectKey('index', file), Date.parse(doc.created));
      for (const pack of doc.packsRemoved) setPendingDeletion(this.catalog, objectKey('packs', pack), Date.parse(doc.created));
    }
    if (lost.versions > 0) {
      this.events({
        type: 'warning',
        message: `prune ${name} deleted packs of this host's unfinished run that no index file listed: ${lost.versions} versions it had copied are dropped from this catalog, and the next backup copies those objects again`,
      });
    }
    for (const s of stranded) {
      this.damaged(`pack ${s.pack}`, `deleted by prune ${name}, but ${s.blobs} blobs in it are still used by this catalog; \`lakeguard catalog rebuild\` finds another copy if the repository has one, \`lakeguard verify\` names what is affected`);
    }
  }

  /**
   * Every object named at or before the marker has been seen: a writer names a manifest or a
   * forget/prune document at or after the time it wrote its repository lock, and holds that
   * lock until the object is written. So no object can appear later with a name before the
   * oldest lock present now, or before now (less the margin for clocks).
   */
  private async nextMarker(now: number): Promise<string | null> {
    let floor = now;
    // Lock ids start with their creation time: one LIST, and a GET only for a lock of another form.
    for (const id of await this.repo.listNames('locks')) {
      const created = lockTimeFromId(id) ?? (await lockCreated(this.repo, id));
      if (created !== null) floor = Math.min(floor, created);
    }
    // A run set with an index no attempt has finished yet: its late shard may be named before
    // every lock present now (a shard that chose its id, then waited to take its lock), so the
    // marker stays before the run set's id and first attempt until every index has finished.
    const running = runningRunSetsFloor(this.catalog);
    const runningMs = running === null ? null : runIdTime(running);
    if (runningMs !== null) floor = Math.min(floor, runningMs);
    let next = markerAt(floor - SYNC_MARGIN_MS);
    // What could not be applied stays after the marker: reported by every sync until repaired.
    for (const name of this.held) if (name.slice(0, MARKER_LENGTH) < next) next = name.slice(0, MARKER_LENGTH);
    const old = syncMarker(this.catalog);
    if (old !== null && old >= next) return old;
    advanceSyncMarker(this.catalog, next);
    return next;
  }
}

/**
 * Applies `catalog sync --prefix/--all` before the sync. Returns false when the scope stays;
 * true when the catalog was emptied for its new scope (the sync that follows imports it from
 * the beginning: a catalog that holds nothing yet, or `--all`); or, for prefixes added to a
 * scoped catalog that a sync completed, the scopes before and after, for an in-place widening
 * (Sync.widen). A catalog that holds the whole repository is never narrowed: `--prefix` on it is
 * a plain sync.
 */
function changeScope(catalog: Catalog, widen: readonly CatalogPrefix[] | 'all', events: EventSink): boolean | { before: CatalogPrefix[]; after: CatalogPrefix[] } {
  const before = catalogScope(catalog);
  if (widen === 'all') {
    markWholeByRequest(catalog);
    if (before === null) return false;
    resetCatalogForScope(catalog, null);
    events({ type: 'phase', phase: 'sync', detail: 'making the catalog whole: importing the whole repository' });
    return true;
  }
  if (before === null && !catalogIsFresh(catalog)) {
    events({ type: 'warning', message: 'this catalog holds the whole repository already: --prefix changes nothing' });
    return false;
  }
  return addToScope(catalog, before, widen, before === null ? false : undefined);
}

/**
 * Adds prefixes to a scope (`before`; null: a fresh catalog): false when that changes nothing,
 * the scopes before and after for an in-place widening of a synced catalog, else true (emptied
 * for the new scope). `onDemand`: as setCatalogScope takes it.
 */
function addToScope(catalog: Catalog, before: CatalogPrefix[] | null, widen: readonly CatalogPrefix[], onDemand: boolean | undefined): boolean | { before: CatalogPrefix[]; after: CatalogPrefix[] } {
  const after = normalizeScope([...(before ?? []), ...widen]);
  if (before !== null && JSON.stringify(after) === JSON.stringify(before)) return false;
  // A shard's range catalog also holds its own backups' runs (some without a manifest): imported anew, as before.
  // An on-demand catalog of no part (a fresh host's `runs`) holds runs from manifests only: widened in place.
  if (before !== null && (!isRangeScope(before) || scopeIsOnDemand(catalog)) && syncMarker(catalog) !== null && !catalogHoldsNothing(catalog)) return { before, after };
  resetCatalogForScope(catalog, after, onDemand);
  return true;
}

/**
 * changeScope for what a command selects (SyncOptions.demand; onDemandChange decides): only a
 * fresh catalog, or one scoped on demand, changes; nothing is marked whole by request (that is
 * the operator's word: shard backups on the host then use the file, see shard-catalogs.ts).
 */
function changeScopeOnDemand(catalog: Catalog, demand: Demand, events: EventSink): boolean | { before: CatalogPrefix[]; after: CatalogPrefix[] } {
  const widen = onDemandChange(catalog, demand);
  if (widen === undefined) return false;
  const before = catalogScope(catalog);
  if (widen !== 'all' && before === null) {
    events({ type: 'phase', phase: 'sync', detail: `catalog on demand: importing only ${describeScope(normalizeScope(widen))} (what this command selects)` });
    return addToScope(catalog, null, widen, true);
  }
  if (before === null) return false; // never: only a catalog scoped on demand is made whole on demand
  if (widen === 'all') {
    events({ type: 'phase', phase: 'sync', detail: `catalog on demand: it held only ${describeScope(before)}; importing the whole repository` });
    try {
      resetCatalogForScope(catalog, null);
    } catch (err) {
      if (!(err instanceof CatalogInUseError)) throw err;
      // The operator asked for a command, not for a change of scope: say why one is needed.
      throw new CatalogInUseError(
        `catalog ${catalog.path} holds only ${describeScope(before)} (on demand) and this command needs the whole repository, which empties the catalog before importing it; another lakeguard process has it open`,
        { hint: 'let that process finish (or stop it: a `serve`, a restore), then run this command again; or give this command a catalog of its own (--catalog FILE)' },
      );
    }
    return true;
  }
  const change = addToScope(catalog, before, widen, undefined);
  if (change !== false) events({ type: 'phase', phase: 'sync', detail: `catalog on demand: adding ${describeScope(scopeDifference(normalizeScope(widen), before))}` });
  return change;
}

/**
 * Applies a shard's `scopeTo` before the sync: a catalog that holds nothing is scoped to the
 * range (true); one scoped to another shard range (the plan changed, or another index runs on
 * this host) gives the ranges before and after, for a resize in place (Sync.resize), or, when it
 * never completed a sync, is emptied and scoped to the new one (true); anything else stays (false).
 */
function scopeToRange(catalog: Catalog, parts: readonly CatalogPrefix[], events: EventSink): boolean | { before: CatalogPrefix[]; after: CatalogPrefix[] } {
  const before = catalogScope(catalog);
  const after = normalizeScope(parts);
  if (before === null) {
    // A shard on the default path has its own file (commands/context.ts openShardCatalog): no other range shares it.
    if (!catalogIsFresh(catalog)) return false;
  } else {
    // A prefix scope, or one a fresh host's commands made (also of no part: `runs`), is not a shard's to move.
    if (!isRangeScope(before) || scopeIsOnDemand(catalog) || JSON.stringify(before) === JSON.stringify(after)) return false;
    if (syncMarker(catalog) !== null && !catalogHoldsNothing(catalog)) return { before, after };
    reimportRange(catalog, before, after, events);
    return true;
  }
  resetCatalogForScope(catalog, after);
  events({ type: 'phase', phase: 'sync', detail: `importing only this shard's key range: ${describeScope(after)}` });
  return true;
}

/** Empties a catalog that held another shard range and scopes it to `after` (the sync that follows imports it), with a warning. */
function reimportRange(catalog: Catalog, before: readonly CatalogPrefix[], after: readonly CatalogPrefix[], events: EventSink): void {
  events({ type: 'warning', message: `this catalog held another shard's key range (${describeScope(before)}): it is emptied and imported anew for ${describeScope(after)}` });
  try {
    resetCatalogForScope(catalog, after);
  } catch (err) {
    throw err instanceof CatalogInUseError ? inUseByAnother(catalog) : err;
  }
  events({ type: 'phase', phase: 'sync', detail: `importing only this shard's key range: ${describeScope(after)}` });
}

/** A shard range change refused because another process has the catalog file open. */
function inUseByAnother(catalog: Catalog): LakeguardError {
  return new LakeguardError(`catalog ${catalog.path} holds another shard's key range and is in use by another lakeguard process: changing it for this shard's range would remove keys under that process`, {
    hint: 'give each shard on this host its own catalog (set neither --catalog nor LAKEGUARD_CATALOG: each shard then has its own file), or make this one whole first (`lakeguard catalog sync --all`); or run this shard again once that process has finished',
  });
}

/** A lock's `created`, read from it; null when it is gone or not a lock (it then blocks nobody). */
async function lockCreated(repo: Repository, id: string): Promise<number | null> {
  try {
    const info = JSON.parse((await repo.readFile('locks', id)).body.toString('utf8')) as { created?: unknown };
    const ms = typeof info.created === 'string' ? Date.parse(info.created) : NaN;
    return Number.isNaN(ms) ? null : ms;
  } catch (err) {
    if (isNotFound(err) || err instanceof SyntaxError) return null;
    throw err;
  }
}

function wellFormed(doc: PruneDocument): boolean {
  const names = (v: unknown): boolean => Array.isArray(v) && v.every((n) => typeof n === 'string');
  return names(doc.indexFilesAdded) && names(doc.indexFilesRemoved) && names(doc.packsRemoved) && !Number.isNaN(Date.parse(doc.created));
}
