// The catalog follows a versioned bucket's current state on the real server: delete markers
// removed by hand or by `rollback` reinstate the versions they hid (recorded again, nothing
// read), and a key whose every version was permanently deleted is recorded as deleted. After
// each, `diff <newest run> live` is identical and the newest state (ls, restore) is the bucket's.
import { DeleteObjectCommand, ListObjectVersionsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messagesOf, runCli, summaryOf } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();
const KEYS = ['lake/dt=1/a.csv', 'lake/dt=1/b.csv', 'lake/dt=2/c.csv', 'lake/dt=2/d.csv', 'lake/e.csv'];

describe('versioned source: the catalog follows the bucket', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policyFile: string;
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };
  /** A backup (exit 0, or 4 when the anomaly rules judge the run suspect): its counters. */
  const backup = async () => {
    const r = await cli('backup', '--json');
    expect([0, 4], r.stderr).toContain(r.code);
    const summary = summaryOf(r);
    return { runId: summary.runId as string, counters: summary.counters as Record<string, number> };
  };
  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));
  const del = (key: string, versionId?: string) => s3.send(new DeleteObjectCommand({ Bucket: source, Key: key, ...(versionId === undefined ? {} : { VersionId: versionId }) }));
  const versionsOf = async (key: string) => {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: source, Prefix: key }));
    return {
      versions: (page.Versions ?? []).filter((v) => v.Key === key).map((v) => v.VersionId!),
      markers: (page.DeleteMarkers ?? []).filter((m) => m.Key === key).map((m) => m.VersionId!),
    };
  };
  const liveDiff = async (runId: string) => summaryOf(await ok('diff', runId, 'live', '--json'));
  const lsNames = async (prefix: string) => messagesOf(await ok('ls', `s3://${source}/${prefix}`, '--json'), 'entry').map((e) => e.name as string);

  beforeAll(async () => {
    dir = tempDir('it-reinstate');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-rein', { versioning: true }), createTestBucket('lg-rein-repo')]);
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source] });
    await ok('init');
    for (const key of KEYS) await put(key, `rows of ${key}\n`);
  });

  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('delete markers removed by hand: the keys are back in the newest state, with their history', async () => {
    await backup();
    await del('lake/dt=1/a.csv');
    await del('lake/dt=2/c.csv');
    expect((await backup()).counters).toMatchObject({ objectsDeleted: 2, objectsNew: 0 });
    for (const key of ['lake/dt=1/a.csv', 'lake/dt=2/c.csv']) for (const marker of (await versionsOf(key)).markers) await del(key, marker);

    const r3 = await backup();
    expect(r3.counters).toMatchObject({ objectsReinstated: 2, objectsNew: 0, objectsChanged: 0, objectsDeleted: 0, bytesRead: 0 });
    expect(await liveDiff(r3.runId)).toMatchObject({ identical: true, unchanged: { objects: 5 }, added: { objects: 0 }, deleted: { objects: 0 } });
    expect(await lsNames('lake/dt=1/')).toEqual(['lake/dt=1/a.csv', 'lake/dt=1/b.csv']);
    expect(await lsNames('lake/dt=2/')).toEqual(['lake/dt=2/c.csv', 'lake/dt=2/d.csv']);

    const out = join(dir.path, 'restored');
    await ok('restore', '--run', r3.runId, '--to-dir', out);
    const path = [join(out, source, 'lake/dt=1/a.csv'), join(out, 'lake/dt=1/a.csv')].find((p) => existsSync(p));
    expect(path, 'restored a.csv').toBeDefined();
    expect(readFileSync(path!, 'utf8')).toBe('rows of lake/dt=1/a.csv\n');

    // versions: written, deleted, back (the same S3 version again, from the run that saw it return).
    const history = messagesOf(await ok('versions', `s3://${source}/lake/dt=1/a.csv`, '--json'), 'version');
    const [only] = (await versionsOf('lake/dt=1/a.csv')).versions;
    expect(history.map((v) => [v.versionId, v.deleteMarker])).toEqual([[only, false], [expect.any(String), true], [only, false]]);
    expect(history[0]!.run).toBe(r3.runId);

    const again = await backup();
    expect(again.counters).toMatchObject({ objectsNew: 0, objectsDeleted: 0, bytesRead: 0 });
    expect(again.counters.objectsReinstated ?? 0).toBe(0);
  });

  it('rollback --at a clean run undeletes by removing markers; the next backup records it and a second one nothing', async () => {
    const clean = await backup();
    // The incident: a key overwritten, two deleted, a note added.
    await put('lake/dt=1/b.csv', 'encrypted!!');
    await del('lake/dt=2/d.csv');
    await del('lake/e.csv');
    await put('lake/README_DECRYPT.txt', 'pay');
    await backup();
    const rollback = await cli('rollback', '--bucket', source, '--at', clean.runId, '--json');
    expect(rollback.code, rollback.stderr).toBe(0);
    expect((await versionsOf('lake/e.csv')).markers).toEqual([]); // undeleted by removing the marker

    const after = await backup();
    expect(after.counters.objectsReinstated).toBeGreaterThanOrEqual(2);
    expect(await liveDiff(after.runId)).toMatchObject({ identical: true });
    const second = await backup();
    expect(second.counters).toMatchObject({ objectsNew: 0, objectsChanged: 0, objectsDeleted: 0, bytesRead: 0 });
    expect(second.counters.objectsReinstated ?? 0).toBe(0);
    expect(await liveDiff(second.runId)).toMatchObject({ identical: true });
    // The state after the rollback equals the clean state.
    expect(summaryOf(await ok('diff', clean.runId, second.runId, '--json'))).toMatchObject({ added: { objects: 0 }, deleted: { objects: 0 }, changed: { objects: 0 } });
  });

  it('a key whose every version was permanently deleted is recorded as deleted', async () => {
    const key = 'lake/dt=2/c.csv';
    const { versions, markers } = await versionsOf(key);
    for (const id of [...versions, ...markers]) await del(key, id);
    const r = await backup();
    expect(r.counters).toMatchObject({ objectsDeleted: 1, objectsNew: 0 });
    expect(await liveDiff(r.runId)).toMatchObject({ identical: true, deleted: { objects: 0 }, added: { objects: 0 } });
    expect(await lsNames('lake/dt=2/')).toEqual(['lake/dt=2/d.csv']);
  });
});
