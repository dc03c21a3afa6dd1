import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { LockedError, isNotFound } from '../errors.js';
import { getBytes } from '../storage/types.js';
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
      await this.repo.store.delete(`locks/${this.id}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

export async function readLocks(repo: Repository): Promise<{ id: string; info: LockInfo; stale: boolean }[]> {
  const out: { id: string; info: LockInfo; stale: boolean }[] = [];
  for (const id of await repo.listNames('locks')) {
    try {
      const info = JSON.parse((await getBytes(repo.store, `locks/${id}`)).toString('utf8')) as LockInfo;
      out.push({ id, info, stale: isStale(info) });
    } catch (err) {
      if (!isNotFound(err)) throw err; // released while we listed
    }
  }
  return out;
}

function isStale(info: LockInfo): boolean {
  if (Date.now() - Date.parse(info.refreshed) > STALE_AFTER_MS) return true;
  if (info.host === hostname() && info.pid !== process.pid) {
    try {
      process.kill(info.pid, 0);
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }
  return false;
}

async function checkConflicts(repo: Repository, type: LockType, ownId: string | null): Promise<void> {
  for (const { id, info, stale } of await readLocks(repo)) {
    if (id === ownId || stale) continue;
    if (type === 'exclusive' || info.type === 'exclusive') {
      throw new LockedError(
        `repository ${repo.store.location} is locked (${info.type}) by ${info.operation} on ${info.host} pid ${info.pid} since ${info.created}`,
      );
    }
  }
}
