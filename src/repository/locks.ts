import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { LockedError, StorageError, errorMessage, isNotFound } from '../errors.js';
import { objectKey } from './layout.js';
import { formatDuration } from '../util/format.js';
import { bootId, isProcessAlive, machineId, pidNamespace, processStart } from '../util/process.js';
import { sleep } from '../util/retry.js';
import { removeRepositoryObject } from './remove.js';
import type { Repository } from './repository.js';

export type LockType = 'shared' | 'exclusive';

export interface LockInfo {
  type: LockType;
  operation: string;
  host: string;
  pid: number;
  created: string;
  refreshed: string;
  /** Random id of the holding process: its own locks are recognised by it, not by pid. */
  holder?: string;
  /** The host's boot id (Linux) when the lock was written: after a reboot its process is gone. */
  boot?: string;
  /** Start time of the holding process (Linux clock ticks): a later process reusing the pid is not the holder. */
  pidStart?: string;
  /** The holding process's PID namespace (Linux): its pid means something only to processes of the same one. */
  pidNs?: string;
  /** The holder's machine id (Linux /etc/machine-id): another machine of the same hostname is not this host. */
  machine?: string;
}

export const STALE_AFTER_MS = 30 * 60 * 1000;
const REFRESH_EVERY_MS = 5 * 60 * 1000;
/** After a refresh failed with an error worth retrying: try again this soon. */
const RETRY_REFRESH_EVERY_MS = 60 * 1000;
/**
 * A holder whose refreshes keep failing gives its lock up once the last good refresh is this old:
 * half the stale window, so it stops well before another host may judge the lock stale.
 */
const GIVE_UP_AFTER_MS = STALE_AFTER_MS / 2;

/**
 * How long `acquire` waits for a conflicting lock to go (`--retry-lock`): an exclusive lock of a
 * prune or forget, or the shared locks an exclusive operation waits for. 0 (the default) fails
 * at once (LockedError, exit 11). The wait polls (a LIST of locks/ and a GET of each), after
 * `pollMs` (default a second) doubling up to a minute, and ends early when `signal` aborts.
 */
export interface LockRetry {
  forMs: number;
  pollMs?: number;
  signal?: AbortSignal;
  /** Told once, when the first attempt finds a conflicting lock. */
  onWait?: (message: string) => void;
}

const MAX_LOCK_POLL_MS = 60_000;
let lockRetry: LockRetry = { forMs: 0 };

/** Sets how every later `RepositoryLock.acquire` of this process waits (the command's `--retry-lock`). */
export function setLockRetry(retry: LockRetry): void {
  lockRetry = retry;
}

/** This process's random id, written into each of its locks. */
const HOLDER = randomBytes(8).toString('hex');

/** Intervals of the refresh loop (tests shorten them). */
export interface LockTiming {
  refreshEveryMs?: number;
  retryEveryMs?: number;
  giveUpAfterMs?: number;
}

/**
 * Repository locks (locks/<id>, plain JSON so an operator can read them). Backups, restores,
 * verify and catalog rebuilds share; deleting operations are exclusive. A lock is stale when it
 * was not refreshed for 30 minutes (by the earlier of its `refreshed` and the time the storage
 * last wrote it, so a date in the future does not keep it alive), or when its process is gone
 * on this host (same boot, same process start time, not just the same pid).
 *
 * The holder rewrites its lock every 5 minutes. A lock found removed or replaced, a refresh the
 * repository refuses, or refreshes failing for 15 minutes lose it: `signal` then aborts with a
 * LockedError saying why, and the holder must stop writing.
 */
export class RepositoryLock {
  private timer: NodeJS.Timeout | null = null;
  private readonly lost = new AbortController();
  private body: Buffer;
  private lastRefreshed = Date.now();
  private refreshing: Promise<void> | null = null;
  private released = false;

  private constructor(
    private readonly repo: Repository,
    readonly id: string,
    private info: LockInfo,
    private readonly timing: Required<LockTiming>,
  ) {
    this.body = encode(info);
  }

  static async acquire(repo: Repository, type: LockType, operation: string, timing: LockTiming = {}): Promise<RepositoryLock> {
    const retry = lockRetry;
    const deadline = Date.now() + retry.forMs;
    let poll = retry.pollMs ?? 1000;
    for (let attempt = 1; ; attempt++) {
      try {
        return await RepositoryLock.tryAcquire(repo, type, operation, timing);
      } catch (err) {
        if (!(err instanceof LockedError) || retry.forMs <= 0) throw err;
        const left = deadline - Date.now();
        if (left <= 0) throw new LockedError(`${err.message}; waited ${formatDuration(retry.forMs)} for it (--retry-lock)`, err.hint);
        if (attempt === 1) retry.onWait?.(`${err.message}; waiting up to ${formatDuration(retry.forMs)} for it to go (--retry-lock)`);
        await sleep(Math.min(poll, left), retry.signal);
        poll = Math.min(poll * 2, MAX_LOCK_POLL_MS);
      }
    }
  }

  /** One attempt: fails with a LockedError at once when a conflicting lock is live. */
  private static async tryAcquire(repo: Repository, type: LockType, operation: string, timing: LockTiming): Promise<RepositoryLock> {
    await checkConflicts(repo, type, null);
    const now = new Date().toISOString();
    const info: LockInfo = { type, operation, host: hostname(), pid: process.pid, created: now, refreshed: now, holder: HOLDER };
    const boot = bootId();
    const started = processStart(process.pid);
    if (boot !== null && started !== null) Object.assign(info, { boot, pidStart: started });
    const pidNs = pidNamespace();
    if (pidNs !== null) info.pidNs = pidNs;
    const machine = machineId();
    if (machine !== null) info.machine = machine;
    const id = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    const lock = new RepositoryLock(repo, id, info, {
      refreshEveryMs: timing.refreshEveryMs ?? REFRESH_EVERY_MS,
      retryEveryMs: timing.retryEveryMs ?? RETRY_REFRESH_EVERY_MS,
      giveUpAfterMs: timing.giveUpAfterMs ?? GIVE_UP_AFTER_MS,
    });
    await repo.put(lock.key, lock.body, { contentType: 'application/json' });
    try {
      // Two processes may have written their locks at the same moment: check again after writing.
      await checkConflicts(repo, type, id);
    } catch (err) {
      await lock.release();
      throw err;
    }
    lock.schedule(lock.timing.refreshEveryMs);
    return lock;
  }

  get key(): string {
    return objectKey('locks', this.id);
  }

  /** Aborts, with a LockedError naming the lock and why, when the lock is lost. */
  get signal(): AbortSignal {
    return this.lost.signal;
  }

  /** Throws the LockedError when the lock is lost. */
  throwIfLost(): void {
    this.lost.signal.throwIfAborted();
  }

  /**
   * Rewrites the lock with a new `refreshed`, after checking it is still ours: a lock removed
   * (`unlock --remove-all` elsewhere, or judged stale by another host) or replaced is lost, and
   * so is one whose rewrite the repository refuses. Errors worth retrying are thrown as they are.
   */
  async refresh(): Promise<void> {
    this.throwIfLost();
    let current: Buffer;
    try {
      current = (await this.repo.readFile('locks', this.id)).body;
    } catch (err) {
      if (isNotFound(err)) this.lose('it was removed (by `lakeguard unlock --remove-all`, or as stale by another host)');
      if (!(err instanceof StorageError && err.retryable)) this.lose(`it could not be read back: ${errorMessage(err)}`);
      throw err;
    }
    if (!current.equals(this.body)) this.lose('it was replaced by another writer');
    if (this.released) return;
    const info = { ...this.info, refreshed: new Date().toISOString() };
    const body = encode(info);
    try {
      await this.repo.put(this.key, body, { contentType: 'application/json' });
    } catch (err) {
      if (!(err instanceof StorageError && err.retryable)) this.lose(`the repository refused its refresh: ${errorMessage(err)}`);
      throw err;
    }
    this.info = info;
    this.body = body;
    this.lastRefreshed = Date.now();
    // Removed between the read above and this write (a window of one request), the lock is back,
    // but a prune may have taken its exclusive lock meanwhile: check as after acquiring.
    try {
      await checkConflicts(this.repo, info.type, this.id);
    } catch (err) {
      if (err instanceof LockedError) this.lose(`a conflicting lock appeared: ${err.message}`);
      throw err;
    }
  }

  async release(): Promise<void> {
    this.released = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    // A refresh in flight would write the lock again after its removal.
    await this.refreshing?.catch(() => {});
    try {
      // A lost lock is removed only while it is still the one we wrote (not gone, not replaced).
      if (this.lost.signal.aborted && !(await this.repo.readFile('locks', this.id)).body.equals(this.body)) return;
      // Every version: in a versioned (e.g. Object Lock) bucket a plain delete leaves them all behind.
      await removeRepositoryObject(this.repo, this.key);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** The refresh loop: a failure worth retrying is retried each minute until the lock is given up. */
  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.refreshing = this.refresh().then(
        () => {
          if (!this.released) this.schedule(this.timing.refreshEveryMs);
        },
        (err: unknown) => {
          if (this.lost.signal.aborted || this.released) return;
          const since = Date.now() - this.lastRefreshed;
          if (since >= this.timing.giveUpAfterMs) {
            this.lose(`it could not be refreshed for ${Math.round(since / 60_000)} minutes (${errorMessage(err)})`);
          } else {
            this.schedule(this.timing.retryEveryMs);
          }
        },
      );
      this.refreshing.catch(() => {});
    }, ms);
    this.timer.unref();
  }

  /** Marks the lock lost (aborting `signal`) and throws why. */
  private lose(why: string): never {
    if (!this.lost.signal.aborted) {
      const i = this.info;
      this.lost.abort(
        new LockedError(
          `lost the repository lock ${this.key} (${i.type}, ${i.operation}): ${why}; stopped, so as not to go on without it (a prune may delete what it reads or writes)`,
          'check who removed it (another host running `lakeguard unlock --remove-all` or prune), then run the command again',
        ),
      );
    }
    throw this.lost.signal.reason;
  }
}

/**
 * A shared lock for an operation that only reads the repository (restore, verify, catalog
 * rebuild), so that prune cannot delete what it reads. Read-only credentials cannot write one:
 * the error then says how to go without (`retry`, e.g. "restore with --no-lock").
 */
export async function acquireForReading(repo: Repository, operation: string, retry: string): Promise<RepositoryLock> {
  try {
    return await RepositoryLock.acquire(repo, 'shared', operation);
  } catch (err) {
    if (!(err instanceof StorageError && err.code === 'AccessDenied')) throw err;
    throw new StorageError(err.code, `cannot write a lock into the repository: ${err.message}`, {
      backendCode: err.backendCode,
      cause: err,
      hint: `with read-only credentials, ${retry} (make sure no prune runs meanwhile)`,
    });
  }
}

function encode(info: LockInfo): Buffer {
  return Buffer.from(JSON.stringify(info));
}

/**
 * When a lock was written, from its id alone (`<ms since epoch, base 36>-<hex>`, made just after
 * `created`), so a reader that needs only that can skip reading it; null for another form.
 */
export function lockTimeFromId(id: string): number | null {
  const m = /^([0-9a-z]{6,10})-[0-9a-f]+$/.exec(id);
  const ms = m === null ? NaN : parseInt(m[1]!, 36);
  return Number.isSafeInteger(ms) && ms > Date.UTC(2020, 0, 1) ? ms : null;
}

/** A lock as found in the repository; `info` is null when the object is not a readable lock. */
export interface FoundLock {
  id: string;
  info: LockInfo | null;
  stale: boolean;
  /** Why the lock is stale (null when it is live). */
  reason: string | null;
}

/** Every lock in the repository except `skip` (a lock of ours: its body is known, not read again). */
export async function readLocks(repo: Repository, skip: string | null = null): Promise<FoundLock[]> {
  const out: FoundLock[] = [];
  for (const id of await repo.listNames('locks')) {
    if (id === skip) continue;
    let body: Buffer;
    let written: number;
    try {
      const got = await repo.readFile('locks', id);
      body = got.body;
      written = got.lastModified.getTime();
    } catch (err) {
      if (isNotFound(err)) continue; // released while we listed
      throw err;
    }
    const info = parseLock(body);
    // An object that is not a lock blocks nobody (it cannot be refreshed or owned); unlock removes it.
    const reason = info === null ? 'not a readable lock' : staleReason(info, Date.now(), written > 0 ? written : undefined);
    out.push({ id, info, stale: reason !== null, reason });
  }
  return out;
}

/** Removes stale locks (or, with `all`, every lock); returns what was removed and the live locks kept. */
export async function removeLocks(repo: Repository, opts: { all: boolean }): Promise<{ removed: FoundLock[]; kept: FoundLock[] }> {
  const removed: FoundLock[] = [];
  const kept: FoundLock[] = [];
  for (const lock of await readLocks(repo)) {
    if (!lock.stale && !opts.all) {
      kept.push(lock);
      continue;
    }
    try {
      await removeRepositoryObject(repo, objectKey('locks', lock.id));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    removed.push(lock);
  }
  return { removed, kept };
}

/** One line naming who holds a lock and since when. */
export function describeLock(info: LockInfo): string {
  return `${info.type} lock by ${info.operation} on ${info.host} pid ${info.pid} since ${info.created} (refreshed ${info.refreshed})`;
}

function parseLock(body: Buffer): LockInfo | null {
  try {
    const info = JSON.parse(body.toString('utf8')) as Partial<LockInfo>;
    const optional = (v: unknown): boolean => v === undefined || typeof v === 'string';
    const valid =
      (info.type === 'shared' || info.type === 'exclusive') &&
      typeof info.operation === 'string' &&
      typeof info.host === 'string' &&
      Number.isInteger(info.pid) &&
      (info.pid as number) > 0 &&
      typeof info.created === 'string' &&
      typeof info.refreshed === 'string' &&
      !Number.isNaN(Date.parse(info.refreshed)) &&
      optional(info.holder) &&
      optional(info.boot) &&
      optional(info.pidStart) &&
      optional(info.pidNs) &&
      optional(info.machine);
    return valid ? (info as LockInfo) : null;
  } catch {
    return null;
  }
}

/**
 * Why a lock is stale, or null if live. Its age counts from the earlier of its `refreshed` and
 * `written` (when the storage last wrote it, by the server's clock): a `refreshed` in the future
 * (a skewed clock, or forged) cannot keep it alive. On this host (hostname and machine id), in
 * our PID namespace: not ours (holder id), and its process gone, from another boot, or its pid
 * now another process's.
 */
export function staleReason(info: LockInfo, now: number = Date.now(), written?: number): string | null {
  const refreshed = Math.min(Date.parse(info.refreshed), written ?? Infinity);
  if (refreshed > now + STALE_AFTER_MS) return `refreshed in the future (${info.refreshed}): a wrong clock or a forged lock`;
  const age = now - refreshed;
  if (age > STALE_AFTER_MS) return `not refreshed for ${Math.floor(age / 60_000)} minutes`;
  if (info.host !== hostname()) return null;
  // Another machine that bears this hostname (a cloned image, a generic name): its pids and boot
  // id are its own, and looking them up here would take its live lock for a dead one.
  const machine = machineId();
  if (info.machine !== undefined && machine !== null && info.machine !== machine) return null;
  if (info.holder !== undefined ? info.holder === HOLDER : info.pid === process.pid) return null;
  // Another PID namespace (a container sharing this host's name: host networking): its pid cannot
  // be looked up from here, whatever runs under that number in ours. Only its age tells.
  if (info.pidNs !== undefined && info.pidNs !== pidNamespace()) return null;
  const boot = bootId();
  if (info.boot !== undefined && boot !== null && info.boot !== boot) return `written before host ${info.host} rebooted`;
  if (!isProcessAlive(info.pid)) return `process ${info.pid} is gone on this host`;
  if (info.pidStart !== undefined && info.boot === boot) {
    const started = processStart(info.pid);
    if (started !== null && started !== info.pidStart) return `pid ${info.pid} now belongs to another process on this host`;
  }
  return null;
}

async function checkConflicts(repo: Repository, type: LockType, ownId: string | null): Promise<void> {
  for (const { info, stale } of await readLocks(repo, ownId)) {
    if (stale || info === null) continue;
    if (type === 'exclusive' || info.type === 'exclusive') {
      throw new LockedError(
        `repository ${repo.location} is locked (${info.type}) by ${info.operation} on ${info.host} pid ${info.pid} since ${info.created}`,
      );
    }
  }
}
