// SIMULATION of AWS S3 archive behaviour (RGW has no archive tier): a store decorator answers
// a GET of one pack as S3 answers for an object in GLACIER or DEEP_ARCHIVE that has not been
// thawed (403 InvalidObjectState). Restore must fail exactly the objects of that pack, name
// the pack and the next step, and restore everything else.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { referencedPacks, blobsOfPack } from '../../src/catalog/verify-queries.js';
import { backupGroup } from '../../src/engine/backup.js';
import { restoreExitCode, thawOption } from '../../src/commands/restore.js';
import { UsageError } from '../../src/errors.js';
import { restore } from '../../src/engine/restore.js';
import { StorageError } from '../../src/errors.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import type { GetOptions, GetResult, ThawOptions, ThawState } from '../../src/storage/types.js';
import { hashTree, initRepo, openCatalog, prng, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';

/** Answers GETs of the packs in `archived` like S3 for an archived object not yet thawed. */
class SimulatedGlacierStore extends StoreDecorator {
  readonly archived = new Set<string>();
  readonly thawRequests: { key: string; days: number; tier: string }[] = [];
  /** The RestoreObject of a pack that finds its thaw done (S3: 200), counting from the first; never by default. */
  thawedAtRequest = Infinity;
  /** Like S3: the first RestoreObject of an archived object starts a thaw (202), later ones answer 409 until it is done. */
  override thaw(key: string, opts: ThawOptions): Promise<ThawState> {
    this.thawRequests.push({ key, days: opts.days, tier: opts.tier });
    const id = key.slice(key.lastIndexOf('/') + 1);
    if (!this.archived.has(id)) return Promise.resolve('ready');
    const asked = this.thawRequests.filter((r) => r.key === key).length;
    if (asked >= this.thawedAtRequest) {
      this.archived.delete(id);
      return Promise.resolve('ready');
    }
    return Promise.resolve(asked === 1 ? 'started' : 'in-progress');
  }
  override get(key: string, opts?: GetOptions): Promise<GetResult> {
    const id = key.slice(key.lastIndexOf('/') + 1);
    if (key.startsWith('packs/') && this.archived.has(id)) {
      return Promise.reject(
        new StorageError('InvalidObjectState', `GET ${this.location}${key}: InvalidObjectState: The operation is not valid for the object's storage class`, { backendCode: 'InvalidObjectState' }),
      );
    }
    return super.get(key, opts);
  }
}

describe('restore from archived packs (simulated S3 Glacier answers)', () => {
  let dir: ReturnType<typeof tempDir>;
  let store: SimulatedGlacierStore;
  let repo: Repository;
  let catalog: Catalog;

  beforeEach(async () => {
    dir = tempDir('archived-packs');
    const files: Record<string, string> = {};
    const rnd = prng(7);
    for (let i = 0; i < 60; i++) files[`t/${i}.txt`] = rnd(6000).toString('hex');
    writeTree(join(dir.path, 'lake'), files);
    store = new SimulatedGlacierStore(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    repo = await initRepo(store, { packSize: 64 * 1024 });
    catalog = openCatalog(dir.path, repo);
    const group = { name: 'lake', sources: [{ kind: 'path' as const, path: join(dir.path, 'lake'), prefixes: [''], exclude: [] }] };
    await backupGroup({ repo, catalog, policy: testPolicy(store.location, [group]), group });
  });

  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  it('fails the objects of an archived pack by name with the next step, and restores the rest', async () => {
    const packs = referencedPacks(catalog);
    expect(packs.length).toBeGreaterThan(2);
    const cold = packs[0]!.name;
    store.archived.add(cold);
    const inCold = new Set(blobsOfPack(catalog, cold).map((b) => b.hash.toString('hex'))).size;
    expect(inCold).toBeGreaterThan(0);

    const summary = await restore({
      repo,
      catalog,
      scopes: [{ bucket: 'lake' }],
      cut: { runSeq: catalog.latestRun({ statuses: ['complete'] })!.seq },
      target: new FsStore({ root: join(dir.path, 'out'), fsync: false }),
      bucketDirs: false,
      concurrency: 4,
    });
    expect(summary.failed).toBe(inCold);
    expect(summary.restored).toBe(60 - inCold);
    expect(summary.archived).toEqual({ objects: inCold, packs: 1 });
    // Thawing and running again finishes it: exit 5, not 3; with another failure or a missing key, 3.
    expect(restoreExitCode(summary)).toBe(5);
    expect(restoreExitCode({ ...summary, failed: summary.failed + 1 })).toBe(3);
    expect(restoreExitCode({ ...summary, missing: 1 })).toBe(3);
    expect(restoreExitCode({ ...summary, failed: 0, archived: { objects: 0, packs: 0 } })).toBe(0);
    for (const f of summary.failures) {
      expect(f.code).toBe('InvalidObjectState');
      expect(f.message).toContain(`pack ${cold}`);
      expect(f.message).toContain('the pack is archived: thaw it with an S3 RestoreObject, then run the restore again');
    }
  });

  it('names the archived pack of a large object read blob run by blob run', async () => {
    const big = join(dir.path, 'lake', 'big.bin');
    writeFileSync(big, prng(9)(3 * 1024 * 1024));
    const group = { name: 'lake', sources: [{ kind: 'path' as const, path: join(dir.path, 'lake'), prefixes: [''], exclude: [] }] };
    await backupGroup({ repo, catalog, policy: testPolicy(store.location, [group]), group });
    for (const p of referencedPacks(catalog)) store.archived.add(p.name);
    const summary = await restore({
      repo,
      catalog,
      scopes: [{ bucket: 'lake', key: 'big.bin' }],
      cut: { runSeq: catalog.latestRun({ statuses: ['complete'] })!.seq },
      target: new FsStore({ root: join(dir.path, 'out-big'), fsync: false }),
      bucketDirs: false,
      concurrency: 2,
    });
    expect(summary.failed).toBe(1);
    expect(summary.archived.objects).toBe(1);
    expect(summary.failures[0]!.message).toMatch(/^pack [0-9a-f]{64}: .*the pack is archived/);
    expect(restoreExitCode(summary)).toBe(5);
  });

  it('with thaw: asks S3 to thaw each archived pack once per run, and a run after the thaw finishes the restore', async () => {
    const cold = referencedPacks(catalog)[1]!.name;
    store.archived.add(cold);
    const run = (thaw?: { days: number; tier: 'Standard' | 'Bulk' | 'Expedited' }) =>
      restore({
        repo,
        catalog,
        scopes: [{ bucket: 'lake' }],
        cut: { runSeq: catalog.latestRun({ statuses: ['complete'] })!.seq },
        target: new FsStore({ root: join(dir.path, 'out-thaw'), fsync: false }),
        bucketDirs: false,
        concurrency: 4,
        ...(thaw === undefined ? {} : { thaw }),
      });
    const first = await run({ days: 3, tier: 'Bulk' });
    expect(first.archived.packs).toBe(1);
    expect(first.thaw).toEqual({ started: 1, 'in-progress': 0, ready: 0 });
    expect(store.thawRequests).toEqual([{ key: `packs/${cold.slice(0, 2)}/${cold}`, days: 3, tier: 'Bulk' }]);
    expect(restoreExitCode(first)).toBe(5);

    const second = await run({ days: 3, tier: 'Bulk' });
    expect(second.thaw).toEqual({ started: 0, 'in-progress': 1, ready: 0 });
    expect(second.restored).toBe(0); // everything else was written by the first run (if-changed)

    store.archived.delete(cold); // thawed
    const last = await run();
    expect(last.thaw).toBeNull();
    expect(last.failed).toBe(0);
    expect(last.restored).toBe(first.failed);
    expect(last.skippedIdentical).toBe(60 - first.failed);
    expect(restoreExitCode(last)).toBe(0);
  });

  it('with --wait: checks the thaw after growing pauses, then restores the thawed objects too (exit 0, byte-identical)', async () => {
    const cold = referencedPacks(catalog)[1]!.name;
    store.archived.add(cold);
    store.thawedAtRequest = 3; // asked at the first pass, then found in progress, then thawed
    const pauses: number[] = [];
    const out = join(dir.path, 'out-wait');
    const summary = await restore({
      repo,
      catalog,
      scopes: [{ bucket: 'lake' }],
      cut: { runSeq: catalog.latestRun({ statuses: ['complete'] })!.seq },
      target: new FsStore({ root: out, fsync: false }),
      bucketDirs: false,
      overwrite: 'always',
      concurrency: 4,
      thaw: { days: 2, tier: 'Standard', wait: { pollMs: [60_000, 120_000], sleep: (ms) => (pauses.push(ms), Promise.resolve()) } },
    });
    expect(pauses).toEqual([60_000, 120_000]);
    expect(store.thawRequests.map((r) => r.key)).toEqual(Array(3).fill(`packs/${cold.slice(0, 2)}/${cold}`));
    expect(summary.thaw).toEqual({ started: 1, 'in-progress': 0, ready: 0 });
    // Written once each: the second pass runs as if-changed and skips what the first wrote.
    expect(summary).toMatchObject({ objects: 60, restored: 60, skippedIdentical: 0, failed: 0, archived: { objects: 0, packs: 0 } });
    expect(restoreExitCode(summary)).toBe(0);
    expect(hashTree(out)).toEqual(hashTree(join(dir.path, 'lake')));
  });

  it('checks --thaw-days and --tier', () => {
    expect(thawOption({ thawDays: '3', wait: true })).toEqual({ thaw: { days: 3, tier: 'Standard', wait: {} } });
    expect(() => thawOption({ wait: true })).toThrow(/--wait waits for the packs --thaw-days thaws: give --thaw-days N too/);
    expect(thawOption({})).toEqual({});
    // A tier alone would be ignored: refused (the CLI gives --tier no default for this reason).
    expect(() => thawOption({ tier: 'Bulk' })).toThrow(/--tier Bulk chooses how --thaw-days thaws archived packs: give --thaw-days N too/);
    expect(thawOption({ thawDays: '7' })).toEqual({ thaw: { days: 7, tier: 'Standard' } });
    expect(thawOption({ thawDays: '1', tier: 'Expedited' })).toEqual({ thaw: { days: 1, tier: 'Expedited' } });
    expect(() => thawOption({ thawDays: '0' })).toThrow(UsageError);
    expect(() => thawOption({ thawDays: '2.5' })).toThrow(/--thaw-days 2.5: expected a whole number of days/);
    expect(() => thawOption({ thawDays: '7', tier: 'fast' })).toThrow(/--tier fast: expected Standard, Bulk, Expedited/);
  });
});
