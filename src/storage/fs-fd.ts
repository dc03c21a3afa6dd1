/**
 * The calls of FsStore's write path, two ways: on libuv's thread pool (promises over the
 * callback API, with file descriptors) and inline (the synchronous calls). Both have one
 * shape, so put() is written once and `await`s either.
 *
 * Why not fs/promises' FileHandle: it allocates an object (with a close-on-GC finalizer) per
 * open file and a promise per call through it. Why inline at all: each call on the pool costs
 * the main thread a hand-off to a pool thread and a wake-up when it is done, which on this
 * 2-core VM is more than the call itself for a small file in the page cache. Writing 5,000
 * files of 16 KB (realpath of the directory, open, write, close, rename) took 1.0-1.1 CPU s
 * through the pool and 0.35-0.6 s inline (node 20, ext4, no fsync); through FileHandle the
 * open/write/close part alone cost 40 % more than the callbacks. An fsync is never inline: it
 * waits for the disk, and would stop everything else meanwhile; nor is anything on a filesystem
 * that may be remote (`isLocalFilesystem`), where a call may wait as long.
 */
import { close, closeSync, fchmod, fchmodSync, fsync, link, linkSync, open, openSync, readFileSync, rename, renameSync, statfs, write, writeSync } from 'node:fs';
import type { FsPath } from './fs-names.js';

export interface FileOps {
  open(file: FsPath, flags: string, mode: number): number | Promise<number>;
  /** Writes bytes `offset` to `offset + length` of `buf` at the file's position; returns the bytes written. */
  write(fd: number, buf: Buffer, offset: number, length: number): number | Promise<number>;
  fchmod(fd: number, mode: number): void | Promise<void>;
  close(fd: number): void | Promise<void>;
  rename(from: FsPath, to: FsPath): void | Promise<void>;
  link(existing: FsPath, created: FsPath): void | Promise<void>;
}

const done =
  <T>(resolve: (v: T) => void, reject: (e: unknown) => void) =>
  (err: NodeJS.ErrnoException | null, value?: T): void =>
    err ? reject(err) : resolve(value as T);

export const poolFileOps: FileOps = {
  open: (file, flags, mode) => new Promise((resolve, reject) => open(file, flags, mode, done(resolve, reject))),
  write: (fd, buf, offset, length) => new Promise((resolve, reject) => write(fd, buf, offset, length, null, done(resolve, reject))),
  fchmod: (fd, mode) => new Promise((resolve, reject) => fchmod(fd, mode, done(resolve, reject))),
  close: (fd) => new Promise((resolve, reject) => close(fd, done(resolve, reject))),
  rename: (from, to) => new Promise((resolve, reject) => rename(from, to, done(resolve, reject))),
  link: (existing, created) => new Promise((resolve, reject) => link(existing, created, done(resolve, reject))),
};

export const inlineFileOps: FileOps = {
  open: (file, flags, mode) => openSync(file, flags, mode),
  write: (fd, buf, offset, length) => writeSync(fd, buf, offset, length),
  fchmod: (fd, mode) => fchmodSync(fd, mode),
  close: (fd) => closeSync(fd),
  rename: (from, to) => renameSync(from, to),
  link: (existing, created) => linkSync(existing, created),
};

export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, done(resolve, reject)));
}

/**
 * The process's umask as Linux reports it in /proc/self/status, or null where it cannot be
 * read (another OS, no /proc). Not process.umask(): reading it that way sets it to 0 for a
 * moment, and a file created by another thread meanwhile would get the wrong mode.
 */
export function processUmask(): number | null {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
    return m === null ? null : parseInt(m[1]!, 8);
  } catch {
    return null;
  }
}

/**
 * Linux filesystem types (statfs f_type, linux/magic.h) on local disks or in memory: ext2/3/4,
 * XFS, Btrfs, tmpfs, overlayfs, ZFS, F2FS. Anything else (NFS, SMB, FUSE, Ceph, another OS)
 * counts as possibly remote.
 */
const LOCAL_FILESYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x794c7630, 0x2fc12fc1, 0xf2f52010]);

/** Whether `dir` is on a local filesystem, where a small file's calls are quick enough to make inline. */
export function isLocalFilesystem(dir: string): Promise<boolean> {
  return new Promise((resolve) => statfs(dir, (err, st) => resolve(err === null && LOCAL_FILESYSTEMS.has(Number(st.type)))));
}
