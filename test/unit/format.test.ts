// Durations as the tables print them (RTO, RPO, run durations, "nothing recorded in …").
import { describe, expect, it } from 'vitest';
import { formatDuration } from '../../src/util/format.js';

describe('formatDuration', () => {
  it('rounds before it splits minutes and seconds: never 60 seconds', () => {
    expect(formatDuration(999)).toBe('999 ms');
    expect(formatDuration(59_940)).toBe('59.9 s');
    expect(formatDuration(59_960)).toBe('1m00s');
    expect(formatDuration(22 * 60_000 + 59_600)).toBe('23m00s');
    expect(formatDuration(180 * 60_000)).toBe('180m00s');
    expect(formatDuration(5 * 60_000 + 7_400)).toBe('5m07s');
  });
});
