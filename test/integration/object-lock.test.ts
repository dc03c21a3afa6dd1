// S3 Object Lock on the real server: a repository created with `init --object-lock` puts a
// retention on everything it writes; a locked pack survives a direct DeleteObject of its
// version; removeRepositoryObject answers "locked until"; `lock extend` extends what runs short
// and a second run right after makes no retention request. GOVERNANCE repositories (bypass
// possible, so the test can clean up) and one small COMPLIANCE repository (which stays on the
// server until its 1-day retention ends: a unique bucket, left behind on purpose).
import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectRetentionCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  type ObjectVersion,
} from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { CLOCK_SKEW_MARGIN_MS, DAY_MS, defaultSlackMs } from '../../src/repository/object-lock.js';
import { lockedUntil, removeRepositoryObject } from '../../src/repository/remove.js';
import { Repository } from '../../src/repository/repository.js';
import { runCli, summaryOf } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, testS3Store, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();
const PASSWORD = 'lock-test-password';

async function versionsUnder(bucket: string, prefix: string): Promise<ObjectVersion[]> {
  const out: ObjectVersion[] = [];
  for (let keyMarker: string | undefined, versionMarker: string | undefined; ; ) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    out.push(...(page.Versions ?? []));
    if (!page.IsTruncated) return out;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
  }
}

async function retentionOf(bucket: string, key: string, versionId?: string): Promise<{ mode: string; until: number }> {
  const r = await s3.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  return { mode: r.Retention!.Mode!, until: r.Retention!.RetainUntilDate!.getTime() };
}

async function s3ErrorOf(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (err) {
    return { name: (err as Error).name, status: (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode };
  }
  throw new Error('expected the S3 call to fail');
}

describe('S3 Object Lock on the repository', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let plain: string;
  let govBucket: string;
  const cleanup: string[] = [];
  const env = (name: string) => ({ ...testEnv(), LAKEGUARD_PASSWORD: PASSWORD, LAKEGUARD_CATALOG: join(dir.path, `${name}.db`) });
  const policy = (name: string, repo: string) => writeS3Policy(join(dir.path, `${name}.yaml`), { repo, buckets: [source] });

  beforeAll(async () => {
    dir = tempDir('it-lock');
    [source, plain, govBucket] = await Promise.all([createTestBucket('lg-lsrc'), createTestBucket('lg-lplain'), createTestBucket('lg-lgov', { objectLock: true })]);
    cleanup.push(source, plain, govBucket);
    for (let i = 0; i < 40; i++) {
      await s3.send(new PutObjectCommand({ Bucket: source, Key: `events/dt=2026-11-${String((i % 5) + 1).padStart(2, '0')}/${i}.json`, Body: JSON.stringify({ i, pad: 'p'.repeat(i * 50) }) }));
    }
  });

  afterAll(async () => {
    await Promise.all(cleanup.map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('refuses --object-lock on a bucket without Object Lock, and bad durations, with exit 2', async () => {
    const file = policy('plain', `${plain}/repo`);
    const noLock = await runCli(['--policy', file, 'init', '--object-lock', 'governance', '--retention', '1d'], env('plain'));
    expect(noLock.code).toBe(2);
    expect(noLock.stderr).toContain(`lakeguard: the bucket of s3://${plain}/repo/ does not have S3 Object Lock enabled`);
    expect(noLock.stderr).toMatch(/hint: create a bucket with Object Lock enabled/);
    expect(await versionsUnder(plain, '')).toEqual([]);

    const badDuration = await runCli(['--policy', file, 'init', '--object-lock', 'governance', '--retention', '90x'], env('plain'));
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toContain('--retention 90x: expected a duration in days, weeks or years such as 90d, 12w or 1y');
    const badMode = await runCli(['--policy', file, 'init', '--object-lock', 'forever', '--retention', '1d'], env('plain'));
    expect(badMode.code).toBe(2);
    expect(badMode.stderr).toContain('--object-lock forever: expected compliance or governance');
  });

  it('S3Store: tells lock buckets from others, reads and extends a retention, tells "no retention" from "no object"', async () => {
    const lockStore = testS3Store(govBucket, 'store-test/');
    const plainStore = testS3Store(plain, '');
    try {
      expect(await lockStore.objectLockEnabled()).toBe(true);
      expect(await plainStore.objectLockEnabled()).toBe(false);
      await lockStore.put('free', Buffer.from('no retention'));
      expect(await lockStore.getRetention('free')).toBeNull();
      await expect(lockStore.getRetention('absent')).rejects.toMatchObject({ code: 'NotFound' });
      const until = new Date(Math.ceil((Date.now() + 60_000) / 1000) * 1000);
      const put = await lockStore.put('held', Buffer.from('held'), { objectLock: { mode: 'GOVERNANCE', retainUntil: until } });
      expect(await lockStore.getRetention('held', { versionId: put.versionId! })).toEqual({ mode: 'GOVERNANCE', retainUntil: until });
      const later = new Date(until.getTime() + 60_000);
      await lockStore.putRetention('held', { mode: 'GOVERNANCE', retainUntil: later }, { versionId: put.versionId! });
      expect((await lockStore.getRetention('held'))?.retainUntil).toEqual(later);
      await expect(lockStore.putRetention('held', { mode: 'GOVERNANCE', retainUntil: until })).rejects.toMatchObject({ code: 'AccessDenied' });
    } finally {
      lockStore.destroy();
      plainStore.destroy();
    }
  });

  describe('a GOVERNANCE repository', () => {
    const prefix = 'gov/';
    let file: string;
    let startedAt: number;
    const cli = (...args: string[]) => runCli(['--policy', file, ...args], env('gov'));

    beforeAll(async () => {
      file = policy('gov', `${govBucket}/gov`);
      startedAt = Date.now();
      const init = await cli('init', '--json', '--object-lock', 'governance', '--retention', '1d');
      expect(init.code, init.stderr).toBe(0);
      expect(summaryOf(init).objectLock).toEqual({ mode: 'GOVERNANCE', retentionDays: 1 });
      const backup = await cli('backup', '--json');
      expect(backup.code, backup.stderr).toBe(0);
      expect(summaryOf(backup).counters.objectsNew).toBe(40);
    });

    it('puts a GOVERNANCE retention of at least 1 day on every object it wrote; leaves no lock versions behind', async () => {
      const versions = await versionsUnder(govBucket, prefix);
      const kinds = new Set(versions.map((v) => v.Key!.slice(prefix.length).split('/')[0]));
      // The backup's lock (written, refreshed, released) is gone with all its versions, not hidden by a marker.
      expect([...kinds].sort()).toEqual(['config', 'index', 'packs', 'runs']);
      const floor = startedAt + DAY_MS + defaultSlackMs(1);
      for (const v of versions) {
        const r = await retentionOf(govBucket, v.Key!, v.VersionId);
        expect(r.mode, v.Key).toBe('GOVERNANCE');
        expect(r.until, v.Key).toBeGreaterThanOrEqual(floor);
        expect(r.until, v.Key).toBeLessThan(Date.now() + DAY_MS + defaultSlackMs(1) + CLOCK_SKEW_MARGIN_MS + 1000);
      }
    });

    it('a locked pack cannot be deleted by a direct S3 call; a delete without version only adds a marker', async () => {
      const pack = (await versionsUnder(govBucket, `${prefix}packs/`))[0]!;
      const err = await s3ErrorOf(s3.send(new DeleteObjectCommand({ Bucket: govBucket, Key: pack.Key!, VersionId: pack.VersionId })));
      expect(err).toEqual({ name: 'AccessDenied', status: 403 });

      const marker = await s3.send(new DeleteObjectCommand({ Bucket: govBucket, Key: pack.Key! }));
      expect(marker.DeleteMarker).toBe(true);
      const still = await s3.send(new GetObjectCommand({ Bucket: govBucket, Key: pack.Key!, VersionId: pack.VersionId }));
      expect(Number(still.ContentLength)).toBe(pack.Size);
      await still.Body!.transformToByteArray();
      // Undo the marker (markers carry no retention) so the repository reads normally again.
      await s3.send(new DeleteObjectCommand({ Bucket: govBucket, Key: pack.Key!, VersionId: marker.VersionId }));
    });

    it('removeRepositoryObject leaves a locked pack whole and says until when', async () => {
      const store = testS3Store(govBucket, prefix);
      try {
        const repo = await Repository.open(store, { password: async () => PASSWORD });
        const pack = (await versionsUnder(govBucket, `${prefix}packs/`))[0]!;
        const name = pack.Key!.slice(prefix.length);
        const expected = (await retentionOf(govBucket, pack.Key!, pack.VersionId)).until;
        expect((await lockedUntil(repo, name))?.getTime()).toBe(expected);
        const deletesBefore = store.stats.delete;
        expect(await removeRepositoryObject(repo, name)).toEqual({ removed: false, lockedUntil: new Date(expected) });
        expect(store.stats.delete).toBe(deletesBefore); // checked first, not tried blindly
        const after = await versionsUnder(govBucket, pack.Key!);
        expect(after.map((v) => v.VersionId)).toEqual([pack.VersionId]);
        expect(after[0]!.IsLatest).toBe(true);
      } finally {
        store.destroy();
      }
    });

    it('removeRepositoryObject deletes every version of an object once its retention has ended', async () => {
      const store = testS3Store(govBucket, prefix);
      try {
        const repo = await Repository.open(store, { password: async () => PASSWORD });
        const index = (await versionsUnder(govBucket, `${prefix}index/`))[0]!;
        // A second version and a delete marker, as a retried write and a stray plain DELETE would leave.
        const body = await (await s3.send(new GetObjectCommand({ Bucket: govBucket, Key: index.Key! }))).Body!.transformToByteArray();
        // Far enough ahead that the calls below still set a future date on a busy machine.
        const until = new Date(Math.ceil((Date.now() + 10_000) / 1000) * 1000);
        const second = await s3.send(new PutObjectCommand({ Bucket: govBucket, Key: index.Key!, Body: body, ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: until }));
        await s3.send(
          new PutObjectRetentionCommand({ Bucket: govBucket, Key: index.Key!, VersionId: index.VersionId, BypassGovernanceRetention: true, Retention: { Mode: 'GOVERNANCE', RetainUntilDate: until } }),
        );
        await s3.send(new DeleteObjectCommand({ Bucket: govBucket, Key: index.Key! }));
        const name = index.Key!.slice(prefix.length);
        expect(await removeRepositoryObject(repo, name)).toEqual({ removed: false, lockedUntil: until });
        await new Promise((r) => setTimeout(r, until.getTime() - Date.now() + 1500));
        expect(await lockedUntil(repo, name)).toBeNull();
        expect(await removeRepositoryObject(repo, name)).toEqual({ removed: true });
        const left = await s3.send(new ListObjectVersionsCommand({ Bucket: govBucket, Prefix: index.Key! }));
        expect([...(left.Versions ?? []), ...(left.DeleteMarkers ?? [])]).toEqual([]);
        expect(second.VersionId).not.toBe(index.VersionId);
        // Put it back (same bytes, same name), so the repository stays whole for the next tests.
        await repo.put(name, Buffer.from(body));
      } finally {
        store.destroy();
      }
    });

    it('lock extend: nothing to do right after a backup; extends what runs short, and a second run makes no retention request', async () => {
      const first = await cli('lock', 'extend', '--json');
      expect(first.code, first.stderr).toBe(0);
      const s1 = summaryOf(first);
      const all = (await versionsUnder(govBucket, prefix)).filter((v) => !v.Key!.startsWith(`${prefix}locks/`));
      expect(s1.checked).toBe(all.length);
      expect(s1.extended).toBe(0);
      expect(s1.asked).toBe(0); // init and backup recorded every date they wrote
      expect(s1.requests.head).toBe(0);
      expect(s1.requests.put).toBe(0);

      // Shorten every retention behind lakeguard's back (a GOVERNANCE bypass, as an admin could)
      // and lose the local dates, as with a new machine: now everything is due and unknown.
      const soon = new Date(Date.now() + 3600_000);
      for (const v of all) {
        await s3.send(
          new PutObjectRetentionCommand({ Bucket: govBucket, Key: v.Key!, VersionId: v.VersionId, BypassGovernanceRetention: true, Retention: { Mode: 'GOVERNANCE', RetainUntilDate: soon } }),
        );
      }
      const catalog = Catalog.open(join(dir.path, 'gov.db'), JSON.parse(String(await (await s3.send(new GetObjectCommand({ Bucket: govBucket, Key: `${prefix}config` }))).Body!.transformToString())).id);
      sqlite(catalog).exec('DELETE FROM lock_until');
      catalog.close();

      // And an attacker hid one pack behind a delete marker (allowed under Object Lock).
      const hiddenPack = all.find((v) => v.Key!.startsWith(`${prefix}packs/`))!;
      const marker = await s3.send(new DeleteObjectCommand({ Bucket: govBucket, Key: hiddenPack.Key! }));

      // Unknown dates: one version listing and one GetObjectRetention each (the dry run learns them).
      const dryRun = await cli('lock', 'extend', '--json', '--dry-run');
      expect(dryRun.code).toBe(1); // a hidden object is damage to repair
      expect(dryRun.stderr).toContain(`${hiddenPack.Key!.slice(prefix.length)} is hidden by a delete marker`);
      const dry = summaryOf(dryRun);
      expect(dry.hidden).toBe(1);
      expect(dry.asked).toBe(all.length);
      expect(dry.requests.head).toBe(all.length);
      expect(dry.extended).toBe(all.length);
      expect(dry.requests.put).toBe(0);
      expect((await retentionOf(govBucket, all[0]!.Key!, all[0]!.VersionId)).until).toBe(soon.getTime());

      const before = Date.now();
      const extend = await cli('lock', 'extend', '--json');
      expect(extend.code, extend.stderr).toBe(0);
      const s2 = summaryOf(extend);
      expect(s2.checked).toBe(all.length);
      expect(s2.asked).toBe(0);
      expect(s2.extended).toBe(all.length);
      // One PutObjectRetention each, by the version id the catalog now knows (the hidden pack's too).
      expect(s2.requests.put).toBe(all.length);
      expect(s2.requests.head).toBe(0);
      await s3.send(new DeleteObjectCommand({ Bucket: govBucket, Key: hiddenPack.Key!, VersionId: marker.VersionId }));
      for (const v of all) {
        const r = await retentionOf(govBucket, v.Key!, v.VersionId);
        expect(r.until, v.Key).toBe(Date.parse(s2.extendedUntil));
        expect(r.until, v.Key).toBeGreaterThanOrEqual(before + DAY_MS + defaultSlackMs(1));
      }
      expect(Date.parse(s2.nextDue)).toBeGreaterThan(Date.now() + defaultSlackMs(1) - 120_000);

      const second = await cli('lock', 'extend', '--json');
      const s3r = summaryOf(second);
      expect(s3r.extended).toBe(0);
      expect(s3r.asked).toBe(0);
      expect(s3r.requests.head + s3r.requests.put).toBe(0);

      const text = await cli('lock', 'extend');
      expect(text.stdout).toMatch(new RegExp(`checked ${all.length} objects \\(GOVERNANCE, 1 days\\): 0 extended, 0 asked the server`));
      expect(text.stdout).toMatch(/next extension needed: 20\d\d-/);
    });

    it('GOVERNANCE: a delete with the bypass header (an administrator) succeeds; lakeguard itself never bypasses', async () => {
      const pack = (await versionsUnder(govBucket, `${prefix}packs/`)).at(-1)!;
      await s3.send(new DeleteObjectCommand({ Bucket: govBucket, Key: pack.Key!, VersionId: pack.VersionId, BypassGovernanceRetention: true }));
      expect((await versionsUnder(govBucket, pack.Key!)).length).toBe(0);
    });

    it('key remove: a retained key file stays (exit 1, its date) and this host stops extending it; config loses its password in a new version', async () => {
      const keyCli = (password: string, ...args: string[]) =>
        runCli(['--policy', file, '--json', 'key', ...args], { ...env('gov'), LAKEGUARD_PASSWORD: password, LAKEGUARD_NEW_PASSWORD: 'second-password' });
      const checked = async () => summaryOf(await cli('lock', 'extend', '--json', '--dry-run')).checked as number;
      const add = await keyCli(PASSWORD, 'add');
      expect(add.code, add.stderr).toBe(0);
      const id = summaryOf(add).added as string;
      const keyObject = `${prefix}keys/${id}`;
      const retained = await retentionOf(govBucket, keyObject);
      expect(retained.mode).toBe('GOVERNANCE');
      const withKey = await checked();

      const remove = await keyCli(PASSWORD, 'remove', id.slice(0, 8));
      expect(remove.code).toBe(1);
      expect(remove.stderr).toContain(`key ${id} is retained by Object Lock until ${new Date(retained.until).toISOString()}: it was not removed`);
      expect((await versionsUnder(govBucket, keyObject)).map((v) => v.IsLatest)).toEqual([true]);
      expect((await keyCli('second-password', 'list')).code).toBe(0);
      expect(await checked()).toBe(withKey - 1); // a pending deletion: left to expire

      // The retained key is on its way out: it does not count as the password that remains.
      const refused = await keyCli('second-password', 'remove', 'config');
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('key config is the last password of the repository');
      const third = await runCli(['--policy', file, '--json', 'key', 'add'], { ...env('gov'), LAKEGUARD_NEW_PASSWORD: 'third-password' });
      expect(third.code, third.stderr).toBe(0);

      const configKey = `${prefix}config`;
      const retire = await keyCli('second-password', 'remove', 'config');
      expect(retire.code, retire.stderr).toBe(0);
      const configVersions = (await versionsUnder(govBucket, configKey)).filter((v) => v.Key === configKey);
      expect(configVersions).toHaveLength(2);
      for (const v of configVersions) expect((await retentionOf(govBucket, configKey, v.VersionId)).mode).toBe('GOVERNANCE');
      expect((await keyCli(PASSWORD, 'list')).code).toBe(12);
      const keys = summaryOf(await keyCli('second-password', 'list')).keys as { id: string; current: boolean; removalPending: boolean }[];
      expect(keys.map((k) => [k.id, k.current, k.removalPending]).sort()).toEqual([[id, true, true], [summaryOf(third).added, false, false]].sort());
    });

    it('lock extend on a host whose sync cannot read an index file: exit 1, saying what it could not extend', async () => {
      const index = (await versionsUnder(govBucket, `${prefix}index/`)).find((v) => v.IsLatest === true)!;
      // A new version over the index file (Object Lock keeps the old one, but readers get this).
      const garbage = await s3.send(new PutObjectCommand({ Bucket: govBucket, Key: index.Key!, Body: 'not an index file' }));
      try {
        const fresh = await runCli(['--policy', file, 'lock', 'extend', '--json', '--dry-run'], { ...env('gov-fresh'), LAKEGUARD_PASSWORD: 'second-password' });
        expect(fresh.code, fresh.stderr).toBe(1);
        // The index file, and the record blob only it located.
        expect(fresh.stderr).toMatch(/could not read 2 repository objects \(warned above\), and what they hold is not in the catalog: what only they reference \(the packs of a damaged index file\) was not extended/);
        expect(summaryOf(fresh).unreadable).toBe(2);
      } finally {
        await s3.send(new DeleteObjectCommand({ Bucket: govBucket, Key: index.Key!, VersionId: garbage.VersionId!, BypassGovernanceRetention: true }));
      }
    });
  });

  it('COMPLIANCE: not even a bypass deletes or shortens; removeRepositoryObject says locked', async () => {
    // COMPLIANCE cannot be lifted: this bucket stays on the server until the retention ends.
    const bucket = await createTestBucket('lg-lcomp', { objectLock: true });
    cleanup.push(bucket);
    const small = await createTestBucket('lg-lcsrc');
    cleanup.push(small);
    await s3.send(new PutObjectCommand({ Bucket: small, Key: 'one.txt', Body: 'one small object' }));
    const file = writeS3Policy(join(dir.path, 'comp.yaml'), { repo: `${bucket}/c`, buckets: [small] });
    const cli = (...args: string[]) => runCli(['--policy', file, ...args], env('comp'));
    expect((await cli('init', '--object-lock', 'compliance', '--retention', '1d')).code).toBe(0);
    const backup = await cli('backup');
    expect(backup.code, backup.stderr).toBe(0);

    const pack = (await versionsUnder(bucket, 'c/packs/'))[0]!;
    const r = await retentionOf(bucket, pack.Key!, pack.VersionId);
    expect(r.mode).toBe('COMPLIANCE');
    expect(await s3ErrorOf(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: pack.Key!, VersionId: pack.VersionId, BypassGovernanceRetention: true })))).toEqual({
      name: 'AccessDenied',
      status: 403,
    });
    const shorten = s3.send(
      new PutObjectRetentionCommand({ Bucket: bucket, Key: pack.Key!, VersionId: pack.VersionId, BypassGovernanceRetention: true, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(Date.now() + 60_000) } }),
    );
    expect((await s3ErrorOf(shorten)).status).toBe(403);
    expect((await retentionOf(bucket, pack.Key!, pack.VersionId)).until).toBe(r.until);

    const store = testS3Store(bucket, 'c/');
    try {
      const repo = await Repository.open(store, { password: async () => PASSWORD });
      expect(await removeRepositoryObject(repo, pack.Key!.slice(2))).toEqual({ removed: false, lockedUntil: new Date(r.until) });
    } finally {
      store.destroy();
    }
    const extend = summaryOf(await cli('lock', 'extend', '--json'));
    expect(extend.mode).toBe('COMPLIANCE');
    expect(extend.extended).toBe(0);
  });
});
