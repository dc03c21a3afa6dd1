// A restore from a partial run says which objects of its selection that run could not read:
// their restored state is an earlier run's (an older version, or none), never silently.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/catalog.js';
import { warnPartialRun } from '../../src/commands/partial-state.js';
import type { Opened } from '../../src/commands/context.js';
import { backupGroup } from '../../src/engine/backup.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { StorageError } from '../../src/errors.js';
import type { Group } from '../../src/policy/types.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import type { GetOptions, GetResult } from '../../src/storage/types.js';
import { initRepo, openCatalog, tempDir, testPolicy } from '../helpers/fixtures.js';

describe('restore from a partial run', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let catalog: Catalog;
  const group: Group = { name: 'u', sources: [] };

  beforeEach(async () => {
    dir = tempDir('partial-state');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    catalog = openCatalog(dir.path, repo);
  });
  afterEach(() => {
    catalog.close();
    dir.cleanup();
  });

  it('warns for the objects of the selection the run could not read, and only for those', async () => {
    const bucket = new MemStore({ name: 'lake' });
    const denied = new Set<string>();
    const store = new (class extends StoreDecorator {
      override async get(key: string, opts?: GetOptions): Promise<GetResult> {
        if (denied.has(key)) throw new StorageError('AccessDenied', `GET mem://lake/${key}: AccessDenied (403)`, { backendCode: 'AccessDenied' });
        return this.inner.get(key, opts);
      }
    })(bucket);
    const backup = () => backupGroup({ repo, catalog, policy: testPolicy(repo.location, [group]), group, sources: [{ bucket: 'lake', objectStore: store, prefixes: [''], isExcluded: () => false }] });
    await bucket.put('a/changed.csv', Buffer.from('v1'));
    await bucket.put('b/fine.csv', Buffer.from('ok'));
    expect((await backup()).status).toBe('complete');
    await bucket.put('a/changed.csv', Buffer.from('v2, unreadable'));
    denied.add('a/changed.csv');
    const partial = await backup();
    expect(partial.status).toBe('partial');
    const seq = catalog.findRun(partial.runId)!.seq;
    const warnings = (prefix?: string, key?: string) => {
      const out: EngineEvent[] = [];
      const scope = { bucket: 'lake', ...(prefix === undefined ? {} : { prefix }), ...(key === undefined ? {} : { key }) };
      warnPartialRun({ catalog } as Opened, { runSeq: seq }, [scope], (e) => void out.push(e));
      return out;
    };
    expect(warnings()).toEqual([expect.objectContaining({ type: 'warning', qualifies: true, message: expect.stringMatching(new RegExp(`^run ${partial.runId} is partial: 1 object of this selection could not be read by it \\(s3://lake/a/changed.csv, AccessDenied\\)`)) })]);
    expect(warnings(undefined, 'a/changed.csv')).toHaveLength(1);
    expect(warnings('b/')).toEqual([]);
    expect(warnings(undefined, 'a/changed')).toEqual([]);
  });
});
