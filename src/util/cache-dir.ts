import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * lakeguard's per-user cache directory: $LAKEGUARD_CACHE_DIR, else $XDG_CACHE_HOME/lakeguard,
 * else ~/.cache/lakeguard. It holds the catalogs (one directory per repository id) and, for the
 * single-file binary, the native addons it unpacks (`native/`).
 */
export function cacheDir(): string {
  return process.env.LAKEGUARD_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'lakeguard');
}
