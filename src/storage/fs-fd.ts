/**
 * The calls of FsStore's write path (and its large reads) as promises over the callback API,
 * with file descriptors.
 *
 * Why not fs/promises' FileHandle: it allocates an object (with a close-on-GC finalizer) per
 * open file and a promise per call through it, and a restore into a directory opens, writes and
 * closes one small file after another. Why not the synchronous calls, which cost the least CPU:
 * on the thread pool the kernel's work for each file runs beside the main thread, which decodes
 * the next blobs meanwhile. Restoring 5,000 files from S3 in one process, 4 alternations at load
 * 14 (bench/tools/restore-ab.mjs): FileHandle and two lstats per file 4.76 CPU s, 9.6 s wall;
 * these calls and one realpath 3.53 s, 7.3 s; the same calls synchronous 4.83 s, 13.8 s.
 */
import { close, fchmod, fsync, futimes, link, open, read, readFileSync, rename, write } from 'node:fs';
import type { FsPath } from './fs-names.js';

export interface FileOps {
  open(file: FsPath, flags: string, mode: number): Promise<number>;
  /** Writes bytes `offset` to `offset + length` of `buf` at the file's position; returns the bytes written. */
  write(fd: number, buf: Buffer, offset: number, length: number): Promise<number>;
  /** Reads `length` bytes at `position` of the file into `buf` from `position` on; returns the bytes read. */
  read(fd: number, buf: Buffer, position: number, length: number): Promise<number>;
  fchmod(fd: number, mode: number): Promise<void>;
  /** Sets access and modification times, in seconds since the epoch (or a Date: fs-entries.ts fileTimeSeconds). */
  futimes(fd: number, atime: number, mtime: number | Date): Promise<void>;
  close(fd: number): Promise<void>;
  rename(from: FsPath, to: FsPath): Promise<void>;
  link(existing: FsPath, created: FsPath): Promise<void>;
}

const done =
  <T>(resolve: (v: T) => void, reject: (e: unknown) => void) =>
  (err: NodeJS.ErrnoException | null, value?: T): void =>
    err ? reject(err) : resolve(value as T);

export const fileOps: FileOps = {
  open: (file, flags, mode) => new Promise((resolve, reject) => open(file, flags, mode, done(resolve, reject))),
  write: (fd, buf, offset, length) => new Promise((resolve, reject) => write(fd, buf, offset, length, null, done(resolve, reject))),
  read: (fd, buf, position, length) => new Promise((resolve, reject) => read(fd, buf, position, length, position, done(resolve, reject))),
  fchmod: (fd, mode) => new Promise((resolve, reject) => fchmod(fd, mode, done(resolve, reject))),
  futimes: (fd, atime, mtime) => new Promise((resolve, reject) => futimes(fd, atime, mtime, done(resolve, reject))),
  close: (fd) => new Promise((resolve, reject) => close(fd, done(resolve, reject))),
  rename: (from, to) => new Promise((resolve, reject) => rename(from, to, done(resolve, reject))),
  link: (existing, created) => new Promise((resolve, reject) => link(existing, created, done(resolve, reject))),
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

