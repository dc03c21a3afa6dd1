import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { startHeapPacer } from '../../src/util/heap-pacer.js';

/**
 * The gc function bin/lakeguard's `node --expose-gc` gives, for this test process (vitest's
 * workers start without the flag); a global gc is not left behind.
 */
function exposedGc(): () => void {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    if (typeof gc !== 'function') throw new Error('node gave no gc function');
    return gc as () => void;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}
const gc = exposedGc();

/** Counts full (mark-compact) collections while `fn` runs. */
async function majorCollections(fn: () => Promise<void>): Promise<number> {
  let n = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (((e as PerformanceEntry & { detail?: unknown }).detail as { kind?: number } | undefined)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) n++;
  });
  obs.observe({ entryTypes: ['gc'] });
  await fn();
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  return n;
}

const idle = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Allocates short-lived garbage (~1 MB per tick) for `ms` and at least `minTicks` ticks, holding
 * nothing. The floor keeps the amount of garbage (what the pacer reacts to) from shrinking on a
 * busy machine, where 600 ms may hold only a few ticks.
 */
async function churn(ms: number, minTicks = 300): Promise<void> {
  const end = Date.now() + ms;
  for (let ticks = 0; Date.now() < end || ticks < minTicks; ticks++) {
    let junk: unknown[] = [];
    for (let i = 0; i < 10_000; i++) junk.push({ i, s: `x${i}` });
    junk = [];
    await idle(1);
  }
}

/** Drops a 1 MiB Buffer per tick for `ticks` ticks: garbage outside the JS heap, almost none inside. */
async function bufferChurn(ticks: number): Promise<void> {
  for (let i = 0; i < ticks; i++) {
    Buffer.alloc(1024 * 1024, i); // dropped at once: garbage outside the JS heap
    await idle(1);
  }
}

describe('startHeapPacer', () => {
  it('collects when the heap grew by its budget, not while it stays idle, without exposing a global gc', async () => {
    const hadGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
    let stop = (): void => {};
    const idleRuns = await majorCollections(async () => {
      stop = startHeapPacer(10, 4 * 1024 * 1024, gc);
      await idle(300);
    });
    const busy = await majorCollections(() => churn(600));
    stop();
    const stopped = await majorCollections(() => churn(600));
    expect(idleRuns).toBeLessThanOrEqual(1);
    expect(busy).toBeGreaterThanOrEqual(5);
    expect(stopped).toBeLessThan(busy / 2);
    expect(typeof (globalThis as { gc?: unknown }).gc === 'function').toBe(hadGc);
  });

  it('counts dropped Buffers (external memory) as growth, not only the JS heap', async () => {
    const without = await majorCollections(() => bufferChurn(200));
    let stop = (): void => {};
    const paced = await majorCollections(async () => {
      stop = startHeapPacer(5, 8 * 1024 * 1024, gc);
      await bufferChurn(200);
    });
    stop();
    expect(paced).toBeGreaterThanOrEqual(8);
    expect(paced).toBeGreaterThan(2 * without);
  });

  it("uses node's global gc (node --expose-gc) when it starts, and does nothing without one", async () => {
    const global = globalThis as { gc?: () => void };
    expect(global.gc).toBeUndefined();
    let calls = 0;
    const stopWithout = startHeapPacer(5, 8 * 1024 * 1024); // no global gc yet: nothing to call
    global.gc = () => {
      calls++;
      gc();
    };
    try {
      await bufferChurn(200);
      stopWithout();
      expect(calls).toBe(0);
      const stopWith = startHeapPacer(5, 8 * 1024 * 1024);
      await bufferChurn(200);
      stopWith();
      expect(calls).toBeGreaterThanOrEqual(5);
    } finally {
      delete global.gc;
    }
  });
});
