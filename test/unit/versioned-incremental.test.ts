// The requests of a versioned bucket's incremental (docs/versioned-incremental.md): a run that
// finds nothing changed makes the requests of a listing of the current keys, however many
// versions the keys have; a changed key costs a version listing (one or two requests); `fullVersions` and a due
// run list every version. Counted on an in-memory bucket with 100-key pages.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { FULL_VERSION_LISTING_EVERY } from '../../src/engine/backup-plan.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { StorageError } from '../../src/errors.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import type { GetOptions, GetResult, ListItem, ListOptions } from '../../src/storage/types.js';
import { initRepo, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';

const KEYS = 150;
const PAGE = 100;

describe('versioned incremental: requests follow what changed, not the history', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  const group: Group = { name: 'v', sources: [] };

  beforeEach(async () => {
    dir = tempDir('versioned-incremental');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    catalog = openCatalog(dir.path, repo);
  });
  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  const key = (i: number) => `t/d=${i % 5}/part-${String(i).padStart(4, '0')}.csv`;
  async function bucketWith(versions: number): Promise<MemStore> {
    const bucket = new MemStore({ versioning: true, pageSize: PAGE, name: `lake${versions}` });
    for (let v = 0; v < versions; v++) for (let i = 0; i < KEYS; i++) await bucket.put(key(i), Buffer.from(`${key(i)} v${v}\n`));
    return bucket;
  }
  /** One backup: its counters, and the LIST requests it made of the bucket. */
  async function backup(bucket: MemStore, fullVersions = false, store: MemStore | StoreDecorator = bucket, ranges = { keysPerRange: 100_000, minKeys: 1 }) {
    const before = bucket.stats.list;
    const source = { bucket: bucket.location, objectStore: store, prefixes: [''], isExcluded: () => false, versioned: true };
    const summary = await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source], fullVersions, listRanges: ranges });
    return { counters: summary.counters, lists: bucket.stats.list - before };
  }
  async function bareListing(bucket: MemStore): Promise<number> {
    const before = bucket.stats.list;
    for await (const item of bucket.list('')) void item;
    return bucket.stats.list - before;
  }

  it('a no-change run lists the current keys only, flat as the history grows; a changed key costs one or two requests', async () => {
    const lists: Record<number, { seed: number; noChange: number; bare: number }> = {};
    for (const versions of [3, 6]) {
      const bucket = await bucketWith(versions);
      const seed = await backup(bucket);
      expect(seed.counters).toMatchObject({ versionListing: 'full', objectsNew: KEYS * versions });
      const noChange = await backup(bucket);
      expect(noChange.counters).toMatchObject({ versionListing: 'changed', objectsNew: 0, objectsUnchanged: KEYS });
      lists[versions] = { seed: seed.lists, noChange: noChange.lists, bare: await bareListing(bucket) };

      if (versions === 6) {
        await bucket.put(key(7), Buffer.from('changed once\n'));
        await bucket.put(key(7), Buffer.from('changed twice\n'));
        await bucket.delete(key(120)); // a delete marker
        const changed = await backup(bucket);
        expect(changed.counters).toMatchObject({ versionListing: 'changed', objectsNew: 2, objectsDeleted: 1 });
        // Each changed key: one version listing opened, and at most one page read past before it is given up.
        expect(changed.lists).toBeGreaterThan(lists[6]!.bare);
        expect(changed.lists).toBeLessThanOrEqual(lists[6]!.bare + 2 * 2);
      }
    }
    // The seed reads every version (more pages with more history); the no-change run as many as the bare listing.
    expect(lists[6]!.seed).toBeGreaterThan(lists[3]!.seed);
    expect(lists[3]!.noChange).toBe(lists[3]!.bare);
    expect(lists[6]!.noChange).toBe(lists[6]!.bare);
  });

  it('lists every version when asked, and once in FULL_VERSION_LISTING_EVERY runs', async () => {
    const bucket = await bucketWith(2);
    await backup(bucket);
    const full = await backup(bucket, true);
    expect(full.counters.versionListing).toBe('full');
    const kinds: string[] = [];
    for (let run = 0; run < FULL_VERSION_LISTING_EVERY; run++) kinds.push((await backup(bucket)).counters.versionListing!);
    expect(kinds.slice(0, -1).every((k) => k === 'changed')).toBe(true);
    expect(kinds.at(-1)).toBe('full');
  });

  it('a full version listing that failed for a prefix does not count as one: the next run lists every version', async () => {
    const bucket = new MemStore({ versioning: true, pageSize: PAGE, name: 'lake-failed-full' });
    for (let i = 0; i < 10; i++) await bucket.put(key(i), Buffer.from(`${key(i)}\n`));
    let refuse = false;
    const store = new (class extends StoreDecorator {
      override async *list(prefix: string, opts?: ListOptions): AsyncGenerator<ListItem> {
        if (refuse && opts?.versions === true && prefix.startsWith('t/d=3')) throw new StorageError('AccessDenied', `LIST versions mem://x/${prefix}: AccessDenied (403)`, { backendCode: 'AccessDenied' });
        yield* this.inner.list(prefix, opts);
      }
    })(bucket);
    const kinds: string[] = [];
    for (let run = 0; run <= FULL_VERSION_LISTING_EVERY; run++) {
      refuse = run === FULL_VERSION_LISTING_EVERY; // the run that is due to list every version (the seed did: run 0)
      const { counters } = await backup(bucket, false, store);
      kinds.push(`${counters.versionListing}${counters.objectsFailed > 0 ? ' failed' : ''}`);
    }
    expect(kinds[0]).toBe('full');
    expect(kinds.at(-1)).toBe('changed failed');
    refuse = false;
    expect((await backup(bucket, false, store)).counters).toMatchObject({ versionListing: 'full', objectsFailed: 0 });
  });

  // A version that could not be read makes its run partial, and the next run reads it again
  // (docs/backup-restore.md), also when it is no longer current: a newer version or a delete
  // marker hides it, so the key's current state alone would not be asked about again.
  for (const shallow of [false, true]) {
    it(`reads again a failed version that is no longer current (${shallow ? 'delimiter fan-out' : 'key ranges'})`, async () => {
      const bucket = new MemStore({ versioning: true, pageSize: PAGE, name: `lake-retry-${shallow}` });
      const denied = new Set<string>();
      const store = new (class extends StoreDecorator {
        override async get(key: string, opts?: GetOptions): Promise<GetResult> {
          if (denied.has(`${key}@${opts?.versionId}`)) throw new StorageError('AccessDenied', `GET ${key}: AccessDenied (403)`, { backendCode: 'AccessDenied' });
          return this.inner.get(key, opts);
        }
      })(bucket);
      const ranges = shallow ? { keysPerRange: 100_000, minKeys: 100_000 } : undefined;
      const run = (full = false) => backup(bucket, full, store, ranges);
      for (const k of ['a/over', 'a/hidden', 'b/keep']) await bucket.put(k, Buffer.from(`${k} v1`));
      expect((await run()).counters).toMatchObject({ objectsNew: 3 });
      const noChange = (await run()).lists;
      const deny = async (k: string, body: string) => denied.add(`${k}@${(await bucket.put(k, Buffer.from(body))).versionId}`);
      await deny('a/over', 'a/over v2'); // then overwritten: its current version is readable
      await bucket.put('a/over', Buffer.from('a/over v3'));
      await deny('a/hidden', 'a/hidden v2'); // then deleted: a delete marker hides it
      await bucket.delete('a/hidden');
      await deny('c/new', 'c/new v1'); // a new key, never catalogued, then deleted
      await bucket.delete('c/new');
      await deny('c/gone', 'c/gone v1'); // another one, its only version later removed for good
      const partial = await run(true);
      expect(partial.counters).toMatchObject({ objectsNew: 1, objectsDeleted: 2, objectsFailed: 4 });
      const goneVersion = [...denied].find((d) => d.startsWith('c/gone@'))!.split('@')[1]!;
      await bucket.delete('c/gone', { versionId: goneVersion });

      // Still unreadable: tried again, still partial (never a complete run that forgot them).
      const again = await run();
      expect(again.counters).toMatchObject({ versionListing: 'changed', objectsFailed: 3, objectsNew: 0 });
      denied.clear();
      const healed = await run();
      expect(healed.counters).toMatchObject({ versionListing: 'changed', objectsFailed: 0, objectsNew: 3 });
      // c/gone's failed version is gone for good: asked about until the next full listing, not after.
      expect((await run()).counters).toMatchObject({ objectsNew: 0, objectsFailed: 0 });
      expect((await run(true)).counters).toMatchObject({ objectsNew: 0, objectsFailed: 0 });
      const quiet = await run();
      expect(quiet.counters).toMatchObject({ objectsNew: 0, objectsFailed: 0 });
      expect(quiet.lists).toBe(noChange);
    });
  }
});
