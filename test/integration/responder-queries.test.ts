// The incident responder's questions on the real server, with versioning enabled, through the
// CLI: what changed between two runs (deleted keys with their deletion time, both ETags, an
// identical rewrite apart from a change), `runs show` counting as `diff` does and listing the
// versions it recorded, times to the millisecond with ISO 8601 in JSON, and `diff <T> live`
// comparing the backup with the bucket as it is now.
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messagesOf, runCli, summaryOf } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();
const MS_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('the responder’s queries on a versioned bucket', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policyFile: string;
  /** ETag (without quotes) of each PUT, by name. */
  const etags: Record<string, string> = {};
  let deleteMarkerTime = 0;
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'resp', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };
  const put = async (key: string, body: string, name = key) => {
    const r = await s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));
    etags[name] = r.ETag!.replace(/"/g, '');
  };

  beforeAll(async () => {
    dir = tempDir('it-responder');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-resp', { versioning: true }), createTestBucket('lg-resp-repo')]);
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source] });
    await ok('init');
    for (let i = 1; i <= 5; i++) await put(`t/p${i}.csv`, `row ${i}\n`);
    await ok('backup');
    // Between run 1 and run 2: p1 overwritten twice (two versions, one changed key), p2 written
    // again with the same bytes, p3 deleted, p6 added.
    await put('t/p1.csv', 'poisoned once\n', 'p1-mid');
    await put('t/p1.csv', 'poisoned twice\n', 'p1-new');
    await put('t/p2.csv', 'row 2\n', 'p2-again');
    await s3.send(new DeleteObjectCommand({ Bucket: source, Key: 't/p3.csv' }));
    await put('t/p6.csv', 'row 6\n');
    await ok('backup');
    const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: source, Prefix: 't/p3.csv' }));
    deleteMarkerTime = listed.DeleteMarkers![0]!.LastModified!.getTime();
  });

  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('diff: a deleted key with its deletion time, both ETags, an identical rewrite apart', async () => {
    const r = await ok('diff', '1', '2', '--details', '--json');
    const changes = messagesOf(r, 'change');
    expect(changes.map((c) => `${c.change} ${c.key}`)).toEqual(['changed t/p1.csv', 'rewritten t/p2.csv', 'deleted t/p3.csv', 'added t/p6.csv']);
    const [p1, p2, p3] = changes;
    expect([p1!.before.etag, p1!.after.etag]).toEqual([etags['t/p1.csv'], etags['p1-new']]);
    expect(p2!.before.etag).toBe(p2!.after.etag);
    expect(p2!.before.versionId).not.toBe(p2!.after.versionId);
    // When it was deleted (the delete marker, as the server stamped it), not when it was written.
    expect(p3!.deletedAt).toBe(deleteMarkerTime);
    expect(p3!.deletedAt).toBeGreaterThan(p3!.before.time);
    expect(p3!.deletedAtIso).toBe(new Date(deleteMarkerTime).toISOString());
    expect(summaryOf(r)).toMatchObject({
      from: { runSeq: 1 },
      to: { runSeq: 2 },
      added: { objects: 1 },
      changed: { objects: 1 },
      rewritten: { objects: 1 },
      deleted: { objects: 1 },
      listed: 4,
    });

    const text = (await ok('diff', '1', '2', '--details')).stdout;
    expect(text).toMatch(/^ {2}rewritten +1 object .*same content/m);
    expect(text).toMatch(/^CHANGE +BEFORE +AFTER +TIME +ETAG BEFORE +ETAG AFTER +OBJECT$/m);
    const row = (key: string) => text.split('\n').find((l) => l.endsWith(`/${key}`))!;
    expect(row('t/p1.csv')).toContain(`${etags['t/p1.csv']}  ${etags['p1-new']}`);
    expect(row('t/p3.csv')).toContain(new Date(deleteMarkerTime).toISOString().replace('T', ' '));
  });

  it('runs show counts the keys as diff does and lists the versions it recorded', async () => {
    const diff = summaryOf(await ok('diff', '1', '2', '--json'));
    const shown = summaryOf(await ok('runs', 'show', '2', '--json'));
    const { buckets: _, from: _f, to: _t, message_type: _m, ...counts } = diff;
    expect(shown.changes).toEqual(counts);
    // The listing found five new versions (p1 twice, p2, p6, the delete marker) of four keys.
    expect(shown.versionsRecorded).toBe(5);
    expect(shown.counters.objectsNew).toBe(4);

    const text = (await ok('runs', 'show', '2')).stdout;
    expect(text).toMatch(/^keys {6}1 added, 1 changed, 1 rewritten \(same content\), 1 deleted \(as `lakeguard diff 1 2` counts them\)$/m);
    // Its versions, each with what it did to its key (p1's first overwrite changed it too).
    expect(text).toMatch(/^CHANGE +TIME +SIZE +ETAG +VERSION ID +OBJECT$/m);
    const versions = messagesOf(await ok('runs', 'show', '2', '--versions', '--json'), 'version');
    expect(versions.map((v) => `${v.change} ${v.key}`).sort()).toEqual(['added t/p6.csv', 'changed t/p1.csv', 'changed t/p1.csv', 'deleted t/p3.csv', 'rewritten t/p2.csv']);
    expect(versions.find((v) => v.change === 'deleted')).toMatchObject({ deleteMarker: true, time: deleteMarkerTime });
    const limited = await ok('runs', 'show', '2', '--versions', '--limit', '2');
    expect(limited.stdout.split('\n').filter((l) => l.includes(`s3://${source}/`))).toHaveLength(2);
  });

  it('prints times to the millisecond and gives ISO 8601 next to every epoch number in JSON', async () => {
    const runs = messagesOf(await ok('runs', '--json'), 'run');
    for (const r of runs) {
      expect(r.startedIso).toBe(new Date(r.started).toISOString());
      expect(r.finishedIso).toBe(new Date(r.finished).toISOString());
    }
    const versions = messagesOf(await ok('versions', `s3://${source}/t/p1.csv`, '--json'), 'version');
    expect(versions).toHaveLength(3);
    for (const v of versions) {
      expect(v.timeIso).toMatch(MS_TIME);
      expect(v.timeIso).toBe(new Date(v.time).toISOString());
      expect(v.lastModifiedIso).toBe(new Date(v.lastModified).toISOString());
    }
    // The table shows the same instants, milliseconds included.
    const table = (await ok('versions', `s3://${source}/t/p1.csv`)).stdout;
    for (const v of versions) expect(table).toContain(`${v.timeIso.replace('T', ' ')}  `);

    const matches = messagesOf(await ok('find', 't/**', '--json'), 'match');
    expect(matches).toHaveLength(6);
    for (const m of matches) expect(m.timeIso).toBe(new Date(m.time).toISOString());
    expect((await ok('find', 't/**')).stdout).toContain(new Date(deleteMarkerTime).toISOString().replace('T', ' '));

    const entries = messagesOf(await ok('ls', `s3://${source}/t/`, '--json'), 'entry');
    expect(entries.map((e) => e.name)).toEqual(['t/p1.csv', 't/p2.csv', 't/p4.csv', 't/p5.csv', 't/p6.csv']);
    for (const e of entries) expect(e.timeIso).toBe(new Date(e.time).toISOString());
    const at = new Date(deleteMarkerTime).toISOString();
    expect(summaryOf(await ok('ls', `s3://${source}/t/`, '--at', at, '--json')).at).toEqual({ time: deleteMarkerTime, timeIso: at });
    expect((await ok('runs')).stdout).toMatch(/\d{2}:\d{2}:\d{2}\.\d{3}Z/);
  });

  it('diff <T> live: identical after the run, the changes made since, identical again after a repair', async () => {
    const live = async (...args: string[]) => {
      const r = await ok('diff', '2', 'live', ...args, '--json');
      return { summary: summaryOf(r), changes: messagesOf(r, 'change') };
    };
    const right = await live();
    expect(right.summary).toMatchObject({ to: 'live', identical: true, unchanged: { objects: 5 }, added: { objects: 0 }, changed: { objects: 0 }, deleted: { objects: 0 } });
    expect(right.summary.listedAtIso).toBe(new Date(right.summary.listedAt).toISOString());

    // The lake is damaged after the backup: a key overwritten, one deleted, one added.
    await put('t/p4.csv', 'encrypted garbage\n', 'p4-bad');
    await s3.send(new DeleteObjectCommand({ Bucket: source, Key: 't/p5.csv' }));
    await put('t/p7.csv', 'README_RANSOM\n');
    const damaged = await live('--details');
    expect(damaged.summary).toMatchObject({ identical: false, unchanged: { objects: 3 }, added: { objects: 1 }, changed: { objects: 1 }, deleted: { objects: 1 }, listed: 3 });
    expect(damaged.changes.map((c) => `${c.change} ${c.key}`)).toEqual(['changed t/p4.csv', 'deleted t/p5.csv', 'added t/p7.csv']);
    expect([damaged.changes[0]!.before.etag, damaged.changes[0]!.after.etag]).toEqual([etags['t/p4.csv'], etags['p4-bad']]);
    // A prefix narrows both sides.
    expect((await live('--prefix', 't/p4')).summary).toMatchObject({ identical: false, changed: { objects: 1 }, unchanged: { objects: 0 }, added: { objects: 0 } });
    const text = (await ok('diff', '2', 'live', '--details')).stdout;
    expect(text).toMatch(new RegExp(`^changed .* ${etags['t/p4.csv']}  ${etags['p4-bad']}  s3://${source}/t/p4\\.csv$`, 'm'));
    expect(text).toMatch(/^differs: 3 keys$/m);

    // Repaired by hand (the same bytes back, the note removed): identical again, no backup needed.
    await put('t/p4.csv', 'row 4\n', 'p4-repaired');
    await put('t/p5.csv', 'row 5\n', 'p5-repaired');
    await s3.send(new DeleteObjectCommand({ Bucket: source, Key: 't/p7.csv' }));
    expect((await live()).summary).toMatchObject({ identical: true, unchanged: { objects: 5 } });
    expect((await ok('diff', '2', 'live')).stdout).toMatch(/^identical: the live bucket \S+ holds the same keys with the same ETags and sizes as the state at run /m);

    // Same bytes written again as a multipart upload: another ETag, said so.
    const big = randomBytes(6 * 1024 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: source, Key: 'big/m.bin', Body: big }));
    await ok('backup');
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: source, Key: 'big/m.bin' }));
    const parts = [];
    for (const [n, body] of [big.subarray(0, 5 * 1024 * 1024), big.subarray(5 * 1024 * 1024)].entries()) {
      const part = await s3.send(new UploadPartCommand({ Bucket: source, Key: 'big/m.bin', UploadId, PartNumber: n + 1, Body: body }));
      parts.push({ ETag: part.ETag!, PartNumber: n + 1 });
    }
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: source, Key: 'big/m.bin', UploadId, MultipartUpload: { Parts: parts } }));
    const multipart = summaryOf(await ok('diff', '3', 'live', '--prefix', 'big/', '--json'));
    expect(multipart).toMatchObject({ identical: false, changed: { objects: 1 }, multipartEtags: 1 });
    expect((await ok('diff', '3', 'live', '--prefix', 'big/')).stdout).toContain('1 changed object with a multipart ETag on one side');
    // last-clean, as rollback takes it: without a suspect run, the newest complete run (3).
    const lastClean = await ok('diff', 'last-clean', 'live', '--prefix', 'big/', '--json');
    expect(summaryOf(lastClean)).toMatchObject({ from: { runSeq: 3 }, changed: { objects: 1 } });
    // It says so, as a warning (stderr), as rollback does.
    expect((await ok('diff', 'last-clean', 'live', '--prefix', 'big/')).stderr).toMatch(/diff <from> last-clean: no unacknowledged suspect run of lake: the newest complete run, \S+, is the last clean one/);

    // Only the policy's sources can be listed.
    const other = await cli('diff', '2', 'live', '--bucket', repoBucket);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain(`diff live: "${repoBucket}" is not a source in the policy`);
  });
});
