// A suspect run on the real S3 server, as an operator meets it: `backup` exits 4 and says why
// (text and --json), `runs` and `calendar` mark it, `runs show --anomalies` lists the flagged
// objects (text, --json, --csv), a second host's catalog shows the same, `runs ack` on either
// host unmarks it everywhere, and refuses twice or a clean run (exit 2); forget on the other host
// keeps the clean run before it; a partial and suspect run exits 3 and is still named suspect.
import { PutBucketPolicyCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messagesOf, runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';

const s3 = testS3Client();

describe('a suspect run (anomalies found)', { timeout: 240_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policyFile: string;
  const env = (host: string) => ({ ...testEnv(), LAKEGUARD_PASSWORD: 'anomaly-it', LAKEGUARD_CACHE_DIR: join(dir.path, host) });
  const onA = (...args: string[]) => runCli(['--policy', policyFile, ...args], env('host-a'));
  const onB = (...args: string[]) => runCli(['--policy', policyFile, ...args], env('host-b'));
  const exits = (code: number, r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(code);
    return r;
  };
  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));
  const runOf = (r: CliResult, id: string) => messagesOf(r, 'run').find((m) => m.id === id)!;

  beforeAll(async () => {
    dir = tempDir('it-anomalies');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-anom'), createTestBucket('lg-anom-repo')]);
    policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source], extra: ['    retention: { keep_last: 1 }'] });
    exits(0, await onA('init'));
  });
  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('exit 4 with anomaly messages, marks on both hosts, the flagged objects, and an acknowledgement that travels', async () => {
    for (let i = 0; i < 5; i++) await put(`data/part-${i}.json`, JSON.stringify({ i, rows: [1, 2, 3] }));
    const clean = summaryOf(exits(0, await onA('backup', '--json')));
    expect(clean).toMatchObject({ status: 'complete', suspect: false });

    // A ransom note: one is enough (docs/anomalies.md), whatever the history says.
    await put('data/HOW_TO_DECRYPT_FILES.txt', 'pay us');
    await put('data/part-0.json', JSON.stringify({ i: 0, rows: [4] }));
    const backup = exits(4, await onA('backup', '--json'));
    const summary = summaryOf(backup);
    const runId = summary.runId as string;
    expect(summary).toMatchObject({ status: 'complete', suspect: true, flaggedObjects: 1, findings: 1 });
    expect(messagesOf(backup, 'anomaly')).toEqual([
      { message_type: 'anomaly', runId, group: 'lake', bucket: source, partition: 'data/', rules: ['ransom-notes'], reasons: [expect.stringMatching(/ransom/)] },
    ]);

    // `runs` marks it (text and --json), on this host and on another one, whose catalog learns it by sync.
    const listed = exits(0, await onA('runs'));
    expect(listed.stdout.split('\n').find((l) => l.includes(runId))).toMatch(/complete ! SUSPECT/);
    expect(listed.stdout.split('\n').find((l) => l.includes(clean.runId as string))).not.toMatch(/SUSPECT/);
    expect(runOf(exits(0, await onB('runs', '--json')), runId)).toMatchObject({ suspect: true, acknowledged: false });
    expect(runOf(exits(0, await onB('runs', '--json')), clean.runId as string)).toMatchObject({ suspect: false });
    const month = new Date().toISOString().slice(0, 7);
    expect(summaryOf(exits(0, await onB('calendar', '--month', month, '--json')))).toMatchObject({ runs: 2, suspect: 1 });
    const calendar = exits(0, await onB('calendar', '--month', month));
    expect(calendar.stdout).toMatch(/▲ suspect/);
    expect(calendar.stdout).toContain(`runs show <id> --anomalies`);

    // The flagged objects: the note, with its signal; the partition finding first.
    const shown = exits(0, await onB('runs', 'show', runId, '--anomalies', '--json'));
    expect(messagesOf(shown, 'anomaly').map((m) => m.rules)).toEqual([['ransom-notes']]);
    expect(messagesOf(shown, 'flagged_object')).toEqual([
      expect.objectContaining({ bucket: source, key: 'data/HOW_TO_DECRYPT_FILES.txt', change: 'added', signals: ['ransom-note'], partition: 'data/', rules: ['ransom-notes'] }),
    ]);
    expect(summaryOf(shown)).toMatchObject({ runId, suspect: true, acknowledged: false, flaggedObjects: 1, listed: 1 });
    const csv = exits(0, await onA('runs', 'show', runId, '--anomalies', '--csv'));
    expect(csv.stdout.trim().split('\n')).toEqual([
      'bucket,key,version_id,change,size,valid_from,signals,partition,rules',
      expect.stringMatching(new RegExp(`^${source},data/HOW_TO_DECRYPT_FILES.txt,.*,added,6,.*,ransom-note,data/,ransom-notes$`)),
    ]);
    const text = exits(0, await onA('runs', 'show', runId));
    expect(text.stdout).toMatch(/anomalies +SUSPECT/);
    expect(text.stdout).toContain(`lakeguard runs ack ${runId}`);

    // forget with keep_last 1, on the other host: the clean run stays (pre-anomaly), so does the suspect one.
    await put('data/part-2.json', JSON.stringify({ i: 2, rows: [6] }));
    const latest = summaryOf(exits(0, await onA('backup', '--json'))).runId as string;
    const plan = exits(0, await onB('forget', '--dry-run'));
    expect(plan.stdout.split('\n').find((l) => l.includes(clean.runId as string))).toMatch(/keep +pre-anomaly/);
    expect(plan.stdout.split('\n').find((l) => l.includes(runId))).toMatch(/keep +suspect/);
    exits(0, await onB('forget'));
    expect(messagesOf(exits(0, await onA('runs', '--json')), 'run').map((m) => m.id)).toEqual([clean.runId, runId, latest]);

    // Acknowledged on host B: refused twice, and for a run that is not suspect (exit 2, one line).
    const acked = exits(0, await onB('runs', 'ack', runId.slice(0, 20), '--note', 'drill, expected'));
    expect(acked.stdout).toContain(`acknowledged run ${runId}`);
    const twice = exits(2, await onB('runs', 'ack', runId));
    expect(twice.stderr).toMatch(/already acknowledged .* at \d{4}-/);
    const notSuspect = exits(2, await onA('runs', 'ack', clean.runId as string));
    expect(notSuspect.stderr).toMatch(/is not suspect/);
    // Host A learns the acknowledgement from the repository: no longer marked; `runs show` says who and when.
    expect(runOf(exits(0, await onA('runs', '--json')), runId)).toMatchObject({ suspect: false, acknowledged: true });
    expect(exits(0, await onA('runs')).stdout).not.toMatch(/SUSPECT/);
    expect(exits(0, await onA('runs', 'show', runId)).stdout).toMatch(/ack +acknowledged by .* on .* at \d{4}-.*: drill, expected/);
    // As `runs ack --json` says it: a boolean.
    expect(summaryOf(exits(0, await onA('runs', 'show', runId, '--anomalies', '--json'))).ack).toMatchObject({ note: 'drill, expected', incident: false });

    // Text output of a suspect backup: why, and the next command. A clean run after exits 0.
    await put('data/README_DECRYPT_INSTRUCTIONS.txt', 'pay us again');
    const second = exits(4, await onA('backup'));
    expect(second.stdout).toMatch(/: complete, SUSPECT/);
    expect(second.stdout).toMatch(/SUSPECT +anomalies in 1 partition, 1 object flagged/);
    expect(second.stdout).toMatch(new RegExp(`next +lakeguard runs show \\S+ --anomalies`));
    expect(second.stdout).toContain(`(to repair: \`lakeguard rollback --bucket ${source} --prefix data/ --at last-clean --dry-run\`; if expected:`);
    await put('data/part-1.json', JSON.stringify({ i: 1, rows: [5] }));
    expect(summaryOf(exits(0, await onA('backup', '--json')))).toMatchObject({ suspect: false });
  });

  it('a run both partial and suspect exits 3 and is still named suspect, with its anomaly messages', async () => {
    const denied = await createTestBucket('lg-anom-deny');
    try {
      for (let i = 0; i < 4; i++) await s3.send(new PutObjectCommand({ Bucket: denied, Key: `open/${i}.json`, Body: `{"i":${i}}` }));
      const policy = writeS3Policy(join(dir.path, 'denied.yaml'), { repo: `${repoBucket}/denied`, buckets: [denied] });
      const run = (...args: string[]) => runCli(['--policy', policy, ...args], env('host-c'));
      exits(0, await run('init'));
      // The first run of a bucket is its baseline: its signals are recorded (a note that was
      // already there), but no rule judges it. The incident comes after it.
      await s3.send(new PutObjectCommand({ Bucket: denied, Key: 'open/HOW_TO_DECRYPT.txt', Body: 'an old note' }));
      expect(summaryOf(exits(0, await run('backup', '--json')))).toMatchObject({ status: 'complete', suspect: false, flaggedObjects: 1 });
      await s3.send(new PutObjectCommand({ Bucket: denied, Key: 'open/_readme.txt', Body: 'your files are encrypted' }));
      await s3.send(new PutObjectCommand({ Bucket: denied, Key: 'secret/0.json', Body: '{}' }));
      await s3.send(
        new PutBucketPolicyCommand({
          Bucket: denied,
          Policy: JSON.stringify({
            Version: '2012-10-17',
            Statement: [{ Effect: 'Deny', Principal: { AWS: ['arn:aws:iam:::user/lakeguard-test'] }, Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${denied}/secret/*`] }],
          }),
        }),
      );
      const backup = exits(3, await run('backup', '--json'));
      expect(summaryOf(backup)).toMatchObject({ status: 'partial', suspect: true, counters: { objectsFailed: 1 } });
      expect(messagesOf(backup, 'anomaly')).toEqual([expect.objectContaining({ bucket: denied, partition: 'open/', rules: ['ransom-notes'] })]);
    } finally {
      await emptyAndDeleteBucket(denied);
    }
  });
});
