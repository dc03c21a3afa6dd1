// Prune and Object Lock: objects whose deletion is refused (removeRepositoryObject answers
// `lockedUntil`) are kept and reported with their date, never as an error; a pack that a
// retained index file still lists is kept too (else a rebuild would locate blobs in a deleted
// pack); once the retention ends, the next prune deletes them. Object Lock itself is tested
// against the real server where removeRepositoryObject is made lock-aware; here its answer is
// stubbed so prune's handling can be checked on the filesystem store.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { prune } from '../../src/engine/prune.js';
import { verify } from '../../src/engine/verify.js';
import { packKey } from '../../src/repository/pack.js';
import { Repository } from '../../src/repository/repository.js';
import { tempDir } from '../helpers/fixtures.js';
import { buildScenario, catalogAnswers, rebuilt, restoredState } from '../helpers/prune-scenario.js';

const retention = vi.hoisted(() => ({ locked: (_name: string): boolean => false, until: new Date('2027-02-21T00:00:00Z') }));

vi.mock('../../src/repository/remove.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/repository/remove.js')>();
  return {
    ...actual,
    removeRepositoryObject: async (repo: Parameters<typeof actual.removeRepositoryObject>[0], name: string) =>
      retention.locked(name) ? { removed: false as const, lockedUntil: retention.until } : actual.removeRepositoryObject(repo, name),
  };
});

describe('prune under Object Lock retention', () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => {
    retention.locked = () => false;
    dir.cleanup();
  });

  it('keeps retained objects and what they list, says when they become deletable, and deletes them later', async () => {
    dir = tempDir('prune-retention');
    const s = await buildScenario(dir.path);
    const unlisted = packKey(s.orphanPacks[1]!);
    retention.locked = (name) => name.startsWith('index/') || name === unlisted;
    const warnings: string[] = [];
    const report = await prune({ repo: s.repo, catalog: s.catalog, maxUnused: 0.05, events: (e) => e.type === 'warning' && warnings.push(e.message) });

    expect(report.damaged).toEqual([]);
    expect(report.retained.map((r) => r.object)).toContain(unlisted);
    expect(report.retained.filter((r) => r.object.startsWith('index/')).length).toBeGreaterThan(0);
    expect(report.retained.every((r) => r.lockedUntil === '2027-02-21T00:00:00.000Z')).toBe(true);
    expect(warnings).toContain(`${unlisted} locked until 2027-02-21; deletable then`);
    expect(warnings.some((w) => /index\/\d{8}T\d{6}Z-[0-9a-f]{16} still lists it and is under retention/.test(w))).toBe(true);
    expect(report.indexFiles.removed).toBe(0);
    expect(existsSync(join(dir.path, 'repo', unlisted))).toBe(true);
    // Packs still listed by a retained index file are all still there.
    expect(existsSync(join(dir.path, 'repo', packKey(s.orphanPacks[0]!)))).toBe(true);
    expect(report.unusedAfterPercent).toBeGreaterThan(5);

    const check = async (what: string) => {
      expect((await verify({ repo: s.repo, catalog: s.catalog, readData: 1, concurrency: 4 })).damage, what).toEqual([]);
      for (const run of s.kept) expect(await restoredState(s.repo, s.catalog, run.id), what).toEqual(run.state);
    };
    await check('with retained objects');
    const fresh = await rebuilt(await Repository.open(s.store, { password: async () => 'test-password' }), join(dir.path, 'rebuilt-1.db'));
    expect(catalogAnswers(fresh)).toEqual(catalogAnswers(s.catalog));
    fresh.close();

    // Retention over: the next prune deletes what was kept.
    retention.locked = () => false;
    const later = await prune({ repo: s.repo, catalog: s.catalog, maxUnused: 0.05 });
    expect(later.retained).toEqual([]);
    expect(later.packs.removed).toBeGreaterThan(0);
    expect(later.unusedAfterPercent).toBeLessThanOrEqual(5);
    for (const p of s.orphanPacks) expect(existsSync(join(dir.path, 'repo', packKey(p)))).toBe(false);
    await check('after the retention ended');
    s.catalog.close();
  });
});
