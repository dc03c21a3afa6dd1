import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * mkdirSync(path, { recursive: true }), but failing with the real cause. Node's recursive mkdir
 * reports ENOENT ("no such file or directory") when a missing level cannot be created on a
 * read-only file system, where the cause is EROFS: so after an ENOENT the missing levels are
 * created one at a time, from the nearest one that exists, and the first failure is thrown.
 */
export function makeDirectory(path: string, mode?: number): void {
  const opts = mode === undefined ? {} : { mode };
  try {
    mkdirSync(path, { recursive: true, ...opts });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const missing: string[] = [];
    for (let dir = resolve(path); !existsSync(dir) && dirname(dir) !== dir; dir = dirname(dir)) missing.unshift(dir);
    if (missing.length === 0) throw err;
    for (const dir of missing) mkdirSync(dir, opts);
  }
}
