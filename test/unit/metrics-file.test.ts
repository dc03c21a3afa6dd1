// The Prometheus textfile: rendered by src/report, read back by an independent parser
// (parse-prometheus-text-format from npm), and written by --metrics-file after real commands.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsCollector } from '../../src/report/metrics.js';
import { mergeFamilies, parseOwnPrometheus, renderPrometheus } from '../../src/report/prometheus.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

/** value of the sample of `name` whose labels include `labels` (undefined when none). */
function valueOf(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = parsePrometheusTextFormat(text).find((f) => f.name === name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample === undefined ? undefined : Number(sample.value);
}

describe('Prometheus text format', () => {
  it('escapes label values so a parser reads back exactly what was written', () => {
    const m = new MetricsCollector();
    const scope = 'bucket:lake/we"ird\\prefix\nx/';
    m.drill({ scope, finished: 1_700_000_000_500, ok: false, rtoMs: 2500, objects: 10, bytes: 5000, damaged: 1, rpoMs: 60_000 });
    const text = renderPrometheus(m.toFamilies());
    const parsed = parsePrometheusTextFormat(text);
    const rto = parsed.find((f) => f.name === 'lakeguard_drill_rto_seconds')!;
    expect(rto.type).toBe('GAUGE');
    expect(rto.metrics).toEqual([{ labels: { scope }, value: '2.5' }]);
    expect(valueOf(text, 'lakeguard_drill_bytes_per_second', { scope })).toBe(2000);
    expect(valueOf(text, 'lakeguard_drill_last_ok', { scope })).toBe(0);
    // Not ok: the success time is not moved.
    expect(valueOf(text, 'lakeguard_drill_last_success_timestamp_seconds', { scope })).toBeUndefined();
    expect(parseOwnPrometheus(text)).toEqual(m.toFamilies());
  });

  it('a merge replaces the series of this command and keeps the others', () => {
    const run = (group: string, status: 'complete' | 'failed', finished: number) => {
      const m = new MetricsCollector();
      m.backupRun({ group, status, started: finished - 1000, finished, counters: null });
      return m.toFamilies();
    };
    let file = mergeFamilies([], run('a', 'complete', 10_000));
    file = mergeFamilies(file, run('b', 'complete', 20_000));
    file = mergeFamilies(parseOwnPrometheus(renderPrometheus(file))!, run('a', 'failed', 30_000));
    const text = renderPrometheus(file);
    expect(valueOf(text, 'lakeguard_backup_last_status', { group: 'a', status: 'failed' })).toBe(1);
    expect(valueOf(text, 'lakeguard_backup_last_status', { group: 'a', status: 'complete' })).toBe(0);
    expect(valueOf(text, 'lakeguard_backup_last_status', { group: 'b', status: 'complete' })).toBe(1);
    // A failed run leaves the last success where it was: "no success for a day" alerts keep working.
    expect(valueOf(text, 'lakeguard_backup_last_success_timestamp_seconds', { group: 'a' })).toBe(10);
    expect(valueOf(text, 'lakeguard_backup_last_run_timestamp_seconds', { group: 'a' })).toBe(30);
    expect(parsePrometheusTextFormat(text).find((f) => f.name === 'lakeguard_backup_last_status')!.metrics).toHaveLength(8);
  });
});

describe('--metrics-file', { timeout: 60_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let metrics: string;
  const env = { LAKEGUARD_PASSWORD: 'metrics-pw' };
  const cli = (args: string[]): Promise<CliResult> =>
    runCli(['--policy', join(dir.path, 'lakeguard.yaml'), '--catalog', join(dir.path, 'catalog.db'), '--metrics-file', metrics, ...args], env);

  beforeAll(async () => {
    dir = tempDir('metrics-file');
    metrics = join(dir.path, 'textfile', 'lakeguard.prom');
    mkdirSync(join(dir.path, 'textfile'));
    writeTree(join(dir.path, 'lake'), { 'a/1.json': '{"x":1}', 'a/2.json': '{"x":22}', 'b/3.csv': 'x,y\n' });
    writeFileSync(
      join(dir.path, 'lakeguard.yaml'),
      'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: alpha\n    sources:\n      - path: ./lake\n        prefixes: [a/]\n  - name: beta\n    sources:\n      - path: ./lake\n        prefixes: [b/]\n',
    );
    expect((await cli(['init', '--quiet'])).code).toBe(0);
  });
  afterAll(() => dir.cleanup());

  it('after a backup: last run, status, objects, bytes and requests per group', async () => {
    const first = await cli(['backup', '--quiet']);
    expect(first.code, first.stderr).toBe(0);
    const text = readFileSync(metrics, 'utf8');
    expect(valueOf(text, 'lakeguard_backup_last_objects', { group: 'alpha', kind: 'new' })).toBe(2);
    expect(valueOf(text, 'lakeguard_backup_last_objects', { group: 'beta', kind: 'new' })).toBe(1);
    expect(valueOf(text, 'lakeguard_backup_last_bytes', { group: 'alpha', kind: 'read' })).toBe(15);
    expect(valueOf(text, 'lakeguard_backup_last_status', { group: 'beta', status: 'complete' })).toBe(1);
    expect(valueOf(text, 'lakeguard_backup_last_suspect', { group: 'alpha' })).toBe(0);
    expect(valueOf(text, 'lakeguard_backup_last_requests', { group: 'alpha', method: 'put' })).toBeGreaterThan(0);
    expect(valueOf(text, 'lakeguard_command_last_exit_code', { command: 'backup' })).toBe(0);
    // Atomic: nothing but the file is left in the collector's directory.
    expect(readdirSync(join(dir.path, 'textfile'))).toEqual(['lakeguard.prom']);
  });

  it('a failing command writes its exit code and keeps the groups\' series', async () => {
    const r = await cli(['backup', '--group', 'nope', '--quiet']);
    expect(r.code).toBe(2);
    const text = readFileSync(metrics, 'utf8');
    expect(valueOf(text, 'lakeguard_command_last_exit_code', { command: 'backup' })).toBe(2);
    expect(valueOf(text, 'lakeguard_backup_last_status', { group: 'alpha', status: 'complete' })).toBe(1);
  });

  it('a metrics file that cannot be written is a warning, not a failed command', async () => {
    const r = await runCli(['--policy', join(dir.path, 'lakeguard.yaml'), '--catalog', join(dir.path, 'catalog.db'), '--metrics-file', join(dir.path, 'missing-dir', 'x.prom'), 'runs'], env);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning: cannot write the metrics file .*missing-dir.*ENOENT/m);
  });
});
