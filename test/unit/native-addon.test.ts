// The single-file binary's addon loader (src/util/native-addon.ts), on zstd-napi's real addon:
// the binary itself is tested in binary.test.ts.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LakeguardError } from '../../src/errors.js';
import { loadEmbeddedAddon, type EmbeddedAddon } from '../../src/util/native-addon.js';
import { tempDir } from '../helpers/fixtures.js';

const ZSTD_ADDON = join(dirname(createRequire(import.meta.url).resolve('zstd-napi/binding.js')), 'build/Release/binding.node');
const bytes = readFileSync(ZSTD_ADDON);
const sha256 = createHash('sha256').update(bytes).digest('hex');

describe('loadEmbeddedAddon', () => {
  const dir = tempDir('native-addon');
  afterAll(() => dir.cleanup());
  let reads = 0;
  const addon: EmbeddedAddon = { name: 'zstd-napi.node', sha256, bytes: () => (reads++, bytes) };
  const file = join(dir.path, 'native', sha256, 'zstd-napi.node');

  it('writes the addon once under its hash, in directories of mode 0700, and loads it', () => {
    const binding = loadEmbeddedAddon(addon, join(dir.path, 'native')) as { maxCLevel(): number };
    expect(binding.maxCLevel()).toBeGreaterThanOrEqual(19);
    expect(readFileSync(file).equals(bytes)).toBe(true);
    expect(statSync(join(dir.path, 'native')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir.path, 'native', sha256)).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(dir.path, 'native', sha256))).toEqual(['zstd-napi.node']); // no temporary file left
    expect(reads).toBe(1);
    loadEmbeddedAddon(addon, join(dir.path, 'native'));
    expect(reads).toBe(1); // the file on disk has the right bytes: not written again
  });

  it('rewrites a file whose bytes are not the build\'s, and tightens a directory others can read', () => {
    // A fresh root: rewriting the file loaded above in place would change a mapped library.
    const root = join(dir.path, 'other');
    mkdirSync(join(root, sha256), { recursive: true, mode: 0o755 });
    writeFileSync(join(root, sha256, addon.name), Buffer.concat([bytes, Buffer.from('appended by someone')]));
    loadEmbeddedAddon(addon, root);
    expect(reads).toBe(2);
    expect(readFileSync(join(root, sha256, addon.name)).equals(bytes)).toBe(true);
    expect(statSync(root).mode & 0o777).toBe(0o700);
    expect(statSync(join(root, sha256)).mode & 0o777).toBe(0o700);
  });

  it('refuses embedded bytes that do not match the hash the binary was built with', () => {
    const damaged = { ...addon, sha256: '0'.repeat(64), bytes: () => bytes };
    expect(() => loadEmbeddedAddon(damaged, join(dir.path, 'native'))).toThrow(/embedded zstd-napi\.node does not match its hash: the binary is damaged/);
  });

  it('names the directory and the way out when it cannot write there', () => {
    const notADirectory = join(dir.path, 'file');
    writeFileSync(notADirectory, '');
    let error: unknown;
    try {
      loadEmbeddedAddon(addon, join(notADirectory, 'native'));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(LakeguardError);
    expect((error as LakeguardError).message).toMatch(new RegExp(`^cannot load the native addon zstd-napi\\.node from ${notADirectory}/native/${sha256}: ENOTDIR`));
    expect((error as LakeguardError).hint).toMatch(/LAKEGUARD_CACHE_DIR/);
  });
});
