// `catalog rebuild` never replaces a working catalog with a worse one: damage keeps the old
// file (the new one goes beside it) unless accepted; index entries are checked against the
// packs that exist; a corrupt catalog file is moved aside, not read.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { IndexDocument, RunManifest } from '../../src/engine/finalize.js';
import { rebuildCatalog } from '../../src/engine/rebuild.js';
import { restore } from '../../src/engine/restore.js';
import { packKey } from '../../src/repository/pack.js';
import { Packer } from '../../src/repository/packer.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { getBytes } from '../../src/storage/types.js';
import { runCli } from '../helpers/cli.js';
import { flipByte, locateBlob } from '../helpers/damage.js';
import { hashTree, initRepo, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';

describe('catalog rebuild on a damaged repository', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let store: FsStore;
  let runs: string[];
  let target: string;
  let source: string;
  const repoPath = (...parts: string[]) => join(dir.path, 'repo', ...parts);
  const runsIn = (path: string) => {
    const cat = Catalog.open(path, repo.id);
    try {
      return { runs: cat.listRuns().map((r) => r.id), versions: cat.stats().versions };
    } finally {
      cat.close();
    }
  };

  beforeEach(async () => {
    dir = tempDir('rebuild-damage2');
    source = join(dir.path, 'lake');
    const files: Record<string, string> = {};
    for (let i = 0; i < 12; i++) files[`t/part-${i}.json`] = JSON.stringify({ i, text: 'x'.repeat(100 + i) });
    writeTree(source, files);
    store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store, { packSize: 64 * 1024 });
    target = join(dir.path, 'catalog.db');
    const catalog = Catalog.open(target, repo.id);
    const group = { name: 'lake', sources: [{ kind: 'path' as const, path: source, prefixes: [''], exclude: [] }] };
    const policy = testPolicy(store.location, [group]);
    const first = await backupGroup({ repo, catalog, policy, group });
    writeFileSync(join(source, 't/part-3.json'), '{"changed":true}');
    const second = await backupGroup({ repo, catalog, policy, group });
    catalog.close();
    runs = [first.runId, second.runId];
  });
  afterEach(() => dir.cleanup());

  it('a byte flipped in the records of the last run: the old catalog stays, the new one is beside it; --accept-damage installs it', async () => {
    const before = runsIn(target);
    expect(before).toEqual({ runs, versions: 13 });
    const where = await locateBlob(repo, (await repo.readDocument<RunManifest>('runs', runs[1]!)).records[0]!);
    flipByte(repoPath(packKey(where.pack)), where.offset + (where.length >> 1));

    const report = await rebuildCatalog({ repo, catalogPath: target });
    expect(report).toMatchObject({ installed: false, catalog: `${target}.damaged`, target, previousRuns: 2 });
    expect(report.damage.map((d) => d.what)).toEqual([`run ${runs[1]}`]);
    expect(runsIn(target)).toEqual(before); // the working catalog is untouched
    expect(runsIn(`${target}.damaged`).versions).toBe(12); // the second run's version is what the damage took

    const accepted = await rebuildCatalog({ repo, catalogPath: target, acceptDamage: true });
    expect(accepted).toMatchObject({ installed: true, catalog: target });
    expect(runsIn(target).versions).toBe(12);
  });

  it('a deleted manifest: the old catalog has the run, so the rebuild is damaged and not installed', async () => {
    rmSync(repoPath('runs', runs[1]!));
    const report = await rebuildCatalog({ repo, catalogPath: target });
    expect(report.installed).toBe(false);
    expect(report.damage).toEqual([{ what: `runs/${runs[1]}`, problem: expect.stringMatching(/^missing from the repository, but the old catalog has this run/) }]);
    expect(runsIn(target).runs).toEqual(runs);
  });

  it('a blob in two index files, one of whose packs is gone: the rebuild locates it in the pack that exists', async () => {
    // Copy every blob of the first run's pack into a new pack, listed by an index file that sorts
    // after the original one (index files are read in name order; the first entry used to win).
    const hex = (await repo.readDocument<RunManifest>('runs', runs[0]!)).records[0]!;
    const original = await locateBlob(repo, hex);
    const body = await getBytes(store, packKey(original.pack));
    const { entries, blobArea } = repo.readPackHeader(body, original.pack);
    const packs: IndexDocument['packs'] = [];
    const packer = new Packer(repo, {
      onPackWritten: (p) => {
        packs.push({ id: p.id, size: p.size, blobs: p.entries.map((e) => [e.id.toString('hex'), e.type, e.offset, e.length, e.rawLength, e.compressed ? 1 : 0]) });
      },
    });
    for (const e of entries) {
      await packer.add({ id: e.id, type: e.type, stored: blobArea.subarray(e.offset, e.offset + e.length), compressed: e.compressed, rawLength: e.rawLength });
    }
    await packer.flush();
    expect(packs).toHaveLength(1);
    let copyIndex = '';
    do {
      if (copyIndex !== '') await store.delete(`index/${copyIndex}`);
      copyIndex = await repo.writeDocument('index', null, { version: 1, packs } satisfies IndexDocument);
    } while (copyIndex < original.indexFile);
    await store.delete(packKey(original.pack));

    const report = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'fresh.db') });
    expect(report.damage).toEqual([]);
    expect(report).toMatchObject({ installed: true, runs: 2, versions: 13, missingCount: 0 });
    const cat = Catalog.open(join(dir.path, 'fresh.db'), repo.id);
    try {
      expect(cat.packs().map((p) => p.name)).not.toContain(original.pack);
      const out = join(dir.path, 'out');
      const summary = await restore({
        repo,
        catalog: cat,
        scopes: [{ bucket: 'lake' }],
        cut: { runSeq: cat.listRuns().at(-1)!.seq },
        target: new FsStore({ root: out, fsync: false }),
        bucketDirs: false,
        concurrency: 4,
      });
      expect(summary.failed).toBe(0);
      expect(hashTree(out)).toEqual(hashTree(source));
    } finally {
      cat.close();
    }
  });

  it('an index entry that lies outside its pack is left out and reported', async () => {
    const hex = (await repo.readDocument<RunManifest>('runs', runs[0]!)).records[0]!;
    const { indexFile } = await locateBlob(repo, hex);
    const doc = await repo.readDocument<IndexDocument>('index', indexFile);
    const pack = doc.packs.find((p) => p.blobs.some((b) => b[0] === hex))!;
    pack.blobs.find((b) => b[0] === hex)![2] = pack.size; // its offset, past the end
    const rewritten = await repo.writeDocument('index', null, doc);
    await store.delete(`index/${indexFile}`);
    const report = await rebuildCatalog({ repo, catalogPath: join(dir.path, 'fresh.db') });
    expect(report.damage).toEqual(
      expect.arrayContaining([{ what: `index/${rewritten}`, problem: `1 entries of pack ${pack.id} lie outside the pack; left out` }]),
    );
    expect(report.installed).toBe(false);
  });

  it('a catalog file with a corrupted page is moved aside (named), and the rebuild succeeds', async () => {
    const bytes = readFileSync(target);
    expect(bytes.length).toBeGreaterThan(8 * 4096);
    bytes.fill(0x55, 4 * 4096, bytes.length - 4096);
    writeFileSync(target, bytes);
    const report = await rebuildCatalog({ repo, catalogPath: target });
    expect(report.installed).toBe(true);
    expect(report.movedAside).toMatch(/catalog\.db\.corrupt-\d{8}T\d{6}Z$/);
    expect(readFileSync(report.movedAside!).equals(bytes)).toBe(true); // kept whole
    expect(runsIn(target)).toEqual({ runs, versions: 13 });
    expect(existsSync(`${target}.damaged`)).toBe(false);
  });
});

describe('catalog rebuild and a corrupt catalog through the CLI', { timeout: 120_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.cleanup());

  it('a corrupt catalog is named in one line; rebuild moves it aside; a damaged rebuild exits 1 and keeps the old catalog', async () => {
    dir = tempDir('rebuild-damage-cli');
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) files[`t/part-${i}.json`] = JSON.stringify({ i });
    writeTree(join(dir.path, 'lake'), files);
    const policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    const catalogPath = join(dir.path, 'catalog.db');
    const env = { LAKEGUARD_PASSWORD: 'pw-damage', LAKEGUARD_CATALOG: catalogPath };
    const cli = (...args: string[]) => runCli(['--policy', policy, ...args], env);
    expect((await cli('init')).code).toBe(0);
    expect((await cli('backup')).code).toBe(0);

    const bytes = readFileSync(catalogPath);
    bytes.fill(0x55, 2 * 4096, bytes.length - 4096);
    writeFileSync(catalogPath, bytes);
    const runs = await cli('runs');
    expect(runs.code).toBe(1);
    expect(runs.stderr).toMatch(new RegExp(`^lakeguard: catalog ${catalogPath} is corrupt \\(.*\\)\\n  hint: .*\`lakeguard catalog rebuild\`.*\\n$`));

    const rebuilt = await cli('catalog', 'rebuild');
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.stdout).toMatch(new RegExp(`the old catalog file was corrupt: moved to ${catalogPath}\\.corrupt-\\d{8}T\\d{6}Z`));
    expect((await cli('runs', '--json')).code).toBe(0);

    // Damage: the only index file is gone. The old catalog stays; --accept-damage installs the new one.
    const repoDir = join(dir.path, 'repo');
    const { readdirSync } = await import('node:fs');
    for (const name of readdirSync(join(repoDir, 'index'))) rmSync(join(repoDir, 'index', name));
    const damaged = await cli('catalog', 'rebuild');
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toMatch(/^wrote a new, DAMAGED catalog \(not installed\) to .*catalog\.db\.damaged/);
    expect(damaged.stdout).toMatch(/the new catalog was NOT installed: the old catalog stays at .*catalog\.db; rerun with --accept-damage/);
    const restored = await cli('restore', '--to-dir', join(dir.path, 'out'));
    expect(restored.code, restored.stderr).toBe(0);
    expect(readdirSync(join(dir.path, 'out/t'))).toHaveLength(60);

    const accepted = await cli('catalog', 'rebuild', '--accept-damage', '--json');
    expect(accepted.code).toBe(1);
    expect(accepted.messages.at(-1)).toMatchObject({ message_type: 'summary', installed: true, catalog: catalogPath, versions: 0 });
  });
});
