// Restore into a directory from a lake with the keys real lakes have: folder markers (`p/`, as
// the S3 console's "Create folder" makes them), a key that is both a file and a "directory",
// and keys no path can hold. Each refused key is named once, nothing is left behind
// (docs/restore.md, "Keys a directory cannot hold as they are").
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { restore, type RestoreSummary } from '../../src/engine/restore.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import { bucketLake, tempDir, testPolicy } from '../helpers/fixtures.js';

describe('restore to a directory: folder markers, file/directory conflicts, over-long paths', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  let bucket: MemStore;
  const group: Group = { name: 'g', sources: [] };

  let close: () => void;

  beforeEach(async () => ({ dir, repo, catalog, bucket, close } = await bucketLake('awkward', 'lake')));
  afterEach(() => close());

  const backup = async (objects: Record<string, string>): Promise<number> => {
    for (const [k, v] of Object.entries(objects)) await bucket.put(k, Buffer.from(v));
    const s = await backupGroup({
      repo,
      catalog,
      policy: testPolicy(repo.location, [group]),
      group,
      sources: [{ bucket: 'lake', objectStore: bucket, prefixes: [''], isExcluded: compileExcludes([]) }],
    });
    expect(s.status).toBe('complete');
    return catalog.findRun(s.runId)!.seq;
  };
  const restoreTo = (runSeq: number, root: string, scope: { prefix?: string; key?: string } = {}, o: { overwrite?: 'always' | 'if-changed' | 'never'; dryRun?: boolean } = {}): Promise<RestoreSummary> =>
    restore({ repo, catalog, scopes: [{ bucket: 'lake', ...scope }], cut: { runSeq }, target: new FsStore({ root, fsync: false, userFiles: true }), bucketDirs: false, concurrency: 4, ...o });
  const byKey = (a: string[], b: string[]): number => (a[0]! < b[0]! ? -1 : 1);
  const failed = (r: RestoreSummary) => r.failures.map((f) => [f.key, f.code]).sort(byKey);
  /** Every entry under root, `d name` or `f name`, sorted: debris (temporary files, empty directories) shows up here. */
  const tree = (root: string): string[] => {
    const out: string[] = [];
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        const isDir = lstatSync(p).isDirectory();
        out.push(`${isDir ? 'd' : 'f'} ${relative(root, p)}`);
        if (isDir) walk(p);
      }
    };
    walk(root);
    return out.sort();
  };

  it('a zero-byte folder marker becomes its directory; one with content is refused by name, the rest restored', async () => {
    const seq = await backup({
      'p/': '',
      'p/part-0.parquet': 'rows',
      'q/': 'a marker with content',
      'q/x': 'x',
      'empty/': '',
      'dt=2026-01-01_$folder$': '',
    });
    const root = join(dir.path, 'all');
    const first = await restoreTo(seq, root);
    expect(first).toMatchObject({ objects: 6, restored: 5, failed: 1, skippedIdentical: 0 });
    expect(failed(first)).toEqual([['q/', 'FolderMarkerContent']]);
    expect(first.failures[0]!.message).toMatch(/q\/: a folder marker with content \(21 bytes\).*restore it to S3 \(--to\)/);
    // Hadoop's marker is an ordinary key: a zero-byte file of that name.
    expect(tree(root)).toEqual(['d empty', 'd p', 'd q', 'f dt=2026-01-01_$folder$', 'f p/part-0.parquet', 'f q/x']);
    // A dry run does not take the directory q for content that q/ would replace, and says q/ would fail.
    expect(await restoreTo(seq, root, {}, { dryRun: true })).toMatchObject({ restored: 0, failed: 1, replaced: 0, skippedIdentical: 5 });
    // Again over the same directory: the markers' directories are found (a HEAD each), not rewritten.
    const again = await restoreTo(seq, root);
    expect(again).toMatchObject({ objects: 6, restored: 0, skippedIdentical: 5, failed: 1 });
    expect(failed(again)).toEqual([['q/', 'FolderMarkerContent']]);
    // The prefix, and the marker alone (a HEAD of the marker in the inventory).
    expect(await restoreTo(seq, join(dir.path, 'prefix'), { prefix: 'p/' })).toMatchObject({ objects: 2, restored: 2, failed: 0 });
    expect(tree(join(dir.path, 'prefix'))).toEqual(['d p', 'f p/part-0.parquet']);
    expect(await restoreTo(seq, join(dir.path, 'marker'), { key: 'p/' })).toMatchObject({ objects: 1, restored: 1, failed: 0 });
    expect(await restoreTo(seq, join(dir.path, 'marker'), { key: 'p/' })).toMatchObject({ objects: 1, restored: 0, skippedIdentical: 1, failed: 0 });
    expect(tree(join(dir.path, 'marker'))).toEqual(['d p']);
  });

  it('a key that is a file and a directory at once fails by name, each time; a path longer than Linux takes leaves nothing behind', async () => {
    const root = join(dir.path, 'out');
    // root + '/' + key is longer than PATH_MAX though the key itself (4,080 bytes) is not refused as a key.
    const long = `${`${'r'.repeat(250)}/`.repeat(16)}${'z'.repeat(64)}`;
    expect(Buffer.byteLength(join(root, long))).toBeGreaterThan(4095);
    const seq = await backup({ a: 'file a', 'a/b': 'file a/b', [long]: 'deep', ok: 'ok' });
    // Objects are written concurrently: whichever of `a` and `a/b` comes first stands, and the
    // other fails naming what is in its way, on this pass and every later one.
    let standing: 'a' | 'a/b' | undefined;
    for (const pass of [1, 2]) {
      const r = await restoreTo(seq, root);
      expect(r, `pass ${pass}`).toMatchObject({ objects: 4, restored: pass === 1 ? 2 : 0, skippedIdentical: pass === 1 ? 0 : 2, failed: 2 });
      const conflict = r.failures.find((f) => f.key === 'a' || f.key === 'a/b')!;
      standing ??= conflict.key === 'a' ? 'a/b' : 'a';
      // No temporary file, no empty directory of the long key.
      expect(tree(root)).toEqual(standing === 'a' ? ['f a', 'f ok'] : ['d a', 'f a/b', 'f ok']);
      expect(conflict).toMatchObject(
        standing === 'a'
          ? { key: 'a/b', code: 'ENOTDIR', message: expect.stringContaining('a is a file, so nothing can be written below it') }
          : { key: 'a', code: 'EISDIR', message: expect.stringContaining('a is a directory (of keys below it), so it cannot also be a file') },
      );
      expect(r.failures.find((f) => f.key === long)).toMatchObject({ code: 'ENAMETOOLONG', message: expect.stringMatching(/path would be \d+ bytes, longer than the 4095 a Linux path can hold/) });
    }
    expect(readFileSync(join(root, standing!), 'utf8')).toBe(`file ${standing}`);
  });

  it('named keys (--key, --keys-from) a directory cannot hold fail by name; the others are restored', async () => {
    const long = `${`${'r'.repeat(250)}/`.repeat(16)}${'z'.repeat(64)}`;
    // `x//` ends in '/' like a marker: the inventory's look at it must not end the restore either.
    const seq = await backup({ 'a//b': 'ab', '..': 'up', [long]: 'deep', 'x//': '', ok: 'ok' });
    const root = join(dir.path, 'named');
    const keys = ['a//b', '..', long, 'x//', 'ok'];
    const r = await restore({ repo, catalog, scopes: keys.map((key) => ({ bucket: 'lake', key })), cut: { runSeq: seq }, target: new FsStore({ root, fsync: false, userFiles: true }), bucketDirs: false, concurrency: 4 });
    expect(r).toMatchObject({ objects: 5, restored: 1, failed: 4 });
    expect(failed(r)).toEqual([['..', 'InvalidKey'], ['a//b', 'InvalidKey'], [long, 'ENAMETOOLONG'], ['x//', 'InvalidKey']]);
    expect(tree(root)).toEqual(['f ok']);
    const all = await restoreTo(seq, join(dir.path, 'bucket'));
    expect(all).toMatchObject({ objects: 5, restored: 1, failed: 4 });
  });

  it('a restore over a directory says how many files it replaced that held other content', async () => {
    const root = join(dir.path, 'twice');
    const seq = await backup({ 'a.csv': 'one', 'b.csv': 'two', 'c.csv': 'three' });
    expect(await restoreTo(seq, root)).toMatchObject({ restored: 3, replaced: 0 });
    writeFileSync(join(root, 'a.csv'), 'ONE'); // same size, other content
    writeFileSync(join(root, 'b.csv'), 'a local edit');
    rmSync(join(root, 'c.csv'));
    expect(await restoreTo(seq, root, {}, { dryRun: true })).toMatchObject({ restored: 3, replaced: 2, skippedIdentical: 0 });
    expect(await restoreTo(seq, root, {}, { overwrite: 'never' })).toMatchObject({ restored: 1, replaced: 0, skippedExisting: 2 });
    expect(readFileSync(join(root, 'b.csv'), 'utf8')).toBe('a local edit');
    writeFileSync(join(root, 'c.csv'), 'changed');
    expect(await restoreTo(seq, root)).toMatchObject({ restored: 3, replaced: 3, skippedIdentical: 0 });
    expect(await restoreTo(seq, root)).toMatchObject({ restored: 0, replaced: 0, skippedIdentical: 3 });
    // `always` compares nothing, so it cannot say.
    expect(await restoreTo(seq, root, {}, { overwrite: 'always' })).toMatchObject({ restored: 3, replaced: null });
  });

  it('a dry run fails the keys the restore would fail, by name and code, and counts what the restore then does', async () => {
    const long = `${`${'r'.repeat(250)}/`.repeat(16)}${'z'.repeat(64)}`;
    const seq = await backup({ '../up': 'up', 'x//y': 'xy', 'q/': 'content', [long]: 'deep', a: 'file a', 'a/b': 'file a/b', 'd/f': 'under a dir', 'e/f': 'e', l: 'l', 'lnk/f': 'f', ok: 'ok' });
    const root = join(dir.path, 'plan');
    // The target holds a directory where `l` goes, a file where the directory `e` goes, and a link.
    mkdirSync(join(root, 'l'), { recursive: true });
    writeFileSync(join(root, 'e'), 'a file');
    mkdirSync(join(dir.path, 'elsewhere'));
    symlinkSync(join(dir.path, 'elsewhere'), join(root, 'lnk'));
    const dry = await restoreTo(seq, root, {}, { dryRun: true });
    // The restore writes `a` or `a/b`, whichever comes first; the dry run names `a`.
    const always = [['../up', 'InvalidKey'], [long, 'ENAMETOOLONG'], ['e/f', 'ENOTDIR'], ['l', 'EISDIR'], ['lnk/f', 'SymlinkInPath'], ['q/', 'FolderMarkerContent'], ['x//y', 'InvalidKey']].sort(byKey);
    expect(failed(dry)).toEqual([...always, ['a', 'EISDIR']].sort(byKey));
    expect(dry).toMatchObject({ objects: 11, restored: 3, failed: 8, dryRun: true });
    expect(tree(root)).toEqual(['d l', 'f e', 'f lnk']); // nothing written
    const real = await restoreTo(seq, root);
    expect(failed(real).filter((f) => f[0] !== 'a' && f[0] !== 'a/b')).toEqual(always);
    expect(real).toMatchObject({ objects: 11, restored: 3, failed: 8 });
    expect(readdirSync(join(dir.path, 'elsewhere'))).toEqual([]);
  });

  it('a dry run into a bucket (through a store decorator) refuses none of `a` and `a/b`: only a directory cannot hold both', async () => {
    const seq = await backup({ a: 'file a', 'a/b': 'file a/b' });
    const bucketTarget = new StoreDecorator(new MemStore({ name: 'restored' }));
    const dry = await restore({ repo, catalog, scopes: [{ bucket: 'lake' }], cut: { runSeq: seq }, target: bucketTarget, bucketDirs: false, concurrency: 4, dryRun: true });
    expect(dry).toMatchObject({ objects: 2, restored: 2, failed: 0, dryRun: true });
    // A directory through the same decorator keeps its rules.
    const dirTarget = new StoreDecorator(new FsStore({ root: join(dir.path, 'decorated'), fsync: false, userFiles: true }));
    const dirDry = await restore({ repo, catalog, scopes: [{ bucket: 'lake' }], cut: { runSeq: seq }, target: dirTarget, bucketDirs: false, concurrency: 4, dryRun: true });
    expect(failed(dirDry)).toEqual([['a', 'EISDIR']]);
  });

  it('a key whose directory the target already holds fails by name, the directory untouched', async () => {
    const root = join(dir.path, 'dirfirst');
    mkdirSync(join(root, 'c'), { recursive: true });
    writeFileSync(join(root, 'c', 'old'), 'kept');
    const seq = await backup({ c: 'file c' });
    const r = await restoreTo(seq, root);
    expect(r).toMatchObject({ objects: 1, restored: 0, failed: 1 });
    expect(failed(r)).toEqual([['c', 'EISDIR']]);
    expect(r.failures[0]!.message).toContain('c is a directory (of keys below it), so it cannot also be a file');
    expect(tree(root)).toEqual(['d c', 'f c/old']);
  });
});
