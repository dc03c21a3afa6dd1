// Restore into a directory from a lake whose keys an attacker chose, and into a target holding
// planted links: nothing is written, read or deleted outside the target (docs/restore.md).
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { restore, type RestoreSummary } from '../../src/engine/restore.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { bucketLake, tempDir, testPolicy } from '../helpers/fixtures.js';

describe('restore to a directory: hostile keys and planted links', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  let bucket: MemStore;
  const group: Group = { name: 'g', sources: [] };

  let close: () => void;

  beforeEach(async () => ({ dir, repo, catalog, bucket, close } = await bucketLake('hostile', 'events')));
  afterEach(() => close());

  const backup = async (): Promise<number> => {
    const s = await backupGroup({
      repo,
      catalog,
      policy: testPolicy(repo.location, [group]),
      group,
      sources: [{ bucket: 'events', objectStore: bucket, prefixes: [''], isExcluded: compileExcludes([]) }],
    });
    expect(s.status).toBe('complete');
    return catalog.findRun(s.runId)!.seq;
  };
  const restoreTo = (runSeq: number, root: string, o: { prefix?: string; key?: string; deleteExtra?: boolean; overwrite?: 'always' | 'if-changed' | 'never' } = {}): Promise<RestoreSummary> =>
    restore({
      repo,
      catalog,
      scopes: [{ bucket: 'events', ...(o.prefix === undefined ? {} : { prefix: o.prefix }), ...(o.key === undefined ? {} : { key: o.key }) }],
      cut: { runSeq },
      target: new FsStore({ root, fsync: false, userFiles: true }),
      bucketDirs: false,
      concurrency: 4,
      ...(o.deleteExtra === undefined ? {} : { deleteExtra: o.deleteExtra }),
      ...(o.overwrite === undefined ? {} : { overwrite: o.overwrite }),
    });

  it('a link planted in --to-dir is not followed by the inventory either: objects below it fail, nothing outside is read as theirs or deleted', async () => {
    for (const k of ['a/x', 'a/y']) await bucket.put(k, Buffer.from(`content of ${k}`));
    const seq = await backup();
    const root = join(dir.path, 'target');
    const outside = join(dir.path, 'outside');
    mkdirSync(root);
    mkdirSync(outside);
    // Outside the target: the very content of the backup, and a file the state does not hold.
    writeFileSync(join(outside, 'x'), 'content of a/x');
    writeFileSync(join(outside, 'y'), 'content of a/y');
    writeFileSync(join(outside, 'secret'), 'keep me');
    symlinkSync(outside, join(root, 'a'));
    // Sorted: objects are restored concurrently, so failures arrive in any order.
    const failed = (r: RestoreSummary) => r.failures.map((f) => [f.key, f.code]).sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0));
    // A prefix listed through the link: not "identical", not deleted by --delete-extra.
    const byPrefix = await restoreTo(seq, root, { prefix: 'a/', deleteExtra: true });
    expect(byPrefix).toMatchObject({ objects: 2, restored: 0, skippedIdentical: 0, failed: 2, deleted: 0 });
    expect(failed(byPrefix)).toEqual([['a/x', 'SymlinkInPath'], ['a/y', 'SymlinkInPath']]);
    // A named key (HEAD) below the link, with each overwrite policy that consults the target.
    for (const overwrite of ['if-changed', 'never'] as const) {
      const byKey = await restoreTo(seq, root, { key: 'a/x', overwrite });
      expect(byKey, overwrite).toMatchObject({ objects: 1, skippedIdentical: 0, skippedExisting: 0, failed: 1 });
      expect(failed(byKey)).toEqual([['a/x', 'SymlinkInPath']]);
    }
    expect(readdirSync(outside).sort()).toEqual(['secret', 'x', 'y']);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('keep me');
  });

  it('a backup of a directory source never lists a policy prefix through a link (the same listing)', async () => {
    const lake = join(dir.path, 'lake');
    const outside = join(dir.path, 'elsewhere');
    mkdirSync(join(lake, 'b'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'not in the tree');
    writeFileSync(join(lake, 'b', 'real'), 'in the tree');
    symlinkSync(outside, join(lake, 'a'));
    const dirGroup: Group = { name: 'd', sources: [{ kind: 'path', path: lake, prefixes: ['a/', 'b/'], exclude: [] }] };
    const s = await backupGroup({ repo, catalog, policy: testPolicy(repo.location, [dirGroup]), group: dirGroup });
    expect(s.counters).toMatchObject({ objectsNew: 1 });
    const { selectState } = await import('../../src/catalog/restore-selection.js');
    expect(selectState(catalog, [{ bucket: 'lake' }], { runSeq: catalog.findRun(s.runId)!.seq })).toBe(1);
  });

  it('a drill of keys no directory can hold removes what it wrote and its scratch root, with no cleanup warning', async () => {
    for (const k of ['..', 'dir/marker/', 'a//b', 'ok']) await bucket.put(k, Buffer.from(`content of ${k}`));
    await bucket.put('empty/', Buffer.alloc(0)); // a folder marker: a directory, read back as an empty object
    const seq = await backup();
    const { runDrill } = await import('../../src/engine/drill.js');
    const { RepositoryLock } = await import('../../src/repository/locks.js');
    const { rmdir } = await import('node:fs/promises');
    const lock = await RepositoryLock.acquire(repo, 'shared', 'drill test');
    const warnings: string[] = [];
    const scratch = join(dir.path, 'scratch', 'lakeguard-drill-x');
    const run = catalog.findRun(String(seq))!;
    try {
      const report = await runDrill({
        repo,
        catalog,
        scopes: [{ bucket: 'events' }],
        cut: { runSeq: seq },
        scopeLabel: 'bucket:events/',
        stateLabel: `run ${run.id}`,
        rpo: { run, instant: run.finished! },
        sample: 'all',
        scratch: { store: new FsStore({ root: scratch, fsync: false, userFiles: true }), location: `${scratch}/`, removeRoot: () => rmdir(scratch) },
        keep: false,
        lock,
        concurrency: 2,
        events: (e) => {
          if (e.type === 'warning') warnings.push(e.message);
        },
      });
      // The three keys are damage (they cannot be restored into a directory); nothing to clean up for them.
      expect(report).toMatchObject({ ok: false, objects: { sampled: 5, restored: 2, verified: 2, damaged: 3 }, cleanupFailed: 0 });
    } finally {
      await lock.release();
    }
    expect(warnings).toEqual([]);
    expect(existsSync(scratch)).toBe(false);
  });
});
