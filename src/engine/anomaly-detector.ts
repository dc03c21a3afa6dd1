/**
 * Anomaly detection of one backup run (docs/anomalies.md): watches every listed change and every
 * object read, counts them per partition (a policy prefix and its first level below, see
 * src/catalog/anomaly-types.ts), gives each version record its signals, and at the end judges
 * every partition against its settings and history (anomaly-rules.ts).
 *
 * Memory is bounded by the number of partitions, not of objects: a partition holds counters,
 * and the keys deleted in it this run (for extension swaps) only up to MAX_DELETED_KEYS.
 * Catalog queries: at most one per changed object (anomaly-lookups.ts), none per unchanged one.
 */
import { bucketHasBaseline, versionBeforeRun, versionByRow, type PreviousVersion } from '../catalog/anomaly-lookups.js';
import type { AnomalyHistory, ObjectSignal, PartitionFinding, PartitionStats, RunAnomalies } from '../catalog/anomaly-types.js';
import type { Catalog } from '../catalog/catalog.js';
import { liveKeyCount } from '../catalog/backup-lookups.js';
import type { LatestVersion } from '../catalog/types.js';
import { anomalyScopeOf, type AnomalySettings } from '../policy/anomaly.js';
import type { Group, Policy } from '../policy/types.js';
import type { ObjectEntry } from '../storage/types.js';
import { hasRansomwareExtension, isExtensionSwap, ransomNoteMatcher } from './anomaly-names.js';
import { judgePartition } from './anomaly-rules.js';
import { ContentSniffer, formatOf, isIncompressible, needsPreviousRatio, type ContentSample } from './anomaly-sniff.js';
import type { Change } from './scan.js';
import { keyRangeWithin, type RunShard } from './shards.js';

/** Deleted keys remembered per partition for extension swaps; a swap of a key deleted past this many goes unseen. */
export const MAX_DELETED_KEYS = 10_000;

/** The sources a run reads, as the detector needs them. */
export interface WatchedSource {
  /** Catalog name. */
  bucket: string;
  prefixes: readonly string[];
}

/** One policy prefix of a source with its effective settings. */
interface Scope {
  prefix: string;
  settings: AnomalySettings;
  isRansomNote: (key: string) => boolean;
}

/** What the run did to one partition so far. */
interface PartitionState {
  stats: PartitionStats & { changedVerified: number };
  scope: Scope;
  validBytesAdded: number;
  deletedKeys: Set<string>;
  /** Key-driven runs: the partition's live keys in the catalog before the run (replaces the listing's count). */
  liveBefore?: number;
}

/**
 * The partition of `key` under policy prefix `prefix`: the prefix plus the key's first level
 * below it (`events/` + `date=1/x` → `events/date=1/`), or the prefix itself for keys directly
 * under it.
 */
export function partitionOf(prefix: string, key: string): string {
  const slash = key.indexOf('/', prefix.length);
  return slash === -1 ? prefix : key.slice(0, slash + 1);
}

export class AnomalyDetector {
  /** Bucket → its enabled scopes, longest prefix first. */
  private readonly scopes = new Map<string, Scope[]>();
  /** Buckets the catalog knew before the run: only their keys can have an earlier version to look up. */
  private readonly catalogued = new Set<string>();
  /** Buckets with a baseline (bucketHasBaseline, in the shard's range): only their partitions are judged. */
  private readonly baselined = new Set<string>();
  /** Bucket → partition → its state. */
  private readonly partitions = new Map<string, Map<string, PartitionState>>();
  private flaggedObjects = 0;

  /**
   * A detector for a run of `group` over `sources`, or null when detection is off for every
   * prefix (`enabled: false`): then the run reads nothing extra.
   */
  static create(catalog: Catalog, policy: Policy, group: Group, sources: readonly WatchedSource[], runSeq: number, keyDriven = false, shard?: RunShard): AnomalyDetector | null {
    const detector = new AnomalyDetector(catalog, runSeq, keyDriven, shard);
    for (const source of sources) {
      const scopes: Scope[] = [];
      for (const prefix of source.prefixes) {
        const { settings } = anomalyScopeOf(policy, group, source.bucket, prefix);
        if (settings.enabled) scopes.push({ prefix, settings, isRansomNote: ransomNoteMatcher(settings.ransomNotePatterns) });
      }
      scopes.sort((a, b) => b.prefix.length - a.prefix.length);
      if (scopes.length > 0) detector.scopes.set(source.bucket, scopes);
      if (catalog.findBucketId(source.bucket) !== undefined) {
        detector.catalogued.add(source.bucket);
        const range = keyRangeWithin(shard?.range, source.bucket, '');
        if (range !== null && bucketHasBaseline(catalog, source.bucket, range)) detector.baselined.add(source.bucket);
      }
    }
    return detector.scopes.size === 0 ? null : detector;
  }

  private constructor(
    private readonly catalog: Catalog,
    /** The run's catalog sequence: its own records are not "the version before". */
    private readonly runSeq: number,
    /**
     * The run reads only a list of keys (watch): a partition's keys before the run are the
     * catalog's live keys in it, counted when the run first touches it (before any of its own
     * records there), not the keys the run happened to see.
     */
    private readonly keyDriven: boolean,
    /** A shard's run: it sees only the part of a partition its key range holds. */
    private readonly shard?: RunShard,
  ) {}

  /**
   * A new sniffer for each read of this key's content, or undefined when its prefix has
   * detection off (a factory: a retried read starts afresh).
   */
  snifferFor(bucket: string, key: string): (() => ContentSniffer) | undefined {
    if (this.scopeOf(bucket, key) === undefined) return undefined;
    const format = formatOf(key);
    return () => new ContentSniffer(format);
  }

  private scopeOf(bucket: string, key: string): Scope | undefined {
    const scopes = this.scopes.get(bucket);
    if (scopes === undefined) return undefined;
    for (const scope of scopes) if (key.startsWith(scope.prefix)) return scope;
    return undefined;
  }

  private partition(bucket: string, key: string): PartitionState | undefined {
    const scope = this.scopeOf(bucket, key);
    if (scope === undefined) return undefined;
    const partition = partitionOf(scope.prefix, key);
    let ofBucket = this.partitions.get(bucket);
    if (ofBucket === undefined) this.partitions.set(bucket, (ofBucket = new Map()));
    let state = ofBucket.get(partition);
    if (state === undefined) {
      const stats = { bucket, partition, before: 0, added: 0, changed: 0, deleted: 0, bytesAdded: 0, bytesChanged: 0, bytesDeleted: 0, changedVerified: 0, signals: {} };
      state = { stats, scope, validBytesAdded: 0, deletedKeys: new Set() };
      if (this.keyDriven) state.liveBefore = liveKeyCount(this.catalog, bucket, partition);
      ofBucket.set(partition, state);
    }
    return state;
  }

  /**
   * Counts one listed change (Archiver.handle). Unversioned buckets: what the listing says is
   * final. Versioned buckets list every version as `new`: an object version is counted once read
   * (versionRead asks what the key was before), a delete marker here.
   */
  observe(bucket: string, versioned: boolean, change: Change): void {
    if (change.kind === 'excluded' || change.kind === 'skipped') return;
    if (change.kind === 'kept') {
      // The catalog's state stands (newer than the inventory report): a live key was there before the run.
      const p = change.previous.deleteMarker ? undefined : this.partition(bucket, change.previous.key);
      if (p !== undefined) p.stats.before++;
      return;
    }
    const key = change.kind === 'deleted' ? change.previous.key : change.entry.key;
    const p = this.partition(bucket, key);
    if (p === undefined) return;
    const s = p.stats;
    switch (change.kind) {
      case 'unchanged':
        // A versioned listing also shows old versions and delete markers: only a live key counts.
        if (!versioned || (change.entry.isLatest && !change.entry.isDeleteMarker)) s.before++;
        return;
      case 'deleted':
        this.countDeleted(p, key, change.previous.size);
        return;
      case 'changed':
        s.before++;
        s.changed++;
        s.bytesChanged += change.entry.size;
        return;
      case 'reinstated':
        // A version the repository already holds is the key's state again (an undelete, a
        // rollback's removed delete markers, a newer version permanently deleted): no new data,
        // so never "added" or "changed". A key that was live counts in `before`; one whose
        // current version is a delete marker again was deleted.
        if (change.previous === null || change.previous.deleteMarker) return;
        if (change.entry.isDeleteMarker) this.countDeleted(p, key, change.previous.size);
        else s.before++;
        return;
      case 'new':
        if (versioned) {
          if (change.entry.isDeleteMarker && change.entry.isLatest) {
            const previous = this.versionBeforeRun(bucket, key);
            if (previous !== undefined && !previous.deleteMarker) this.countDeleted(p, key, previous.size);
          }
        } else if (!change.entry.isDeleteMarker) {
          s.added++;
          s.bytesAdded += change.entry.size;
        }
        return;
    }
  }

  /** The key as it was before the run; no query for a bucket the catalog did not know (a seed). */
  private versionBeforeRun(bucket: string, key: string): PreviousVersion | undefined {
    return this.catalogued.has(bucket) ? versionBeforeRun(this.catalog, bucket, key, this.runSeq) : undefined;
  }

  private countDeleted(p: PartitionState, key: string, size: number): void {
    p.stats.before++;
    p.stats.deleted++;
    p.stats.bytesDeleted += size;
    if (p.deletedKeys.size < MAX_DELETED_KEYS) p.deletedKeys.add(key);
  }

  /**
   * Judges one version as read (the record's `signals`, undefined when none) and counts it in
   * its partition. `previous`: the catalogued version the listing compared it with (unversioned
   * buckets; null for a new key).
   */
  versionRead(bucket: string, versioned: boolean, entry: ObjectEntry, previous: LatestVersion | null, sample: ContentSample): ObjectSignal[] | undefined {
    const p = this.partition(bucket, entry.key);
    if (p === undefined) return undefined;
    const s = p.stats;
    let before: PreviousVersion | undefined;
    let isNewKey: boolean;
    let isChange: boolean;
    if (versioned) {
      // Only the newest version decides what happened to the key; older new ones were passing states.
      if (entry.isLatest) before = this.versionBeforeRun(bucket, entry.key);
      const wasLive = before !== undefined && !before.deleteMarker;
      isNewKey = entry.isLatest && !wasLive;
      isChange = entry.isLatest && wasLive;
      if (isChange) {
        s.before++;
        s.changed++;
        s.bytesChanged += sample.size;
      } else if (isNewKey) {
        s.added++;
        s.bytesAdded += sample.size;
      }
    } else {
      isNewKey = previous === null;
      isChange = previous !== null;
      if (previous !== null) {
        before = { deleteMarker: false, etag: previous.etag, size: previous.size, storedRatio: undefined };
        // The earlier version's compression costs a query: only asked when the new data did not compress.
        if (needsPreviousRatio(sample)) before.storedRatio = versionByRow(this.catalog, previous.versionRow)?.storedRatio;
      }
    }

    const signals: ObjectSignal[] = [];
    if (sample.formatOk === false) signals.push('format');
    const incompressible = isIncompressible(entry.key, sample, isChange ? before?.storedRatio : undefined);
    if (incompressible) signals.push('incompressible');
    if (isNewKey && p.scope.isRansomNote(entry.key)) signals.push('ransom-note');
    if (isNewKey && (hasRansomwareExtension(entry.key) || isExtensionSwap(entry.key, (k) => p.deletedKeys.has(k)))) signals.push('extension-swap');
    if (isChange && before !== undefined && before.etag === entry.etag && before.size === sample.size) signals.push('identical');

    if (isChange && sample.formatOk === true && !incompressible) s.changedVerified++;
    if (isNewKey && signals.length === 0) p.validBytesAdded += sample.size;
    for (const signal of signals) s.signals[signal] = (s.signals[signal] ?? 0) + 1;
    if (signals.length === 0) return undefined;
    this.flaggedObjects++;
    return signals;
  }

  /**
   * Counts a version carried from a killed attempt's checkpoint (resume.ts) as versionRead counts
   * one read, with the signals that attempt judged when it read the content (nothing is read
   * again). A carried change is never counted as verified (its format was not checked here).
   */
  versionCarried(bucket: string, versioned: boolean, entry: ObjectEntry, previous: LatestVersion | null, signals: readonly ObjectSignal[] | undefined): void {
    const p = this.partition(bucket, entry.key);
    if (p === undefined) return;
    const s = p.stats;
    let isNewKey: boolean;
    if (versioned) {
      const before = entry.isLatest ? this.versionBeforeRun(bucket, entry.key) : undefined;
      const wasLive = before !== undefined && !before.deleteMarker;
      isNewKey = entry.isLatest && !wasLive;
      if (entry.isLatest && wasLive) {
        s.before++;
        s.changed++;
        s.bytesChanged += entry.size;
      } else if (isNewKey) {
        s.added++;
        s.bytesAdded += entry.size;
      }
    } else {
      isNewKey = previous === null;
    }
    const judged = signals ?? [];
    if (isNewKey && judged.length === 0) p.validBytesAdded += entry.size;
    for (const signal of judged) s.signals[signal] = (s.signals[signal] ?? 0) + 1;
    if (judged.length > 0) this.flaggedObjects++;
  }

  /** The run's verdict: every partition it changed judged against its settings and history. */
  finish(history: AnomalyHistory): RunAnomalies {
    const partitions: PartitionStats[] = [];
    const findings: PartitionFinding[] = [];
    const states = [...this.partitions.values()].flatMap((m) => [...m.values()]).sort((a, b) => compare(a.stats.bucket, b.stats.bucket) || compare(a.stats.partition, b.stats.partition));
    for (const { stats, scope, validBytesAdded, liveBefore } of states) {
      if (liveBefore !== undefined) stats.before = liveBefore;
      const changedAny = stats.added + stats.changed + stats.deleted > 0 || Object.keys(stats.signals).length > 0;
      if (!changedAny) continue;
      partitions.push({ ...stats, signals: { ...stats.signals } });
      const { settings } = scope;
      // A bucket's first run (no run that finished its listing recorded a key of it: a seed, or
      // the run that completes a first backup stopped half-way) is its baseline: there is no
      // earlier state to compare with, and a lake that already holds odd files would otherwise
      // make every new user's first backup exit 4. Its signals and statistics are still recorded.
      if (!this.baselined.has(stats.bucket)) continue;
      const past = settings.historyRuns === 0 ? [] : history.partitionHistory(stats.bucket, stats.partition, settings.historyRuns).slice(0, settings.historyRuns);
      // A partition the shard's range cuts: its part is judged as the whole partition would be (min_partition_objects).
      const partitionObjects = this.cuts(stats.bucket, stats.partition) ? history.partitionObjects?.(stats.bucket, stats.partition, settings.historyRuns, this.shard!.set) : undefined;
      const finding = judgePartition({ stats, settings, validBytesAdded, ...(partitionObjects === undefined ? {} : { partitionObjects }) }, past);
      if (finding !== undefined) findings.push(finding);
    }
    return { suspect: findings.length > 0, findings, partitions, flaggedObjects: this.flaggedObjects };
  }

  /** Whether the run's shard range holds only some keys of `partition` (a bound falls inside it). */
  private cuts(bucket: string, partition: string): boolean {
    if (this.shard === undefined) return false;
    const within = keyRangeWithin(this.shard.range, bucket, partition);
    return within !== null && (within.after !== undefined || within.upTo !== undefined);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
