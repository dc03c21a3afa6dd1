// Prune in an Object Lock repository when what it drops is still retained: an index file it
// replaced and a pack it emptied stay in the repository. They must not be planned again on every
// prune (each time relisting the kept packs in yet another index file and writing another prune
// document, all retained and extended by `lock extend` for ever), and must go once free.
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { sqlite } from '../../src/catalog/connection.js';
import { LockDates } from '../../src/catalog/lock-dates.js';
import { backupGroup } from '../../src/engine/backup.js';
import { forget } from '../../src/engine/forget.js';
import { extendRetention } from '../../src/engine/lock-extend.js';
import { prune } from '../../src/engine/prune.js';
import { syncCatalog } from '../../src/engine/sync.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import type { Group } from '../../src/policy/types.js';
import { DAY_MS } from '../../src/repository/object-lock.js';
import { Repository } from '../../src/repository/repository.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { openCatalog, tempDir, TEST_KDF, testPolicy } from '../helpers/fixtures.js';

it('prune leaves a retained index file and pack it dropped out of later plans, and deletes them once free', async () => {
  const dir = tempDir('prune-retained');
  const store = new MemStore({ objectLock: true });
  const repo = await Repository.init(store, { password: 'pw', kdf: { ...TEST_KDF }, objectLock: { mode: 'GOVERNANCE', retentionDays: 1 }, packSize: 16 * 1024 });
  mkdirSync(join(dir.path, 'c'));
  const catalog = openCatalog(join(dir.path, 'c'), repo);
  const dates = new LockDates(catalog);
  repo.onRetention((name, until, versionId) => dates.record(name, until, versionId));
  const bucket = new MemStore({ versioning: true, name: 'lake' });
  const source: OpenedSource = { bucket: 'lake', objectStore: bucket, prefixes: [''], isExcluded: () => false };
  const group: Group = { name: 'g', sources: [], retention: { keepLast: 1 } };
  const backup = () => backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source] });
  const keys = async (prefix: string) => {
    const out: string[] = [];
    for await (const i of store.list(prefix)) if (i.kind === 'object') out.push(i.key);
    return out.sort();
  };
  try {
    // Run 1 writes a.txt and b.txt in one index file; run 2 a new a.txt; forget drops run 1's a.txt.
    await bucket.put('a.txt', randomBytes(20_000));
    await bucket.put('b.txt', randomBytes(20_000));
    await backup();
    await bucket.put('a.txt', randomBytes(20_000));
    await backup();
    const policy = testPolicy(repo.location, [{ ...group, sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }] }]);
    expect((await forget(repo, catalog, policy, { dryRun: false })).forgotten).toHaveLength(1);
    const packs = await keys('packs/');
    const before = await keys('index/');

    const first = await prune({ repo, catalog, maxUnused: 0 });
    expect(first.indexFiles.written).toBe(1);
    expect(first.retained).toHaveLength(1);
    const oldIndex = first.retained[0]!.object;
    expect(before).toContain(oldIndex);
    const index = await keys('index/');
    const forgets = await keys('forgets/');
    expect(index).toHaveLength(3);

    // Nothing changed: later prunes write nothing (before the fix each wrote another index file and prune document).
    for (let i = 0; i < 2; i++) {
      const again = await prune({ repo, catalog, maxUnused: 0 });
      expect(again.indexFiles.written).toBe(0);
      expect(again.retained.map((r) => r.object)).toEqual([oldIndex]);
    }
    expect(await keys('index/')).toEqual(index);
    expect(await keys('forgets/')).toEqual(forgets);
    expect(await keys('packs/')).toEqual(packs);

    // Another host's catalog learns from the prune document what was dropped: its prune too only retries.
    mkdirSync(join(dir.path, 'b'));
    const other = openCatalog(join(dir.path, 'b'), repo);
    try {
      await syncCatalog({ repo, catalog: other });
      const elsewhere = await prune({ repo, catalog: other, maxUnused: 0 });
      expect(elsewhere.indexFiles.written).toBe(0);
      expect(elsewhere.retained.map((r) => r.object)).toEqual([oldIndex]);
    } finally {
      other.close();
    }
    expect(await keys('index/')).toEqual(index);
    expect(await keys('forgets/')).toEqual(forgets);

    // lock extend keeps neither the replaced index file nor the emptied pack.
    const later = Date.now() + 2 * DAY_MS;
    const extended = await extendRetention({ repo, catalog, dryRun: false, concurrency: 2, now: later });
    expect(extended.extended).toBe(extended.checked);
    expect(Date.parse((await store.getRetention(oldIndex))!.retainUntil.toISOString())).toBeLessThan(later);

    // Once free (a governance date shortened here), the next prune deletes both, and forgets them.
    for (const key of [...packs, ...index]) {
      const r = await store.getRetention(key);
      if (r!.retainUntil.getTime() < later) await store.putRetention(key, { mode: 'GOVERNANCE', retainUntil: new Date(Date.now() - 1000) }, {});
    }
    const freed = await prune({ repo, catalog, maxUnused: 0 });
    expect(freed.retained).toEqual([]);
    expect(freed.indexFiles.written).toBe(0);
    expect(await keys('index/')).toEqual(index.filter((k) => k !== oldIndex));
    expect((await keys('packs/')).length).toBe(packs.length - 1);
    expect(sqlite(catalog).prepare('SELECT count(*) FROM pending_deletions').pluck().get()).toBe(0);
  } finally {
    catalog.close();
    dir.cleanup();
  }
});
