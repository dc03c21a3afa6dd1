/**
 * Watch, part 3: when a group's waiting changes become a run. Per group, a window opens when
 * its last run ended (or watch started, or its oldest journaled change arrived, whichever is
 * earliest); the group is due once, for any of its sources, `interval` has passed since the
 * window opened and at least `min_updates` changes of that source wait, or `max_interval` has
 * passed and any change of it waits. Time comes from the caller (an injected clock): the rules
 * here are pure arithmetic, tested without waiting.
 */
import type { ContinuousSettings } from '../policy/continuous.js';
import type { JournalEntry } from './watch-journal.js';

/** A group's sources (catalog names) and each one's effective thresholds. */
export interface GroupThresholds {
  group: string;
  sources: ReadonlyMap<string, ContinuousSettings>;
}

/** The changes one run of a group covers. */
export interface Batch {
  group: string;
  /** Journal position of the newest change taken: the run's commit covers every change of the group up to it. */
  upToSeq: number;
  /** Catalog name of the source → keys to back up. */
  keys: Map<string, Set<string>>;
  changes: number;
}

export type DueReason = 'min_updates' | 'max_interval';

interface GroupState {
  thresholds: GroupThresholds;
  windowStart: number;
  /** Per source: changes waiting (distinct ids). */
  counts: Map<string, number>;
  entries: JournalEntry[];
}

export class Batcher {
  private readonly groups = new Map<string, GroupState>();

  constructor(groups: readonly GroupThresholds[], startedAt: number) {
    for (const thresholds of groups) this.groups.set(thresholds.group, { thresholds, windowStart: startedAt, counts: new Map(), entries: [] });
  }

  /** Adds a journaled change (new, or replayed at start: its arrival time may open the window earlier). */
  add(entry: JournalEntry): void {
    const g = this.groups.get(entry.group);
    if (g === undefined || !g.thresholds.sources.has(entry.bucket)) return;
    g.entries.push(entry);
    g.counts.set(entry.bucket, (g.counts.get(entry.bucket) ?? 0) + 1);
    if (entry.at < g.windowStart) g.windowStart = entry.at;
  }

  /** Forgets what `group` has waiting (it overflowed: a full run covers every change of it). */
  drop(group: string): void {
    const g = this.groups.get(group);
    if (g === undefined) return;
    g.entries = [];
    g.counts.clear();
  }

  waiting(group: string): number {
    return this.groups.get(group)?.entries.length ?? 0;
  }

  /** Why `group` is due at `now`, or undefined when it is not. */
  dueReason(group: string, now: number): DueReason | undefined {
    const g = this.groups.get(group);
    if (g === undefined) return undefined;
    const elapsed = now - g.windowStart;
    let reason: DueReason | undefined;
    for (const [bucket, count] of g.counts) {
      const t = g.thresholds.sources.get(bucket)!;
      if (count >= t.minUpdates && elapsed >= t.intervalMs) return 'min_updates';
      if (count > 0 && elapsed >= t.maxIntervalMs) reason = 'max_interval';
    }
    return reason;
  }

  /** Groups due at `now`, in policy order. */
  due(now: number): { group: string; reason: DueReason }[] {
    const out: { group: string; reason: DueReason }[] = [];
    for (const group of this.groups.keys()) {
      const reason = this.dueReason(group, now);
      if (reason !== undefined) out.push({ group, reason });
    }
    return out;
  }

  /**
   * The earliest instant at which a group becomes due without another change arriving (null:
   * none can). A new change may make one due sooner: the caller checks again on each arrival.
   */
  nextDueAt(): number | null {
    let next: number | null = null;
    for (const g of this.groups.values()) {
      for (const [bucket, count] of g.counts) {
        const t = g.thresholds.sources.get(bucket)!;
        const at = g.windowStart + (count >= t.minUpdates ? t.intervalMs : t.maxIntervalMs);
        if (count > 0 && (next === null || at < next)) next = at;
      }
    }
    return next;
  }

  /** Everything `group` has waiting, for one run (the entries stay until `committed`). */
  take(group: string): Batch {
    const g = this.groups.get(group);
    const keys = new Map<string, Set<string>>();
    let upToSeq = 0;
    for (const e of g?.entries ?? []) {
      let set = keys.get(e.bucket);
      if (set === undefined) keys.set(e.bucket, (set = new Set()));
      set.add(e.key);
      if (e.seq > upToSeq) upToSeq = e.seq;
    }
    return { group, upToSeq, keys, changes: g?.entries.length ?? 0 };
  }

  /** The run of `batch` is committed at `now`: its changes are done, and the group's next window opens. */
  committed(batch: Batch, now: number): void {
    const g = this.groups.get(batch.group);
    if (g === undefined) return;
    g.entries = g.entries.filter((e) => e.seq > batch.upToSeq);
    g.counts.clear();
    for (const e of g.entries) g.counts.set(e.bucket, (g.counts.get(e.bucket) ?? 0) + 1);
    g.windowStart = now;
  }
}
