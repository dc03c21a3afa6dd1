// Object Lock without a server: duration parsing, the config MAC over the lock setting, the
// extend planner (a pure function), removeRepositoryObject and `lock extend` on a MemStore that
// simulates a lock bucket (deleting a retained version fails, as on S3).
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { applyForgetDocument } from '../../src/catalog/forget.js';
import { LockDates } from '../../src/catalog/lock-dates.js';
import { backupGroup } from '../../src/engine/backup.js';
import { extendRetention, planExtension } from '../../src/engine/lock-extend.js';
import { IntegrityError, StorageError, UsageError } from '../../src/errors.js';
import type { Group } from '../../src/policy/types.js';
import {
  CLOCK_SKEW_MARGIN_MS,
  DAY_MS,
  defaultSlackMs,
  parseLockMode,
  parseRetentionDays,
  retainUntilFor,
} from '../../src/repository/object-lock.js';
import { lockedUntil, removeRepositoryObject, versionsOf } from '../../src/repository/remove.js';
import { Repository } from '../../src/repository/repository.js';
import { FaultyStore } from '../helpers/faulty-store.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { getBytes, type ObjectStore } from '../../src/storage/types.js';
import { runCli } from '../helpers/cli.js';
import { TEST_KDF, openCatalog, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';

const LOCK = { mode: 'GOVERNANCE', retentionDays: 30 } as const;

function initLocked(store: ObjectStore, password: string | null = 'pw', lock: { mode: 'GOVERNANCE' | 'COMPLIANCE'; retentionDays: number } = LOCK): Promise<Repository> {
  return Repository.init(store, { password, kdf: { ...TEST_KDF }, objectLock: lock });
}

async function keys(store: ObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const item of store.list(prefix)) if (item.kind === 'object') out.push(item.key);
  return out;
}

describe('retention durations and modes', () => {
  it.each([
    ['90d', 90],
    ['12w', 84],
    ['1y', 365],
    ['1y30d', 395],
    [' 7D ', 7],
    ['100y', 36500],
  ])('%s is %i days', (text, days) => {
    expect(parseRetentionDays(text)).toBe(days);
  });

  it.each(['', '90', 'd', '0d', '90x', '-1d', '1.5d', '101y', '3m', '90 d'])('refuses %j', (text) => {
    expect(parseRetentionDays(text)).toBeNull();
  });

  it('reads modes in any case and refuses others', () => {
    expect(parseLockMode('compliance')).toBe('COMPLIANCE');
    expect(parseLockMode('Governance')).toBe('GOVERNANCE');
    expect(parseLockMode('legal-hold')).toBeNull();
  });

  it('dates retention from now, with the clock margin, in whole seconds', () => {
    const now = Date.UTC(2026, 10, 23, 10, 0, 0, 1);
    const until = retainUntilFor(now, 90);
    expect(until.getTime() % 1000).toBe(0);
    expect(until.getTime()).toBeGreaterThanOrEqual(now + 90 * DAY_MS + CLOCK_SKEW_MARGIN_MS);
    expect(until.getTime()).toBeLessThan(now + 90 * DAY_MS + CLOCK_SKEW_MARGIN_MS + 1000);
  });
});

describe('the extend planner', () => {
  const now = Date.UTC(2026, 10, 23);
  const p = { now, retentionDays: 30, slackMs: 10 * DAY_MS };
  const need = now + 30 * DAY_MS + CLOCK_SKEW_MARGIN_MS;

  it('asks the server about an unknown date', () => {
    expect(planExtension(null, p)).toEqual({ action: 'ask' });
  });

  it('keeps an object retained beyond now + retention, and says when it will be due', () => {
    expect(planExtension(need + 5 * DAY_MS, p)).toEqual({ action: 'keep', dueAt: now + 5 * DAY_MS });
    expect(planExtension(need + 1, p)).toEqual({ action: 'keep', dueAt: now + 1 });
  });

  it('extends an object retained less than now + retention to now + retention + slack', () => {
    for (const known of [need, need - 1, now, 0]) {
      const d = planExtension(known, p);
      expect(d.action).toBe('extend');
      if (d.action !== 'extend') continue;
      expect(d.until.getTime()).toBe(need + 10 * DAY_MS);
      // …which is not due again before the slack has passed.
      expect(d.dueAt).toBe(now + 10 * DAY_MS);
      expect(planExtension(d.until.getTime(), { ...p, now: now + 10 * DAY_MS - 1 }).action).toBe('keep');
      expect(planExtension(d.until.getTime(), { ...p, now: now + 10 * DAY_MS }).action).toBe('extend');
    }
  });
});

describe('Object Lock in the repository config', () => {
  it('stores mode and retention in config, covered by its MAC', async () => {
    const store = new MemStore({ objectLock: true });
    const told: [string, Date, string | null][] = [];
    await Repository.init(store, { password: 'pw', kdf: { ...TEST_KDF }, objectLock: LOCK, onRetention: (n, d, v) => told.push([n, d, v]) });
    const [configVersion] = await versionsOf(store, 'config');
    expect(told).toEqual([['config', (await store.getRetention('config'))!.retainUntil, configVersion!.versionId]]);
    const config = JSON.parse((await getBytes(store, 'config')).toString('utf8'));
    expect(config.objectLock).toEqual(LOCK);
    expect((await Repository.open(store, { password: async () => 'pw' })).objectLock).toEqual(LOCK);

    for (const altered of [{ ...config, objectLock: { ...LOCK, retentionDays: 1 } }, { ...config, objectLock: undefined }]) {
      await store.put('config', Buffer.from(JSON.stringify(altered)));
      const err = await Repository.open(store, { password: async () => 'pw' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IntegrityError);
      expect((err as Error).message).toMatch(/altered/);
    }
  });

  it('refuses an invalid objectLock in an unencrypted config', async () => {
    const store = new MemStore({ objectLock: true });
    await initLocked(store, null);
    const config = JSON.parse((await getBytes(store, 'config')).toString('utf8'));
    await store.put('config', Buffer.from(JSON.stringify({ ...config, objectLock: { mode: 'SOMETIMES', retentionDays: 3 } })));
    await expect(Repository.open(store, { password: async () => 'x' })).rejects.toThrow(/invalid objectLock/);
  });

  it('refuses Object Lock on a bucket without it, and on a directory, naming the place', async () => {
    const plain = new MemStore({ versioning: true, name: 'plain-bucket' });
    const err = await initLocked(plain).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toBe('the bucket of mem://plain-bucket/ does not have S3 Object Lock enabled');
    expect((err as UsageError).hint).toMatch(/Object Lock enabled/);
    expect(await keys(plain)).toEqual([]);

    const dir = tempDir('lock-fs');
    try {
      await expect(initLocked(new FsStore({ root: dir.path, fsync: false }))).rejects.toThrow(/cannot use S3 Object Lock: only S3 repositories can/);
    } finally {
      dir.cleanup();
    }
  });

  it('puts a retention on every object but locks/, and tells the listener', async () => {
    const store = new MemStore({ objectLock: true });
    const before = Date.now();
    const repo = await initLocked(store);
    const told = new Map<string, Date>();
    repo.onRetention((name, until) => told.set(name, until));
    await repo.addPassword('second', { ...TEST_KDF });
    const indexName = await repo.writeDocument('index', null, { version: 1, packs: [] });
    const ackName = await repo.writeDocument('acks', '20261201T000000Z-abcdef', { version: 1, id: '20261201T000000Z-abcdef', run: 'r', host: 'h', created: '2026-12-01T00:00:00.000Z' });
    await repo.put('locks/abc', Buffer.from('{}'));
    const floor = before + LOCK.retentionDays * DAY_MS;
    for (const key of await keys(store)) {
      const r = await store.getRetention(key);
      if (key.startsWith('locks/')) {
        expect(r, key).toBeNull();
        continue;
      }
      expect(r?.mode, key).toBe('GOVERNANCE');
      expect(r!.retainUntil.getTime(), key).toBeGreaterThanOrEqual(floor + defaultSlackMs(LOCK.retentionDays));
      if (key !== 'config') expect(told.get(key)?.getTime(), key).toBe(r!.retainUntil.getTime());
    }
    expect(told.has(`index/${indexName}`)).toBe(true);
    expect(told.has(`acks/${ackName}`)).toBe(true);
    expect(told.has('locks/abc')).toBe(false);
  });
});

describe('removeRepositoryObject', () => {
  it('leaves a retained object whole and says until when; deletes every version once it is free', async () => {
    const store = new MemStore({ objectLock: true });
    const repo = await initLocked(store);
    await repo.put('packs/aa/aa01', Buffer.from('pack'));
    await repo.put('packs/aa/aa01', Buffer.from('pack')); // a second version of the same content
    const retention = await store.getRetention('packs/aa/aa01');

    const until = await lockedUntil(repo, 'packs/aa/aa01');
    expect(until?.getTime()).toBe(retention!.retainUntil.getTime());
    const result = await removeRepositoryObject(repo, 'packs/aa/aa01');
    expect(result).toEqual({ removed: false, lockedUntil: until });
    // No delete marker either: the object still reads.
    expect((await getBytes(store, 'packs/aa/aa01')).toString()).toBe('pack');

    // Retention over (GOVERNANCE may be shortened here, as with a bypass on S3).
    for await (const v of store.list('packs/aa/aa01', { versions: true })) {
      if (v.kind === 'object') await store.putRetention('packs/aa/aa01', { mode: 'GOVERNANCE', retainUntil: new Date(Date.now() - 1000) }, { versionId: v.versionId! });
    }
    expect(await lockedUntil(repo, 'packs/aa/aa01')).toBeNull();
    expect(await removeRepositoryObject(repo, 'packs/aa/aa01')).toEqual({ removed: true });
    const left: unknown[] = [];
    for await (const v of store.list('packs/aa/aa01', { versions: true })) left.push(v);
    expect(left).toEqual([]);
  });

  it('maps a refused delete (locked after the check) to lockedUntil', async () => {
    const store = new MemStore({ objectLock: true });
    const repo = await initLocked(store);
    await repo.put('runs/r1', Buffer.from('m'));
    const real = store.getRetention.bind(store);
    let calls = 0;
    // The first check sees no retention (as if another process locked it right after).
    store.getRetention = async (key, opts) => (calls++ === 0 ? null : real(key, opts));
    const result = await removeRepositoryObject(repo, 'runs/r1');
    expect(result.removed).toBe(false);
    expect(calls).toBe(2);
  });

  it('in a versioned bucket without Object Lock, removes all versions, not just adds a marker', async () => {
    const store = new MemStore({ versioning: true });
    const repo = await Repository.init(store, { password: null });
    await repo.put('index/x', Buffer.from('1'));
    await repo.put('index/x', Buffer.from('2'));
    await repo.put('index/xy', Buffer.from('other key with the same prefix'));
    expect(await removeRepositoryObject(repo, 'index/x')).toEqual({ removed: true });
    const left: string[] = [];
    for await (const v of store.list('index/', { versions: true })) if (v.kind === 'object') left.push(v.key);
    expect(left).toEqual(['index/xy']);
  });

  it('on an unversioned store, is a plain delete', async () => {
    const store = new MemStore();
    const repo = await Repository.init(store, { password: null });
    await repo.put('packs/bb/bb', Buffer.from('p'));
    expect(await removeRepositoryObject(repo, 'packs/bb/bb')).toEqual({ removed: true });
    expect(store.stats.delete).toBe(1);
    expect(await keys(store, 'packs/')).toEqual([]);
  });
});

describe('lock extend on a simulated lock bucket', () => {
  let dir: ReturnType<typeof tempDir>;
  let store: MemStore;
  let repo: Repository;
  let catalog: Catalog;
  let group: Group;

  beforeEach(async () => {
    dir = tempDir('lock-extend');
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i++) files[`t/${i}.json`] = JSON.stringify({ i, pad: 'x'.repeat(2000 + i) });
    writeTree(join(dir.path, 'lake'), files);
    store = new MemStore({ objectLock: true });
    repo = await Repository.init(store, { password: 'pw', kdf: { ...TEST_KDF }, objectLock: LOCK, packSize: 16 * 1024 });
    catalog = openCatalog(dir.path, repo);
    const dates = new LockDates(catalog);
    repo.onRetention((name, until, versionId) => dates.record(name, until, versionId));
    group = { name: 'lake', sources: [{ kind: 'path', path: join(dir.path, 'lake'), prefixes: [''], exclude: [] }] };
    const summary = await backupGroup({ repo, catalog, policy: testPolicy(store.location, [group]), group });
    expect(summary.status).toBe('complete');
    expect(summary.counters.packsWritten).toBeGreaterThan(1);
  });

  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  const referenced = async () => (await keys(store)).filter((k) => !k.startsWith('locks/'));

  it('right after writing, needs nothing but one question about config', async () => {
    const report = await extendRetention({ repo, catalog, dryRun: false, concurrency: 4 });
    expect(report.checked).toBe((await referenced()).length);
    expect(report.asked).toBe(1); // config was written before the catalog existed
    expect(report.extended).toBe(0);
    expect(report.requests.put).toBe(0);
    const again = await extendRetention({ repo, catalog, dryRun: false, concurrency: 4 });
    expect(again.asked + again.extended + again.requests.head + again.requests.put).toBe(0);
    // Written with retention + slack: due once the slack has passed.
    const due = Date.parse(again.nextDue!);
    expect(due).toBeGreaterThan(Date.now() + defaultSlackMs(30) - 60_000);
    expect(due).toBeLessThanOrEqual(Date.now() + defaultSlackMs(30) + 1000); // dates are whole seconds, rounded up
  });

  it('later, extends every referenced object once, then nothing until the slack has passed', async () => {
    const later = Date.now() + 20 * DAY_MS; // 30-day retention: everything now runs short
    const dry = await extendRetention({ repo, catalog, dryRun: true, concurrency: 4, now: later });
    expect(dry.extended).toBe((await referenced()).length);
    expect(dry.requests.put).toBe(0);

    const report = await extendRetention({ repo, catalog, dryRun: false, concurrency: 4, now: later, slackMs: 5 * DAY_MS });
    expect(report.extended).toBe((await referenced()).length);
    expect(report.requests.put).toBe(report.extended);
    const target = later + 30 * DAY_MS + CLOCK_SKEW_MARGIN_MS + 5 * DAY_MS;
    for (const key of await referenced()) {
      const r = await store.getRetention(key);
      expect(Math.abs(r!.retainUntil.getTime() - target), key).toBeLessThan(1000);
    }
    expect(Math.abs(Date.parse(report.nextDue!) - (later + 5 * DAY_MS))).toBeLessThan(1000);

    const next = await extendRetention({ repo, catalog, dryRun: false, concurrency: 4, now: later + 4 * DAY_MS });
    expect(next.extended).toBe(0);
    expect(next.requests.head + next.requests.put + next.requests.get).toBe(0);
    const due = await extendRetention({ repo, catalog, dryRun: false, concurrency: 4, now: later + 5 * DAY_MS + 1000 });
    expect(due.extended).toBe((await referenced()).length);
  });

  it('does not extend packs that hold only versions forget dropped', async () => {
    // As forget leaves things: every version of the run dropped (its manifest stays while listed).
    const run = catalog.latestRun({ statuses: ['complete'] })!;
    const db = sqlite(catalog);
    const withRecords = db
      .prepare("SELECT DISTINCT 'packs/' || substr(p.name, 1, 2) || '/' || p.name FROM packs p JOIN blobs b ON b.pack = p.id WHERE ((b.flags >> 1) & 3) = 1")
      .pluck()
      .all() as string[];
    const allPacks = await keys(store, 'packs/');
    expect(withRecords.length).toBeGreaterThan(0);
    expect(withRecords.length).toBeLessThan(allPacks.length);
    db.prepare('DELETE FROM version_blobs WHERE version IN (SELECT id FROM versions WHERE run = ?)').run(run.seq);
    db.prepare('DELETE FROM versions WHERE run = ?').run(run.seq);
    const later = Date.now() + 20 * DAY_MS;
    const report = await extendRetention({ repo, catalog, dryRun: false, concurrency: 4, now: later });
    const others = (await referenced()).filter((k) => !k.startsWith('packs/'));
    expect(report.checked).toBe(others.length + withRecords.length);
    expect(report.extended).toBe(report.checked);
    for (const pack of allPacks) {
      const until = (await store.getRetention(pack))!.retainUntil.getTime();
      expect(until === Date.parse(report.extendedUntil!), pack).toBe(withRecords.includes(pack));
    }
  });

  it('does not extend a manifest a forget deleted that is back in runs/', async () => {
    const first = catalog.latestRun({ statuses: ['complete'] })!;
    writeTree(join(dir.path, 'lake'), { 't/0.json': 'changed' });
    expect((await backupGroup({ repo, catalog, policy: testPolicy(store.location, [group]), group })).status).toBe('complete');
    // As a sync leaves it after another host's forget deleted the first run's manifest, which an
    // older copy then put back: nothing reads it, and the next forget deletes it.
    applyForgetDocument(catalog, 'f-0001', { version: 1, id: 'f', part: 1, parts: 1, created: new Date().toISOString(), host: 'h', forgotten: [first.id], manifestsKept: [], dropped: [] });
    const later = Date.now() + 20 * DAY_MS;
    const report = await extendRetention({ repo, catalog, dryRun: false, concurrency: 4, now: later });
    const others = (await referenced()).filter((k) => k !== `runs/${first.id}`);
    expect(report.checked).toBe(others.length);
    expect(report.extended).toBe(others.length);
    expect((await store.getRetention(`runs/${first.id}`))!.retainUntil.getTime()).toBeLessThan(Date.parse(report.extendedUntil!));
  });

  it('keeps the data version of an object hidden by a delete marker retained, and says so', async () => {
    const pack = (await keys(store, 'packs/'))[0]!;
    const index = (await keys(store, 'index/'))[0]!;
    const dataVersion = async (key: string) => {
      for await (const v of store.list(key, { versions: true })) if (v.kind === 'object' && !v.isDeleteMarker) return v.versionId!;
      throw new Error('no data version');
    };
    const packVersion = await dataVersion(pack);
    const indexVersion = await dataVersion(index);
    await store.delete(pack); // a plain DELETE: only a marker, which Object Lock allows
    await store.delete(index);
    sqlite(catalog).prepare('DELETE FROM lock_until WHERE name = ?').run(pack);
    const later = Date.now() + 20 * DAY_MS;
    const warnings: string[] = [];
    const report = await extendRetention({ repo, catalog, dryRun: false, concurrency: 2, now: later, events: (e) => e.type === 'warning' && warnings.push(e.message) });
    // The index's version is known, so it is extended by version id without a question; the
    // pack's is not, so the listing shows the marker.
    expect(report.hidden).toBe(1);
    expect(report.missing).toBe(0);
    expect(report.extended).toBe((await referenced()).length + 2);
    for (const [key, versionId] of [[pack, packVersion], [index, indexVersion]] as const) {
      expect((await store.getRetention(key, { versionId }))!.retainUntil.getTime()).toBe(Date.parse(report.extendedUntil!));
    }
    expect(warnings).toEqual([
      `${store.location}${pack} is hidden by a delete marker (a DELETE without version id); its data (version ${packVersion}) stays retained: remove the marker to make it readable again`,
    ]);
  });

  it('extends the version lakeguard wrote, not a newer one put over it', async () => {
    const pack = (await keys(store, 'packs/'))[0]!;
    const [original] = await versionsOf(store, pack);
    // Someone with PutObject replaces the pack (Object Lock cannot prevent new versions).
    const forged = await store.put(pack, Buffer.from('garbage'), { objectLock: { mode: 'GOVERNANCE', retainUntil: new Date(Date.now() + 60_000) } });
    const later = Date.now() + 20 * DAY_MS;
    const report = await extendRetention({ repo, catalog, dryRun: false, concurrency: 2, now: later });
    const until = Date.parse(report.extendedUntil!);
    expect((await store.getRetention(pack, { versionId: original!.versionId! }))!.retainUntil.getTime()).toBe(until);
    expect((await store.getRetention(pack, { versionId: forged.versionId! }))!.retainUntil.getTime()).toBeLessThan(until);

    // Without the catalog's dates, the oldest version is the one kept, with a warning.
    sqlite(catalog).exec('DELETE FROM lock_until');
    const warnings: string[] = [];
    const again = await extendRetention({ repo, catalog, dryRun: false, concurrency: 2, now: later + 10 * DAY_MS, events: (e) => e.type === 'warning' && warnings.push(e.message) });
    expect((await store.getRetention(pack, { versionId: original!.versionId! }))!.retainUntil.getTime()).toBe(Date.parse(again.extendedUntil!));
    expect((await store.getRetention(pack, { versionId: forged.versionId! }))!.retainUntil.getTime()).toBeLessThan(until);
    expect(warnings).toEqual([`${store.location}${pack} has 2 versions; the oldest (${original!.versionId}, the one lakeguard wrote) stays retained`]);
  });

  it('refuses a repository without Object Lock', async () => {
    const plain = await Repository.init(new MemStore(), { password: null });
    await expect(extendRetention({ repo: plain, catalog, dryRun: false, concurrency: 1 })).rejects.toThrow(/was not created with Object Lock/);
  });

  it('names a referenced object that is missing', async () => {
    const pack = (await keys(store, 'packs/'))[0]!;
    // Gone behind lakeguard's back (simulated: the whole key, all versions).
    (store as unknown as { objects: Map<string, unknown> }).objects.delete(pack);
    sqlite(catalog).exec('DELETE FROM lock_until');
    const warnings: string[] = [];
    const report = await extendRetention({
      repo,
      catalog,
      dryRun: true,
      concurrency: 2,
      events: (e) => e.type === 'warning' && warnings.push(e.message),
    });
    expect(report.missing).toBe(1);
    expect(warnings).toEqual([`${store.location}${pack} is referenced but missing from the repository; run \`lakeguard verify\``]);
  });
});

describe('MemStore lock simulation', () => {
  it('refuses deleting a retained version and shortening COMPLIANCE', async () => {
    const store = new MemStore({ objectLock: true });
    const until = new Date(Date.now() + 60_000);
    const put = await store.put('k', Buffer.from('v'), { objectLock: { mode: 'COMPLIANCE', retainUntil: until } });
    await expect(store.delete('k', { versionId: put.versionId! })).rejects.toSatisfy((e: unknown) => e instanceof StorageError && e.code === 'AccessDenied');
    await expect(store.putRetention('k', { mode: 'COMPLIANCE', retainUntil: new Date(Date.now() + 1000) })).rejects.toThrow(/only be extended/);
    await store.delete('k'); // a delete marker is allowed
    expect((await getBytes(store, 'k', { versionId: put.versionId! })).toString()).toBe('v');
    await expect(new MemStore().put('k', Buffer.from('v'), { objectLock: { mode: 'GOVERNANCE', retainUntil: until } })).rejects.toThrow(/not enabled/);
  });
});

describe('FaultyStore over a lock bucket', () => {
  it('passes Object Lock through, so fault tests can wrap a lock repository', async () => {
    const inner = new MemStore({ objectLock: true });
    const store = new FaultyStore(inner, { rate: 0, faults: [] });
    const repo = await initLocked(store);
    await repo.put('packs/cc/cc', Buffer.from('p'));
    expect((await inner.getRetention('packs/cc/cc'))?.mode).toBe('GOVERNANCE');
    expect((await removeRepositoryObject(repo, 'packs/cc/cc')).removed).toBe(false);
  });
});

describe('the CLI on a directory repository', () => {
  it('init --object-lock is refused for file://, --retention alone too; lock extend needs a locked repository (exit 2)', async () => {
    const dir = tempDir('lock-cli');
    try {
      const env = { LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') };
      const repo = `file://${join(dir.path, 'repo')}`;
      const locked = await runCli(['--repo', repo, 'init', '--object-lock', 'compliance', '--retention', '90d'], env);
      expect(locked.code).toBe(2);
      expect(locked.stderr).toBe(`lakeguard: ${repo}/ cannot use S3 Object Lock: only S3 repositories can\n  hint: drop --object-lock, or put the repository in an S3 bucket created with Object Lock enabled\n`);
      const alone = await runCli(['--repo', repo, 'init', '--retention', '90d'], env);
      expect(alone.code).toBe(2);
      expect(alone.stderr).toContain('--retention needs --object-lock compliance|governance');
      expect((await runCli(['--repo', repo, 'init'], env)).code).toBe(0);
      const extend = await runCli(['--repo', repo, 'lock', 'extend', '--json'], env);
      expect(extend.code).toBe(2);
      expect(JSON.parse(extend.stderr.trim())).toMatchObject({ message_type: 'exit_error', code: 2, message: `repository ${repo}/ was not created with Object Lock` });
    } finally {
      dir.cleanup();
    }
  }, 90_000); // five CLI processes: slow when the machine is busy
});
