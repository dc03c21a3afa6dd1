// Keeps the benchmark suite (bench/, issues 6 and 19) working: a tiny run (--scale 0.002: 200
// small objects and three 1-4 MiB large ones) of every lakeguard scenario plus the quick
// baselines (raw GET loop, bare listing), and the incident scenarios on 200 objects of their
// own (rollback, restore --in-place, copy of everything, anomaly detection on and off),
// against the real S3 server, through the real CLI. Checks that
// the results JSON has every scenario with numbers and every target checked, and that the
// run removed every bucket it created. Performance itself is not asserted here: a 200-object
// run on a shared CI machine says nothing about the targets.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures.js';
import { testEnv, testS3Client } from '../helpers/s3-env.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Its own seed, so a developer's `npm run bench -- --scale 0.002` data set is never touched.
const SEED = '7';
const SOURCE_BUCKET = 'lgbench-src-s7-x0-002';

const SCENARIOS = [
  'listing',
  'raw-get-small',
  'raw-get-large',
  'seed-small',
  'seed-large',
  'incremental-nochange',
  'restore-full',
  'restore-single',
  'restore-prefix',
  'listing-after-change',
  'incremental-changed',
  'pit-runs',
  'pit-restore-key',
  'anomaly-seed-on',
  'anomaly-seed-off',
  'anomaly-incremental-on',
  'anomaly-incremental-off',
  'rollback',
  'restore-in-place',
  'copy-all-get-put',
  'copy-all-copy',
];
const TARGETS = [
  'seed-vs-raw-get',
  'seed-vs-restic',
  'puts-per-1000',
  'stored-ratio',
  'incremental-nochange',
  'incremental-changed',
  'single-restore',
  'peak-rss',
  'peak-rss-flat',
  'catalog-bytes-per-version',
  'rollback-client-bytes',
  'rollback-vs-restore',
  'anomaly-cpu',
  'anomaly-requests',
  'false-positives',
];

function run(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bench/run.mjs'), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...testEnv() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

async function bucketExists(name: string): Promise<boolean> {
  try {
    await testS3Client().send(new HeadBucketCommand({ Bucket: name }));
    return true;
  } catch {
    return false;
  }
}

/** The rows of issue 22's table, in its order (bench/lib/report.mjs, checkIssue22Targets). */
const ISSUE_22_TARGETS = [
  'cpu-per-object',
  'seed-vs-raw-get',
  'seed-dir-vs-restic',
  'threads',
  'restore-vs-copy-loop',
  'restore-vs-rclone',
  'restore-dir-vs-restic',
  'incremental-changed',
  'incremental-nochange',
  'versioned-nochange',
  'versioned-flat',
  'restore-single',
  'peak-rss',
  'peak-rss-scale',
];

describe('benchmark suite smoke run', () => {
  const dir = tempDir('bench-smoke');
  afterAll(() => dir.cleanup());

  it('runs every lakeguard scenario and the quick baselines, reports numbers, and cleans up', async () => {
    const out = join(dir.path, 'results.json');
    // One run per timed step (the default 3 give a median; a smoke run checks no number's size).
    const res = await run(['--scale', '0.002', '--seed', SEED, '--quick', '--timing-repeats', '1', '--drop-source', '--out', out], 540_000);
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
    expect(existsSync(out)).toBe(true);
    const results = JSON.parse(readFileSync(out, 'utf8'));

    const rows = new Map<string, Record<string, any>>(results.rows.map((r: Record<string, any>) => [r.name, r]));
    for (const name of SCENARIOS) {
      const r = rows.get(name);
      expect(r, `scenario ${name} missing`).toBeDefined();
      expect(r!.ok, `${name}: ${r!.error}`).toBe(true);
      for (const field of ['wallMs', 'objects', 'objectsPerS', 'peakRssMB']) {
        expect(typeof r![field], `${name}.${field}`).toBe('number');
        expect(Number.isFinite(r![field]), `${name}.${field}`).toBe(true);
      }
      expect(r!.wallMs).toBeGreaterThan(0);
      for (const k of ['list', 'get', 'head', 'put', 'post', 'delete']) expect(typeof r!.requests[k], `${name}.requests.${k}`).toBe('number');
    }
    // The quick mode skips the slow baselines, and says so.
    expect(rows.has('rclone-copy')).toBe(false);
    expect(rows.has('restic-small')).toBe(false);

    // Numbers that are exact whatever the machine: what each scenario read or restored.
    const small = results.meta.dataset.smallObjects;
    const large = results.meta.dataset.largeObjects;
    expect(small).toBe(200);
    expect(rows.get('raw-get-small')!.requests.get).toBe(small);
    expect(rows.get('seed-small')!.objects).toBe(small);
    expect(rows.get('seed-large')!.objects).toBe(large);
    expect(rows.get('restore-full')!.objects).toBe(small + large);
    expect(rows.get('restore-single')!.objects).toBe(1);
    expect(rows.get('listing')!.objects).toBe(small + large);
    expect(rows.get('seed-small')!.requests.put).toBeGreaterThan(0);
    expect(rows.get('seed-small')!.storedBytes).toBeGreaterThan(0);
    expect(results.meta.catalog.versions).toBeGreaterThanOrEqual(small + large);

    // The incident scenarios: every way back put the same overwritten keys back; rollback with
    // server-side copies only, restore --in-place with one PUT per changed key, the GET+PUT
    // loop with every key through the client.
    const incident = results.meta.incident;
    expect(incident.objects).toBe(small);
    expect(incident.changed).toBeGreaterThan(0.2 * small);
    expect(rows.get('rollback')!.requests.copy).toBe(incident.changed);
    expect(rows.get('rollback')!.extra.clientBytes).toMatchObject({ lake: 0, packs: 0 });
    expect(rows.get('restore-in-place')!.objects).toBe(incident.changed);
    expect(rows.get('restore-in-place')!.requests.put).toBeGreaterThanOrEqual(incident.changed);
    expect(rows.get('copy-all-get-put')!.requests).toMatchObject({ get: small, put: small });
    expect(rows.get('copy-all-copy')!.requests).toMatchObject({ copy: small, put: 0 });
    expect(rows.get('anomaly-seed-on')!.objects).toBe(small);

    // Every target is checked, with a status and the measured numbers.
    const targets = new Map<string, Record<string, any>>(results.targets.map((t: Record<string, any>) => [t.id, t]));
    for (const id of TARGETS) {
      expect(targets.get(id), `target ${id}`).toBeDefined();
      expect(['PASS', 'FAIL', 'NOT MEASURED']).toContain(targets.get(id)!.status);
      expect(targets.get(id)!.measured).toEqual(expect.any(String));
    }
    expect(targets.get('seed-vs-restic')!.status).toBe('NOT MEASURED');
    // Behaviour, not speed: no object byte through the client, no request added by anomaly
    // detection, no ordinary run flagged.
    for (const id of ['rollback-client-bytes', 'anomaly-requests', 'false-positives']) expect(targets.get(id)!.status, `${id}: ${targets.get(id)!.measured}`).toBe('PASS');
    expect(res.stdout).toMatch(/PASS|FAIL/);
    // Issue 22's table: one line per row, printed and in the results; quick mode runs neither
    // restic nor the versioned bucket, so those rows say they were not measured.
    const issue22 = new Map<string, Record<string, any>>(results.issue22Targets.map((t: Record<string, any>) => [t.id, t]));
    expect([...issue22.keys()]).toEqual(ISSUE_22_TARGETS);
    for (const id of ['cpu-per-object', 'seed-vs-raw-get', 'restore-vs-copy-loop', 'incremental-changed', 'incremental-nochange', 'restore-single', 'peak-rss']) {
      expect(['PASS', 'FAIL'], `${id}: ${issue22.get(id)!.measured}`).toContain(issue22.get(id)!.status);
    }
    for (const id of ['seed-dir-vs-restic', 'versioned-nochange', 'peak-rss-scale']) expect(issue22.get(id)!.status).toBe('NOT MEASURED');
    expect(res.stdout).toContain('targets (issue 22):');

    // Nothing left behind: the run's own buckets and the (dropped) source.
    for (const bucket of [...Object.values(results.meta.buckets as Record<string, string>), SOURCE_BUCKET, incident.bucket]) {
      expect(await bucketExists(bucket), `bucket ${bucket} left behind`).toBe(false);
    }
  }, 570_000);
});
