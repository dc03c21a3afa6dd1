// A fresh host syncs a repository after `forget` and a `prune` that repacked: the forgotten run's
// manifest stays (versions it recorded live on in the kept run), but the versions the forget
// dropped lost their blobs to the prune. Their blobs being in no index file is what the forget
// meant, not damage: the sync imports no run incomplete and verify finds nothing (it once said
// DAMAGE for every such run on every fresh host), and `catalog rebuild` installs its catalog (it
// once wrote it aside as damaged). The CLI runs in this process, on the filesystem.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

describe('a fresh host after forget and prune', { timeout: 60_000 }, () => {
  const dir = tempDir('sync-forget-prune');
  afterAll(() => dir.cleanup());

  /** main() with the cache directory `cache`; stdout and stderr captured. */
  const cli = async (cache: string, ...argv: string[]): Promise<{ code: number; out: string; err: string }> => {
    const saved = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr), cache: process.env.LAKEGUARD_CACHE_DIR };
    let out = '';
    let err = '';
    process.stdout.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true));
    process.stderr.write = ((chunk: string | Uint8Array) => ((err += String(chunk)), true));
    process.env.LAKEGUARD_CACHE_DIR = join(dir.path, cache);
    try {
      return { code: await main(['node', 'lakeguard', '--policy', join(dir.path, 'lakeguard.yaml'), ...argv]), out, err };
    } finally {
      process.stdout.write = saved.out;
      process.stderr.write = saved.err;
      if (saved.cache === undefined) delete process.env.LAKEGUARD_CACHE_DIR;
      else process.env.LAKEGUARD_CACHE_DIR = saved.cache;
    }
  };
  const ok = async (p: Promise<{ code: number; out: string; err: string }>) => {
    const r = await p;
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    return r;
  };

  it('imports no run incomplete, verify finds no damage, and a rebuild installs its catalog', async () => {
    writeFileSync(join(dir.path, 'lakeguard.yaml'), 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: local\n    retention: { keep_last: 1 }\n    sources:\n      - path: ./lake\n');
    const files: Record<string, string> = {};
    for (let d = 1; d <= 4; d++) for (let i = 0; i < 5; i++) files[`d${d}-${i}.csv`] = `${d},${i}\n`;
    writeTree(join(dir.path, 'lake'), files);
    await ok(cli('a', 'init'));
    await ok(cli('a', 'backup', '--quiet'));
    writeTree(join(dir.path, 'lake'), { 'd1-0.csv': 'changed 0\n', 'd1-1.csv': 'changed 1\n', 'd4-2.csv': 'changed 2\n' });
    await ok(cli('a', 'backup', '--quiet'));
    // The first run is forgotten (3 versions dropped, its manifest kept), and the prune repacks their blobs away.
    expect((await ok(cli('a', 'forget'))).out).toMatch(/removed 1; dropped 3 object versions/);
    expect((await ok(cli('a', 'prune', '--max-unused', '0%'))).out).toMatch(/repacked: [1-9]/);

    const fresh = await ok(cli('fresh', 'verify'));
    expect(fresh.err).not.toMatch(/incomplete/);
    expect(fresh.out).toMatch(/no damage found/);
    expect(fresh.out).toMatch(/2 run manifests/);
    // `catalog rebuild` reads the repository the same way: no damage, and it installs its catalog.
    const rebuilt = await ok(cli('rebuilt', 'catalog', 'rebuild'));
    // One run: the first run's manifest is read for its records, but the run is forgotten.
    expect(rebuilt.out).toMatch(/^rebuilt catalog .* 1 run, 20 object versions/s);
    expect(rebuilt.out).not.toMatch(/DAMAGE/);
  });
});
