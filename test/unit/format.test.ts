// Durations as the tables print them (RTO, RPO, run durations, "nothing recorded in …").
import { describe, expect, it } from 'vitest';
import { formatDuration, parseFraction } from '../../src/util/format.js';

describe('formatDuration', () => {
  it('rounds before it splits minutes and seconds: never 60 seconds', () => {
    expect(formatDuration(999)).toBe('999 ms');
    expect(formatDuration(59_940)).toBe('59.9 s');
    expect(formatDuration(59_960)).toBe('1m00s');
    expect(formatDuration(22 * 60_000 + 59_600)).toBe('23m00s');
    expect(formatDuration(5 * 60_000 + 7_400)).toBe('5m07s');
    // From an hour on, hours and minutes; from a day on, days and hours (run-set-labels.test.ts).
    expect(formatDuration(3_599_600)).toBe('1h00m');
    expect(formatDuration(180 * 60_000)).toBe('3h00m');
    expect(formatDuration(86_400_000 - 20_000)).toBe('1d00h');
  });
});

describe('parseFraction (--read-data-subset, --max-unused)', () => {
  it('takes a percentage, and refuses a bare number that reads one way below 1 and another above', () => {
    expect(['10%', '0.5%', '100%', '0%', '0'].map(parseFraction)).toEqual([0.1, 0.005, 1, 0, 0]);
    // `1` was 100% (every pack read) and `2` was 2%; `0.5` was 50%.
    expect(['1', '2', '0.5', '10', '101%', '5 %', 'lots'].map(parseFraction)).toEqual([null, null, null, null, null, null, null]);
  });
});
