/**
 * The cost model behind `lakeguard cost`: pure arithmetic on measured quantities and a price
 * table, no I/O. It compares what the repository costs (packs in one storage class, plus the
 * requests the runs made) with copying the same retained versions object by object into the
 * same class (one COPY per new or changed object, every version billed at the class's minimum
 * object size or more). README "Cost" states every formula and what is left out.
 */
import type { ObjectSet, RunUsage } from '../catalog/cost-usage.js';
import type { RunCounters } from '../catalog/types.js';
import type { ClassPrices, PriceTable } from '../policy/pricing.js';

export const GIB = 1024 ** 3;
export const DAY_MS = 86_400_000;
/** Monthly figures are for a 30-day month. */
export const MONTH_DAYS = 30;

export interface Requests {
  put: number;
  /** GET and HEAD (priced alike). */
  get: number;
  list: number;
}

/** How often the group runs: observed in the catalog, or given. */
export interface Schedule {
  runsPerDay: number;
  runsPerMonth: number;
  /** `observed`: runs started in the window / its days; `given`: --runs-per-day. */
  basis: 'observed' | 'given';
  windowDays: number;
  runsInWindow: number;
}

export interface SideCost {
  /** Objects stored (lakeguard: packs, index files and manifests; copy: one per retained version). */
  objects: number;
  bytes: number;
  /** Bytes as billed: every object smaller than the class minimum counts as the minimum. */
  billableBytes: number;
  gbMonths: number;
  storagePerMonth: number;
  /** Requests of an average incremental run, times runs per month. */
  requestsPerMonth: Requests;
  requestCostPerMonth: number;
  totalPerMonth: number;
  /** The group's first full copy, paid once. */
  firstCopy: Requests & { cost: number };
}

export interface CostEstimate {
  currency: string;
  storageClass: string;
  sourceClass: string;
  basis: string;
  schedule: Schedule;
  /** Runs whose requests were averaged for the monthly figure (0: no incremental run yet). */
  runsAveraged: number;
  lakeguard: SideCost;
  copy: SideCost;
  /** copy − lakeguard, per month. */
  savingsPerMonth: number;
}

/** Objects as billed: those below the minimum size are billed as the minimum. */
export function billableBytes(set: ObjectSet, minObjectBytes: number): number {
  if (minObjectBytes === 0) return set.bytes;
  return set.bytes - set.smallBytes + set.smallObjects * minObjectBytes;
}

/**
 * Runs per day over the last 30 days, or since the group's first run when that is more recent
 * (at least one day, so a group created an hour ago is not extrapolated from minutes).
 */
export function observeSchedule(starts: readonly number[], now: number, runsPerDay?: number): Schedule {
  if (runsPerDay !== undefined) return { runsPerDay, runsPerMonth: runsPerDay * MONTH_DAYS, basis: 'given', windowDays: 0, runsInWindow: 0 };
  const first = starts.length === 0 ? now : Math.min(...starts);
  const windowStart = Math.max(now - MONTH_DAYS * DAY_MS, first);
  const windowDays = Math.max(1, (now - windowStart) / DAY_MS);
  const runsInWindow = starts.filter((s) => s >= windowStart && s <= now).length;
  const perDay = runsInWindow / windowDays;
  return { runsPerDay: perDay, runsPerMonth: perDay * MONTH_DAYS, basis: 'observed', windowDays, runsInWindow };
}

/** What a run asked of S3, as lakeguard did it. DELETE requests are free and left out. */
export function lakeguardRequests(c: RunCounters): Requests {
  return { put: c.requests.put, get: c.requests.get + c.requests.head, list: c.requests.list };
}

/**
 * The same run as an object-by-object copy: one server-side COPY (billed as a PUT of the
 * target class) per new or changed object version, the same source listing, no GET.
 */
export function copyRequests(c: RunCounters): Requests {
  return { put: c.objectsNew + c.objectsChanged, get: 0, list: c.requests.list };
}

/** PUTs at the target class; LIST, GET and HEAD at the source's (nearly all of them hit the source). */
export function requestCost(r: Requests, target: ClassPrices, source: ClassPrices): number {
  return (r.put * target.putPer1000 + r.get * source.getPer1000 + r.list * source.listPer1000) / 1000;
}

/** A first full copy: the group's oldest run when nothing was there before it. */
export function isFirstFullCopy(run: RunUsage, index: number): boolean {
  return index === 0 && run.counters !== null && run.counters.objectsUnchanged === 0;
}

export interface CostInputs {
  runs: readonly RunUsage[];
  /** The repository's objects for this scope: packs, plus index files and manifests (size unknown, counted at 0 bytes). */
  packs: ObjectSet;
  metadataObjects: number;
  /** Retained object versions (delete markers apart): what a copy would store. */
  retained: ObjectSet;
  prices: PriceTable;
  now: number;
  runsPerDay?: number;
}

export function estimateCost(inputs: CostInputs): CostEstimate {
  const { prices, runs } = inputs;
  const target = classPrices(prices, prices.storageClass);
  const source = classPrices(prices, prices.sourceClass);
  const schedule = observeSchedule(
    runs.map((r) => r.started),
    inputs.now,
    inputs.runsPerDay,
  );

  // Requests per month: the average incremental run (of the window, else of all), times runs per month.
  const first = runs.length > 0 && isFirstFullCopy(runs[0]!, 0) ? runs[0] : undefined;
  const incremental = runs.filter((r) => r !== first && r.counters !== null);
  const windowStart = inputs.now - MONTH_DAYS * DAY_MS;
  const recent = incremental.filter((r) => r.started >= windowStart);
  const averaged = recent.length > 0 ? recent : incremental;
  const monthly = (of: (c: RunCounters) => Requests): Requests => {
    const sum = averaged.reduce((acc, r) => add(acc, of(r.counters!)), zero());
    return averaged.length === 0 ? zero() : scale(sum, schedule.runsPerMonth / averaged.length);
  };
  const once = (of: (c: RunCounters) => Requests): Requests & { cost: number } => {
    const r = first === undefined ? zero() : of(first.counters!);
    return { ...r, cost: requestCost(r, target, source) };
  };

  const side = (stored: { objects: number; bytes: number; billable: number }, perMonth: Requests, firstCopy: Requests & { cost: number }): SideCost => {
    const gbMonths = stored.billable / GIB;
    const storagePerMonth = gbMonths * target.storageGbMonth;
    const requestCostPerMonth = requestCost(perMonth, target, source);
    return {
      objects: stored.objects,
      bytes: stored.bytes,
      billableBytes: stored.billable,
      gbMonths,
      storagePerMonth,
      requestsPerMonth: perMonth,
      requestCostPerMonth,
      totalPerMonth: storagePerMonth + requestCostPerMonth,
      firstCopy,
    };
  };

  const min = target.minObjectBytes;
  const lakeguard = side(
    {
      objects: inputs.packs.objects + inputs.metadataObjects,
      bytes: inputs.packs.bytes,
      billable: billableBytes(inputs.packs, min) + inputs.metadataObjects * min,
    },
    monthly(lakeguardRequests),
    once(lakeguardRequests),
  );
  const copy = side(
    { objects: inputs.retained.objects, bytes: inputs.retained.bytes, billable: billableBytes(inputs.retained, min) },
    monthly(copyRequests),
    once(copyRequests),
  );
  return {
    currency: prices.currency,
    storageClass: prices.storageClass,
    sourceClass: prices.sourceClass,
    basis: prices.basis,
    schedule,
    runsAveraged: averaged.length,
    lakeguard,
    copy,
    savingsPerMonth: copy.totalPerMonth - lakeguard.totalPerMonth,
  };
}

/**
 * Several groups together: storage from the whole repository (every pack, also shared or
 * orphaned ones, counted once) and every retained version; requests as the groups' sum.
 */
export function combineEstimates(
  groups: readonly CostEstimate[],
  stored: { packs: ObjectSet; metadataObjects: number; retained: ObjectSet },
  prices: PriceTable,
  now: number,
): CostEstimate {
  const base = estimateCost({ runs: [], ...stored, prices, now, runsPerDay: 0 });
  const sum = (pick: (e: CostEstimate) => SideCost, key: 'lakeguard' | 'copy'): SideCost => {
    const side = base[key];
    const perMonth = groups.reduce((acc, g) => add(acc, pick(g).requestsPerMonth), zero());
    const firstCopy = groups.reduce((acc, g) => ({ ...add(acc, pick(g).firstCopy), cost: acc.cost + pick(g).firstCopy.cost }), { ...zero(), cost: 0 });
    const requestCostPerMonth = groups.reduce((acc, g) => acc + pick(g).requestCostPerMonth, 0);
    return { ...side, requestsPerMonth: perMonth, requestCostPerMonth, totalPerMonth: side.storagePerMonth + requestCostPerMonth, firstCopy };
  };
  const lakeguard = sum((e) => e.lakeguard, 'lakeguard');
  const copy = sum((e) => e.copy, 'copy');
  const runsPerDay = groups.reduce((acc, g) => acc + g.schedule.runsPerDay, 0);
  return {
    ...base,
    schedule: { runsPerDay, runsPerMonth: runsPerDay * MONTH_DAYS, basis: groups.every((g) => g.schedule.basis === 'given') && groups.length > 0 ? 'given' : 'observed', windowDays: Math.max(0, ...groups.map((g) => g.schedule.windowDays)), runsInWindow: groups.reduce((acc, g) => acc + g.schedule.runsInWindow, 0) },
    runsAveraged: groups.reduce((acc, g) => acc + g.runsAveraged, 0),
    lakeguard,
    copy,
    savingsPerMonth: copy.totalPerMonth - lakeguard.totalPerMonth,
  };
}

export function classPrices(prices: PriceTable, name: string): ClassPrices {
  const found = prices.classes[name];
  if (found === undefined) throw new Error(`no prices for storage class ${name}`);
  return found;
}

/** Objects per pack of a run: new or changed object versions over packs written (null without packs). */
export function objectsPerPack(c: RunCounters): number | null {
  return c.packsWritten === 0 ? null : (c.objectsNew + c.objectsChanged) / c.packsWritten;
}

function zero(): Requests {
  return { put: 0, get: 0, list: 0 };
}

function add(a: Requests, b: Requests): Requests {
  return { put: a.put + b.put, get: a.get + b.get, list: a.list + b.list };
}

function scale(a: Requests, k: number): Requests {
  return { put: a.put * k, get: a.get * k, list: a.list * k };
}
