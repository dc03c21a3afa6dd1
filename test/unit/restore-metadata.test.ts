// An in-place restore over objects whose bytes are intact but whose metadata was changed
// (a copy onto itself with another Content-Type, `Content-Encoding: gzip`, other user metadata):
// the object is not in the backed-up state, so it is written back, not skipped as identical
// (docs/restore.md, "Keys the target already has").
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { restore, type RestoreSummary } from '../../src/engine/restore.js';
import { compileExcludes } from '../../src/policy/glob.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { bucketLake, testPolicy } from '../helpers/fixtures.js';

describe('restore in place: metadata changed without the bytes', () => {
  let repo: Repository;
  let catalog: Catalog;
  let bucket: MemStore;
  const group: Group = { name: 'g', sources: [] };

  let close: () => void;

  beforeEach(async () => ({ repo, catalog, bucket, close } = await bucketLake('restore-meta', 'lake')));
  afterEach(() => close());

  const backupLake = () => backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [{ bucket: 'lake', objectStore: bucket, prefixes: [''], isExcluded: compileExcludes([]) }] });
  const inPlace = (runSeq: number, dryRun = false): Promise<RestoreSummary> =>
    restore({ repo, catalog, scopes: [{ bucket: 'lake' }], cut: { runSeq }, target: () => bucket, bucketDirs: false, concurrency: 4, dryRun });

  it('writes back an object whose metadata alone changed, and skips it once it is back', async () => {
    const meta = { contentType: 'text/csv', cacheControl: 'max-age=60', metadata: { owner: 'finance' } };
    for (const k of ['a.csv', 'b.csv', 'c.csv', 'd.csv']) await bucket.put(k, Buffer.from(`rows of ${k}`), meta);
    const s = await backupLake();
    expect(s.status).toBe('complete');
    const seq = catalog.findRun(s.runId)!.seq;
    // The same bytes, other metadata: one field each.
    await bucket.put('a.csv', Buffer.from('rows of a.csv'), { ...meta, contentType: 'application/x-evil' });
    await bucket.put('b.csv', Buffer.from('rows of b.csv'), { ...meta, contentEncoding: 'gzip' });
    await bucket.put('c.csv', Buffer.from('rows of c.csv'), { ...meta, metadata: { owner: 'attacker' } });
    expect(await inPlace(seq, true)).toMatchObject({ restored: 3, replaced: 3, skippedIdentical: 1 });
    expect(await inPlace(seq)).toMatchObject({ restored: 3, replaced: 3, skippedIdentical: 1, failed: 0 });
    for (const k of ['a.csv', 'b.csv', 'c.csv']) {
      const h = await bucket.head(k);
      expect({ contentType: h.contentType, contentEncoding: h.contentEncoding, metadata: h.metadata }, k).toEqual({ contentType: 'text/csv', contentEncoding: undefined, metadata: { owner: 'finance' } });
    }
    // Written back with the recorded metadata: found identical (a HEAD each), not written again.
    expect(await inPlace(seq)).toMatchObject({ restored: 0, skippedIdentical: 4 });
  });

  it('--delete-extra keeps a key written before the instant that no run recorded, deletes one written after', async () => {
    let clock = Date.UTC(2026, 0, 1);
    bucket = new MemStore({ name: 'lake', now: () => new Date((clock += 1000)) });
    await bucket.put('a.csv', Buffer.from('a'));
    const s = await backupLake();
    expect(s.status).toBe('complete');
    await bucket.put('between.csv', Buffer.from('written after the run, before the instant'));
    const instant = (clock += 1000);
    await bucket.put('after.csv', Buffer.from('written after the instant'));
    const warnings: string[] = [];
    const events = (e: EngineEvent): void => {
      if (e.type === 'warning') warnings.push(e.message);
    };
    const r = await restore({ repo, catalog, scopes: [{ bucket: 'lake' }], cut: { time: instant }, instant, target: () => bucket, bucketDirs: false, concurrency: 4, deleteExtra: true, events });
    expect(r).toMatchObject({ objects: 1, skippedIdentical: 1, deleted: 1, failed: 0 });
    expect(warnings).toEqual([expect.stringContaining('--delete-extra kept 1 key last modified before the instant that no backup recorded')]);
    await expect(bucket.head('after.csv')).rejects.toMatchObject({ code: 'NotFound' });
    expect((await bucket.head('between.csv')).size).toBeGreaterThan(0);
  });
});
