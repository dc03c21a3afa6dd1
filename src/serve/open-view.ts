/**
 * Opening `lakeguard serve`'s view: what restore does before it reads (the repository opened and
 * the catalog synced by the command's openAll, then a shared lock so that prune cannot delete
 * packs being read), the buckets served, and the default instant.
 */
import type { Catalog } from '../catalog/catalog.js';
import { forgottenGapAt } from '../catalog/forget.js';
import { describeCut, describeTimeCut, parseAt, runOrRunSetCut } from '../catalog/instant.js';
import { ServeQueries } from '../catalog/serve-queries.js';
import type { StateCut } from '../catalog/types.js';
import { noEvents, type EventSink } from '../engine/events.js';
import { sourceName } from '../engine/sources.js';
import { UsageError } from '../errors.js';
import type { Policy } from '../policy/types.js';
import { acquireForReading, type RepositoryLock } from '../repository/locks.js';
import type { Repository } from '../repository/repository.js';
import { BlobCache, type BlobCacheOptions } from './blob-cache.js';
import { CatalogView, cutLabel } from './view.js';
import type { ServeView, ViewCut } from './view-types.js';

/** What the command opened (commands/context.ts openAll): the repository, and the catalog synced with it. */
export interface ServeSources {
  policy: Policy;
  repo: Repository;
  catalog: Catalog;
}

export interface ServeViewOptions {
  /** `--at`: an instant, a run or run-set id, a time ago (instant.ts). */
  at?: string;
  /** `--run`: a run or run-set id (unique prefix, or run number). */
  run?: string;
  /** `--group`: serve only this group's buckets. */
  group?: string;
  /** Take the shared repository lock (default true; false: read-only credentials, with a warning). */
  lock?: boolean;
  /** Warnings (a forgotten gap at the instant, --no-lock). */
  events?: EventSink;
  /** When the catalog was synced (default: now, i.e. just after openAll). */
  syncedAt?: number;
  cache?: BlobCacheOptions;
}

/** The view, and what the command needs to run it. */
export interface OpenedServeView extends ServeView {
  /** Aborts (reason: a LockedError saying why) when the shared lock is lost: the server must stop (exit 11). */
  readonly lockLost: AbortSignal | null;
  /** When the catalog was synced: later instants are refused. */
  readonly syncedAt: number;
  /** The default view in words, for the start line: `run … (#4, finished …)` or `state at …, as recorded by run …`. */
  readonly description: string;
}

/**
 * Opens the view of a synced catalog: checks --at/--run/--group (UsageError, exit 2, naming
 * what exists), takes the shared lock, and answers until close() (which releases the lock and
 * closes the catalog). On error nothing is left held, but the catalog stays open (the caller's).
 */
export async function openServeView(ctx: ServeSources, opts: ServeViewOptions = {}): Promise<OpenedServeView> {
  const events = opts.events ?? noEvents;
  const syncedAt = opts.syncedAt ?? Date.now();
  // Pinned: the runs the catalog holds now are all this server answers from (ServeQueries).
  const pinnedRun = ctx.catalog.listRuns().reduce((max, r) => Math.max(max, r.seq), 0);
  const queries = new ServeQueries(ctx.catalog, pinnedRun);
  if (opts.at !== undefined && opts.run !== undefined) throw new UsageError('give --at or --run, not both');
  // A scoped catalog (issue 20) lists every bucket too: the command refuses requests outside its
  // prefixes naming the scope, where a missing bucket would read as "nothing there".
  const buckets = bucketsServed(ctx, queries, opts.group);
  const defaultCut = pickCut(ctx.catalog, opts, syncedAt);
  if ('time' in defaultCut.cut) {
    const gap = forgottenGapAt(ctx.catalog, defaultCut.cut.time);
    if (gap !== null) {
      events({
        type: 'warning',
        qualifies: true,
        message: `${gap.forgotten} run${gap.forgotten === 1 ? ' was' : 's were'} forgotten between ${gap.before ?? 'the first run'} and ${gap.after ?? 'now'}: the state at ${defaultCut.label} is rebuilt from the kept runs around it, and versions that lived only in that gap are gone`,
      });
    }
  }
  const description = 'time' in defaultCut.cut ? describeTimeCut(ctx.catalog, defaultCut.cut.time, opts.group) : describeCut(defaultCut.cut, ctx.catalog);
  let lock: RepositoryLock | null = null;
  if (opts.lock === false) {
    events({ type: 'warning', message: '--no-lock: serve takes no repository lock; a prune running meanwhile could delete packs it reads (reads of them then fail)' });
  } else {
    // Shared, like restore: prune (exclusive) waits until serve stops.
    lock = await acquireForReading(ctx.repo, 'serve', 'serve with --no-lock');
  }
  const view = new CatalogView({
    repo: ctx.repo,
    catalog: ctx.catalog,
    queries,
    buckets,
    defaultCut,
    syncedAt,
    pinnedRun,
    cache: new BlobCache(opts.cache),
    onClose: async () => {
      await lock?.release();
    },
  });
  return Object.assign(view, { lockLost: lock?.signal ?? null, syncedAt, description });
}

/** --run, --at (refused after the sync), else the state at the sync. */
function pickCut(catalog: Catalog, opts: ServeViewOptions, syncedAt: number): ViewCut {
  let cut: StateCut;
  if (opts.run !== undefined) {
    const found = runOrRunSetCut(catalog, opts.run);
    if (found === undefined) throw new UsageError(`no run ${JSON.stringify(opts.run)} in the catalog`, { hint: 'list runs with `lakeguard runs`' });
    cut = found;
  } else if (opts.at !== undefined) {
    try {
      cut = parseAt(opts.at, catalog, syncedAt);
    } catch (err) {
      // Named as find and restore name it (commands/query-common.ts instantOption).
      if (err instanceof UsageError) throw new UsageError(`--at: ${err.message}`, err.hint === undefined ? {} : { hint: err.hint });
      throw err;
    }
    if ('time' in cut && cut.time > syncedAt) {
      throw new UsageError(`--at ${JSON.stringify(opts.at)} is in the future (${new Date(cut.time).toISOString()})`, {
        hint: 'serve answers as of the catalog synced now; give an instant up to now',
      });
    }
  } else {
    cut = { time: syncedAt };
  }
  return { cut, label: cutLabel(catalog, cut) };
}

/**
 * The buckets served: a group's sources (the policy's, else those its runs recorded), or without
 * --group every source of the policy and every bucket the catalog has recorded (a source since
 * removed from the policy is still in the backups, and often what an incident asks about).
 */
function bucketsServed(ctx: ServeSources, queries: ServeQueries, group: string | undefined): string[] {
  const policyGroups = ctx.policy.groups;
  if (group === undefined) return [...new Set([...policyGroups.flatMap((g) => g.sources.map(sourceName)), ...queries.allBuckets()])];
  const fromPolicy = policyGroups.find((g) => g.name === group);
  if (fromPolicy !== undefined) return fromPolicy.sources.map(sourceName);
  const recorded = ctx.catalog.bucketsOfGroup(group);
  if (recorded.length > 0) return recorded;
  const known = new Set([...policyGroups.map((g) => g.name), ...ctx.catalog.listRuns().map((r) => r.group)]);
  throw new UsageError(`no group named ${JSON.stringify(group)} in the policy or the catalog`, {
    hint: known.size === 0 ? 'the catalog has no runs: run `lakeguard backup` first' : `groups: ${[...known].sort().join(', ')}`,
  });
}
