import { describe, expect, it } from 'vitest';
import { ByteBudget } from '../../src/util/byte-budget.js';
import { coalesce } from '../../src/engine/restore.js';
import type { RestoreItem } from '../../src/catalog/types.js';

const MiB = 1024 * 1024;

describe('ByteBudget', () => {
  it('holds back an acquire that does not fit until enough is released', async () => {
    const budget = new ByteBudget(100);
    await budget.acquire(60);
    let second = false;
    const pending = budget.acquire(50).then(() => (second = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(second).toBe(false);
    expect(budget.inUse).toBe(60);
    budget.release(60);
    await pending;
    expect(second).toBe(true);
    expect(budget.inUse).toBe(50);
  });

  it('lets a request larger than the whole budget through alone instead of deadlocking', async () => {
    const budget = new ByteBudget(100);
    await budget.acquire(500);
    expect(budget.inUse).toBe(500);
    let small = false;
    const pending = budget.acquire(1).then(() => (small = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(small).toBe(false);
    budget.release(500);
    await pending;
    expect(small).toBe(true);
  });

  it('never holds more than the limit with many concurrent users', async () => {
    const budget = new ByteBudget(10 * MiB);
    let peak = 0;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        budget.with(MiB + i, async () => {
          peak = Math.max(peak, budget.inUse);
          await new Promise((r) => setTimeout(r, 1));
        }),
      ),
    );
    expect(peak).toBeLessThanOrEqual(10 * MiB);
    expect(peak).toBeGreaterThan(5 * MiB);
    expect(budget.inUse).toBe(0);
  });
});

describe('restore range coalescing', () => {
  const item = (offset: number, length: number, rawLength: number): RestoreItem =>
    ({ blobs: [{ hash: Buffer.alloc(32), pack: 'p', offset, length, rawLength, compressed: true }] }) as unknown as RestoreItem;

  it('bounds each range by its bytes read plus decoded, and keeps every item once, in order', () => {
    // 1,000 back-to-back 20 KiB blobs that decode to 100 KiB each: 117 MiB decoded in one pack.
    const items = Array.from({ length: 1000 }, (_, i) => item(i * 20 * 1024, 20 * 1024, 100 * 1024));
    const ranges = coalesce(items);
    expect(ranges.length).toBeGreaterThan(10);
    for (const r of ranges) {
      const read = r.end - r.start;
      const decoded = r.items.reduce((n, it) => n + it.blobs[0]!.rawLength, 0);
      expect(r.memory).toBe(read + decoded);
      expect(r.memory).toBeLessThanOrEqual(8 * MiB);
    }
    expect(ranges.flatMap((r) => r.items)).toEqual(items);
  });

  it('starts a new range across a gap wider than reading it is worth', () => {
    const ranges = coalesce([item(0, 100, 100), item(100, 100, 100), item(5 * MiB, 100, 100)]);
    expect(ranges.map((r) => [r.start, r.end, r.items.length])).toEqual([
      [0, 200, 2],
      [5 * MiB, 5 * MiB + 100, 1],
    ]);
  });
});
