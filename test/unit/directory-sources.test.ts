// Directory (`path:`) sources are backed up completely or the run says why: names that are not
// UTF-8, `.lg-tmp-*` user files, symbolic links, special files and files that fail to read.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import type { OpenedSource } from '../../src/engine/sources.js';
import type { Group, Policy } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import type { GetOptions } from '../../src/storage/types.js';
import { runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { initRepo, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';

/** "café.csv" in Latin-1: not valid UTF-8. */
const LATIN1_NAME = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from('.csv')]);

describe('directory sources: every entry backed up or recorded', () => {
  let dir: ReturnType<typeof tempDir>;
  let lake: string;
  let repo: Repository;
  let catalog: Catalog;
  let policy: Policy;
  let group: Group;

  beforeEach(async () => {
    dir = tempDir('dir-sources');
    lake = join(dir.path, 'lake');
    mkdirSync(join(lake, 'sub'), { recursive: true });
    const repoStore = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(repoStore);
    catalog = openCatalog(dir.path, repo);
    group = { name: 'lake', sources: [{ kind: 'path', path: lake, prefixes: [''], exclude: [] }] };
    policy = testPolicy(repoStore.location, [group]);
  });

  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  const source = (store = new FsStore({ root: lake, fsync: false, userFiles: true })): OpenedSource => ({ bucket: 'lake', objectStore: store, prefixes: [''], isExcluded: () => false });
  const backup = (opened = source(), listRanges?: { keysPerRange: number; minKeys: number }) =>
    backupGroup({ repo, catalog, policy, group, sources: [opened], ...(listRanges === undefined ? {} : { listRanges }) });
  const failures = (runId: string) => catalog.failuresOfRun(catalog.findRun(runId)!.seq).sort((a, b) => a.key.localeCompare(b.key));

  it('backs up a name that is not UTF-8 and .lg-tmp-* user files, restores them byte for byte, and records links and FIFOs as skipped', async () => {
    writeFileSync(Buffer.concat([Buffer.from(`${lake}/`), LATIN1_NAME]), 'latin-1 named\n');
    writeFileSync(join(lake, 'back\\slash.txt'), 'a backslash in a name\n');
    writeFileSync(join(lake, '.lg-tmp-x'), 'a user file, not lakeguard temporary\n');
    writeFileSync(join(lake, 'sub', '.lg-tmp-y'), 'another\n');
    writeFileSync(join(lake, 'ok.txt'), 'plain\n');
    symlinkSync('/etc', join(lake, 'sub', 'etc-link')); // out of the tree: never followed
    execFileSync('mkfifo', [join(lake, 'pipe')]); // reading it would block the run

    const first = await backup();
    expect(first.status).toBe('complete');
    expect(first.counters).toMatchObject({ objectsNew: 5, objectsFailed: 0, objectsSkipped: 2 });
    expect(failures(first.runId).map((f) => [f.key, f.code, f.message])).toEqual([
      ['pipe', 'SpecialFile', 'a FIFO, not a regular file: not read'],
      ['sub/etc-link', 'Symlink', 'symbolic link to "/etc", not followed'],
    ]);

    // The next run sees the same: nothing new, nothing taken as deleted, each skip once again
    // (also when it lists the directory in key ranges that overlap by a page).
    const second = await backup(source(), { keysPerRange: 2, minKeys: 1 });
    expect(second.counters).toMatchObject({ objectsNew: 0, objectsChanged: 0, objectsDeleted: 0, objectsUnchanged: 5, objectsSkipped: 2 });

    const target = join(dir.path, 'restored');
    const restored = await restore({
      repo,
      catalog,
      scopes: [{ bucket: 'lake' }],
      cut: { runSeq: catalog.findRun(second.runId)!.seq },
      target: new FsStore({ root: target, fsync: false, userFiles: true }),
      bucketDirs: false,
      concurrency: 4,
    });
    expect(restored).toMatchObject({ restored: 5, failed: 0 });
    const names = readdirSync(target, { encoding: 'buffer' }).map((n) => n.toString('hex'));
    expect(names.sort()).toEqual([LATIN1_NAME, Buffer.from('back\\slash.txt'), Buffer.from('.lg-tmp-x'), Buffer.from('ok.txt'), Buffer.from('sub')].map((n) => n.toString('hex')).sort());
    expect(readFileSync(Buffer.concat([Buffer.from(`${target}/`), LATIN1_NAME]), 'utf8')).toBe('latin-1 named\n');
    expect(readFileSync(join(target, 'back\\slash.txt'), 'utf8')).toBe('a backslash in a name\n');
    expect(readFileSync(join(target, 'sub', '.lg-tmp-y'), 'utf8')).toBe('another\n');
    expect(readdirSync(join(target, 'sub'))).toEqual(['.lg-tmp-y']);
  });

  it('a deleted file that comes back with its old time (cp -p, a restore) is the current version again', async () => {
    const file = join(lake, 'a.parquet');
    writeFileSync(file, 'rows of a');
    writeFileSync(join(lake, 'b.parquet'), 'rows of b');
    const old = new Date(Date.now() - 86_400_000); // written yesterday
    utimesSync(file, old, old);
    expect((await backup()).counters).toMatchObject({ objectsNew: 2 });
    rmSync(file);
    expect((await backup()).counters).toMatchObject({ objectsDeleted: 1 });
    writeFileSync(file, 'rows of a');
    utimesSync(file, old, old); // back, with the time it had: older than the deletion the catalog holds
    expect((await backup()).counters).toMatchObject({ objectsNew: 1, objectsDeleted: 0 });
    const latest = catalog.listRuns().at(-1)!;
    const out = join(dir.path, 'out');
    await restore({ repo, catalog, scopes: [{ bucket: 'lake' }], cut: { runSeq: latest.seq }, target: new FsStore({ root: out, fsync: false }), bucketDirs: false, concurrency: 2 });
    expect(readdirSync(out).sort()).toEqual(['a.parquet', 'b.parquet']);
    expect(readFileSync(join(out, 'a.parquet'), 'utf8')).toBe('rows of a');
    // Recorded once: the next backup finds it unchanged.
    expect((await backup()).counters).toMatchObject({ objectsNew: 0, objectsUnchanged: 2 });
  });

  it('a file that fails to read is failed, not new, and its message names the error code once', async () => {
    writeFileSync(join(lake, 'keep.txt'), 'kept\n');
    writeFileSync(join(lake, 'swapped.txt'), 'replaced by a link after the listing\n');
    writeFileSync(join(lake, 'vanishing.txt'), 'deleted after the listing\n');
    writeFileSync(join(lake, 'looped.txt'), 'replaced by a link to itself after the listing\n');
    writeFileSync(join(dir.path, 'outside.txt'), 'outside the source tree\n');
    // Works as root too (permissions would not): the files change between listing and read.
    const store = new FsStore({ root: lake, fsync: false, userFiles: true });
    const change = (key: string) => {
      if (key === 'vanishing.txt') unlinkSync(join(lake, key));
      if (key === 'swapped.txt') {
        rmSync(join(lake, key));
        symlinkSync(join(dir.path, 'outside.txt'), join(lake, key));
      }
      if (key === 'looped.txt') {
        rmSync(join(lake, key));
        symlinkSync(key, join(lake, key)); // fails to open even when links are followed
      }
    };
    // Small files are read whole (getBytes), larger ones streamed (get): both must refuse.
    const get = store.get.bind(store);
    store.get = async (key: string, opts?: GetOptions) => {
      change(key);
      return get(key, opts);
    };
    const getBytes = store.getBytes.bind(store);
    store.getBytes = async (key: string, maxBytes: number) => {
      change(key);
      return getBytes(key, maxBytes);
    };
    const summary = await backup(source(store));
    expect(summary.status).toBe('partial');
    expect(summary.counters).toMatchObject({ objectsSeen: 4, objectsNew: 1, objectsFailed: 3, bytesNew: 5 });
    const [looped, swapped, vanishing] = failures(summary.runId);
    expect(looped).toMatchObject({ key: 'looped.txt', code: 'ELOOP' });
    expect(swapped).toMatchObject({ key: 'swapped.txt', code: 'ELOOP' });
    expect(swapped!.message).toMatch(/swapped\.txt: ELOOP: too many symbolic links encountered, open '/);
    expect(vanishing).toMatchObject({ key: 'vanishing.txt', code: 'ENOENT' });
    for (const f of [looped!, swapped!, vanishing!]) expect(f.message).not.toMatch(/\b([A-Z]{4,}): \1:/);
    // Nothing of the file outside the tree was read into the repository.
    expect(summary.counters.bytesRead).toBe(5);
  });
});

describe('directory sources through the CLI', { timeout: 120_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  const env = () => ({ LAKEGUARD_PASSWORD: 'dir-sources-pw', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache'), TZ: 'UTC' });
  const cli = (policy: string, args: string[]) => runCli(['--policy', policy, ...args], env());
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };

  beforeEach(() => {
    dir = tempDir('dir-sources-cli');
  });
  afterEach(() => dir.cleanup());

  it('two directories with one base name: refused (exit 2, both named) unless name: tells them apart; then no false deletions', async () => {
    for (const side of ['a', 'b']) {
      mkdirSync(join(dir.path, side, 'lake'), { recursive: true });
      writeFileSync(join(dir.path, side, 'lake', `only-in-${side}.txt`), side);
      writeFileSync(join(dir.path, side, 'lake', 'both.txt'), `from ${side}`);
    }
    symlinkSync('../../a/lake/both.txt', join(dir.path, 'b', 'lake', 'link.txt'));
    const head = 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: local\n    sources:\n';
    const clash = join(dir.path, 'clash.yaml');
    writeFileSync(clash, `${head}      - path: ./a/lake\n      - path: ./b/lake\n`);
    const refused = await cli(clash, ['backup']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`clash.yaml:8:15 groups[0].sources[1].path: path "${join(dir.path, 'b/lake')}" would be catalogued as "lake", the name of path "${join(dir.path, 'a/lake')}" (groups[0].sources[0].path, line 7)`);
    expect(refused.stderr).toMatch(/give each path source a distinct name, e\.g\. "name: lake-2"/);

    const named = join(dir.path, 'named.yaml');
    writeFileSync(named, `${head}      - path: ./a/lake\n        name: lake-a\n      - path: ./b/lake\n        name: lake-b\n`);
    ok(await cli(named, ['init']));
    const first = summaryOf(ok(await cli(named, ['backup', '--json'])));
    expect(first).toMatchObject({ status: 'complete', counters: { objectsNew: 4, objectsSkipped: 1 } });
    const second = summaryOf(ok(await cli(named, ['backup', '--json'])));
    expect(second).toMatchObject({ status: 'complete', counters: { objectsNew: 0, objectsDeleted: 0, objectsUnchanged: 4, objectsSkipped: 1 } });

    const shown = ok(await cli(named, ['runs', 'show', second.runId as string, '--failures']));
    expect(shown.stdout).toMatch(/\nfailures {2}none\nskipped {3}1 \(symbolic links, special files: not backed up\):\n/);
    expect(shown.stdout).toMatch(/Symlink\s+s3:\/\/lake-b\/link\.txt\s+symbolic link to "\.\.\/\.\.\/a\/lake\/both\.txt", not followed/);

    const out = join(dir.path, 'out');
    ok(await cli(named, ['restore', '--bucket', 'lake-b', '--to-dir', out]));
    expect(readdirSync(out).sort()).toEqual(['both.txt', 'only-in-b.txt']);
    expect(readFileSync(join(out, 'both.txt'), 'utf8')).toBe('from b');
  });
});
