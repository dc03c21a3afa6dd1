#!/usr/bin/env node
// Catalog bytes per version at scale (issue 20: "<= 100 B per version"), for a data lake's key
// shape: Hive partitions, `warehouse/<table>/dt=YYYY-MM-DD/hour=HH/part-NNNNN-<uuid>.snappy.parquet`
// (24 hours x 40 parts per day and table, 4 tables). Every version goes through the real
// Catalog writes (beginRun, insertPack, insertVersions: the statements sync and backup use), run
// by run and in key order within a run as a backup records them, so the B-trees are as full as
// real ones and the numbers follow the schema of the checkout measured (--engine-dir).
// Each run writes a new version of every key (new content: one blob of 32-byte id each); with
// --per-key K there are K runs. --versioned gives each version a 32-character S3 version id.
// Prints and writes (--out) file bytes / versions and the SQLite dbstat breakdown per version.
//
//   npm run build && node bench/catalog-bytes.mjs [--versions 1000000] [--per-key 1] [--versioned]
//        [--db /tmp/lakeguard-catalog-bytes.db] [--engine-dir DIR] [--out FILE]
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    versions: { type: 'string', default: '1000000' },
    'per-key': { type: 'string', default: '1' },
    versioned: { type: 'boolean', default: false },
    db: { type: 'string', default: '/tmp/lakeguard-catalog-bytes.db' },
    'engine-dir': { type: 'string', default: ROOT },
    out: { type: 'string' },
  },
});
const VERSIONS = Number(args.versions);
const PER_KEY = Number(args['per-key']);
const KEYS = Math.ceil(VERSIONS / PER_KEY);
const ENGINE = resolve(args['engine-dir']);
const { Catalog } = await import(pathToFileURL(join(ENGINE, 'dist', 'catalog', 'catalog.js')).href);
const log = (msg) => console.error(`[catalog-bytes] ${msg}`);

const BUCKET = 'lake';
const TABLES = ['events', 'clicks', 'orders', 'sessions'];
const HOURS = 24;
const PARTS = 40; // part files per hour partition
const BLOBS_PER_PACK = 4000; // ~16 MiB packs of ~4 KiB blobs
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 30);

const hex = (seed, n) => createHash('sha256').update(seed).digest('hex').slice(0, n);
const uuid = (i) => {
  const h = hex(`uuid${i}`, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
/** Key i in S3 order: table, then day, then hour, then part (i.e. i sorts as the key does). */
function keyOf(i) {
  const perTable = Math.ceil(KEYS / TABLES.length);
  const t = Math.floor(i / perTable);
  const j = i % perTable;
  const day = Math.floor(j / (HOURS * PARTS));
  const hour = Math.floor(j / PARTS) % HOURS;
  const part = j % PARTS;
  const dt = new Date(Date.UTC(2020, 0, 1) + day * DAY).toISOString().slice(0, 10);
  return `warehouse/${TABLES[t]}/dt=${dt}/hour=${String(hour).padStart(2, '0')}/part-${String(part).padStart(5, '0')}-${uuid(i)}.snappy.parquet`;
}

function generate(catalogPath) {
  for (const f of [catalogPath, `${catalogPath}-wal`, `${catalogPath}-shm`]) rmSync(f, { force: true });
  mkdirSync(dirname(catalogPath), { recursive: true });
  const catalog = Catalog.open(catalogPath, 'be'.repeat(16));
  catalog.beginBulkLoad();
  const started = performance.now();
  let blobNo = 0;
  for (let r = 0; r < PER_KEY; r++) {
    const runStart = T0 + r * DAY;
    const runId = `${new Date(runStart).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${String(r).padStart(8, '0')}`;
    const seq = catalog.beginRun({ id: runId, group: 'lake', started: runStart, host: 'bench' });
    const t = performance.now();
    for (let from = 0; from < KEYS; from += BLOBS_PER_PACK) {
      const to = Math.min(KEYS, from + BLOBS_PER_PACK);
      const blobs = [];
      const records = [];
      for (let i = from; i < to; i++) {
        const hash = createHash('sha256').update(`blob${blobNo++}`).digest();
        const size = 2000 + ((i * 7919 + r * 31) % 6000);
        blobs.push({ hash, offset: (i - from) * 4096, length: size, rawLength: size + 900, flags: 1 });
        const validFrom = runStart - ((i * 7919) % 3_600_000);
        records.push({
          bucket: BUCKET,
          key: keyOf(i),
          versionId: args.versioned ? hex(`v${i}/${r}`, 32) : null,
          deleteMarker: false,
          size: size + 900,
          etag: createHash('md5').update(`${i}/${r}`).digest('hex'),
          lastModified: validFrom,
          validFrom,
          storageClass: 'STANDARD',
          meta: { contentType: 'binary/octet-stream' },
          blobs: [hash.toString('hex')],
        });
      }
      catalog.transaction(() => {
        catalog.insertPack({ name: hex(`pack${r}/${from}`, 64), size: BLOBS_PER_PACK * 4096, blobs }, seq, hex(`index${r}/${from}`, 64));
        catalog.insertVersions(seq, records);
      });
    }
    catalog.finishRun(seq, 'complete', runStart + 3_600_000, {});
    log(`run ${r + 1}/${PER_KEY}: ${KEYS.toLocaleString('en')} versions in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  catalog.finishBulkLoad();
  catalog.close();
  return (performance.now() - started) / 1000;
}

const catalogPath = args.db;
log(`${VERSIONS.toLocaleString('en')} versions: ${KEYS.toLocaleString('en')} keys x ${PER_KEY}${args.versioned ? ', versioned' : ''}, e.g. ${keyOf(0)}`);
const seconds = generate(catalogPath);
const size = (f) => (existsSync(f) ? statSync(f).size : 0);
const fileBytes = size(catalogPath) + size(`${catalogPath}-wal`) + size(`${catalogPath}-shm`);
const db = new Database(catalogPath, { readonly: true, fileMustExist: true });
const count = (t) => /** @type {number} */ (db.prepare(`SELECT count(*) FROM ${t}`).pluck().get());
const counts = { versions: count('versions'), objects: count('objects'), blobs: count('blobs') };
const schema = db.prepare("SELECT value FROM catalog_info WHERE name = 'schema'").pluck().get();
const perVersion = (bytes) => Math.round((bytes / counts.versions) * 10) / 10;
const tables = /** @type {{ name: string, bytes: number }[]} */ (
  db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC').all()
).map((t) => ({ ...t, perVersion: perVersion(t.bytes) }));
const freeBytes = /** @type {number} */ (db.pragma('freelist_count', { simple: true })) * /** @type {number} */ (db.pragma('page_size', { simple: true }));
db.close();

const result = {
  bench: 'catalog-bytes',
  date: new Date().toISOString(),
  schema,
  shape: { versions: VERSIONS, keys: KEYS, perKey: PER_KEY, versioned: args.versioned, example: keyOf(0) },
  counts,
  generateSeconds: Math.round(seconds),
  fileBytes,
  bytesPerVersion: perVersion(fileBytes),
  freeBytesPerVersion: perVersion(freeBytes),
  tables,
};
for (const t of tables.filter((t) => t.perVersion > 0)) log(`  ${t.name.padEnd(32)} ${String(t.perVersion).padStart(7)} B/version`);
log(`schema ${schema}: ${fileBytes.toLocaleString('en')} bytes, ${result.bytesPerVersion} B/version (${counts.versions} versions, ${counts.objects} objects, ${counts.blobs} blobs) in ${result.generateSeconds} s`);
if (args.out) writeFileSync(args.out, JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify({ schema, perKey: PER_KEY, versions: counts.versions, bytesPerVersion: result.bytesPerVersion }));
