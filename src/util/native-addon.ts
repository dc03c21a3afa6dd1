import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LakeguardError } from '../errors.js';
import { cacheDir } from './cache-dir.js';
import { makeDirectory } from './make-directory.js';

/**
 * A native addon carried inside the single-file binary (scripts/build-binary.mjs embeds
 * better-sqlite3's and zstd-napi's `.node` files as SEA assets). Only the binary loads addons
 * this way; the npm install loads them from node_modules as their packages do.
 */
export interface EmbeddedAddon {
  /** File name it is written under, e.g. better_sqlite3.node. */
  name: string;
  /** sha256 (hex) of its bytes, taken when the binary was built. */
  sha256: string;
  /** Its bytes; called only when the file on disk is missing or not those bytes. */
  bytes: () => ArrayBuffer | Uint8Array;
}

const HINT =
  'set LAKEGUARD_CACHE_DIR (or XDG_CACHE_HOME) to a writable directory of your own, on a file system that allows executables (not noexec)';

/**
 * Writes the addon once to `<root>/<sha256>/<name>` and loads it. A dynamic library can only be
 * loaded from a file, and loading a file runs its code: so the directories are the user's own
 * with mode 0700 (nobody else can swap the file), the file is written under a temporary name and
 * renamed (a concurrent start never loads half a file), and its bytes are checked against the
 * build's hash before every load (a damaged or altered file is rewritten, never loaded). Keyed by
 * hash, binaries of different versions share the directory without overwriting each other.
 */
export function loadEmbeddedAddon(addon: EmbeddedAddon, root = join(cacheDir(), 'native')): unknown {
  const dir = join(root, addon.sha256);
  const file = join(dir, addon.name);
  try {
    privateDirectory(root);
    privateDirectory(dir);
    if (!holds(file, addon.sha256)) {
      const bytes = new Uint8Array(addon.bytes());
      if (sha256(bytes) !== addon.sha256) throw new LakeguardError(`the binary's embedded ${addon.name} does not match its hash: the binary is damaged`, { hint: 'download or build it again' });
      const temp = join(dir, `.${addon.name}.${randomBytes(6).toString('hex')}.tmp`);
      try {
        writeFileSync(temp, bytes, { mode: 0o700, flag: 'wx' });
        renameSync(temp, file);
      } finally {
        rmSync(temp, { force: true });
      }
      if (!holds(file, addon.sha256)) throw new LakeguardError(`${file} does not hold the bytes just written to it`, { hint: HINT });
    }
    const module = { exports: {} };
    process.dlopen(module, file);
    return module.exports;
  } catch (err) {
    if (err instanceof LakeguardError) throw err;
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new LakeguardError(`cannot load the native addon ${addon.name} from ${dir}: ${reason}`, { hint: HINT, cause: err });
  }
}

/** Creates `path` (mode 0700) or checks that it is a directory of this user's, and makes it 0700. */
function privateDirectory(path: string): void {
  makeDirectory(path, 0o700);
  const st = lstatSync(path);
  if (!st.isDirectory()) throw new LakeguardError(`${path} is not a directory`, { hint: HINT });
  if (process.getuid !== undefined && st.uid !== process.getuid()) {
    throw new LakeguardError(`${path} belongs to another user (uid ${st.uid}): native code is loaded only from a directory of your own`, { hint: HINT });
  }
  if ((st.mode & 0o077) !== 0) chmodSync(path, 0o700);
}

/** Whether `file` is a regular file whose bytes hash to `expected`. */
function holds(file: string, expected: string): boolean {
  let st;
  try {
    st = lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  return st.isFile() && sha256(readFileSync(file)) === expected;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
