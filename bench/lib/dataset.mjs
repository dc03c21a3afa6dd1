// A deterministic, seeded, lake-like data set: every key, size and byte is a pure function of
// (seed, scale, index), so the bench can re-create any object's body (to upload it, to change
// it, to revert a change, or to check a restore) without storing anything.
//
// Small objects (default 100,000 x scale), 1-64 KiB, log-uniform sizes (most lake files are
// small), spread over date-partitioned prefixes `table=<t>/dt=YYYY-MM-DD/part-NNNNN.<ext>`:
//   table=events    JSON lines          ~37 %
//   table=orders    CSV                 ~26 %
//   table=app_logs  log text            ~26 %
//   table=sessions  compressed binary   ~11 %  (incompressible)
// ~5 % of the objects of each table carry the exact body of an earlier object of the same
// table under their own key (re-ingested files).
// Large objects under `raw/exports/`: 256, 128 and 64 MiB at scale >= 1 (shrunk at scale < 1),
// built from 1 MiB segments (60 % log text, 40 % random) with long runs shared between them.
import { createCipheriv, createHash } from 'node:crypto';

// 2: the `sessions` files start with zstd's frame magic, as a real .zst file does (issue 19: a
// .zst without it is a broken format to anomaly detection, and flagged every seed of version 1).
export const GENERATOR_VERSION = 2;
export const DEFAULT_SMALL_OBJECTS = 100_000;
const DAYS = 60;
const KiB = 1024;
const MiB = 1024 * 1024;

export const TABLES = [
  { name: 'events', ext: 'json', kind: 'jsonl', weight: 37 },
  { name: 'orders', ext: 'csv', kind: 'csv', weight: 26 },
  { name: 'app_logs', ext: 'log', kind: 'log', weight: 26 },
  { name: 'sessions', ext: 'bin.zst', kind: 'random', weight: 11 },
];
const DUP_RATE = 0.05;

// --- PRNG -------------------------------------------------------------------------------

/** 32-bit integer hash (murmur3 finalizer) of several integers. */
export function mix(...xs) {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h ^= x >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Incompressible, deterministic bytes (AES-128-CTR keystream keyed by the seed). */
export function randomBytesFor(seed, n) {
  const key = createHash('sha256').update(`lakeguard-bench-random-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(n));
}

// --- text generators --------------------------------------------------------------------

const COUNTRIES = ['DE', 'FR', 'US', 'GB', 'NL', 'ES', 'IT', 'PL', 'SE', 'JP', 'BR', 'IN', 'CA', 'AU'];
const EVENTS = ['page_view', 'page_view', 'page_view', 'click', 'add_to_cart', 'search', 'checkout', 'login', 'logout', 'scroll'];
const PATHS = ['/', '/products', '/products/', '/cart', '/checkout', '/search', '/account', '/help/faq', '/blog/', '/category/'];
const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
];
const SKUS = 5000;
const CURRENCIES = ['EUR', 'USD', 'GBP', 'JPY', 'SEK', 'PLN'];
const STATUSES = ['created', 'paid', 'paid', 'shipped', 'shipped', 'delivered', 'cancelled', 'refunded'];
const LEVELS = ['INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'];
const SERVICES = ['api-gateway', 'checkout', 'catalog', 'search', 'auth', 'payments', 'inventory'];
const MESSAGES = [
  (r, n) => `GET /api/v1/items/${n(100000)} status=200 duration_ms=${n(400)}`,
  (r, n) => `POST /api/v1/orders status=${r() < 0.97 ? 201 : 500} duration_ms=${n(900)} items=${1 + n(8)}`,
  (r, n) => `cache miss key=item:${n(100000)} backend=redis-${n(4)} latency_us=${n(5000)}`,
  (r, n) => `user ${n(1000000)} authenticated via ${r() < 0.7 ? 'password' : 'sso'} session=${hex(r, 16)}`,
  (r, n) => `slow query table=orders rows=${n(50000)} elapsed_ms=${200 + n(3000)}`,
  (r, n) => `payment provider response code=${r() < 0.95 ? 'APPROVED' : 'DECLINED'} amount=${(n(50000) / 100).toFixed(2)}`,
  (r, n) => `retrying request attempt=${1 + n(3)} upstream=inventory-${n(6)}.internal:8080 reason=timeout`,
];

function hex(r, len) {
  let s = '';
  while (s.length < len) s += Math.floor(r() * 4294967296).toString(16).padStart(8, '0');
  return s.slice(0, len);
}

function isoTime(dayIndex, r) {
  const ms = Date.UTC(2026, 10, 1 + dayIndex) + Math.floor(r() * 86_400_000);
  return new Date(ms).toISOString();
}

/** Text of at least `size` bytes (ASCII), then cut to exactly `size`. */
function textBody(kind, size, r, dayIndex) {
  const n = (k) => Math.floor(r() * k);
  const parts = [];
  let len = 0;
  const push = (line) => {
    parts.push(line);
    len += line.length + 1;
  };
  if (kind === 'csv') push('order_id,customer_id,sku,quantity,unit_price,currency,created_at,status,channel');
  while (len < size) {
    if (kind === 'jsonl') {
      push(
        JSON.stringify({
          event_id: hex(r, 16),
          ts: isoTime(dayIndex, r),
          user_id: n(2_000_000),
          session_id: hex(r, 12),
          event: EVENTS[n(EVENTS.length)],
          path: PATHS[n(PATHS.length)] + (r() < 0.5 ? String(n(20000)) : ''),
          country: COUNTRIES[n(COUNTRIES.length)],
          duration_ms: n(3000),
          ua: AGENTS[n(AGENTS.length)],
        }),
      );
    } else if (kind === 'csv') {
      push(
        `${hex(r, 12)},${n(500000)},SKU-${String(n(SKUS)).padStart(5, '0')},${1 + n(5)},${(n(20000) / 100).toFixed(2)},${CURRENCIES[n(CURRENCIES.length)]},${isoTime(dayIndex, r)},${STATUSES[n(STATUSES.length)]},${r() < 0.6 ? 'web' : 'app'}`,
      );
    } else {
      push(`${isoTime(dayIndex, r)} ${LEVELS[n(LEVELS.length)].padEnd(5)} [${SERVICES[n(SERVICES.length)]}-${n(12)}] req=${hex(r, 8)} ${MESSAGES[n(MESSAGES.length)](r, n)}`);
    }
  }
  return Buffer.from(parts.join('\n') + '\n', 'latin1').subarray(0, size);
}

// --- the data set -------------------------------------------------------------------------

/**
 * One small object of the data set: `i` its index, `day` its partition, `dupOf` the index of
 * the object whose body it repeats (-1: its own body).
 * @typedef {{ i: number, key: string, size: number, kind: string, day: number, dupOf: number }} SmallObject
 */

/**
 * Describes the data set without generating any body: small objects (key, size, table kind,
 * dupOf) and large objects (key, size, segment list). Memory: ~100 bytes per object.
 */
export function describeDataset({ seed = 42, scale = 1 } = {}) {
  const count = Math.max(1, Math.round(DEFAULT_SMALL_OBJECTS * scale));
  const r = rng(mix(seed, 1));
  const totalWeight = TABLES.reduce((s, t) => s + t.weight, 0);
  /** @type {SmallObject[][]} */
  const perTable = TABLES.map(() => []);
  /** @type {SmallObject[]} */
  const small = [];
  for (let i = 0; i < count; i++) {
    let w = r() * totalWeight;
    let t = 0;
    while (w >= TABLES[t].weight) w -= TABLES[t++].weight;
    const table = TABLES[t];
    const j = perTable[t].length;
    const day = j % DAYS;
    const part = Math.floor(j / DAYS);
    const dt = new Date(Date.UTC(2026, 10, 1 + day)).toISOString().slice(0, 10);
    const key = `table=${table.name}/dt=${dt}/part-${String(part).padStart(5, '0')}.${table.ext}`;
    const size = Math.round(KiB * Math.pow(64, r()));
    const dupRoll = r();
    const dupPick = r();
    const entry = { i, key, size, kind: table.kind, day, dupOf: -1 };
    if (j > 0 && dupRoll < DUP_RATE) {
      const src = perTable[t][Math.floor(dupPick * j)];
      entry.dupOf = src.dupOf >= 0 ? src.dupOf : src.i;
      entry.size = small[entry.dupOf].size;
    }
    perTable[t].push(entry);
    small.push(entry);
  }
  // Large objects: segment ids, one segment = segSize bytes. Runs shared between objects.
  const factor = Math.min(1, Math.max(scale, 1 / 64));
  const segSize = Math.max(16 * KiB, Math.round(MiB * factor));
  const range = (from, n) => Array.from({ length: n }, (_, k) => from + k);
  const large = [
    { key: 'raw/exports/snapshot-a.bin', segments: range(0, 256) }, // A0..A255
    { key: 'raw/exports/snapshot-b.bin', segments: [...range(128, 64), ...range(1000, 64)] }, // shares A128..A191 with a
    { key: 'raw/exports/snapshot-c.bin', segments: [...range(1032, 32), ...range(2000, 32)] }, // shares B-new 1032..1063 with b
  ].map((o) => ({ ...o, size: o.segments.length * segSize, segSize }));
  const smallBytes = small.reduce((s, e) => s + e.size, 0);
  const largeBytes = large.reduce((s, e) => s + e.size, 0);
  const tables = TABLES.map((t) => `table=${t.name}/`);
  return { seed, scale, version: GENERATOR_VERSION, small, large, smallBytes, largeBytes, tables, days: DAYS };
}

/** The first four bytes of every zstd frame: the `sessions` table's files are named `.bin.zst`. */
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** The body of a small object; `version` > 0 gives the changed content of the mutation step. */
export function smallBody(ds, entry, version = 0) {
  const src = version === 0 && entry.dupOf >= 0 ? ds.small[entry.dupOf] : entry;
  const s = mix(ds.seed, 2, src.i, version);
  if (src.kind === 'random') {
    const body = randomBytesFor(s, src.size);
    ZSTD_MAGIC.copy(body, 0, 0, Math.min(4, body.length));
    return body;
  }
  return textBody(src.kind, src.size, rng(s), src.day);
}

function segment(ds, id, segSize) {
  const s = mix(ds.seed, 3, id);
  return rng(s)() < 0.6 ? textBody('log', segSize, rng(s ^ 0x5bd1e995), id % DAYS) : randomBytesFor(s, segSize);
}

export function largeBody(ds, entry) {
  return Buffer.concat(entry.segments.map((id) => segment(ds, id, entry.segSize)));
}

/**
 * The mutation of the "1 % changed, 0.5 % deleted" scenario: disjoint, deterministic key sets
 * (small objects only).
 */
export function mutationPlan(ds) {
  const r = rng(mix(ds.seed, 4));
  const n = ds.small.length;
  const changed = [];
  const deleted = [];
  const taken = new Set();
  const pick = (want, into) => {
    while (into.length < want && taken.size < n) {
      const i = Math.floor(r() * n);
      if (taken.has(i)) continue;
      taken.add(i);
      into.push(ds.small[i]);
    }
  };
  pick(Math.max(1, Math.round(n * 0.01)), changed);
  pick(Math.max(1, Math.round(n * 0.005)), deleted);
  return { changed, deleted };
}
