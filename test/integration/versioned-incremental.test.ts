// A versioned bucket's incremental lists the current keys and asks for the versions of the
// changed ones only (docs/versioned-incremental.md): on the real server, every version written
// between two runs (overwrites, delete markers, a key deleted and re-created, a permanently
// deleted key) is recorded exactly as a run that
// lists every version (`--full-versions`) records it, in a catalog of its own. And the case
// the cheaper listing cannot see is caught by the next full listing.
import { DeleteObjectCommand, ListObjectVersionsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();

describe('versioned incremental: versions of the changed keys only, recorded as a full listing records them', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  /** Two repositories with their own catalogs: `changed` runs as the engine chooses, `full` always lists every version. */
  const repos = ['changed', 'full'] as const;
  type Repo = (typeof repos)[number];
  const cli = (repo: Repo, ...args: string[]) =>
    runCli(['--policy', join(dir.path, `${repo}.yaml`), ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_CACHE_DIR: join(dir.path, `cache-${repo}`) });
  const backup = async (repo: Repo, ...args: string[]) => {
    const r = await cli(repo, 'backup', '--json', ...args);
    expect([0, 4], r.stderr).toContain(r.code);
    return summaryOf(r).counters as Record<string, unknown>;
  };
  const backupBoth = async () => {
    // Two repositories and catalogs: their backups do not touch each other, so they run at once.
    const [changed, full] = await Promise.all([backup('changed'), backup('full', '--full-versions')]);
    return { changed, full };
  };
  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));
  const del = (key: string, versionId?: string) => s3.send(new DeleteObjectCommand({ Bucket: source, Key: key, ...(versionId === undefined ? {} : { VersionId: versionId }) }));
  /** Every version and delete marker of the catalog (what, not when it was seen), and each key's newest. */
  const catalogOf = (repo: Repo): string[] => {
    const root = join(dir.path, `cache-${repo}`);
    const path = (readdirSync(root, { recursive: true }) as string[]).find((p) => p.endsWith('catalog.db'));
    const db = new Database(join(root, path!), { readonly: true });
    try {
      return db
        .prepare(
          `SELECT o.key || ' ' || coalesce(v.version_id, 'null') || ' ' || v.delete_marker || ' ' || v.size || ' ' || coalesce(hex(v.etag), '-') || (CASE WHEN o.latest = v.id THEN ' newest' ELSE '' END) AS line
           FROM versions v JOIN objects o ON o.id = v.object ORDER BY line`,
        )
        .pluck()
        .all() as string[];
    } finally {
      db.close();
    }
  };
  const versionsOf = async (key: string) => {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: source, Prefix: key }));
    return (page.Versions ?? []).filter((v) => v.Key === key).map((v) => v.VersionId!);
  };

  beforeAll(async () => {
    dir = tempDir('it-versioned-incremental');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-vinc', { versioning: true }), createTestBucket('lg-vinc-repo')]);
    for (const repo of repos) writeS3Policy(join(dir.path, `${repo}.yaml`), { repo: `${repoBucket}/${repo}`, buckets: [source] });
    for (const repo of repos) expect((await cli(repo, 'init')).code).toBe(0);
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8]) await put(`lake/dt=${n % 2}/k${n}.csv`, `first k${n}\n`);
  });

  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('records overwrites, delete markers, re-creations and deletions as the full listing does', async () => {
    const seeds = await backupBoth();
    expect(seeds.changed).toMatchObject({ objectsNew: 8, versionListing: 'full' }); // a seed lists every version
    expect(seeds.full).toMatchObject({ objectsNew: 8, versionListing: 'full' });

    for (const body of ['a', 'b', 'c']) await put('lake/dt=1/k1.csv', `k1 ${body}\n`); // overwritten three times
    await del('lake/dt=0/k2.csv'); // a delete marker, current
    await del('lake/dt=1/k3.csv'); // deleted, then written again
    await put('lake/dt=1/k3.csv', 'k3 again\n');
    for (const id of await versionsOf('lake/dt=0/k4.csv')) await del('lake/dt=0/k4.csv', id); // every version gone
    await put('lake/dt=2/new.csv', 'new 1\n'); // a new key with two versions
    await put('lake/dt=2/new.csv', 'new 2\n');
    await put('lake/dt=1/k5.csv', 'k5 two\n');

    const second = await backupBoth();
    expect(second.changed).toMatchObject({ versionListing: 'changed', objectsNew: 7, objectsDeleted: 3 });
    expect(second.full).toMatchObject({ versionListing: 'full', objectsNew: 7, objectsDeleted: 3 });
    const afterSecond = catalogOf('full');
    expect(afterSecond.filter((l) => l.startsWith('lake/dt=1/k1.csv '))).toHaveLength(4);
    expect(catalogOf('changed')).toEqual(afterSecond);

    await put('lake/dt=0/k6.csv', 'k6 two\n');
    await del('lake/dt=1/k1.csv');
    // What only a full listing sees: a version written and hidden again under a key the catalog
    // has as deleted (its newest is a delete marker, and it still does not list).
    await put('lake/dt=0/k2.csv', 'k2 briefly\n');
    await del('lake/dt=0/k2.csv');
    const third = await backupBoth();
    expect(third.changed).toMatchObject({ versionListing: 'changed', objectsNew: 1, objectsDeleted: 1 }); // k6's version, k1's delete marker
    expect(third.full).toMatchObject({ objectsNew: 2, objectsDeleted: 2 }); // and k2's version and delete marker
    const changed = catalogOf('changed');
    const missed = catalogOf('full').filter((l) => !changed.includes(l));
    // k2's version and its delete marker, and which delete marker is its newest: nothing else.
    expect(missed.map((l) => l.split(' ')[0])).toEqual(['lake/dt=0/k2.csv', 'lake/dt=0/k2.csv', 'lake/dt=0/k2.csv']);
    expect(await backup('changed', '--full-versions')).toMatchObject({ versionListing: 'full', objectsNew: 1, objectsDeleted: 1 });
    expect(catalogOf('changed')).toEqual(catalogOf('full'));
  });
});
