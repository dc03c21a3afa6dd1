// A backup whose repository lock is lost stops (exit 11) instead of carrying on unlocked:
// against the real server, the lock is removed as `unlock --remove-all` on another host does,
// or its refresh PUT is refused (a bucket policy denying PutObject on locks/*).
import { join } from 'node:path';
import { DeleteBucketPolicyCommand, PutBucketPolicyCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { openSource } from '../../src/engine/sources.js';
import { ExitCode, LockedError } from '../../src/errors.js';
import type { Group } from '../../src/policy/types.js';
import { RepositoryLock, readLocks, removeLocks } from '../../src/repository/locks.js';
import type { Repository } from '../../src/repository/repository.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { runCli } from '../helpers/cli.js';
import { hashTree, initRepo, prng, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';
import { S3_TEST, createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, testS3Store } from '../helpers/s3-env.js';

describe('a backup that loses its lock (real server)', () => {
  let bucket: string;
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  let prefix: string;
  const stores: S3Store[] = [];
  const group: Group = { name: 'lake', sources: [] };

  beforeAll(async () => {
    bucket = await createTestBucket('lg-lock-loss');
  });
  afterAll(async () => {
    await testS3Client().send(new DeleteBucketPolicyCommand({ Bucket: bucket })).catch(() => {});
    await emptyAndDeleteBucket(bucket);
  });
  beforeEach(async () => {
    dir = tempDir('lock-loss');
    prefix = `r-${Math.random().toString(36).slice(2, 8)}`;
    const store = testS3Store(bucket, prefix);
    stores.push(store);
    repo = await initRepo(store);
    catalog = Catalog.open(join(dir.path, 'catalog.db'), repo.id);
    const rnd = prng(5);
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 20; i++) files[`f${i}.bin`] = rnd(4000);
    writeTree(join(dir.path, 'lake'), files);
    group.sources = [{ kind: 'path', path: join(dir.path, 'lake'), prefixes: [''], exclude: [] }];
  });
  afterEach(() => {
    catalog.close();
    for (const s of stores.splice(0)) s.destroy();
    dir.cleanup();
  });

  /**
   * Backs up with a lock refreshed every `refreshEveryMs`; `fault` runs when the first object is
   * read, and reading waits until the lock is lost (at most 20 s: then the assertions fail).
   */
  async function backupLosingLock(refreshEveryMs: number, fault: (lock: RepositoryLock) => Promise<void>): Promise<{ err: unknown; lock: RepositoryLock }> {
    const lock = await RepositoryLock.acquire(repo, 'shared', 'backup of group lake', { refreshEveryMs, retryEveryMs: refreshEveryMs });
    const policy = testPolicy(repo.location, [group]);
    const source = openSource(group.sources[0]!, policy);
    const store = source.objectStore;
    let first = true;
    const beforeRead = async (): Promise<void> => {
      if (!first) return;
      first = false;
      await fault(lock);
      if (!lock.signal.aborted) {
        await new Promise((resolve) => {
          lock.signal.addEventListener('abort', resolve, { once: true });
          setTimeout(resolve, 20_000).unref();
        });
      }
    };
    // Small files are read whole (getBytes), larger ones streamed (get): the first read of either.
    const get = store.get.bind(store);
    store.get = async (key, opts) => {
      await beforeRead();
      return get(key, opts);
    };
    const getBytes = store.getBytes?.bind(store);
    if (getBytes !== undefined) {
      store.getBytes = async (key, maxBytes) => {
        await beforeRead();
        return getBytes(key, maxBytes);
      };
    }
    const err = await backupGroup({ repo, catalog, policy, group, sources: [source], lock }).then(
      () => null,
      (e: unknown) => e,
    );
    await lock.release();
    return { err, lock };
  }

  it('removed by `unlock --remove-all` elsewhere: the run stops with exit 11 naming the lock, and writes no index or manifest', async () => {
    // The refresh is called here, not by its timer: a removal while a timed refresh is between its
    // read and its write would be written over (and then caught only by a conflicting lock).
    const { err, lock } = await backupLosingLock(3_600_000, async (held) => {
      expect((await removeLocks(repo, { all: true })).removed).toHaveLength(1);
      await held.refresh().catch(() => {});
    });
    expect(err).toBeInstanceOf(LockedError);
    expect((err as LockedError).exitCode).toBe(ExitCode.locked);
    expect((err as LockedError).message).toBe(
      `lost the repository lock locks/${lock.id} (shared, backup of group lake): it was removed (by \`lakeguard unlock --remove-all\`, or as stale by another host); stopped, so as not to go on without it (a prune may delete what it reads or writes)`,
    );
    expect(await repo.listNames('runs')).toEqual([]);
    expect(await repo.listNames('index')).toEqual([]);
    // The refresh did not write the removed lock back.
    expect(await readLocks(repo)).toEqual([]);
  });

  it('its refresh PUT refused by the repository (AccessDenied): the run stops with exit 11 saying so', async () => {
    const s3 = testS3Client();
    try {
      const { err, lock } = await backupLosingLock(50, async () => {
        const deny = { Effect: 'Deny', Principal: '*', Action: ['s3:PutObject'], Resource: [`arn:aws:s3:::${bucket}/${prefix}/locks/*`] };
        await s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [deny] }) }));
      });
      expect(err).toBeInstanceOf(LockedError);
      expect((err as LockedError).exitCode).toBe(11);
      expect((err as LockedError).message).toMatch(
        new RegExp(`^lost the repository lock locks/${lock.id} \\(shared, backup of group lake\\): the repository refused its refresh: PUT s3://${bucket}/${prefix}/locks/${lock.id}: AccessDenied \\(403\\)`),
      );
      expect(await repo.listNames('runs')).toEqual([]);
    } finally {
      await s3.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
    }
  });

  it('restore with credentials that cannot write a lock: a clear error naming --no-lock, which then restores with a warning', async () => {
    const policy = testPolicy(repo.location, [group]);
    expect((await backupGroup({ repo, catalog, policy, group })).status).toBe('complete');
    const s3 = testS3Client();
    const deny = { Effect: 'Deny', Principal: '*', Action: ['s3:PutObject'], Resource: [`arn:aws:s3:::${bucket}/${prefix}/locks/*`] };
    await s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [deny] }) }));
    try {
      const env = { ...testEnv(), LAKEGUARD_PASSWORD: 'test-password', LAKEGUARD_CATALOG: join(dir.path, 'catalog.db') };
      const args = ['--repo', `s3://${bucket}/${prefix}`, '--endpoint', S3_TEST.endpoint, 'restore', '--to-dir', join(dir.path, 'out')];
      const refused = await runCli(args, env);
      expect(refused.code, refused.stderr).toBe(1);
      const [message, hint] = refused.stderr.trim().split('\n');
      expect(message).toMatch(new RegExp(`^lakeguard: cannot write a lock into the repository: PUT s3://${bucket}/${prefix}/locks/[0-9a-z-]+: AccessDenied \\(403\\)`));
      expect(hint).toBe('  hint: with read-only credentials, restore with --no-lock (make sure no prune runs meanwhile)');
      const restored = await runCli([...args.slice(0, -3), 'restore', '--no-lock', '--to-dir', join(dir.path, 'out')], env);
      expect(restored.code, restored.stderr).toBe(0);
      expect(restored.stderr).toMatch(/^warning: --no-lock: restore takes no repository lock/m);
      expect(hashTree(join(dir.path, 'out'))).toEqual(hashTree(join(dir.path, 'lake')));
    } finally {
      await s3.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
    }
  });
});
