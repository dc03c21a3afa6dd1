/**
 * A shard's catalog (docs/scale-out.md "A shard on a fresh host syncs only its key range"): on a host whose
 * catalog holds nothing yet, a shard of a run set syncs only the keys its range covers (each
 * group's policy prefixes, narrowed to the shard's range), and plans a new run set from the run
 * manifests' record ranges rather than from a whole catalog.
 */
import type { Catalog } from '../catalog/catalog.js';
import { catalogScope, isRangeScope, normalizeScope, requireWholeCatalog, scopeCoversPart, scopeIsOnDemand, type CatalogPrefix } from '../catalog/scope.js';
import { catalogIsFresh } from '../catalog/sync.js';
import type { Group } from '../policy/types.js';
import type { Repository } from '../repository/repository.js';
import { InterruptedError } from '../errors.js';
import type { RunManifest } from './finalize.js';
import { readManifests } from './rebuild-manifests.js';
import { ESTIMATED_RECORD_LINE_BYTES, type RecordedRange } from './shard-bounds.js';
import { planRunSet, type PlannedRunSet, type PlanRunSetOptions, type RecordedRuns } from './shard-plan.js';
import { keyRangeWithin, type RunShard } from './shards.js';
import { outermostPrefixes, sourceName } from './sources.js';

/** What a shard's backup reads of the catalog: each group's prefixes, narrowed to the group's shard range (sorted, normalized). */
export function shardScope(groups: readonly Group[], shards: ReadonlyMap<string, RunShard>): CatalogPrefix[] {
  const parts: CatalogPrefix[] = [];
  for (const group of groups) {
    const shard = shards.get(group.name);
    if (shard === undefined) continue;
    for (const source of group.sources) {
      const bucket = sourceName(source);
      for (const prefix of outermostPrefixes(source.prefixes)) {
        const range = keyRangeWithin(shard.range, bucket, prefix);
        if (range !== null) parts.push({ bucket, prefix, ...range });
      }
    }
  }
  return normalizeScope(parts);
}

/**
 * Refuses a backup on a scoped catalog unless it is a shard's and the scope holds every key the
 * shard backs up of `group` (its merge-join then sees every catalogued version of its range).
 */
export function requireBackupScope(catalog: Catalog, group: Group, shard: RunShard | undefined): void {
  const scope = catalogScope(catalog);
  if (scope === null) return;
  if (shard !== undefined && shardScope([group], new Map([[group.name, shard]])).every((p) => scopeCoversPart(scope, p))) return;
  requireWholeCatalog(catalog, 'backup', shard === undefined ? undefined : 'every version of its shard range');
}

/** Every run manifest's record blobs and shard attempt: planning without a catalog. */
export async function readRecordedRuns(repo: Repository, concurrency: number, signal?: AbortSignal): Promise<RecordedRuns> {
  const names = await repo.listNames('runs');
  const checkSignal = (): void => {
    if (signal?.aborted) throw new InterruptedError('planning interrupted');
  };
  // A damaged manifest only makes the estimate rougher; the sync that follows reports it.
  const manifests = await readManifests(repo, names, concurrency, { skipDamaged: true, skipMissing: true }, () => {}, checkSignal);
  const byGroup = new Map<string, RecordedRange[]>();
  const attempts: RecordedRuns['attempts'][number][] = [];
  for (const m of manifests) {
    const ranges = recordedRangesOf(m);
    if (ranges.length > 0) byGroup.set(m.group, [...(byGroup.get(m.group) ?? []), ...ranges]);
    if (m.shard !== undefined) attempts.push(m.shard);
  }
  return { ranges: byGroup, attempts };
}

/** A manifest's record blobs as planning sees them (none without `recordRanges`). */
export function recordedRangesOf(m: RunManifest): RecordedRange[] {
  if (m.recordRanges === undefined) return [];
  return m.recordRanges.map((r, i) => {
    const raw = m.recordLocations?.[i]?.[4] ?? FULL_RECORD_BLOB;
    return { first: r.first, last: r.last, weight: Math.max(1, Math.round(raw / ESTIMATED_RECORD_LINE_BYTES)) };
  });
}

/** A record blob's raw length target (finalize.ts): what a blob of an older manifest is taken for. */
const FULL_RECORD_BLOB = 4 * 1024 * 1024;

/**
 * Before the sync of a shard's backup: the scope its catalog needs, and the run set's plan when
 * it had to be known for that. A catalog that holds nothing yet (a fresh host), or one scoped to
 * a shard range already, is scoped to this shard's range (`scopeTo`; the plan is read, or made
 * from the run manifests and written). A whole catalog is left alone (planned after its sync, as
 * always), and so is one scoped on demand (the backup's sync makes it whole); a catalog scoped
 * to prefixes is refused, as for every backup.
 */
export async function shardCatalogScope(opts: Omit<PlanRunSetOptions, 'recorded'> & { concurrency: number }): Promise<{ scopeTo?: CatalogPrefix[]; planned?: PlannedRunSet }> {
  const { catalog, concurrency, ...plan } = opts;
  const scope = catalogScope(catalog);
  if (opts.shard.of === 1 || (scope === null && !catalogIsFresh(catalog))) return {};
  // A named catalog a command scoped on demand (an `ls` on this host): the backup's sync makes it
  // whole (its demand is 'all', see commands/backup.ts), and the run is planned after it, as on a whole catalog.
  if (scope !== null && scopeIsOnDemand(catalog)) return {};
  // A catalog scoped to prefixes (a laptop's) never backs up: refused before anything is written.
  if (scope !== null && !isRangeScope(scope)) requireWholeCatalog(catalog, 'backup');
  const planned = await planRunSet({ ...plan, catalog, recorded: () => readRecordedRuns(opts.repo, concurrency, opts.signal) });
  return { scopeTo: shardScope(opts.groups, planned.shards), planned };
}
