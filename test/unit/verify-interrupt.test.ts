// SIGINT/SIGTERM stop `verify --read-data` between packs (exit 130 through action()), instead of
// reading the whole repository on while the operator or Kubernetes waits for it to end.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import { verify } from '../../src/engine/verify.js';
import { ExitCode, InterruptedError } from '../../src/errors.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { initRepo, openCatalog, prng, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';

describe('verify --read-data interrupted', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;

  beforeAll(async () => {
    dir = tempDir('verify-interrupt');
    const source = join(dir.path, 'lake');
    const bytes = prng(7);
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 8; i++) files[`t/part-${i}.bin`] = bytes(48 * 1024);
    writeTree(source, files);
    const store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    repo = await initRepo(store, { packSize: 64 * 1024 });
    catalog = openCatalog(dir.path, repo);
    const group: Group = { name: 'lake', sources: [{ kind: 'path', path: source, prefixes: [''], exclude: [] }] };
    await backupGroup({ repo, catalog, policy: testPolicy(store.location, [group]), group });
  });

  afterAll(() => {
    catalog.close();
    dir.cleanup();
  });

  it('stops after the pack being read when the signal fires: InterruptedError (130), the other packs unread', async () => {
    const all = await verify({ repo, catalog, readData: 1, concurrency: 1 });
    expect(all.damage).toEqual([]);
    expect(all.packsRead).toBeGreaterThanOrEqual(4);

    const controller = new AbortController();
    let read = 0;
    const events = (e: { type: string; phase?: string }) => {
      if (e.type === 'progress' && e.phase === 'read packs' && ++read === 1) controller.abort();
    };
    const err = await verify({ repo, catalog, readData: 1, concurrency: 1, events, signal: controller.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InterruptedError);
    expect((err as InterruptedError).exitCode).toBe(ExitCode.interrupted);
    expect(read).toBe(1);
  });
});
