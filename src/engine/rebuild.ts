import { dirname, resolve } from 'node:path';
import { Catalog } from '../catalog/catalog.js';
import type { PackRecord } from '../catalog/catalog.js';
import { applyForgetDocument, giveUpKeptManifests, manifestsDeletedBy, type ForgetDocument } from '../catalog/forget.js';
import { isPruneDocument, markDocumentApplied, markWholeByRequest, relocatePacks, type PruneDocument } from '../catalog/sync.js';
import { claimTarget, install, moveAside, putBeside, rebuildTempPath, removeDatabaseFiles, removeLeftovers } from '../catalog/rebuild-files.js';
import { IntegrityError, InterruptedError, LakeguardError, errorMessage, isNotFound } from '../errors.js';
import { objectKey } from '../repository/layout.js';
import { acquireForReading } from '../repository/locks.js';
import { blobFlags, type BlobType } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import { inOrder } from '../util/in-order.js';
import { makeDirectory } from '../util/make-directory.js';
import { noEvents, type EventSink } from './events.js';
import type { IndexDocument } from './finalize.js';
import { loadDrills } from './drill.js';
import { loadAcks } from './import-anomalies.js';
import { HEX64, damageHint, readManifests } from './rebuild-manifests.js';
import { RecordLoader, forgottenVersionKeys } from './record-loader.js';

export interface RebuildOptions {
  repo: Repository;
  /** The catalog file to (re)create; it is replaced only once the new one is complete. */
  catalogPath: string;
  /** Skip index files and run manifests that fail authentication or parsing (each is reported) instead of stopping. */
  skipDamaged?: boolean;
  /**
   * Install the new catalog even when it lacks something (damage). Without it, a damaged
   * result is written beside the target (`<target>.damaged`) and the old catalog stays.
   */
  acceptDamage?: boolean;
  /** Take a shared repository lock while reading (default), so no deleting operation runs meanwhile. */
  lock?: boolean;
  /** Parallel reads of index files, manifests and record blobs. */
  concurrency?: number;
  events?: EventSink;
  signal?: AbortSignal;
}

/** Something in the repository the rebuild could not use; the catalog lacks what it held. */
export interface RebuildDamage {
  what: string;
  problem: string;
}

/** An object version a run recorded whose content is in no index file: left out of the catalog. */
export interface MissingBlob {
  run: string;
  bucket: string;
  key: string;
  versionId: string | null;
  blob: string;
}

export interface RebuildReport {
  /** Where the new catalog is: the target, or beside it when it was not installed. */
  catalog: string;
  /** The catalog file the rebuild was asked to (re)create. */
  target: string;
  /** Whether the new catalog replaced the target (false: damaged and not accepted). */
  installed: boolean;
  /** Where a corrupt catalog file found at the target was moved (null: there was none). */
  movedAside: string | null;
  runs: number;
  versions: number;
  failures: number;
  blobs: number;
  packs: number;
  indexFiles: number;
  /** Runs the replaced catalog had (null: there was none, or it was unreadable). */
  previousRuns: number | null;
  damage: RebuildDamage[];
  /** Versions skipped because a blob they need is in no index file (the list is capped; see missingCount). */
  missing: MissingBlob[];
  missingCount: number;
  bytesRead: number;
  durationMs: number;
}

/** What the import functions below count and report into (a rebuild's report, or a sync's). */
export type ImportTally = Pick<RebuildReport, 'indexFiles' | 'damage' | 'missing' | 'missingCount' | 'bytesRead'>;

/** How the import functions treat what they cannot use. */
export interface ImportOptions {
  /** Report (and leave out) index files and manifests that fail authentication instead of stopping. */
  skipDamaged?: boolean;
  /** Pass over index files and manifests that are gone (a prune or forget deleted them after the listing). */
  skipMissing?: boolean;
  /** Index files a prune wrote: blobs catalogued in these (deleted) packs move to the new location. */
  movingFrom?: ReadonlySet<string>;
}

/** Listed damage is capped so a badly damaged repository cannot exhaust memory; the counts stay exact. */
const MAX_LISTED = 1000;

/**
 * Recreates the catalog from the repository alone: every index file gives packs and blobs,
 * every run manifest (ordered by start time, then id) a run, and its record blobs the object
 * versions and failures the run recorded. Records are streamed one record blob at a time and
 * written thousands per transaction. The new catalog is built in a temporary file next to the
 * target and renamed over it only when complete, so a crash or error leaves the old one intact.
 *
 * A version whose content is in no index file (a damaged repository) is left out and reported;
 * so are record blobs that cannot be read. The caller decides how to fail on them.
 */
export async function rebuildCatalog(opts: RebuildOptions): Promise<RebuildReport> {
  const started = Date.now();
  const { repo } = opts;
  const events = opts.events ?? noEvents;
  const concurrency = Math.max(1, opts.concurrency ?? 8);
  const target = resolve(opts.catalogPath);
  try {
    makeDirectory(dirname(target));
  } catch (err) {
    throw new LakeguardError(`cannot create the catalog's directory ${dirname(target)}: ${errorMessage(err)}`, {
      cause: err,
      hint: 'check the directory is writable (set LAKEGUARD_CACHE_DIR or --catalog to move it)',
    });
  }
  // Fail fast, before the long work: the target must not be in use or belong to another repository.
  const claimed = claimTarget(target, repo.id);
  const { previousRuns } = claimed;
  // A corrupt catalog is not read again (any query may fail on it): it is kept aside, whole.
  const movedAside = claimed.corrupt ? moveAside(target) : null;
  removeLeftovers(target);

  const report: RebuildReport = {
    catalog: target,
    target,
    installed: false,
    movedAside,
    runs: 0,
    versions: 0,
    failures: 0,
    blobs: 0,
    packs: 0,
    indexFiles: 0,
    previousRuns,
    damage: [],
    missing: [],
    missingCount: 0,
    bytesRead: 0,
    durationMs: 0,
  };
  const damaged = (what: string, problem: string): void => {
    if (report.damage.length < MAX_LISTED) report.damage.push({ what, problem });
    events({ type: 'warning', message: `${what}: ${problem}` });
  };
  const checkSignal = (): void => {
    if (opts.signal?.aborted) throw new InterruptedError('catalog rebuild interrupted; the old catalog is unchanged');
  };

  const lock = opts.lock === false ? null : await acquireForReading(repo, 'catalog rebuild', 'rebuild with --no-lock');
  const tmp = rebuildTempPath(target);
  let catalog: Catalog | null = null;
  try {
    catalog = Catalog.open(tmp, repo.id);
    // The old file's `catalog sync --all` mark: the host's shards go on using it (docs/scale-out.md "Which file").
    if (claimed.wholeByRequest === true) markWholeByRequest(catalog);
    // A crash discards the temporary file anyway: no syncs until it is complete.
    catalog.beginBulkLoad();

    // Manifests are listed first: a manifest is written only after its index files, so every
    // manifest in this listing finds its blobs in the index listing that follows.
    events({ type: 'phase', phase: 'list repository' });
    const runNames = (await repo.listNames('runs')).sort();
    const indexNames = (await repo.listNames('index')).sort();
    const forgetNames = (await repo.listNames('forgets')).sort();
    const ackNames = (await repo.listNames('acks')).sort();
    const drillNames = (await repo.listNames('drills')).sort();
    // Index entries are checked against the packs that exist (one LIST, after the index listing:
    // a pack is written before any index file lists it).
    catalog.beginPresentPacks();
    let present: { name: string; size: number }[] = [];
    for await (const p of repo.listPacks()) {
      if ('stray' in p) continue;
      present.push({ name: p.id, size: p.size });
      if (present.length >= 5000) {
        catalog.addPresentPacks(present);
        present = [];
      }
    }
    catalog.addPresentPacks(present);
    checkSignal();

    events({ type: 'phase', phase: 'read index' });
    await loadIndexes(repo, catalog, indexNames, concurrency, opts, report, damaged, events);
    checkSignal();

    // Forget documents first (applied below, after the runs): a version one drops whose blob a
    // later prune removed is left out as that forget leaves it, not reported missing; and a
    // manifest one deleted that is back is not read.
    const forgetDocs = new Map<string, ForgetDocument | PruneDocument>();
    for (const name of forgetNames) {
      checkSignal();
      try {
        forgetDocs.set(name, await repo.readDocument<ForgetDocument | PruneDocument>('forgets', name));
      } catch {
        // read again, and reported, when forgets are applied
      }
    }
    const forgetOnly = forgetDocumentsOf(forgetDocs);
    const toRead = manifestsToImport(runNames, forgetOnly, events);

    events({ type: 'phase', phase: 'read runs' });
    const manifests = await readManifests(repo, toRead, concurrency, opts, damaged, checkSignal);
    events({ type: 'phase', phase: 'load records' });
    const loader = new RecordLoader(repo, catalog, report, damaged, concurrency, checkSignal);
    loader.forgottenVersions = forgottenVersionKeys(forgetOnly.map(([, d]) => d).filter((d) => Array.isArray(d.dropped)));
    let done = 0;
    for (const manifest of manifests) {
      await loader.loadRun(manifest);
      report.runs++;
      events({ type: 'progress', phase: 'load records', done: ++done, total: manifests.length, bytes: report.bytesRead, failed: report.missingCount + report.damage.length });
    }
    await loadAcks(repo, catalog, ackNames, damaged, checkSignal);
    await loadDrills(repo, catalog, drillNames, damaged, checkSignal);
    checkSignal();

    // Forget documents, oldest first (names start with their UTC time), replay what forget did.
    events({ type: 'phase', phase: 'apply forgets' });
    // Prune documents need nothing here: the index listing above already shows what they did.
    const into = catalog;
    const applied = await applyForgets(repo, into, forgetNames, damaged, checkSignal, (name, doc) => markDocumentApplied(into, name, Date.parse(doc.created)), forgetDocs);
    // Installed anyway (--accept-damage): the versions only those manifests held are given up, as
    // a lost run's are, so prune does not wait for them for ever.
    if (opts.acceptDamage) giveUpKeptManifests(catalog, applied.keptMissing.map((k) => k.run));

    // A run the old catalog has that the repository neither has nor forgot: its manifest is gone
    // (an unreadable one is reported as such already).
    const known = catalog.knownRunIds();
    const listed = new Set(runNames);
    for (const id of claimed.finishedRunIds ?? []) {
      if (!known.has(id) && !listed.has(id)) damaged(objectKey('runs', id), 'missing from the repository, but the old catalog has this run: the new catalog lacks it and the versions it recorded');
    }
    const packCheck = catalog.endPresentPacks();
    for (const lost of packCheck.lost) {
      damaged(
        `pack ${lost.pack}`,
        `missing from the repository (or not the size its index files give); ${lost.blobs} blobs are in no other pack, and ${lost.versions} object versions need them (their restore fails)`,
      );
    }
    for (const o of packCheck.outside) damaged(objectKey('index', o.indexFile), `${o.entries} entries of pack ${o.pack} lie outside the pack; left out`);

    const stats = catalog.stats();
    // The runs the catalog holds: manifests forget kept for their records were read, but their runs are forgotten.
    report.runs = stats.runs;
    report.versions = stats.versions;
    report.blobs = stats.blobs;
    report.packs = stats.packs;
    report.failures = catalog.failureCount();
    // Make the new file durable and self-contained (no WAL) before it replaces the old one.
    catalog.finishBulkLoad();
    catalog.close();
    catalog = null;
    events({ type: 'phase', phase: 'install catalog' });
    // Never replace a working catalog with one that lacks something, unless told to.
    if (report.damage.length > 0 || report.missingCount > 0) {
      if (opts.acceptDamage) {
        install(tmp, target, repo.id);
        report.installed = true;
      } else {
        report.catalog = putBeside(tmp, `${target}.damaged`);
      }
    } else {
      install(tmp, target, repo.id);
      report.installed = true;
    }
  } catch (err) {
    catalog?.close();
    removeDatabaseFiles(tmp);
    throw err;
  } finally {
    await lock?.release().catch(() => {});
  }
  report.durationMs = Date.now() - started;
  return report;
}

/** The forget documents among forgets/ documents (not the prune documents). */
function forgetDocumentsOf(docs: Iterable<[string, ForgetDocument | PruneDocument]>): [string, ForgetDocument][] {
  return [...docs].filter((e): e is [string, ForgetDocument] => !isPruneDocument(e[1]));
}

/**
 * Of these manifest names, those to import: not the manifests these forget documents deleted
 * (manifestsDeletedBy), which one warning names when any is in the repository again.
 */
export function manifestsToImport(names: readonly string[], docs: Iterable<[string, ForgetDocument | PruneDocument]>, events: EventSink): string[] {
  const deleted = manifestsDeletedBy(forgetDocumentsOf(docs));
  const stale = staleManifestsNote(names.filter((n) => deleted.has(n)).map((n) => [n, deleted.get(n)!] as const));
  if (stale !== null) events({ type: 'warning', message: stale });
  return names.filter((n) => !deleted.has(n));
}

/**
 * Said (once, however many) of manifests a forget deleted, or meant to, that are in the
 * repository: they are not imported. Null when there are none.
 */
export function staleManifestsNote(stale: readonly (readonly [run: string, forget: string])[]): string | null {
  if (stale.length === 0) return null;
  const [run, forget] = stale[0]!;
  if (stale.length === 1) {
    return `${objectKey('runs', run)}: the manifest of a forgotten run, needed no more since forget ${forget} (Object Lock still retains it, a forget was interrupted before deleting it, or it was restored from an older copy); nothing imports it, and a later \`lakeguard forget\` deletes it`;
  }
  return `${objectKey('runs', run)} and ${stale.length - 1} more: manifests of forgotten runs, needed no more since forget ${forget} or another (Object Lock still retains them, a forget was interrupted before deleting them, or they were restored from an older copy); nothing imports them, and a later \`lakeguard forget\` deletes them`;
}

/**
 * Applies forgets/ documents in the order given (name order: oldest first): forget documents
 * to the catalog, prune documents through `onPrune`. A document that cannot be read is
 * reported and not applied (more is kept than was meant to be: nothing is lost).
 */
export async function applyForgets(
  repo: Repository,
  catalog: Catalog,
  names: readonly string[],
  damaged: (what: string, problem: string) => void,
  checkSignal: () => void,
  onPrune: (name: string, doc: PruneDocument) => void,
  documents: ReadonlyMap<string, ForgetDocument | PruneDocument> = new Map(),
): Promise<{ forgets: number; prunes: number; keptMissing: { run: string; forget: string }[] }> {
  const applied = { forgets: 0, prunes: 0, keptMissing: [] as { run: string; forget: string }[] };
  // A kept manifest a later forget released (deleted) is rightly absent: not imported, not missing.
  const released = manifestsDeletedBy(forgetDocumentsOf(documents));
  for (const name of names) {
    let doc: ForgetDocument | PruneDocument;
    try {
      doc = documents.get(name) ?? (await repo.readDocument<ForgetDocument | PruneDocument>('forgets', name));
    } catch (err) {
      // Not applying it keeps more than was meant to be kept: nothing is lost, but say so.
      damaged(objectKey('forgets', name), `${errorMessage(err)}; its runs and versions are kept`);
      continue;
    }
    if (isPruneDocument(doc)) {
      onPrune(name, doc);
      applied.prunes++;
    } else {
      const { keptMissing } = applyForgetDocument(catalog, name, doc);
      for (const id of keptMissing.filter((run) => !released.has(run))) {
        applied.keptMissing.push({ run: id, forget: name });
        damaged(
          objectKey('runs', id),
          `missing from the repository, but forget ${name} kept it: kept runs need versions only its records hold, and the catalog lacks them; restore it from a copy of the repository`,
        );
      }
      applied.forgets++;
    }
    checkSignal();
  }
  return applied;
}

// ---- index files ----------------------------------------------------------------------

/**
 * Index files read ahead of the one being imported: each is held whole, parsed (up to ~2 MB of
 * text and several times that parsed), so this bounds the import's memory; importing one takes
 * longer than reading the next, so more in flight would not make it faster.
 */
const INDEX_FILES_AHEAD = 3;

export async function loadIndexes(
  repo: Repository,
  catalog: Catalog,
  names: readonly string[],
  concurrency: number,
  opts: ImportOptions,
  report: ImportTally,
  damaged: (what: string, problem: string) => void,
  events: EventSink,
): Promise<void> {
  let done = 0;
  await inOrder(
    names,
    Math.min(concurrency, INDEX_FILES_AHEAD),
    async (name) => {
      try {
        return checkIndex(await repo.readDocument<IndexDocument>('index', name), name, repo);
      } catch (err) {
        if (opts.skipMissing && isNotFound(err)) return null;
        if (!(err instanceof IntegrityError) || !opts.skipDamaged) throw damageHint(err, objectKey('index', name));
        return err;
      }
    },
    (doc, name) => {
      if (doc === null) {
        // gone since it was named: a prune replaced it, and its document says by what
      } else if (doc instanceof IntegrityError) {
        damaged(objectKey('index', name), `${doc.message}; skipped`);
      } else if (opts.movingFrom !== undefined) {
        relocatePacks(catalog, doc.packs.map(packOfIndex), name, opts.movingFrom);
        report.indexFiles++;
      } else {
        catalog.transaction(() => {
          for (const p of doc.packs) catalog.insertPack(packOfIndex(p), null, name);
          catalog.addIndexFile(name);
        });
        report.indexFiles++;
      }
      events({ type: 'progress', phase: 'read index', done: ++done, total: names.length, bytes: 0, failed: report.damage.length });
    },
  );
}

export function checkIndex(doc: IndexDocument, name: string, repo: Repository): IndexDocument {
  const bad = (why: string): IntegrityError => new IntegrityError(`${repo.where('index', name)}: not a valid index file (${why})`);
  if (doc === null || typeof doc !== 'object' || doc.version !== 1 || !Array.isArray(doc.packs)) throw bad('no version 1 pack list');
  for (const p of doc.packs) {
    if (typeof p?.id !== 'string' || !HEX64.test(p.id) || !Number.isInteger(p.size) || !Array.isArray(p.blobs)) throw bad('malformed pack entry');
    for (const b of p.blobs) {
      if (!Array.isArray(b) || b.length !== 6 || typeof b[0] !== 'string' || !HEX64.test(b[0]) || !b.slice(1).every((n) => typeof n === 'number' && Number.isInteger(n) && n >= 0)) {
        throw bad(`malformed blob entry in pack ${p.id}`);
      }
    }
  }
  return doc;
}

/** An index file's pack entry as the catalog records it. */
export function packOfIndex(p: IndexDocument['packs'][number]): PackRecord {
  return {
    name: p.id,
    size: p.size,
    blobs: p.blobs.map(([hex, type, offset, length, rawLength, compressed]) => ({
      hash: Buffer.from(hex, 'hex'),
      offset,
      length,
      rawLength,
      flags: blobFlags(Boolean(compressed), type as BlobType),
    })),
  };
}
