// A backup whose repository refuses writes (access denied, Object Lock) part-way: the run ends
// `failed` in the catalog at once, with the error, never `running` (later read as a dead
// process's and recorded as interrupted) and never complete; the next backup on the host
// writes its manifest, as failed, once the repository accepts writes again.
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { CatalogQueries } from '../../src/catalog/queries.js';
import { backupGroup, recordedRunOf } from '../../src/engine/backup.js';
import { copyRuns } from '../../src/engine/copy.js';
import { planForget } from '../../src/engine/forget.js';
import type { RunManifest } from '../../src/engine/finalize.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { syncCatalog } from '../../src/engine/sync.js';
import { verify } from '../../src/engine/verify.js';
import { ExitCode, InterruptedError, LakeguardError, StorageError } from '../../src/errors.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group, Policy } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import type { PutOptions } from '../../src/storage/types.js';
import { initRepo, tempDir, testPolicy } from '../helpers/fixtures.js';

/** A repository directory that answers PUT under some prefixes as a bucket policy denying PutObject would. */
class RefusingFs extends FsStore {
  refuse: string[] = [];
  /** Called instead of refusing, when set (a SIGINT arriving during that PUT). */
  onRefused: (() => void) | null = null;
  override async put(key: string, body: Buffer | Readable, opts?: PutOptions) {
    if (this.refuse.some((p) => key.startsWith(p))) {
      this.onRefused?.();
      throw new StorageError('AccessDenied', `PUT ${this.location}${key}: Access Denied`);
    }
    return super.put(key, body, opts);
  }
}

describe('a run the repository refused to store', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let store: RefusingFs;
  let repo: Repository;
  let policy: Policy;
  let group: Group;
  let host: Catalog;
  const lake = new MemStore({ name: 'lake' });
  const events: EngineEvent[] = [];
  const backup = (signal?: AbortSignal) =>
    backupGroup({ repo, catalog: host, policy, group, sources: [{ bucket: 'lake', objectStore: lake, prefixes: [''], isExcluded: compileExcludes([]) }], events: (e) => events.push(e), ...(signal === undefined ? {} : { signal }) });
  const warnings = () => events.flatMap((e) => (e.type === 'warning' ? [e.message] : []));

  beforeEach(async () => {
    dir = tempDir('unrecorded-run');
    store = new RefusingFs({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store);
    for (let i = 0; i < 5; i++) await lake.put(`k${i}.json`, Buffer.from(`{"i":${i}}`));
    group = { name: 'lake', sources: [{ kind: 'path', path: '/x/lake', prefixes: [''], exclude: [] }], retention: { keepLast: 1 } };
    policy = testPolicy(store.location, [group]);
    host = Catalog.open(join(dir.path, 'host.db'), repo.id);
    events.length = 0;
  });
  afterEach(() => {
    host.close();
    dir.cleanup();
  });

  it('packs refused: failed at once with the error; the next backup records it as failed, not interrupted', async () => {
    store.refuse = ['packs/'];
    const err = await backup().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).exitCode).toBe(ExitCode.error);
    const [run] = host.listRuns();
    expect([run!.status, run!.finished !== null]).toEqual(['failed', true]);
    expect(recordedRunOf(err)).toMatchObject({ runId: run!.id, status: 'failed' });
    const details = new CatalogQueries(host).runShow(run!.id)!;
    expect(details.unrecorded).toMatch(/^PUT .*packs\/.*: Access Denied$/);
    expect(warnings()).toEqual([expect.stringMatching(new RegExp(`^could not record run ${run!.id} \\(group lake\\) in the repository: .*Access Denied; the catalog records it as failed, without a manifest; the next \`lakeguard backup\` on this host records it`))]);

    // Writes allowed again: the next backup writes the failed run's manifest first, as failed.
    store.refuse = [];
    events.length = 0;
    const next = await backup();
    expect(next.status).toBe('complete');
    const runs = host.listRuns();
    expect(runs.map((r) => r.status)).toEqual(['failed', 'complete']);
    expect(new CatalogQueries(host).runShow(runs[0]!.id)!.unrecorded).toBeUndefined();
    expect(warnings()).toEqual([expect.stringContaining(`run ${run!.id} (group lake) ended failed without a manifest`)]);
    const manifest = await repo.readDocument<RunManifest>('runs', runs[0]!.id);
    expect(manifest.status).toBe('failed');
    // Another host learns it as failed too.
    const other = Catalog.open(join(dir.path, 'other.db'), repo.id);
    try {
      await syncCatalog({ repo, catalog: other });
      const idStatus = (list: { id: string; status: string }[]) => list.map((r) => [r.id, r.status]).sort();
      expect(idStatus(other.listRuns())).toEqual(idStatus(runs));
    } finally {
      other.close();
    }
  });

  it('the manifest refused after a clean scan: the catalog says failed, not complete or running, and names the next step', async () => {
    store.refuse = ['runs/'];
    const err = await backup().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LakeguardError);
    const e = err as LakeguardError;
    expect(e.exitCode).toBe(ExitCode.error);
    const [run] = host.listRuns();
    expect(e.message).toMatch(new RegExp(`^backup of group lake failed: run ${run!.id} could not be recorded in the repository: PUT .*runs/${run!.id}: Access Denied$`));
    expect(e.hint).toMatch(/^the catalog records it as failed; the next `lakeguard backup` on this host records it in the repository once it accepts writes again/);
    expect(run!.status).toBe('failed');
    expect(recordedRunOf(err)).toMatchObject({ runId: run!.id, status: 'failed' });
    expect(await repo.listNames('runs')).toEqual([]);

    // A copy from this catalog leaves it out: the source has no manifest of it to copy.
    const second = await initRepo(new FsStore({ root: join(dir.path, 'second'), fsync: false }));
    const secondCatalog = Catalog.open(join(dir.path, 'second.db'), second.id);
    try {
      const copied = await copyRuns({ source: { repo, catalog: host }, target: { repo: second, catalog: secondCatalog } });
      expect([copied.copied, secondCatalog.listRuns()]).toEqual([[], []]);
    } finally {
      secondCatalog.close();
    }
  });

  it('stopped (SIGINT) while its manifest is written: interrupted, exit 130, not failed', async () => {
    const stop = new AbortController();
    store.refuse = ['runs/'];
    store.onRefused = () => stop.abort();
    const err = await backup(stop.signal).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as InterruptedError).exitCode).toBe(ExitCode.interrupted);
    const [run] = host.listRuns();
    expect(run!.status).toBe('interrupted');
    expect(recordedRunOf(err)).toMatchObject({ runId: run!.id, status: 'interrupted' });
  });

  it('verify says a run the repository refused was never stored, not that its manifest went missing', async () => {
    store.refuse = ['runs/'];
    await expect(backup()).rejects.toThrow(/could not be recorded/);
    const [refused] = host.listRuns();
    const report = await verify({ repo, catalog: host, readData: 0, concurrency: 2 });
    const about = report.damage.filter((d) => d.what === `runs/${refused!.id}`);
    expect(about).toHaveLength(1);
    expect(about[0]!.problem).toMatch(new RegExp(`^never stored: the repository refused the failed run ${refused!.id} \\(PUT .*Access Denied\\); the next \`lakeguard backup\` on host ${refused!.host} records it;`));
    expect(about[0]!.problem).not.toMatch(/missing from the repository/);
    // Recorded by the next backup: verify finds its manifest.
    store.refuse = [];
    await backup();
    const after = await verify({ repo, catalog: host, readData: 0, concurrency: 2 });
    expect(after.damage.filter((d) => d.what.startsWith('runs/'))).toEqual([]);
  });

  it('forget keeps a run not yet in the repository, whatever keep_last says, until its host records it', async () => {
    store.refuse = ['runs/'];
    await expect(backup()).rejects.toThrow(/could not be recorded/);
    const [refused] = host.listRuns();
    // Another host backs up since, and this one learns of it: keep_last 1 would keep only that.
    store.refuse = [];
    const other = Catalog.open(join(dir.path, 'other.db'), repo.id);
    try {
      await backupGroup({ repo, catalog: other, policy, group, sources: [{ bucket: 'lake', objectStore: lake, prefixes: [''], isExcluded: compileExcludes([]) }] });
    } finally {
      other.close();
    }
    await syncCatalog({ repo, catalog: host });
    const plan = planForget(host, policy);
    expect(plan.verdicts.map((v) => [v.run.id === refused!.id, v.run.status, v.keep, v.reasons])).toEqual([
      [true, 'failed', true, ['unrecorded']],
      [false, 'complete', true, ['latest', 'last-1']],
    ]);
  });
});
