import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { startHeapPacer } from '../../src/util/heap-pacer.js';

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

describe('startHeapPacer', () => {
  it('runs full collections on its interval until stopped, without exposing a global gc', async () => {
    const hadGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
    let stop = (): void => {};
    const running = await majorCollections(async () => {
      stop = startHeapPacer(25);
      await idle(400);
    });
    stop();
    const stopped = await majorCollections(() => idle(400));
    expect(running).toBeGreaterThanOrEqual(5);
    expect(stopped).toBeLessThan(running / 2);
    expect(typeof (globalThis as { gc?: unknown }).gc === 'function').toBe(hadGc);
  });
});
