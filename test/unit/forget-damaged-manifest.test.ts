// forget on a host whose catalog could not import a run manifest (it fails authentication:
// damaged, or tampered with by someone who can write the repository but has no password). The
// sync leaves the run out with a warning; retention decided without it would drop versions the
// run needs, and once the manifest is put back from a copy, that run would restore without them.
// forget refuses instead, as prune does.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { forget } from '../../src/engine/forget.js';
import { rebuildCatalog } from '../../src/engine/rebuild.js';
import { restore } from '../../src/engine/restore.js';
import { syncCatalog } from '../../src/engine/sync.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { IntegrityError, LakeguardError } from '../../src/errors.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import type { RunManifest } from '../../src/engine/finalize.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { hashTree, initRepo, keysUnder, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';

describe('forget with a run manifest that fails authentication', () => {
  let dir: ReturnType<typeof tempDir>;
  let store: FsStore;
  let repo: Repository;
  let bucket: MemStore;
  const catalogs: Catalog[] = [];

  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.UTC(2026, 11, 1, 0, 0, 0));
    dir = tempDir('forget-damaged');
    store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store);
    bucket = new MemStore({ versioning: true, name: 'lake' });
  });
  afterEach(() => {
    for (const c of catalogs.splice(0)) c.close();
    vi.useRealTimers();
    dir.cleanup();
  });

  const host = (name: string): Catalog => {
    const c = openCatalog(join(dir.path, name), repo);
    catalogs.push(c);
    return c;
  };
  const group: Group = { name: 'g', sources: [], retention: { keepWithin: '12h' } };
  const policy = testPolicy('file:///x', [{ ...group, sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }] }]);
  const source = (): OpenedSource => ({ bucket: 'lake', objectStore: bucket, prefixes: [''], isExcluded: () => false });
  const backupAt = async (catalog: Catalog, hours: number): Promise<string> => {
    vi.setSystemTime(Date.UTC(2026, 11, 1, hours, 0, 0));
    return (await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source()] })).runId;
  };
  const restoreRun = async (catalog: Catalog, runId: string, name: string): Promise<Record<string, string>> => {
    const target = join(dir.path, name);
    await restore({ repo, catalog, scopes: [{ bucket: 'lake' }], cut: { runSeq: catalog.findRun(runId)!.seq }, target: new FsStore({ root: target, fsync: false }), bucketDirs: false, concurrency: 4 });
    return Object.fromEntries(hashTree(target));
  };

  it('refuses, naming the manifest, and changes nothing; the run it could not read keeps what it needs', async () => {
    const one = host('host-1');
    await bucket.put('a.txt', Buffer.from('a1'));
    await bucket.put('b.txt', Buffer.from('b1'));
    await backupAt(one, 0);
    await bucket.put('a.txt', Buffer.from('a2'));
    const middle = await backupAt(one, 13);
    await bucket.delete('b.txt');
    await backupAt(one, 14);
    const expected = await restoreRun(one, middle, 'expected');
    expect(Object.keys(expected).sort()).toEqual(['a.txt', 'b.txt']);

    // keep_within 12h of the newest run keeps the middle run (which needs b1) and not the first.
    // Someone flips one byte of the middle run's manifest: another host's sync leaves it out.
    const path = join(dir.path, 'repo', 'runs', middle);
    const good = readFileSync(path);
    const bad = Buffer.from(good);
    bad[bad.length - 1]! ^= 1;
    writeFileSync(path, bad);
    const two = host('host-2');
    const warnings: string[] = [];
    await syncCatalog({ repo, catalog: two, events: (e) => e.type === 'warning' && warnings.push(e.message) });
    expect(warnings.some((w) => w.includes(`runs/${middle}`))).toBe(true);
    expect(two.findRun(middle)).toBeUndefined();

    for (const dryRun of [true, false]) {
      const refused = await forget(repo, two, policy, { dryRun }).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(IntegrityError);
      expect((refused as Error).message).toMatch(new RegExp(`runs/${middle}: failed authentication .*; the catalog cannot import it, so forget cannot tell which versions its run needs$`));
    }
    expect(await keysUnder(store, 'forgets/')).toEqual([]);

    // The manifest is put back from a copy: the run restores as it did.
    writeFileSync(path, good);
    const three = host('host-3');
    await syncCatalog({ repo, catalog: three });
    expect(await restoreRun(three, middle, 'after')).toEqual(expected);
  });

  it('refuses a catalog imported without part of a run (an index file damaged): the manifest it would delete is the only record of versions kept runs need', async () => {
    const one = host('host-1');
    for (const k of ['a', 'b', 'c']) await bucket.put(`${k}.txt`, Buffer.from(`${k}1`));
    const first = await backupAt(one, 0);
    await bucket.put('a.txt', Buffer.from('a2'));
    const second = await backupAt(one, 1);
    const expected = await restoreRun(one, second, 'expected');
    expect(Object.keys(expected).sort()).toEqual(['a.txt', 'b.txt', 'c.txt']);

    // One byte of each index file of the first run flipped: a whole sync on another host cannot
    // locate that run's record blob, and says the run is incomplete in its catalog.
    const { indexes } = await repo.readDocument<RunManifest>('runs', first);
    const good = new Map(indexes.map((name) => [name, readFileSync(join(dir.path, 'repo', 'index', name))]));
    for (const [name, bytes] of good) {
      const bad = Buffer.from(bytes);
      bad[bad.length - 1]! ^= 1;
      writeFileSync(join(dir.path, 'repo', 'index', name), bad);
    }
    const two = host('host-2');
    await syncCatalog({ repo, catalog: two, events: () => {} });
    const lastOnly = { ...policy, groups: [{ ...policy.groups[0]!, retention: { keepLast: 1 } }] };
    for (const dryRun of [true, false]) {
      const refused = await forget(repo, two, lastOnly, { dryRun }).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(LakeguardError);
      expect((refused as Error).message).toMatch(new RegExp(`was imported without part of run ${first}; forget would delete manifests that hold versions it does not know$`));
    }
    expect(await keysUnder(store, 'forgets/')).toEqual([]);
    expect(await keysUnder(store, 'runs/')).toEqual([`runs/${first}`, `runs/${second}`]);

    // Put back from a copy, the index files make a rebuilt catalog whole: b1 and c1 are still there.
    for (const [name, bytes] of good) writeFileSync(join(dir.path, 'repo', 'index', name), bytes);
    const rebuilt = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'rebuilt', 'catalog.db') });
    expect(rebuilt.damage).toEqual([]);
    const three = host('rebuilt');
    expect(await restoreRun(three, second, 'after')).toEqual(expected);
  });
});

