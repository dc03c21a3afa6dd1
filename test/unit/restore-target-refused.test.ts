// A restore into an S3 target that refuses everything says so once: a bucket that does not exist
// is refused before anything is read or written (exit 2), and a target that starts refusing
// mid-restore (bucket deleted, AccessDenied on every write) stops the restore instead of
// failing every remaining key one by one. The target here is a MemStore answering as S3 does.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { TARGET_FAILURE_STREAK, restore, type RestoreOptions } from '../../src/engine/restore.js';
import { ExitCode, LakeguardError, StorageError } from '../../src/errors.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import type { GetOptions, GetResult, ListItem, ListOptions, ObjectStore, PutOptions, PutResult } from '../../src/storage/types.js';
import { initRepo, openCatalog, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';

const OBJECTS = 300;

/** An S3 bucket as restore sees it; `refuse(n)` says how the n-th PUT (from 1) fails, if it does. */
class S3LikeTarget extends StoreDecorator {
  puts = 0;
  lists = 0;
  constructor(
    private readonly bucketExists: boolean,
    private readonly refuse: (n: number, key: string) => StorageError | null = () => null,
  ) {
    super(new MemStore());
  }
  override get location(): string {
    return 's3://target/p/';
  }
  override list(prefix: string, opts?: ListOptions): AsyncIterable<ListItem> {
    this.lists++;
    if (!this.bucketExists) {
      return {
        [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new StorageError('NoSuchBucket', 'LIST s3://target/p/: NoSuchBucket (404): bucket target does not exist')) }),
      };
    }
    return super.list(prefix, opts);
  }
  override put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult> {
    const n = ++this.puts;
    const err = this.bucketExists ? this.refuse(n, key) : new StorageError('NoSuchBucket', `PUT s3://target/p/${key}: NoSuchBucket (404): bucket target does not exist`);
    return err === null ? super.put(key, body, opts) : Promise.reject(err);
  }
}

const accessDenied = (key: string): StorageError => new StorageError('AccessDenied', `PUT s3://target/p/${key}: AccessDenied (403): Access Denied`, { backendCode: 'AccessDenied' });

/** `files` written under <dir>/lake and backed up into a new repository in <dir>/repo (a path: source). */
async function backedUpLake(dir: string, files: Record<string, string>, repoOptions: Parameters<typeof initRepo>[1] = {}): Promise<{ repo: Repository; catalog: Catalog }> {
  writeTree(join(dir, 'lake'), files);
  const store = new FsStore({ root: join(dir, 'repo'), fsync: false });
  const repo = await initRepo(store, repoOptions);
  const catalog = openCatalog(dir, repo);
  const group = { name: 'lake', sources: [{ kind: 'path' as const, path: join(dir, 'lake'), prefixes: [''], exclude: [] }] };
  await backupGroup({ repo, catalog, policy: testPolicy(store.location, [group]), group });
  return { repo, catalog };
}

describe('restore into an S3 target that refuses every write', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;

  beforeAll(async () => {
    dir = tempDir('restore-target-refused');
    const files: Record<string, string> = {};
    for (let i = 0; i < OBJECTS; i++) files[`t/${String(i).padStart(4, '0')}.txt`] = `object ${i}\n`;
    ({ repo, catalog } = await backedUpLake(dir.path, files));
  });

  afterAll(() => {
    catalog.close();
    dir.cleanup();
  });

  const run = async (target: ObjectStore, extra: Partial<RestoreOptions> = {}): Promise<{ error: unknown; events: EngineEvent[] }> => {
    const events: EngineEvent[] = [];
    try {
      const summary = await restore({ repo, catalog, scopes: [{ bucket: 'lake' }], cut: { runSeq: 1 }, target, bucketDirs: false, concurrency: 8, events: (e) => events.push(e), ...extra });
      return { error: summary, events };
    } catch (error) {
      return { error, events };
    }
  };
  const failures = (events: EngineEvent[]) => events.filter((e) => e.type === 'failure');

  it('refuses a bucket that does not exist before writing anything: one error, exit 2, no failure per key', async () => {
    for (const overwrite of ['if-changed', 'always'] as const) {
      const target = new S3LikeTarget(false);
      const { error, events } = await run(target, { overwrite });
      expect(error, overwrite).toBeInstanceOf(LakeguardError);
      expect((error as LakeguardError).exitCode).toBe(ExitCode.usage);
      expect((error as LakeguardError).message).toBe('restore target s3://target/p/: bucket target does not exist; nothing was written');
      expect((error as LakeguardError).hint).toMatch(/^create bucket target first, or check/);
      expect(target.puts).toBe(0);
      expect(failures(events)).toEqual([]);
    }
  });

  it('stops when the bucket is deleted mid-restore: at the first NoSuchBucket, not once per remaining key', async () => {
    const target = new S3LikeTarget(true, (n, key) => (n > 20 ? new StorageError('NoSuchBucket', `PUT s3://target/p/${key}: NoSuchBucket (404): bucket target does not exist`) : null));
    const { error, events } = await run(target, { overwrite: 'always' });
    expect(error).toBeInstanceOf(LakeguardError);
    expect((error as LakeguardError).exitCode).toBe(ExitCode.error);
    const m = /^restore target s3:\/\/target\/p\/: its bucket no longer exists .*; (\d+) objects were restored before, the others not$/.exec((error as LakeguardError).message);
    expect(m, (error as LakeguardError).message).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(20);
    expect(failures(events)).toEqual([]);
    // Only the writes already in flight (at most the concurrency) were tried after the first refusal.
    expect(target.puts).toBeLessThanOrEqual(21 + 8);
  });

  it(`stops after ${TARGET_FAILURE_STREAK} writes in a row refused with the same code`, async () => {
    const target = new S3LikeTarget(true, (_n, key) => accessDenied(key));
    const { error, events } = await run(target, { overwrite: 'always' });
    expect(error).toBeInstanceOf(LakeguardError);
    expect((error as LakeguardError).message).toMatch(new RegExp(`^restore stopped: the last ${TARGET_FAILURE_STREAK} writes to s3://target/p/ all failed with AccessDenied \\(PUT .*\\); 0 objects were restored before`));
    expect(failures(events)).toHaveLength(TARGET_FAILURE_STREAK - 1);
    expect(target.puts).toBeLessThanOrEqual(TARGET_FAILURE_STREAK + 8);
    expect(target.puts).toBeLessThan(OBJECTS);
  });

  it('stops a restore into a full directory the same way, not one ENOSPC per remaining file', async () => {
    const full = new (class extends FsStore {
      puts = 0;
      override put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult> {
        if (++this.puts <= 10) return super.put(key, body, opts);
        return Promise.reject(Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC', errno: -28 }));
      }
    })({ root: join(dir.path, 'full'), fsync: false });
    const { error, events } = await run(full, { overwrite: 'always' });
    expect(error).toBeInstanceOf(LakeguardError);
    expect((error as LakeguardError).message).toMatch(new RegExp(`^restore stopped: the last ${TARGET_FAILURE_STREAK} writes to .*full/ all failed with ENOSPC \\(ENOSPC: no space left on device, write\\); \\d+ objects were restored before`));
    expect((error as LakeguardError).hint).toMatch(/^free space on the target/);
    expect(failures(events)).toHaveLength(TARGET_FAILURE_STREAK - 1);
    expect(full.puts).toBeLessThan(OBJECTS);
  });

  it('goes on when only some keys are refused (a policy denying part of the bucket): each is a failure', async () => {
    // Every third key is refused: writes succeed between them, so no streak forms.
    const target = new S3LikeTarget(true, (_n, key) => (Number(/(\d+)\.txt$/.exec(key)![1]) % 3 === 0 ? accessDenied(key) : null));
    const { error, events } = await run(target, { overwrite: 'always' });
    expect(error).toMatchObject({ objects: OBJECTS, restored: OBJECTS - 100, failed: 100 });
    expect(failures(events)).toHaveLength(100);
  });

  it('the check is one LIST per target; none when the caller has just listed it (rollback)', async () => {
    const checked = new S3LikeTarget(true);
    expect(await run(checked, { overwrite: 'always' })).toMatchObject({ error: { restored: OBJECTS } });
    expect(checked.lists).toBe(1);
    const listed = new S3LikeTarget(true);
    expect(await run(listed, { overwrite: 'always', targetListed: true })).toMatchObject({ error: { restored: OBJECTS } });
    expect(listed.lists).toBe(0);
  });
});

describe('a stream of a large object that fails reading the repository', () => {
  let dir: ReturnType<typeof tempDir>;
  let catalog: Catalog;

  beforeAll(async () => {
    dir = tempDir('restore-target-refused-stream');
    // Small chunks: the object is several blobs, so it is streamed into the target as it is read.
    ({ catalog } = await backedUpLake(dir.path, { 'big.bin': randomBytes(64 * 1024).toString('base64') }, { chunker: { minSize: 1024, avgSize: 4096, maxSize: 8192 } }));
  });

  afterAll(() => {
    catalog.close();
    dir.cleanup();
  });

  it('is the object failing, never the target refusing writes (even when one refusal stops the restore, as a drill\'s does)', async () => {
    // The repository denies reading its packs (a role without s3:GetObject on packs/).
    const denying = new (class extends StoreDecorator {
      override get(key: string, opts?: GetOptions): Promise<GetResult> {
        if (key.startsWith('packs/')) return Promise.reject(new StorageError('AccessDenied', `GET s3://repo/${key}: AccessDenied (403)`, { backendCode: 'AccessDenied' }));
        return super.get(key, opts);
      }
    })(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    const reading = await Repository.open(denying, { password: async () => 'test-password' });
    const events: EngineEvent[] = [];
    const summary = await restore({ repo: reading, catalog, scopes: [{ bucket: 'lake' }], cut: { runSeq: 1 }, target: new S3LikeTarget(true), bucketDirs: false, concurrency: 4, targetFailureStreak: 1, events: (e) => events.push(e) });
    expect(summary).toMatchObject({ objects: 1, restored: 0, failed: 1 });
    expect(events.filter((e) => e.type === 'failure')).toMatchObject([{ key: 'big.bin', code: 'AccessDenied' }]);
  });
});
