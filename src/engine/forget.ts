/**
 * `forget`: applies the retention policy to runs, and drops the object versions that no kept
 * point in time needs. Which versions a kept point in time needs (docs: README "Retention"):
 *
 *  1. The state of every kept run: for each key, the newest version recorded by that run or
 *     an earlier one (a delete marker included, so a key deleted at that point stays deleted).
 *  2. Every version recorded between two consecutive kept runs (no complete or partial run
 *     between them forgotten): there, `restore --at T` stays exact for every T, as it is
 *     across an unbroken keep_last / keep_within streak.
 *  3. The newest version of every key (what the next incremental backup compares against).
 *
 * Everything else is dropped. Keys of sources no longer in the policy, and groups not selected
 * with --group, keep every version. Retention is decided per scope (source prefix) with its
 * inherited rules; a run is forgotten only when no scope of its group keeps it.
 *
 * Crash safety: the forget document is written to the repository first (create-only), then
 * applied to the catalog (one transaction), then the manifests that nothing needs any more
 * are deleted. Packs are never touched here: `prune` frees the data.
 */
import { hostname } from 'node:os';
import { lastCleanRun, suspectRuns } from '../catalog/anomalies.js';
import type { Catalog } from '../catalog/catalog.js';
import { applyForgetDocument, describeVersions, forgottenManifests, keptManifestCounts, objectsWithVersions, ownVersionCounts, runIdTime, pendingDeletions, setPendingDeletion, type ForgetDocument, type PlanObject, type PlanVersion } from '../catalog/forget.js';
import type { RunRow } from '../catalog/types.js';
import { InterruptedError, LakeguardError } from '../errors.js';
import { hasRules, retentionScopes, scopeOf, type RetentionScope } from '../policy/retention.js';
import type { Policy } from '../policy/types.js';
import { fileName, objectKey } from '../repository/layout.js';
import { removeRepositoryObject } from '../repository/remove.js';
import type { Repository } from '../repository/repository.js';
import { newRunId } from './run-id.js';
import { noEvents, type EventSink } from './events.js';
import { decideRetention, type RetentionDecision } from './retention.js';
import { RetentionUnits } from './retention-units.js';
import { copiedFromOf } from '../catalog/copied-runs.js';
import { requireWholeCatalog } from '../catalog/scope.js';
import { runSetsNamed } from '../catalog/run-sets.js';
import { incompleteClause, incompleteRuns } from '../catalog/sync.js';
import { obsoleteCheckpoints } from './resume.js';
import { isPruneName } from './sync.js';
import { requireAuthentic } from './rebuild-manifests.js';

/** Dropped versions per forget document: bounds the size of one document. */
const DROPS_PER_DOCUMENT = 50_000;

export interface ScopeVerdict {
  scope: string;
  keep: boolean;
  reasons: string[];
}

export interface RunVerdict {
  run: RunRow;
  keep: boolean;
  /** Reasons of every scope that keeps it (deduplicated), or why it stays despite the rules. */
  reasons: string[];
  /** Per scope, when the group has more than one. */
  scopes: ScopeVerdict[];
}

export interface ForgetPlan {
  verdicts: RunVerdict[];
  forgotten: RunRow[];
  /** Catalog row ids of the versions to drop. */
  dropped: number[];
  droppedBytes: number;
  /** Forgotten runs whose versions are all dropped: their manifests can go. */
  emptyRuns: string[];
  /** Forgotten runs whose manifests stay: records of versions kept runs still need (ForgetDocument.manifestsKept). */
  manifestsKept: string[];
  /**
   * Manifests earlier forgets kept (for versions only their records hold) of which this one
   * drops the last such version: they can go too (the last document part says so).
   */
  released: string[];
}

export interface ForgetResult extends ForgetPlan {
  dryRun: boolean;
  documents: string[];
  manifestsDeleted: string[];
  manifestsLocked: { name: string; lockedUntil: string }[];
  /** Plans (runsets/) of run sets none of whose attempts the catalog holds any more, deleted. */
  plansDeleted: string[];
  /** Checkpoint documents (checkpoints/) no re-run will read any more, deleted (resume.ts obsoleteCheckpoints). */
  checkpointsDeleted: string[];
}

export interface ForgetOptions {
  group?: string;
  now?: number;
  signal?: AbortSignal;
  events?: EventSink;
  /** Dropped versions per document (default DROPS_PER_DOCUMENT); tests make operations of several parts with it. */
  dropsPerDocument?: number;
}

/** Decides, without writing anything, which runs go and which versions are dropped. */
export function planForget(catalog: Catalog, policy: Policy, opts: ForgetOptions = {}): ForgetPlan {
  const now = opts.now ?? Date.now();
  const runs = catalog.listRuns();
  const units = new RetentionUnits(catalog, now);
  const scopes = retentionScopes(policy);
  const selected = (group: string): boolean => opts.group === undefined || opts.group === group;

  // Per scope: the decision for every unit (run, or run set) of its group.
  const decisions = new Map<RetentionScope, Map<string, RetentionDecision>>();
  for (const scope of scopes) {
    const groupUnits = units.ofGroup(scope.group);
    if (!selected(scope.group)) {
      decisions.set(scope, new Map(groupUnits.map((r) => [r.id, { keep: true, reasons: ['not selected'] }])));
      continue;
    }
    decisions.set(scope, decideRetention(groupUnits, scope.rules, { now, timeZone: policy.timezone }));
  }
  keepPreAnomalyRuns(catalog, scopes, decisions, units);

  const verdicts: RunVerdict[] = runs.map((run) => {
    const own = scopes.filter((s) => s.group === run.group);
    if (own.length === 0) return { run, keep: true, reasons: ['group not in policy'], scopes: [] };
    const perScope = own.map((s) => ({ scope: s.label, ...decisions.get(s)!.get(units.unitOf(run))! }));
    const keep = perScope.some((s) => s.keep);
    return { run, keep, reasons: [...new Set(perScope.flatMap((s) => s.reasons))], scopes: perScope };
  });
  // A run that ended without its manifest (the repository refused it) stays, as a running one
  // does, until the next backup on its host records it: its versions are in no manifest, and
  // forgetting it would move them into runs whose manifests do not list them. Its run set too.
  const unrecorded = new Set(verdicts.filter((v) => catalog.unrecordedError(v.run.seq) !== undefined).map((v) => units.unitOf(v.run)));
  for (const v of verdicts) {
    if (!v.keep && unrecorded.has(units.unitOf(v.run))) {
      v.keep = true;
      v.reasons = ['unrecorded'];
    }
  }
  // A run's versions move to the next run that remains; the newest run has none to move to.
  // A run set is one unit: when one of its attempts is the newest, all of them stay.
  const lastKept = Math.max(0, ...verdicts.filter((v) => v.keep).map((v) => v.run.seq));
  const newestUnits = new Set(verdicts.filter((v) => !v.keep && v.run.seq > lastKept).map((v) => units.unitOf(v.run)));
  for (const v of verdicts) {
    if (!v.keep && newestUnits.has(units.unitOf(v.run))) {
      v.keep = true;
      v.reasons = ['newest'];
    }
  }
  const forgotten = verdicts.filter((v) => !v.keep).map((v) => v.run);

  const needs = new Map<RetentionScope, ScopeNeeds>();
  for (const scope of scopes) {
    if (!selected(scope.group) || !hasRules(scope.rules)) continue;
    needs.set(scope, scopeNeeds(runs.filter((r) => r.group === scope.group), decisions.get(scope)!, units));
  }

  const scopesByGroup = [...new Set(scopes.map((s) => s.group))].map((g) => scopes.filter((s) => s.group === g));
  const dropped: number[] = [];
  let droppedBytes = 0;
  // Counted by the manifest that holds each version's record: its run's, or for a version an
  // earlier forget moved from a run whose manifest it kept, that manifest's (kept_versions).
  const droppedByRun = new Map<number, number>();
  const droppedByKept = new Map<number, number>();
  for (const page of objectsWithVersions(catalog)) {
    if (opts.signal?.aborted) throw new InterruptedError('forget interrupted before it changed anything');
    for (const object of page) {
      // Groups may back up the same bucket: a version goes only when the scope governing its
      // key in every group that covers it does not need it (a scope without rules keeps all).
      const governing = scopesByGroup.map((own) => scopeOf(own, object.bucket, object.key)).filter((s) => s !== undefined);
      const need = governing.map((s) => needs.get(s));
      if (need.length === 0 || need.some((n) => n === undefined)) continue;
      for (const v of unneededVersions(object, need as ScopeNeeds[])) {
        dropped.push(v.id);
        droppedBytes += v.size;
        if (v.keptBy === null) droppedByRun.set(v.run, (droppedByRun.get(v.run) ?? 0) + 1);
        else droppedByKept.set(v.keptBy, (droppedByKept.get(v.keptBy) ?? 0) + 1);
      }
    }
  }
  const versionsPerRun = ownVersionCounts(catalog);
  const emptied = (r: RunRow): boolean => (versionsPerRun.get(r.seq) ?? 0) === (droppedByRun.get(r.seq) ?? 0);
  const emptyRuns = forgotten.filter(emptied).map((r) => r.id);
  const manifestsKept = forgotten.filter((r) => !emptied(r)).map((r) => r.id);
  const released = keptManifestCounts(catalog).filter((m) => m.versions === (droppedByKept.get(m.id) ?? 0)).map((m) => m.run);
  return { verdicts, forgotten, dropped, droppedBytes, emptyRuns, manifestsKept, released };
}

/**
 * While a group has a suspect run nobody acknowledged, the last clean run before it stays
 * (`pre-anomaly`), with every version its state needs (it is a kept run like any other below),
 * whatever keep_* says: it is what `rollback --at last-clean` goes back to. The suspect runs
 * stay too (`suspect`): forgetting one would end that protection before anybody looked, and
 * take the evidence with it (docs/retention.md).
 */
function keepPreAnomalyRuns(catalog: Catalog, scopes: readonly RetentionScope[], decisions: Map<RetentionScope, Map<string, RetentionDecision>>, units: RetentionUnits): void {
  const suspects = suspectRuns(catalog);
  const cleanOf = new Map<string, string | undefined>();
  const keep = (decision: RetentionDecision | undefined, reason: string): void => {
    if (decision === undefined) return;
    decision.keep = true;
    if (!decision.reasons.includes(reason)) decision.reasons.push(reason);
  };
  for (const scope of scopes) {
    const decided = decisions.get(scope);
    if (decided === undefined) continue;
    if (!cleanOf.has(scope.group)) {
      const state = lastCleanRun(catalog, [scope.group]);
      // Also while the newest judged run is an incident (acknowledged as damage, never clean) and
      // no clean run has followed: the last clean state is the one a responder may still need.
      const guarded = state.suspect !== undefined || state.incident !== undefined;
      cleanOf.set(scope.group, !guarded || state.lastClean === undefined ? undefined : units.unitOf(state.lastClean));
    }
    const clean = cleanOf.get(scope.group);
    if (clean !== undefined) keep(decided.get(clean), 'pre-anomaly');
    // A shard attempt's verdict is its run set's (a run set is suspect when any of its shards is).
    for (const [id, { acknowledged }] of suspects) if (!acknowledged) keep(decided.get(units.unitOfId(id)), 'suspect');
  }
}

/** A state a kept point in time needs: the runs numbered up to `upTo`, and those in `plus` (a run set's cut). */
interface KeptCut {
  upTo: number;
  plus?: ReadonlySet<number>;
}

interface ScopeNeeds {
  /** The states of the runs and run sets this scope keeps. */
  kept: KeptCut[];
  /** Runs whose recorded versions all stay (rule 2). */
  covered: Set<number>;
}

function scopeNeeds(groupRuns: readonly RunRow[], decided: Map<string, RetentionDecision>, units: RetentionUnits): ScopeNeeds {
  const ordered = [...groupRuns].sort((a, b) => a.seq - b.seq);
  const keptRuns = ordered.filter((r) => decided.get(units.unitOf(r))?.keep);
  const kept: KeptCut[] = [];
  for (const r of keptRuns) {
    if (r.shard === undefined) kept.push({ upTo: r.seq });
  }
  for (const cut of units.keptSetCuts((id) => decided.get(id)?.keep === true)) kept.push(cut);
  const keptSet = new Set(keptRuns.map((r) => r.seq));
  // An attempt counts as its run set does (complete or partial), whatever its own status.
  const counted = ordered.filter((r) => {
    const status = units.statusOf(r);
    return status === 'complete' || status === 'partial';
  });
  const covered = new Set<number>();
  for (const run of ordered) {
    // The first counted run at or after this one closes the interval the run's versions fall in.
    const closing = counted.findIndex((c) => c.seq >= run.seq);
    if (closing === -1) {
      covered.add(run.seq); // after the newest counted run: nothing later to compare with
      continue;
    }
    const opening = counted[closing - 1];
    if (keptSet.has(counted[closing]!.seq) && (opening === undefined || keptSet.has(opening.seq))) covered.add(run.seq);
  }
  return { kept, covered };
}

function* unneededVersions(object: PlanObject, needs: readonly ScopeNeeds[]): Generator<PlanVersion> {
  const versions = object.versions;
  const needed = new Set<number>();
  if (object.latest !== null) needed.add(object.latest);
  for (const v of versions) if (needs.some((need) => need.covered.has(v.run))) needed.add(v.id);
  // State of each kept run (or run set): the newest version (versions are oldest first) in its cut.
  for (const k of needs.flatMap((need) => need.kept)) {
    for (let i = versions.length - 1; i >= 0; i--) {
      const run = versions[i]!.run;
      if (run <= k.upTo || k.plus?.has(run) === true) {
        needed.add(versions[i]!.id);
        break;
      }
    }
  }
  for (const v of versions) if (!needed.has(v.id)) yield v;
}

/** Plans, then (unless dryRun) writes the forget documents, applies them, and deletes manifests nothing needs. */
export async function forget(
  repo: Repository,
  catalog: Catalog,
  policy: Policy,
  opts: ForgetOptions & { dryRun: boolean },
): Promise<ForgetResult> {
  requireWholeCatalog(catalog, 'forget');
  const events = opts.events ?? noEvents;
  events({ type: 'phase', phase: 'plan' });
  requireCompleteCatalog(catalog);
  await requireReadableManifests(repo, catalog);
  const plan = planForget(catalog, policy, opts);
  const result: ForgetResult = { ...plan, dryRun: opts.dryRun, documents: [], manifestsDeleted: [], manifestsLocked: [], plansDeleted: [], checkpointsDeleted: [] };
  if (opts.dryRun) return result;
  if (plan.forgotten.length === 0 && plan.dropped.length === 0 && plan.released.length === 0) {
    const checkpoints = (await obsoleteCheckpoints(repo, catalog, new Set())).map((name) => objectKey('checkpoints', name));
    await deleteManifests(repo, catalog, [...(await staleManifests(repo, catalog)), ...checkpoints], result);
    return result;
  }

  // Named like a run (UTC start time, then random hex), so forget documents sort by time.
  const id = nextForgetId(catalog, new Date());
  const perDocument = opts.dropsPerDocument ?? DROPS_PER_DOCUMENT;
  const parts = Math.max(1, Math.ceil(plan.dropped.length / perDocument));
  const forgottenIds = plan.forgotten.map((r) => r.id);
  // A run is emptied only once every part has dropped its versions: until the last part, its
  // manifest is kept (it records the versions later parts drop, which a crash between parts
  // leaves in every catalog), and the last part releases it with the manifests earlier forgets kept.
  const releasedLast = parts === 1 ? plan.released : [...plan.emptyRuns, ...plan.released];
  // Every part carries them, as every part names all forgotten runs.
  const copiedFrom = copiedFromOf(catalog, forgottenIds);
  events({ type: 'phase', phase: 'write' });
  for (let part = 1; part <= parts; part++) {
    // After the first document is written the operation is committed: no interruption point.
    if (part === 1 && opts.signal?.aborted) throw new InterruptedError('forget interrupted before it changed anything');
    const doc: ForgetDocument = {
      version: 1,
      id,
      part,
      parts,
      created: new Date().toISOString(),
      host: hostname(),
      forgotten: forgottenIds,
      // Manifests of forgotten runs whose records still hold needed versions stay, and the document says so.
      manifestsKept: part === parts ? plan.manifestsKept : forgottenIds,
      dropped: describeVersions(catalog, plan.dropped.slice((part - 1) * perDocument, part * perDocument)),
      ...(copiedFrom.length === 0 ? {} : { copiedFrom }),
      // Only once every drop is applied: a crash before the last part leaves them kept.
      ...(part === parts && releasedLast.length > 0 ? { manifestsReleased: releasedLast } : {}),
    };
    const name = `${id}-${String(part).padStart(4, '0')}`;
    await repo.writeDocument('forgets', name, doc);
    applyForgetDocument(catalog, name, doc);
    result.documents.push(name);
    events({ type: 'progress', phase: 'write', done: part, total: parts, bytes: 0, failed: 0 });
  }

  events({ type: 'phase', phase: 'delete manifests' });
  // A run set none of whose attempts remains needs its plan no more (only a shard starting while
  // it runs reads it); kept, every plan would be read by each new plan (shard-plan.ts).
  const setNames = new Set(plan.forgotten.flatMap((r) => (r.shard === undefined ? [] : [r.shard.name])));
  const unused = [...setNames].filter((name) => runSetsNamed(catalog, name).length === 0);
  // Only plans that exist: a copy's target (lakeguard copy) holds none, and must not be told one was deleted.
  const present = unused.length === 0 ? new Set<string>() : new Set(await repo.listNames('runsets'));
  const plans = unused.filter((name) => present.has(name)).map((name) => objectKey('runsets', name));
  // Checkpoints of shard attempts (resume.ts) that no re-run will read: their attempt's or shard's manifest is there, or their run set is forgotten.
  const forgottenSets = new Set(plan.forgotten.flatMap((r) => (r.shard !== undefined && unused.includes(r.shard.name) ? [r.shard.set] : [])));
  const checkpoints = (await obsoleteCheckpoints(repo, catalog, forgottenSets)).map((name) => objectKey('checkpoints', name));
  const manifests = [...plan.emptyRuns, ...plan.released].map((id) => objectKey('runs', id));
  await deleteManifests(repo, catalog, [...manifests, ...(await staleManifests(repo, catalog)), ...plans, ...checkpoints], result);
  return result;
}

/**
 * Refuses a catalog that lacks versions a run's manifest holds (a sync could not read part of
 * the run: an index file or record blob damaged, or a kept manifest missing): that run would look
 * as if it held nothing kept runs need, and forget would delete its manifest, the only record of
 * those versions, for good. prune refuses the same catalog.
 */
function requireCompleteCatalog(catalog: Catalog): void {
  const incomplete = incompleteRuns(catalog);
  if (incomplete.length === 0) return;
  throw new LakeguardError(`catalog ${catalog.path} ${incompleteClause(incomplete[0]!)}; forget would delete manifests that hold versions it does not know`, {
    hint: 'restore from a copy what `lakeguard verify` names, then run `lakeguard catalog rebuild` and forget again',
  });
}

/**
 * Refuses when runs/ holds a manifest the catalog does not know that fails authentication (the
 * sync left it out with a warning: damaged, tampered or planted). Its run may be one the rules
 * keep, and the versions it needs would be dropped as needed by no kept run: once the manifest
 * is put back from a copy, the run would restore without them. prune refuses the same object.
 * A manifest that authenticates (a backup that ended after the sync) is left to the next forget:
 * a run after every run this catalog knows needs nothing it could drop. One LIST of runs/.
 */
async function requireReadableManifests(repo: Repository, catalog: Catalog): Promise<void> {
  const known = catalog.knownRunIds();
  for (const id of (await repo.listNames('runs')).sort()) {
    if (!known.has(id)) await requireAuthentic(repo, 'runs', id, 'forget', 'which versions its run needs');
  }
}

/**
 * Manifests an earlier forget deleted that are in the repository again (restored from an older
 * copy), or that a forget stopped before deleting: nothing imports or needs them (rebuild.ts
 * staleManifestWarning), so they go with this forget's.
 */
async function staleManifests(repo: Repository, catalog: Catalog): Promise<string[]> {
  const forgotten = forgottenManifests(catalog);
  if (forgotten.size === 0) return [];
  return (await repo.listNames('runs')).filter((id) => forgotten.get(id)?.state === 'deleted').map((id) => objectKey('runs', id));
}

/**
 * An id whose documents sort after every forget document the catalog applied: readers apply
 * them in name order, and two forgets in one second would sort by their random part (a later
 * one releasing a manifest an earlier one kept would be applied first). Moved to the next
 * second when needed: a name may be later than its writer's lock (repository-format.md).
 */
function nextForgetId(catalog: Catalog, now: Date): string {
  const last = [...catalog.knownForgets()].filter((name) => !isPruneName(name)).sort().at(-1);
  const id = newRunId(now);
  if (last === undefined || `${id}-0001` > last) return id;
  return newRunId(new Date((runIdTime(last) ?? now.getTime()) + 1000));
}

/**
 * Deletes the manifests (and run-set plans) nothing needs any more: this forget's (`keys`), and
 * those an earlier forget found still under Object Lock (remembered in the catalog, so a later
 * run deletes them).
 */
async function deleteManifests(repo: Repository, catalog: Catalog, keys: readonly string[], result: ForgetResult): Promise<void> {
  // Retained key files (`key remove`) wait in the same list, but only `key remove` deletes a
  // key: it alone checks that another password remains.
  // Index files and packs a prune dropped wait there too: prune deletes them (a pack only once no
  // index file lists it).
  const pending = pendingDeletions(catalog).filter((name) => fileName('keys', name) === null && fileName('index', name) === null && fileName('packs', name) === null);
  const names = [...new Set([...pending, ...keys])];
  for (const name of names) {
    const removed = await removeRepositoryObject(repo, name);
    if (removed.removed) {
      const plan = fileName('runsets', name);
      const checkpoint = fileName('checkpoints', name);
      if (plan !== null) result.plansDeleted.push(plan);
      else if (checkpoint !== null) result.checkpointsDeleted.push(checkpoint);
      else result.manifestsDeleted.push(fileName('runs', name) ?? name);
      setPendingDeletion(catalog, name, null);
    } else {
      result.manifestsLocked.push({ name, lockedUntil: removed.lockedUntil.toISOString() });
      setPendingDeletion(catalog, name, removed.lockedUntil.getTime());
    }
  }
}
