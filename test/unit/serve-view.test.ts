// serve's data side against a real repository: two backups of a versioned bucket (FsStore
// repository, small chunks and packs), then the view as of the first backup and the second.
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { ServeQueries } from '../../src/catalog/serve-queries.js';
import { openServeView, type OpenedServeView } from '../../src/serve/open-view.js';
import { CatalogView } from '../../src/serve/view.js';
import { BlobCache } from '../../src/serve/blob-cache.js';
import { blobRuns } from '../../src/engine/pack-reads.js';
import { MAX_SERVE_RUN } from '../../src/serve/object-reader.js';
import { ViewInputError, type ListEntry, type ServeView, type VersionEntry, type ViewCut } from '../../src/serve/view-types.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { initRepo, openCatalog, prng, tempDir, testPolicy } from '../helpers/fixtures.js';

const SMALL_CHUNKER = { minSize: 16 * 1024, avgSize: 32 * 1024, maxSize: 64 * 1024 };

/** Keys whose order or roll-up is easy to get wrong: UTF-8 vs UTF-16 order, delimiters at the edges, '+', spaces. */
const KEYS = ['a', 'a/', 'a/b', 'a/c/d', 'a/c/e', 'a+b', 'a b', 'a0', 'b/ä/x', 'b/😀', 'b/\uFFFD', 'b/z', 'c//d', 'deep/1/2/3', 'gone/x', 'gone/y', 'later/keep'];

const utf8Sort = (keys: Iterable<string>): string[] => [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

/** What S3 lists for these live keys. */
function model(keys: Iterable<string>, prefix: string, delimiter?: string): ListEntry[] {
  const out: ListEntry[] = [];
  for (const key of utf8Sort(keys)) {
    if (!key.startsWith(prefix)) continue;
    const at = delimiter === undefined ? -1 : key.indexOf(delimiter, prefix.length);
    if (at < 0) {
      out.push({ type: 'object', key } as ListEntry);
      continue;
    }
    const cp = key.slice(0, at + delimiter!.length);
    const last = out.at(-1);
    if (last?.type !== 'prefix' || last.prefix !== cp) out.push({ type: 'prefix', prefix: cp });
  }
  return out;
}

/** Every page of a listing, following `next`. */
function listAll(view: ServeView, at: ViewCut, prefix: string, delimiter: string | undefined, maxKeys: number): { entries: ListEntry[]; pages: number } {
  const entries: ListEntry[] = [];
  let after: string | undefined;
  for (let pages = 1; ; pages++) {
    const page = view.listObjects({ bucket: 'lake', at, prefix, ...(delimiter === undefined ? {} : { delimiter }), ...(after === undefined ? {} : { after }), maxKeys });
    expect(page.entries.length).toBeLessThanOrEqual(maxKeys);
    entries.push(...page.entries);
    if (!page.truncated) return { entries, pages };
    expect(page.next).toBeDefined();
    after = page.next;
  }
}

const names = (entries: ListEntry[]): string[] => entries.map((e) => (e.type === 'object' ? e.key : `${e.prefix} (prefix)`));

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

describe('serve view', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  let view: OpenedServeView;
  let clock = Date.parse('2026-11-20T10:00:00Z');
  const bucket = new MemStore({ versioning: true, now: () => new Date(clock), name: 'lake' });
  const group: Group = { name: 'g', sources: [] };
  const big1 = prng(7)(600 * 1024);
  const big2 = Buffer.concat([big1.subarray(0, 200 * 1024), prng(8)(50 * 1024), big1.subarray(200 * 1024)]);
  let first: ViewCut;
  let second: ViewCut;
  const live1 = new Set<string>();
  const live2 = new Set<string>();
  const versionIds = new Map<string, string[]>();

  const put = async (key: string, body: Buffer | string, opts: { contentType?: string; metadata?: Record<string, string>; tags?: Record<string, string> } = {}) => {
    clock += 1000;
    await bucket.put(key, Buffer.from(body), opts);
    const head = await bucket.head(key);
    versionIds.set(key, [...(versionIds.get(key) ?? []), head.versionId!]);
  };

  beforeAll(async () => {
    dir = tempDir('serve-view');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }), { packSize: 128 * 1024, chunker: SMALL_CHUNKER });
    catalog = openCatalog(dir.path, repo);
    const source: OpenedSource = { bucket: 'lake', objectStore: bucket, prefixes: [''], isExcluded: () => false };
    const backup = () => backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source] });

    for (const key of KEYS) if (key !== 'later/keep') await put(key, `v1 of ${key}`);
    await put('big/multi.bin', big1);
    await put('meta.csv', 'a,b\n', { contentType: 'text/csv', metadata: { Owner: 'finance' }, tags: { pii: 'no' } });
    for (const key of [...KEYS.filter((k) => k !== 'later/keep'), 'big/multi.bin', 'meta.csv']) live1.add(key);
    await backup();
    const t1 = clock + 500;
    clock += 60_000;

    await put('a/b', 'v2 of a/b');
    await put('big/multi.bin', big2);
    await put('later/keep', 'v1 of later/keep');
    clock += 1000;
    await bucket.delete('gone/x');
    await bucket.delete('gone/y');
    for (const key of live1) live2.add(key);
    live2.add('later/keep');
    live2.delete('gone/x');
    live2.delete('gone/y');
    await backup();

    view = await openServeView({ policy: testPolicy(repo.location, [group]), repo, catalog });
    first = view.resolveAt(new Date(t1).toISOString());
    second = view.defaultCut;
  });
  afterAll(async () => {
    await view?.close();
    dir.cleanup();
  });

  it('serves the catalogued buckets; the default view is the state at the sync', () => {
    expect(view.buckets()).toEqual(['lake']);
    expect(second.label).toBe(new Date(view.syncedAt).toISOString());
    expect(first.label).toMatch(/^2026-11-20T10:00:\d\d\.500Z$/);
  });

  it('lists every live key at each instant, in S3 (UTF-8) order, whatever the page size', () => {
    for (const [at, live] of [
      [first, live1],
      [second, live2],
    ] as const) {
      const want = model(live, '');
      for (const maxKeys of [1, 2, 3, 7, 1000]) {
        const { entries } = listAll(view, at, '', undefined, maxKeys);
        expect(names(entries), `maxKeys ${maxKeys}`).toEqual(names(want));
      }
    }
    expect(names(listAll(view, first, '', undefined, 1000).entries)).toContain('gone/x');
    expect(names(listAll(view, second, '', undefined, 1000).entries)).not.toContain('gone/x');
  });

  it('rolls keys up to common prefixes and pages over them, for any prefix and delimiter', () => {
    const cases: [string, string][] = [
      ['', '/'],
      ['a', '/'],
      ['a/', '/'],
      ['b/', '/'],
      ['c/', '/'],
      ['', '/c'],
      ['gone/', '/'],
      ['', 'a'],
    ];
    for (const [at, live] of [
      [first, live1],
      [second, live2],
    ] as const) {
      for (const [prefix, delimiter] of cases) {
        const want = names(model(live, prefix, delimiter));
        for (const maxKeys of [1, 2, 5, 1000]) {
          const got = listAll(view, at, prefix, delimiter, maxKeys);
          expect(names(got.entries), `${at.label} prefix ${prefix} delimiter ${delimiter} maxKeys ${maxKeys}`).toEqual(want);
          expect(got.pages).toBe(Math.max(1, Math.ceil(want.length / maxKeys)));
        }
      }
    }
    // A prefix whose every key is deleted at the instant is no common prefix then.
    expect(names(listAll(view, second, '', '/', 1000).entries)).not.toContain('gone/ (prefix)');
  });

  it('starts after a StartAfter key, and after every key of a common prefix given as marker', () => {
    const page = view.listObjects({ bucket: 'lake', at: second, prefix: '', delimiter: '/', after: 'a/', maxKeys: 3 });
    expect(names(page.entries)).toEqual(['a0', 'b/ (prefix)', 'big/ (prefix)']);
    expect(page).toMatchObject({ truncated: true, next: 'big/' });
    expect(names(view.listObjects({ bucket: 'lake', at: second, prefix: 'a', after: 'a/b', maxKeys: 100 }).entries)).toEqual(['a/c/d', 'a/c/e', 'a0']);
    expect(view.listObjects({ bucket: 'lake', at: second, prefix: '', maxKeys: 0 })).toEqual({ entries: [], truncated: false });
    expect(view.listObjects({ bucket: 'nope', at: second, prefix: '', maxKeys: 10 })).toEqual({ entries: [], truncated: false });
  });

  it('looks a key up as of each instant, with its metadata, or by version id', async () => {
    const at1 = view.lookup({ bucket: 'lake', key: 'a/b', at: first });
    const at2 = view.lookup({ bucket: 'lake', key: 'a/b', at: second });
    if (at1.kind !== 'object' || at2.kind !== 'object') throw new Error('a/b should be an object at both instants');
    expect((await readAll(view.open(at1.head))).toString()).toBe('v1 of a/b');
    expect((await readAll(view.open(at2.head))).toString()).toBe('v2 of a/b');
    expect(at1.head.versionId).toBe(versionIds.get('a/b')![0]);
    expect(at1.head.etag).not.toBe(at2.head.etag);

    expect(view.lookup({ bucket: 'lake', key: 'gone/x', at: second })).toMatchObject({ kind: 'deleted' });
    expect(view.lookup({ bucket: 'lake', key: 'gone/x', at: first })).toMatchObject({ kind: 'object' });
    expect(view.lookup({ bucket: 'lake', key: 'later/keep', at: first })).toEqual({ kind: 'missing' });
    expect(view.lookup({ bucket: 'lake', key: 'no/such', at: second })).toEqual({ kind: 'missing' });

    // Any catalogued version by id, whatever the instant.
    const old = view.lookup({ bucket: 'lake', key: 'a/b', at: second, versionId: versionIds.get('a/b')![0] });
    if (old.kind !== 'object') throw new Error('version 1 of a/b should be found');
    expect((await readAll(view.open(old.head))).toString()).toBe('v1 of a/b');
    expect(view.lookup({ bucket: 'lake', key: 'a/b', at: second, versionId: 'no-such-version' })).toEqual({ kind: 'missing' });

    const meta = view.lookup({ bucket: 'lake', key: 'meta.csv', at: second });
    expect(meta).toMatchObject({ kind: 'object', head: { contentType: 'text/csv', metadata: { owner: 'finance' }, tags: { pii: 'no' }, size: 4 } });
  });

  it('reads any byte range of a multi-chunk object from only the blobs it needs', async () => {
    for (const [at, want] of [
      [first, big1],
      [second, big2],
    ] as const) {
      const found = view.lookup({ bucket: 'lake', key: 'big/multi.bin', at });
      if (found.kind !== 'object') throw new Error('big/multi.bin should be an object');
      expect(found.head.size).toBe(want.length);
      expect((await readAll(view.open(found.head))).equals(want)).toBe(true);
      const random = prng(at === first ? 1 : 2);
      const ranges: [number, number][] = [
        [0, 0],
        [want.length - 1, want.length - 1],
        [0, want.length - 1],
        [16 * 1024 - 3, 80 * 1024],
        [want.length - 10, want.length - 1],
      ];
      for (let i = 0; i < 20; i++) {
        const [a, b] = [random(4).readUInt32LE(0) % want.length, random(4).readUInt32LE(0) % want.length];
        ranges.push([Math.min(a, b), Math.max(a, b)]);
      }
      for (const [start, end] of ranges) {
        const got = await readAll(view.open(found.head, { start, end }));
        expect(got.equals(want.subarray(start, end + 1)), `bytes ${start}-${end}`).toBe(true);
      }
    }
  });

  it('reads a small range with one GET of its blob, a whole object with one GET per run of blobs', async () => {
    const uncached = new CatalogView({ repo, catalog, queries: new ServeQueries(catalog), buckets: ['lake'], defaultCut: second, syncedAt: view.syncedAt, pinnedRun: Number.MAX_SAFE_INTEGER });
    const found = uncached.lookup({ bucket: 'lake', key: 'big/multi.bin', at: second });
    if (found.kind !== 'object') throw new Error('big/multi.bin should be an object');
    const gets = async (range?: { start: number; end: number }): Promise<number> => {
      const before = repo.requestCounts().get;
      await readAll(uncached.open(found.head, range));
      return repo.requestCounts().get - before;
    };
    expect(await gets({ start: 100_000, end: 100_010 })).toBe(1);
    expect(await gets({ start: big2.length - 1, end: big2.length - 1 })).toBe(1);
    // 250 KiB in blobs of 16-64 KiB, in packs of 128 KiB: several runs, far fewer GETs than blobs.
    const whole = await gets();
    const blobs = new ServeQueries(catalog).contentBlobs((found.head.handle as { versionRow: number }).versionRow, 0, big2.length - 1)!;
    expect(blobs.length).toBeGreaterThan(5);
    expect(whole).toBeGreaterThan(1);
    expect(whole).toBeLessThan(blobs.length);
    expect(whole).toBe([...blobRuns(blobs, MAX_SERVE_RUN)].length);
  });

  it('reads neighbouring small objects through one window of their pack: one GET for many objects', async () => {
    const cache = new BlobCache();
    const windowed = new CatalogView({ repo, catalog, queries: new ServeQueries(catalog), buckets: ['lake'], defaultCut: first, syncedAt: view.syncedAt, pinnedRun: Number.MAX_SAFE_INTEGER, cache });
    const keys = [...live1].filter((k) => k.startsWith('a') || k.startsWith('b/'));
    const before = repo.requestCounts().get;
    const bodies = await Promise.all(
      keys.map(async (key) => {
        const found = windowed.lookup({ bucket: 'lake', key, at: first });
        if (found.kind !== 'object') throw new Error(`${key} should be an object`);
        return (await readAll(windowed.open(found.head))).toString();
      }),
    );
    expect(bodies).toEqual(keys.map((k) => `v1 of ${k}`));
    const gets = repo.requestCounts().get - before;
    expect(keys.length).toBeGreaterThan(8);
    // Their blobs share one or two windows of one pack: per window, the first object is read
    // on its own, the second reads the window, and the others are cut from it.
    expect(cache.windowReads).toBeGreaterThanOrEqual(1);
    expect(cache.windowReads).toBeLessThanOrEqual(2);
    expect(gets).toBe(2 * cache.windowReads);
    expect(cache.windowHits).toBe(keys.length - gets);
  });

  it('refuses instants after the sync, and names the forms it reads', () => {
    expect(() => view.resolveAt('now')).toThrow(ViewInputError);
    expect(() => view.resolveAt('2099-01-01T00:00Z')).toThrow(/after the catalog was synced at .*restart `lakeguard serve`/);
    expect(() => view.resolveAt('not an instant')).toThrow(ViewInputError);
    const run = catalog.listRuns()[0]!;
    expect(view.resolveAt(run.id.slice(0, 20))).toEqual({ cut: { runSeq: run.seq }, label: run.id });
  });

  it('lists every version and delete marker up to the instant, newest first, paged by key and version markers', () => {
    const all = (at: ViewCut, prefix: string, delimiter: string | undefined, maxKeys: number) => {
      const versions: VersionEntry[] = [];
      const prefixes: string[] = [];
      let marker: { afterKey?: string; afterVersion?: string } = {};
      for (;;) {
        const page = view.listVersions({ bucket: 'lake', at, prefix, ...(delimiter === undefined ? {} : { delimiter }), ...marker, maxKeys });
        expect(page.versions.length + page.commonPrefixes.length).toBeLessThanOrEqual(maxKeys);
        versions.push(...page.versions);
        prefixes.push(...page.commonPrefixes);
        if (!page.truncated) return { versions, prefixes };
        marker = { afterKey: page.nextKey!, ...(page.nextVersion === undefined ? {} : { afterVersion: page.nextVersion }) };
      }
    };
    const full = all(second, '', undefined, 1000);
    const ab = full.versions.filter((v) => v.key === 'a/b');
    expect(ab.map((v) => [v.versionId, v.isLatest])).toEqual([
      [versionIds.get('a/b')![1], true],
      [versionIds.get('a/b')![0], false],
    ]);
    const gone = full.versions.filter((v) => v.key === 'gone/x');
    expect(gone.map((v) => [v.deleteMarker, v.isLatest])).toEqual([
      [true, true],
      [false, false],
    ]);
    expect(full.versions.filter((v) => v.key === 'big/multi.bin')).toHaveLength(2);
    expect(utf8Sort(new Set(full.versions.map((v) => v.key)))).toEqual([...new Set(full.versions.map((v) => v.key))]);
    // At the first instant: one version each, nothing deleted, nothing of later.
    const before = all(first, '', undefined, 1000);
    expect(before.versions.every((v) => v.isLatest && !v.deleteMarker)).toBe(true);
    expect(before.versions.map((v) => v.key)).toEqual(utf8Sort(live1));
    for (const maxKeys of [1, 2, 3]) {
      expect(all(second, '', undefined, maxKeys).versions).toEqual(full.versions);
      const rolled = all(second, '', '/', maxKeys);
      expect(rolled.prefixes).toEqual(['a/', 'b/', 'big/', 'c/', 'deep/', 'gone/', 'later/']);
      expect(rolled.versions.map((v) => v.key)).toEqual(['a', 'a b', 'a+b', 'a0', 'meta.csv']);
    }
    expect(() => view.listVersions({ bucket: 'lake', at: second, prefix: '', afterKey: 'a/b', afterVersion: 'bogus', maxKeys: 10 })).toThrow(ViewInputError);
  });
});

describe('serve view of an unversioned source', () => {
  /** An unversioned bucket `flat` whose object times the test moves (`lake.clock`), its repository, catalog and backup. */
  async function flatLake(name: string) {
    const dir = tempDir(name);
    const lake = { clock: Date.parse('2026-11-20T10:00:00Z') };
    const bucket = new MemStore({ versioning: false, now: () => new Date(lake.clock), name: 'flat' });
    const repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    const catalog = openCatalog(dir.path, repo);
    const group: Group = { name: 'g', sources: [] };
    const source: OpenedSource = { bucket: 'flat', objectStore: bucket, prefixes: [''], isExcluded: () => false };
    return {
      lake,
      bucket,
      catalog,
      backup: () => backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source] }),
      openView: () => openServeView({ policy: testPolicy(repo.location, [group]), repo, catalog }),
      close: () => {
        catalog.close();
        dir.cleanup();
      },
    };
  }

  it('stays pinned to the runs it opened with: a backup another process records meanwhile changes no answer', async () => {
    // Object times before the view's sync (now), as files and objects written before a later backup have.
    const { lake, bucket, backup, openView, close } = await flatLake('serve-view-pinned');
    try {
      await bucket.put('k', Buffer.from('one'));
      await backup();
      const view = await openView();
      try {
        lake.clock += 60_000;
        await bucket.put('k', Buffer.from('two'));
        await bucket.put('late', Buffer.from('late'));
        const later = await backup();
        const found = view.lookup({ bucket: 'flat', key: 'k', at: view.defaultCut });
        if (found.kind !== 'object') throw new Error('k should be an object');
        expect((await readAll(view.open(found.head))).toString()).toBe('one');
        expect(view.lookup({ bucket: 'flat', key: 'late', at: view.defaultCut }).kind).toBe('missing');
        expect(view.listObjects({ bucket: 'flat', at: view.defaultCut, prefix: '', maxKeys: 100 }).entries.map((e) => (e.type === 'object' ? e.key : e.prefix))).toEqual(['k']);
        // The later run by its id: refused, not answered as if the view knew it.
        expect(() => view.resolveAt(later.runId)).toThrow(/was recorded after this server pinned its view .*restart `lakeguard serve`/);
      } finally {
        await view.close();
      }
    } finally {
      close();
    }
  });

  it('lists one "null" version per key (its state at the instant) and reads it by versionId=null', async () => {
    const { lake, bucket, backup, openView, close } = await flatLake('serve-view-unversioned');
    try {
      await bucket.put('k', Buffer.from('one'));
      await backup();
      lake.clock += 60_000;
      await bucket.put('k', Buffer.from('two'));
      await bucket.put('gone', Buffer.from('x'));
      await backup();
      const middle = lake.clock + 1;
      lake.clock += 60_000;
      await bucket.delete('gone');
      await backup();
      const view = await openView();
      try {
        const at = view.resolveAt(new Date(middle).toISOString());
        const versions = (cut: ViewCut) => view.listVersions({ bucket: 'flat', at: cut, prefix: '', maxKeys: 100 }).versions.map((v) => [v.key, v.versionId, v.deleteMarker, v.isLatest]);
        expect(versions(at)).toEqual([
          ['gone', null, false, true],
          ['k', null, false, true],
        ]);
        expect(versions(view.defaultCut)).toEqual([
          ['gone', null, true, true],
          ['k', null, false, true],
        ]);
        const found = view.lookup({ bucket: 'flat', key: 'k', at, versionId: 'null' });
        if (found.kind !== 'object') throw new Error('k should be an object');
        expect((await readAll(view.open(found.head))).toString()).toBe('two');
        expect(view.lookup({ bucket: 'flat', key: 'gone', at: view.defaultCut, versionId: 'null' })).toEqual({ kind: 'deleted', versionId: null });
      } finally {
        await view.close();
      }
    } finally {
      close();
    }
  });
});
