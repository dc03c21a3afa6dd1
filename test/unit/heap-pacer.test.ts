import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { heapAndBuffersInUse, pollHeapPacer, startHeapPacer } from '../../src/util/heap-pacer.js';

// Deterministic: the pacer's decisions are driven by scripted readings and fake timers, never by
// how often V8 happened to collect on a loaded machine. Only `heapAndBuffersInUse` reads real
// memory, right after a full collection, about a Buffer the test holds.

const MB = 1024 * 1024;

/** A reader that returns `values` in order (the last one from then on), and counts its calls. */
function scripted(values: number[]): { read: () => number; reads: () => number } {
  let i = 0;
  return { read: () => values[Math.min(i++, values.length - 1)]!, reads: () => i };
}

describe('startHeapPacer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('does not collect while the reading stays within the budget, and collects once it grew by it', () => {
    let collections = 0;
    // Start at 100 MB; idle for 3 ticks; then +3 MB a tick: 103, 106, 109 (>= 100 + 8), ...
    const r = scripted([100 * MB, 100 * MB, 100 * MB, 100 * MB, 103 * MB, 106 * MB, 109 * MB, 100 * MB, 100 * MB]);
    const stop = startHeapPacer(10, 8 * MB, () => collections++, r.read);
    vi.advanceTimersByTime(30);
    expect(collections).toBe(0);
    vi.advanceTimersByTime(20); // 103, 106
    expect(collections).toBe(0);
    vi.advanceTimersByTime(10); // 109: grown by the budget
    expect(collections).toBe(1);
    vi.advanceTimersByTime(50); // back at 100 after the collection, no growth
    expect(collections).toBe(1);
    stop();
  });

  it('measures growth from the lowest reading since the last collection', () => {
    let collections = 0;
    // 100 at start; dead Buffers freed by V8 itself: 90; then 95 (< 90 + 8) and 98 (>= 90 + 8).
    const r = scripted([100 * MB, 90 * MB, 95 * MB, 98 * MB, 90 * MB]);
    const stop = startHeapPacer(10, 8 * MB, () => collections++, r.read);
    vi.advanceTimersByTime(20);
    expect(collections).toBe(0);
    vi.advanceTimersByTime(10);
    expect(collections).toBe(1); // from the start's 100 MB, 98 would not have been enough
    stop();
  });

  it('reads again after a collection, and stops collecting once stopped', () => {
    let collections = 0;
    let level = 0;
    const stop = startHeapPacer(10, 8 * MB, () => {
      collections++;
      level = 0; // what the collection freed
    }, () => (level += 5 * MB));
    vi.advanceTimersByTime(100);
    const whileRunning = collections;
    expect(whileRunning).toBeGreaterThanOrEqual(3);
    stop();
    vi.advanceTimersByTime(100);
    expect(collections).toBe(whileRunning);
  });

  it('checks from a poll when no timer can run (a loop that never returns to the event loop)', () => {
    let collections = 0;
    let clock = 0;
    let level = 100 * MB;
    const stop = startHeapPacer(10, 8 * MB, () => {
      collections++;
      level = 100 * MB;
    }, () => level, () => clock);
    // A synchronous loop: each "object" adds 1 MB of garbage and 1 ms; the fake timers never run.
    for (let i = 0; i < 100; i++) {
      level += MB;
      clock += 1;
      pollHeapPacer();
    }
    // Checked every 10 ms (10 objects, 10 MB): collected whenever 8 MB had grown by then.
    expect(collections).toBe(10);
    // Polls between two checks only read the clock.
    const before = collections;
    level += 50 * MB;
    pollHeapPacer();
    expect(collections).toBe(before);
    stop();
    clock += 100;
    pollHeapPacer();
    expect(collections).toBe(before);
  });

  it("uses node's global gc when it starts, and does nothing (reads nothing) without one", () => {
    const global = globalThis as { gc?: () => void };
    expect(global.gc).toBeUndefined();
    const without = scripted([0, 100 * MB]);
    const stopWithout = startHeapPacer(10, 8 * MB, undefined, without.read);
    vi.advanceTimersByTime(100);
    stopWithout();
    expect(without.reads()).toBe(0);

    let calls = 0;
    global.gc = () => calls++;
    try {
      const stop = startHeapPacer(10, 8 * MB, undefined, scripted([0, 100 * MB, 0]).read);
      vi.advanceTimersByTime(10);
      stop();
      expect(calls).toBe(1);
    } finally {
      delete global.gc;
    }
  });
});

describe('heapAndBuffersInUse', () => {
  it('counts Buffers (external memory), not only the JS heap', () => {
    // A full collection first (node's gc, enabled for this call only), so no garbage is freed
    // between the two readings; the Buffer is held, so it is live in both.
    let gc: () => void;
    try {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as () => void;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
    gc();
    const before = heapAndBuffersInUse();
    const held = Buffer.alloc(64 * MB, 1);
    const after = heapAndBuffersInUse();
    expect(held.length).toBe(64 * MB);
    // Young-generation garbage made meanwhile may be scavenged (measured: under 1 MB); the JS
    // heap alone could not account for anything near 64 MB.
    expect(after - before).toBeGreaterThanOrEqual(56 * MB);
  });
});
