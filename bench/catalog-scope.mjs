#!/usr/bin/env node
// Scoped catalog sync (issue 20 section 3): what a host reads and keeps when it syncs one
// partition of a repository instead of all of it. A lake of Spark-shaped keys
// (`warehouse/events/dt=2026-MM-DD/part-NNNNN-<uuid>.snappy.parquet`) in `--partitions` date
// partitions is backed up by `--runs` runs into a `file://` repository, each run adding the next
// days (an append-only lake, the usual shape of date partitions). Then fresh catalogs sync:
// the whole repository, and one partition (`catalog sync --prefix`) of the first and of the last
// run. Prints GETs and bytes read from the repository, catalog file bytes and time for each, and
// what the blob locations in record lines (`locs`) cost in the repository's record blobs.
//
//   npm run build && node bench/catalog-scope.mjs [--versions 100000] [--partitions 50] [--runs 3]
//        [--dir /tmp/lgbench-scope] [--out FILE]
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    versions: { type: 'string', default: '100000' },
    partitions: { type: 'string', default: '50' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: '/tmp/lgbench-scope' },
    out: { type: 'string' },
  },
});
const N = Number(args.versions);
const P = Number(args.partitions);
const RUNS = Number(args.runs);
const engine = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
const { Catalog } = await engine('catalog/catalog.js');
const { Repository } = await engine('repository/repository.js');
const { FsStore } = await engine('storage/fs-store.js');
const { MemStore } = await engine('storage/mem-store.js');
const { backupGroup } = await engine('engine/backup.js');
const { syncCatalog } = await engine('engine/sync.js');
const { compressBlob } = await engine('repository/compress.js');
const log = (msg) => console.error(`[catalog-scope] ${msg}`);

const day = (p) => new Date(Date.UTC(2026, 0, 1) + p * 86_400_000).toISOString().slice(0, 10);
const partitionPrefix = (p) => `warehouse/events/dt=${day(p)}/`;
const uuid = (i) => {
  const h = createHash('sha256').update(`uuid-${i}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};
const keyOf = (p, i) => `${partitionPrefix(p)}part-${String(i).padStart(5, '0')}-${uuid(p * 1_000_000 + i)}.snappy.parquet`;
// Small, distinct bodies: the bench measures metadata, not data.
const bodyOf = (p, i) => createHash('sha512').update(`body-${p}-${i}`).digest();

rmSync(args.dir, { recursive: true, force: true });
mkdirSync(args.dir, { recursive: true });
const repoDir = join(args.dir, 'repository');
const kdf = { algorithm: 'scrypt', N: 1024, r: 8, p: 1, salt: Buffer.alloc(16, 7).toString('base64') };
const repo = await Repository.init(new FsStore({ root: repoDir, fsync: false }), { password: 'catalog-scope', kdf });
const lake = new MemStore({ name: 'lake' });
const policy = {
  version: 1,
  file: '<catalog-scope>',
  repository: { url: pathToFileURL(repoDir).href, encryption: 'aes-256-gcm' },
  s3: {},
  groups: [{ name: 'lake', sources: [{ kind: 'path', path: '/lake', prefixes: [''], exclude: [] }], retention: {} }],
  concurrency: { list: 16, transfer: 32 },
  timezone: 'UTC',
};
const perPartition = Math.ceil(N / P);
const runOf = (p) => Math.floor((p * RUNS) / P);

log(`${N} versions in ${P} partitions of ${perPartition}, backed up by ${RUNS} runs`);
const writer = Catalog.open(join(args.dir, 'writer.db'), repo.id);
const backups = [];
for (let r = 0; r < RUNS; r++) {
  for (let p = 0; p < P; p++) if (runOf(p) === r) for (let i = 0; i < perPartition; i++) await lake.put(keyOf(p, i), bodyOf(p, i));
  const t0 = Date.now();
  const s = await backupGroup({ repo, catalog: writer, policy, group: policy.groups[0], sources: [{ bucket: 'lake', objectStore: lake, prefixes: [''], isExcluded: () => false }] });
  if (s.status !== 'complete') throw new Error(`run ${r}: ${s.status}`);
  backups.push({ run: s.runId, partitions: [...Array(P).keys()].filter((p) => runOf(p) === r).length, newObjects: s.counters.objectsNew, seconds: (Date.now() - t0) / 1000 });
  log(JSON.stringify(backups.at(-1)));
}
const versions = writer.stats().versions;
writer.close();

/** Sync a fresh catalog (whole, or scoped to one partition) from a freshly opened repository: counts are that sync's alone. */
async function syncFresh(name, widen) {
  const store = new FsStore({ root: repoDir, fsync: false });
  const r = await Repository.open(store, { password: async () => 'catalog-scope' });
  const file = join(args.dir, `${name}.db`);
  const catalog = Catalog.open(file, r.id);
  const t0 = Date.now();
  const report = await syncCatalog({ repo: r, catalog, ...(widen === undefined ? {} : { widen }) });
  const seconds = (Date.now() - t0) / 1000;
  const held = catalog.stats();
  catalog.close(); // folds the WAL into the file
  const size = (f) => (existsSync(f) ? statSync(f).size : 0);
  const row = {
    sync: name,
    scope: report.scope,
    seconds,
    gets: report.requests.get,
    lists: report.requests.list,
    bytesRead: report.requests.bytesIn,
    recordBytes: report.bytesRead,
    indexFiles: report.indexFiles,
    versions: held.versions,
    blobs: held.blobs,
    catalogBytes: size(file) + size(`${file}-wal`),
  };
  log(JSON.stringify(row));
  return row;
}

const syncs = [
  await syncFresh('whole', undefined),
  await syncFresh('first-run-partition', [{ bucket: 'lake', prefix: partitionPrefix(Math.floor(P / (2 * RUNS))) }]),
  await syncFresh('last-run-partition', [{ bucket: 'lake', prefix: partitionPrefix(P - 1) }]),
];

// What `locs` cost: every run's record blobs compressed as written, and without the field.
const store = new FsStore({ root: repoDir, fsync: false });
const r = await Repository.open(store, { password: async () => 'catalog-scope' });
const check = Catalog.open(join(args.dir, 'whole.db'), r.id);
let withLocs = 0;
let withoutLocs = 0;
let recordLines = 0;
for (const name of (await r.listNames('runs')).sort()) {
  const m = await r.readDocument('runs', name);
  for (const hex of m.records) {
    const loc = check.blobLocation(Buffer.from(hex, 'hex'));
    const raw = r.decodeBlob(await r.readPackRange(loc.pack, loc.offset, loc.offset + loc.length), { id: Buffer.from(hex, 'hex'), compressed: (loc.flags & 1) === 1, rawLength: loc.rawLength }, 'bench');
    const lines = raw.toString('utf8').trimEnd().split('\n');
    recordLines += lines.length;
    const stripped = lines.map((l) => {
      const o = JSON.parse(l);
      delete o.locs;
      return JSON.stringify(o);
    });
    withLocs += compressBlob(raw).data.length;
    withoutLocs += compressBlob(Buffer.from(stripped.join('\n') + '\n')).data.length;
  }
}
check.close();
const records = {
  lines: recordLines,
  compressedBytesPerVersion: Math.round((withLocs / recordLines) * 10) / 10,
  withoutLocsBytesPerVersion: Math.round((withoutLocs / recordLines) * 10) / 10,
};
log(JSON.stringify(records));

const result = { bench: 'catalog-scope', date: new Date().toISOString(), versions, partitions: P, runs: RUNS, backups, syncs, records };
const text = JSON.stringify(result, null, 2);
if (args.out !== undefined) writeFileSync(args.out, text + '\n');
console.log(text);
