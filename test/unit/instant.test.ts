// parseAt: every accepted form of an instant, and the refusals. Local times are read in the
// machine's zone: pinned here to one with a half-hour offset and DST-free (Asia/Kolkata,
// UTC+05:30), so a wrong assumption of UTC shows.
process.env.TZ = 'Asia/Kolkata';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { ACCEPTED_INSTANTS, describeCut, parseAt } from '../../src/catalog/instant.js';
import { UsageError } from '../../src/errors.js';

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
const IST = 5.5 * 3_600_000;

let cat: Catalog;
beforeAll(() => {
  cat = Catalog.open(':memory:', 'ab'.repeat(16));
  for (const [id, started] of [
    ['20261122T101500Z-3fa2c1', Date.UTC(2026, 10, 22, 10, 15)],
    ['20261122T221500Z-3fb000', Date.UTC(2026, 10, 22, 22, 15)],
    ['20261123T101500Z-aaaaaa', Date.UTC(2026, 10, 23, 10, 15)],
  ] as const) {
    cat.beginRun({ id, group: 'g', started, host: 'h' });
  }
});
afterAll(() => cat.close());

describe('parseAt', () => {
  it.each([
    // ISO 8601 without an offset: local time (UTC+05:30 here)
    ['2026-11-22', { time: Date.UTC(2026, 10, 22) - IST }],
    ['2026-11-22T10:42', { time: Date.UTC(2026, 10, 22, 10, 42) - IST }],
    ['2026-11-22 10:42', { time: Date.UTC(2026, 10, 22, 10, 42) - IST }],
    ['2026-11-22T10:42:05', { time: Date.UTC(2026, 10, 22, 10, 42, 5) - IST }],
    ['2026-11-22T10:42:05.25', { time: Date.UTC(2026, 10, 22, 10, 42, 5, 250) - IST }],
    // with an offset: exactly that instant
    ['2026-11-22T10:42:00Z', { time: Date.UTC(2026, 10, 22, 10, 42) }],
    ['2026-11-22T10:42Z', { time: Date.UTC(2026, 10, 22, 10, 42) }],
    ['2026-11-22T10:42:00.123Z', { time: Date.UTC(2026, 10, 22, 10, 42, 0, 123) }],
    ['2026-11-22T10:42+01:00', { time: Date.UTC(2026, 10, 22, 9, 42) }],
    ['2026-11-22T10:42:00-0530', { time: Date.UTC(2026, 10, 22, 16, 12) }],
    ['2026-11-22T10:42+02', { time: Date.UTC(2026, 10, 22, 8, 42) }],
    [' 2026-11-22T10:42:00Z ', { time: Date.UTC(2026, 10, 22, 10, 42) }],
    // relative: that long before now
    ['now', { time: NOW }],
    ['NOW', { time: NOW }],
    ['90s', { time: NOW - 90_000 }],
    ['15m', { time: NOW - 15 * 60_000 }],
    ['2h', { time: NOW - 2 * 3_600_000 }],
    ['3d', { time: NOW - 3 * 86_400_000 }],
    ['1w', { time: NOW - 7 * 86_400_000 }],
    ['1h30m', { time: NOW - 90 * 60_000 }],
    ['1.5h', { time: NOW - 90 * 60_000 }],
    ['2h ago', { time: NOW - 2 * 3_600_000 }],
    // runs: full id, unique prefix, number
    ['20261122T101500Z-3fa2c1', { runSeq: 1 }],
    ['20261123', { runSeq: 3 }],
    ['20261122T22', { runSeq: 2 }],
    ['2', { runSeq: 2 }],
  ])('%j', (text, cut) => {
    expect(parseAt(text, cat, NOW)).toEqual(cut);
  });

  it.each([
    ['yesterday', /cannot read "yesterday" as an instant or a run/],
    ['', /cannot read "" as an instant or a run/],
    ['2026-13-01', /month 13 is not 01-12/],
    ['2026-02-30', /day 30 does not exist in 2026-02/],
    ['2026-11-22T25:00', /time 25:00 is out of range/],
    ['2026-11-22T10:42+24:00', /offset \+24:00 is out of range/],
    ['2026/11/22', /cannot read/],
    ['20261122', /matches several runs: 20261122T101500Z-3fa2c1, 20261122T221500Z-3fb000/],
    ['99', /cannot read "99" as an instant or a run/],
    ['2 hours', /cannot read/],
  ])('refuses %j', (text, message) => {
    let error: unknown;
    try {
      parseAt(text, cat, NOW);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toMatch(message);
    expect((error as UsageError).exitCode).toBe(2);
    expect((error as UsageError).hint).toMatch(/ISO 8601|more of the run id/);
  });

  it('names every accepted form in its hint', () => {
    for (const form of ['2026-11-22T10:42', 'run id', '90s', '15m', '2h', '3d', '1w', 'now', 'local time']) expect(ACCEPTED_INSTANTS).toContain(form);
  });

  it('uses the clock when no `now` is given', () => {
    const before = Date.now();
    const cut = parseAt('1h', cat) as { time: number };
    expect(cut.time).toBeGreaterThanOrEqual(before - 3_600_000);
    expect(cut.time).toBeLessThanOrEqual(Date.now() - 3_600_000);
  });

  it('describes cuts for people: a run by id, number and end (or start), a time in UTC, to the millisecond', () => {
    // This run never finished: its start, said so.
    expect(describeCut({ runSeq: 2 }, cat)).toBe('run 20261122T221500Z-3fb000 (#2, started 2026-11-22 22:15:00.000Z, not finished)');
    expect(describeCut({ time: Date.UTC(2026, 10, 22, 10, 42, 0, 7) }, cat)).toBe('2026-11-22 10:42:00.007Z');
  });
});
