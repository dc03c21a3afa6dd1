/**
 * Watch, part 2: the journal of pending changes. An append-only file of JSON lines next to
 * the catalog (`<catalog>.watch-journal`): a pushed event is acknowledged only once its line is
 * on disk (fsync), and forgotten only once the run that covers it is committed, so a crash or
 * a restart loses no change. Lines:
 *   {"s":7,"g":"lake","b":"raw","k":"a/b.parquet","i":"<id>","t":1765000000000}   a change
 *   {"done":7,"g":"lake"}                  every change of group lake up to line 7 is backed up
 *   {"over":9,"g":"lake"}                  group lake overflowed (more than max_pending changes
 *                                          waited): every change of it up to a full run is that run's
 * A file and not a catalog table: the catalog is rebuilt from the repository at will (it is a
 * cache), and its writes belong to runs under the repository lock; the journal is this host's
 * own queue, written many times a second by the listener while a run holds the catalog.
 */
import { closeSync, existsSync, fchmodSync, fstatSync, fsyncSync, openSync, readFileSync, renameSync, ftruncateSync, writeSync } from 'node:fs';
import { possibleKey } from './watch-events.js';

export interface JournalEntry {
  /** Position in the journal; a group's `done` mark covers every entry of it up to here. */
  seq: number;
  group: string;
  bucket: string;
  key: string;
  /** The change's identity (watch-events.ts): the same change delivered again is dropped. */
  id: string;
  /** When it arrived (ms since epoch, the watcher's clock). */
  at: number;
}

interface EntryLine {
  s: number;
  g: string;
  b: string;
  k: string;
  i: string;
  t: number;
}
interface DoneLine {
  done: number;
  g: string;
}
/**
 * A group overflowed at this position: its changes are no longer held one by one. Every change
 * of it journaled before (and every change acknowledged after, until a full run starts) is
 * covered by the next full run of the group, whose commit (a `done` at or past it) clears it.
 */
interface OverflowLine {
  over: number;
  g: string;
}

/** A group's owed full run: the position of its overflow, and how many changes it stands for. */
export interface Overflow {
  seq: number;
  /** Changes it covers that are held nowhere (dropped at the overflow, or absorbed since); after a restart, those in the file only. */
  changes: number;
}

/**
 * A new journal is the owner's alone, as the catalog beside it is (catalog.ts): it holds, in
 * plaintext, the bucket and key of every change waiting for its run.
 */
const NEW_FILE_MODE = 0o600;

/** Rewrite the file (pending lines only) when this many lines are committed history. */
const COMPACT_AFTER_LINES = 10_000;

export class WatchJournal {
  private fd: number;
  private nextSeq = 1;
  /** Pending entries in journal order, by id. */
  private readonly pendingById = new Map<string, JournalEntry>();
  /** Pending entries per group. */
  private readonly counts = new Map<string, number>();
  /** Groups that overflowed and whose full run is not committed yet. */
  private readonly overflows = new Map<string, Overflow>();
  /**
   * Groups whose full run is in progress, with the overflow position it covers (0: none): changes
   * arriving meanwhile may come after its listing, so they are held one by one again.
   */
  private readonly fullRuns = new Map<string, number>();
  private committedLines = 0;
  /** Lines waiting for the next group write (appendDurable), and their waiters. */
  private queued: string[] = [];
  private waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private flushScheduled = false;

  private constructor(
    readonly path: string,
    private readonly fsync: boolean,
  ) {
    this.fd = -1;
  }

  /**
   * Opens (or creates) the journal and replays it: what it holds that no `done` line covers is
   * pending. A torn last line (the process died while writing it) was never acknowledged: it is
   * cut off before anything is appended.
   */
  static open(path: string, opts: { fsync?: boolean } = {}): WatchJournal {
    const journal = new WatchJournal(path, opts.fsync ?? true);
    journal.replay();
    return journal;
  }

  private replay(): void {
    const text = existsSync(this.path) ? readFileSync(this.path, 'utf8') : '';
    const entries: JournalEntry[] = [];
    const done = new Map<string, number>();
    const overs = new Map<string, number>();
    let good = 0;
    // The part after the last newline is a torn line (or nothing): it was never acknowledged.
    const lines = text.split('\n').slice(0, -1);
    for (const line of lines) {
      let parsed: EntryLine | DoneLine | OverflowLine;
      try {
        parsed = JSON.parse(line) as EntryLine | DoneLine | OverflowLine;
      } catch {
        // A whole line that does not parse was damaged after it was written (a torn write is
        // only ever the last, cut below): the lines after it still count. What it held is
        // unknown, which the watcher answers with a full run of every group (`damaged`).
        this.damaged++;
        continue;
      }
      good += Buffer.byteLength(line) + 1;
      if ('done' in parsed) done.set(parsed.g, Math.max(done.get(parsed.g) ?? 0, parsed.done));
      else if ('over' in parsed) {
        overs.set(parsed.g, Math.max(overs.get(parsed.g) ?? 0, parsed.over));
        this.nextSeq = Math.max(this.nextSeq, parsed.over + 1);
      } else if (typeof parsed.k !== 'string' || !possibleKey(parsed.k)) {
        // A key no S3 object can have (journaled by an earlier lakeguard) would fail its group's every run.
        this.damaged++;
      } else entries.push({ seq: parsed.s, group: parsed.g, bucket: parsed.b, key: parsed.k, id: parsed.i, at: parsed.t });
    }
    for (const [group, seq] of overs) if (seq > (done.get(group) ?? 0)) this.overflows.set(group, { seq, changes: 0 });
    for (const e of entries) {
      this.nextSeq = Math.max(this.nextSeq, e.seq + 1);
      const overflow = this.overflows.get(e.group);
      if (e.seq <= (done.get(e.group) ?? 0)) this.committedLines++;
      else if (overflow !== undefined && e.seq < overflow.seq) {
        // Covered by the overflow's full run: not held again.
        this.committedLines++;
        overflow.changes++;
      } else if (!this.pendingById.has(e.id)) this.hold(e);
    }
    this.fd = openSync(this.path, existsSync(this.path) ? 'r+' : 'w+', NEW_FILE_MODE);
    if (this.damaged > 0) {
      // Rewritten from what was read: the damaged lines go (their loss is answered by full runs).
      this.compact();
      return;
    }
    // Cut a torn tail, then append from the end.
    ftruncateSync(this.fd, good);
    if (this.fsync) fsyncSync(this.fd);
    this.appendAt = good;
  }

  /** Whole lines of the journal that did not parse when it was opened (they were dropped). */
  damaged = 0;

  /**
   * Every group's next run is a full listing (an overflow of each), durable before it returns:
   * what the journal lost (damaged lines) is then caught by those runs.
   */
  overflowAll(groups: readonly string[]): void {
    for (const group of groups) this.overflow(group, 0);
    if (groups.length > 0) this.flush();
  }

  private appendAt = 0;

  private hold(e: JournalEntry): void {
    this.pendingById.set(e.id, e);
    this.counts.set(e.group, (this.counts.get(e.group) ?? 0) + 1);
  }

  /** Forgets the held entries of `group` (an overflow's full run covers them); returns how many. */
  private dropGroup(group: string): number {
    let n = 0;
    for (const [id, e] of this.pendingById) {
      if (e.group !== group) continue;
      this.pendingById.delete(id);
      n++;
    }
    this.counts.delete(group);
    this.committedLines += n;
    return n;
  }

  /** Marks `group` overflowed at a new position (the line is queued); its held entries are dropped. */
  private overflow(group: string, absorbed: number): void {
    const seq = this.nextSeq++;
    const dropped = this.dropGroup(group);
    this.overflows.set(group, { seq, changes: dropped + absorbed });
    this.queued.push(JSON.stringify({ over: seq, g: group } satisfies OverflowLine));
  }

  /** Whether a change of `group` is covered by its owed full run rather than held (no such run has started since). */
  private absorbs(group: string): Overflow | undefined {
    const overflow = this.overflows.get(group);
    return overflow !== undefined && this.fullRuns.get(group) !== overflow.seq ? overflow : undefined;
  }

  /** The group's owed full run (it overflowed), if any. */
  overflowOf(group: string): Overflow | undefined {
    return this.overflows.get(group);
  }

  /** Changes of `group` held one by one. */
  held(group: string): number {
    return this.counts.get(group) ?? 0;
  }

  /**
   * A full run of `group` starts: it covers the group's overflow (every change acknowledged
   * before now), and changes arriving from now on are held one by one again (the listing may
   * have passed them). Returns the position its commit must cover (0: no overflow).
   */
  startFull(group: string): number {
    const seq = this.overflows.get(group)?.seq ?? 0;
    this.fullRuns.set(group, seq);
    return seq;
  }

  /** The full run of `group` failed or was abandoned: an overflow it covered absorbs changes again. */
  endFull(group: string): void {
    this.fullRuns.delete(group);
  }

  /**
   * Groups holding more than `maxPending` changes (a journal replayed under a lower limit, or
   * written by an earlier lakeguard) overflow now; durable before it returns. Returns them.
   */
  enforceLimit(maxPending: (group: string) => number): string[] {
    const over = [...this.counts].filter(([group, n]) => n > maxPending(group)).map(([group]) => group);
    for (const group of over) this.overflow(group, 0);
    if (over.length > 0) this.flush();
    return over;
  }

  /** Pending entries, oldest first. */
  pending(): JournalEntry[] {
    return [...this.pendingById.values()];
  }

  /** The pending entry with this id (a change delivered again maps to it). */
  pendingEntry(id: string): JournalEntry | undefined {
    return this.pendingById.get(id);
  }

  /**
   * Records changes; resolves once they are on disk. Writes arriving together are joined into
   * one write and one fsync (a push endpoint receives one request per change). Changes already
   * pending are not written again.
   */
  appendDurable(changes: Omit<JournalEntry, 'seq'>[], maxPending?: (group: string) => number): Promise<JournalEntry[]> {
    const added: JournalEntry[] = [];
    for (const c of changes) {
      if (this.pendingById.has(c.id)) continue;
      const owed = this.absorbs(c.group);
      if (owed !== undefined) {
        // The group's owed full run covers it: nothing more to hold (its mark is on disk, or queued with these).
        owed.changes++;
        continue;
      }
      if (maxPending !== undefined && this.held(c.group) >= maxPending(c.group)) {
        this.overflow(c.group, 1);
        continue;
      }
      const entry = { ...c, seq: this.nextSeq++ };
      this.hold(entry);
      added.push(entry);
      const line: EntryLine = { s: entry.seq, g: entry.group, b: entry.bucket, k: entry.key, i: entry.id, t: entry.at };
      this.queued.push(JSON.stringify(line));
    }
    if (added.length === 0 && this.queued.length === 0) return Promise.resolve(added);
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    }).then(() => added);
  }

  private flush(): void {
    this.flushScheduled = false;
    const lines = this.queued;
    const waiters = this.waiters;
    this.queued = [];
    this.waiters = [];
    try {
      this.write(lines);
      for (const w of waiters) w.resolve();
    } catch (err) {
      for (const w of waiters) w.reject(err);
    }
  }

  private write(lines: string[]): void {
    if (lines.length === 0) return;
    const data = Buffer.from(lines.join('\n') + '\n');
    let written = 0;
    while (written < data.length) written += writeSync(this.fd, data, written, data.length - written, this.appendAt + written);
    this.appendAt += data.length;
    if (this.fsync) fsyncSync(this.fd);
  }

  /**
   * Marks every pending entry of `group` up to `upToSeq` as backed up (the run that covered
   * them is committed), and its overflow if a full run covered it. Durable before it returns.
   */
  commit(group: string, upToSeq: number): void {
    let removed = 0;
    for (const [id, e] of this.pendingById) {
      if (e.group === group && e.seq <= upToSeq) {
        this.pendingById.delete(id);
        removed++;
      }
    }
    if (removed > 0) this.counts.set(group, this.held(group) - removed);
    if (this.held(group) === 0) this.counts.delete(group);
    if ((this.overflows.get(group)?.seq ?? Infinity) <= upToSeq) this.overflows.delete(group);
    this.fullRuns.delete(group);
    this.committedLines += removed;
    if (this.pendingById.size === 0 && this.overflows.size === 0 && this.queued.length === 0) {
      // Nothing left: an empty file says the same as the whole history.
      ftruncateSync(this.fd, 0);
      if (this.fsync) fsyncSync(this.fd);
      this.appendAt = 0;
      this.committedLines = 0;
      return;
    }
    this.write([JSON.stringify({ done: upToSeq, g: group } satisfies DoneLine)]);
    if (this.committedLines >= COMPACT_AFTER_LINES) this.compact();
  }

  /** Rewrites the file with the pending entries only (a new file renamed over the old one). */
  private compact(): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', NEW_FILE_MODE);
    try {
      // The rewritten journal keeps the mode of the one it replaces (an operator may have widened it).
      fchmodSync(fd, fstatSync(this.fd).mode & 0o777);
      const lines = [
        ...[...this.overflows].map(([group, o]) => JSON.stringify({ over: o.seq, g: group } satisfies OverflowLine)),
        ...this.pending().map((e) => JSON.stringify({ s: e.seq, g: e.group, b: e.bucket, k: e.key, i: e.id, t: e.at } satisfies EntryLine)),
      ];
      const data = Buffer.from(lines.length === 0 ? '' : lines.join('\n') + '\n');
      writeSync(fd, data);
      if (this.fsync) fsyncSync(fd);
      this.appendAt = data.length;
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    closeSync(this.fd);
    this.fd = openSync(this.path, 'r+');
    this.committedLines = 0;
  }

  close(): void {
    if (this.queued.length > 0) this.flush();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
