import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { verify } from '../../src/engine/verify.js';
import { WrongPasswordError } from '../../src/errors.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { hashTree, initRepo, openCatalog, prng, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';
import { blobsOfPack, referencedPacks } from '../../src/catalog/verify-queries.js';

const SMALL_CHUNKER = { minSize: 16 * 1024, avgSize: 64 * 1024, maxSize: 256 * 1024 };

describe('backup → restore → verify on the filesystem store', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoStore: FsStore;
  let repo: Repository;
  let catalog: Catalog;
  let policy: Policy;
  let group: Group;

  beforeEach(async () => {
    dir = tempDir('engine');
    source = join(dir.path, 'lake');
    const rnd = prng(42);
    const files: Record<string, Buffer | string> = {};
    for (let i = 0; i < 300; i++) {
      const table = `table=t${i % 3}`;
      files[`${table}/dt=2026-11-${String((i % 7) + 1).padStart(2, '0')}/part-${String(i).padStart(5, '0')}.json`] =
        JSON.stringify({ id: i, payload: rnd(64).toString('hex'), note: 'x'.repeat(i % 97) }) + '\n';
    }
    files['raw/big.bin'] = rnd(3 * 1024 * 1024 + 123);
    files['raw/empty'] = '';
    files['ünïcødé/日本語/ключ 🦆.txt'] = 'unicode key';
    files['dup/a.txt'] = 'the same bytes under two keys\n'.repeat(100);
    files['dup/b.txt'] = 'the same bytes under two keys\n'.repeat(100);
    writeTree(source, files);

    repoStore = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(repoStore, { packSize: 256 * 1024, chunker: SMALL_CHUNKER });
    catalog = openCatalog(dir.path, repo);
    group = { name: 'lake', sources: [{ kind: 'path', path: source, prefixes: [''], exclude: ['**/*.crc'] }] };
    policy = testPolicy(repoStore.location, [group]);
  });

  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  const backup = () => backupGroup({ repo, catalog, policy, group });
  const restoreTo = async (name: string, runSeq?: number) => {
    const target = join(dir.path, name);
    const run = runSeq ?? catalog.latestRun({ statuses: ['complete'] })!.seq;
    const summary = await restore({
      repo,
      catalog,
      scopes: [{ bucket: 'lake' }],
      cut: { runSeq: run },
      target: new FsStore({ root: target, fsync: false }),
      bucketDirs: false,
      concurrency: 8,
    });
    return { target, summary };
  };

  it('restores every file byte-identical, packing small files together', async () => {
    const first = await backup();
    expect(first.status).toBe('complete');
    expect(first.counters.objectsNew).toBe(305);
    // 305 objects, a few hundred KiB of compressible JSON and one 3 MiB file: a handful of packs.
    expect(first.counters.packsWritten).toBeGreaterThan(1);
    expect(first.counters.packsWritten).toBeLessThan(40);
    expect(first.counters.blobsDeduplicated).toBeGreaterThanOrEqual(1);
    const { target, summary } = await restoreTo('out');
    expect(summary.failed).toBe(0);
    expect(summary.restored).toBe(305);
    expect(hashTree(target)).toEqual(hashTree(source));
  });

  it('an unchanged second run writes no pack; changes, additions and deletions are picked up', async () => {
    const first = await backup();
    const before = hashTree(source);
    const second = await backup();
    expect(second.counters.objectsUnchanged).toBe(305);
    expect(second.counters.packsWritten).toBe(0);
    expect(second.counters.bytesRead).toBe(0);

    writeFileSync(join(source, 'table=t0/dt=2026-11-01/part-00000.json'), '{"changed":true}\n');
    writeFileSync(join(source, 'raw/new.txt'), 'a new file\n');
    rmSync(join(source, 'dup/a.txt'));
    const third = await backup();
    expect(third.counters).toMatchObject({ objectsNew: 1, objectsChanged: 1, objectsDeleted: 1, objectsUnchanged: 303 });
    expect(third.counters.blobsNew).toBe(2); // only the two new contents are stored

    const latest = await restoreTo('latest');
    expect(hashTree(latest.target)).toEqual(hashTree(source));
    // The first run's state is still there, deleted and overwritten files included.
    const old = await restoreTo('old', catalog.findRun(first.runId)!.seq);
    expect(hashTree(old.target)).toEqual(before);
  });

  it('restores one key and one prefix', async () => {
    await backup();
    const run = catalog.latestRun({ statuses: ['complete'] })!.seq;
    const target = new FsStore({ root: join(dir.path, 'one'), fsync: false });
    await restore({ repo, catalog, scopes: [{ bucket: 'lake', key: 'raw/big.bin' }], cut: { runSeq: run }, target, bucketDirs: false, concurrency: 4 });
    expect(readdirSync(join(dir.path, 'one'))).toEqual(['raw']);
    expect(readFileSync(join(dir.path, 'one/raw/big.bin')).equals(readFileSync(join(source, 'raw/big.bin')))).toBe(true);

    const prefixTarget = new FsStore({ root: join(dir.path, 'prefix'), fsync: false });
    const s = await restore({ repo, catalog, scopes: [{ bucket: 'lake', prefix: 'table=t1/' }], cut: { runSeq: run }, target: prefixTarget, bucketDirs: false, concurrency: 4 });
    expect(s.restored).toBe(100);
  });

  it('verify finds nothing wrong, then names the objects in a corrupted pack', async () => {
    await backup();
    const clean = await verify({ repo, catalog, readData: 1, concurrency: 4 });
    expect(clean.damage).toEqual([]);
    expect(clean.packsRead).toBeGreaterThan(0);

    const name = referencedPacks(catalog)[0]!.name;
    const firstBlob = blobsOfPack(catalog, name)[0]!;
    const path = join(dir.path, 'repo', 'packs', name.slice(0, 2), name);
    const bytes = readFileSync(path);
    bytes[firstBlob.offset + 5]! ^= 0x01;
    writeFileSync(path, bytes);

    const structural = await verify({ repo, catalog, readData: 0, concurrency: 4 });
    expect(structural.damage).toEqual([]); // size and presence are fine: only reading finds it
    const report = await verify({ repo, catalog, readData: 1, concurrency: 4 });
    expect(report.damage).toHaveLength(1);
    expect(report.damage[0]!.what).toBe(`pack ${name}`);
    expect(report.damage[0]!.affected.length).toBeGreaterThanOrEqual(1);
    expect(report.damage[0]!.affected[0]!.bucket).toBe('lake');

    // Restore of everything else still works; the damaged objects fail loudly, by name.
    const { summary } = await restoreTo('after-damage');
    expect(summary.failed).toBeGreaterThanOrEqual(1);
    expect(summary.failures[0]!.message).toMatch(/cannot restore lake\//);
    expect(summary.restored + summary.failed).toBe(305);
  });

  it('verify names a truncated pack and a corrupted index file', async () => {
    await backup();
    const name = referencedPacks(catalog)[0]!.name;
    const packPath = join(dir.path, 'repo', 'packs', name.slice(0, 2), name);
    writeFileSync(packPath, readFileSync(packPath).subarray(0, 1000));
    const indexName = readdirSync(join(dir.path, 'repo', 'index'))[0]!;
    const indexPath = join(dir.path, 'repo', 'index', indexName);
    const index = readFileSync(indexPath);
    index[Math.floor(index.length / 2)]! ^= 0x80;
    writeFileSync(indexPath, index);

    const report = await verify({ repo, catalog, readData: 1, concurrency: 4 });
    const what = report.damage.map((d) => d.what);
    expect(what).toContain(`pack ${name}`);
    expect(what).toContain(`index/${indexName}`);
    const packDamage = report.damage.find((d) => d.what === `pack ${name}`)!;
    // The pack's size as an intact index file gives it, when the corrupted one is not its only one (runs write index files every 8 packs).
    expect(packDamage.problem).toMatch(/size is 1000 bytes, (index\/\S+ recorded \d+, )?the catalog recorded \d+/);
    expect(packDamage.affected.length).toBeGreaterThan(0);
    expect(report.damage.find((d) => d.what === `index/${indexName}`)!.problem).toMatch(/failed authentication/);
  });

  it('verify names a truncated index file, and the blobs it leaves unindexed', async () => {
    await backup();
    const indexName = readdirSync(join(dir.path, 'repo', 'index'))[0]!;
    const indexPath = join(dir.path, 'repo', 'index', indexName);
    writeFileSync(indexPath, readFileSync(indexPath).subarray(0, 40));
    const report = await verify({ repo, catalog, readData: 0, concurrency: 4 });
    expect(report.damage.find((d) => d.what === `index/${indexName}`)!.problem).toMatch(/failed authentication/);
    expect(report.damage.find((d) => d.what === `index/${indexName}`)!.problem).toMatch(/blobs catalogued versions need are in no other index file/);
    expect(report.damage.find((d) => d.what === `index/${indexName}`)!.affectedCount).toBeGreaterThan(0);
  });

  it('verify: blobs of a lost index file get a new one from the next backup, as the damage says', async () => {
    await backup();
    for (const name of readdirSync(join(dir.path, 'repo', 'index'))) rmSync(join(dir.path, 'repo', 'index', name));
    const damaged = await verify({ repo, catalog, readData: 0, concurrency: 4 });
    const problem = damaged.damage.map((d) => d.problem).join('; ');
    expect(problem).toMatch(/blobs it listed are in no other index file; .*the next backup or prune writes them into a new index file/);
    await backup(); // nothing changed in the source
    const repaired = await verify({ repo, catalog, readData: 1, concurrency: 4 });
    expect(repaired.damage).toEqual([]);
    expect(readdirSync(join(dir.path, 'repo', 'index')).length).toBeGreaterThan(0);
  });

  it('refuses a wrong password and an altered config', async () => {
    await expect(Repository.open(repoStore, { password: async () => 'not the password' })).rejects.toBeInstanceOf(WrongPasswordError);
    const configPath = join(dir.path, 'repo', 'config');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    config.pack.targetSize = 1;
    writeFileSync(configPath, JSON.stringify(config));
    await expect(Repository.open(repoStore, { password: async () => 'test-password' })).rejects.toThrow(/was altered/);
  });

  it('stores nothing in a dry run', async () => {
    const dry = await backupGroup({ repo, catalog, policy, group, dryRun: true });
    expect(dry.counters.objectsNew).toBe(305);
    expect(dry.counters.requests.get).toBe(0);
    expect(catalog.listRuns()).toEqual([]);
    expect(readdirSync(join(dir.path, 'repo'))).not.toContain('packs');
    expect(readdirSync(join(dir.path, 'repo'))).not.toContain('runs');
  });
});
