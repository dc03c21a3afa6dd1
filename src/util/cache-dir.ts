import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { envSetting } from './env.js';

/**
 * lakeguard's per-user cache directory: $LAKEGUARD_CACHE_DIR, else $XDG_CACHE_HOME/lakeguard,
 * else ~/.cache/lakeguard. It holds the catalogs (one directory per repository id) and, for the
 * single-file binary, the native addons it unpacks (`native/`).
 *
 * Always an absolute path. A variable set but empty counts as unset (an `env:` entry with no
 * value, `LAKEGUARD_CACHE_DIR= lakeguard ...`): taken as it is, it would be the current
 * directory, a different catalog (and, for the binary, native code loaded from there) in every
 * directory a command runs from. A relative $XDG_CACHE_HOME is ignored, as the XDG Base
 * Directory specification says; a relative $LAKEGUARD_CACHE_DIR is resolved once, here.
 */
export function cacheDir(): string {
  const own = envSetting('LAKEGUARD_CACHE_DIR');
  if (own !== undefined) return resolve(own);
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'lakeguard');
}
