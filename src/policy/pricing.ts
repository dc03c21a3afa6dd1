/**
 * The price table `lakeguard cost` uses, and the validation of the policy's optional
 * `pricing:` section. Defaults are AWS list prices for us-east-1 (see README, "Cost"); a
 * policy overrides any figure, per storage class, or defines a class of its own.
 */
import { isMap, isScalar } from 'yaml';
import type { Checker, Field } from './yaml-check.js';

/** Prices of one storage class, in `currency`. */
export interface ClassPrices {
  storageGbMonth: number;
  putPer1000: number;
  getPer1000: number;
  /** LIST is billed like PUT in every class AWS lists; kept apart so a policy can say otherwise. */
  listPer1000: number;
  retrievalPerGb: number;
  /** Objects smaller than this are billed as this size (128 KiB for Standard-IA and Glacier IR). */
  minObjectBytes: number;
  /** Objects deleted earlier are billed for the rest of it (not modelled by `cost`, only shown). */
  minStorageDays: number;
}

export interface PriceTable {
  currency: string;
  /** Class of the repository (lakeguard's packs) and of the object-by-object copy it is compared with. */
  storageClass: string;
  /** Class of the source buckets: their LIST, GET and HEAD requests are priced at it. */
  sourceClass: string;
  classes: Readonly<Record<string, ClassPrices>>;
  /** Where the figures come from, printed with every report. */
  basis: string;
}

const KIB = 1024;

export const DEFAULT_PRICES: PriceTable = {
  currency: 'USD',
  storageClass: 'STANDARD',
  sourceClass: 'STANDARD',
  basis: 'AWS S3 list prices, us-east-1, first 50 TB tier (aws.amazon.com/s3/pricing, checked 2026-11)',
  classes: {
    STANDARD: { storageGbMonth: 0.023, putPer1000: 0.005, getPer1000: 0.0004, listPer1000: 0.005, retrievalPerGb: 0, minObjectBytes: 0, minStorageDays: 0 },
    STANDARD_IA: { storageGbMonth: 0.0125, putPer1000: 0.01, getPer1000: 0.001, listPer1000: 0.01, retrievalPerGb: 0.01, minObjectBytes: 128 * KIB, minStorageDays: 30 },
    GLACIER_IR: { storageGbMonth: 0.004, putPer1000: 0.02, getPer1000: 0.01, listPer1000: 0.02, retrievalPerGb: 0.03, minObjectBytes: 128 * KIB, minStorageDays: 90 },
    // Objects under 128 KiB are not moved to cheaper tiers; the monitoring fee is not modelled.
    INTELLIGENT_TIERING: { storageGbMonth: 0.023, putPer1000: 0.005, getPer1000: 0.0004, listPer1000: 0.005, retrievalPerGb: 0, minObjectBytes: 0, minStorageDays: 0 },
    // Archive classes: each object carries 40 KiB of billed metadata (32 KiB at the class's
    // rate, 8 KiB at STANDARD's), modelled as a 40 KiB minimum; GET and retrieval are for
    // standard-tier restores (RestoreObject), which a restore of archived packs needs first.
    GLACIER: { storageGbMonth: 0.0036, putPer1000: 0.03, getPer1000: 0.05, listPer1000: 0.03, retrievalPerGb: 0.01, minObjectBytes: 40 * KIB, minStorageDays: 90 },
    DEEP_ARCHIVE: { storageGbMonth: 0.00099, putPer1000: 0.05, getPer1000: 0.1, listPer1000: 0.05, retrievalPerGb: 0.02, minObjectBytes: 40 * KIB, minStorageDays: 180 },
  },
};

// ---- validation of `pricing:` ----------------------------------------------------------------

const PRICING_KEYS = ['currency', 'storage_class', 'source_class', 'classes'] as const;
const CLASS_KEYS = ['storage_gb_month', 'put_per_1000', 'get_per_1000', 'list_per_1000', 'retrieval_per_gb', 'min_object_kib', 'min_storage_days'] as const;
const CLASS_NAME = /^[A-Z][A-Z0-9_]{0,39}$/;

/**
 * Validates `pricing:` and returns the full table (defaults filled in), or undefined after
 * reporting problems. `repositoryClass` (the policy's `repository.storage_class`) is the
 * repository's class when `pricing.storage_class` does not say otherwise.
 */
export function checkPricing(c: Checker, f: Field, repositoryClass?: string): PriceTable | undefined {
  const m = c.map(f, PRICING_KEYS, `a map of ${PRICING_KEYS.join(', ')}`);
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const classes: Record<string, ClassPrices> = { ...DEFAULT_PRICES.classes };

  const classesField = m.get('classes');
  if (classesField !== undefined) checkClasses(c, classesField, classes);

  const currency = readField(m, 'currency', (x) => {
    const value = c.string(x, 'a currency label such as USD or EUR');
    if (value === undefined || /^[A-Za-z$€£¥]{1,8}$/.test(value)) return value;
    c.report(x, `expected a currency label such as USD (1-8 letters), got ${JSON.stringify(value)}`);
    return undefined;
  });
  const className = (x: Field): string | undefined => {
    const value = c.string(x, 'a storage class name such as STANDARD_IA');
    if (value === undefined) return undefined;
    if (classes[value] !== undefined) return value;
    c.report(x, `unknown storage class ${JSON.stringify(value)}; known: ${Object.keys(classes).join(', ')} (define others under pricing.classes)`);
    return undefined;
  };
  const storageClass = readField(m, 'storage_class', className);
  const sourceClass = readField(m, 'source_class', className);
  if (c.problems.length > before) return undefined;
  return {
    currency: currency ?? DEFAULT_PRICES.currency,
    storageClass: storageClass ?? repositoryClass ?? DEFAULT_PRICES.storageClass,
    sourceClass: sourceClass ?? DEFAULT_PRICES.sourceClass,
    classes,
    basis: classesField === undefined ? DEFAULT_PRICES.basis : `${DEFAULT_PRICES.basis}, with overrides from the policy`,
  };
}

/** `classes:` maps class names (ours to override, or new ones) to prices; a new class must give every price. */
function checkClasses(c: Checker, f: Field, classes: Record<string, ClassPrices>): void {
  if (!isMap(f.node)) {
    c.report(f, `expected a map of storage class names (${Object.keys(DEFAULT_PRICES.classes).join(', ')} or your own) to prices, got ${describeValue(f.node)}`);
    return;
  }
  const seen = new Set<string>();
  for (const pair of f.node.items) {
    const keyNode: unknown = pair.key;
    const keyOffset = isScalar(keyNode) ? (keyNode.range?.[0] ?? f.offset) : f.offset;
    const name = isScalar(keyNode) && typeof keyNode.value === 'string' ? keyNode.value : undefined;
    const path = `${f.path}.${String(name ?? '?')}`;
    if (name === undefined || !CLASS_NAME.test(name)) {
      c.reportAt(keyOffset, path, `a storage class name is written in capitals as S3 spells it, such as STANDARD_IA or GLACIER_IR, got ${isScalar(keyNode) ? JSON.stringify(keyNode.value) : 'something else'}`);
      continue;
    }
    if (seen.has(name)) {
      c.reportAt(keyOffset, path, `duplicate storage class "${name}"; keep one`);
      continue;
    }
    seen.add(name);
    const value = c.field(pair.value, path, keyOffset);
    if (value === undefined) continue;
    const prices = checkClassPrices(c, value, classes[name]);
    if (prices !== undefined) classes[name] = prices;
  }
}

function checkClassPrices(c: Checker, f: Field, base: ClassPrices | undefined): ClassPrices | undefined {
  const m = c.map(f, CLASS_KEYS, `a map of ${CLASS_KEYS.join(', ')}`);
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const price = (key: (typeof CLASS_KEYS)[number]): number | undefined => readField(m, key, (x) => checkPrice(c, x));
  const whole = (key: (typeof CLASS_KEYS)[number]): number | undefined => readField(m, key, (x) => c.integer(x, 0));
  const given = {
    storageGbMonth: price('storage_gb_month'),
    putPer1000: price('put_per_1000'),
    getPer1000: price('get_per_1000'),
    listPer1000: price('list_per_1000'),
    retrievalPerGb: price('retrieval_per_gb'),
    minObjectBytes: mapDefined(whole('min_object_kib'), (kib) => kib * KIB),
    minStorageDays: whole('min_storage_days'),
  };
  if (base === undefined) {
    // A class of one's own: every price is needed (sizes and durations default to none).
    for (const key of ['storage_gb_month', 'put_per_1000', 'get_per_1000', 'retrieval_per_gb'] as const) {
      if (!m.has(key)) c.reportAt(f.keyOffset, `${f.path}.${key}`, `required for a storage class lakeguard has no prices for, e.g. ${key}: 0.01`);
    }
  }
  if (c.problems.length > before) return undefined;
  const defaults = base ?? { storageGbMonth: 0, putPer1000: 0, getPer1000: 0, listPer1000: given.putPer1000 ?? 0, retrievalPerGb: 0, minObjectBytes: 0, minStorageDays: 0 };
  const out: ClassPrices = { ...defaults };
  for (const [key, value] of Object.entries(given) as [keyof ClassPrices, number | undefined][]) if (value !== undefined) out[key] = value;
  return out;
}

function checkPrice(c: Checker, f: Field): number | undefined {
  const value = isScalar(f.node) ? f.node.value : undefined;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0 && value < 1e6) return value;
  c.report(f, `expected a price: a number of at least 0 such as 0.0125 (no currency sign), got ${describeValue(f.node)}`);
  return undefined;
}

function mapDefined<T, U>(value: T | undefined, fn: (v: T) => U): U | undefined {
  return value === undefined ? undefined : fn(value);
}

function readField<T>(m: Map<string, Field>, key: string, check: (f: Field) => T | undefined): T | undefined {
  const f = m.get(key);
  return f === undefined ? undefined : check(f);
}

function describeValue(node: unknown): string {
  if (isScalar(node)) return node.value === null || node.value === undefined ? 'nothing' : JSON.stringify(node.value);
  return isMap(node) ? 'a map' : 'a list or something else';
}
