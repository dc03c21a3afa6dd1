/**
 * Restore drills (docs/drill.md): restore a sample of a backed-up state into a scratch target
 * with the ordinary restore, read every restored object back and check it blob by blob against
 * the catalog's blob ids, measure the restore time (RTO) and the age of the newest run at the
 * drilled instant (RPO), record the result as a sealed drills/ document, and remove what the
 * drill wrote unless asked to keep it. `watch` runs the policy's `drill:` schedule through
 * `runDrill`.
 */
import { hostname } from 'node:os';
import pLimit from 'p-limit';
import type { Catalog, Scope, StateCut } from '../catalog/catalog.js';
import { DrillFailures, insertDrill, type DrillDocument } from '../catalog/drills.js';
import { sampleSelection, selectState, statePage } from '../catalog/restore-selection.js';
import type { RestoreItem } from '../catalog/types.js';
import { IntegrityError, InterruptedError, StorageError, UsageError, errorMessage, isNotFound } from '../errors.js';
import { newDrillName } from '../repository/documents.js';
import { objectKey } from '../repository/layout.js';
import type { RepositoryLock } from '../repository/locks.js';
import type { Repository } from '../repository/repository.js';
import { StoreDecorator } from '../storage/store-decorator.js';
import type { ObjectStore, PutOptions, PutResult } from '../storage/types.js';
import type { Readable } from 'node:stream';
import { noEvents, type EventSink } from './events.js';
import { isBackedUpContent, restore, targetKey, TargetRefusedError } from './restore.js';

/** The largest --sample: the sample's keys are held in memory (a drill of more restores --all). */
export const MAX_DRILL_SAMPLE = 100_000;
/** Damaged objects named in the report and the document (all are reported as events). */
const DAMAGE_LISTED = 100;
const PAGE = 1000;

export interface DrillScratch {
  /** The store the drill restores into: rooted at a directory or prefix of its own, which nothing else writes. */
  store: ObjectStore;
  /** How messages name it (`s3://b/p/lakeguard-drill-…/`). */
  location: string;
  /** Removes the scratch root itself once it is empty (a directory); absent for S3 prefixes. */
  removeRoot?: () => Promise<void>;
}

export interface DrillOptions {
  repo: Repository;
  catalog: Catalog;
  /** What to drill (as restore takes them) and the state: a run, a run set or an instant. */
  scopes: Scope[];
  cut: StateCut;
  /** `group:NAME`, `bucket:NAME/PREFIX` or `keys:FILE` (the metrics' and the document's scope). */
  scopeLabel: string;
  /** How the report names the state (`run 20261206T…`). */
  stateLabel: string;
  /**
   * The run the state is (or the newest at the instant; a run set as one run) and the instant,
   * for the RPO; run null without one.
   */
  rpo: { run: { id: string; finished: number | null } | null; instant: number };
  /** Objects to sample, or every selected object. */
  sample: number | 'all';
  scratch: DrillScratch;
  /** Keep what was restored (for a look); the report names where. */
  keep: boolean;
  /** Held by the caller (a shared lock: prune must not delete packs meanwhile); the drill document is named while it is held. */
  lock: RepositoryLock;
  concurrency: number;
  events?: EventSink;
  signal?: AbortSignal;
  /** Injected by tests; Date.now otherwise. */
  now?: () => number;
}

export interface DrillReport extends DrillDocument {
  /** Where the sample was restored; `kept` says whether it is still there. */
  scratch: string;
  kept: boolean;
  /** Objects the cleanup could not remove (they are named in warnings). */
  cleanupFailed: number;
  /** The drill document was written to the repository (false: a warning said why not). */
  recorded: boolean;
}

/** The scratch store, counting the writes it took: with none, there is nothing to clean up. */
class CountedWrites extends StoreDecorator {
  written = 0;
  override async put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult> {
    const result = await super.put(key, body, opts);
    this.written++;
    return result;
  }
}

/**
 * Runs one drill and records it. Damage does not throw: the report says `ok: false` and names
 * the objects (the command exits 1). Errors that stop the drill itself (the scratch target
 * cannot be written: exit 2, an interrupt) throw after the cleanup, and nothing is recorded.
 */
export async function runDrill(opts: DrillOptions): Promise<DrillReport> {
  const now = opts.now ?? Date.now;
  const events = opts.events ?? noEvents;
  const started = now();
  const selected = selectState(opts.catalog, opts.scopes, opts.cut);
  // A sample: a random subset of the selection, restored by key at the same state.
  const scopes: Scope[] =
    opts.sample === 'all' || opts.sample >= selected ? opts.scopes : sampleSelection(opts.catalog, opts.sample).map((k) => ({ bucket: k.bucket, key: k.key }));
  const bucketDirs = new Set(opts.scopes.map((s) => s.bucket)).size > 1;
  events({ type: 'phase', phase: 'drill', detail: `restoring ${scopes === opts.scopes ? selected : scopes.length} of ${selected} objects into ${opts.scratch.location}` });

  const damaged: DrillDocument['damaged'] = [];
  let damagedCount = 0;
  const damage = (bucket: string, key: string, problem: string): void => {
    damagedCount++;
    events({ type: 'failure', bucket, key, versionId: null, code: 'DrillDamage', message: problem });
    if (damaged.length < DAMAGE_LISTED) damaged.push({ bucket, key, problem });
  };
  let restoreMs = 0;
  let verifyMs = 0;
  let restored = 0;
  let verified = 0;
  let bytes = 0;
  let sampled = 0;
  let cleanupFailed = 0;
  // Every object the restore could not write, from its failure events (its summary names only
  // the first 1,000): each is damage once, and verification does not read it back.
  const failed = new DrillFailures(opts.catalog);
  const scratch = new CountedWrites(opts.scratch.store);
  try {
    const restoreStarted = now();
    const summary = await restore({
      repo: opts.repo,
      catalog: opts.catalog,
      scopes,
      cut: opts.cut,
      target: scratch,
      bucketDirs,
      // The scratch root is the drill's own: nothing there to compare with or keep.
      overwrite: 'always',
      // A write the scratch target refuses (AccessDenied, a full disk) says nothing about the
      // backup: it stops the drill at once, instead of each object becoming "damage".
      targetFailureStreak: 1,
      concurrency: opts.concurrency,
      events: (e) => {
        // A failure is the drill's finding: reported once, as damage.
        if (e.type !== 'failure') events(e);
        else if (failed.add(e.bucket, e.key)) damage(e.bucket, e.key, `not restored: ${e.message}`);
      },
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
    restoreMs = now() - restoreStarted;
    sampled = summary.objects;
    restored = summary.restored;
    bytes = summary.bytes;

    const verifyStarted = now();
    verified = await verifyRestored(opts, bucketDirs, failed, damage, events);
    verifyMs = now() - verifyStarted;
  } catch (err) {
    if (!(err instanceof TargetRefusedError)) throw err;
    throw new UsageError(`drill: the scratch target ${opts.scratch.location} refused a write (${err.refusal}); no drill recorded`, {
      hint: 'give a scratch target these credentials may write and delete in (--to s3://bucket/prefix/ or --to-dir DIR): that failure says nothing about the backup',
    });
  } finally {
    failed.close();
    if (!opts.keep && scratch.written > 0) cleanupFailed = await cleanUp(opts, bucketDirs, events);
  }

  const finished = now();
  const newest = opts.rpo.run;
  const doc: DrillDocument = {
    version: 1,
    id: '',
    host: hostname(),
    created: new Date(finished).toISOString(),
    scope: opts.scopeLabel,
    state: opts.stateLabel,
    run: newest?.id ?? null,
    ok: damagedCount === 0 && verified === sampled,
    objects: { selected, sampled, restored, verified, damaged: damagedCount },
    bytes,
    rtoMs: restoreMs,
    verifyMs,
    durationMs: finished - started,
    rpoMs: newest?.finished == null ? null : Math.max(0, opts.rpo.instant - newest.finished),
    damaged,
  };
  const recorded = await record(opts, doc, events);
  return { ...doc, scratch: opts.scratch.location, kept: opts.keep, cleanupFailed, recorded };
}

/**
 * Reads every restored object of the selection back from the scratch target and checks it
 * against the catalog's blob ids; returns how many matched. Objects the restore could not
 * write are damage already; a mismatch or an unreadable object is damage too.
 */
async function verifyRestored(
  opts: DrillOptions,
  bucketDirs: boolean,
  failed: DrillFailures,
  damage: (bucket: string, key: string, problem: string) => void,
  events: EventSink,
): Promise<number> {
  const limit = pLimit(opts.concurrency);
  const signal = opts.signal === undefined ? {} : { signal: opts.signal };
  let verified = 0;
  let checked = 0;
  const check = async (item: RestoreItem): Promise<void> => {
    if (failed.has(item.bucket, item.key)) return;
    try {
      const { body } = await opts.scratch.store.get(targetKey(item, bucketDirs), signal);
      if (await isBackedUpContent(opts.repo, body, item.blobs)) verified++;
      else damage(item.bucket, item.key, 'restored bytes differ from the backed-up content (blob ids do not match the catalog)');
    } catch (err) {
      if (err instanceof InterruptedError || opts.signal?.aborted) throw err;
      damage(item.bucket, item.key, `cannot read back what was restored: ${errorMessage(err)}`);
    }
  };
  for (let after = 0; ; ) {
    if (opts.signal?.aborted) throw new InterruptedError('drill interrupted');
    const page = statePage(opts.catalog, after, PAGE);
    if (page.items.length === 0) break;
    after = page.rowid;
    await Promise.all(page.items.map((item) => limit(() => check(item))));
    checked += page.items.length;
    events({ type: 'progress', phase: 'drill verify', done: checked, bytes: 0, failed: 0 });
  }
  return verified;
}

/**
 * Removes what the drill wrote: the selected objects' keys under the scratch root, nothing
 * else (the root is the drill's own, and only keys it restored are deleted), then the root
 * itself when it is an empty directory. Returns how many could not be removed.
 */
async function cleanUp(opts: DrillOptions, bucketDirs: boolean, events: EventSink): Promise<number> {
  const limit = pLimit(opts.concurrency);
  let failed = 0;
  for (let after = 0; ; ) {
    const page = statePage(opts.catalog, after, PAGE);
    if (page.items.length === 0) break;
    after = page.rowid;
    await Promise.all(
      page.items.map((item) =>
        limit(async () => {
          const key = targetKey(item, bucketDirs);
          try {
            await opts.scratch.store.delete(key);
          } catch (err) {
            // Missing, or a key no directory can hold (`..`, `a//b`): the restore never wrote it.
            if (isNotFound(err) || (err instanceof StorageError && err.backendCode === 'InvalidKey')) return;
            failed++;
            events({ type: 'warning', message: `drill cleanup: cannot remove ${opts.scratch.location}${key}: ${errorMessage(err)}` });
          }
        }),
      ),
    );
  }
  if (failed === 0) await opts.scratch.removeRoot?.().catch(() => {});
  return failed;
}

/**
 * Writes the drill document (named now, while the caller's lock is held: catalog sync lists
 * drills/ after a time marker) and records it in the catalog. A repository that refuses the
 * write (read-only credentials) gets a warning: the drill's result stands, it is just not shown
 * by `runs` on other hosts.
 */
async function record(opts: DrillOptions, doc: DrillDocument, events: EventSink): Promise<boolean> {
  doc.id = newDrillName(new Date(Date.parse(doc.created)));
  try {
    opts.lock.throwIfLost();
    await opts.repo.writeDocument('drills', doc.id, doc);
  } catch (err) {
    events({ type: 'warning', message: `the drill was not recorded in ${opts.repo.location}: ${errorMessage(err)}` });
    return false;
  }
  opts.catalog.transaction(() => insertDrill(opts.catalog, doc));
  return true;
}

/** Checks a drill document against its name (the seal already bound it to drills/<name>). */
export function checkDrill(doc: DrillDocument, name: string, repo: Repository): DrillDocument {
  const bad = (why: string): IntegrityError => new IntegrityError(`${repo.where('drills', name)}: not a valid drill record (${why})`);
  if (doc === null || typeof doc !== 'object' || doc.version !== 1) throw bad('not version 1');
  if (doc.id !== name) throw bad(`it names ${JSON.stringify(doc.id)}`);
  if (typeof doc.scope !== 'string' || typeof doc.ok !== 'boolean' || Number.isNaN(Date.parse(doc.created))) throw bad('scope, ok or created missing');
  return doc;
}

/**
 * Reads drill documents and records them in the catalog (sync, rebuild); returns how many. One
 * that cannot be read is reported through `damaged`; one deleted since the listing is skipped.
 */
export async function loadDrills(repo: Repository, catalog: Catalog, names: readonly string[], damaged: (what: string, problem: string) => void, checkSignal: () => void): Promise<number> {
  let loaded = 0;
  for (const name of names) {
    checkSignal();
    let doc: DrillDocument;
    try {
      doc = checkDrill(await repo.readDocument<DrillDocument>('drills', name), name, repo);
    } catch (err) {
      if (isNotFound(err)) continue;
      if (!(err instanceof IntegrityError)) throw err;
      damaged(objectKey('drills', name), `${errorMessage(err)}; the drill is not shown`);
      continue;
    }
    catalog.transaction(() => insertDrill(catalog, doc));
    loaded++;
  }
  return loaded;
}
