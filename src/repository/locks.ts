import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { LockedError, isNotFound } from '../errors.js';
import { getBytes } from '../storage/types.js';
import { isProcessAlive } from '../util/process.js';
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
}

const STALE_AFTER_MS = 30 * 60 * 1000;
const REFRESH_EVERY_MS = 5 * 60 * 1000;

/**
 * Repository locks (locks/<id>, plain JSON so an operator can read them). Backups share;
 * deleting operations are exclusive. A lock is stale when it was not refreshed for 30
 * minutes, or when its process is gone on this host.
 */
export class RepositoryLock {
  private timer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly repo: Repository,
    readonly id: string,
    private info: LockInfo,
  ) {}

  static async acquire(repo: Repository, type: LockType, operation: string): Promise<RepositoryLock> {
    await checkConflicts(repo, type, null);
    const now = new Date().toISOString();
    const info: LockInfo = { type, operation, host: hostname(), pid: process.pid, created: now, refreshed: now };
    const id = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    await repo.put(`locks/${id}`, Buffer.from(JSON.stringify(info)), { contentType: 'application/json' });
    const lock = new RepositoryLock(repo, id, info);
    try {
      // Two processes may have written their locks at the same moment: check again after writing.
      await checkConflicts(repo, type, id);
    } catch (err) {
      await lock.release();
      throw err;
    }
    lock.timer = setInterval(() => void lock.refresh().catch(() => {}), REFRESH_EVERY_MS);
    lock.timer.unref();
    return lock;
  }

  async refresh(): Promise<void> {
    this.info = { ...this.info, refreshed: new Date().toISOString() };
    await this.repo.put(`locks/${this.id}`, Buffer.from(JSON.stringify(this.info)), { contentType: 'application/json' });
  }

  async release(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    try {
      // Every version: in a versioned (e.g. Object Lock) bucket a plain delete leaves them all behind.
      await removeRepositoryObject(this.repo, `locks/${this.id}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
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
    try {
      body = await getBytes(repo.store, `locks/${id}`);
    } catch (err) {
      if (isNotFound(err)) continue; // released while we listed
      throw err;
    }
    const info = parseLock(body);
    // An object that is not a lock blocks nobody (it cannot be refreshed or owned); unlock removes it.
    const reason = info === null ? 'not a readable lock' : staleReason(info);
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
      await removeRepositoryObject(repo, `locks/${lock.id}`);
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
    const valid =
      (info.type === 'shared' || info.type === 'exclusive') &&
      typeof info.operation === 'string' &&
      typeof info.host === 'string' &&
      Number.isInteger(info.pid) &&
      (info.pid as number) > 0 &&
      typeof info.created === 'string' &&
      typeof info.refreshed === 'string' &&
      !Number.isNaN(Date.parse(info.refreshed));
    return valid ? (info as LockInfo) : null;
  } catch {
    return null;
  }
}

/** Why a lock is stale: not refreshed for 30 minutes, or its process is gone on this host; null if live. */
export function staleReason(info: LockInfo, now: number = Date.now()): string | null {
  const age = now - Date.parse(info.refreshed);
  if (age > STALE_AFTER_MS) return `not refreshed for ${Math.floor(age / 60_000)} minutes`;
  if (info.host === hostname() && info.pid !== process.pid && !isProcessAlive(info.pid)) return `process ${info.pid} is gone on this host`;
  return null;
}

async function checkConflicts(repo: Repository, type: LockType, ownId: string | null): Promise<void> {
  for (const { info, stale } of await readLocks(repo, ownId)) {
    if (stale || info === null) continue;
    if (type === 'exclusive' || info.type === 'exclusive') {
      throw new LockedError(
        `repository ${repo.store.location} is locked (${info.type}) by ${info.operation} on ${info.host} pid ${info.pid} since ${info.created}`,
      );
    }
  }
}
