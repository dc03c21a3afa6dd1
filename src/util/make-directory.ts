import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * mkdir -p, failing with the real cause, one level at a time from the nearest one that exists.
 * Not Node's mkdirSync(path, { recursive: true }): it reports ENOENT where the cause is EROFS
 * (a missing level on a read-only file system), and under a directory that refuses new entries
 * with ENOENT (/proc, sysfs: `--catalog /proc/x/catalog.db`) Node 20 retries forever, a
 * process spinning at full CPU. Here the first level that cannot be created throws.
 */
export function makeDirectory(path: string, mode?: number): void {
  const opts = mode === undefined ? {} : { mode };
  const missing: string[] = [];
  for (let dir = resolve(path); !existsSync(dir) && dirname(dir) !== dir; dir = dirname(dir)) missing.unshift(dir);
  // It exists: a directory is done, anything else fails (EEXIST) as mkdir -p does.
  if (missing.length === 0) mkdirSync(path, { recursive: true, ...opts });
  for (const dir of missing) {
    try {
      mkdirSync(dir, opts);
    } catch (err) {
      // Created meanwhile by another process: fine, as with mkdir -p.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !existsSync(dir)) throw err;
    }
  }
}
