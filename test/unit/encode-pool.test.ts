// The encode pool (issue 22): new blobs compressed and sealed on worker threads. What a backup
// stores and records must not depend on the number of threads.
import { readdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { threadsSetting } from '../../src/commands/backup.js';
import { backupGroup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { chunkViews } from '../../src/repository/chunker.js';
import { blobEncoder } from '../../src/repository/encode-pool.js';
import { BlobType } from '../../src/repository/pack.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { hashTree, initRepo, openCatalog, prng, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';

const SMALL_CHUNKER = { minSize: 16 * 1024, avgSize: 64 * 1024, maxSize: 256 * 1024 };

describe('encode pool', () => {
  let dir: ReturnType<typeof tempDir>;
  const catalogs: Catalog[] = [];
  const repos = new Map<string, Repository>();

  beforeEach(() => {
    dir = tempDir('encode-pool');
    const rnd = prng(22);
    const files: Record<string, Buffer | string> = {};
    for (let i = 0; i < 120; i++) files[`t/json/${i}.json`] = `{"id":${i},"v":"${'x'.repeat(i * 37)}"}\n`.repeat(1 + (i % 9));
    for (let i = 0; i < 30; i++) files[`t/bin/${i}.bin`] = rnd(1000 + i * 700);
    // Many chunks of one object: encoded on several threads at once, stored in content order.
    files['big/log.txt'] = Array.from({ length: 40_000 }, (_, i) => `line ${i} ${i % 7 === 0 ? rnd(8).toString('hex') : 'ok'}\n`).join('');
    files['big/dup.txt'] = files['t/json/5.json']!;
    writeTree(join(dir.path, 'lake'), files);
  });
  afterEach(() => {
    for (const c of catalogs.splice(0)) c.close();
    repos.clear();
    dir.cleanup();
  });

  /**
   * A seed of the lake with `threads` encode threads, into the repository in `repoName` (created
   * if new) with a catalog of its own (a fresh host: nothing dedups against the other seed); the
   * data blobs of the packs it wrote, as stored, and a restore of it.
   */
  async function seed(name: string, repoName: string, threads: number, password: string | null) {
    const store = new FsStore({ root: join(dir.path, repoName), fsync: false });
    const repo = repos.get(repoName) ?? (await initRepo(store, { password, packSize: 128 * 1024, chunker: SMALL_CHUNKER }));
    repos.set(repoName, repo);
    const catalog = openCatalog(join(dir.path, name), repo);
    catalogs.push(catalog);
    const before = new Set<string>();
    for await (const p of repo.listPacks()) if ('id' in p) before.add(p.id);
    const summary = await backupLake(repo, catalog, threads);
    expect(summary.status).toBe('complete');
    const blobs = await dataBlobs(repo, before);
    const target = join(dir.path, name, 'restored');
    const restored = await restore({ repo, catalog, scopes: [{ bucket: 'lake' }], cut: { runSeq: catalog.latestRun({ statuses: ['complete'] })!.seq }, target: new FsStore({ root: target, fsync: false }), bucketDirs: false, concurrency: 8 });
    expect(restored.failed).toBe(0);
    return { repo, catalog, summary, blobs, tree: hashTree(target) };
  }

  async function backupLake(repo: Repository, catalog: Catalog, threads: number) {
    const group = { name: 'lake', sources: [{ kind: 'path' as const, path: join(dir.path, 'lake'), prefixes: [''], exclude: [] }] };
    return backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, encodeThreads: threads, encodeInThreadBytes: 0 });
  }

  /** Every data blob of the repository's packs but those of `except`: id (hex) -> its stored bytes and whether compressed. */
  async function dataBlobs(repo: Repository, except: Set<string>): Promise<Map<string, { stored: string; compressed: boolean }>> {
    const out = new Map<string, { stored: string; compressed: boolean }>();
    for await (const p of repo.listPacks()) {
      if (!('id' in p) || except.has(p.id)) continue;
      const { entries, blobArea } = repo.readPackHeader(await repo.readPack(p.id), p.id);
      for (const e of entries) {
        if (e.type !== BlobType.data) continue;
        out.set(e.id.toString('hex'), { stored: blobArea.subarray(e.offset, e.offset + e.length).toString('base64'), compressed: e.compressed });
      }
    }
    return out;
  }

  it('stores the same blobs, byte for byte, with one thread and with two (unencrypted)', async () => {
    const one = await seed('one', 'repo-one', 1, null);
    const two = await seed('two', 'repo-two', 2, null);
    expect(blobEncoder(two.repo, 2).threads).toBe(2);
    expect(two.summary.counters.objectsNew).toBe(one.summary.counters.objectsNew);
    expect(two.summary.counters.blobsDeduplicated).toBe(one.summary.counters.blobsDeduplicated);
    expect(one.blobs.size).toBeGreaterThan(150);
    // Same ids, same compression, same stored bytes: only the packing order may differ.
    expect(new Map([...two.blobs].sort())).toEqual(new Map([...one.blobs].sort()));
    expect(two.tree).toEqual(hashTree(join(dir.path, 'lake')));
    expect(one.tree).toEqual(two.tree);
  });

  it('stores the same blobs whether a file is encoded whole on a thread or streamed chunk by chunk (encrypted)', async () => {
    // Whole-object jobs (the thread chunks, identifies, encodes) against chunk jobs (this thread
    // chunks and identifies): files streamed as if they grew past the whole-object limit.
    const whole = await seed('whole', 'repo', 2, 'pw');
    const spy = vi.spyOn(FsStore.prototype, 'getBytes').mockResolvedValue(null);
    try {
      const streamed = await seed('streamed', 'repo', 2, 'pw');
      expect(spy).toHaveBeenCalled();
      expect(whole.blobs.size).toBeGreaterThan(150);
      expect([...streamed.blobs.keys()].sort()).toEqual([...whole.blobs.keys()].sort());
      expect(streamed.summary.counters.blobsDeduplicated).toBe(whole.summary.counters.blobsDeduplicated);
      expect(streamed.tree).toEqual(whole.tree);
    } finally {
      spy.mockRestore();
    }
  });

  it('identifies the chunks of a changed file in this thread, so what is stored already is not encoded again', async () => {
    const one = await seed('one', 'repo', 2, 'pw');
    const files = listFiles(join(dir.path, 'lake'));
    const later = new Date(Date.now() + 60_000);
    for (const f of files) utimesSync(f, later, later);
    const blobId = vi.spyOn(one.repo, 'blobId');
    const again = await backupLake(one.repo, one.catalog, 2);
    expect(again.counters.objectsChanged).toBe(files.length);
    // Every data chunk hashed here (dedup before encoding), not chunked and encoded on a thread.
    expect(blobId.mock.calls.length).toBeGreaterThanOrEqual(one.blobs.size);
    expect(again.counters.blobsDeduplicated).toBeGreaterThanOrEqual(one.blobs.size);
  });

  it('records the same blob ids and restores the same bytes when encrypted', async () => {
    // One repository (blob ids are keyed by its master keys), two hosts that know nothing of each other.
    const one = await seed('one', 'repo', 1, 'pw');
    const two = await seed('two', 'repo', 2, 'pw');
    expect(one.blobs.size).toBeGreaterThan(150);
    expect([...two.blobs.keys()].sort()).toEqual([...one.blobs.keys()].sort());
    expect([...two.blobs.values()].map((b) => b.compressed).filter(Boolean).length).toBe([...one.blobs.values()].map((b) => b.compressed).filter(Boolean).length);
    expect(two.tree).toEqual(hashTree(join(dir.path, 'lake')));
  });

  it('decodes what the threads encode, and fails loudly when a thread cannot encode', async () => {
    const repo = await initRepo(new FsStore({ root: join(dir.path, 'r'), fsync: false }));
    const encoder = blobEncoder(repo, 2, 0);
    try {
      const raws = Array.from({ length: 50 }, (_, i) => Buffer.from(`blob ${i} `.repeat(i * 50 + 1)));
      const blobs = await Promise.all(raws.map((raw) => encoder.encode(raw, BlobType.data, repo.blobId(raw))));
      blobs.forEach((b, i) => expect(repo.decodeBlob(b.stored, b, 'test').equals(raws[i]!)).toBe(true));
      // A whole object: chunked on the thread at the repository's boundaries, each blob under its id.
      const object = Buffer.concat(raws);
      const copy = Buffer.from(object);
      const objectBlobs = await encoder.encodeObject(copy, BlobType.data)!;
      expect(copy.length).toBe(0); // moved to the thread, not copied
      expect(objectBlobs.map((b) => b.id.toString('hex'))).toEqual(chunkViews(object, repo.chunker).map((c) => repo.blobId(c).toString('hex')));
      expect(Buffer.concat(objectBlobs.map((b) => repo.decodeBlob(b.stored, b, 'test'))).equals(object)).toBe(true);
    } finally {
      await encoder.close();
    }
    // A level zstd refuses: the thread's error reaches the caller, no blob is made up.
    const broken = Object.assign(Object.create(repo) as Repository, { encodeSettings: () => ({ ...repo.encodeSettings(), level: 1000 }) });
    const failing = blobEncoder(broken, 2, 0);
    try {
      await expect(failing.encode(Buffer.from('x'.repeat(100)), BlobType.data, repo.blobId(Buffer.from('x')))).rejects.toThrow(/zstd level/);
      await expect(failing.encodeObject(Buffer.from('y'.repeat(100_000)), BlobType.data)).rejects.toThrow(/an encode thread failed on an object of 100000 bytes: .*zstd level/);
    } finally {
      await failing.close();
    }
  });

  it('reads LAKEGUARD_THREADS', () => {
    expect(threadsSetting({})).toBeUndefined();
    expect(threadsSetting({ LAKEGUARD_THREADS: '1' })).toBe(1);
    expect(threadsSetting({ LAKEGUARD_THREADS: ' 4 ' })).toBe(4);
    expect(threadsSetting({ LAKEGUARD_THREADS: 'auto' })).toBeGreaterThanOrEqual(1);
    for (const bad of ['0', '-1', '1.5', 'two', '65']) expect(() => threadsSetting({ LAKEGUARD_THREADS: bad })).toThrow(/LAKEGUARD_THREADS/);
  });
});

/** Every file under `root`. */
function listFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}
