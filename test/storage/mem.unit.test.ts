import { describe, expect, it } from 'vitest';
import { MemStore } from '../../src/storage/mem-store.js';
import { getBytes } from '../../src/storage/types.js';
import { collect, runStoreContract, runVersioningContract } from './contract.js';

runStoreContract('MemStore', async () => ({ store: new MemStore(), cleanup: async () => {} }), {
  metadata: true,
  tags: true,
  stableEtag: true,
  manyKeys: 2500,
  pagedList: true,
  largeBody: 40 * 1024 * 1024,
  atomicCreate: true,
});

runVersioningContract('MemStore(versioning)', async () => ({ store: new MemStore({ versioning: true }), cleanup: async () => {} }));

describe('MemStore specifics', () => {
  it('keeps lastModified strictly increasing even when the clock stands still or goes back', async () => {
    const times = [1000, 1000, 500, 2000];
    let i = 0;
    const store = new MemStore({ versioning: true, now: () => new Date(times[Math.min(i++, times.length - 1)]!) });
    for (let n = 0; n < 4; n++) await store.put('k', Buffer.from(String(n)));
    const versions = (await collect(store.list('', { versions: true }))).flatMap((x) => (x.kind === 'object' ? [x] : []));
    expect(versions.map((v) => v.lastModified.getTime())).toEqual([2000, 1002, 1001, 1000]);
  });

  it('keeps null versions written before versioning was enabled (as S3 does)', async () => {
    const store = new MemStore();
    const first = await store.put('k', Buffer.from('before'));
    expect(first.versionId).toBeNull();
    store.setVersioning(true);
    const second = await store.put('k', Buffer.from('after'));
    expect(second.versionId).not.toBeNull();
    const versions = (await collect(store.list('', { versions: true }))).flatMap((x) => (x.kind === 'object' ? [x] : []));
    expect(versions.map((v) => [v.versionId, v.isLatest])).toEqual([
      [second.versionId, true],
      [null, false],
    ]);
    expect((await getBytes(store, 'k', { versionId: 'null' })).toString()).toBe('before');
    // Suspended: a new write replaces the null version, a delete adds a null delete marker.
    store.setVersioning(false);
    await store.put('k', Buffer.from('suspended'));
    await store.delete('k');
    const after = (await collect(store.list('', { versions: true }))).flatMap((x) => (x.kind === 'object' ? [x] : []));
    expect(after.map((v) => [v.versionId, v.isDeleteMarker])).toEqual([
      [null, true],
      [second.versionId, false],
    ]);
  });

  it('counts one list request per 1000 keys', async () => {
    const store = new MemStore({ pageSize: 10 });
    for (let n = 0; n < 25; n++) await store.put(`k${n}`, Buffer.from('x'));
    const before = store.stats.list;
    expect(await collect(store.list(''))).toHaveLength(25);
    expect(store.stats.list - before).toBe(3);
  });
});
