// Issue 22's target lines of the benchmark report (bench/lib/report.mjs): each row of the issue's
// table is checked as written, from the rows and meta a results file holds.
import { describe, expect, it } from 'vitest';

interface Target {
  id: string;
  metric: string;
  target: string;
  status: string;
  measured: string;
}
// A plain .mjs module of the bench (no declarations): typed here by what the test uses.
const { checkIssue22Targets } = (await import(new URL('../../bench/lib/report.mjs', import.meta.url).href)) as {
  checkIssue22Targets(rows: object[], meta: object, options?: { rssCompare?: { scale: number; rows: object[] } }): Target[];
};

const row = (name: string, fields: Record<string, unknown>, tool = 'lakeguard') => ({ name, tool, ok: true, wallMs: 1000, objects: 1000, objectsPerS: 1000, cpuS: 1, peakRssMB: 100, requests: {}, ...fields });
const statusOf = (targets: Target[]) => Object.fromEntries(targets.map((t) => [t.id, t.status]));

describe('issue 22 targets in the bench report', () => {
  it('marks each row PASS or FAIL at its threshold and NOT MEASURED without its scenarios', () => {
    const rows = [
      row('seed-small', { objects: 10_000, cpuS: 3.5, objectsPerS: 800 }),
      row('raw-get-small', { objects: 10_000, cpuS: 1, objectsPerS: 1000 }, 'lean-get'),
      row('restore-full', { wallMs: 100_000 }),
      row('copy-loop', { wallMs: 79_999 }, 'lean-get-put'),
      row('listing', { wallMs: 1000 }, 'lean-list'),
      row('incremental-nochange', { wallMs: 1100, extra: { pairedRatios: [1.05, 1.2, 1.1] } }),
      row('incremental-changed', { wallMs: 1501 }),
      row('restore-single', { wallMs: 300 }),
      row('seed-large', { peakRssMB: 250 }),
    ];
    const targets = checkIssue22Targets(rows, { mode: 'quick', scale: 1 });
    expect(statusOf(targets)).toEqual({
      'cpu-per-object': 'PASS', // 0.35 ms
      'seed-vs-raw-get': 'PASS', // 0.8x
      'seed-dir-vs-restic': 'NOT MEASURED',
      threads: 'NOT MEASURED',
      'restore-vs-copy-loop': 'FAIL', // 0.79999x
      'restore-vs-rclone': 'NOT MEASURED',
      'restore-dir-vs-restic': 'NOT MEASURED',
      'incremental-changed': 'FAIL', // 1.501x
      'incremental-nochange': 'PASS', // median 1.1x of the pairs, not the 1.1 s / 1 s of the row
      'versioned-nochange': 'NOT MEASURED',
      'versioned-flat': 'NOT MEASURED',
      'restore-single': 'PASS', // 300 ms
      'peak-rss': 'FAIL', // seed-large at 250 MB
      'peak-rss-scale': 'NOT MEASURED',
    });
    expect(targets.find((t) => t.id === 'peak-rss')!.measured).toContain('seed-large 250');
    expect(targets.find((t) => t.id === 'threads')!.measured).toBe('not measured: seed-dir, seed-dir-1thread missing (mode quick)');
  });

  it('compares every command peak RSS across scales with --rss-compare, higher scale over lower', () => {
    const at1 = [row('seed-small', { peakRssMB: 200 }), row('restore-full', { peakRssMB: 200 })];
    const at10 = [row('seed-small', { peakRssMB: 220 }), row('restore-full', { peakRssMB: 222 }), row('only-here', { peakRssMB: 900 })];
    const fromScale1 = checkIssue22Targets(at1, { scale: 1 }, { rssCompare: { scale: 10, rows: at10 } }).find((t) => t.id === 'peak-rss-scale')!;
    expect(fromScale1).toMatchObject({ status: 'FAIL', measured: 'max 1.11x (restore-full: 222 vs 200 MB) over 2 commands of both runs' });
    const fromScale10 = checkIssue22Targets(at10.slice(0, 1), { scale: 10 }, { rssCompare: { scale: 1, rows: at1 } }).find((t) => t.id === 'peak-rss-scale')!;
    expect(fromScale10).toMatchObject({ status: 'PASS', target: '<= 1.1x', metric: 'peak RSS, scale 10 ÷ scale 1' });
  });

  it('takes the versioned bucket from meta: every history depth within 1.3x, and flat within 1.1x', () => {
    const versioned = { summary: [{ versions: 5, changed: { ratio: 1.3, listRequests: 5 } }, { versions: 10, changed: { ratio: 1.31, listRequests: 6 } }], flat: 1.1 };
    const status = statusOf(checkIssue22Targets([], { versioned }));
    expect([status['versioned-nochange'], status['versioned-flat'], status['peak-rss']]).toEqual(['FAIL', 'PASS', 'NOT MEASURED']);
  });
});
