// Backup and restore behaviour that needs S3-like sources (any key, per-object errors,
// several top-level prefixes): in-memory sources, filesystem repository.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import { StorageError } from '../../src/errors.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FaultyStore } from '../helpers/faulty-store.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { readAll, type GetOptions, type ListOptions } from '../../src/storage/types.js';
import { Readable } from 'node:stream';
import { initRepo, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';
import { selectState } from '../../src/catalog/restore-selection.js';

/** A source bucket where some keys cannot be read, and which records how many listings overlap. */
class TestBucket extends MemStore {
  denied = new Set<string>();
  /** Keys whose next GETs return a damaged body: how many more times, and how. */
  damage = new Map<string, { times: number; how: 'truncate' | 'flip' }>();
  archived = new Set<string>();
  gets = new Map<string, number>();

  override async *list(prefix: string, opts?: ListOptions) {
    for await (const item of this.listSlowly(prefix, opts)) {
      yield item.kind === 'object' && this.archived.has(item.key) ? { ...item, storageClass: 'GLACIER' } : item;
    }
  }
  listing = 0;
  maxConcurrentListings = 0;

  override async get(key: string, opts?: GetOptions) {
    this.gets.set(key, (this.gets.get(key) ?? 0) + 1);
    if (this.denied.has(key)) throw new StorageError('AccessDenied', `GET ${this.location}${key}: AccessDenied (403)`, { backendCode: 'AccessDenied' });
    const got = await super.get(key, opts);
    const damage = this.damage.get(key);
    if (damage === undefined || damage.times === 0) return got;
    damage.times--;
    const body = await readAll(got.body);
    // Truncated: fewer bytes than the object has. Flipped: right length, one bit wrong.
    const bad = damage.how === 'truncate' ? body.subarray(0, body.length - 7) : Buffer.from(body.map((b, i) => (i === 3 ? b ^ 1 : b)));
    return { ...got, body: Readable.from([bad]) };
  }

  private async *listSlowly(prefix: string, opts?: ListOptions) {
    this.listing++;
    this.maxConcurrentListings = Math.max(this.maxConcurrentListings, this.listing);
    try {
      for await (const item of super.list(prefix, opts)) {
        await new Promise((r) => setTimeout(r, 1)); // a page round trip
        yield item;
      }
    } finally {
      this.listing--;
    }
  }
}

describe('backup from S3-like sources', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  let bucket: TestBucket;
  const group: Group = { name: 'g', sources: [] };

  beforeEach(async () => {
    dir = tempDir('sources');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    catalog = openCatalog(dir.path, repo);
    bucket = new TestBucket({ name: 'events' });
  });
  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  const source = (prefixes = [''], exclude: string[] = []): OpenedSource => ({ bucket: 'events', objectStore: bucket, prefixes, isExcluded: compileExcludes(exclude) });
  const run = (src = source()) => backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group], { concurrency: { list: 4, transfer: 4 } }), group, sources: [src] });

  it('an incremental run lists a well-known prefix in key ranges and sees every change at their edges', async () => {
    const key = (i: number) => `p/k-${String(i).padStart(5, '0')}`;
    for (let i = 0; i < 2500; i++) await bucket.put(key(i), Buffer.from(`{"i":${i}}`));
    const ranged = (src = source()) =>
      backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group], { concurrency: { list: 4, transfer: 4 } }), group, sources: [src], listRanges: { keysPerRange: 500, minKeys: 100 } });
    const calls: (ListOptions | undefined)[] = [];
    const list = bucket.list.bind(bucket);
    bucket.list = (prefix: string, opts?: ListOptions) => (calls.push(opts), list(prefix, opts));

    expect((await ranged()).counters.objectsNew).toBe(2500);
    expect(calls.some((c) => c?.delimiter === '/')).toBe(true); // a seed fans out by sub-prefix
    calls.length = 0;

    // Ranges end at every 500th key (k-00499, k-00999, ...): change the keys on both sides of
    // those edges, add keys before the first, after the last and right after an edge.
    await bucket.delete(key(499));
    await bucket.delete(key(500));
    await bucket.delete(key(2499));
    await bucket.put(key(999), Buffer.from('changed'));
    await bucket.put(key(1000), Buffer.from('changed too'));
    for (const k of ['p/a-first', 'p/k-00499a', 'p/k-01999~', 'p/z-last']) await bucket.put(k, Buffer.from(k));

    const second = await ranged();
    expect(second.counters).toMatchObject({ objectsNew: 4, objectsChanged: 2, objectsDeleted: 3, objectsUnchanged: 2495, objectsFailed: 0 });
    expect(calls.every((c) => c?.delimiter === undefined)).toBe(true);
    expect(calls.map((c) => c?.startAfter ?? null).sort()).toEqual([null, key(499), key(999), key(1499), key(1999)]);

    const third = await ranged();
    expect(third.counters).toMatchObject({ objectsNew: 0, objectsChanged: 0, objectsDeleted: 0, objectsUnchanged: 2501 });
  });

  it('a run that cannot read some objects is partial and records each failure', async () => {
    for (let i = 0; i < 20; i++) await bucket.put(`ok/${i}.json`, Buffer.from(`{"i":${i}}`));
    await bucket.put('secret/a.json', Buffer.from('{}'));
    await bucket.put('secret/b.json', Buffer.from('{}'));
    bucket.denied = new Set(['secret/a.json', 'secret/b.json']);

    const summary = await run();
    expect(summary.status).toBe('partial');
    expect(summary.counters.objectsFailed).toBe(2);
    expect(summary.counters.objectsNew).toBe(20);
    const failures = catalog.failuresOfRun(catalog.findRun(summary.runId)!.seq);
    expect(failures.map((f) => [f.key, f.code]).sort()).toEqual([
      ['secret/a.json', 'AccessDenied'],
      ['secret/b.json', 'AccessDenied'],
    ]);
    expect(failures[0]!.message).toMatch(/AccessDenied/);

    // Once readable, the next run picks the failed objects up as new.
    bucket.denied.clear();
    const next = await run();
    expect(next.status).toBe('complete');
    expect(next.counters).toMatchObject({ objectsNew: 2, objectsUnchanged: 20 });
  });

  it('reads an object again when its body arrives cut off or altered, and stores only the good bytes', async () => {
    const body = Buffer.from(JSON.stringify({ rows: Array.from({ length: 200 }, (_, i) => i) }));
    await bucket.put('t/cut.json', body);
    await bucket.put('t/flipped.json', Buffer.concat([body, Buffer.from('x')]));
    await bucket.put('t/always-bad.json', Buffer.concat([body, Buffer.from('y')]));
    bucket.damage.set('t/cut.json', { times: 2, how: 'truncate' });
    bucket.damage.set('t/flipped.json', { times: 1, how: 'flip' });
    bucket.damage.set('t/always-bad.json', { times: 99, how: 'flip' });

    const summary = await run();
    expect(summary.status).toBe('partial');
    expect(bucket.gets.get('t/cut.json')).toBe(3);
    expect(bucket.gets.get('t/flipped.json')).toBe(2);
    expect(bucket.gets.get('t/always-bad.json')).toBe(5);
    const [failure] = catalog.failuresOfRun(catalog.findRun(summary.runId)!.seq);
    expect(failure).toMatchObject({ key: 't/always-bad.json', code: 'ChecksumMismatch' });
    expect(failure!.message).toMatch(/does not match its ETag/);
    // The damaged reads stored nothing: exactly the two good contents are in the repository.
    expect(summary.counters.blobsNew).toBe(2);

    const target = join(dir.path, 'out');
    const r = await restore({ repo, catalog, scopes: [{ bucket: 'events' }], cut: { runSeq: catalog.findRun(summary.runId)!.seq }, target: new FsStore({ root: target, fsync: false }), bucketDirs: false, concurrency: 2 });
    expect(r.restored).toBe(2);
    expect(readFileSync(join(target, 't/cut.json')).equals(body)).toBe(true);
  });

  it('an object deleted between listing and GET is a recorded failure, not a crash', async () => {
    await bucket.put('race/here.json', Buffer.from('{}'));
    await bucket.put('race/vanishing.json', Buffer.from('{}'));
    const original = bucket.get.bind(bucket);
    bucket.get = async (key, opts) => {
      if (key === 'race/vanishing.json') await bucket.delete(key);
      return original(key, opts);
    };
    const summary = await run();
    expect(summary.status).toBe('partial');
    expect(catalog.failuresOfRun(catalog.findRun(summary.runId)!.seq)).toEqual([
      expect.objectContaining({ key: 'race/vanishing.json', code: expect.stringMatching(/NotFound|NoSuchKey/) }),
    ]);
    // The next run sees it gone: nothing to fail, nothing marked deleted (it was never backed up).
    const next = await run();
    expect(next.status).toBe('complete');
    expect(next.counters).toMatchObject({ objectsUnchanged: 1, objectsDeleted: 0 });
  });

  it('completes byte-exact when 10 % of GETs fail (throttled, 500, reset, body cut off)', async () => {
    for (let i = 0; i < 600; i++) await bucket.put(`f/${i % 6}/${i}.json`, Buffer.from(JSON.stringify({ i, pad: 'p'.repeat(i) })));
    const faulty = new FaultyStore(bucket, { rate: 0.1, seed: 5, faults: ['throttle', 'server', 'reset', 'truncate'] });
    const summary = await run({ ...source(), objectStore: faulty });
    expect(summary).toMatchObject({ status: 'complete', counters: { objectsNew: 600, objectsFailed: 0 } });
    expect(Object.values(faulty.injected).reduce((a, b) => a + b, 0)).toBeGreaterThan(30);
    expect(faulty.injected.truncate).toBeGreaterThan(0);
    const target = join(dir.path, 'faulty-out');
    const r = await restore({ repo, catalog, scopes: [{ bucket: 'events' }], cut: { runSeq: catalog.findRun(summary.runId)!.seq }, target: new FsStore({ root: target, fsync: false }), bucketDirs: false, concurrency: 4 });
    expect(r.restored).toBe(600);
    expect(readFileSync(join(target, 'f/3/123.json'), 'utf8')).toBe(JSON.stringify({ i: 123, pad: 'p'.repeat(123) }));
  });

  it('skips objects in archive storage classes with a clear reason', async () => {
    await bucket.put('cold/a.parquet', Buffer.from('cold'));
    await bucket.put('hot/b.parquet', Buffer.from('hot'));
    bucket.archived.add('cold/a.parquet');
    const summary = await run();
    expect(summary.status).toBe('partial');
    expect(bucket.gets.get('cold/a.parquet')).toBeUndefined();
    const [failure] = catalog.failuresOfRun(catalog.findRun(summary.runId)!.seq);
    expect(failure).toMatchObject({ key: 'cold/a.parquet', code: 'ArchivedObject' });
    expect(failure!.message).toMatch(/stored in GLACIER; it must be restored/);
  });

  it('lists top-level prefixes in parallel and honours exclusions', async () => {
    for (const table of ['a', 'b', 'c', 'd', 'e', 'f'])
      for (let i = 0; i < 30; i++) await bucket.put(`${table}/dt=1/part-${i}.json`, Buffer.from(`${table}${i}`));
    await bucket.put('a/_temporary/x.json', Buffer.from('tmp'));
    await bucket.put('top-level.txt', Buffer.from('top'));
    const summary = await run(source([''], ['**/_temporary/**']));
    expect(summary.counters.objectsNew).toBe(181);
    expect(summary.counters.objectsExcluded).toBe(1);
    expect(bucket.maxConcurrentListings).toBeGreaterThan(1);
    expect(bucket.maxConcurrentListings).toBeLessThanOrEqual(4);
  });

  it('backs up only the configured prefixes, and a key that vanished gets a delete marker', async () => {
    await bucket.put('keep/1', Buffer.from('1'));
    await bucket.put('keep/2', Buffer.from('2'));
    await bucket.put('other/3', Buffer.from('3'));
    const first = await run(source(['keep/']));
    expect(first.counters.objectsNew).toBe(2);
    await bucket.delete('keep/2');
    const second = await run(source(['keep/']));
    expect(second.counters).toMatchObject({ objectsDeleted: 1, objectsUnchanged: 1 });
    // The state of the latest run no longer has keep/2; the first run's still does.
    expect(selectState(catalog, [{ bucket: 'events' }], { runSeq: catalog.findRun(second.runId)!.seq })).toBe(1);
    expect(selectState(catalog, [{ bucket: 'events' }], { runSeq: catalog.findRun(first.runId)!.seq })).toBe(2);
  });

  it('notices the deletion of every key under a prefix, even of a whole top-level prefix', async () => {
    await bucket.put('gone/a', Buffer.from('a'));
    await bucket.put('gone/deep/b', Buffer.from('b'));
    await bucket.put('keep/c', Buffer.from('c'));
    await run();
    await bucket.delete('gone/a');
    await bucket.delete('gone/deep/b');
    const second = await run();
    expect(second.counters).toMatchObject({ objectsDeleted: 2, objectsUnchanged: 1 });
    // Once recorded as deleted, the vanished prefix is not listed again.
    const listsBefore = bucket.stats.list;
    const third = await run();
    expect(third.counters).toMatchObject({ objectsDeleted: 0, objectsUnchanged: 1 });
    expect(bucket.stats.list - listsBefore).toBeLessThanOrEqual(2);
  });

  it('restore to a directory never writes outside it and names every refused key', async () => {
    const hostile = ['../../escape.txt', '/abs/path', 'a/../../b', '..\\x', 'nul\u0000byte', 'ok/../../up', 'a', 'a/b'];
    for (const key of hostile) await bucket.put(key, Buffer.from(`content of ${JSON.stringify(key)}`));
    await bucket.put('fine/file.txt', Buffer.from('fine'));
    const summary = await run();
    expect(summary.status).toBe('complete');

    const target = join(dir.path, 'restore', 'inner');
    const result = await restore({
      repo,
      catalog,
      scopes: [{ bucket: 'events' }],
      cut: { runSeq: catalog.findRun(summary.runId)!.seq },
      target: new FsStore({ root: target, fsync: false }),
      bucketDirs: false,
      concurrency: 4,
    });
    const refused = result.failures.map((f) => f.key);
    expect(refused.filter((k) => k !== 'a' && k !== 'a/b').sort()).toEqual(['../../escape.txt', '..\\x', '/abs/path', 'a/../../b', 'nul\u0000byte', 'ok/../../up'].sort());
    // `a` and `a/b` cannot both be files: whichever comes second is refused, by name.
    expect(refused.filter((k) => k === 'a' || k === 'a/b')).toHaveLength(1);
    expect(result.restored).toBe(2); // fine/file.txt and one of a / a/b
    for (const f of result.failures) {
      // Each refusal names the key (JSON-quoted where it holds odd characters) and why.
      expect(f.message.includes(JSON.stringify(f.key)) || f.message.includes(f.key)).toBe(true);
      if (f.key !== 'a' && f.key !== 'a/b') expect(f.code).toBe('InvalidKey');
    }
    // Nothing escaped the target: its parent holds only the target itself.
    expect(readdirSync(join(dir.path, 'restore'))).toEqual(['inner']);
    expect(existsSync(join(dir.path, 'escape.txt'))).toBe(false);
    expect(existsSync('/abs/path')).toBe(false);
  });
});
