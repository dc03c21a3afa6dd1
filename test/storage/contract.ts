// The one conformance suite every ObjectStore passes (after kopia's blobtesting/verify.go and
// restic's backend/test): MemStore and FsStore in the unit project, S3Store against the real
// server in the integration project. Where stores legitimately differ, a capability flag says
// so; everything else is the same assertion for all of them.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNotFound, StorageError } from '../../src/errors.js';
import { compareKeys } from '../../src/util/key-order.js';
import { getBytes, readAll, statsDelta, type ListItem, type ListOptions, type ObjectStore } from '../../src/storage/types.js';

export interface StoreFixture {
  store: ObjectStore;
  cleanup: () => Promise<void>;
}

export interface StoreCaps {
  /** Content type, encoding, cache control, disposition and user metadata survive a put. */
  metadata: boolean;
  /** Tags survive a put and come back from getTags. */
  tags: boolean;
  /** The etag a put returns equals the one head and list report. */
  stableEtag: boolean;
  /** Keys for the ordering/pagination test (S3: a little over one 1000-key page). */
  manyKeys: number;
  /** A listing of `manyKeys` keys in one directory takes more than one list request. */
  pagedList: boolean;
  /** Bytes of the streamed put (S3: enough for several multipart parts). */
  largeBody: number;
  /** Concurrent create-only puts of one key: exactly one wins. */
  atomicCreate: boolean;
  /** Parallelism of the test's own writes. */
  concurrency?: number;
}

export async function collect(it: AsyncIterable<ListItem>): Promise<ListItem[]> {
  const out: ListItem[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function names(items: ListItem[]): string[] {
  return items.map((i) => (i.kind === 'object' ? i.key : `[${i.prefix}]`));
}

async function listNames(store: ObjectStore, prefix: string, opts?: ListOptions): Promise<string[]> {
  return names(await collect(store.list(prefix, opts)));
}

async function expectStorageError(p: Promise<unknown>, code: StorageError['code']): Promise<StorageError> {
  const err = await p.then(
    () => {
      throw new Error(`expected StorageError ${code}, but it succeeded`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).code, (err as Error).message).toBe(code);
  return err as StorageError;
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** A stream of `size` random bytes in odd-sized chunks; `digest()` is its SHA-256 once read. */
function randomStream(size: number): { body: Readable; digest: () => string } {
  const hash = createHash('sha256');
  let hex: string | undefined;
  async function* gen(): AsyncGenerator<Buffer> {
    let left = size;
    while (left > 0) {
      const n = Math.min(left, 1024 * 1024 + 7);
      const chunk = randomBytes(n);
      hash.update(chunk);
      left -= n;
      yield chunk;
    }
  }
  return { body: Readable.from(gen(), { objectMode: false }), digest: () => (hex ??= hash.digest('hex')) };
}

async function hashStream(body: Readable): Promise<{ hex: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of body) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hex: hash.digest('hex'), size };
}

export function runStoreContract(name: string, makeStore: () => Promise<StoreFixture>, caps: StoreCaps): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let fx: StoreFixture;
    let store: ObjectStore;
    const limit = pLimit(caps.concurrency ?? 16);

    beforeAll(async () => {
      fx = await makeStore();
      store = fx.store;
    });
    afterAll(async () => {
      await fx?.cleanup();
    });

    it('has a location and fresh stats', () => {
      expect(store.location).toMatch(/^[a-z0-9]+:\/\/.*\/$/);
      for (const v of Object.values(store.stats)) expect(typeof v).toBe('number');
    });

    it('states its capabilities; without Object Lock it says so and refuses a retention', async () => {
      expect(store.capabilities.tags).toBe(caps.tags);
      if (store.capabilities.objectLock) return;
      expect(await store.objectLockEnabled()).toBe(false);
      expect(await store.getRetention('cap/none')).toBeNull();
      await expectStorageError(store.putRetention('cap/none', { mode: 'GOVERNANCE', retainUntil: new Date(Date.now() + 60_000) }), 'Other');
    });

    it.each([
      ['0 bytes', 0],
      ['1 byte', 1],
      ['3 MiB', 3 * 1024 * 1024],
    ])('round-trips a Buffer of %s', async (_label, size) => {
      const data = randomBytes(size);
      const key = `rt/${size}.bin`;
      const put = await store.put(key, data);
      expect(put.etag).not.toBe('');
      const got = await store.get(key);
      expect(got.body).toBeInstanceOf(Readable);
      const back = await readAll(got.body);
      expect(back.length).toBe(size);
      expect(sha256(back)).toBe(sha256(data));
      expect(got.meta.size).toBe(size);
      const head = await store.head(key);
      expect(head.size).toBe(size);
      if (caps.stableEtag) expect(head.etag).toBe(put.etag);
    });

    it('overwrites a key with the new content', async () => {
      await store.put('ow/k', Buffer.from('first'));
      await store.put('ow/k', Buffer.from('second, longer'));
      expect((await getBytes(store, 'ow/k')).toString()).toBe('second, longer');
      expect((await store.head('ow/k')).size).toBe(14);
    });

    it('serves inclusive byte ranges, reporting the whole object size', async () => {
      const data = randomBytes(3 * 1024 * 1024);
      await store.put('range/obj', data);
      const mid = await store.get('range/obj', { range: { start: 1_000_000, end: 1_000_099 } });
      expect(await readAll(mid.body)).toEqual(data.subarray(1_000_000, 1_000_100));
      expect(mid.meta.size).toBe(data.length);
      expect(await getBytes(store, 'range/obj', { range: { start: 0, end: 0 } })).toEqual(data.subarray(0, 1));
      // An end past the object is cut to its last byte, as HTTP does.
      const tail = await getBytes(store, 'range/obj', { range: { start: data.length - 10, end: data.length + 1000 } });
      expect(tail).toEqual(data.subarray(data.length - 10));
      // A start past the end is an error (416), not an empty body.
      await expect(store.get('range/obj', { range: { start: data.length + 5, end: data.length + 10 } })).rejects.toBeInstanceOf(
        StorageError,
      );
    });

    it('head reports size, etag, lastModified and (where kept) content metadata', async () => {
      const t0 = Date.now();
      const put = await store.put('meta/obj.json', Buffer.from('{"a":1}'), {
        contentType: 'application/json',
        contentEncoding: 'identity',
        cacheControl: 'max-age=60',
        contentDisposition: 'attachment; filename="obj.json"',
        metadata: { Owner: 'team-data', 'x-source': 'unit' },
        tags: { env: 'test', 'with space': 'a b&c=d' },
      });
      const head = await store.head('meta/obj.json');
      expect(head.size).toBe(7);
      expect(head.etag).not.toBe('');
      if (caps.stableEtag) expect(head.etag).toBe(put.etag);
      // Server clocks may differ a little from ours (and S3 has 1 s resolution).
      expect(Math.abs(head.lastModified.getTime() - t0)).toBeLessThan(5 * 60_000);
      const got = await store.get('meta/obj.json');
      await readAll(got.body);
      for (const meta of [head, got.meta]) {
        if (caps.metadata) {
          expect(meta.contentType).toBe('application/json');
          expect(meta.contentEncoding).toBe('identity');
          expect(meta.cacheControl).toBe('max-age=60');
          expect(meta.contentDisposition).toBe('attachment; filename="obj.json"');
          expect(meta.metadata).toEqual({ owner: 'team-data', 'x-source': 'unit' });
        } else {
          expect(meta.metadata).toEqual({});
          expect(meta.contentType).toBeUndefined();
        }
      }
      const tags = await store.getTags('meta/obj.json');
      expect(tags).toEqual(caps.tags ? { env: 'test', 'with space': 'a b&c=d' } : {});
    });

    it('reports a missing key as StorageError NotFound', async () => {
      for (const op of [() => store.get('missing/nope'), () => store.head('missing/nope')]) {
        const err = await expectStorageError(op(), 'NotFound');
        expect(isNotFound(err)).toBe(true);
        expect(err.retryable).toBe(false);
        expect(err.message).toContain('missing/nope');
      }
    });

    it('create-only put (ifNoneMatch) fails with PreconditionFailed on an existing key', async () => {
      await store.put('inm/k', Buffer.from('one'), { ifNoneMatch: true });
      await expectStorageError(store.put('inm/k', Buffer.from('two'), { ifNoneMatch: true }), 'PreconditionFailed');
      const streamed = randomStream(1000);
      await expectStorageError(store.put('inm/k', streamed.body, { ifNoneMatch: true }), 'PreconditionFailed');
      expect((await getBytes(store, 'inm/k')).toString()).toBe('one');
      // After a delete the key can be created again.
      await store.delete('inm/k');
      await store.put('inm/k', Buffer.from('three'), { ifNoneMatch: true });
      expect((await getBytes(store, 'inm/k')).toString()).toBe('three');
    });

    it.runIf(caps.atomicCreate)('concurrent create-only puts of one key: exactly one wins', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => store.put('inm/race', Buffer.from(`writer ${i}`), { ifNoneMatch: true })),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect((r.reason as StorageError).code).toBe('PreconditionFailed');
      }
    });

    it(`lists ${caps.manyKeys}+ keys in key order, page by page`, async () => {
      const pad = (i: number): string => String(i).padStart(5, '0');
      const keys: string[] = [];
      for (let i = 0; i < caps.manyKeys; i++) {
        keys.push(`many/${pad(i)}.dat`);
        // Neighbours that sort around a "directory": '-' < '.' < '/' < '0'.
        if (i % 50 === 0) keys.push(`many/${pad(i)}/x`, `many/${pad(i)}-a`);
      }
      await Promise.all(keys.map((k) => limit(() => store.put(k, Buffer.from(k)))));
      const before = { ...store.stats };
      const t0 = performance.now();
      const listed: string[] = [];
      for await (const item of store.list('many/')) {
        expect(item.kind).toBe('object');
        if (item.kind === 'object') {
          listed.push(item.key);
          expect(item.size).toBe(Buffer.byteLength(item.key));
          expect(item.isLatest).toBe(true);
          expect(item.isDeleteMarker).toBe(false);
          expect(item.versionId).toBeNull();
          expect(item.etag).not.toBe('');
        }
      }
      const ms = performance.now() - t0;
      expect(listed).toEqual([...keys].sort(compareKeys));
      const d = statsDelta(before, store.stats);
      if (caps.pagedList) expect(d.list).toBeGreaterThanOrEqual(Math.ceil(listed.length / 1000));
      else expect(d.list).toBeGreaterThanOrEqual(1);
      console.log(`[${name}] listed ${listed.length} keys in ${ms.toFixed(0)} ms (${Math.round(listed.length / (ms / 1000))} keys/s, ${d.list} list requests)`);

      // startAfter resumes strictly after a key, also across page boundaries.
      const mid = [...keys].sort(compareKeys)[Math.floor(keys.length * 0.9)]!;
      const rest = await listNames(store, 'many/', { startAfter: mid });
      expect(rest).toEqual(listed.filter((k) => compareKeys(k, mid) > 0));
    });

    it('lists by prefix, including a partial last segment', async () => {
      const keys = ['lp/data/x', 'lp/data/y/z', 'lp/dart', 'lp/db', 'lp/d', 'lq/data/x'];
      await Promise.all(keys.map((k) => store.put(k, Buffer.from(k))));
      expect(await listNames(store, 'lp/da')).toEqual(['lp/dart', 'lp/data/x', 'lp/data/y/z']);
      expect(await listNames(store, 'lp/data/')).toEqual(['lp/data/x', 'lp/data/y/z']);
      expect(await listNames(store, 'lp/')).toEqual(['lp/d', 'lp/dart', 'lp/data/x', 'lp/data/y/z', 'lp/db']);
      expect(await listNames(store, 'lp/nothing/')).toEqual([]);
      expect(await listNames(store, 'lp/nothing')).toEqual([]);
    });

    it("groups by delimiter: prefix items and the objects at that level, in key order", async () => {
      const keys = ['dl/a.txt', 'dl/b/1', 'dl/b/2', 'dl/b/c/3', 'dl/b-x', 'dl/b0', 'dl/c/d/e', 'dl/z'];
      await Promise.all(keys.map((k) => store.put(k, Buffer.from(k))));
      const items = await collect(store.list('dl/', { delimiter: '/' }));
      expect(names(items)).toEqual(['dl/a.txt', 'dl/b-x', '[dl/b/]', 'dl/b0', '[dl/c/]', 'dl/z']);
      expect(await listNames(store, 'dl/b/', { delimiter: '/' })).toEqual(['dl/b/1', 'dl/b/2', '[dl/b/c/]']);
      expect(await listNames(store, 'dl/b', { delimiter: '/' })).toEqual(['dl/b-x', '[dl/b/]', 'dl/b0']);
      // startAfter at the delimiter level skips what sorts before it.
      expect(await listNames(store, 'dl/', { delimiter: '/', startAfter: 'dl/b-x' })).toEqual(['[dl/b/]', 'dl/b0', '[dl/c/]', 'dl/z']);
      expect(await listNames(store, 'dl/', { delimiter: '/', startAfter: 'dl/b0' })).toEqual(['[dl/c/]', 'dl/z']);
    });

    it('lists from startAfter (exclusive), whether or not that key exists', async () => {
      const keys = Array.from({ length: 10 }, (_, i) => `sa/k${i}`);
      await Promise.all(keys.map((k) => store.put(k, Buffer.from(k))));
      expect(await listNames(store, 'sa/', { startAfter: 'sa/k6' })).toEqual(['sa/k7', 'sa/k8', 'sa/k9']);
      expect(await listNames(store, 'sa/', { startAfter: 'sa/k65' })).toEqual(['sa/k7', 'sa/k8', 'sa/k9']);
      expect(await listNames(store, 'sa/', { startAfter: 'sa/k9' })).toEqual([]);
      expect(await listNames(store, 'sa/', { startAfter: 'sa/' })).toEqual(keys);
      expect(await listNames(store, 'sa/', { startAfter: 'a' })).toEqual(keys);
    });

    it('handles unicode, odd characters and deeply nested keys, in UTF-8 byte order', async () => {
      const deep = `deep/${Array.from({ length: 24 }, (_, i) => `d${i}`).join('/')}/leaf.txt`;
      const keys = [
        'uni/Grüße/日本語/データ.json',
        'uni/a b+c%20d=e&f.txt',
        'uni/émoji-😀.txt',
        'uni/x-😀',
        'uni/x-\uE000', // sorts before the emoji in UTF-8 (S3's order), after it in UTF-16
        "uni/quote'and\"double",
        'uni/tab\there',
        'uni/~tilde',
        deep,
      ];
      for (const k of keys) {
        const put = await store.put(k, Buffer.from(k));
        expect(put.etag).not.toBe('');
        expect((await getBytes(store, k)).toString()).toBe(k);
        expect((await store.head(k)).size).toBe(Buffer.byteLength(k));
      }
      const uni = keys.filter((k) => k.startsWith('uni/'));
      const listed = await listNames(store, 'uni/');
      expect(listed).toEqual([...uni].sort(compareKeys));
      expect(listed.indexOf('uni/x-\uE000')).toBeLessThan(listed.indexOf('uni/x-😀'));
      expect(await listNames(store, 'uni/Grüße/', { delimiter: '/' })).toEqual(['[uni/Grüße/日本語/]']);
      expect(await listNames(store, 'deep/')).toEqual([deep]);
      expect(await listNames(store, 'deep/d0/d1/', { delimiter: '/' })).toEqual(['[deep/d0/d1/d2/]']);
    });

    it('deletes a key; deleting a missing key is not an error', async () => {
      await store.put('del/a', Buffer.from('a'));
      await store.put('del/b/c', Buffer.from('c'));
      await store.delete('del/a');
      await store.delete('del/b/c');
      await expectStorageError(store.head('del/a'), 'NotFound');
      await expectStorageError(store.get('del/b/c'), 'NotFound');
      await store.delete('del/never-existed');
      expect(await listNames(store, 'del/')).toEqual([]);
      expect(await listNames(store, 'del/', { delimiter: '/' })).toEqual([]);
    });

    it('counts requests and bytes in stats', async () => {
      const before = { ...store.stats };
      await store.put('stats/a', Buffer.alloc(1000, 1));
      await readAll((await store.get('stats/a')).body);
      await store.head('stats/a');
      await collect(store.list('stats/'));
      await store.delete('stats/a');
      const d = statsDelta(before, store.stats);
      expect(d.put).toBe(1);
      expect(d.get).toBe(1);
      expect(d.head).toBe(1);
      expect(d.delete).toBe(1);
      expect(d.list).toBeGreaterThanOrEqual(1);
      expect(d.bytesOut).toBe(1000);
      expect(d.bytesIn).toBe(1000);
    });

    it('puts a small stream', async () => {
      const s = randomStream(10_000);
      const put = await store.put('stream/small', s.body);
      expect(put.etag).not.toBe('');
      const { hex, size } = await hashStream((await store.get('stream/small')).body);
      expect(size).toBe(10_000);
      expect(hex).toBe(s.digest());
    });

    it(`puts a large stream (${(caps.largeBody / 1024 / 1024).toFixed(0)} MiB) without holding it, byte-exact`, async () => {
      const s = randomStream(caps.largeBody);
      const before = { ...store.stats };
      const t0 = performance.now();
      const put = await store.put('stream/large', s.body, { contentType: 'application/octet-stream' });
      const putMs = performance.now() - t0;
      expect(put.etag).not.toBe('');
      const head = await store.head('stream/large');
      expect(head.size).toBe(caps.largeBody);
      if (caps.stableEtag) expect(head.etag).toBe(put.etag);
      const t1 = performance.now();
      const { hex, size } = await hashStream((await store.get('stream/large')).body);
      const getMs = performance.now() - t1;
      expect(size).toBe(caps.largeBody);
      expect(hex).toBe(s.digest());
      const d = statsDelta(before, store.stats);
      expect(d.bytesOut).toBe(caps.largeBody);
      expect(d.bytesIn).toBe(caps.largeBody);
      const mib = caps.largeBody / 1024 / 1024;
      console.log(`[${name}] stream put ${mib.toFixed(0)} MiB: ${putMs.toFixed(0)} ms (${(mib / (putMs / 1000)).toFixed(0)} MiB/s, ${d.put} put requests); get: ${getMs.toFixed(0)} ms`);
    });

    it('ends a GET body with the abort reason when its signal aborts', async () => {
      await store.put('abort/body', randomBytes(3 * 1024 * 1024));
      const ac = new AbortController();
      const { body } = await store.get('abort/body', { signal: ac.signal });
      ac.abort(new Error('stop reading'));
      await expect(readAll(body)).rejects.toThrow('stop reading');
    });

    it('stops a listing when its signal aborts', async () => {
      const ac = new AbortController();
      ac.abort();
      await expect(collect(store.list('many/', { signal: ac.signal }))).rejects.toBeTruthy();
    });

    it('reports versioning off for an unversioned store', async () => {
      if (store.versioningEnabled) expect(await store.versioningEnabled()).toBe(false);
    });
  });
}

/** For stores with versioning on: Mem(versioning) and a versioned S3 bucket. */
export function runVersioningContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`ObjectStore versioning contract: ${name}`, () => {
    let fx: StoreFixture;
    let store: ObjectStore;
    beforeAll(async () => {
      fx = await makeStore();
      store = fx.store;
    });
    afterAll(async () => {
      await fx?.cleanup();
    });

    it('reports versioning on', async () => {
      expect(store.capabilities.versions).toBe(true);
      expect(await store.versioningEnabled()).toBe(true);
    });

    it('keeps every version and delete marker, newest first, each readable by versionId', async () => {
      const puts = [];
      for (const body of ['v1', 'v2 longer', 'v3 longest!']) {
        puts.push(await store.put('ver/k', Buffer.from(body)));
      }
      for (const p of puts) expect(p.versionId).toBeTruthy();
      expect(new Set(puts.map((p) => p.versionId)).size).toBe(3);
      await store.delete('ver/k');
      await store.put('ver/other', Buffer.from('x'));

      const items = await collect(store.list('ver/', { versions: true }));
      const all = items.filter((i) => i.kind === 'object');
      const k = all.filter((i) => i.key === 'ver/k');
      expect(k).toHaveLength(4);
      expect(k[0]).toMatchObject({ isDeleteMarker: true, isLatest: true });
      expect(k[0]!.versionId).toBeTruthy();
      expect(k.slice(1).map((v) => v.versionId)).toEqual([puts[2]!.versionId, puts[1]!.versionId, puts[0]!.versionId]);
      expect(k.slice(1).map((v) => v.size)).toEqual([11, 9, 2]);
      for (const v of k.slice(1)) expect(v).toMatchObject({ isLatest: false, isDeleteMarker: false });
      for (let i = 1; i < k.length; i++) expect(k[i]!.lastModified.getTime()).toBeLessThanOrEqual(k[i - 1]!.lastModified.getTime());
      // ver/k sorts before ver/other.
      expect(all.map((i) => i.key)).toEqual(['ver/k', 'ver/k', 'ver/k', 'ver/k', 'ver/other']);
      expect(all[4]).toMatchObject({ isLatest: true, isDeleteMarker: false });

      // Current view: the deleted key is gone.
      expect(await listNames(store, 'ver/')).toEqual(['ver/other']);
      await expectStorageError(store.get('ver/k'), 'NotFound');
      await expectStorageError(store.head('ver/k'), 'NotFound');

      // Every version stays readable by id; the delete marker itself reads as NotFound.
      for (const [i, body] of ['v1', 'v2 longer', 'v3 longest!'].entries()) {
        const versionId = puts[i]!.versionId!;
        expect((await getBytes(store, 'ver/k', { versionId })).toString()).toBe(body);
        const head = await store.head('ver/k', { versionId });
        expect(head.versionId).toBe(versionId);
        expect(head.size).toBe(body.length);
      }
      await expectStorageError(store.get('ver/k', { versionId: k[0]!.versionId! }), 'NotFound');

      // Removing the delete marker brings the newest version back.
      await store.delete('ver/k', { versionId: k[0]!.versionId! });
      expect((await getBytes(store, 'ver/k')).toString()).toBe('v3 longest!');
      // Removing a version by id removes only that one.
      await store.delete('ver/k', { versionId: puts[1]!.versionId! });
      const after = (await collect(store.list('ver/k', { versions: true }))).filter((i) => i.kind === 'object');
      expect(after.map((v) => v.versionId)).toEqual([puts[2]!.versionId, puts[0]!.versionId]);
      expect(after[0]).toMatchObject({ isLatest: true });
    });

    it('pages version listings with startAfter and delimiter', async () => {
      for (let i = 0; i < 5; i++) {
        await store.put(`vp/a/${i}`, Buffer.from('1'));
        await store.put(`vp/a/${i}`, Buffer.from('22'));
      }
      await store.put('vp/b', Buffer.from('b'));
      const all = await collect(store.list('vp/', { versions: true }));
      expect(all).toHaveLength(11);
      const after = await collect(store.list('vp/', { versions: true, startAfter: 'vp/a/2' }));
      expect(after.map((i) => (i.kind === 'object' ? i.key : i.prefix))).toEqual([
        'vp/a/3',
        'vp/a/3',
        'vp/a/4',
        'vp/a/4',
        'vp/b',
      ]);
      expect(names(await collect(store.list('vp/', { versions: true, delimiter: '/' })))).toEqual(['[vp/a/]', 'vp/b']);
    });
  });
}
