import { describe, expect, it } from 'vitest';
import type { RunStatus } from '../../src/catalog/types.js';
import { BucketKeys, decideRetention, isoWeek, subtractDuration, type RetentionRun } from '../../src/engine/retention.js';
import type { Retention } from '../../src/policy/types.js';

const t = (iso: string): number => Date.parse(iso);
let n = 0;
const run = (iso: string, status: RunStatus = 'complete', id?: string): RetentionRun => ({ id: id ?? `${iso}#${++n}`, started: t(iso), status });

/** `id → reasons joined, or 'remove'` for compact expectations. */
function decide(runs: RetentionRun[], rules: Retention, opts: { now?: string; tz?: string } = {}): Record<string, string> {
  const d = decideRetention(runs, rules, { now: t(opts.now ?? '2030-01-01T00:00:00Z'), timeZone: opts.tz ?? 'UTC' });
  return Object.fromEntries(runs.map((r) => [r.id, d.get(r.id)!.keep ? d.get(r.id)!.reasons.join(',') : 'remove']));
}

describe('decideRetention', () => {
  it('keep_last keeps the newest N runs and always the latest', () => {
    const runs = ['2026-11-01', '2026-11-02', '2026-11-03', '2026-11-04', '2026-11-05'].map((d) => run(`${d}T10:00:00Z`, 'complete', d));
    expect(decide(runs, { keepLast: 3 })).toEqual({
      '2026-11-01': 'remove',
      '2026-11-02': 'remove',
      '2026-11-03': 'last-3',
      '2026-11-04': 'last-2',
      '2026-11-05': 'latest,last-1',
    });
  });

  it('keep_daily keeps the newest run of each of the N newest days that have runs', () => {
    const runs = [
      run('2026-11-01T08:00:00Z', 'complete', 'a'),
      run('2026-11-01T20:00:00Z', 'complete', 'b'),
      run('2026-11-03T08:00:00Z', 'complete', 'c'),
      run('2026-11-03T09:00:00Z', 'complete', 'd'),
      run('2026-11-04T01:00:00Z', 'complete', 'e'),
    ];
    // Days without runs (11-02) do not use up a slot.
    expect(decide(runs, { keepDaily: 3 })).toEqual({ a: 'remove', b: 'daily-3', c: 'remove', d: 'daily-2', e: 'latest,daily-1' });
  });

  it('a rule set to 0 keeps nothing, but the latest run stays', () => {
    const runs = [run('2026-11-01T08:00:00Z', 'complete', 'a'), run('2026-11-02T08:00:00Z', 'complete', 'b')];
    expect(decide(runs, { keepDaily: 0 })).toEqual({ a: 'remove', b: 'latest' });
  });

  it('with no rules at all every run is kept', () => {
    const runs = [run('2026-11-01T08:00:00Z', 'failed', 'a'), run('2026-11-02T08:00:00Z', 'complete', 'b')];
    expect(decide(runs, {})).toEqual({ a: 'no-policy', b: 'no-policy' });
  });

  it('equal start times: the greater run id counts as newer, and only one fills a slot', () => {
    const runs = [run('2026-11-05T10:00:00Z', 'complete', 'run-b'), run('2026-11-05T10:00:00Z', 'complete', 'run-a'), run('2026-11-04T10:00:00Z', 'complete', 'run-0')];
    expect(decide(runs, { keepLast: 1 })).toEqual({ 'run-b': 'latest,last-1', 'run-a': 'remove', 'run-0': 'remove' });
    expect(decide(runs, { keepDaily: 2 })).toEqual({ 'run-b': 'latest,daily-1', 'run-a': 'remove', 'run-0': 'daily-2' });
  });

  it('failed and interrupted runs are not counted by keep_last; running runs are kept', () => {
    const runs = [
      run('2026-11-01T10:00:00Z', 'complete', 'a'),
      run('2026-11-02T10:00:00Z', 'partial', 'b'),
      run('2026-11-03T10:00:00Z', 'failed', 'c'),
      run('2026-11-04T10:00:00Z', 'interrupted', 'd'),
      run('2026-11-05T10:00:00Z', 'running', 'e'),
    ];
    expect(decide(runs, { keepLast: 2 })).toEqual({ a: 'last-2', b: 'latest,last-1', c: 'remove', d: 'remove', e: 'running' });
  });

  it('min_age_days keeps every younger run, whatever the other rules say', () => {
    const runs = ['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23'].map((d) => run(`${d}T10:00:00Z`, d === '2026-11-21' ? 'failed' : 'complete', d));
    expect(decide(runs, { keepLast: 1, minAgeDays: 3 }, { now: '2026-11-23T12:00:00Z' })).toEqual({
      '2026-11-20': 'remove',
      '2026-11-21': 'min-age',
      '2026-11-22': 'min-age',
      '2026-11-23': 'latest,last-1,min-age',
    });
  });

  it('keep_within counts back from the newest run, not from now', () => {
    const runs = ['2026-10-01', '2026-10-20', '2026-10-25', '2026-10-31'].map((d) => run(`${d}T10:00:00Z`, 'complete', d));
    expect(decide(runs, { keepWithin: '10d' }, { now: '2027-06-01T00:00:00Z' })).toEqual({
      '2026-10-01': 'remove',
      '2026-10-20': 'remove',
      '2026-10-25': 'within-10d',
      '2026-10-31': 'latest,within-10d',
    });
  });

  it('a keep_within longer than a Date can reach back (275000y, 3300000m) keeps every run', () => {
    const runs = ['1990-01-01', '2026-10-20', '2026-10-31'].map((d) => run(`${d}T10:00:00Z`, 'complete', d));
    for (const keepWithin of ['275000y', '3300000m', '300000y1d']) {
      expect(decide(runs, { keepWithin })).toEqual({
        '1990-01-01': `within-${keepWithin}`,
        '2026-10-20': `within-${keepWithin}`,
        '2026-10-31': `latest,within-${keepWithin}`,
      });
    }
  });

  it('leap days: monthly buckets, yearly buckets and keep_within 1y from 29 February', () => {
    const runs = [
      run('2027-02-28T11:59:59Z', 'complete', '2027-02-28-early'),
      run('2027-02-28T12:00:00Z', 'complete', '2027-02-28-noon'),
      run('2027-03-01T12:00:00Z', 'complete', '2027-03-01'),
      run('2028-02-28T12:00:00Z', 'complete', '2028-02-28'),
      run('2028-02-29T12:00:00Z', 'complete', '2028-02-29'),
    ];
    // 2028-02-29 minus one year is 2027-02-28 12:00 (clamped); a run exactly there is not "within".
    expect(decide(runs, { keepWithin: '1y' })).toEqual({
      '2027-02-28-early': 'remove',
      '2027-02-28-noon': 'remove',
      '2027-03-01': 'within-1y',
      '2028-02-28': 'within-1y',
      '2028-02-29': 'latest,within-1y',
    });
    expect(decide(runs, { keepMonthly: 2, keepYearly: 2 })).toEqual({
      '2027-02-28-early': 'remove',
      '2027-02-28-noon': 'remove',
      '2027-03-01': 'monthly-2,yearly-2',
      '2028-02-28': 'remove',
      '2028-02-29': 'latest,monthly-1,yearly-1',
    });
    // Months without runs do not use up a slot: the third month is February 2027, its newest run at noon.
    expect(decide(runs, { keepMonthly: 3 })['2027-02-28-noon']).toBe('monthly-3');
  });

  it('daily buckets are cut in the policy time zone', () => {
    // 22:30 and 23:30 UTC on 25 October are 23:30 on the 25th and 00:30 on the 26th in Berlin (CET, +01:00).
    const runs = [run('2026-10-25T22:30:00Z', 'complete', 'late'), run('2026-10-25T23:30:00Z', 'complete', 'later')];
    expect(decide(runs, { keepDaily: 2 }, { tz: 'UTC' })).toEqual({ late: 'remove', later: 'latest,daily-1' });
    expect(decide(runs, { keepDaily: 2 }, { tz: 'Europe/Berlin' })).toEqual({ late: 'daily-2', later: 'latest,daily-1' });
  });

  it('DST: the repeated hour when clocks go back is two hourly buckets; the skipped hour is none', () => {
    // Berlin, 25 October 2026: 02:30 CEST (00:30Z) and 02:30 CET (01:30Z) read the same on the wall.
    const fallBack = [run('2026-10-25T00:30:00Z', 'complete', 'cest'), run('2026-10-25T01:30:00Z', 'complete', 'cet')];
    expect(decide(fallBack, { keepHourly: 2 }, { tz: 'Europe/Berlin' })).toEqual({ cest: 'hourly-2', cet: 'latest,hourly-1' });
    // Both are on the same Berlin day.
    expect(decide(fallBack, { keepDaily: 2 }, { tz: 'Europe/Berlin' })).toEqual({ cest: 'remove', cet: 'latest,daily-1' });
    // 29 March 2026: 01:59 CET is followed by 03:00 CEST; three runs an hour apart fill three buckets.
    const springForward = [run('2026-03-29T00:10:00Z', 'complete', 'x'), run('2026-03-29T01:10:00Z', 'complete', 'y'), run('2026-03-29T02:10:00Z', 'complete', 'z')];
    const keys = new BucketKeys('Europe/Berlin');
    expect(springForward.map((r) => keys.key(r.started, 'hourly'))).toEqual([
      '2026-03-29T01 GMT+01:00',
      '2026-03-29T03 GMT+02:00',
      '2026-03-29T04 GMT+02:00',
    ]);
    expect(decide(springForward, { keepHourly: 3 }, { tz: 'Europe/Berlin' })).toEqual({ x: 'hourly-3', y: 'hourly-2', z: 'latest,hourly-1' });
  });

  it('weekly buckets are ISO weeks (Monday to Sunday)', () => {
    const runs = [run('2026-11-29T23:00:00Z', 'complete', 'sun'), run('2026-11-30T01:00:00Z', 'complete', 'mon'), run('2026-11-30T05:00:00Z', 'complete', 'mon2')];
    expect(decide(runs, { keepWeekly: 5 })).toEqual({ sun: 'weekly-2', mon: 'remove', mon2: 'latest,weekly-1' });
  });

  it('combines reasons from several rules', () => {
    const runs = [
      run('2026-09-30T10:00:00Z', 'complete', 'sep'),
      run('2026-10-31T10:00:00Z', 'complete', 'oct'),
      run('2026-11-01T10:00:00Z', 'complete', 'nov1'),
      run('2026-11-02T10:00:00Z', 'complete', 'nov2'),
    ];
    expect(decide(runs, { keepDaily: 2, keepMonthly: 3 })).toEqual({ sep: 'monthly-3', oct: 'monthly-2', nov1: 'daily-2', nov2: 'latest,daily-1,monthly-1' });
  });
});

describe('calendar helpers', () => {
  it.each([
    [2026, 11, 23, '2026-W48'],
    [2026, 12, 31, '2026-W53'],
    [2027, 1, 1, '2026-W53'],
    [2021, 1, 3, '2020-W53'],
    [2024, 12, 30, '2025-W01'],
    [2028, 2, 29, '2028-W09'],
  ])('isoWeek(%i-%i-%i) = %s', (y, m, d, week) => {
    expect(isoWeek(y, m, d)).toBe(week);
  });

  it("keep_within's months are steps of the policy's wall clock, as keep_monthly's months are (across a DST change)", () => {
    // The newest run: 31 March 23:30 in New York (EDT, 1 April 03:30Z). One month back is
    // 28 February 23:30 there (EST: 1 March 04:30Z), not 1 March 03:30Z as a UTC step says.
    const runs = [run('2026-03-01T04:00:00Z', 'complete', 'feb-28-23:00'), run('2026-03-01T05:00:00Z', 'complete', 'mar-01-00:00'), run('2026-04-01T03:30:00Z', 'complete', 'newest')];
    const tz = 'America/New_York';
    expect(decide(runs, { keepWithin: '1m' }, { tz })).toEqual({ 'feb-28-23:00': 'remove', 'mar-01-00:00': 'within-1m', newest: 'latest,within-1m' });
    // The same two runs in keep_monthly's buckets: February's and March's.
    expect(decide(runs, { keepMonthly: 2 }, { tz })).toEqual({ 'feb-28-23:00': 'monthly-2', 'mar-01-00:00': 'remove', newest: 'latest,monthly-1' });
    expect(new Date(subtractDuration(t('2026-04-01T03:30:00Z'), '1m', tz)).toISOString()).toBe('2026-03-01T04:30:00.000Z');
    // A wall time that clocks going forward skip (8 March 02:30 there) moves forward by the gap;
    // one that clocks going back repeat (1 November 01:30) is its first occurrence.
    expect(new Date(subtractDuration(t('2026-04-08T06:30:00Z'), '1m', tz)).toISOString()).toBe('2026-03-08T07:30:00.000Z');
    expect(new Date(subtractDuration(t('2026-12-01T06:30:00Z'), '1m', tz)).toISOString()).toBe('2026-11-01T05:30:00.000Z');
    // Days and hours stay fixed lengths.
    expect(new Date(subtractDuration(t('2026-03-09T12:00:00Z'), '1d', tz)).toISOString()).toBe('2026-03-08T12:00:00.000Z');
  });

  it.each([
    ['2026-03-31T10:00:00Z', '1m', '2026-02-28T10:00:00Z'],
    ['2028-03-31T10:00:00Z', '1m', '2028-02-29T10:00:00Z'],
    ['2028-02-29T10:00:00Z', '1y', '2027-02-28T10:00:00Z'],
    ['2026-11-23T10:00:00Z', '1y6m', '2025-05-23T10:00:00Z'],
    ['2026-11-23T10:00:00Z', '2w', '2026-11-09T10:00:00Z'],
    ['2026-11-23T10:00:00Z', '1d12h', '2026-11-21T22:00:00Z'],
  ])('%s minus %s = %s', (from, duration, expected) => {
    expect(new Date(subtractDuration(t(from), duration)).toISOString()).toBe(new Date(t(expected)).toISOString());
  });
});
