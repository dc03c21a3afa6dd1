// What --quiet keeps (errors, and warnings that qualify the answer) and how a run of failures
// with one error code is printed (the first REPEATS_SHOWN lines, then a count).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeRebuild } from '../../src/commands/catalog.js';
import { REPEATS_SHOWN, Reporter } from '../../src/commands/reporter.js';
import type { RebuildReport } from '../../src/engine/rebuild.js';

const capture = () => {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  return { out, err };
};

afterEach(() => {
  vi.restoreAllMocks();
});

const failure = (key: string, code: string) => ({ type: 'failure' as const, bucket: 'b', key, versionId: null, code, message: `PUT s3://t/${key}: ${code}` });

describe('--quiet', () => {
  it('keeps the warnings that qualify the answer (stale, partial, suspect) and drops the others', () => {
    const { out, err } = capture();
    const r = new Reporter({ quiet: true });
    r.event({ type: 'warning', qualifies: true, message: 'offline: catalog /c.db was not synced with s3://r/; answers may be stale' });
    r.event({ type: 'warning', message: '--no-lock: restore takes no repository lock' });
    r.summary({}, 'restored 1 of 1 objects');
    expect(err.join('')).toBe('warning: offline: catalog /c.db was not synced with s3://r/; answers may be stale\n');
    expect(out).toEqual([]);
  });
});

describe('a run of failures with one code', () => {
  it(`prints the first ${REPEATS_SHOWN}, then one line counting the rest; another code or the summary ends the run`, () => {
    for (const quiet of [false, true]) {
      const { err } = capture();
      const r = new Reporter({ quiet });
      for (let i = 0; i < 1000; i++) r.event(failure(`k${i}`, 'AccessDenied'));
      r.event(failure('other', 'InvalidKey'));
      for (let i = 0; i < 12; i++) r.event(failure(`n${i}`, 'NoSuchKey'));
      r.summary({}, 'done');
      const lines = err.join('').split('\n').filter(Boolean);
      expect(lines).toEqual([
        ...Array.from({ length: REPEATS_SHOWN }, (_, i) => `failed: b/k${i}: PUT s3://t/k${i}: AccessDenied`),
        `  … and ${1000 - REPEATS_SHOWN} more failures with AccessDenied (not shown; --json lists each one)`,
        'failed: b/other: PUT s3://t/other: InvalidKey',
        ...Array.from({ length: REPEATS_SHOWN }, (_, i) => `failed: b/n${i}: PUT s3://t/n${i}: NoSuchKey`),
        '  … and 2 more failures with NoSuchKey (not shown; --json lists each one)',
      ]);
      vi.restoreAllMocks();
    }
  });

  it('--json lists every failure', () => {
    const { err } = capture();
    const r = new Reporter({ json: true });
    for (let i = 0; i < 50; i++) r.event(failure(`k${i}`, 'AccessDenied'));
    r.close();
    expect(err.join('').split('\n').filter(Boolean)).toHaveLength(50);
  });
});

describe('counts in text output', () => {
  it('say 1 run, 1 pack, 1 index file (not 1 runs, 1 packs, 1 index files)', () => {
    const one = { installed: true, catalog: 'c.db', durationMs: 1, runs: 1, versions: 1, failures: 1, blobs: 1, packs: 1, indexFiles: 1, bytesRead: 1, movedAside: null, previousRuns: 1, damage: [], missingCount: 1, missing: [] } as unknown as RebuildReport;
    const lines = describeRebuild(one, 'file:///repo/').split('\n');
    expect(lines).toContain('  1 run, 1 object version, 1 recorded failure');
    expect(lines).toContain('  1 blob in 1 pack from 1 index file; 1 B of records read');
    expect(lines).toContain('  the replaced catalog has 1 run');
  });
});
