// Where the catalogs (and the single-file binary's native addons) go, and what a command says
// when it cannot create that directory.
import { spawnSync } from 'node:child_process';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { LakeguardError } from '../../src/errors.js';
import { cacheDir } from '../../src/util/cache-dir.js';
import { tempDir } from '../helpers/fixtures.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** A private mount namespace (root and unshare(1) only): a read-only file system for one process. */
const canMount = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;

describe('cacheDir', () => {
  const home = join(homedir(), '.cache', 'lakeguard');
  afterEach(() => vi.unstubAllEnvs());
  /** cacheDir() with exactly these two variables set (undefined: unset). */
  function withEnv(own: string | undefined, xdg: string | undefined): string {
    vi.stubEnv('LAKEGUARD_CACHE_DIR', own);
    vi.stubEnv('XDG_CACHE_HOME', xdg);
    return cacheDir();
  }

  it('takes an empty variable as unset, never the current directory', () => {
    expect(withEnv('', undefined)).toBe(home);
    expect(withEnv(undefined, '')).toBe(home);
    expect(withEnv('', '/x/cache')).toBe('/x/cache/lakeguard');
  });

  it('ignores a relative XDG_CACHE_HOME (XDG spec) and resolves a relative LAKEGUARD_CACHE_DIR once', () => {
    expect(withEnv(undefined, 'relative/cache')).toBe(home);
    expect(withEnv('here', undefined)).toBe(resolve('here'));
    expect(withEnv('/abs/dir', '/x')).toBe('/abs/dir');
  });
});

describe('a catalog directory that cannot be created', () => {
  const dir = tempDir('cache-dir');
  afterAll(() => dir.cleanup());

  it('is the one-line catalog error with its hint (a file in the way)', () => {
    const file = join(dir.path, 'a-file');
    writeFileSync(file, '');
    const path = join(file, 'repo-id', 'catalog.db');
    let caught: unknown;
    try {
      Catalog.open(path, 'r'.repeat(32)).close();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(LakeguardError);
    expect((caught as LakeguardError).message).toBe(`cannot open catalog ${path}: ENOTDIR: not a directory, mkdir '${join(file, 'repo-id')}'`);
    expect((caught as LakeguardError).hint).toMatch(/LAKEGUARD_CACHE_DIR or --catalog/);
  });

  // Node 20's mkdirSync(recursive) retries forever under a directory that answers ENOENT to a
  // new entry (/proc): the command spun at full CPU and, with its signal handlers, ignored SIGTERM.
  it.skipIf(!existsSync('/proc/self'))('under /proc: the one-line error, not a process that never ends', () => {
    const repo = join(dir.path, 'repository-proc');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/lakeguard'), '--repo', `file://${repo}`, '--catalog', '/proc/lakeguard-test/catalog.db', 'init'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: dir.path, LAKEGUARD_PASSWORD: 'pw' },
      timeout: 60_000,
      killSignal: 'SIGKILL',
    });
    expect(r.signal).toBeNull();
    expect(r.stderr).toMatch(/^lakeguard: cannot open catalog \/proc\/lakeguard-test\/catalog\.db: ENOENT: no such file or directory, mkdir '\/proc\/lakeguard-test'\n  hint: .*--catalog.*\n$/);
    expect(r.status).toBe(1);
  });

  // The same spin in the file store's async mkdir of its root: `init` of a file:// repository
  // (and a restore --to-dir, as root) under /proc never ended.
  it.skipIf(!existsSync('/proc/self'))('a file:// repository under /proc: the one-line error, not a process that never ends', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/lakeguard'), '--repo', 'file:///proc/lakeguard-test-repository', 'init'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: dir.path, LAKEGUARD_CACHE_DIR: join(dir.path, 'cache'), LAKEGUARD_PASSWORD: 'pw' },
      timeout: 60_000,
      killSignal: 'SIGKILL',
    });
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe('lakeguard: PUT file:///proc/lakeguard-test-repository/config: the store directory /proc/lakeguard-test-repository does not exist\n  hint: check the path, or create the directory\n');
    expect(r.status).toBe(1);
  });

  it.skipIf(!canMount)('names a read-only file system as such (Node says ENOENT), in one line', () => {
    const ro = join(dir.path, 'read-only');
    const repo = join(dir.path, 'repository');
    const script = `mkdir -p "${ro}" && mount -t tmpfs -o ro tmpfs "${ro}" && exec "${process.execPath}" "${join(ROOT, 'bin/lakeguard')}" --repo "file://${repo}" init`;
    const r = spawnSync('unshare', ['-m', 'sh', '-c', script], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: dir.path, LAKEGUARD_CACHE_DIR: join(ro, 'cache'), LAKEGUARD_PASSWORD: 'pw' },
    });
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^lakeguard: cannot open catalog ${ro}/cache/[0-9a-f]{32}/catalog\\.db: EROFS: read-only file system, mkdir '${ro}/cache'\\n  hint: .*LAKEGUARD_CACHE_DIR.*\\n$`));
    expect(r.status).toBe(1);
  });
});
