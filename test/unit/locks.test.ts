// Repository locks (shared/exclusive, stale detection, unlock) and concurrent backups of
// different groups into one repository, with one shared catalog file and with two.
import { spawn } from 'node:child_process';
import { readFileSync, readlinkSync, utimesSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { rebuildCatalog } from '../../src/engine/rebuild.js';
import { openSource } from '../../src/engine/sources.js';
import { verify } from '../../src/engine/verify.js';
import { ExitCode, LockedError, StorageError } from '../../src/errors.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { RepositoryLock, readLocks, removeLocks, setLockRetry, staleReason, type LockInfo } from '../../src/repository/locks.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { getBytes } from '../../src/storage/types.js';
import { runCli, messagesOf } from '../helpers/cli.js';
import { initRepo, prng, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';
import { selectState, statePage } from '../../src/catalog/restore-selection.js';

/** The pid of a process that has just exited: no process has it on this host (pids are not reused this fast). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

async function writeLock(store: FsStore, id: string, info: Partial<LockInfo>): Promise<void> {
  const now = new Date().toISOString();
  const full: LockInfo = { type: 'exclusive', operation: 'prune', host: hostname(), pid: process.ppid, created: now, refreshed: now, ...info };
  await store.put(`locks/${id}`, Buffer.from(JSON.stringify(full)));
}

describe('repository locks', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let store: FsStore;

  beforeEach(async () => {
    dir = tempDir('locks');
    store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store, { password: null });
  });
  afterEach(() => dir.cleanup());

  it('two shared locks coexist; release removes each', async () => {
    const a = await RepositoryLock.acquire(repo, 'shared', 'backup of group a');
    const b = await RepositoryLock.acquire(repo, 'shared', 'backup of group b');
    expect((await readLocks(repo)).map((l) => l.info?.operation).sort()).toEqual(['backup of group a', 'backup of group b']);
    await a.release();
    await b.release();
    expect(await readLocks(repo)).toEqual([]);
  });

  it('an exclusive lock while a shared one is held fails with exit 11, naming operation, host, pid and since', async () => {
    const shared = await RepositoryLock.acquire(repo, 'shared', 'backup of group finance');
    const info = (await readLocks(repo))[0]!.info!;
    const err = await RepositoryLock.acquire(repo, 'exclusive', 'prune').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    expect((err as LockedError).exitCode).toBe(ExitCode.locked);
    expect((err as LockedError).exitCode).toBe(11);
    expect((err as LockedError).message).toBe(
      `repository ${repo.location} is locked (shared) by backup of group finance on ${hostname()} pid ${process.pid} since ${info.created}`,
    );
    expect((err as LockedError).hint).toMatch(/lakeguard unlock/);
    // The failed attempt left no lock of its own behind.
    expect(await readLocks(repo)).toHaveLength(1);
    await shared.release();
    const exclusive = await RepositoryLock.acquire(repo, 'exclusive', 'prune');
    await exclusive.release();
  });

  it('a shared lock while an exclusive one is held fails; so does a second exclusive one', async () => {
    const exclusive = await RepositoryLock.acquire(repo, 'exclusive', 'prune');
    await expect(RepositoryLock.acquire(repo, 'shared', 'backup of group a')).rejects.toThrow(/is locked \(exclusive\) by prune on .* pid \d+ since \d{4}-/);
    await expect(RepositoryLock.acquire(repo, 'exclusive', 'prune')).rejects.toBeInstanceOf(LockedError);
    await exclusive.release();
    await (await RepositoryLock.acquire(repo, 'shared', 'backup of group a')).release();
  });

  it('a lock not refreshed for 30 minutes is stale: ignored, and removed by unlock', async () => {
    const old = new Date(Date.now() - 31 * 60 * 1000).toISOString();
    await writeLock(store, 'old', { host: 'other-host', pid: 4242, created: old, refreshed: old });
    const [found] = await readLocks(repo);
    expect(found).toMatchObject({ id: 'old', stale: true, reason: 'not refreshed for 31 minutes' });
    const lock = await RepositoryLock.acquire(repo, 'exclusive', 'prune'); // ignores it
    await lock.release();
    const { removed, kept } = await removeLocks(repo, { all: false });
    expect(removed.map((l) => l.id)).toEqual(['old']);
    expect(kept).toEqual([]);
    expect(await readLocks(repo)).toEqual([]);
  });

  it('a lock of a process that is gone on this host is stale; one on another host, or of a live process, is not', async () => {
    const pid = await deadPid();
    await writeLock(store, 'dead', { pid });
    await writeLock(store, 'live', { type: 'shared', operation: 'backup of group a', pid: process.ppid });
    await writeLock(store, 'elsewhere', { type: 'shared', operation: 'backup of group b', host: `not-${hostname()}`, pid });
    const byId = new Map((await readLocks(repo)).map((l) => [l.id, l]));
    expect(byId.get('dead')).toMatchObject({ stale: true, reason: `process ${pid} is gone on this host` });
    expect(byId.get('live')).toMatchObject({ stale: false, reason: null });
    expect(byId.get('elsewhere')).toMatchObject({ stale: false, reason: null });
    // The dead exclusive lock does not block a backup; the live shared ones do block prune.
    await (await RepositoryLock.acquire(repo, 'shared', 'backup of group c')).release();
    await expect(RepositoryLock.acquire(repo, 'exclusive', 'prune')).rejects.toBeInstanceOf(LockedError);
    const { removed, kept } = await removeLocks(repo, { all: false });
    expect(removed.map((l) => l.id)).toEqual(['dead']);
    expect(kept.map((l) => l.id).sort()).toEqual(['elsewhere', 'live']);
    const all = await removeLocks(repo, { all: true });
    expect(all.removed.map((l) => l.id).sort()).toEqual(['elsewhere', 'live']);
    expect(await readLocks(repo)).toEqual([]);
  });

  it('an object in locks/ that is not a lock blocks nobody and is removed by unlock', async () => {
    await store.put('locks/garbage', Buffer.from('{"type":"exclusive"'));
    expect(await readLocks(repo)).toEqual([{ id: 'garbage', info: null, stale: true, reason: 'not a readable lock' }]);
    await (await RepositoryLock.acquire(repo, 'exclusive', 'prune')).release();
    expect((await removeLocks(repo, { all: false })).removed.map((l) => l.id)).toEqual(['garbage']);
  });

  it('a lock "refreshed" in the future is stale 30 minutes after the storage last wrote it, not never', async () => {
    // Forged (or written by a host whose clock is years ahead), and last written 31 minutes ago.
    await writeLock(store, 'future', { host: 'other-host', pid: 4242, refreshed: '2099-01-01T00:00:00.000Z' });
    const past = new Date(Date.now() - 31 * 60 * 1000);
    utimesSync(join(dir.path, 'repo', 'locks', 'future'), past, past);
    expect((await readLocks(repo))[0]).toMatchObject({ id: 'future', stale: true, reason: 'not refreshed for 31 minutes' });
    await (await RepositoryLock.acquire(repo, 'exclusive', 'prune')).release();
    // Where the storage's own time is unknown (or also in the future), a date beyond the window is itself stale.
    expect(staleReason({ type: 'exclusive', operation: 'prune', host: 'other-host', pid: 1, created: '', refreshed: '2099-01-01T00:00:00.000Z' })).toBe(
      'refreshed in the future (2099-01-01T00:00:00.000Z): a wrong clock or a forged lock',
    );
  });

  it('liveness on this host compares boot id and process start, not the pid alone: a reused pid keeps no dead lock alive', async () => {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const liveStart = readFileSync(`/proc/${process.ppid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]!;
    // process.ppid is alive: as pid alone it would look like the holder.
    await writeLock(store, 'before-reboot', { pid: process.ppid, holder: 'aaaaaaaaaaaaaaaa', boot: '00000000-0000-0000-0000-000000000000', pidStart: liveStart });
    await writeLock(store, 'reused-pid', { pid: process.ppid, holder: 'bbbbbbbbbbbbbbbb', boot, pidStart: String(Number(liveStart) + 1) });
    await writeLock(store, 'holder-alive', { type: 'shared', pid: process.ppid, holder: 'cccccccccccccccc', boot, pidStart: liveStart });
    const byId = new Map((await readLocks(repo)).map((l) => [l.id, l.reason]));
    expect(byId.get('before-reboot')).toBe(`written before host ${hostname()} rebooted`);
    expect(byId.get('reused-pid')).toBe(`pid ${process.ppid} now belongs to another process on this host`);
    expect(byId.get('holder-alive')).toBeNull();
    // A container of this host with pids of its own (host networking: same hostname and boot id):
    // its pid names another process here, or none, and tells nothing; only the lock's age does.
    await writeLock(store, 'other-pid-namespace', { type: 'exclusive', pid: process.ppid, holder: 'dddddddddddddddd', boot, pidStart: String(Number(liveStart) + 1), pidNs: 'pid:[1]' });
    expect((await readLocks(repo)).find((l) => l.id === 'other-pid-namespace')).toMatchObject({ stale: false, reason: null });
    await expect(RepositoryLock.acquire(repo, 'shared', 'backup of group a')).rejects.toThrow(/is locked \(exclusive\)/);
    await store.delete('locks/other-pid-namespace');
    // Another machine that bears this hostname (a cloned image): its dead-looking pid and other
    // boot id are its own; only the lock's age tells.
    const machine = readFileSync('/etc/machine-id', 'utf8').trim();
    await writeLock(store, 'other-machine', { type: 'exclusive', pid: await deadPid(), holder: 'eeeeeeeeeeeeeeee', boot: '00000000-0000-0000-0000-000000000000', pidStart: liveStart, machine: 'f'.repeat(32) });
    expect((await readLocks(repo)).find((l) => l.id === 'other-machine')).toMatchObject({ stale: false, reason: null });
    await writeLock(store, 'other-machine', { type: 'exclusive', pid: await deadPid(), holder: 'eeeeeeeeeeeeeeee', boot: '00000000-0000-0000-0000-000000000000', pidStart: liveStart, machine });
    expect((await readLocks(repo)).find((l) => l.id === 'other-machine')?.reason).toBe(`written before host ${hostname()} rebooted`);
    await store.delete('locks/other-machine');
    // A new lock records all five, and its own process knows it by its random holder id.
    const lock = await RepositoryLock.acquire(repo, 'shared', 'backup of group a');
    const info = JSON.parse((await getBytes(store, `locks/${lock.id}`)).toString('utf8')) as LockInfo;
    expect(info).toMatchObject({ pid: process.pid, boot, pidStart: readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[19], pidNs: readlinkSync('/proc/self/ns/pid'), machine });
    expect(info.holder).toMatch(/^[0-9a-f]{16}$/);
    expect(staleReason(info)).toBeNull();
    await lock.release();
  });

  it('refresh failures worth retrying are tolerated within the give-up window; then the lock is lost', async () => {
    const put = store.put.bind(store);
    let failing = 0;
    store.put = async (key, body, opts) => {
      if (key.startsWith('locks/') && failing > 0) {
        failing--;
        throw new StorageError('Network', `PUT ${key}: the connection was lost (ECONNRESET)`, { backendCode: 'ECONNRESET' });
      }
      return put(key, body, opts);
    };
    const read = async (id: string) => JSON.parse((await getBytes(store, `locks/${id}`)).toString('utf8')) as LockInfo;
    const tolerant = await RepositoryLock.acquire(repo, 'shared', 'backup of group a', { refreshEveryMs: 20, retryEveryMs: 20, giveUpAfterMs: 60_000 });
    const first = (await read(tolerant.id)).refreshed;
    failing = 3;
    while (failing > 0 || (await read(tolerant.id)).refreshed === first) await new Promise((r) => setTimeout(r, 10));
    expect(tolerant.signal.aborted).toBe(false);
    await tolerant.release();

    const giving = await RepositoryLock.acquire(repo, 'shared', 'backup of group b', { refreshEveryMs: 20, retryEveryMs: 20, giveUpAfterMs: 100 });
    failing = Infinity;
    await new Promise((resolve) => giving.signal.addEventListener('abort', resolve, { once: true }));
    const reason = giving.signal.reason as LockedError;
    expect(reason).toBeInstanceOf(LockedError);
    expect(reason.exitCode).toBe(11);
    expect(reason.message).toMatch(new RegExp(`^lost the repository lock locks/${giving.id} \\(shared, backup of group b\\): it could not be refreshed for 0 minutes \\(PUT locks/${giving.id}: the connection was lost \\(ECONNRESET\\)\\)`));
    failing = 0;
    await giving.release();
  });

  it('a refresh that finds a conflicting exclusive lock (taken while ours was briefly gone) loses ours', async () => {
    const lock = await RepositoryLock.acquire(repo, 'shared', 'backup of group a', { refreshEveryMs: 3_600_000 });
    await writeLock(store, 'prune', { operation: 'prune', pid: process.ppid });
    const err = await lock.refresh().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    expect((err as LockedError).message).toMatch(new RegExp(`^lost the repository lock locks/${lock.id} \\(shared, backup of group a\\): a conflicting lock appeared: repository .* is locked \\(exclusive\\) by prune`));
    expect(lock.signal.reason).toBe(err);
    await lock.release();
    // Released after it was lost, it is removed as long as it is still the one it wrote.
    expect((await readLocks(repo)).map((l) => l.id)).toEqual(['prune']);
  });

  it('--retry-lock: acquire waits for a conflicting lock to go, until its deadline or an interrupt', async () => {
    const prune = await RepositoryLock.acquire(repo, 'exclusive', 'prune');
    const waits: string[] = [];
    try {
      // Released when the backup says it waits: the next poll takes the lock.
      setLockRetry({ forMs: 3_600_000, pollMs: 5, onWait: (m) => {
          waits.push(m);
          void prune.release();
        },
      });
      const backup = await RepositoryLock.acquire(repo, 'shared', 'backup of group a');
      expect(waits).toEqual([expect.stringMatching(/locked \(exclusive\) by prune .*; waiting up to 1h00m for it to go \(--retry-lock\)$/)]);
      expect((await readLocks(repo)).map((l) => l.info?.operation)).toEqual(['backup of group a']);
      // A live lock that stays: refused once the wait is over, naming it and the wait.
      setLockRetry({ forMs: 20, pollMs: 5 });
      const err = await RepositoryLock.acquire(repo, 'exclusive', 'forget').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockedError);
      expect((err as LockedError).message).toMatch(/locked \(shared\) by backup of group a .*; waited 20 ms for it \(--retry-lock\)$/);
      // Ctrl-C while waiting stops the wait (the abort reason), and leaves no lock of its own.
      const stop = new AbortController();
      setLockRetry({ forMs: 3_600_000, pollMs: 3_600_000, signal: stop.signal, onWait: () => stop.abort(new Error('interrupted')) });
      await expect(RepositoryLock.acquire(repo, 'exclusive', 'forget')).rejects.toThrow('interrupted');
      expect((await readLocks(repo)).map((l) => l.info?.operation)).toEqual(['backup of group a']);
      await backup.release();
    } finally {
      setLockRetry({ forMs: 0 });
      await prune.release();
    }
  });

  it('refresh updates `refreshed` and keeps everything else', async () => {
    const lock = await RepositoryLock.acquire(repo, 'shared', 'backup of group a');
    const read = async () => JSON.parse((await getBytes(store, `locks/${lock.id}`)).toString('utf8')) as LockInfo;
    const before = await read();
    await new Promise((r) => setTimeout(r, 15));
    await lock.refresh();
    const after = await read();
    expect(Date.parse(after.refreshed)).toBeGreaterThan(Date.parse(before.refreshed));
    expect({ ...after, refreshed: '' }).toEqual({ ...before, refreshed: '' });
    await lock.release();
  });
});

describe('two concurrent backups of different groups into one repository', () => {
  const CHUNKER = { minSize: 16 * 1024, avgSize: 32 * 1024, maxSize: 64 * 1024 };
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let policy: Policy;
  let groupA: Group;
  let groupB: Group;
  const shared = prng(7)(400 * 1024); // several chunks
  const open: Catalog[] = [];
  const catalog = (name: string): Catalog => {
    const c = Catalog.open(join(dir.path, name), repo.id);
    open.push(c);
    return c;
  };

  beforeEach(async () => {
    dir = tempDir('concurrent');
    const rnd = prng(11);
    const files = (tag: string): Record<string, Buffer | string> => {
      const out: Record<string, Buffer | string> = { 'shared/lake.bin': shared };
      for (let i = 0; i < 40; i++) out[`own/${tag}-${i}.json`] = JSON.stringify({ tag, i, r: rnd(32).toString('hex') });
      return out;
    };
    writeTree(join(dir.path, 'src/lake-a'), files('a'));
    writeTree(join(dir.path, 'src/lake-b'), files('b'));
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { packSize: 128 * 1024, chunker: CHUNKER });
    groupA = { name: 'a', sources: [{ kind: 'path', path: join(dir.path, 'src/lake-a'), prefixes: [''], exclude: [] }] };
    groupB = { name: 'b', sources: [{ kind: 'path', path: join(dir.path, 'src/lake-b'), prefixes: [''], exclude: [] }] };
    policy = testPolicy(repo.location, [groupA, groupB]);
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
    dir.cleanup();
  });

  const backup = (group: Group, cat: Catalog) => backupGroup({ repo, catalog: cat, policy, group, sources: group.sources.map((s) => openSource(s, policy)) });
  const sharedBlobs = (cat: Catalog): string[] => {
    const seq = cat.listRuns().at(-1)!.seq;
    selectState(cat, [{ bucket: 'lake-a', key: 'shared/lake.bin' }], { runSeq: seq });
    return statePage(cat, 0, 10).items[0]!.blobs.map((b) => b.hash.toString('hex'));
  };
  /** How many times each blob id is stored across all packs (read from the index files). */
  const storedCopies = async (): Promise<Map<string, number>> => {
    const copies = new Map<string, number>();
    const seen = new Set<string>();
    for (const name of await repo.listNames('index')) {
      const doc = await repo.readDocument<{ packs: { id: string; blobs: [string][] }[] }>('index', name);
      for (const p of doc.packs) for (const [hex] of p.blobs) if (!seen.has(`${p.id}/${hex}`)) {
        seen.add(`${p.id}/${hex}`);
        copies.set(hex, (copies.get(hex) ?? 0) + 1);
      }
    }
    return copies;
  };

  it('one shared catalog file (two connections, WAL): both succeed, and content already stored is not stored again', async () => {
    const first = catalog('catalog.db');
    const second = catalog('catalog.db');
    // Group a's content is committed first; then a and b run at the same time, b containing the same bytes.
    expect((await backup(groupA, first)).status).toBe('complete');
    writeTree(join(dir.path, 'src/lake-a'), { 'own/new.json': '{"new":true}' });
    const [a, b] = await Promise.all([backup(groupA, first), backup(groupB, second)]);
    expect(a.status).toBe('complete');
    expect(b.status).toBe('complete');
    expect(a.counters.objectsNew).toBe(1);
    expect(b.counters.objectsNew).toBe(41);
    // b stored its 40 own files but none of the shared file's chunks: it found them through the shared catalog.
    expect(b.counters.blobsDeduplicated).toBeGreaterThanOrEqual(sharedBlobs(first).length);
    const copies = await storedCopies();
    for (const hex of sharedBlobs(first)) expect(copies.get(hex)).toBe(1);
    // Both connections see all three runs; everything is restorable.
    expect(second.listRuns().map((r) => `${r.group}:${r.status}`).sort()).toEqual(['a:complete', 'a:complete', 'b:complete']);
    expect((await verify({ repo, catalog: second, readData: 1, concurrency: 4 })).damage).toEqual([]);
  });

  it('one shared catalog file: new identical content in two concurrent runs is catalogued once and stays consistent', async () => {
    const first = catalog('catalog.db');
    const second = catalog('catalog.db');
    const [a, b] = await Promise.all([backup(groupA, first), backup(groupB, second)]);
    expect([a.status, b.status]).toEqual(['complete', 'complete']);
    // Both runs may have read the shared file before either pack was written: then it is stored
    // twice in the repository, but the catalog keeps one location per blob id and both versions use it.
    const blobs = sharedBlobs(first);
    for (const hex of blobs) expect((await storedCopies()).get(hex)).toBeLessThanOrEqual(2);
    selectState(second, [{ bucket: 'lake-b', key: 'shared/lake.bin' }], { runSeq: second.findRun(b.runId)!.seq });
    expect(statePage(second, 0, 10).items[0]!.blobs.map((x) => x.hash.toString('hex'))).toEqual(blobs);
    expect((await verify({ repo, catalog: first, readData: 1, concurrency: 4 })).damage).toEqual([]);
    // A third run of either group stores nothing new.
    expect((await backup(groupB, second)).counters.blobsNew).toBe(0);
  });

  it('two catalog files (two machines): both succeed, but neither deduplicates against the other', async () => {
    const one = catalog('machine-1.db');
    expect((await backup(groupA, one)).status).toBe('complete');
    // Machine 2 starts from a catalog rebuilt from the repository: it knows group a's first run.
    await rebuildCatalog({ repo, catalogPath: join(dir.path, 'machine-2.db') });
    const two = catalog('machine-2.db');
    writeTree(join(dir.path, 'src/lake-a'), { 'own/late.bin': prng(99)(100 * 1024) });
    writeTree(join(dir.path, 'src/lake-b'), { 'own/late.bin': prng(99)(100 * 1024) });
    const [a, b] = await Promise.all([backup(groupA, one), backup(groupB, two)]);
    expect([a.status, b.status]).toEqual(['complete', 'complete']);
    // The shared file was committed before machine 2's rebuild: deduplicated.
    const copies = await storedCopies();
    for (const hex of sharedBlobs(one)) expect(copies.get(hex)).toBe(1);
    // The late file is new to both catalogs at the same time: each machine stores it (two copies),
    // and each catalog has it once, in its own pack.
    selectState(one, [{ bucket: 'lake-a', key: 'own/late.bin' }], { runSeq: one.findRun(a.runId)!.seq });
    const late = statePage(one, 0, 10).items[0]!.blobs;
    selectState(two, [{ bucket: 'lake-b', key: 'own/late.bin' }], { runSeq: two.findRun(b.runId)!.seq });
    const lateTwo = statePage(two, 0, 10).items[0]!.blobs;
    expect(lateTwo.map((x) => x.hash.toString('hex'))).toEqual(late.map((x) => x.hash.toString('hex')));
    for (const x of late) expect(copies.get(x.hash.toString('hex'))).toBe(2);
    expect(late[0]!.pack).not.toBe(lateTwo[0]!.pack);
    // Neither catalog knows the other machine's run; a rebuild from the repository knows both.
    expect(one.findRun(b.runId)).toBeUndefined();
    expect(two.findRun(a.runId)).toBeUndefined();
    for (const c of [one, two]) expect((await verify({ repo, catalog: c, readData: 1, concurrency: 4 })).damage).toEqual([]);
    const rebuilt = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'rebuilt.db') });
    expect(rebuilt.runs).toBe(3);
    expect(rebuilt.missingCount).toBe(0);
  });
});

describe('locks through the CLI', () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const env = { LAKEGUARD_PASSWORD: 'pw-locks', LAKEGUARD_CACHE_DIR: '' };
  const cli = (args: string[]) => runCli(['--policy', policy, ...args], env);

  beforeEach(async () => {
    dir = tempDir('locks-cli');
    env.LAKEGUARD_CACHE_DIR = join(dir.path, 'cache');
    const rnd = prng(3);
    for (const g of ['a', 'b']) {
      const files: Record<string, Buffer> = { 'same.bin': Buffer.alloc(50_000, 7) };
      for (let i = 0; i < 30; i++) files[`f${i}.bin`] = rnd(2000);
      writeTree(join(dir.path, `lake-${g}`), files);
    }
    policy = join(dir.path, 'lakeguard.yaml');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      policy,
      `version: 1
repository:
  url: file://./repo
groups:
  - name: a
    sources:
      - path: ./lake-a
  - name: b
    sources:
      - path: ./lake-b
`,
    );
    expect((await cli(['init'])).code).toBe(0);
  });
  afterEach(() => dir.cleanup());

  const repoDir = () => join(dir.path, 'repo');
  const putLock = async (id: string, info: Partial<LockInfo>) => {
    const now = new Date().toISOString();
    const full: LockInfo = { type: 'exclusive', operation: 'prune', host: hostname(), pid: process.ppid, created: now, refreshed: now, ...info };
    await new FsStore({ root: repoDir(), fsync: false }).put(`locks/${id}`, Buffer.from(JSON.stringify(full)));
  };

  it('a backup blocked by a live exclusive lock exits 11 and says who holds it since when', async () => {
    await putLock('held', { operation: 'prune', pid: process.ppid, created: '2026-11-23T09:00:00.000Z' });
    const r = await cli(['backup']);
    expect(r.code).toBe(11);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe(`lakeguard: repository file://${repoDir()}/ is locked (exclusive) by prune on ${hostname()} pid ${process.ppid} since 2026-11-23T09:00:00.000Z`);
    expect(lines[1]).toMatch(/hint: .*lakeguard unlock/);
  });

  it('--retry-lock waits for a prune to finish, then backs up; a bad duration is exit 2', async () => {
    await putLock('held', { operation: 'prune', pid: process.ppid, created: '2026-11-23T09:00:00.000Z' });
    let removed = false;
    const r = await runCli(['--policy', policy, '--retry-lock', '2h', 'backup', '--group', 'a'], env, {
      onStderr: (stderr) => {
        // The prune ends once the backup says it waits for it.
        if (!removed && stderr.includes('waiting up to 2h00m')) {
          removed = true;
          void new FsStore({ root: repoDir(), fsync: false }).delete('locks/held');
        }
      },
    });
    expect([r.code, removed]).toEqual([0, true]);
    expect(r.stderr).toMatch(/locked \(exclusive\) by prune on .*; waiting up to 2h00m for it to go \(--retry-lock\)/);
    const bad = await cli(['--retry-lock', '90', 'backup']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--retry-lock "90": expected a duration up to 24h such as 30m, 2h or 90s/);
    expect((await runCli(['--policy', policy, 'backup'], { ...env, LAKEGUARD_RETRY_LOCK: '3d' })).stderr).toMatch(/LAKEGUARD_RETRY_LOCK "3d": expected a duration up to 24h/);
  });

  it('restore and verify take a shared lock: refused (exit 11) while prune holds the exclusive one; --no-lock reads anyway, with a warning', async () => {
    expect((await cli(['backup', '--group', 'a'])).code).toBe(0);
    await putLock('held', { operation: 'prune', pid: process.ppid, created: '2026-11-23T09:00:00.000Z' });
    const locked = `lakeguard: repository file://${repoDir()}/ is locked (exclusive) by prune on ${hostname()} pid ${process.ppid} since 2026-11-23T09:00:00.000Z`;
    const restore = await cli(['restore', '--to-dir', join(dir.path, 'out')]);
    expect(restore.code, restore.stderr).toBe(11);
    expect(restore.stderr.split('\n')[0]).toBe(locked);
    const check = await cli(['verify']);
    expect(check.code, check.stderr).toBe(11);
    expect(check.stderr.split('\n')[0]).toBe(locked);
    const unlocked = await cli(['restore', '--no-lock', '--to-dir', join(dir.path, 'out')]);
    expect(unlocked.code, unlocked.stderr).toBe(0);
    expect(unlocked.stderr).toMatch(/^warning: --no-lock: restore takes no repository lock; a prune running meanwhile could delete packs it reads/m);
    // The restore left no lock of its own behind (nor took one).
    expect((await new FsStore({ root: repoDir(), fsync: false }).list('locks/').next()).value).toMatchObject({ key: 'locks/held' });
  });

  it('unlock removes stale locks and prints each; --remove-all removes live ones with a warning', async () => {
    const pid = await deadPid();
    await putLock('dead', { pid, created: '2026-11-23T08:00:00.000Z' });
    await putLock('live', { type: 'shared', operation: 'backup of group a', pid: process.ppid });
    const r = await cli(['unlock']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`removed stale lock dead: exclusive lock by prune on ${hostname()} pid ${pid} since 2026-11-23T08:00:00.000Z`);
    expect(r.stdout).toContain(`process ${pid} is gone on this host`);
    expect(r.stdout).toMatch(/kept active lock live: shared lock by backup of group a/);
    const all = await cli(['unlock', '--remove-all']);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/removed ACTIVE lock live/);
    expect(all.stderr).toMatch(/warning: --remove-all removed 1 lock that looked active/);
    expect((await cli(['unlock'])).stdout.trim()).toBe('no locks');
    const json = await cli(['unlock', '--json']);
    expect(JSON.parse(json.stdout.trim())).toEqual({ message_type: 'summary', removed: [], kept: [] });
  });

  it('two backup processes of different groups share one catalog file and both succeed', async () => {
    const [a, b] = await Promise.all([cli(['backup', '--group', 'a']), cli(['backup', '--group', 'b'])]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const runs = messagesOf(await cli(['runs', '--json']), 'run');
    expect(runs.map((r) => `${r.group}:${r.status}`).sort()).toEqual(['a:complete', 'b:complete']);
    const check = await cli(['verify', '--read-data']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    // No lock is left behind.
    expect((await cli(['unlock'])).stdout.trim()).toBe('no locks');
  });
});
