/**
 * Watch, part 4: the loop of `lakeguard watch`. Changes reported by the event sources
 * (watch-http.ts, watch-sqs.ts) are journaled (watch-journal.ts), batched per group
 * (watch-batcher.ts), and backed up by ordinary runs driven by their key lists
 * (BackupOptions.keys); a journaled change is forgotten, and a queue message deleted, only
 * once the run that covers it is committed. Beside the events: a full incremental run of each
 * group every `reconcile` (events are never the only truth), a seed run for a group that has
 * none, and for groups with a source without `events:` a periodic listing on the same
 * thresholds, and the policy's `drill:` schedule between runs. One run (or drill) at a time;
 * changes keep arriving (and are journaled) while one runs.
 */
import type { Catalog } from '../catalog/catalog.js';
import { InterruptedError, errorMessage } from '../errors.js';
import { continuousSettings, type ContinuousSettings } from '../policy/continuous.js';
import type { Group, Policy, S3Source } from '../policy/types.js';
import type { BackupSummary, EventSink } from './events.js';
import { Batcher, type Batch, type GroupThresholds } from './watch-batcher.js';
import type { ChangeEvent } from './watch-events.js';
import type { WatchJournal } from './watch-journal.js';

/** Time as watch sees it: tests drive both by hand. */
export interface WatchClock {
  now(): number;
  /** Resolves after `ms`, or at once when `wake` aborts. */
  sleep(ms: number, wake: AbortSignal): Promise<void>;
}

export const systemClock: WatchClock = {
  now: () => Date.now(),
  sleep: (ms, wake) =>
    new Promise<void>((resolve) => {
      if (wake.aborted) return resolve();
      // setTimeout takes at most 2^31-1 ms; a longer wait is cut, and the loop looks again.
      const timer = setTimeout(done, Math.min(Math.max(ms, 0), 2 ** 31 - 1));
      wake.addEventListener('abort', done, { once: true });
      function done(): void {
        clearTimeout(timer);
        wake.removeEventListener('abort', done);
        resolve();
      }
    }),
};

/** Why a run was started. */
export type RunReason = 'seed' | 'reconcile' | 'min_updates' | 'max_interval' | 'poll' | 'overflow';

/** One run of a group: full (keys undefined) or of the named keys. */
export type RunGroup = (group: Group, opts: { keys?: ReadonlyMap<string, Iterable<string>>; dryRun?: boolean; signal: AbortSignal }) => Promise<BackupSummary>;

export interface WatchOptions {
  policy: Policy;
  catalog: Catalog;
  groups: readonly Group[];
  journal: WatchJournal;
  runGroup: RunGroup;
  clock?: WatchClock;
  events?: EventSink;
  /** Told of every finished run (and the changes it covered). */
  onRun?: (report: { summary: BackupSummary; reason: RunReason; changes: number; startedAt: number }) => void;
  /** Told of every run that failed (it is retried). */
  onRunFailed?: (report: { group: string; reason: RunReason; error: unknown }) => void;
  /** First wait after a failed run; doubles per failure, up to the group's max_interval. */
  retryMs?: number;
  /**
   * The policy's `drill:` schedule: when a group's next drill is due (null: never), and how to
   * run one (it records and reports itself). Drills run between runs, never beside one.
   */
  drills?: { dueAt: (group: string) => number | null; run: (group: Group, signal: AbortSignal) => Promise<void> };
}

interface GroupState {
  group: Group;
  settings: ContinuousSettings;
  /** Some source has no `events:`: it is watched by listing (dry runs) every interval. */
  polled: boolean;
  reconcileAt: number | null;
  pollAt: number;
  pollWindowStart: number;
  notBefore: number;
  failures: number;
  /** After a drill that threw (nothing recorded): not before this instant again. */
  drillNotBefore: number;
}

/** An acknowledgement waiting for runs to commit (an SQS message's delete). */
interface PendingAck {
  needs: Map<string, number>;
  fire: () => void;
}

export class Watcher {
  private readonly clock: WatchClock;
  private readonly batcher: Batcher;
  private readonly states: GroupState[];
  private wake = new AbortController();
  private readonly acks: PendingAck[] = [];
  /** Per group, the newest journal position a committed run covered. */
  private readonly committedSeq = new Map<string, number>();
  private readonly startedAt: number;
  private stopped = false;

  constructor(private readonly opts: WatchOptions) {
    this.clock = opts.clock ?? systemClock;
    this.startedAt = this.clock.now();
    this.batcher = new Batcher(opts.groups.map(thresholdsOf(opts.policy)), this.startedAt);
    this.states = opts.groups.map((group) => {
      const settings = groupSettings(opts.policy, group);
      return {
        group,
        settings,
        polled: group.sources.some((s) => s.kind !== 's3' || s.events === undefined),
        reconcileAt: settings.reconcileMs === null ? null : this.startedAt + settings.reconcileMs,
        pollAt: this.startedAt + settings.intervalMs,
        pollWindowStart: this.startedAt,
        notBefore: 0,
        failures: 0,
        drillNotBefore: 0,
      };
    });
    // A journal holding more than a group's max_pending (replayed under a lower limit) overflows at once.
    for (const group of opts.journal.enforceLimit(this.maxPending)) this.warnOverflow(group);
    // Damaged lines may have held changes of any group: each group's next run lists everything.
    if (opts.journal.damaged > 0) {
      opts.journal.overflowAll(opts.groups.map((g) => g.name));
      opts.events?.({
        type: 'warning',
        message: `the watch journal ${opts.journal.path} had ${opts.journal.damaged} damaged line${opts.journal.damaged === 1 ? '' : 's'} (not JSON, or a key no S3 object can have), dropped: the changes they held are unknown, so every group's next run is a full listing`,
      });
    }
    for (const entry of opts.journal.pending()) this.batcher.add(entry);
  }

  /** The most changes of `group` held one by one (continuous.max_pending, its sources' lowest). */
  private readonly maxPending = (group: string): number => this.states.find((s) => s.group.name === group)?.settings.maxPending ?? Infinity;

  /** Changes waiting for a run, per group: those held one by one, and those an overflow's full run stands for. */
  waiting(group: string): number {
    return this.batcher.waiting(group) + (this.opts.journal.overflowOf(group)?.changes ?? 0);
  }

  /** Whether `group` overflowed (more than max_pending changes waited): its next run is a full listing. */
  overflowed(group: string): boolean {
    return this.opts.journal.overflowOf(group) !== undefined;
  }

  private warnOverflow(group: string): void {
    const max = this.maxPending(group);
    this.opts.events?.({
      type: 'warning',
      message:
        `watch: group ${group} has more than ${max} changes waiting (continuous.max_pending): they are no longer held one by one; ` +
        `its next run is a full listing of the group (reason overflow), which backs up every change`,
    });
  }

  /**
   * Journals changes reported by an event source; resolves once they are on disk (a push may
   * then be acknowledged). `onCommitted` is called once every run covering them is committed
   * (an SQS message may then be deleted). Changes of no watched source and prefix are dropped.
   */
  async ingest(changes: readonly ChangeEvent[], onCommitted?: () => void): Promise<{ accepted: number; dropped: number }> {
    const now = this.clock.now();
    const entries: { group: string; bucket: string; key: string; id: string; at: number }[] = [];
    let dropped = 0;
    for (const change of changes) {
      let matched = false;
      for (const { group } of this.states) {
        const source = bucketSources(group).find((s) => s.bucket === change.bucket && s.prefixes.some((p) => change.key.startsWith(p)));
        if (source === undefined) continue;
        matched = true;
        entries.push({ group: group.name, bucket: change.bucket, key: change.key, id: `${group.name}\0${change.id}`, at: now });
      }
      if (!matched) dropped++;
    }
    const journal = this.opts.journal;
    const groups = new Set(entries.map((e) => e.group));
    const before = new Map([...groups].map((g) => [g, journal.overflowOf(g)?.seq]));
    const write = journal.appendDurable(entries, this.maxPending);
    // A group that overflowed now: what it had waiting is its full run's (warned once per overflow).
    for (const g of groups) {
      if (journal.overflowOf(g)?.seq === before.get(g)) continue;
      this.batcher.drop(g);
      this.warnOverflow(g);
    }
    const added = await write;
    // Held still (an overflow meanwhile may have dropped it).
    for (const entry of added) if (journal.pendingEntry(entry.id) === entry) this.batcher.add(entry);
    // Every entry is in the journal now (added, or pending already under the same id, or stood
    // for by its group's overflow).
    const needs = new Map<string, number>();
    for (const e of entries) {
      const seq = journal.pendingEntry(e.id)?.seq ?? journal.overflowOf(e.group)?.seq;
      if (seq === undefined) continue; // committed in the meantime
      if (seq > (needs.get(e.group) ?? 0)) needs.set(e.group, seq);
    }
    if (onCommitted !== undefined) {
      const ack = { needs, fire: onCommitted };
      if (!this.settleAck(ack)) this.acks.push(ack);
    }
    this.wake.abort();
    return { accepted: entries.length, dropped };
  }

  /** Whether every group `ack` needs has committed far enough (fires it if so). */
  private settleAck(ack: PendingAck): boolean {
    for (const [group, seq] of ack.needs) if ((this.committedSeq.get(group) ?? 0) < seq) return false;
    ack.fire();
    return true;
  }

  /** Stops taking new runs; the loop returns after the current one (whose own signal the caller controls). */
  stop(): void {
    this.stopped = true;
    this.wake.abort();
  }

  /**
   * Runs until `stop()`. `runSignal` is handed to each run: aborting it abandons the current
   * run (recorded as interrupted; its changes stay journaled). Returns whether a run was cut short.
   */
  async run(runSignal: AbortSignal): Promise<{ interrupted: boolean }> {
    for (const s of this.states) {
      const seeded = this.opts.catalog.latestRun({ group: s.group.name, statuses: ['complete', 'partial'] }) !== undefined;
      if (!seeded && !this.stopped) {
        if ((await this.runOnce(s, 'seed', runSignal)) === 'interrupted') return { interrupted: true };
      }
    }
    while (!this.stopped) {
      const now = this.clock.now();
      const next = this.nextAction(now);
      if (next !== null) {
        if ((await this.runOnce(next.state, next.reason, runSignal)) === 'interrupted') return { interrupted: true };
        continue;
      }
      const drill = this.dueDrill(now);
      if (drill !== null) {
        if ((await this.drillOnce(drill, runSignal)) === 'interrupted') return { interrupted: true };
        continue;
      }
      this.wake = new AbortController();
      const at = this.nextWakeAt(now);
      if (this.stopped) break;
      await this.clock.sleep(at === null ? 2 ** 31 - 1 : at - now, this.wake.signal);
    }
    return { interrupted: false };
  }

  private nextAction(now: number): { state: GroupState; reason: RunReason } | null {
    for (const s of this.states) {
      if (now < s.notBefore) continue;
      if (s.reconcileAt !== null && now >= s.reconcileAt) return { state: s, reason: 'reconcile' };
      if (this.overflowed(s.group.name)) return { state: s, reason: 'overflow' };
      const reason = this.batcher.dueReason(s.group.name, now);
      if (reason !== undefined) return { state: s, reason };
      if (s.polled && now >= s.pollAt) return { state: s, reason: 'poll' };
    }
    return null;
  }

  /** When to look again: the next instant something may become due (what is due now waits out a failure). */
  private nextWakeAt(now: number): number | null {
    const times: number[] = [];
    const due = this.batcher.nextDueAt();
    if (due !== null) times.push(due);
    for (const s of this.states) {
      if (s.reconcileAt !== null) times.push(s.reconcileAt);
      if (s.polled) times.push(s.pollAt);
    }
    // A group waiting out a failure is looked at again when its wait ends.
    for (const s of this.states) if (s.notBefore > 0) times.push(s.notBefore);
    for (const s of this.states) {
      const drillAt = this.drillAt(s);
      if (drillAt !== null) times.push(drillAt);
    }
    const later = times.filter((t) => t > now);
    return later.length === 0 ? null : Math.min(...later);
  }

  private async runOnce(s: GroupState, reason: RunReason, signal: AbortSignal): Promise<'done' | 'failed' | 'interrupted'> {
    const name = s.group.name;
    if (reason === 'poll') {
      // No events for some source: a dry run counts what changed; the thresholds decide.
      const now = this.clock.now();
      s.pollAt = now + s.settings.intervalMs;
      let changes: number;
      try {
        const dry = await this.opts.runGroup(s.group, { dryRun: true, signal });
        changes = dry.counters.objectsNew + dry.counters.objectsChanged + dry.counters.objectsDeleted;
      } catch (err) {
        return this.failed(s, reason, err, signal);
      }
      const elapsed = now - s.pollWindowStart;
      const due = (changes >= s.settings.minUpdates && elapsed >= s.settings.intervalMs) || (changes > 0 && elapsed >= s.settings.maxIntervalMs);
      if (!due) return 'done';
    }
    const full = reason === 'seed' || reason === 'reconcile' || reason === 'poll' || reason === 'overflow';
    // A full run lists everything: it covers every change waiting when it starts, too (an
    // overflow's included: every change acknowledged before it starts).
    const taken: Batch = this.batcher.take(name);
    const owed = this.opts.journal.overflowOf(name)?.changes ?? 0;
    const batch: Batch = full ? { ...taken, upToSeq: Math.max(taken.upToSeq, this.opts.journal.startFull(name)), changes: taken.changes + owed } : taken;
    const startedAt = this.clock.now();
    let summary: BackupSummary;
    try {
      summary = await this.opts.runGroup(s.group, { ...(full ? {} : { keys: batch.keys }), signal });
    } catch (err) {
      if (full) this.opts.journal.endFull(name);
      return this.failed(s, reason, err, signal);
    }
    const now = this.clock.now();
    if (batch.upToSeq > 0) this.opts.journal.commit(name, batch.upToSeq);
    else if (full) this.opts.journal.endFull(name);
    this.batcher.committed(batch, now);
    this.committedSeq.set(name, Math.max(this.committedSeq.get(name) ?? 0, batch.upToSeq));
    if (full) {
      if (s.settings.reconcileMs !== null) s.reconcileAt = now + s.settings.reconcileMs;
      s.pollWindowStart = now;
    }
    s.failures = 0;
    s.notBefore = 0;
    this.opts.onRun?.({ summary, reason, changes: batch.changes, startedAt });
    for (let i = this.acks.length - 1; i >= 0; i--) if (this.settleAck(this.acks[i]!)) this.acks.splice(i, 1);
    return 'done';
  }

  /** When the group's next drill may start (null: no schedule for it). */
  private drillAt(s: GroupState): number | null {
    const due = this.opts.drills?.dueAt(s.group.name) ?? null;
    return due === null ? null : Math.max(due, s.drillNotBefore);
  }

  private dueDrill(now: number): GroupState | null {
    if (this.stopped) return null;
    return this.states.find((s) => {
      const at = this.drillAt(s);
      return at !== null && now >= at;
    }) ?? null;
  }

  private async drillOnce(s: GroupState, signal: AbortSignal): Promise<'done' | 'interrupted'> {
    try {
      // A drill that ran records itself (damage found included): its next one is due `every` later.
      await this.opts.drills!.run(s.group, signal);
      s.drillNotBefore = 0;
    } catch (err) {
      if (signal.aborted || err instanceof InterruptedError) return 'interrupted';
      // Nothing recorded (no run to drill yet, target unreachable): tried again after max_interval.
      s.drillNotBefore = this.clock.now() + s.settings.maxIntervalMs;
      this.opts.events?.({ type: 'warning', message: `watch: the scheduled drill of group ${s.group.name} failed (${errorMessage(err)}); trying again in ${Math.round(s.settings.maxIntervalMs / 60_000)} min` });
    }
    return 'done';
  }

  private failed(s: GroupState, reason: RunReason, err: unknown, signal: AbortSignal): 'failed' | 'interrupted' {
    if (signal.aborted || err instanceof InterruptedError) return 'interrupted';
    // The changes stay journaled; the group is tried again after a wait that doubles.
    s.failures++;
    const base = this.opts.retryMs ?? 30_000;
    s.notBefore = this.clock.now() + Math.min(base * 2 ** (s.failures - 1), s.settings.maxIntervalMs);
    this.opts.onRunFailed?.({ group: s.group.name, reason, error: err });
    this.opts.events?.({ type: 'warning', message: `watch: the ${reason} run of group ${s.group.name} failed (${errorMessage(err)}); its changes stay journaled, retrying` });
    return 'failed';
  }
}

/**
 * The sources a change event can name: buckets. A local directory is watched by listing only:
 * an event naming one (its name is no bucket's, but a forged or misrouted delivery can give it)
 * would make a key-driven run list a path such as `../x`, which a directory refuses, failing
 * every run of the group until a full one, and with it the group's real changes.
 */
function bucketSources(group: Group): S3Source[] {
  return group.sources.filter((s): s is S3Source => s.kind === 's3');
}

/** A group's thresholds per bucket (for the batcher: a journaled change of any other source is never batched). */
function thresholdsOf(policy: Policy): (group: Group) => GroupThresholds {
  return (group) => ({ group: group.name, sources: new Map(bucketSources(group).map((s) => [s.bucket, continuousSettings(policy, group, s)])) });
}

/**
 * The settings of a group as a whole (its reconcile and listing schedule, its max_pending): its
 * sources' tightest (the shortest interval and reconcile, the fewest min_updates and max_pending).
 */
function groupSettings(policy: Policy, group: Group): ContinuousSettings {
  const all = group.sources.map((s) => continuousSettings(policy, group, s));
  const reconciles = all.map((x) => x.reconcileMs).filter((x): x is number => x !== null);
  return {
    intervalMs: Math.min(...all.map((x) => x.intervalMs)),
    minUpdates: Math.min(...all.map((x) => x.minUpdates)),
    maxIntervalMs: Math.min(...all.map((x) => x.maxIntervalMs)),
    reconcileMs: reconciles.length === 0 ? null : Math.min(...reconciles),
    maxPending: Math.min(...all.map((x) => x.maxPending)),
  };
}
