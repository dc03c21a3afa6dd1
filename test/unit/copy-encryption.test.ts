// copy from an encrypted repository into an unencrypted one is allowed (the target restores the
// run), but said: a warning names the target and that the copy is stored in plaintext there.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import type { VersionRecord } from '../../src/catalog/types.js';
import { copyRuns } from '../../src/engine/copy.js';
import { emptyCounters, type EngineEvent } from '../../src/engine/events.js';
import { finalizeRun } from '../../src/engine/finalize.js';
import { Packer, packRecord } from '../../src/repository/packer.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { initRepo, tempDir } from '../helpers/fixtures.js';

async function recordRun(repo: Repository, catalog: Catalog, id: string, started: number): Promise<void> {
  const seq = catalog.beginRun({ id, group: 'g', started, host: 'h1' });
  const v: VersionRecord = { bucket: 'lake', key: 'k', versionId: null, deleteMarker: false, size: 0, etag: 'e', lastModified: started, validFrom: started, blobs: [] };
  catalog.transaction(() => catalog.insertVersions(seq, [v]));
  const packer = new Packer(repo, { onPackWritten: (pack) => catalog.transaction(() => catalog.insertPack(packRecord(pack), seq)) });
  await finalizeRun(repo, catalog, packer, catalog.findRun(id)!, 'complete', emptyCounters(), () => {});
}

describe('copy between an encrypted and an unencrypted repository', () => {
  let dir: ReturnType<typeof tempDir>;
  const open: Catalog[] = [];
  beforeEach(() => {
    dir = tempDir('copy-encryption');
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
    dir.cleanup();
  });
  const end = async (name: string, password: string | null): Promise<{ repo: Repository; catalog: Catalog }> => {
    const repo = await initRepo(new FsStore({ root: join(dir.path, name), fsync: false }), { password });
    const catalog = Catalog.open(join(dir.path, `${name}.db`), repo.id);
    open.push(catalog);
    return { repo, catalog };
  };

  it('warns (dry run too) when the copy goes from encrypted to plaintext, and not the other way', async () => {
    const enc = await end('enc', 'pw');
    const plain = await end('plain', null);
    await recordRun(enc.repo, enc.catalog, '20261201T020000Z-aaaaaa', Date.UTC(2026, 11, 1, 2));
    await recordRun(plain.repo, plain.catalog, '20261202T020000Z-bbbbbb', Date.UTC(2026, 11, 2, 2));
    const warnings = async (source: typeof enc, target: typeof enc, dryRun: boolean): Promise<string[]> => {
      const seen: EngineEvent[] = [];
      await copyRuns({ source, target, dryRun, events: (e) => seen.push(e) });
      return seen.flatMap((e) => (e.type === 'warning' ? [e.message] : []));
    };
    expect(await warnings(enc, plain, true)).toEqual([expect.stringContaining(`the target ${plain.repo.location} is not encrypted`)]);
    expect(await warnings(enc, plain, false)).toEqual([expect.stringContaining('stored there in plaintext')]);
    expect(await warnings(plain, enc, false)).toEqual([]);
    // Nothing left to copy: no warning.
    expect(await warnings(enc, plain, false)).toEqual([]);
  });
});
