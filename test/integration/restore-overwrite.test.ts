// An in-place restore on the real server writes only what changed: counted in PUTs and in the
// versions the bucket keeps (versioning on), with a multipart object among the unchanged ones.
import { DeleteObjectCommand, ListObjectVersionsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf } from '../helpers/cli.js';
import { prng, tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();

describe('in-place restore of a versioned bucket', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policyFile: string;
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  /** key → number of versions and delete markers the bucket keeps. */
  const versionCounts = async (): Promise<Map<string, number>> => {
    const counts = new Map<string, number>();
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: source }));
    expect(page.IsTruncated).toBeFalsy();
    for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) counts.set(v.Key!, (counts.get(v.Key!) ?? 0) + 1);
    return counts;
  };

  beforeAll(async () => {
    dir = tempDir('it-restore-overwrite');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-rst-ow', { versioning: true }), createTestBucket('lg-rst-ow-repo')]);
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source] });
    expect((await cli('init')).code).toBe(0);
  });

  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('writes only the changed and deleted objects back; unchanged ones (multipart too) get no new version', async () => {
    for (let i = 0; i < 20; i++) await s3.send(new PutObjectCommand({ Bucket: source, Key: `t/p${String(i).padStart(2, '0')}.json`, Body: `{"row":${i}}\n` }));
    // A multipart object: its ETag is no MD5 of the content, equal ETags still mean equal parts.
    await new Upload({ client: s3, params: { Bucket: source, Key: 'big/multi.bin', Body: prng(3)(6 * 1024 * 1024) }, partSize: 5 * 1024 * 1024 }).done();
    const b = await cli('backup', '--json');
    expect(b.code, b.stderr).toBe(0);
    expect(summaryOf(b).counters.objectsNew).toBe(21);

    await s3.send(new PutObjectCommand({ Bucket: source, Key: 't/p00.json', Body: '{"row":9}\n' })); // same size, other bytes
    await s3.send(new PutObjectCommand({ Bucket: source, Key: 't/p01.json', Body: 'shorter\n' }));
    await s3.send(new DeleteObjectCommand({ Bucket: source, Key: 't/p02.json' }));
    const before = await versionCounts();

    const dry = await cli('restore', '--bucket', source, '--in-place', '--dry-run', '--json');
    expect(dry.code, dry.stderr).toBe(0);
    const planned = dry.messages.filter((m) => m.message_type === 'restore_action' && m.action === 'write').map((m) => m.key);
    expect(planned.sort()).toEqual(['t/p00.json', 't/p01.json', 't/p02.json']);
    expect(summaryOf(dry)).toMatchObject({ restored: 3, skippedIdentical: 18, requests: { put: 0 } });
    expect(await versionCounts()).toEqual(before);

    const r = await cli('restore', '--bucket', source, '--in-place', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(summaryOf(r)).toMatchObject({ objects: 21, restored: 3, skippedIdentical: 18, skippedExisting: 0, requests: { put: 3 } });
    const after = await versionCounts();
    for (const [key, n] of after) expect(n, key).toBe((before.get(key) ?? 0) + (['t/p00.json', 't/p01.json', 't/p02.json'].includes(key) ? 1 : 0));

    // Restored again: nothing left to write.
    const again = await cli('restore', '--bucket', source, '--in-place', '--json');
    expect(summaryOf(again)).toMatchObject({ restored: 0, skippedIdentical: 21, requests: { put: 0 } });

    // Into a directory, objects of an S3 source (no recorded mode) are never wider than 0644.
    const out = join(dir.path, 'out');
    expect((await cli('restore', '--bucket', source, '--prefix', 't/', '--to-dir', out)).code).toBe(0);
    expect(statSync(join(out, 't/p03.json')).mode & 0o7777 & ~0o644).toBe(0);
  });

  it('a --to bucket that does not exist: one error line naming it, exit 2, nothing read or written', async () => {
    const missing = `${source}-missing`;
    for (const overwrite of ['if-changed', 'always']) {
      const r = await cli('restore', '--bucket', source, '--to', `s3://${missing}/p/`, '--overwrite', overwrite);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toBe(`lakeguard: restore target s3://${missing}/p/: bucket ${missing} does not exist; nothing was written\n  hint: create bucket ${missing} first, or check the target's endpoint (--to-endpoint), region and credentials\n`);
    }
  });
});
