import { mkdtemp, mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { getBytes } from '../../src/storage/types.js';
import { collect, runStoreContract } from './contract.js';

async function tempRoot(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'lakeguard-fs-'));
}

runStoreContract(
  'FsStore',
  async () => {
    const root = await tempRoot();
    return { store: new FsStore({ root: path.join(root, 'store') }), cleanup: () => rm(root, { recursive: true, force: true }) };
  },
  {
    metadata: false,
    tags: false,
    stableEtag: false, // put(Buffer) returns the MD5; list/head report size-mtime
    manyKeys: 2500,
    pagedList: false,
    largeBody: 40 * 1024 * 1024,
    atomicCreate: true,
  },
);

describe('FsStore specifics', () => {
  let base: string;
  let root: string;
  let store: FsStore;
  beforeAll(async () => {
    base = await tempRoot();
    root = path.join(base, 'root');
    await mkdir(root);
    store = new FsStore({ root });
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it.each([
    ['..', 'a/../../escape'],
    ['leading ..', '../escape'],
    ['.', 'a/./b'],
    ['absolute', '/etc/passwd'],
    ['empty segment', 'a//b'],
    ['trailing slash', 'a/b/'],
    ['NUL', 'a\0b'],
    ['backslash', 'a\\..\\b'],
    ['temp-file name', 'a/.lg-tmp-123'],
    ['empty', ''],
  ])('rejects a key with %s, naming it, and touches nothing', async (_label, key) => {
    for (const op of [
      () => store.put(key, Buffer.from('x')),
      () => store.get(key),
      () => store.head(key),
      () => store.delete(key),
    ]) {
      const err = await op().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe('Other');
      expect((err as StorageError).message).toContain(JSON.stringify(key));
    }
    expect(await readdir(base)).toEqual(['root']);
  });

  it('rejects a listing prefix that would leave the root', async () => {
    await expect(collect(store.list('../'))).rejects.toBeInstanceOf(StorageError);
    await expect(collect(store.list('a/../../'))).rejects.toBeInstanceOf(StorageError);
  });

  it('writes atomically through a temp file that is never listed', async () => {
    // A put whose stream fails half-way leaves neither the object nor its temp file behind.
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(1000, 1);
      throw new Error('source broke');
    }
    await expect(store.put('atomic/x', Readable.from(failing(), { objectMode: false }))).rejects.toThrow();
    expect(await readdir(path.join(root, 'atomic'))).toEqual([]);
    // An old version stays intact when its replacement fails.
    await store.put('atomic/y', Buffer.from('old'));
    await expect(store.put('atomic/y', Readable.from(failing(), { objectMode: false }))).rejects.toThrow();
    expect((await getBytes(store, 'atomic/y')).toString()).toBe('old');
    // A stray temp file (crash mid-write) is invisible to listings.
    await writeFile(path.join(root, 'atomic', '.lg-tmp-deadbeef'), 'partial');
    const listed = await collect(store.list('atomic/'));
    expect(listed.map((i) => (i.kind === 'object' ? i.key : i.prefix))).toEqual(['atomic/y']);
  });

  it('maps keys to files under the root and removes directories a delete leaves empty', async () => {
    await store.put('tree/a/b/c.txt', Buffer.from('c'));
    expect((await stat(path.join(root, 'tree/a/b/c.txt'))).isFile()).toBe(true);
    await store.delete('tree/a/b/c.txt');
    await expect(stat(path.join(root, 'tree'))).rejects.toThrow();
    expect((await stat(root)).isDirectory()).toBe(true);
  });

  it('refuses a key that would need a file to be a directory, naming both', async () => {
    await store.put('conf/a', Buffer.from('file'));
    const err = await store.put('conf/a/b', Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).message).toContain('conf/a/b');
    await store.put('conf/d/e', Buffer.from('x'));
    const err2 = await store.put('conf/d', Buffer.from('x')).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(StorageError);
    // A directory is not an object.
    await expect(store.get('conf/d')).rejects.toMatchObject({ code: 'NotFound' });
    await expect(store.head('conf/d')).rejects.toMatchObject({ code: 'NotFound' });
  });

  it('reports size-mtime etags, mtime as lastModified, one null version', async () => {
    const put = await store.put('etag/k', Buffer.from('hello'));
    expect(put).toEqual({ etag: '5d41402abc4b2a76b9719d911017c592', versionId: null });
    const head = await store.head('etag/k');
    const st = await stat(path.join(root, 'etag/k'), { bigint: true });
    expect(head.etag).toBe(`5-${st.mtimeNs}`);
    expect(head.lastModified.getTime()).toBe(Number(st.mtimeMs));
    const [item] = await collect(store.list('etag/', { versions: true }));
    expect(item).toMatchObject({ kind: 'object', key: 'etag/k', etag: head.etag, versionId: null, isLatest: true, isDeleteMarker: false });
    expect((await getBytes(store, 'etag/k', { versionId: 'null' })).toString()).toBe('hello');
    await expect(store.get('etag/k', { versionId: 'abc' })).rejects.toMatchObject({ code: 'NotFound' });
    // A streamed put returns the size-mtime etag (no hashing).
    const streamed = await store.put('etag/s', Readable.from([Buffer.from('abc')], { objectMode: false }));
    expect(streamed.etag).toBe((await store.head('etag/s')).etag);
  });

  it('does not list symbolic links or empty directories', async () => {
    await store.put('links/real', Buffer.from('r'));
    await symlink(path.join(root, 'links/real'), path.join(root, 'links/alias'));
    await symlink(base, path.join(root, 'links/outside'));
    await mkdir(path.join(root, 'links/empty/deeper'), { recursive: true });
    expect((await collect(store.list('links/'))).map((i) => (i.kind === 'object' ? i.key : i.prefix))).toEqual(['links/real']);
    expect((await collect(store.list('links/', { delimiter: '/' }))).map((i) => (i.kind === 'object' ? i.key : i.prefix))).toEqual([
      'links/real',
    ]);
  });

  it('never writes or deletes through a symbolic link below the root; a link at the key is replaced', async () => {
    const outside = path.join(base, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'kept'), 'outside');
    await mkdir(path.join(root, 'planted/deep'), { recursive: true });
    await symlink(outside, path.join(root, 'planted/dir'));
    await symlink('../../../outside', path.join(root, 'planted/deep/up'));
    await symlink(path.join(outside, 'kept'), path.join(root, 'planted/file'));
    await expect(store.put('planted/dir/new', Buffer.from('x'))).rejects.toMatchObject({ backendCode: 'SymlinkInPath', message: expect.stringContaining('planted/dir is a symbolic link') });
    await expect(store.put('planted/deep/up/x/y', Buffer.from('x'))).rejects.toMatchObject({ backendCode: 'SymlinkInPath', message: expect.stringContaining('planted/deep/up is a symbolic link') });
    await expect(store.delete('planted/dir/kept')).rejects.toMatchObject({ backendCode: 'SymlinkInPath' });
    await store.put('planted/file', Buffer.from('inside'));
    expect(await readdir(outside)).toEqual(['kept']);
    expect((await getBytes(store, 'planted/file')).toString()).toBe('inside');
    expect((await stat(path.join(outside, 'kept'))).size).toBe('outside'.length);
  });

  it('reports and sets the permission bits of files', async () => {
    await store.put('modes/a', Buffer.from('a'), { mode: 0o640 });
    expect((await stat(path.join(root, 'modes/a'))).mode & 0o7777).toBe(0o640);
    expect((await store.head('modes/a')).mode).toBe(0o640);
    const got = await store.get('modes/a');
    got.body.destroy();
    expect(got.meta.mode).toBe(0o640);
  });

  it('rolls up by a delimiter other than /', async () => {
    for (const k of ['dash/a-1', 'dash/a-2', 'dash/b-1', 'dash/c']) await store.put(k, Buffer.from('x'));
    const items = await collect(store.list('dash/', { delimiter: '-' }));
    expect(items.map((i) => (i.kind === 'object' ? i.key : `[${i.prefix}]`))).toEqual(['[dash/a-]', '[dash/b-]', 'dash/c']);
  });

  it('treats a missing root as NoSuchBucket, and creates it on the first put', async () => {
    const missing = new FsStore({ root: path.join(base, 'not-yet') });
    await expect(collect(missing.list(''))).rejects.toMatchObject({ code: 'NoSuchBucket' });
    await expect(missing.head('config')).rejects.toMatchObject({ code: 'NoSuchBucket' });
    await missing.put('config', Buffer.from('{}'), { ifNoneMatch: true });
    expect((await getBytes(missing, 'config')).toString()).toBe('{}');
    expect(missing.location).toBe(`file://${path.join(base, 'not-yet')}/`);
  });

  it('survives deletes racing puts in the same directory', async () => {
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      ops.push(store.put(`race/d/k${i % 3}`, Buffer.from(String(i))));
      ops.push(store.delete(`race/d/k${(i + 1) % 3}`));
    }
    await Promise.all(ops);
  });
});

describe('FsStore as a restore target (no fsync, user files)', () => {
  let base: string;
  let root: string;
  let store: FsStore;
  beforeAll(async () => {
    base = await tempRoot();
    root = path.join(base, 'target');
    store = new FsStore({ root, fsync: false, userFiles: true });
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  it('refuses a link planted in a directory it already wrote into, and a file where a directory should be', async () => {
    const outside = path.join(base, 'outside');
    await mkdir(outside);
    await store.put('a/b/first', Buffer.from('1'));
    await rm(path.join(root, 'a/b'), { recursive: true });
    await symlink(outside, path.join(root, 'a/b'));
    await expect(store.put('a/b/second', Buffer.from('2'))).rejects.toMatchObject({ backendCode: 'SymlinkInPath', message: expect.stringContaining('a/b is a symbolic link') });
    expect(await readdir(outside)).toEqual([]);
    await store.put('plain', Buffer.from('a file'));
    await expect(store.put('plain/under', Buffer.from('x'))).rejects.toMatchObject({ backendCode: 'ENOTDIR', message: expect.stringContaining('conflicts with an existing object') });
    expect((await readdir(root)).sort()).toEqual(['a', 'plain']);
  });

  it('sets modes exactly, also those the umask narrows, and answers the MD5 as the ETag of a Buffer', async () => {
    const umask = process.umask();
    process.umask(umask); // read back at once: nothing else creates files in this process meanwhile
    for (const mode of [0o640, 0o755, 0o666, 0o600]) {
      const r = await store.put(`modes/m${mode.toString(8)}`, Buffer.from('abc'), { mode });
      expect((await stat(path.join(root, `modes/m${mode.toString(8)}`))).mode & 0o7777, `mode ${mode.toString(8)} with umask ${umask.toString(8)}`).toBe(mode);
      expect({ ...r }).toEqual({ etag: '900150983cd24fb0d6963f7d28e17f72', versionId: null });
    }
    expect((await readdir(path.join(root, 'modes'))).filter((n) => n.startsWith('.lg-tmp-'))).toEqual([]);
  });

  it('holds a folder marker (`p/`) as its directory: empty only, never through a link; a repository refuses it', async () => {
    const r = await store.put('marks/p/', Buffer.alloc(0));
    expect(r).toEqual({ etag: 'd41d8cd98f00b204e9800998ecf8427e', versionId: null });
    expect((await stat(path.join(root, 'marks/p'))).isDirectory()).toBe(true);
    expect(await store.head('marks/p/')).toMatchObject({ size: 0 });
    expect((await store.get('marks/p/')).body.read()).toBeNull(); // an empty body
    await expect(store.head('marks/none/')).rejects.toMatchObject({ code: 'NotFound' });
    await expect(store.put('marks/q/', Readable.from([Buffer.from('content')]))).rejects.toMatchObject({ backendCode: 'FolderMarkerContent', message: expect.stringContaining('(7 bytes)') });
    await store.put('marks/file', Buffer.from('f'));
    await expect(store.put('marks/file/', Buffer.alloc(0))).rejects.toMatchObject({ backendCode: 'ENOTDIR' });
    await expect(store.head('marks/file/')).rejects.toMatchObject({ code: 'NotFound' });
    const outside = path.join(base, 'outside-marks');
    await mkdir(outside);
    await symlink(outside, path.join(root, 'marks/link'));
    await expect(store.put('marks/link/sub/', Buffer.alloc(0))).rejects.toMatchObject({ backendCode: 'SymlinkInPath' });
    await expect(store.head('marks/link/')).rejects.toMatchObject({ code: 'NotFound' });
    expect(await readdir(outside)).toEqual([]);
    // A delete removes the directory only when empty.
    await store.put('marks/p/x', Buffer.from('x'));
    await store.delete('marks/p/');
    expect((await stat(path.join(root, 'marks/p/x'))).isFile()).toBe(true);
    await store.delete('marks/p/x');
    await store.put('marks/e/', Buffer.alloc(0));
    await store.delete('marks/e/');
    expect((await readdir(path.join(root, 'marks'))).sort()).toEqual(['file', 'link']);
    const repoStore = new FsStore({ root: path.join(base, 'repo-like'), fsync: false });
    await expect(repoStore.put('p/', Buffer.alloc(0))).rejects.toMatchObject({ backendCode: 'InvalidKey' });
  });

  it('writes many files in parallel, each whole, with deletes racing them', async () => {
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      ops.push(store.put(`many/d${i % 7}/k${i}`, Buffer.alloc(1000 + i, i)));
      if (i % 5 === 0) ops.push(store.delete(`many/d${(i + 3) % 7}/k${i - 3}`));
    }
    await Promise.all(ops);
    for (let i = 0; i < 200; i++) {
      const got = await getBytes(store, `many/d${i % 7}/k${i}`).catch(() => null);
      if (got !== null) expect(got.equals(Buffer.alloc(1000 + i, i))).toBe(true);
    }
  });
});
