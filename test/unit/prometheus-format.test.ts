// The Prometheus textfile: rendered by src/report and read back by an independent parser
// (parse-prometheus-text-format from npm). --metrics-file after real commands: unit/notify
// (backup, an unwritable file) and integration/drill (drill, a failed drill's exit code).
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { MetricsCollector } from '../../src/report/metrics.js';
import { mergeFamilies, parseOwnPrometheus, renderPrometheus } from '../../src/report/prometheus.js';
import { valueOf } from '../helpers/prometheus.js';

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
