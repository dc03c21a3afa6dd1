// Restore drills in process on the filesystem store: sample, verification against the
// catalog's blob ids, damage named, the scratch root cleaned (and nothing outside it), the
// drill recorded in drills/ and learned by another catalog's sync, the report's text and CSV.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { listDrills } from '../../src/catalog/drills.js';
import { describeDrill, drillCsv } from '../../src/commands/drill.js';
import { backupGroup } from '../../src/engine/backup.js';
import { runDrill, type DrillOptions, type DrillReport } from '../../src/engine/drill.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { syncCatalog } from '../../src/engine/sync.js';
import type { Group } from '../../src/policy/types.js';
import { RepositoryLock } from '../../src/repository/locks.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { ExitCode, StorageError, UsageError } from '../../src/errors.js';
import { flipByte, locateBlob } from '../helpers/damage.js';
import { initRepo, openCatalog, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';

describe('drill', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  let runSeq: number;
  let lock: RepositoryLock;
  const files: Record<string, string> = {};
  for (let i = 0; i < 30; i++) files[`t/part-${String(i).padStart(2, '0')}.json`] = JSON.stringify({ i, pad: 'x'.repeat(i * 7) });

  beforeAll(async () => {
    dir = tempDir('drill');
    writeTree(join(dir.path, 'lake'), files);
    const store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store);
    catalog = openCatalog(dir.path, repo);
    const group: Group = { name: 'lake', sources: [{ kind: 'path', path: join(dir.path, 'lake'), prefixes: [''], exclude: [] }] };
    const summary = await backupGroup({ repo, catalog, policy: testPolicy(store.location, [group]), group });
    runSeq = catalog.findRun(summary.runId)!.seq;
    lock = await RepositoryLock.acquire(repo, 'shared', 'drill test');
  });
  afterAll(async () => {
    await lock.release();
    catalog.close();
    dir.cleanup();
  });

  let clock = Date.UTC(2026, 11, 6, 12);
  const drill = (o: Partial<DrillOptions> & { scratchDir: string }, events: EngineEvent[] = []): Promise<DrillReport> => {
    const root = join(dir.path, o.scratchDir, 'lakeguard-drill-test');
    const run = catalog.findRun(String(runSeq))!;
    return runDrill({
      repo,
      catalog,
      scopes: [{ bucket: 'lake' }],
      cut: { runSeq },
      scopeLabel: 'group:lake',
      stateLabel: `run ${run.id}`,
      rpo: { run, instant: run.finished! + 90_000 },
      sample: 'all',
      scratch: { store: new FsStore({ root, fsync: false, userFiles: true }), location: `${root}/`, removeRoot: async () => (await import('node:fs/promises')).rmdir(root) },
      keep: false,
      lock,
      concurrency: 4,
      events: (e) => events.push(e),
      // Each call a second later: the RTO is what the injected clock says, not the machine's speed.
      now: () => (clock += 1000),
      ...o,
    });
  };

  it('restores a sample, verifies it, removes only what it wrote, and records the drill', async () => {
    const scratch = join(dir.path, 'scratch1');
    mkdirSync(scratch);
    writeFileSync(join(scratch, 'someone-elses.txt'), 'not the drill\'s');
    const report = await drill({ scratchDir: 'scratch1', sample: 10 });
    expect(report).toMatchObject({ ok: true, scope: 'group:lake', objects: { selected: 30, sampled: 10, restored: 10, verified: 10, damaged: 0 }, kept: false, recorded: true, cleanupFailed: 0 });
    // Clock: start, restore start, restore end, verify start, verify end, finish: restore took one tick.
    expect(report.rtoMs).toBe(1000);
    expect(report.rpoMs).toBe(90_000);
    expect(readdirSync(scratch)).toEqual(['someone-elses.txt']);
    // Recorded: this catalog has it, and another catalog learns it from the repository.
    expect(listDrills(catalog).map((d) => d.name)).toEqual([report.id]);
    const other = openCatalog(join(dir.path, 'other'), repo);
    try {
      await syncCatalog({ repo, catalog: other });
      expect(listDrills(other).map((d) => ({ name: d.name, ok: d.ok, sampled: d.doc.objects.sampled }))).toEqual([{ name: report.id, ok: true, sampled: 10 }]);
    } finally {
      other.close();
    }
  });

  it('--keep leaves the restored objects, byte for byte', async () => {
    const report = await drill({ scratchDir: 'scratch2', keep: true });
    expect(report.objects.verified).toBe(30);
    expect(readdirSync(join(dir.path, 'scratch2', 'lakeguard-drill-test', 't')).sort()).toEqual(Object.keys(files).map((k) => k.slice(2)).sort());
  });

  it('verification reads back what was written: a target that alters bytes is caught', async () => {
    const root = join(dir.path, 'scratch4', 'lakeguard-drill-test');
    // A target that stores one object with a byte changed (a disk or gateway bug the restore cannot see).
    class AlteringStore extends FsStore {
      override put(key: string, body: Parameters<FsStore['put']>[1], opts?: Parameters<FsStore['put']>[2]): ReturnType<FsStore['put']> {
        if (key === 't/part-03.json' && Buffer.isBuffer(body)) body = Buffer.concat([body.subarray(0, body.length - 1), Buffer.from('!')]);
        return super.put(key, body, opts);
      }
    }
    const report = await drill({ scratchDir: 'scratch4', scratch: { store: new AlteringStore({ root, fsync: false, userFiles: true }), location: `${root}/` } });
    expect(report.objects).toMatchObject({ restored: 30, verified: 29, damaged: 1 });
    expect(report.damaged).toEqual([{ bucket: 'lake', key: 't/part-03.json', problem: 'restored bytes differ from the backed-up content (blob ids do not match the catalog)' }]);
  });

  it('a scratch target that refuses a write stops the drill (exit 2): no damage reported, nothing recorded, nothing to clean', async () => {
    const root = join(dir.path, 'scratch-refusing', 'lakeguard-drill-test');
    // As an S3 prefix these credentials may not write to.
    class RefusingStore extends FsStore {
      deletes = 0;
      override put(key: string): ReturnType<FsStore['put']> {
        return Promise.reject(new StorageError('AccessDenied', `PUT s3://scratch/p/${key}: AccessDenied (403)`, { backendCode: 'AccessDenied' }));
      }
      override delete(...args: Parameters<FsStore['delete']>): ReturnType<FsStore['delete']> {
        this.deletes++;
        return super.delete(...args);
      }
    }
    const store = new RefusingStore({ root, fsync: false, userFiles: true });
    const recorded = listDrills(catalog).length;
    const events: EngineEvent[] = [];
    const err = await drill({ scratchDir: 'scratch-refusing', scratch: { store, location: 's3://scratch/p/lakeguard-drill-test/' } }, events).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(ExitCode.usage);
    expect((err as UsageError).message).toMatch(/^drill: the scratch target s3:\/\/scratch\/p\/lakeguard-drill-test\/ refused a write \(PUT s3:\/\/scratch\/p\/t\/part-\d\d\.json: AccessDenied \(403\)\); no drill recorded$/);
    expect(events.filter((e) => e.type === 'failure')).toEqual([]);
    expect(listDrills(catalog)).toHaveLength(recorded);
    expect(store.deletes).toBe(0);
  });

  it('a damaged pack fails the drill and names the objects; the cleanup still runs', async () => {
    const victim = 't/part-07.json';
    const blobHex = repo.blobId(Buffer.from(files[victim]!)).toString('hex');
    const where = await locateBlob(repo, blobHex);
    flipByte(join(dir.path, 'repo', 'packs', where.pack.slice(0, 2), where.pack), where.offset + 3);
    const events: EngineEvent[] = [];
    const report = await drill({ scratchDir: 'scratch3' }, events);
    expect(report.ok).toBe(false);
    expect(report.objects.damaged).toBeGreaterThanOrEqual(1);
    expect(report.damaged.map((d) => d.key)).toContain(victim);
    expect(events.filter((e) => e.type === 'failure').map((e) => (e as { key: string }).key)).toContain(victim);
    expect(existsSync(join(dir.path, 'scratch3', 'lakeguard-drill-test'))).toBe(false);
    expect(listDrills(catalog).at(-1)!.ok).toBe(false);
    // The report for people names the object; the CSV is a header and one row.
    expect(describeDrill(report)).toMatch(new RegExp(`FAILED, ${report.objects.damaged} objects damaged[\\s\\S]*damaged   lake/${victim}: not restored`));
    const csv = drillCsv(report).trimEnd().split('\n');
    expect(csv).toHaveLength(2);
    expect(csv[0]).toBe('drill,created,scope,state,run,ok,selected,sampled,restored,verified,damaged,bytes,rto_seconds,verify_seconds,objects_per_second,bytes_per_second,rpo_seconds,scratch,kept');
    expect(csv[1]).toMatch(new RegExp(`^${report.id},[^,]+,group:lake,run [^,]+,[^,]+,false,30,30,${report.objects.restored},`));
  });
});

describe('drill with more failures than the restore summary names', () => {
  // 1,050 objects in packs that are gone: the restore names its first 1,000 failures and counts
  // the rest; each object is still damage exactly once (not also "cannot read back").
  const N = 1050;
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  let runSeq: number;
  let lock: RepositoryLock;
  beforeAll(async () => {
    dir = tempDir('drill-many');
    const files: Record<string, string> = {};
    for (let i = 0; i < N; i++) files[`k/${String(i).padStart(4, '0')}`] = `object ${i}`;
    writeTree(join(dir.path, 'lake'), files);
    const store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store);
    catalog = openCatalog(dir.path, repo);
    const group: Group = { name: 'lake', sources: [{ kind: 'path', path: join(dir.path, 'lake'), prefixes: [''], exclude: [] }] };
    const summary = await backupGroup({ repo, catalog, policy: testPolicy(store.location, [group]), group });
    runSeq = catalog.findRun(summary.runId)!.seq;
    lock = await RepositoryLock.acquire(repo, 'shared', 'drill test');
    rmSync(join(dir.path, 'repo', 'packs'), { recursive: true });
  });
  afterAll(async () => {
    await lock.release();
    catalog.close();
    dir.cleanup();
  });

  it('counts each of 1,050 unrestorable objects once, and names each in one failure event', async () => {
    const root = join(dir.path, 'scratch', 'lakeguard-drill-test');
    const run = catalog.findRun(String(runSeq))!;
    const events: EngineEvent[] = [];
    const report = await runDrill({
      repo,
      catalog,
      scopes: [{ bucket: 'lake' }],
      cut: { runSeq },
      scopeLabel: 'group:lake',
      stateLabel: `run ${run.id}`,
      rpo: { run, instant: run.finished! },
      sample: 'all',
      scratch: { store: new FsStore({ root, fsync: false, userFiles: true }), location: `${root}/` },
      keep: false,
      lock,
      concurrency: 4,
      events: (e) => events.push(e),
    });
    expect(report.ok).toBe(false);
    expect(report.objects).toEqual({ selected: N, sampled: N, restored: 0, verified: 0, damaged: N });
    expect(report.damaged).toHaveLength(100);
    const failed = events.filter((e) => e.type === 'failure').map((e) => (e as { key: string }).key);
    expect(failed).toHaveLength(N);
    expect(new Set(failed).size).toBe(N);
  });
});
