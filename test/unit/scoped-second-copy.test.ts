// Second copies of a blob: two backups that run at once (two hosts, two groups, the shards of a
// run set) can each store the same content, and each run's record lines locate the copy it
// stored. Prune keeps one copy (the one its catalog locates) and drops the other with its pack;
// every other catalog, whole or scoped, synced before the prune or after, must then find the
// kept copy, never report the content lost, and restore it. And when the located copy is lost,
// prune must not delete the other one.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { blobLocationOf } from '../../src/catalog/version-records.js';
import { backupGroup } from '../../src/engine/backup.js';
import { prune } from '../../src/engine/prune.js';
import { restore } from '../../src/engine/restore.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { rebuildCatalog } from '../../src/engine/rebuild.js';
import { verify } from '../../src/engine/verify.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { packKey } from '../../src/repository/pack.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { initRepo, tempDir, testPolicy } from '../helpers/fixtures.js';

const lakeSource = (store: MemStore): OpenedSource => ({ bucket: 'lake', objectStore: store, prefixes: [''], isExcluded: compileExcludes([]) });
const DAY2 = { bucket: 'lake', prefix: 'dt=02/' };
const SAME = Buffer.from(JSON.stringify({ schema: 'events', columns: ['a', 'b', 'c'] }).repeat(40));

describe('a second copy of a blob dropped by prune', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let policy: Policy;
  let group: Group;
  let catalogs: Catalog[];
  const open = (name: string): Catalog => {
    const c = Catalog.open(join(dir.path, `${name}.db`), repo.id);
    catalogs.push(c);
    return c;
  };
  const backup = (catalog: Catalog, lake: MemStore) => backupGroup({ repo, catalog, policy, group, sources: [lakeSource(lake)] });
  /** Where a catalog locates the shared content. */
  const where = (c: Catalog) => blobLocationOf(c, contentIdOf(SAME))?.[0];
  let contentIdOf: (b: Buffer) => Buffer;

  beforeEach(async () => {
    dir = tempDir('second-copy');
    catalogs = [];
    const store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store, { packSize: 64 * 1024 });
    contentIdOf = (b) => repo.blobId(b);
    group = { name: 'lake', sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }], retention: { keepLast: 10 } };
    policy = testPolicy(store.location, [group]);
  });
  afterEach(() => {
    for (const c of catalogs) c.close();
    dir.cleanup();
  });

  /**
   * Host A backs up day 1; host C, whose catalog has not seen A's run (as when both run at once),
   * backs up day 2, whose schema file has the same bytes: C stores them again, in its own pack.
   */
  async function twoCopies(): Promise<{ a: Catalog; c: Catalog; copyOfA: string; copyOfC: string }> {
    const a = open('a');
    const c = open('c');
    const day1 = new MemStore({ name: 'lake' });
    await day1.put('dt=01/_schema.json', SAME);
    await day1.put('dt=01/part-0.json', Buffer.from('{"day":1}'));
    await backup(a, day1);
    const day2 = new MemStore({ name: 'lake' });
    await day2.put('dt=02/_schema.json', SAME);
    await day2.put('dt=02/part-0.json', Buffer.from('{"day":2}'));
    await backup(c, day2);
    const copyOfA = where(a)!;
    const copyOfC = where(c)!;
    expect(copyOfC).not.toBe(copyOfA);
    await syncCatalog({ repo, catalog: a });
    expect(where(a)).toBe(copyOfA); // the first location it learned stays
    return { a, c, copyOfA, copyOfC };
  }

  async function restoresDay2(catalog: Catalog): Promise<void> {
    const target = new MemStore({ name: 'restored' });
    const r = await restore({ repo, catalog, scopes: [DAY2], cut: { runSeq: catalog.latestRun({ statuses: ['complete'] })!.seq }, target, bucketDirs: false, concurrency: 2 });
    expect(r.failures).toEqual([]);
    const chunks: Buffer[] = [];
    for await (const chunk of (await target.get('dt=02/_schema.json')).body) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(SAME)).toBe(true);
  }

  it('prune deletes the copy only C located; C, a scoped catalog synced before, and one synced after all find the kept copy', async () => {
    const { a, c, copyOfA, copyOfC } = await twoCopies();
    const before = open('b-before');
    await syncCatalog({ repo, catalog: before, widen: [DAY2] });
    expect(where(before)).toBe(copyOfC); // from C's record lines

    const pruned = await prune({ repo, catalog: a, maxUnused: 0 });
    expect(pruned.damaged).toEqual([]);
    expect(existsSync(join(dir.path, 'repo', packKey(copyOfC)))).toBe(false);

    const after = open('b-after');
    for (const catalog of [c, before, after]) {
      const report = await syncCatalog({ repo, catalog, ...(catalog === after ? { widen: [DAY2] } : {}) });
      expect(report.damage).toEqual([]);
      expect(where(catalog)).toBe(copyOfA);
      await restoresDay2(catalog);
    }
    for (const catalog of [a, c]) expect((await verify({ repo, catalog, readData: 1, concurrency: 2 })).damage).toEqual([]);
  });

  it('when the copy the catalog locates is lost, prune keeps the pack with the other copy whole, and a rebuild restores from it', async () => {
    const { a, copyOfA, copyOfC } = await twoCopies();
    rmSync(join(dir.path, 'repo', packKey(copyOfA))); // lost (a bad lifecycle rule, a hand-deleted object)
    const warnings: string[] = [];
    const pruned = await prune({ repo, catalog: a, maxUnused: 0, events: (e) => void (e.type === 'warning' && warnings.push(e.message)) });
    expect(pruned.missing).toEqual([copyOfA]);
    expect(warnings).toContain(`pack ${copyOfC} holds another copy of 1 blobs of missing packs: kept whole; \`lakeguard catalog rebuild\` locates them there`);
    expect(existsSync(join(dir.path, 'repo', packKey(copyOfC)))).toBe(true);

    const rebuilt = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'rebuilt.db'), acceptDamage: true });
    // Day 1's own file was only in the lost pack; the shared content is not counted lost.
    expect(rebuilt.damage).toEqual([{ what: `pack ${copyOfA}`, problem: expect.stringContaining('1 blobs are in no other pack, and 1 object versions need them') as string }]);
    const r = open('rebuilt');
    expect(where(r)).toBe(copyOfC);
    await restoresDay2(r);
  });
});
