import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, open, opendir, realpath, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type BigIntStats, type Dirent } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { StorageError } from '../errors.js';
import { compareKeys } from '../util/key-order.js';
import { makeDirectory } from '../util/make-directory.js';
import { abortable, fsKeyProblem, rollUp, TMP_PREFIX } from './common.js';
import { fileEntry, fileEtag, fileMeta, fileTimeSeconds, skippedEntry } from './fs-entries.js';
import { classifyFsError, errCode } from './fs-errors.js';
import { fileOps as ops, fsyncFd, processUmask } from './fs-fd.js';
import { childPath, fsPathOf, keySegmentOf, parentPath, type FsPath } from './fs-names.js';
import {
  newRequestStats,
  type GetOptions,
  type GetResult,
  type ListItem,
  type ListOptions,
  type ObjectEntry,
  type ObjectMeta,
  type PutOptions,
  type PutResult,
  type ObjectStore,
  type RequestStats,
  type StoreCapabilities,
  type ObjectRetention,
  type SkippedEntry,
} from './types.js';

/** Where an FsStore keeps its objects, and how it treats the directory. */
export interface FsStoreOptions {
  root: string;
  /** fsync files and directories on put (default true); tests may turn it off for speed. */
  fsync?: boolean;
  /**
   * The directory holds user files (a backup source, a restore target), not a repository:
   * `.lg-tmp-*` names are the user's and are listed, and see the class comment on links.
   */
  userFiles?: boolean;
}

/**
 * A directory as an ObjectStore: the repository on local or mounted disks, and local
 * directories as backup sources or restore targets. Key `a/b/c` is the file `<root>/a/b/c`.
 *
 * What a filesystem offers, and nothing more:
 * - Writes are atomic: a temporary `.lg-tmp-*` file in the target directory, fsync, rename (or
 *   link, for create-only puts, which makes `ifNoneMatch` race-free), fsync of the directory.
 *   A repository never lists them; among user files (`userFiles`) `.lg-tmp-*` is the user's.
 * - Content type, encoding, user metadata and tags are NOT preserved (no sidecar files).
 * - One version per key: versionId null, isLatest true; lastModified is the mtime.
 * - ETags: `<size>-<mtime ns>` from list and head (hashing every file to list it would be far
 *   too slow); a put of a Buffer returns the MD5 hex of the bytes, as S3 would.
 * - A key cannot be both an object and a "directory" of other keys (`a` and `a/b`); such a
 *   put fails with StorageError 'Other'. Empty directories left by deletes are removed.
 * - Keys are validated: no empty, `.` or `..` segments, no NUL: the store never touches a path
 *   outside its root. A file name that is not UTF-8 (or holds a backslash) has `\xHH` escapes
 *   in its key (fs-names.ts), so every name round-trips byte for byte.
 * - Symbolic links and special files (FIFOs, sockets, devices) are not objects: a repository
 *   ignores them; a directory of user files (`userFiles`) reports each to the listing's
 *   `onSkip`, and its reads never follow a link (a file swapped for a link after it was listed
 *   fails to read instead of backing up what the link points at, perhaps outside the tree).
 * - Writes and deletes never follow a symbolic link below the root: each parent directory is
 *   checked with lstat (and created one level at a time), a link there fails the write naming
 *   it, and a link at the key itself is replaced by the new file (rename), never written through.
 *   Among user files a listing or HEAD below a link finds nothing, as a full listing would.
 *   (A restore target may hold links planted by anyone who could write there.)
 * - Among user files a folder marker (`p/`, a zero-byte object that S3 consoles and tools make
 *   to show a "folder") is its directory: put creates it (one with content is refused, naming
 *   the key), head/get find it as an empty object while it is a directory, delete removes it
 *   when empty. `list` reports files only, never a marker. A repository refuses such keys.
 * - `head`/`get` report the file's permission bits as `mode`; `put` sets `mode` exactly
 *   (default: 0644 less the process umask).
 * - `list` walks directories lazily in global key order (UTF-8 byte order, as S3), reading one
 *   directory at a time; request stats count one `list` per directory read.
 */
export class FsStore implements ObjectStore {
  readonly location: string;
  readonly stats: RequestStats = newRequestStats();
  readonly capabilities: StoreCapabilities = { tags: false, versions: false, objectLock: false, serverSideCopy: false, createsRoot: true, writerTimes: true };
  readonly root: string;
  private readonly fsync: boolean;
  private readonly userFiles: boolean;
  private rootMade = false;
  /** The root's real path (links resolved), once the root exists; null when it could not be read. */
  private realRoot: string | null | undefined;
  /** The process umask, read at the first put with a mode (fs-fd.ts `processUmask`). */
  private umask: number | null | undefined;
  private readonly tmpBase = randomBytes(8).toString('hex');
  private tmpCount = 0;

  constructor(opts: FsStoreOptions) {
    this.root = path.resolve(opts.root);
    this.fsync = opts.fsync ?? true;
    this.userFiles = opts.userFiles ?? false;
    const href = pathToFileURL(this.root).href;
    this.location = href.endsWith('/') ? href : `${href}/`;
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncGenerator<ListItem> {
    const cut = prefix.lastIndexOf('/') + 1;
    const dirRel = prefix.slice(0, cut);
    const namePrefix = prefix.slice(cut);
    const problem = dirRel === '' ? null : fsKeyProblem(dirRel.slice(0, -1), this.userFiles);
    if (problem !== null || namePrefix.includes('\0')) {
      throw new StorageError('Other', `LIST ${this.location}${prefix}: invalid prefix: ${problem ?? 'contains a NUL byte'}`);
    }
    if (opts.startAfter?.includes('\0')) throw new StorageError('Other', `LIST ${this.location}${prefix}: invalid startAfter (NUL byte)`);
    const { delimiter, startAfter, signal, onSkip } = opts;
    // A directory reached through a link is not part of the tree (a full listing never enters
    // one): a prefix under a link lists nothing, instead of what the link points at.
    if (this.userFiles && dirRel !== '' && (await this.underLink(dirRel))) return;
    // '/' maps onto directories, so the walk can stop at each sub-directory; any other delimiter
    // needs the full walk, rolled up afterwards.
    const slash = delimiter === '/';
    const walk = this.walk(dirRel, namePrefix, startAfter, slash, true, signal, onSkip);
    if (slash || !delimiter) {
      yield* walk;
    } else {
      yield* rollUp(objectsOnly(walk), prefix, delimiter, startAfter);
    }
  }

  async head(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<ObjectMeta> {
    const file = this.pathOf('HEAD', key);
    this.stats.head++;
    this.checkVersion('HEAD', key, opts.versionId);
    // As list: no object lies below a link (a restore would otherwise see what it points at).
    if (this.userFiles && (await this.underLink(key))) throw this.notFound('HEAD', key);
    if (this.markerDir(key) !== null) return this.markerMeta('HEAD', key, file);
    let st: BigIntStats;
    try {
      // A link among user files is no object (see the class comment): lstat, not stat.
      st = await (this.userFiles ? lstat : stat)(file, { bigint: true });
    } catch (err) {
      throw await this.fsError('HEAD', key, err);
    }
    if (!st.isFile()) throw this.notFound('HEAD', key);
    return fileMeta(st);
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    const file = this.pathOf('GET', key);
    this.stats.get++;
    this.checkVersion('GET', key, opts.versionId);
    if (this.markerDir(key) !== null) {
      if (await this.underLink(key)) throw this.notFound('GET', key);
      return { body: Readable.from([]), meta: await this.markerMeta('GET', key, file) };
    }
    let fh: FileHandle;
    try {
      // Non-blocking: opening a FIFO for reading would wait for a writer forever (a regular
      // file ignores the flag). No-follow in user files: see the class comment.
      fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | (this.userFiles ? constants.O_NOFOLLOW : 0));
    } catch (err) {
      throw await this.fsError('GET', key, err);
    }
    try {
      const st = await fh.stat({ bigint: true });
      if (!st.isFile()) throw this.notFound('GET', key);
      const size = Number(st.size);
      let start = 0;
      let end = size - 1;
      if (opts.range) {
        ({ start, end } = opts.range);
        if (start < 0 || end < start || start >= size) {
          throw new StorageError('Other', `GET ${this.location}${key}: InvalidRange (416): bytes=${start}-${end} of ${size}`, {
            backendCode: 'InvalidRange',
          });
        }
        end = Math.min(end, size - 1);
      }
      // Counted up front: the bytes this GET serves (a reader may stop early).
      this.stats.bytesIn += Math.max(0, end - start + 1);
      const body = size === 0 ? fh.createReadStream() : fh.createReadStream({ start, end });
      return { body: abortable(body, opts.signal), meta: fileMeta(st) };
    } catch (err) {
      await fh.close().catch(() => {});
      throw err instanceof StorageError ? err : await this.fsError('GET', key, err);
    }
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions = {}): Promise<PutResult> {
    const file = this.pathOf('PUT', key);
    const dir = parentPath(file);
    this.stats.put++;
    if (this.markerDir(key) !== null) return this.putMarker(key, file, body, opts);
    const tmp = childPath(dir, this.tmpName());
    // Refused before any directory is made: the mkdirs would succeed and the open fail, leaving
    // empty directories behind.
    const tooLong = this.pathTooLong(key, file, tmp);
    if (tooLong !== null) throw tooLong;
    // File descriptors, not FileHandles (fs-fd.ts).
    let fd: number | undefined;
    let tmpExists = false;
    try {
      // A concurrent delete may remove the (then empty) directory between mkdir and open. The
      // first attempt may take safeParents' fast check; a file where a directory should be
      // (ENOTDIR) then takes the full walk, which names the conflict.
      for (let attempt = 1; ; attempt++) {
        await this.safeParents('PUT', key, true, attempt === 1);
        try {
          fd = await ops.open(tmp, 'wx', opts.mode ?? 0o644);
          break;
        } catch (err) {
          const code = errCode(err);
          if (!(code === 'ENOENT' || (code === 'ENOTDIR' && attempt === 1)) || attempt >= 5) throw err;
        }
      }
      tmpExists = true;
      if (Buffer.isBuffer(body)) {
        await writeFully(fd, body);
        this.stats.bytesOut += body.length;
      } else {
        for await (const chunk of body) {
          opts.signal?.throwIfAborted();
          const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
          await writeFully(fd, buf);
          this.stats.bytesOut += buf.length;
        }
      }
      opts.signal?.throwIfAborted();
      // open() narrows the mode by the umask; an explicit mode (a restored file's) is set as
      // given, with a chmod unless open() already created the file with exactly that mode.
      if (opts.mode !== undefined && !this.openKeepsMode(opts.mode)) await ops.fchmod(fd, opts.mode);
      // A restored file gets its recorded time: a backup of it then finds it unchanged.
      if (opts.modifiedNs !== undefined) await ops.futimes(fd, Date.now() / 1000, fileTimeSeconds(opts.modifiedNs));
      if (this.fsync) await fsyncFd(fd);
      const written = fd;
      fd = undefined;
      await ops.close(written);
      if (opts.ifNoneMatch) {
        try {
          await ops.link(tmp, file);
        } catch (err) {
          if (errCode(err) === 'EEXIST') {
            throw new StorageError('PreconditionFailed', `PUT ${this.location}${key}: PreconditionFailed: the key already exists`, {
              backendCode: 'EEXIST',
            });
          }
          throw err;
        }
        await unlink(tmp);
      } else {
        await ops.rename(tmp, file);
      }
      tmpExists = false;
      if (this.fsync) await syncDir(dir);
      if (Buffer.isBuffer(body)) return md5Result(body);
      return { etag: fileEtag(await stat(file, { bigint: true })), versionId: null };
    } catch (err) {
      if (fd !== undefined) await ops.close(fd).catch(() => {});
      if (tmpExists) await unlink(tmp).catch(() => {});
      if (err instanceof StorageError || opts.signal?.aborted) throw err;
      if (errCode(err) === 'EISDIR') throw this.isDirectory(key, err);
      throw await this.fsError('PUT', key, err);
    }
  }

  /**
   * The error `put` would fail with before writing a byte, or null, from what the directory
   * holds now (a dry run): a key no path can hold, a path too long, a folder marker with
   * content, a link or a file on the way, a directory at the key. Creates nothing.
   */
  async putRefusal(key: string, size: number): Promise<StorageError | null> {
    try {
      const file = this.pathOf('PUT', key);
      if (this.markerDir(key) !== null) {
        if (size > 0) return this.markerWithContent(key, size);
        await this.safeParents('PUT', key, false);
        return null;
      }
      const tooLong = this.pathTooLong(key, file, childPath(parentPath(file), this.tmpNameAt(this.tmpCount + 1)));
      if (tooLong !== null) return tooLong;
      await this.safeParents('PUT', key, false);
      if ((await lstat(file).catch(() => null))?.isDirectory() === true) return this.isDirectory(key);
      return null;
    } catch (err) {
      return err instanceof StorageError ? err : await this.fsError('PUT', key, err);
    }
  }

  private pathTooLong(key: string, file: FsPath, tmp: FsPath): StorageError | null {
    const longest = Math.max(Buffer.byteLength(file), Buffer.byteLength(tmp));
    if (longest <= PATH_MAX) return null;
    return new StorageError('Other', `PUT ${this.location}${key}: ENAMETOOLONG: its file path would be ${longest} bytes, longer than the ${PATH_MAX} a Linux path can hold: restore it into a directory with a shorter path, or to S3 (--to)`, {
      backendCode: 'ENAMETOOLONG',
    });
  }

  private markerWithContent(key: string, size: number): StorageError {
    return new StorageError('Other', `PUT ${this.location}${key}: a folder marker with content (${size} bytes): in a directory it can only be the directory ${key.slice(0, -1)}, so its content is not written; restore it to S3 (--to) to keep it`, {
      backendCode: 'FolderMarkerContent',
    });
  }

  private isDirectory(key: string, cause?: unknown): StorageError {
    return new StorageError('Other', `PUT ${this.location}${key}: EISDIR: the key conflicts with an existing "directory": ${key} is a directory (of keys below it), so it cannot also be a file`, {
      backendCode: 'EISDIR',
      ...(cause === undefined ? {} : { cause }),
    });
  }

  /** A fresh temporary name: random per store, then counted (no call into OpenSSL per put). */
  private tmpName(): string {
    this.tmpCount++;
    return this.tmpNameAt(this.tmpCount);
  }

  /** The name of this store's `n`th temporary file. */
  private tmpNameAt(n: number): string {
    return `${TMP_PREFIX}${this.tmpBase}${n.toString(16)}`;
  }

  /**
   * A folder marker (`p/`, a zero-byte object S3 consoles and Hadoop tools create to show an
   * empty "folder"): among user files, the directory itself. Null for any other key.
   */
  private markerDir(key: string): string | null {
    return this.userFiles && key.length > 1 && key.endsWith('/') ? key.slice(0, -1) : null;
  }

  /**
   * Puts a folder marker: creates its directory (and those above, as any put, never through a
   * link). One with content cannot be written: a directory holds no bytes.
   */
  private async putMarker(key: string, dir: FsPath, body: Buffer | Readable, opts: PutOptions): Promise<PutResult> {
    const size = Buffer.isBuffer(body) ? body.length : await drainedSize(body);
    if (size > 0) throw this.markerWithContent(key, size);
    try {
      // Not the fast check: it takes a file for a directory (put's open then finds out; here nothing would).
      await this.safeParents('PUT', key, true);
      opts.signal?.throwIfAborted();
      if (this.fsync) await syncDir(parentPath(dir));
    } catch (err) {
      if (err instanceof StorageError || opts.signal?.aborted) throw err;
      throw await this.fsError('PUT', key, err);
    }
    return { etag: EMPTY_MD5, versionId: null };
  }

  /** A folder marker's metadata: its directory's, as an empty object; NotFound when it is no directory. */
  private async markerMeta(op: string, key: string, dir: FsPath): Promise<ObjectMeta> {
    const st = await lstat(dir, { bigint: true }).catch(() => null);
    if (st === null || !st.isDirectory()) throw this.notFound(op, key);
    return { size: 0, etag: EMPTY_MD5, lastModified: new Date(Number(st.mtimeMs)), versionId: null, metadata: {} };
  }

  /**
   * Whether open() creates a file with exactly these permission bits: plain permission bits
   * (no setuid/setgid/sticky) that the umask does not narrow. The umask is read once per store.
   */
  private openKeepsMode(mode: number): boolean {
    if (this.umask === undefined) this.umask = processUmask();
    return this.umask !== null && (mode & ~0o777) === 0 && (mode & this.umask) === 0;
  }

  async delete(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<void> {
    const file = this.pathOf('DELETE', key);
    this.stats.delete++;
    // Only the "null" version exists; deleting any other version id deletes nothing (as S3).
    if (opts.versionId !== undefined && opts.versionId !== 'null') return;
    await this.safeParents('DELETE', key, false);
    try {
      // A folder marker: its directory, when nothing else is in it.
      if (this.markerDir(key) !== null) await rmdir(file);
      else await unlink(file);
    } catch (err) {
      const code = errCode(err);
      // Missing (or a directory, which is no object): deleting it is a no-op, as in S3.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'ENOTEMPTY') return;
      if (code === 'EPERM') {
        const st = await stat(file).catch(() => null);
        if (st?.isDirectory()) return;
      }
      throw await this.fsError('DELETE', key, err);
    }
    // Remove directories the delete left empty, so they do not show up as common prefixes.
    const rootLength = Buffer.byteLength(this.root);
    for (let d = parentPath(file); Buffer.byteLength(d) > rootLength; d = parentPath(d)) {
      try {
        await rmdir(d);
      } catch {
        break;
      }
    }
  }

  async getBytes(key: string, maxBytes: number): Promise<{ bytes: Buffer; meta: ObjectMeta } | null> {
    const file = this.pathOf('GET', key);
    let fd: number;
    try {
      // Synchronous system calls: each asynchronous one is a trip through libuv's thread pool
      // and a promise, which cost more CPU than the call itself on a file in the page cache
      // (5,000 small files, CPU of open/stat/read/close: 0.3 s, against 0.65 s asynchronous and
      // 1.0 s with a FileHandle and a stream; a whole seed: 4.6-5.1 s against 5.7-6.5 s). The
      // price: on a slow filesystem (network, cold disk) one call at a time waits; only reads
      // larger than SYNC_READ_MAX go through the thread pool.
      fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | (this.userFiles ? constants.O_NOFOLLOW : 0));
    } catch (err) {
      throw await this.fsError('GET', key, err);
    }
    try {
      const st = fstatSync(fd, { bigint: true });
      if (!st.isFile()) throw this.notFound('GET', key);
      const size = Number(st.size);
      if (size > maxBytes) return null;
      this.stats.get++;
      this.stats.bytesIn += size;
      const bytes = Buffer.allocUnsafeSlow(size);
      let got = 0;
      // A file that shrank since the stat reads short; the caller checks the length.
      while (got < size) {
        // A large read stays asynchronous: it would hold up every other transfer meanwhile.
        const n = size - got > SYNC_READ_MAX ? await ops.read(fd, bytes, got, size - got) : readSync(fd, bytes, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      return { bytes: got === size ? bytes : Buffer.from(bytes.subarray(0, got)), meta: fileMeta(st) };
    } catch (err) {
      throw err instanceof StorageError ? err : await this.fsError('GET', key, err);
    } finally {
      closeSync(fd);
    }
  }

  async getTags(): Promise<Record<string, string>> {
    return {};
  }

  async versioningEnabled(): Promise<boolean> {
    return false;
  }

  async objectLockEnabled(): Promise<boolean> {
    return false;
  }

  async getRetention(): Promise<ObjectRetention | null> {
    return null;
  }

  async putRetention(key: string): Promise<void> {
    throw new StorageError('Other', `PUT retention ${this.location}${key}: this store cannot lock objects`);
  }

  async copyVersion(key: string): Promise<PutResult> {
    throw new StorageError('Other', `COPY ${this.location}${key}: a directory store has no server-side copy (capabilities.serverSideCopy)`);
  }

  /**
   * Lazily walk directory `dirRel` ('' or ending in '/'), entries whose names start with
   * `namePrefix`, in global key order: a directory `d` sorts as `d/` among its siblings.
   */
  private async *walk(
    dirRel: string,
    namePrefix: string,
    startAfter: string | undefined,
    slash: boolean,
    top: boolean,
    signal: AbortSignal | undefined,
    onSkip: ((entry: SkippedEntry) => void) | undefined,
  ): AsyncGenerator<ListItem> {
    signal?.throwIfAborted();
    const dirAbs = fsPathOf(this.root, dirRel);
    const found: { name: Buffer; sortKey: string; kind: 'dir' | 'file' | 'other' }[] = [];
    this.stats.list++;
    try {
      const dir = await openDirRaw(dirAbs);
      for await (const d of dir) {
        const seg = keySegmentOf(d.name);
        if (!seg.startsWith(namePrefix) || (!this.userFiles && seg.startsWith(TMP_PREFIX))) continue;
        if (d.isDirectory()) found.push({ name: d.name, sortKey: `${seg}/`, kind: 'dir' });
        else if (d.isFile()) found.push({ name: d.name, sortKey: seg, kind: 'file' });
        else if (this.userFiles) found.push({ name: d.name, sortKey: seg, kind: 'other' });
      }
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if (top && !(await this.rootExists())) throw this.noSuchRoot('LIST', dirRel + namePrefix, err);
        return;
      }
      throw await this.fsError('LIST', dirRel + namePrefix, err);
    }
    found.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    for (const e of found) {
      const full = dirRel + e.sortKey;
      const after = startAfter === undefined || compareKeys(full, startAfter) > 0;
      if (e.kind !== 'dir') {
        if (!after) continue;
        const file = childPath(dirAbs, e.name);
        let st: BigIntStats | undefined;
        try {
          // Synchronous: see getBytes (one lstat per file; the asynchronous one cost more than the call).
          st = lstatSync(file, { bigint: true, throwIfNoEntry: false });
        } catch (err) {
          throw await this.fsError('LIST', full, err);
        }
        if (st === undefined) continue; // deleted while listing
        if (st.isFile()) yield fileEntry(full, st);
        else if (this.userFiles && !st.isDirectory()) onSkip?.(await skippedEntry(full, file, st));
      } else if (slash) {
        if (after && (await this.hasObject(childPath(dirAbs, e.name)))) yield { kind: 'prefix', prefix: full };
      } else if (after) {
        yield* this.walk(full, '', undefined, false, false, signal, onSkip);
      } else if (startAfter.startsWith(full)) {
        yield* this.walk(full, '', startAfter, false, false, signal, onSkip);
      }
    }
  }

  /**
   * Whether a directory holds at least one object (a listed common prefix must not be empty);
   * in user files also an entry the listing reports as skipped.
   */
  private async hasObject(dirAbs: FsPath): Promise<boolean> {
    const subdirs: Buffer[] = [];
    try {
      const dir = await openDirRaw(dirAbs);
      for await (const d of dir) {
        if (d.isDirectory()) subdirs.push(d.name);
        else if (this.userFiles || (d.isFile() && !keySegmentOf(d.name).startsWith(TMP_PREFIX))) return true; // leaving the loop closes the directory
      }
    } catch {
      return false;
    }
    for (const s of subdirs) if (await this.hasObject(childPath(dirAbs, s))) return true;
    return false;
  }

  private pathOf(op: string, key: string): FsPath {
    const problem = fsKeyProblem(this.markerDir(key) ?? key, this.userFiles);
    if (problem !== null) {
      // A restore target: the key can still be restored where keys are not paths.
      const next = op === 'PUT' && this.userFiles ? '; restore it to S3 (--to) to keep it' : '';
      throw new StorageError('Other', `${op} ${this.location}${JSON.stringify(key)}: invalid key for a filesystem store: ${problem}${next}`, {
        backendCode: 'InvalidKey',
      });
    }
    const file = fsPathOf(this.root, key);
    // Belt and braces: validation already rules this out.
    const text = file.toString();
    if (!text.startsWith(this.root + path.sep) && !(this.root === path.sep && text.startsWith(path.sep))) {
      throw new StorageError('Other', `${op} ${this.location}${JSON.stringify(key)}: key resolves outside the store root`);
    }
    return file;
  }

  /**
   * Creates (with `create`; else only checks) the directories of `key` below the root, one level
   * at a time, refusing any that is a symbolic link: `mkdir -p` (and open) would follow a link
   * planted in a restore target and write outside it. Race-free only against links present
   * before the call (Node has no openat); a restore target is not expected to change under the
   * restore.
   */
  private async safeParents(op: string, key: string, create: boolean, fast = false): Promise<void> {
    // The root itself is the user's choice (it may be, or lie under, a link): created as given.
    // Not with mkdir({ recursive: true }): under /proc it never returns (make-directory.ts).
    if (create && !this.rootMade) {
      makeDirectory(this.root);
      this.rootMade = true;
    }
    const slash = key.lastIndexOf('/');
    if (slash < 0) return;
    if (fast && (await this.isRealDirectory(key.slice(0, slash)))) return;
    const segments = key.split('/');
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join('/');
      const at = fsPathOf(this.root, parent);
      let st = await lstat(at).catch((err: unknown) => {
        if (errCode(err) === 'ENOENT') return null;
        throw err;
      });
      if (st === null) {
        if (!create) return;
        try {
          await mkdir(at);
          continue;
        } catch (err) {
          if (errCode(err) !== 'EEXIST') throw err;
          st = await lstat(at); // created meanwhile (a parallel put): check what it is
        }
      }
      if (st.isSymbolicLink()) {
        throw new StorageError('Other', `${op} ${this.location}${key}: ${parent} is a symbolic link: lakeguard never writes through links`, {
          backendCode: 'SymlinkInPath',
          hint: `remove or rename the link ${JSON.stringify(at.toString())}, or restore into an empty directory`,
        });
      }
      if (!st.isDirectory()) {
        throw new StorageError('Other', `${op} ${this.location}${key}: ENOTDIR: the key conflicts with an existing object: ${parent} is a file, so nothing can be written below it (a directory cannot hold both \`${parent}\` and \`${key}\`)`, {
          backendCode: 'ENOTDIR',
        });
      }
    }
  }

  /**
   * Whether a directory on the way from the root to `key` (a key, or a prefix ending in '/';
   * the root itself excluded) is a symbolic link. One lstat per level; a missing level ends it.
   */
  private async underLink(key: string): Promise<boolean> {
    const segments = key.split('/');
    for (let i = 1; i < segments.length; i++) {
      const st = await lstat(fsPathOf(this.root, segments.slice(0, i).join('/'))).catch(() => null);
      if (st === null || !st.isDirectory()) return st?.isSymbolicLink() ?? false;
    }
    return false;
  }

  /**
   * Whether the key prefix `dirKey` exists below the root with no symbolic link anywhere on the
   * way: its real path is the root's real path joined with it (a link would have been
   * resolved to another path). One realpath instead of an lstat per level; it holds under the
   * same condition as the walk (nothing swaps a directory for a link meanwhile). When it is a
   * file, not a directory, the open inside it fails with ENOTDIR and put walks again.
   */
  private async isRealDirectory(dirKey: string): Promise<boolean> {
    if (dirKey.includes('\\')) return false; // a name that is not UTF-8: the walk handles bytes
    if (this.realRoot === undefined) this.realRoot = await realpath(this.root).catch(() => null);
    if (this.realRoot === null) return false;
    try {
      return (await realpath(fsPathOf(this.root, dirKey))) === path.join(this.realRoot, dirKey);
    } catch {
      return false;
    }
  }

  private checkVersion(op: string, key: string, versionId: string | undefined): void {
    if (versionId !== undefined && versionId !== 'null') {
      throw new StorageError('NotFound', `${op} ${this.location}${key}?versionId=${versionId}: NoSuchVersion: a filesystem store keeps only the current version`, {
        backendCode: 'NoSuchVersion',
      });
    }
  }

  private notFound(op: string, key: string, cause?: unknown): StorageError {
    return new StorageError('NotFound', `${op} ${this.location}${key}: NotFound: no such file`, {
      backendCode: 'ENOENT',
      ...(cause === undefined ? {} : { cause }),
    });
  }

  private noSuchRoot(op: string, key: string, cause: unknown): StorageError {
    return new StorageError('NoSuchBucket', `${op} ${this.location}${key}: the store directory ${this.root} does not exist`, {
      backendCode: 'ENOENT',
      cause,
      hint: 'check the path, or create the directory',
    });
  }

  private async rootExists(): Promise<boolean> {
    try {
      return (await stat(this.root)).isDirectory();
    } catch {
      return false;
    }
  }

  private async fsError(op: string, key: string, err: unknown): Promise<StorageError> {
    const code = errCode(err) ?? 'UNKNOWN';
    const where = `${op} ${this.location}${key}`;
    const detail = err instanceof Error ? err.message : String(err);
    if (code === 'ENOENT' || (code === 'ENOTDIR' && (op === 'GET' || op === 'HEAD'))) {
      if (!(await this.rootExists())) return this.noSuchRoot(op, key, err);
      return this.notFound(op, key, err);
    }
    if (code === 'EISDIR' && (op === 'GET' || op === 'HEAD')) return this.notFound(op, key, err);
    return classifyFsError(where, code, detail, this.root, err);
  }
}

async function* objectsOnly(items: AsyncIterable<ListItem>): AsyncGenerator<ObjectEntry> {
  for await (const it of items) if (it.kind === 'object') yield it;
}

async function writeFully(fd: number, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) off += await ops.write(fd, buf, off, buf.length - off);
}

/**
 * The result of a put of `body`: its MD5 as the ETag, as S3 would answer, computed only when
 * read (a restore into a directory never reads it; the caller does not change a body it put).
 */
function md5Result(body: Buffer): PutResult {
  let md5: string | undefined;
  // An own, enumerable accessor: a copy of the result ({ ...result }) still has the ETag.
  return {
    get etag(): string {
      return (md5 ??= createHash('md5').update(body).digest('hex'));
    },
    versionId: null,
  };
}

async function syncDir(dir: FsPath): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A directory's entries with their names as bytes (a name need not be UTF-8); Node types omit the 'buffer' encoding. */
async function openDirRaw(dir: FsPath): Promise<AsyncIterable<Dirent<Buffer>>> {
  // 256 entries a read (default 32): fewer trips through the thread pool for a large directory.
  return (await opendir(dir, { encoding: 'buffer' as BufferEncoding, bufferSize: 256 })) as unknown as AsyncIterable<Dirent<Buffer>>;
}

/** The longest path Linux takes (PATH_MAX, 4096, counts the terminating NUL). */
const PATH_MAX = 4095;
const EMPTY_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';

/** How many bytes a stream holds, read to its end (a folder marker's body: empty, or refused). */
async function drainedSize(body: Readable): Promise<number> {
  let size = 0;
  for await (const chunk of body) size += (chunk as Buffer).length;
  return size;
}

/** Reads of at most this many bytes are synchronous in FsStore.getBytes (page cache: microseconds). */
const SYNC_READ_MAX = 1024 * 1024;
