// The cost model of `lakeguard cost` on hand-computed cases, and the policy's `pricing:` section.
import { describe, expect, it } from 'vitest';
import type { ObjectSet, RunUsage } from '../../src/catalog/cost-usage.js';
import type { RunCounters } from '../../src/catalog/types.js';
import { billableBytes, combineEstimates, DAY_MS, estimateCost, GIB, observeSchedule } from '../../src/engine/cost.js';
import { emptyCounters } from '../../src/engine/events.js';
import { parsePolicy, PolicyError } from '../../src/policy/index.js';
import { DEFAULT_PRICES, type PriceTable } from '../../src/policy/pricing.js';

const KIB = 1024;
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);

function counters(over: Partial<RunCounters> & { put?: number; get?: number; head?: number; list?: number }): RunCounters {
  const { put = 0, get = 0, head = 0, list = 0, ...rest } = over;
  return {
    ...emptyCounters(),
    requests: { list, get, head, put, delete: 0 },
    ...rest,
  };
}

function run(id: string, daysAgo: number, c: RunCounters): RunUsage {
  return { id, started: NOW - daysAgo * DAY_MS, status: 'complete', counters: c, sourceObjects: 0, sourceBytes: 0 };
}

const set = (objects: number, bytes: number, smallObjects = 0, smallBytes = 0): ObjectSet => ({ objects, bytes, smallObjects, smallBytes });
const withClass = (storageClass: string): PriceTable => ({ ...DEFAULT_PRICES, storageClass });

describe('cost model', () => {
  it('bills 1,000 objects of 4 KiB in Standard-IA as 128 KiB each when copied, and the packs at their size', () => {
    // 1,000 × 4 KiB = 3.90625 MiB; the copy is billed for 1,000 × 128 KiB = 125 MiB.
    const retained = set(1000, 1000 * 4 * KIB, 1000, 1000 * 4 * KIB);
    expect(billableBytes(retained, 128 * KIB)).toBe(1000 * 128 * KIB);
    expect(billableBytes(retained, 0)).toBe(1000 * 4 * KIB);

    // One 20 MiB pack (above the minimum) and one 1 MiB pack; 2 index files/manifests.
    const packs = set(2, 21 * 1024 * KIB, 0, 0);
    const seed = run('seed', 2, counters({ objectsNew: 1000, objectsSeen: 1000, put: 4, get: 1000, list: 3 }));
    const e = estimateCost({ runs: [seed], packs, metadataObjects: 2, retained, prices: withClass('STANDARD_IA'), now: NOW, runsPerDay: 1 });

    expect(e.copy.billableBytes).toBe(125 * 1024 * KIB);
    expect(e.copy.gbMonths).toBeCloseTo(125 / 1024, 12);
    expect(e.copy.storagePerMonth).toBeCloseTo((125 / 1024) * 0.0125, 12); // $0.00152587890625
    // Index files and manifests are billed at the 128 KiB minimum each.
    expect(e.lakeguard.billableBytes).toBe(21 * 1024 * KIB + 2 * 128 * KIB);
    expect(e.lakeguard.storagePerMonth).toBeCloseTo(((21 * 1024 + 256) / (1024 * 1024)) * 0.0125, 12);
    expect(e.lakeguard.objects).toBe(4);
    expect(e.copy.objects).toBe(1000);

    // The seed is paid once: 1,000 COPYs at $0.01/1,000 plus 3 LISTs at Standard's $0.005/1,000.
    expect(e.copy.firstCopy).toMatchObject({ put: 1000, get: 0, list: 3 });
    expect(e.copy.firstCopy.cost).toBeCloseTo(1000 * 0.00001 + 3 * 0.000005, 12);
    // lakeguard: 4 PUTs at IA, 1,000 GETs and 3 LISTs at the source's Standard prices.
    expect(e.lakeguard.firstCopy.cost).toBeCloseTo(4 * 0.00001 + 1000 * 0.0000004 + 3 * 0.000005, 12);
    // No incremental run yet: nothing recurring but storage.
    expect(e.runsAveraged).toBe(0);
    expect(e.lakeguard.requestCostPerMonth).toBe(0);
    expect(e.lakeguard.totalPerMonth).toBeCloseTo(e.lakeguard.storagePerMonth, 15);
  });

  it('prices a month of incremental runs from their average and the schedule', () => {
    const seed = run('seed', 10, counters({ objectsNew: 5000, put: 3, get: 5000, list: 10 }));
    // Two incremental runs: 200 and 100 objects new or changed.
    const r2 = run('r2', 5, counters({ objectsNew: 150, objectsChanged: 50, objectsUnchanged: 4800, put: 3, get: 200, head: 10, list: 10 }));
    const r3 = run('r3', 1, counters({ objectsChanged: 100, objectsUnchanged: 4900, put: 5, get: 100, list: 10 }));
    const e = estimateCost({ runs: [seed, r2, r3], packs: set(3, 30 * 1024 * KIB), metadataObjects: 6, retained: set(5300, 0), prices: withClass('GLACIER_IR'), now: NOW, runsPerDay: 2 });
    expect(e.schedule).toMatchObject({ runsPerDay: 2, runsPerMonth: 60, basis: 'given' });
    expect(e.runsAveraged).toBe(2);
    // Average incremental run: lakeguard 4 PUT, 155 GET (GET + HEAD), 10 LIST; copy 150 COPY, 10 LIST.
    expect(e.lakeguard.requestsPerMonth).toEqual({ put: 240, get: 9300, list: 600 });
    expect(e.copy.requestsPerMonth).toEqual({ put: 9000, get: 0, list: 600 });
    // Glacier IR PUT $0.02/1,000; Standard GET $0.0004/1,000 and LIST $0.005/1,000.
    expect(e.lakeguard.requestCostPerMonth).toBeCloseTo(0.0048 + 0.00372 + 0.003, 12);
    expect(e.copy.requestCostPerMonth).toBeCloseTo(0.18 + 0.003, 12);
    expect(e.savingsPerMonth).toBeCloseTo(e.copy.totalPerMonth - e.lakeguard.totalPerMonth, 15);
  });

  it('has no minimum size in Standard and bills GB-months in binary gigabytes', () => {
    const retained = set(1000, 1000 * 4 * KIB, 1000, 1000 * 4 * KIB);
    const e = estimateCost({ runs: [], packs: set(1, GIB), metadataObjects: 2, retained, prices: DEFAULT_PRICES, now: NOW });
    expect(e.storageClass).toBe('STANDARD');
    expect(e.lakeguard.billableBytes).toBe(GIB);
    expect(e.lakeguard.storagePerMonth).toBeCloseTo(0.023, 12);
    expect(e.copy.billableBytes).toBe(4_096_000);
  });

  it('observes runs per day over the last 30 days, or since the first run, at least a day', () => {
    const daily = Array.from({ length: 60 }, (_, i) => NOW - i * DAY_MS);
    // 60 daily runs: the window is 30 days and holds 31 of them (both ends included).
    expect(observeSchedule(daily, NOW)).toMatchObject({ windowDays: 30, runsInWindow: 31 });
    expect(observeSchedule(daily, NOW).runsPerDay).toBeCloseTo(31 / 30, 12);
    // A group started 2 days ago with 8 runs: 4 a day.
    const recent = Array.from({ length: 8 }, (_, i) => NOW - i * 6 * 3_600_000 - 6 * 3_600_000);
    expect(observeSchedule(recent, NOW)).toMatchObject({ windowDays: 2, runsInWindow: 8, runsPerDay: 4, runsPerMonth: 120 });
    // Three runs a minute ago: counted over one day.
    expect(observeSchedule([NOW - 60_000, NOW - 50_000, NOW - 40_000], NOW)).toMatchObject({ windowDays: 1, runsPerDay: 3, runsPerMonth: 90 });
  });

  it('does not take an incremental oldest run (after forget) for a first full copy', () => {
    const r1 = run('r1', 3, counters({ objectsChanged: 10, objectsUnchanged: 90, put: 3, list: 1 }));
    const r2 = run('r2', 2, counters({ objectsChanged: 30, objectsUnchanged: 70, put: 5, list: 1 }));
    const e = estimateCost({ runs: [r1, r2], packs: set(0, 0), metadataObjects: 0, retained: set(0, 0), prices: DEFAULT_PRICES, now: NOW, runsPerDay: 1 });
    expect(e.copy.firstCopy.cost).toBe(0);
    expect(e.runsAveraged).toBe(2);
    expect(e.copy.requestsPerMonth.put).toBe(600); // (10 + 30) / 2 × 30
  });

  it('adds groups up: requests summed, storage from the whole repository', () => {
    const a = estimateCost({ runs: [run('a1', 1, counters({ objectsNew: 10, put: 2 })), run('a2', 0.5, counters({ objectsNew: 4, objectsUnchanged: 10, put: 2 }))], packs: set(1, 100), metadataObjects: 2, retained: set(14, 1400), prices: DEFAULT_PRICES, now: NOW, runsPerDay: 1 });
    const b = estimateCost({ runs: [run('b1', 1, counters({ objectsNew: 5, put: 2 })), run('b2', 0.5, counters({ objectsNew: 2, objectsUnchanged: 5, put: 3 }))], packs: set(1, 50), metadataObjects: 2, retained: set(7, 700), prices: DEFAULT_PRICES, now: NOW, runsPerDay: 2 });
    const total = combineEstimates([a, b], { packs: set(3, GIB), metadataObjects: 4, retained: set(21, 2100) }, DEFAULT_PRICES, NOW);
    expect(total.lakeguard.requestsPerMonth.put).toBe(2 * 30 + 3 * 60);
    expect(total.copy.requestsPerMonth.put).toBe(4 * 30 + 2 * 60);
    expect(total.lakeguard.requestCostPerMonth).toBeCloseTo(a.lakeguard.requestCostPerMonth + b.lakeguard.requestCostPerMonth, 15);
    expect(total.lakeguard.storagePerMonth).toBeCloseTo(0.023, 12);
    expect(total.lakeguard.objects).toBe(7);
    expect(total.copy.firstCopy.put).toBe(15);
    expect(total.schedule.runsPerDay).toBe(3);
  });
});

describe('policy pricing section', () => {
  const base = 'version: 1\nrepository:\n  url: s3://backup-bucket/lakeguard\ngroups:\n  - name: lake\n    sources:\n      - bucket: raw-events\n';
  const errorOf = (text: string): string => {
    try {
      parsePolicy(text, 'policy.yaml');
    } catch (err) {
      if (err instanceof PolicyError) return err.message;
      throw err;
    }
    throw new Error('expected the policy to be rejected');
  };

  it('is optional, and fills in defaults around overrides', () => {
    expect(parsePolicy(base, 'p.yaml').pricing).toBeUndefined();
    const p = parsePolicy(
      `${base}pricing:\n  currency: EUR\n  storage_class: STANDARD_IA\n  classes:\n    STANDARD_IA: { storage_gb_month: 0.0135, min_object_kib: 64 }\n    ONEZONE_IA: { storage_gb_month: 0.01, put_per_1000: 0.01, get_per_1000: 0.001, retrieval_per_gb: 0.01, min_object_kib: 128, min_storage_days: 30 }\n`,
      'p.yaml',
    ).pricing!;
    expect(p.currency).toBe('EUR');
    expect(p.storageClass).toBe('STANDARD_IA');
    expect(p.sourceClass).toBe('STANDARD');
    expect(p.classes.STANDARD_IA).toEqual({ ...DEFAULT_PRICES.classes.STANDARD_IA, storageGbMonth: 0.0135, minObjectBytes: 64 * KIB });
    // A class of one's own: LIST defaults to its PUT price.
    expect(p.classes.ONEZONE_IA).toEqual({ storageGbMonth: 0.01, putPer1000: 0.01, getPer1000: 0.001, listPer1000: 0.01, retrievalPerGb: 0.01, minObjectBytes: 128 * KIB, minStorageDays: 30 });
    expect(p.classes.GLACIER_IR).toEqual(DEFAULT_PRICES.classes.GLACIER_IR);
    // Defaults are not changed by a policy's overrides.
    expect(DEFAULT_PRICES.classes.STANDARD_IA!.storageGbMonth).toBe(0.0125);
  });

  it('prices the repository in repository.storage_class unless pricing.storage_class says otherwise', () => {
    const cold = base.replace(/(url: [^\n]*\n)/, '$1  storage_class: DEEP_ARCHIVE\n');
    expect(cold).toContain('storage_class: DEEP_ARCHIVE');
    expect(parsePolicy(`${cold}pricing:\n  currency: EUR\n`, 'p.yaml').pricing!.storageClass).toBe('DEEP_ARCHIVE');
    expect(parsePolicy(`${cold}pricing:\n  storage_class: GLACIER_IR\n`, 'p.yaml').pricing!.storageClass).toBe('GLACIER_IR');
  });

  it('bills archive classes 40 KiB of metadata per object and keeps their minimum durations', () => {
    // 3 packs of 10 KiB (below the 40 KiB minimum) and one of 1 MiB, in DEEP_ARCHIVE.
    const packs = set(4, 3 * 10 * KIB + 1024 * KIB, 3, 3 * 10 * KIB);
    expect(billableBytes(packs, DEFAULT_PRICES.classes.DEEP_ARCHIVE!.minObjectBytes)).toBe(3 * 40 * KIB + 1024 * KIB);
    const e = estimateCost({ runs: [], packs, metadataObjects: 0, retained: set(0, 0), prices: withClass('DEEP_ARCHIVE'), now: NOW, runsPerDay: 1 });
    expect(e.lakeguard.billableBytes).toBe(3 * 40 * KIB + 1024 * KIB);
    expect(e.lakeguard.storagePerMonth).toBeCloseTo(((3 * 40 + 1024) / (1024 * 1024)) * 0.00099, 12);
    expect(DEFAULT_PRICES.classes.GLACIER).toMatchObject({ minObjectBytes: 40 * KIB, minStorageDays: 90 });
    expect(DEFAULT_PRICES.classes.DEEP_ARCHIVE).toMatchObject({ minObjectBytes: 40 * KIB, minStorageDays: 180 });
    expect(DEFAULT_PRICES.classes.STANDARD_IA).toMatchObject({ minObjectBytes: 128 * KIB, minStorageDays: 30 });
  });

  it('lets storage_class name a class the same policy defines', () => {
    const p = parsePolicy(`${base}pricing:\n  storage_class: MY_TIER\n  classes:\n    MY_TIER: { storage_gb_month: 0.002, put_per_1000: 0.05, get_per_1000: 0.02, retrieval_per_gb: 0.05 }\n`, 'p.yaml');
    expect(p.pricing!.storageClass).toBe('MY_TIER');
    expect(p.pricing!.classes.MY_TIER!.minObjectBytes).toBe(0);
  });

  it('rejects unknown fields, bad prices, unknown classes and incomplete new classes, naming file:line and field', () => {
    const text = `${base}pricing:
  currency: USD
  storage_clas: STANDARD
  source_class: ONEZONE_IA
  classes:
    STANDARD_IA: { storage_gb_month: -1, put_per_1000: "cheap", min_object_kib: 1.5 }
    GLACIER_IR: { storage: 0.004 }
    NEW_ONE: { storage_gb_month: 0.001 }
    standard: { storage_gb_month: 0.02 }
`;
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 10 problems
        policy.yaml:10:3 pricing.storage_clas: unknown key "storage_clas"; did you mean "storage_class"?
        policy.yaml:11:17 pricing.source_class: unknown storage class "ONEZONE_IA"; known: STANDARD, STANDARD_IA, GLACIER_IR, INTELLIGENT_TIERING, GLACIER, DEEP_ARCHIVE (define others under pricing.classes)
        policy.yaml:13:38 pricing.classes.STANDARD_IA.storage_gb_month: expected a price: a number of at least 0 such as 0.0125 (no currency sign), got -1
        policy.yaml:13:56 pricing.classes.STANDARD_IA.put_per_1000: expected a price: a number of at least 0 such as 0.0125 (no currency sign), got "cheap"
        policy.yaml:13:81 pricing.classes.STANDARD_IA.min_object_kib: expected a non-negative integer, got 1.5
        policy.yaml:14:19 pricing.classes.GLACIER_IR.storage: unknown key "storage"; allowed here: storage_gb_month, put_per_1000, get_per_1000, list_per_1000, retrieval_per_gb, min_object_kib, min_storage_days
        policy.yaml:15:5 pricing.classes.NEW_ONE.put_per_1000: required for a storage class lakeguard has no prices for, e.g. put_per_1000: 0.01
        policy.yaml:15:5 pricing.classes.NEW_ONE.get_per_1000: required for a storage class lakeguard has no prices for, e.g. get_per_1000: 0.01
        policy.yaml:15:5 pricing.classes.NEW_ONE.retrieval_per_gb: required for a storage class lakeguard has no prices for, e.g. retrieval_per_gb: 0.01
        policy.yaml:16:5 pricing.classes.standard: a storage class name is written in capitals as S3 spells it, such as STANDARD_IA or GLACIER_IR, got "standard""
    `);
  });

  it('rejects a pricing section that is not a map', () => {
    expect(errorOf(`${base}pricing: cheap\n`)).toMatch(/policy\.yaml:8:10 pricing: expected a map of currency, storage_class, source_class, classes, got "cheap"/);
  });
});
