// The run a drill names for its RPO ("the newest run at the instant") is a whole run set when the
// group's newest backup was sharded: never a single shard attempt, which holds only its range.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { runSet } from '../../src/catalog/run-sets.js';
import { newestRunAt } from '../../src/commands/drill.js';
import { newRunId } from '../../src/engine/run-id.js';
import { syncCatalog } from '../../src/engine/sync.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { initRepo, tempDir } from '../helpers/fixtures.js';
import { writeShardAttempt } from '../helpers/shards.js';

const HOUR = 3_600_000;

describe('drill: the newest run is a run set, not a shard attempt', () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let host: Catalog;
  beforeEach(async () => {
    dir = tempDir('drill-run-sets');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    host = Catalog.open(join(dir.path, 'host.db'), repo.id);
  });
  afterEach(() => {
    host.close();
    dir.cleanup();
  });

  const attempt = (set: string, index: number, started: number) =>
    writeShardAttempt(repo, {
      group: 'lake',
      set,
      name: 'nightly',
      index,
      of: 2,
      range: index === 0 ? { upTo: ['lake', 'm'] } : { after: ['lake', 'm'] },
      started,
      objects: [{ bucket: 'lake', key: index === 0 ? `a/${set}` : `z/${set}`, body: `${set}:${index}` }],
    });

  it('skips a run set still missing a shard, and names a finished one by its set id and end', async () => {
    const t0 = Date.now() - 3 * HOUR;
    const older = newRunId(new Date(t0));
    await attempt(older, 0, t0);
    await attempt(older, 1, t0 + 1000);
    const newer = newRunId(new Date(t0 + HOUR));
    await attempt(newer, 0, t0 + HOUR);
    await syncCatalog({ repo, catalog: host });

    // The newer set has one shard of two: its attempt alone is a partial view of the group.
    expect(runSet(host, newer)!.status).toBe('running');
    const olderSet = runSet(host, older)!;
    expect(olderSet.status).toBe('complete');
    expect(newestRunAt(host, 'lake', Date.now())).toEqual({ id: older, finished: olderSet.finished });
    expect(newestRunAt(host, undefined, Date.now())).toEqual({ id: older, finished: olderSet.finished });

    await attempt(newer, 1, t0 + HOUR + 1000);
    await syncCatalog({ repo, catalog: host });
    const newerSet = runSet(host, newer)!;
    expect(newerSet.status).toBe('complete');
    expect(newestRunAt(host, 'lake', Date.now())).toEqual({ id: newer, finished: newerSet.finished });
    // Just before its last shard ended, the newer set had not finished: the older one.
    expect(newestRunAt(host, 'lake', newerSet.finished! - 1)).toEqual({ id: older, finished: olderSet.finished });
  });
});
