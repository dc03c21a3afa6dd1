import type { Catalog } from '../catalog/catalog.js';
import { forgottenManifests, pendingDeletions } from '../catalog/forget.js';
import { LockDates } from '../catalog/lock-dates.js';
import { LakeguardError, UsageError, isNotFound } from '../errors.js';
import { CLOCK_SKEW_MARGIN_MS, DAY_MS, defaultSlackMs, retainUntilFor, type ObjectLockConfig } from '../repository/object-lock.js';
import { objectKey } from '../repository/layout.js';
import type { Repository } from '../repository/repository.js';
import { statsDelta, type RequestStats } from '../storage/types.js';
import { TaskGroup } from '../util/task-group.js';
import type { EngineEvent } from './events.js';
import { requireWholeCatalog } from '../catalog/scope.js';

/**
 * `lock extend`: keeps every object the repository still needs under Object Lock retention
 * for at least the configured period from now, in batches rather than one call per object
 * per day.
 *
 * An object is due when its retain-until is less than `now + retention`; it is then extended
 * to `now + retention + slack`, so it is not due again for `slack`. Repository writes get the
 * same `retention + slack`. Known dates come from the catalog (`lock_until`); only unknown
 * ones cost requests (a version listing and a GetObjectRetention), and only due ones a
 * PutObjectRetention, addressed to the version lakeguard wrote: someone who puts a new version
 * over a pack must not get their version extended while the original's retention runs out.
 */

export interface ExtendPolicy {
  now: number;
  retentionDays: number;
  slackMs: number;
}

export type ExtendDecision =
  /** The date is unknown: ask the server, then decide again. */
  | { action: 'ask' }
  /** Retained long enough; `dueAt` is when it needs extending. */
  | { action: 'keep'; dueAt: number }
  | { action: 'extend'; until: Date; dueAt: number };

/** The pure heart of `lock extend`: what to do with one object whose known retain-until (ms) is `known`. */
export function planExtension(known: number | null, p: ExtendPolicy): ExtendDecision {
  if (known === null) return { action: 'ask' };
  const dueAt = known - p.retentionDays * DAY_MS - CLOCK_SKEW_MARGIN_MS;
  if (dueAt > p.now) return { action: 'keep', dueAt };
  const until = retainUntilFor(p.now, p.retentionDays, p.slackMs);
  return { action: 'extend', until, dueAt: until.getTime() - p.retentionDays * DAY_MS - CLOCK_SKEW_MARGIN_MS };
}

export interface ExtendOptions {
  repo: Repository;
  catalog: Catalog;
  dryRun: boolean;
  /** Extend this far beyond the retention (default: the repository's, a quarter of the retention). */
  slackMs?: number;
  concurrency: number;
  events?: (e: EngineEvent) => void;
  signal?: AbortSignal;
  now?: number;
}

export interface ExtendReport {
  dryRun: boolean;
  mode: ObjectLockConfig['mode'];
  retentionDays: number;
  /** Referenced objects considered. */
  checked: number;
  /** Objects whose date (and version) the catalog did not know: read from the server (a version listing and a GetObjectRetention). */
  asked: number;
  /** Objects whose retention was (or, with --dry-run, would be) extended. */
  extended: number;
  /** Referenced objects the repository does not hold (named in warnings). */
  missing: number;
  /** Referenced objects hidden by a delete marker: their data version was extended by version id (named in warnings). */
  hidden: number;
  /** The date extended objects now are retained until. */
  extendedUntil: string | null;
  /** When the next `lock extend` will have something to do (null: nothing to keep). */
  nextDue: string | null;
  requests: RequestStats;
}

const PAGE = 1000;

export async function extendRetention(opts: ExtendOptions): Promise<ExtendReport> {
  const { repo, catalog } = opts;
  requireWholeCatalog(catalog, 'lock extend');
  const lock = repo.objectLock;
  if (lock === null) {
    throw new UsageError(`repository ${repo.location} was not created with Object Lock`, {
      hint: 'nothing to extend; Object Lock is chosen at `lakeguard init --object-lock ...`',
    });
  }
  if (!repo.canSetRetention) throw new LakeguardError(`${repo.location} cannot set Object Lock retention`);
  const policy: ExtendPolicy = { now: opts.now ?? Date.now(), retentionDays: lock.retentionDays, slackMs: opts.slackMs ?? defaultSlackMs(lock.retentionDays) };
  const dates = new LockDates(catalog);
  const before = repo.requestCounts();
  const report = { checked: 0, asked: 0, extended: 0, missing: 0, hidden: 0 };
  let nextDue = Number.POSITIVE_INFINITY;
  let extendedUntil: Date | null = null;
  const tasks = new TaskGroup();
  const signal = opts.signal;

  const sig = signal === undefined ? {} : { signal };
  const warn = (message: string): void => opts.events?.({ type: 'warning', message });

  /**
   * The version to keep retained when the catalog does not know it: the oldest data version,
   * the one lakeguard wrote (repository objects are written once; a newer version is a retried
   * PUT of the same bytes, or someone else's). A plain DELETE (allowed under Object Lock) only
   * hides an object behind a delete marker: its data version must stay retained all the same.
   */
  const locate = async (name: string): Promise<string | null> => {
    const versions = await repo.objectVersions(name);
    const data = versions.filter((v) => !v.isDeleteMarker);
    const oldest = data.at(-1);
    if (oldest === undefined) {
      report.missing++;
      warn(`${repo.location}${name} is referenced but missing from the repository; run \`lakeguard verify\``);
      return null;
    }
    const versionId = oldest.versionId ?? 'null';
    if (versions[0]!.isDeleteMarker) {
      report.hidden++;
      warn(`${repo.location}${name} is hidden by a delete marker (a DELETE without version id); its data (version ${versionId}) stays retained: remove the marker to make it readable again`);
    } else if (data.length > 1) {
      warn(`${repo.location}${name} has ${data.length} versions; the oldest (${versionId}, the one lakeguard wrote) stays retained`);
    }
    return versionId;
  };

  const extend = async (name: string, until: Date, versionId: string | null): Promise<void> => {
    report.extended++;
    extendedUntil = until;
    if (opts.dryRun) return;
    const retention = { mode: lock.mode, retainUntil: until };
    let target = versionId;
    try {
      await repo.putRetention(name, retention, target === null ? sig : { ...sig, versionId: target });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // The version the catalog knew is gone (or the current one is a delete marker): find it again.
      target = await locate(name);
      if (target === null) return;
      await repo.putRetention(name, retention, { ...sig, versionId: target });
    }
    dates.record(name, until, target);
  };

  const ask = async (name: string): Promise<void> => {
    report.asked++;
    const versionId = await locate(name);
    if (versionId === null) return;
    const r = await repo.getRetention(name, { ...sig, versionId });
    // An object without retention (written before lakeguard locked, or by hand) is due now.
    const known = r === null ? 0 : r.retainUntil.getTime();
    if (r !== null) dates.record(name, r.retainUntil, versionId);
    const decision = planExtension(known, policy);
    if (decision.action === 'ask') return; // cannot happen: known is a number
    nextDue = Math.min(nextDue, decision.dueAt);
    if (decision.action === 'extend') await extend(name, decision.until, versionId);
  };

  const consider = async (names: string[]): Promise<void> => {
    const known = dates.known(names);
    for (let i = 0; i < names.length; i++) {
      signal?.throwIfAborted();
      const name = names[i]!;
      const k = known[i]!;
      report.checked++;
      const decision = planExtension(k?.until ?? null, policy);
      if (decision.action === 'keep') {
        nextDue = Math.min(nextDue, decision.dueAt);
        continue;
      }
      await tasks.waitBelow(opts.concurrency);
      tasks.throwIfFailed();
      if (decision.action === 'ask') tasks.spawn(() => ask(name));
      else {
        nextDue = Math.min(nextDue, decision.dueAt);
        tasks.spawn(() => extend(name, decision.until, k?.version ?? null));
      }
    }
    opts.events?.({ type: 'progress', phase: 'lock extend', done: report.checked, bytes: 0, failed: report.missing });
  };

  await consider(['config']);
  // Every manifest in runs/ is needed (forget deletes those it no longer needs), including runs
  // of other machines this catalog has not seen; like keys/, forgets/ and acks/, one LIST per 1000.
  // Manifests forget already wanted to delete (still locked) are left to expire, and so are those
  // a forget deleted that are back (restored from an older copy): nothing reads them.
  const unneeded = new Set(pendingDeletions(catalog));
  for (const [id, m] of forgottenManifests(catalog)) if (m.state === 'deleted') unneeded.add(objectKey('runs', id));
  for (const type of ['keys', 'forgets', 'acks', 'drills', 'runs'] as const) {
    let page: string[] = [];
    for await (const file of repo.list(type, signal === undefined ? {} : { signal })) {
      const key = objectKey(type, file.name);
      if (unneeded.has(key)) continue;
      page.push(key);
      if (page.length === PAGE) {
        await consider(page);
        page = [];
      }
    }
    await consider(page);
  }
  const pages: [(after: string) => string[], (name: string) => string][] = [
    [(after) => dates.indexFilesAfter(after, PAGE), (n) => objectKey('index', n)],
    [(after) => dates.livePacksAfter(after, PAGE), (n) => objectKey('packs', n)],
  ];
  for (const [next, key] of pages) {
    for (let after = ''; ; ) {
      const names = next(after);
      if (names.length === 0) break;
      await consider(names.map(key));
      after = names.at(-1)!;
    }
  }
  await tasks.wait();

  const until = extendedUntil as Date | null;
  return {
    dryRun: opts.dryRun,
    mode: lock.mode,
    retentionDays: lock.retentionDays,
    ...report,
    extendedUntil: until === null ? null : until.toISOString(),
    nextDue: Number.isFinite(nextDue) ? new Date(nextDue).toISOString() : null,
    requests: statsDelta(before, repo.requestCounts()),
  };
}
