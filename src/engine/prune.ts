import { hostname } from 'node:os';
import pLimit from 'p-limit';
import type { Catalog } from '../catalog/catalog.js';
import { LockDates } from '../catalog/lock-dates.js';
import { incompleteClause, incompleteRuns, markDocumentApplied, type PruneDocument } from '../catalog/sync.js';
import { clearWrittenPacks, packUsage, prunePending, setPruneRecordBlobs, usedBlobsOfPack, writtenBlobs } from '../catalog/prune-queries.js';
import { IntegrityError, InterruptedError, LakeguardError, errorMessage, isNotFound } from '../errors.js';
import { isIndexName } from '../repository/documents.js';
import { objectKey } from '../repository/layout.js';
import { forgottenManifests, setPendingDeletion } from '../catalog/forget.js';
import { RepositoryLock } from '../repository/locks.js';
import { removeRepositoryObject } from '../repository/remove.js';
import type { Repository } from '../repository/repository.js';
import { statsDelta, type RequestStats } from '../storage/types.js';
import { newRunId } from './run-id.js';
import { noEvents, type EventSink } from './events.js';
import { writePendingIndexes, type IndexDocument, type RunManifest } from './finalize.js';
import { requireAuthentic } from './rebuild-manifests.js';
import { planPrune, type PackFacts, type PrunePlan } from './prune-plan.js';
import { repack, writeIndexes, type RepackRun } from './prune-repack.js';
import { requireWholeCatalog } from '../catalog/scope.js';

export interface PruneOptions {
  repo: Repository;
  catalog: Catalog;
  /** Unused share of pack bytes to tolerate (0.05 = 5 %). */
  maxUnused: number;
  /** Plan and report only: no lock, no writes, no deletions. */
  dryRun?: boolean;
  events?: EventSink;
  signal?: AbortSignal;
}

/** A repository object prune wanted to delete but Object Lock retains. */
export interface RetainedObject {
  object: string;
  lockedUntil: string;
}

export interface PruneReport {
  dryRun: boolean;
  maxUnused: number;
  packs: { before: number; removed: number; repacked: number; kept: number; written: number };
  indexFiles: { before: number; removed: number; written: number };
  bytes: {
    /** All pack bytes before. */
    before: number;
    used: number;
    unusedBefore: number;
    unusedAfter: number;
    /** Bytes of deleted packs and index files (for a dry run: of the packs that would go). */
    freed: number;
    /** Used bytes copied out of repacked packs. */
    rewritten: number;
    /** Bytes of the new packs. */
    written: number;
  };
  /** unusedAfter as a percentage of the pack bytes that remain. */
  unusedAfterPercent: number;
  retained: RetainedObject[];
  /** Packs not repacked because a used blob failed authentication, damaged index files: left alone. */
  damaged: { what: string; problem: string }[];
  /** Packs the catalog uses that are not in the repository (`verify` names what they affect). */
  missing: string[];
  requests: RequestStats;
  durationMs: number;
}

/** Deletions in flight (index files first, all of them, then packs). */
const DELETE_CONCURRENCY = 8;

/**
 * Deletes packs nothing refers to and repacks mostly-empty ones, under an exclusive lock.
 * Used blobs = those of every catalogued version plus the record blobs of every run manifest
 * in the repository. Crash-safe order: new packs → new index files → catalog (one
 * transaction) → obsolete index files → old packs. At every point each used blob is in a
 * pack that exists and is listed by an index file that exists, so a crash leaves a
 * restorable repository and running prune again finishes the job.
 */
export async function prune(opts: PruneOptions): Promise<PruneReport> {
  requireWholeCatalog(opts.catalog, 'prune');
  const started = Date.now();
  const statsBefore = opts.repo.requestCounts();
  const lock = opts.dryRun ? null : await RepositoryLock.acquire(opts.repo, 'exclusive', 'prune');
  let report: PruneReport;
  try {
    report = await new PruneRun(opts).run();
  } finally {
    await lock?.release().catch(() => {});
  }
  report.requests = statsDelta(statsBefore, opts.repo.requestCounts());
  report.durationMs = Date.now() - started;
  return report;
}

interface IndexFileInfo {
  size: number;
  /** Packs it lists; null when the file cannot be read (it is then never touched). */
  packs: string[] | null;
}

class PruneRun {
  private readonly repo: Repository;
  private readonly catalog: Catalog;
  private readonly events: EventSink;
  private readonly report: PruneReport;

  constructor(private readonly opts: PruneOptions) {
    this.repo = opts.repo;
    this.catalog = opts.catalog;
    this.events = opts.events ?? noEvents;
    this.report = {
      dryRun: opts.dryRun ?? false,
      maxUnused: opts.maxUnused,
      packs: { before: 0, removed: 0, repacked: 0, kept: 0, written: 0 },
      indexFiles: { before: 0, removed: 0, written: 0 },
      bytes: { before: 0, used: 0, unusedBefore: 0, unusedAfter: 0, freed: 0, rewritten: 0, written: 0 },
      unusedAfterPercent: 0,
      retained: [],
      damaged: [],
      missing: [],
      requests: statsDelta(opts.repo.requestCounts(), opts.repo.requestCounts()),
      durationMs: 0,
    };
  }

  async run(): Promise<PruneReport> {
    const { report } = this;
    this.events({ type: 'phase', phase: 'check catalog' });
    await this.requireCatalogKnowsRepository();
    this.checkSignal();

    // Index files and packs an earlier prune dropped but Object Lock retained: the catalog no
    // longer knows them and they are left out of the plan (planning them again would relist their
    // kept packs in yet another index file on every prune); they are only deleted once free.
    const { indexes: deadIndexes, packs: deadPacks } = prunePending(this.catalog);

    this.events({ type: 'phase', phase: 'list packs' });
    const present = await this.listPacks();
    const deadPresent = this.takePending(present, deadPacks, 'packs');
    const facts = this.packFacts(present);
    const missingPacks = facts.filter((f) => f.size === null && f.usedBlobs > 0).map((f) => f.name);

    let pendingIndexes: string[] = [];
    if (!report.dryRun) {
      // Blobs the catalog knows but no index file lists yet (a killed backup's) get index files
      // first: a copy elsewhere that prune deletes must not have been their only listing.
      pendingIndexes = await writePendingIndexes(this.repo, this.catalog);
    }
    this.events({ type: 'phase', phase: 'read index' });
    // A used pack that is missing may have blobs of which another pack holds a second copy, which
    // the catalog (one location per blob) counts as unused there: that copy is all that is left.
    const lost = new Set(missingPacks.flatMap((name) => usedBlobsOfPack(this.catalog, name).map((b) => b.hash.toString('hex'))));
    const { files: indexFiles, otherCopies } = await this.readIndexFiles(lost, present);
    const deadFiles = this.takePending(indexFiles, deadIndexes, 'index');
    report.indexFiles.before = indexFiles.size;
    this.checkSignal();

    for (const f of facts) {
      const n = otherCopies.get(f.name);
      if (n !== undefined && f.size !== null) f.otherCopies = n;
    }
    const plan = planPrune(facts, { maxUnused: this.opts.maxUnused, encrypted: this.repo.encrypted });
    report.missing = plan.missing;
    for (const name of plan.missing) this.events({ type: 'warning', message: `pack ${name} is used but missing from the repository; run \`lakeguard verify\` to see what it affects` });
    for (const [name, n] of otherCopies) {
      this.events({ type: 'warning', message: `pack ${name} holds another copy of ${n} blobs of missing packs: kept whole; \`lakeguard catalog rebuild\` locates them there` });
    }
    report.bytes.before = plan.packBytes;
    report.bytes.used = plan.usedBytes;
    report.bytes.unusedBefore = plan.unusedBytes;
    const deadBytes = [...deadPresent.values()].reduce((n, size) => n + size, 0);
    report.bytes.before += deadBytes;
    report.bytes.unusedBefore += deadBytes;
    report.packs.before = present.size + deadPresent.size;

    if (report.dryRun) return this.reportDryRun(plan, indexFiles, present);

    // 1. Copy the used blobs of the packs to repack into new packs.
    const { written, repacked, keptDamaged } = await repack(this.repackRun(), plan.repack);
    const newPacks = new Set(written.map((p) => p.id));
    // A new pack may have the name of one to delete (same content): it is then kept.
    const dropped = [...plan.remove, ...repacked].filter((p) => !newPacks.has(p.name));
    const gone = new Set<string>([...dropped.map((p) => p.name), ...plan.forgetInCatalog]);
    const missing = new Set(plan.missing);
    for (const info of indexFiles.values()) {
      // Packs listed by an index file that neither the repository nor the catalog holds: stale entries.
      for (const pack of info.packs ?? []) if (!present.has(pack) && !missing.has(pack)) gone.add(pack);
    }
    for (const pack of newPacks) gone.delete(pack);
    this.checkSignal();

    // 2. New index files: the new packs, and every kept pack of an index file that lists a dropped pack.
    this.events({ type: 'phase', phase: 'write index' });
    const obsolete = [...indexFiles].filter(([, f]) => f.packs?.some((p) => gone.has(p))).map(([name]) => name);
    const { names: newIndexFiles, packIndex } = await writeIndexes(this.repackRun(), written, obsolete, gone);
    const obsoleteIndexes = obsolete.filter((name) => !newIndexFiles.includes(name));
    report.indexFiles.written = newIndexFiles.length;
    this.checkSignal();

    // 2b. A prune document, before anything is deleted: other hosts' catalogs learn from it
    // where the blobs moved and which packs go (docs/repository-format.md "forgets/").
    const document = await this.writeDocument([...pendingIndexes, ...newIndexFiles], obsoleteIndexes, gone);

    // 3. The catalog, in one transaction: from now on it locates every used blob in the new packs.
    this.events({ type: 'phase', phase: 'update catalog' });
    this.catalog.applyPrune({
      // One pack's entries at a time, from the temporary table the repack filled.
      newPacks: (function* (catalog) {
        for (const p of written) yield { name: p.id, size: p.size, index: packIndex.get(p.id)!, blobs: writtenBlobs(catalog, p.id) };
      })(this.catalog),
      relisted: [...packIndex].filter(([pack]) => !newPacks.has(pack)).map(([pack, index]) => ({ pack, index })),
      droppedPacks: [...dropped.map((p) => p.name), ...plan.forgetInCatalog],
      droppedIndexFiles: obsoleteIndexes,
      newIndexFiles,
    });
    clearWrittenPacks(this.catalog, false);
    if (document !== null) markDocumentApplied(this.catalog, document.name, document.created);

    // 4. Obsolete index files, then 5. the packs they listed: a pack goes only once no index file lists it.
    this.events({ type: 'phase', phase: 'delete' });
    const total = obsoleteIndexes.length + dropped.length + deadFiles.size + deadPresent.size;
    let done = 0;
    const retainedIndexes = new Set<string>();
    const limit = pLimit(DELETE_CONCURRENCY);
    const allFiles = new Map([...indexFiles, ...deadFiles]);
    await allSettled(
      [...obsoleteIndexes, ...deadFiles.keys()].map((name) =>
        limit(async () => {
          this.checkSignal();
          if (await this.remove('index', name, allFiles.get(name)!.size)) report.indexFiles.removed++;
          else retainedIndexes.add(name);
          this.progress('delete', ++done, total);
        }),
      ),
    );
    const listedBy = packsListedBy(allFiles, retainedIndexes);
    let unusedLeft = plan.unusedAfter + keptDamaged.reduce((n, p) => n + p.unusedBytes, 0);
    // Packs an earlier prune dropped and Object Lock kept: deleted once free and no index file lists them.
    await allSettled(
      [...deadPresent].map(([name, size]) =>
        limit(async () => {
          this.checkSignal();
          if (!listedBy.has(name) && (await this.remove('packs', name, size))) report.packs.removed++;
          else unusedLeft += size;
          this.progress('delete', ++done, total);
        }),
      ),
    );
    await allSettled(
      dropped.map((p) =>
        limit(async () => {
          this.checkSignal();
          const holder = listedBy.get(p.name);
          let removed = false;
          if (holder !== undefined) {
            this.events({ type: 'warning', message: `${objectKey('packs', p.name)} kept: ${objectKey('index', holder)} still lists it and is under retention` });
            setPendingDeletion(this.catalog, objectKey('packs', p.name), Date.now());
          } else {
            removed = await this.remove('packs', p.name, p.size);
          }
          if (!removed) unusedLeft += p.unusedBytes;
          else if (p.usedBlobs === 0) report.packs.removed++;
          else report.packs.repacked++;
          this.progress('delete', ++done, total);
        }),
      ),
    );
    // Old packs still in the repository: kept by plan, damaged, retained, or renamed into by a new pack.
    report.packs.kept = report.packs.before - report.packs.removed - report.packs.repacked;
    report.packs.written = written.length;
    report.bytes.written = written.reduce((n, p) => n + p.size, 0);
    report.bytes.unusedAfter = unusedLeft;
    report.unusedAfterPercent = percent(unusedLeft, plan.usedBytes + unusedLeft);
    return report;
  }

  // ---- safety: the catalog must know everything the repository holds -------------------

  /**
   * Refuses to delete anything unless the catalog knows every run manifest and forget document
   * in the repository (another machine's runs, a stale catalog), and locates every record blob
   * those manifests refer to. Declares the record blobs to the catalog as used.
   */
  private async requireCatalogKnowsRepository(): Promise<void> {
    const rebuild = 'run `lakeguard catalog rebuild` first, then prune again';
    const where = this.repo.location;
    const runs = (await this.repo.listNames('runs')).sort();
    const known = this.catalog.knownRunIds();
    const unknown = runs.find((id) => !known.has(id));
    if (unknown !== undefined) {
      await requireAuthentic(this.repo, 'runs', unknown, 'prune', 'which data it needs');
      throw new LakeguardError(`repository ${where} has run ${unknown}, which catalog ${this.catalog.path} does not know; prune would delete its data`, { hint: rebuild });
    }
    // The other way round: a run the catalog knows whose manifest is gone (deleted by hand, lost).
    // Its records are what bring it back once the manifest is restored from a copy; prune would
    // delete them with its unused packs. (A run the repository refused to store never had one.)
    const listed = new Set(runs);
    const lost = this.catalog.listRuns().filter((r) => r.status !== 'running' && !listed.has(r.id) && this.catalog.unrecordedError(r.seq) === undefined);
    if (lost.length > 0) {
      throw new LakeguardError(
        `repository ${where} lacks the manifest of run ${lost[0]!.id}${lost.length > 1 ? ` and ${lost.length - 1} more` : ''}, which catalog ${this.catalog.path} knows; prune would delete the records that can bring it back`,
        { hint: 'restore runs/<id> from a copy of the repository (`lakeguard verify` names every missing one), then prune again; or give the run up: `lakeguard catalog rebuild` (the catalog then forgets it), then prune' },
      );
    }
    // So are the manifests forget kept for versions kept runs still need (forgotten_runs.manifest_kept).
    const forgotten = forgottenManifests(this.catalog);
    const keptLost = [...forgotten].filter(([id, f]) => f.state === 'kept' && !listed.has(id)).map(([id]) => id);
    if (keptLost.length > 0) {
      throw new LakeguardError(
        `repository ${where} lacks the manifest of forgotten run ${keptLost[0]!}${keptLost.length > 1 ? ` and ${keptLost.length - 1} more` : ''}, which forget kept for versions kept runs still need; prune would delete the records that can bring them back`,
        { hint: 'restore runs/<id> from a copy of the repository (`lakeguard verify` names every missing one), then prune again; or give those versions up: `lakeguard catalog rebuild --accept-damage`, then prune' },
      );
    }
    // A catalog that lacks versions the repository holds would take their data for unused: one a
    // sync imported incomplete, or one that gave up a kept manifest which is back now.
    const incomplete = incompleteRuns(this.catalog);
    const back = [...forgotten].filter(([id, f]) => f.state === 'given-up' && listed.has(id)).map(([id]) => id);
    if (incomplete.length > 0 || back.length > 0) {
      const what =
        back.length > 0
          ? `gave up the versions only run ${back[0]!}'s manifest holds, and that manifest is back in the repository`
          : incompleteClause(incomplete[0]!);
      throw new LakeguardError(`catalog ${this.catalog.path} ${what}; prune would delete data the repository still needs`, {
        hint: 'restore from a copy what `lakeguard verify` names, then run `lakeguard catalog rebuild` and prune again',
      });
    }
    const forgets = this.catalog.knownForgets();
    for await (const { name } of this.repo.list('forgets')) {
      if (!forgets.has(name)) {
        await requireAuthentic(this.repo, 'forgets', name, 'prune', 'which data it needs');
        throw new LakeguardError(`repository ${where} has forget document ${objectKey('forgets', name)}, which catalog ${this.catalog.path} has not applied`, { hint: rebuild });
      }
    }
    const records: Buffer[] = [];
    const owner = new Map<string, string>();
    // A manifest a forget deleted that is back needs nothing kept: no sync or rebuild reads it.
    for (const id of runs.filter((n) => forgotten.get(n)?.state !== 'deleted')) {
      let manifest: RunManifest;
      try {
        manifest = await this.repo.readDocument<RunManifest>('runs', id);
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        throw new LakeguardError(`cannot read run manifest ${objectKey('runs', id)} (${errorMessage(err)}); prune cannot tell which records it needs`, {
          hint: 'restore that object from a copy of the repository (or remove the run), then prune again',
        });
      }
      for (const hex of manifest.records ?? []) {
        records.push(Buffer.from(hex, 'hex'));
        owner.set(hex, id);
      }
    }
    const unlocated = setPruneRecordBlobs(this.catalog, records);
    if (unlocated.length > 0) {
      const hex = unlocated[0]!.toString('hex');
      throw new LakeguardError(`record blob ${hex} of run ${owner.get(hex)} is in no pack catalog ${this.catalog.path} knows`, { hint: rebuild });
    }
  }

  // ---- plan inputs ----------------------------------------------------------------------

  /** Packs in the repository by name, with their sizes (stray objects among the packs are left alone). */
  private async listPacks(): Promise<Map<string, number>> {
    const present = new Map<string, number>();
    for await (const pack of this.repo.list('packs', this.opts.signal === undefined ? {} : { signal: this.opts.signal })) present.set(pack.name, pack.size);
    return present;
  }

  private packFacts(present: Map<string, number>): PackFacts[] {
    const facts: PackFacts[] = [];
    const seen = new Set<string>();
    // In an Object Lock repository a retained pack outlives any repack: its known date keeps it as it is.
    const dates = this.repo.objectLock === null ? null : new LockDates(this.catalog);
    for (const u of packUsage(this.catalog)) {
      seen.add(u.name);
      const until = dates?.known([objectKey('packs', u.name)])[0]?.until;
      facts.push({
        name: u.name,
        size: present.get(u.name) ?? null,
        known: true,
        blobs: u.blobs,
        usedBlobs: u.usedBlobs,
        usedBytes: u.usedBytes,
        ...(until === undefined ? {} : { retainedUntil: until }),
      });
    }
    // Packs the catalog does not know (a crashed run's, or a crashed prune's) hold nothing it uses.
    for (const [name, size] of present) if (!seen.has(name)) facts.push({ name, size, known: false, blobs: 0, usedBlobs: 0, usedBytes: 0 });
    return facts;
  }

  /**
   * Takes the objects an earlier prune dropped but Object Lock retained (`names`) out of what
   * this prune plans (`listed`: packs or index files by name) and returns those still in the
   * repository; one that is gone is no longer pending (not in a dry run, which writes nothing).
   */
  private takePending<T>(listed: Map<string, T>, names: Iterable<string>, dir: 'packs' | 'index'): Map<string, T> {
    const still = new Map<string, T>();
    for (const name of names) {
      const entry = listed.get(name);
      if (entry !== undefined) still.set(name, entry);
      else if (!this.report.dryRun) setPendingDeletion(this.catalog, objectKey(dir, name), null);
      listed.delete(name);
    }
    return still;
  }

  /**
   * Every index file with the packs it lists; one that cannot be read is reported and never
   * touched. Also, per pack in the repository, how many of the `lost` blob ids (hex) its entries
   * list: other copies of blobs the catalog locates in missing packs.
   */
  private async readIndexFiles(lost: ReadonlySet<string>, present: ReadonlyMap<string, number>): Promise<{ files: Map<string, IndexFileInfo>; otherCopies: Map<string, number> }> {
    const files = new Map<string, IndexFileInfo>();
    const copies = new Map<string, Set<string>>();
    for await (const item of this.repo.list('index')) {
      const name = item.name;
      if (!isIndexName(name)) continue;
      try {
        const doc = await this.repo.readDocument<IndexDocument>('index', name);
        files.set(name, { size: item.size, packs: doc.packs.map((p) => p.id) });
        if (lost.size === 0) continue;
        for (const p of doc.packs) {
          if (!present.has(p.id)) continue;
          for (const [hex] of p.blobs) {
            if (!lost.has(hex)) continue;
            let held = copies.get(p.id);
            if (held === undefined) copies.set(p.id, (held = new Set()));
            held.add(hex);
          }
        }
      } catch (err) {
        if (!(err instanceof IntegrityError) && !isNotFound(err)) throw err;
        files.set(name, { size: item.size, packs: null });
        this.damage(objectKey('index', name), `${errorMessage(err)}; left as it is`);
      }
    }
    return { files, otherCopies: new Map([...copies].map(([pack, held]) => [pack, held.size])) };
  }

  /** forgets/<time>-<hex>-prune, when this prune changes what other catalogs hold (else null). */
  private async writeDocument(added: string[], removed: string[], gone: ReadonlySet<string>): Promise<{ name: string; created: number } | null> {
    if (added.length === 0 && removed.length === 0 && gone.size === 0) return null;
    const now = new Date();
    const id = newRunId(now);
    const doc: PruneDocument = {
      version: 1,
      kind: 'prune',
      id,
      created: now.toISOString(),
      host: hostname(),
      indexFilesAdded: added,
      indexFilesRemoved: removed,
      packsRemoved: [...gone].sort(),
    };
    const name = `${id}-prune`;
    await this.repo.writeDocument('forgets', name, doc);
    return { name, created: now.getTime() };
  }

  // ---- deletion ----------------------------------------------------------------------------

  /** Deletes one file through removeRepositoryObject; one under retention is reported (by its key) and kept. */
  private async remove(type: 'index' | 'packs', file: string, size: number): Promise<boolean> {
    const name = objectKey(type, file);
    const result = await removeRepositoryObject(this.repo, name);
    if (result.removed) {
      this.report.bytes.freed += size;
      setPendingDeletion(this.catalog, name, null);
      return true;
    }
    // The catalog drops it all the same (a prune document says so): the next prunes only retry the deletion.
    setPendingDeletion(this.catalog, name, result.lockedUntil.getTime());
    const until = result.lockedUntil.toISOString();
    this.report.retained.push({ object: name, lockedUntil: until });
    this.events({ type: 'warning', message: `${name} locked until ${until.slice(0, 10)}; deletable then` });
    return false;
  }

  // ---- dry run -------------------------------------------------------------------------------

  private reportDryRun(plan: PrunePlan, indexFiles: Map<string, IndexFileInfo>, present: Map<string, number>): PruneReport {
    const { report } = this;
    const gone = new Set([...plan.remove, ...plan.repack].map((p) => p.name));
    const obsolete = [...indexFiles.values()].filter((f) => f.packs?.some((p) => gone.has(p) || !present.has(p)));
    report.packs.removed = plan.remove.length;
    report.packs.repacked = plan.repack.length;
    report.packs.kept = plan.keep.length;
    report.indexFiles.removed = obsolete.length;
    report.bytes.freed = [...plan.remove, ...plan.repack].reduce((n, p) => n + p.size, 0);
    report.bytes.rewritten = plan.repack.reduce((n, p) => n + p.usedBytes, 0);
    report.bytes.unusedAfter = plan.unusedAfter;
    report.unusedAfterPercent = percent(plan.unusedAfter, plan.usedBytes + plan.unusedAfter);
    return report;
  }

  /** This run as the repack steps (prune-repack.ts) see it. */
  private repackRun(): RepackRun {
    return {
      repo: this.repo,
      catalog: this.catalog,
      events: this.events,
      signal: this.opts.signal,
      damage: (what, problem) => this.damage(what, problem),
      progress: (phase, done, total) => this.progress(phase, done, total),
      rewritten: (bytes) => void (this.report.bytes.rewritten += bytes),
      checkSignal: () => this.checkSignal(),
    };
  }

  // ---- helpers -------------------------------------------------------------------------------

  private damage(what: string, problem: string): void {
    this.report.damaged.push({ what, problem });
    this.events({ type: 'warning', message: `${what}: ${problem}` });
  }

  private progress(phase: string, done: number, total: number): void {
    this.events({ type: 'progress', phase, done, total, bytes: this.report.bytes.freed, failed: this.report.damaged.length });
  }

  private checkSignal(): void {
    if (this.opts.signal?.aborted) throw new InterruptedError('prune interrupted; the repository is consistent, run prune again to finish');
  }
}

/** For each pack, one index file among `files` that lists it. */
function packsListedBy(indexFiles: Map<string, IndexFileInfo>, files: Set<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of files) for (const pack of indexFiles.get(name)?.packs ?? []) out.set(pack, name);
  return out;
}

/** Waits for every task (none keeps deleting after prune returned), then throws the first failure. */
async function allSettled(tasks: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(tasks)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

function percent(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 100;
}
