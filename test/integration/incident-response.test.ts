// Issue 19's "Done when", end to end on the real S3 server, through the CLI as a responder uses
// it: a Hive-partitioned Parquet lake (test/helpers/parquet-lake.ts, written by hyparquet-writer)
// in a versioned bucket; a seed backup and an ordinary day (new partition, a few percent of
// files rewritten, a compaction) back up clean (exit 0); ransomware overwrites a third of the
// Parquet files with random bytes of the same size, deletes a tenth and drops ransom notes; the
// backup that records it exits 4 and names what it flagged; retention keeps the last clean run;
// `rollback --at last-clean` plans exactly the incident's changes, then makes the bucket
// byte-identical to the clean state (bytes, content type, metadata) with server-side copies and
// undeletes, hyparquet reads the same rows as before, `diff <clean run> live` finds nothing,
// and a second rollback has nothing left to do.
import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messagesOf, runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import {
  createLake,
  differences,
  incident,
  modelSnapshot,
  ordinaryDay,
  RANSOM_NOTE_NAME,
  readLakeRows,
  snapshotBucket,
  type IncidentReport,
  type S3Lake,
} from '../helpers/parquet-lake.js';
import { createTestBucket, emptyAndDeleteBucket, S3_TEST, testEnv, testS3Client } from '../helpers/s3-env.js';

const s3 = testS3Client();

/** The keys of the `flagged_object` messages of `runs show <id> --anomalies --json`. */
function flaggedKeys(r: CliResult): Set<string> {
  return new Set(messagesOf(r, 'flagged_object').map((m) => m.key as string));
}

/** Keys per action (copy, undelete, upload, delete, unchanged, keep) of a rollback summary. */
function planned(summary: Record<string, any>, action: string): number {
  return summary.actions[action].keys;
}

/** Versions and delete markers a bucket keeps: any write (even of the same bytes) adds one. */
async function versionCount(bucket: string): Promise<{ versions: number; deleteMarkers: number }> {
  const n = { versions: 0, deleteMarkers: 0 };
  for (let keyMarker: string | undefined, versionMarker: string | undefined; ; ) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    n.versions += page.Versions?.length ?? 0;
    n.deleteMarkers += page.DeleteMarkers?.length ?? 0;
    if (!page.IsTruncated) return n;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
  }
}

describe('incident response on a real Parquet lake', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let policyFile: string;
  let lake: S3Lake;
  const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], { ...testEnv(), LAKEGUARD_PASSWORD: 'lake', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  beforeAll(async () => {
    dir = tempDir('it-incident');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-lake', { versioning: true }), createTestBucket('lg-lake-repo')]);
    // The policy an operator writes for this lake: its tables as prefixes (so the partitions
    // judged are the date partitions), default anomaly thresholds, and a retention that alone
    // would keep only the newest run.
    policyFile = join(dir.path, 'policy.yaml');
    writeFileSync(
      policyFile,
      [
        'version: 1',
        'repository:',
        `  url: s3://${repoBucket}/lakeguard`,
        `  endpoint: ${S3_TEST.endpoint}`,
        's3:',
        `  endpoint: ${S3_TEST.endpoint}`,
        'groups:',
        '  - name: lake',
        '    retention: { keep_last: 1 }',
        '    sources:',
        `      - bucket: ${source}`,
        '        prefixes: [sales/, events/, reference/]',
        '',
      ].join('\n'),
    );
    // 159 Parquet files (185 when the incident strikes), 6 MB: big enough for a third and a
    // tenth to mean something, small enough for a loaded 2-core machine.
    lake = await createLake(s3, source, { seed: 19, days: 6 });
    expect((await cli('init')).code).toBe(0);
  });

  afterAll(async () => {
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('flags the incident, keeps the clean run, and rolls the bucket back byte for byte', async () => {
    const parquetFiles = lake.model.parquetKeys().length;
    expect(parquetFiles).toBeGreaterThanOrEqual(150);

    // --- a seed and an ordinary day: complete, not suspect -----------------------------------
    const seed = await cli('backup', '--json');
    expect(seed.code, seed.stderr).toBe(0);
    expect(summaryOf(seed).counters.objectsNew).toBe(lake.model.files.size);
    expect(messagesOf(seed, 'anomaly')).toEqual([]);

    const day = await ordinaryDay(lake);
    expect(day.rewritten.length).toBeGreaterThan(0);
    expect(day.compaction.deleted.length).toBeGreaterThan(5);
    const clean = await cli('backup', '--json');
    expect(clean.code, `${clean.stdout}\n${clean.stderr}`).toBe(0);
    expect(messagesOf(clean, 'anomaly')).toEqual([]);
    const cleanSummary = summaryOf(clean);
    // (A versioned source's new versions of existing keys may count as new or changed.)
    const written = (c: Record<string, number>) => c.objectsNew! + c.objectsChanged!;
    expect(written(cleanSummary.counters)).toBe(day.added.length + 1 + day.rewritten.length);
    expect(cleanSummary.counters.objectsDeleted).toBe(day.compaction.deleted.length);
    const cleanRun = cleanSummary.runId as string;

    // The clean state, as a client sees it, and as a query engine reads it.
    const cleanState = await snapshotBucket(s3, source);
    expect(differences(modelSnapshot(lake.model), cleanState)).toEqual([]);
    const cleanRows = await readLakeRows(s3, source);
    expect(cleanRows.files).toBe(lake.model.parquetKeys().length);
    expect(cleanRows.rows).toBe(lake.model.rowsUnder());

    // --- the incident: the backup that sees it exits 4 and names the run ----------------------
    const parquetBefore = lake.model.parquetKeys().length;
    const inc: IncidentReport = await incident(lake);
    expect(inc.overwritten.length).toBe(Math.round(parquetBefore / 3));
    expect(inc.deleted.length).toBe(Math.round(parquetBefore / 10));
    const poisoned = await cli('backup', '--json');
    expect(poisoned.code, `${poisoned.stdout}\n${poisoned.stderr}`).toBe(4);
    const suspectRun = summaryOf(poisoned).runId as string;
    expect(suspectRun).toEqual(expect.any(String));
    expect(messagesOf(poisoned, 'anomaly').length).toBeGreaterThan(0);
    expect(written(summaryOf(poisoned).counters)).toBe(inc.overwritten.length + inc.notes.length);
    expect(summaryOf(poisoned).counters.objectsDeleted).toBe(inc.deleted.length);
    const poisonedText = await cli('runs');
    expect(poisonedText.code).toBe(0);
    expect(poisonedText.stdout.split('\n').find((l) => l.includes(suspectRun))).toMatch(/suspect/i);
    expect(poisonedText.stdout.split('\n').find((l) => l.includes(cleanRun))).not.toMatch(/suspect/i);

    // `runs` marks it; the clean runs are not marked.
    const runs = messagesOf(await cli('runs', '--json'), 'run');
    expect(runs.map((r) => r.id)).toContain(suspectRun);
    expect(runs.filter((r) => r.suspect === true).map((r) => r.id)).toEqual([suspectRun]);

    // `runs show --anomalies` names >= 90 % of the overwritten files, and every ransom note.
    const shown = await cli('runs', 'show', suspectRun, '--anomalies', '--json');
    expect(shown.code, shown.stderr).toBe(0);
    const flagged = flaggedKeys(shown);
    const named = inc.overwritten.filter((k) => flagged.has(k));
    expect(named.length, `named ${named.length} of ${inc.overwritten.length} overwritten files`).toBeGreaterThanOrEqual(Math.ceil(0.9 * inc.overwritten.length));
    for (const note of inc.notes) expect(flagged.has(note), note).toBe(true);
    expect(inc.notes.every((k) => k.endsWith(`/${RANSOM_NOTE_NAME}`))).toBe(true);
    // What the ordinary day rewrote is not in the list.
    expect(day.rewritten.filter((k) => flagged.has(k) && !inc.overwritten.includes(k) && !inc.deleted.includes(k))).toEqual([]);

    // --- retention: keep_last 1 would keep only the suspect run; the clean one stays -----------
    const dryForget = await cli('forget', '--dry-run', '--json');
    expect(dryForget.code, dryForget.stderr).toBe(0);
    const verdicts = new Map((summaryOf(dryForget).runs as { id: string; keep: boolean; reasons: string[] }[]).map((v) => [v.id, v]));
    expect(verdicts.get(cleanRun)).toMatchObject({ keep: true, reasons: expect.arrayContaining(['pre-anomaly']) });
    expect(verdicts.get(suspectRun)?.keep).toBe(true);
    const forget = await cli('forget', '--json');
    expect(forget.code, forget.stderr).toBe(0);
    expect(summaryOf(forget).runsRemoved).toBe(1); // the seed run
    expect(messagesOf(await cli('runs', '--json'), 'run').map((r) => r.id)).toEqual([cleanRun, suspectRun]);

    // --- rollback --dry-run: the plan is the incident, nothing is written ----------------------
    const versionsBefore = await versionCount(source);
    const dry = await cli('rollback', '--bucket', source, '--at', 'last-clean', '--dry-run', '--json');
    expect(dry.code, `${dry.stdout}\n${dry.stderr}`).toBe(0);
    const plan = summaryOf(dry);
    expect(planned(plan, 'copy')).toBe(inc.overwritten.length);
    expect(planned(plan, 'undelete')).toBe(inc.deleted.length);
    expect(planned(plan, 'delete')).toBe(inc.notes.length);
    expect(planned(plan, 'upload')).toBe(0);
    expect(planned(plan, 'keep')).toBe(0);
    expect(planned(plan, 'unchanged')).toBe(cleanState.size - inc.overwritten.length - inc.deleted.length);
    // With --json, each key with its action.
    const planKeys = (action: string) => messagesOf(dry, 'rollback_action').filter((m) => m.action === action).map((m) => m.key as string).sort();
    expect(planKeys('copy')).toEqual(inc.overwritten);
    expect(planKeys('undelete')).toEqual(inc.deleted);
    expect(planKeys('delete')).toEqual([...inc.notes].sort());
    expect(await versionCount(source)).toEqual(versionsBefore);
    // Going back to the suspect run's own state would write its damage again: said, as restore says it.
    const toSuspect = await cli('rollback', '--bucket', source, '--at', suspectRun, '--dry-run', '--json');
    expect(toSuspect.code, toSuspect.stderr).toBe(0);
    expect(toSuspect.stderr).toMatch(/"message_type":"warning".*this state holds what run \S+ recorded, and it is SUSPECT/);
    expect(dry.stderr).not.toMatch(/is SUSPECT/);

    // --- rollback: byte-identical to the clean state, the same rows ----------------------------
    const rollback = await cli('rollback', '--bucket', source, '--at', 'last-clean', '--json');
    expect(rollback.code, `${rollback.stdout}\n${rollback.stderr}`).toBe(0);
    // Server-side: copies and undeletes, nothing uploaded from the repository.
    const done = summaryOf(rollback);
    expect([planned(done, 'copy'), planned(done, 'undelete'), planned(done, 'delete'), planned(done, 'upload')]).toEqual([inc.overwritten.length, inc.deleted.length, inc.notes.length, 0]);
    expect(differences(cleanState, await snapshotBucket(s3, source))).toEqual([]);
    const rowsAfter = await readLakeRows(s3, source);
    expect(rowsAfter.rows).toBe(cleanRows.rows);
    expect(rowsAfter.perFile).toEqual(cleanRows.perFile);

    // The backup agrees: the clean run's state is the live bucket now.
    const check = await cli('diff', cleanRun, 'live', '--bucket', source, '--json');
    expect(check.code, `${check.stdout}\n${check.stderr}`).toBe(0);
    expect(summaryOf(check)).toMatchObject({ identical: true, added: { objects: 0 }, changed: { objects: 0 }, deleted: { objects: 0 }, unchanged: { objects: cleanState.size } });
    // The responder's own words work too: `last-clean` is the clean run while the incident is not acknowledged.
    const checkLastClean = await cli('diff', 'last-clean', 'live', '--bucket', source, '--json');
    expect(checkLastClean.code, checkLastClean.stderr).toBe(0);
    expect(summaryOf(checkLastClean)).toMatchObject({ from: summaryOf(check).from, identical: true });

    // Converged: a second rollback has nothing to do, and writes nothing.
    const versionsAfter = await versionCount(source);
    const again = await cli('rollback', '--bucket', source, '--at', 'last-clean', '--json');
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    const second = summaryOf(again);
    for (const action of ['copy', 'undelete', 'delete', 'upload']) expect(planned(second, action), action).toBe(0);
    expect(planned(second, 'unchanged')).toBe(cleanState.size);
    expect(await versionCount(source)).toEqual(versionsAfter);
  }, 600_000);
});
