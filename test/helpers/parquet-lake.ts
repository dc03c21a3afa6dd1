// A realistic Hive-partitioned Parquet lake for incident-response tests and the benchmark
// (issue 19): Parquet files written by a real writer (hyparquet-writer), read back by a real
// reader (hyparquet), in the layout Spark, Hive and Athena use, with the side files real lakes
// carry (`_SUCCESS` markers, a JSON schema file, a CSV lookup table). Everything is a pure
// function of the seed: the model (LakeModel) plans each change without touching S3, so the
// generator has unit tests of its own, and the S3 half (createLake, ordinaryDay, incident)
// only writes what the model planned.
//
//   sales/date=2026-11-01/region=eu/part-00000.parquet     two levels, a few files per region
//   events/date=2026-11-01/part-00000.parquet              one level, many small streaming files
//   sales/date=2026-11-01/_SUCCESS                         empty marker of a finished partition
//   sales/_schema.json, reference/regions.csv              side files nobody rewrites
import { createCipheriv, createHash } from 'node:crypto';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import pLimit from 'p-limit';

/** What one object of the lake is: its bytes and what S3 keeps beside them. */
export interface LakeFile {
  body: Buffer;
  contentType: string;
  /** User metadata (x-amz-meta-*), as a writer job sets it. */
  metadata: Record<string, string>;
  /** Rows of a Parquet file (0 for side files and garbage). */
  rows: number;
}

/** One step's writes and deletes, in the order a job would make them. */
export interface LakeChanges {
  puts: Map<string, LakeFile>;
  deletes: string[];
}

/** What an ordinary day did (all keys are Parquet files unless said otherwise). */
export interface OrdinaryDayReport extends LakeChanges {
  date: string;
  /** Files of the new date partition (Parquet and its `_SUCCESS` markers). */
  added: string[];
  /** Existing Parquet files rewritten with new, valid Parquet (late data, a GDPR delete). */
  rewritten: string[];
  /** Yesterday's small streaming files merged into one larger file. */
  compaction: { partition: string; deleted: string[]; written: string };
}

/** What the incident did. */
export interface IncidentReport extends LakeChanges {
  /** Parquet files overwritten with random bytes of the same size. */
  overwritten: string[];
  /** Parquet files deleted. */
  deleted: string[];
  /** Ransom notes written (new keys). */
  notes: string[];
}

export interface LakeOptions {
  seed: number;
  /** Date partitions at the start (2026-11-01 onwards). Default 7. */
  days?: number;
  /** Regions of the sales table (its second partition level). Default eu, us, apac, latam. */
  regions?: string[];
  /** Sales files per (date, region): between 1 and this. Default 8. */
  salesFilesMax?: number;
  /** Streaming files per events date partition: between 6 and this. Default 14. */
  eventsFilesMax?: number;
}

export const PARQUET_CONTENT_TYPE = 'application/vnd.apache.parquet';
export const RANSOM_NOTE_NAME = 'HOW_TO_DECRYPT.txt';
const FIRST_DAY = Date.UTC(2026, 10, 1);
const DAY_MS = 86_400_000;
const CREATED_BY = 'lakeguard-test-lake (hyparquet-writer 0.17)';

// --- deterministic randomness --------------------------------------------------------------

/** mulberry32: a small seeded PRNG of floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Incompressible bytes that look like a cipher's output, a pure function of (seed, label). */
export function garbageBytes(seed: number, label: string, n: number): Buffer {
  const key = createHash('sha256').update(`lake-garbage-${seed}-${label}`).digest();
  return createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32)).update(Buffer.alloc(n));
}

const int = (rand: () => number, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
/** Log-uniform integer in [lo, hi]: most files small, a few large, as in real lakes. */
const logUniform = (rand: () => number, lo: number, hi: number): number => Math.round(Math.exp(Math.log(lo) + rand() * (Math.log(hi) - Math.log(lo))));

function shuffled<T>(rand: () => number, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A child seed for one purpose, so that adding a step never shifts another step's data. */
function subSeed(seed: number, ...parts: (string | number)[]): number {
  return createHash('sha256').update(`${seed}/${parts.join('/')}`).digest().readUInt32LE(0);
}

export function dateOf(day: number): string {
  return new Date(FIRST_DAY + day * DAY_MS).toISOString().slice(0, 10);
}

// --- Parquet files ------------------------------------------------------------------------

const CURRENCIES = ['EUR', 'USD', 'GBP', 'JPY', 'BRL', 'AUD'];
const CHANNELS = ['web', 'app', 'store', 'partner'];
const EVENT_TYPES = ['page_view', 'page_view', 'page_view', 'click', 'add_to_cart', 'search', 'checkout', 'login'];
const PAGES = ['/', '/products', '/cart', '/checkout', '/search', '/account', '/help/faq', '/blog/launch'];

/** A sales file: typed columns as an order pipeline writes them (ids, timestamps, amounts, strings). */
function salesParquet(seed: number, date: string, region: string, rows: number): Buffer {
  const rand = seededRandom(seed);
  const dayStart = Date.parse(`${date}T00:00:00Z`);
  const ts: Date[] = [];
  for (let i = 0, t = dayStart; i < rows; i++) ts.push(new Date((t += int(rand, 1, Math.max(2, Math.floor(DAY_MS / rows))))));
  const base = BigInt(seed) * 1_000_000n;
  return Buffer.from(
    parquetWriteBuffer({
      createdBy: CREATED_BY,
      columnData: [
        { name: 'order_id', type: 'INT64', data: Array.from({ length: rows }, (_, i) => base + BigInt(i)) },
        { name: 'ordered_at', type: 'TIMESTAMP', data: ts },
        { name: 'customer_id', type: 'INT32', data: Array.from({ length: rows }, () => int(rand, 1, 250_000)) },
        { name: 'sku', type: 'STRING', data: Array.from({ length: rows }, () => `SKU-${String(int(rand, 1, 9999)).padStart(5, '0')}`) },
        { name: 'quantity', type: 'INT32', data: Array.from({ length: rows }, () => int(rand, 1, 12)) },
        { name: 'amount', type: 'DOUBLE', data: Array.from({ length: rows }, () => Math.round(rand() * 50_000) / 100) },
        { name: 'currency', type: 'STRING', data: Array.from({ length: rows }, () => pick(rand, CURRENCIES)) },
        { name: 'channel', type: 'STRING', data: Array.from({ length: rows }, () => pick(rand, CHANNELS)) },
        { name: 'region', type: 'STRING', data: Array.from({ length: rows }, () => region) },
      ],
    }),
  );
}

/** An events file: clickstream rows with a hex event id, as a streaming job flushes them. */
function eventsRows(seed: number, date: string, rows: number): Record<string, unknown[]> {
  const rand = seededRandom(seed);
  const dayStart = Date.parse(`${date}T00:00:00Z`);
  const cols: Record<string, unknown[]> = { event_id: [], event_time: [], user_id: [], event_type: [], page: [], duration_ms: [] };
  for (let i = 0; i < rows; i++) {
    cols.event_id!.push(createHash('md5').update(`${seed}:${i}`).digest('hex'));
    cols.event_time!.push(new Date(dayStart + int(rand, 0, DAY_MS - 1)));
    cols.user_id!.push(BigInt(int(rand, 1, 5_000_000)));
    cols.event_type!.push(pick(rand, EVENT_TYPES));
    cols.page!.push(pick(rand, PAGES));
    cols.duration_ms!.push(int(rand, 5, 120_000));
  }
  return cols;
}

const EVENTS_TYPES = { event_id: 'STRING', event_time: 'TIMESTAMP', user_id: 'INT64', event_type: 'STRING', page: 'STRING', duration_ms: 'INT32' } as const;

function eventsParquet(cols: Record<string, unknown[]>): Buffer {
  return Buffer.from(
    parquetWriteBuffer({
      createdBy: CREATED_BY,
      columnData: Object.entries(EVENTS_TYPES).map(([name, type]) => ({ name, type, data: cols[name]! as never[] })),
    }),
  );
}

function parquetFile(body: Buffer, rows: number, job: string): LakeFile {
  return { body, contentType: PARQUET_CONTENT_TYPE, metadata: { 'written-by': job, rows: String(rows) }, rows };
}

const SCHEMA_JSON = JSON.stringify(
  {
    table: 'sales',
    partitioning: ['date', 'region'],
    columns: { order_id: 'bigint', ordered_at: 'timestamp', customer_id: 'int', sku: 'string', quantity: 'int', amount: 'double', currency: 'string', channel: 'string', region: 'string' },
  },
  null,
  2,
);

const RANSOM_NOTE = `ALL YOUR FILES HAVE BEEN ENCRYPTED
Your data lake was encrypted with military grade cryptography. Deleted partitions are in our hands.
To get the decryption key, send 2 BTC to the wallet below and mail your ID to the address below.
Do not try to restore from backups: we will publish your data.
`;

// --- the model ----------------------------------------------------------------------------

/**
 * The lake as it should be in the bucket: every key with its bytes, content type and metadata.
 * Each plan method changes the model and returns the changes, which the S3 half applies.
 */
export class LakeModel {
  readonly files = new Map<string, LakeFile>();
  /** Date partitions written so far (the next ordinary day adds `dateOf(days)`). */
  days = 0;
  /** Ordinary days so far (each one's choices come from its own seed). */
  private ordinaryDays = 0;
  private incidents = 0;
  readonly seed: number;
  private readonly regions: string[];
  private readonly salesFilesMax: number;
  private readonly eventsFilesMax: number;

  private constructor(opts: LakeOptions) {
    this.seed = opts.seed;
    this.regions = opts.regions ?? ['eu', 'us', 'apac', 'latam'];
    this.salesFilesMax = opts.salesFilesMax ?? 8;
    this.eventsFilesMax = opts.eventsFilesMax ?? 14;
  }

  /** The lake after `days` date partitions were written, plus its side files. */
  static generate(opts: LakeOptions): LakeModel {
    const lake = new LakeModel(opts);
    lake.files.set('sales/_schema.json', { body: Buffer.from(SCHEMA_JSON), contentType: 'application/json', metadata: {}, rows: 0 });
    lake.files.set('reference/regions.csv', {
      body: Buffer.from(`region,name,currency\n${lake.regions.map((r, i) => `${r},Region ${r.toUpperCase()},${CURRENCIES[i % CURRENCIES.length]}`).join('\n')}\n`),
      contentType: 'text/csv',
      metadata: {},
      rows: 0,
    });
    for (let d = 0; d < (opts.days ?? 7); d++) for (const [key, file] of lake.datePartition(d)) lake.files.set(key, file);
    lake.days = opts.days ?? 7;
    return lake;
  }

  /** Keys of the Parquet files, sorted. */
  parquetKeys(): string[] {
    return [...this.files.keys()].filter((k) => k.endsWith('.parquet')).sort();
  }

  /** Total rows of the Parquet files under a prefix, as the model wrote them. */
  rowsUnder(prefix = ''): number {
    let n = 0;
    for (const [k, f] of this.files) if (k.startsWith(prefix)) n += f.rows;
    return n;
  }

  /** The files of one day's partitions: sales by region, events as many small streaming files. */
  private datePartition(day: number): Map<string, LakeFile> {
    const date = dateOf(day);
    const out = new Map<string, LakeFile>();
    const rand = seededRandom(subSeed(this.seed, 'partition', day));
    for (const region of this.regions) {
      const files = int(rand, 1, this.salesFilesMax);
      for (let i = 0; i < files; i++) {
        // One file in ten is a big batch (up to ~250 KiB); the rest a few KiB to ~60 KiB.
        const rows = rand() < 0.1 ? logUniform(rand, 6_000, 15_000) : logUniform(rand, 150, 4_000);
        const body = salesParquet(subSeed(this.seed, 'sales', day, region, i), date, region, rows);
        out.set(`sales/date=${date}/region=${region}/part-${String(i).padStart(5, '0')}.parquet`, parquetFile(body, rows, 'orders-etl'));
      }
    }
    out.set(`sales/date=${date}/_SUCCESS`, { body: Buffer.alloc(0), contentType: 'application/octet-stream', metadata: {}, rows: 0 });
    const streamed = int(rand, 6, this.eventsFilesMax);
    for (let i = 0; i < streamed; i++) {
      const rows = logUniform(rand, 80, 700);
      const body = eventsParquet(eventsRows(subSeed(this.seed, 'events', day, i), date, rows));
      out.set(`events/date=${date}/part-${String(i).padStart(5, '0')}.parquet`, parquetFile(body, rows, 'clickstream'));
    }
    return out;
  }

  /** Applies changes to the model and returns them. */
  private apply<T extends LakeChanges>(changes: T): T {
    for (const k of changes.deletes) this.files.delete(k);
    for (const [k, f] of changes.puts) this.files.set(k, f);
    return changes;
  }

  /**
   * An ordinary day: a new date partition, about 3 % of the existing Parquet files rewritten
   * with valid new Parquet (late-arriving rows), and the compaction of yesterday's events
   * partition (its small files deleted, their rows in one larger file).
   */
  planOrdinaryDay(): OrdinaryDayReport {
    const n = this.ordinaryDays++;
    const rand = seededRandom(subSeed(this.seed, 'ordinary-day', n));
    const puts = new Map<string, LakeFile>();
    const deletes: string[] = [];

    // Rewrites first (chosen among the files that exist before today's partition).
    const rewritable = this.parquetKeys().filter((k) => k.startsWith('sales/'));
    const rewritten = shuffled(rand, rewritable).slice(0, Math.max(1, Math.round(this.parquetKeys().length * 0.03))).sort();
    for (const key of rewritten) {
      const m = /^sales\/date=([^/]+)\/region=([^/]+)\//.exec(key)!;
      const rows = this.files.get(key)!.rows + int(rand, 1, 40);
      puts.set(key, parquetFile(salesParquet(subSeed(this.seed, 'rewrite', n, key), m[1]!, m[2]!, rows), rows, 'orders-etl-late-data'));
    }

    // Compaction of yesterday's streaming files (the newest events partition).
    const yesterday = dateOf(this.days - 1);
    const partition = `events/date=${yesterday}/`;
    const small = [...this.files.keys()].filter((k) => k.startsWith(partition) && /\/part-\d+\.parquet$/.test(k)).sort();
    const merged: Record<string, unknown[]> = {};
    let mergedRows = 0;
    for (const key of small) {
      const day = this.days - 1;
      const i = Number(/part-(\d+)\.parquet$/.exec(key)![1]);
      const f = this.files.get(key)!;
      const cols = eventsRows(subSeed(this.seed, 'events', day, i), yesterday, f.rows);
      for (const [c, values] of Object.entries(cols)) (merged[c] ??= []).push(...values);
      mergedRows += f.rows;
    }
    const written = `${partition}compacted-${String(n).padStart(5, '0')}.parquet`;
    if (small.length > 0) {
      puts.set(written, parquetFile(eventsParquet(merged), mergedRows, 'compaction'));
      deletes.push(...small);
    }

    // Today's partition.
    const today = this.datePartition(this.days);
    for (const [k, f] of today) puts.set(k, f);
    const date = dateOf(this.days);
    this.days++;
    return this.apply({ puts, deletes, date, added: [...today.keys()].sort(), rewritten, compaction: { partition, deleted: small, written } });
  }

  /**
   * Ransomware: a third of the Parquet files overwritten with random bytes of the same size
   * (content type and metadata lost, as a blind PUT does), a tenth deleted, and a ransom note
   * in every date partition of every table.
   */
  planIncident(): IncidentReport {
    const n = this.incidents++;
    const rand = seededRandom(subSeed(this.seed, 'incident', n));
    const keys = shuffled(rand, this.parquetKeys());
    const overwritten = keys.slice(0, Math.round(keys.length / 3)).sort();
    const deleted = keys.slice(overwritten.length, overwritten.length + Math.round(keys.length / 10)).sort();
    const puts = new Map<string, LakeFile>();
    for (const key of overwritten) {
      puts.set(key, { body: garbageBytes(this.seed, `incident-${n}-${key}`, this.files.get(key)!.body.length), contentType: 'application/octet-stream', metadata: {}, rows: 0 });
    }
    const partitions = new Set(this.parquetKeys().map((k) => k.split('/').slice(0, 2).join('/')));
    const notes = [...partitions].sort().map((p) => `${p}/${RANSOM_NOTE_NAME}`);
    for (const key of notes) puts.set(key, { body: Buffer.from(RANSOM_NOTE), contentType: 'text/plain', metadata: {}, rows: 0 });
    return this.apply({ puts, deletes: deleted, overwritten, deleted, notes });
  }
}

// --- the lake in a bucket -------------------------------------------------------------------

/** A lake in an S3 bucket: the model of what it should hold, and where. */
export interface S3Lake {
  s3: S3Client;
  bucket: string;
  model: LakeModel;
}

/** Writes changes to the bucket: PUTs (16 in flight), then DeleteObjects batches. */
export async function applyChanges(s3: S3Client, bucket: string, changes: LakeChanges): Promise<void> {
  const limit = pLimit(16);
  await Promise.all(
    [...changes.puts].map(([Key, f]) =>
      limit(() => s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: f.body, ContentType: f.contentType, Metadata: f.metadata }))),
    ),
  );
  for (let i = 0; i < changes.deletes.length; i += 1000) {
    const Objects = changes.deletes.slice(i, i + 1000).map((Key) => ({ Key }));
    const res = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects, Quiet: true } }));
    if (res.Errors?.length) throw new Error(`deleting from ${bucket}: ${res.Errors.map((e) => `${e.Key}: ${e.Code}`).join(', ')}`);
  }
}

/** Generates a lake and writes every file of it into the bucket. */
export async function createLake(s3: S3Client, bucket: string, opts: LakeOptions): Promise<S3Lake> {
  const model = LakeModel.generate(opts);
  await applyChanges(s3, bucket, { puts: model.files, deletes: [] });
  return { s3, bucket, model };
}

/** What a normal day does to the lake (see LakeModel.planOrdinaryDay), applied to the bucket. */
export async function ordinaryDay(lake: S3Lake): Promise<OrdinaryDayReport> {
  const report = lake.model.planOrdinaryDay();
  await applyChanges(lake.s3, lake.bucket, report);
  return report;
}

/** The incident (see LakeModel.planIncident), applied to the bucket. */
export async function incident(lake: S3Lake): Promise<IncidentReport> {
  const report = lake.model.planIncident();
  await applyChanges(lake.s3, lake.bucket, report);
  return report;
}

// --- reading it back ------------------------------------------------------------------------

/** What a live key holds, as a client sees it: a digest of its bytes, content type, metadata. */
export interface LiveObject {
  size: number;
  sha256: string;
  contentType: string | undefined;
  /** User metadata, keys sorted (so that two snapshots compare as JSON). */
  metadata: Record<string, string>;
}

function liveObject(body: Buffer, contentType: string | undefined, metadata: Record<string, string>): LiveObject {
  const sorted = Object.fromEntries(Object.entries(metadata).sort(([a], [b]) => (a < b ? -1 : 1)));
  return { size: body.length, sha256: createHash('sha256').update(body).digest('hex'), contentType, metadata: sorted };
}

async function* liveKeys(s3: S3Client, bucket: string, prefix: string): AsyncGenerator<string> {
  for (let token: string | undefined; ; ) {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }));
    for (const o of page.Contents ?? []) yield o.Key!;
    if (!page.IsTruncated) return;
    token = page.NextContinuationToken;
  }
}

async function getObject(s3: S3Client, bucket: string, key: string): Promise<{ body: Buffer; contentType: string | undefined; metadata: Record<string, string> }> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { body: Buffer.from(await res.Body!.transformToByteArray()), contentType: res.ContentType, metadata: res.Metadata ?? {} };
}

/** Every live key under a prefix with its bytes' digest, content type and metadata (GET each). */
export async function snapshotBucket(s3: S3Client, bucket: string, prefix = ''): Promise<Map<string, LiveObject>> {
  const keys: string[] = [];
  for await (const k of liveKeys(s3, bucket, prefix)) keys.push(k);
  const limit = pLimit(16);
  const entries = await Promise.all(
    keys.map((key) =>
      limit(async () => {
        const o = await getObject(s3, bucket, key);
        return [key, liveObject(o.body, o.contentType, o.metadata)] as const;
      }),
    ),
  );
  return new Map(entries);
}

/** The model's files in the shape of snapshotBucket, to compare the bucket with the model. */
export function modelSnapshot(model: LakeModel): Map<string, LiveObject> {
  const out = new Map<string, LiveObject>();
  for (const [key, f] of [...model.files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    out.set(key, liveObject(f.body, f.contentType, f.metadata));
  }
  return out;
}

/** Reads Parquet bytes with hyparquet; throws on anything that is not a readable Parquet file. */
export async function readParquet(body: Buffer): Promise<Record<string, unknown>[]> {
  const file = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
  return parquetReadObjects({ file });
}

/** What a query engine scanning a prefix reads: per Parquet file its row count and a digest of its rows. */
export interface LakeRows {
  files: number;
  rows: number;
  /** key -> rows and SHA-256 of the rows as JSON lines (bigints as strings, times as ISO). */
  perFile: Map<string, { rows: number; digest: string }>;
}

/** SHA-256 of rows as JSON lines: equal digests, equal rows (values and order). */
export function rowsDigest(rows: Record<string, unknown>[]): string {
  const h = createHash('sha256');
  for (const r of rows) h.update(JSON.stringify(r, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) + '\n');
  return h.digest('hex');
}

/**
 * Reads every row of every live `.parquet` key under a prefix with hyparquet, as a query engine
 * scanning the prefix would. A file that does not parse throws, naming the key.
 */
export async function readLakeRows(s3: S3Client, bucket: string, prefix = ''): Promise<LakeRows> {
  const keys: string[] = [];
  for await (const k of liveKeys(s3, bucket, prefix)) if (k.endsWith('.parquet')) keys.push(k);
  keys.sort();
  const limit = pLimit(8);
  const perFile = await Promise.all(
    keys.map((key) =>
      limit(async () => {
        try {
          const rows = await readParquet((await getObject(s3, bucket, key)).body);
          return [key, { rows: rows.length, digest: rowsDigest(rows) }] as const;
        } catch (err) {
          throw new Error(`s3://${bucket}/${key} is no readable Parquet file: ${(err as Error).message}`);
        }
      }),
    ),
  );
  return { files: keys.length, rows: perFile.reduce((n, [, f]) => n + f.rows, 0), perFile: new Map(perFile) };
}

/** Every difference between two bucket snapshots, one line each (empty when identical). */
export function differences(want: Map<string, LiveObject>, got: Map<string, LiveObject>): string[] {
  const out: string[] = [];
  for (const [k, w] of want) {
    const g = got.get(k);
    if (g === undefined) out.push(`${k}: missing`);
    else if (JSON.stringify(g) !== JSON.stringify(w)) out.push(`${k}: ${JSON.stringify(g)} != ${JSON.stringify(w)}`);
  }
  for (const k of got.keys()) if (!want.has(k)) out.push(`${k}: extra`);
  return out;
}
