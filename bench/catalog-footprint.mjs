#!/usr/bin/env node
// Catalog bytes per object version (issue 6: "catalog on disk <= 200 bytes per object version"),
// measured on a catalog the real engine writes: a local directory of small generated files
// (the bench data set's keys, `table=<t>/dt=2026-11-DD/part-NNNNN.<ext>`, bodies of 1-4 KiB,
// ~5 % duplicate bodies, plus three multi-MiB files) is backed up into a `file://` repository
// (seed run), then changed and backed up again (default: two incremental runs, 1 % of the files
// changed and 0.25 % deleted each). Prints (catalog.db + -wal + -shm) / versions and the SQLite
// dbstat breakdown per version.
//
// The source reports what S3 would (`--source s3like`, the default): MD5 ETags (multipart-style
// `<md5 of part md5s>-N` for the large files), storage class STANDARD and a content type. A
// plain local directory (`--source fs`) reports `<size>-<mtime ns>` ETags and no storage class.
//
//   npm run build && node bench/catalog-footprint.mjs [--objects 100000] [--dir /tmp/lgbench-footprint]
//        [--incrementals 2] [--source s3like|fs] [--engine-dir DIR] [--keep-catalog FILE] [--out FILE]
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { describeDataset, mix, randomBytesFor, rng, smallBody } from './lib/dataset.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    objects: { type: 'string', default: '100000' },
    dir: { type: 'string', default: '/tmp/lgbench-footprint' },
    incrementals: { type: 'string', default: '2' },
    change: { type: 'string', default: '0.01' },
    delete: { type: 'string', default: '0.0025' },
    source: { type: 'string', default: 's3like' },
    'engine-dir': { type: 'string', default: ROOT },
    'keep-catalog': { type: 'string' },
    out: { type: 'string' },
  },
});
const N = Number(args.objects);
const ENGINE = resolve(args['engine-dir']);
const engine = (p) => import(pathToFileURL(join(ENGINE, 'dist', p)).href);
const { Catalog } = await engine('catalog/catalog.js');
const { Repository } = await engine('repository/repository.js');
// Typed as this tree's FsStore, whose methods the S3-like store below overrides (another
// --engine-dir's is checked only at run time).
const { FsStore } = /** @type {typeof import('../src/storage/fs-store.js')} */ (await engine('storage/fs-store.js'));
const { backupGroup } = await engine('engine/backup.js');
const log = (msg) => console.error(`[catalog-footprint] ${msg}`);

const SEED = 42;
const MIN = 1024;
const MAX = 4096;
const LARGE = [
  { key: 'raw/exports/snapshot-a.bin', size: 12 << 20 },
  { key: 'raw/exports/snapshot-b.bin', size: 6 << 20 },
  { key: 'raw/exports/snapshot-c.bin', size: 3 << 20 },
];
const PART = 5 << 20; // multipart part size the S3-like ETag is computed with

const ds = describeDataset({ seed: SEED, scale: N / 100_000 });
// Bodies of 1-4 KiB; a duplicate keeps its source's size (smallBody copies the source's body).
for (const e of ds.small) e.size = e.dupOf >= 0 ? ds.small[e.dupOf].size : MIN + (mix(SEED, 9, e.i) % (MAX - MIN + 1));

const lake = join(args.dir, `lake-${N}`);
const work = join(args.dir, `work-${N}`);

function writeLake() {
  rmSync(lake, { recursive: true, force: true });
  const t0 = Date.now();
  for (const e of ds.small) {
    const file = join(lake, e.key);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, smallBody(ds, e));
    if (e.i % 100_000 === 99_999) log(`  wrote ${e.i + 1}/${N} files (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  for (const [i, l] of LARGE.entries()) {
    mkdirSync(dirname(join(lake, l.key)), { recursive: true });
    writeFileSync(join(lake, l.key), randomBytesFor(mix(SEED, 10, i), l.size));
  }
}

/** What an S3 listing and GET report for the files: MD5 ETags (cached by size and mtime), STANDARD, a content type. */
class S3LikeStore extends FsStore {
  etags = new Map();
  async etagOf(key, size, mtime) {
    const cached = this.etags.get(key);
    if (cached?.size === size && cached.mtime === mtime) return cached.etag;
    const body = await readFile(join(this.root, key));
    let etag;
    if (body.length <= PART) {
      etag = createHash('md5').update(body).digest('hex');
    } else {
      const parts = [];
      for (let o = 0; o < body.length; o += PART) parts.push(createHash('md5').update(body.subarray(o, o + PART)).digest());
      etag = `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
    }
    this.etags.set(key, { size, mtime, etag });
    return etag;
  }
  async s3meta(key, meta) {
    const ext = key.slice(key.lastIndexOf('.') + 1);
    const contentType = { json: 'application/json', csv: 'text/csv', log: 'text/plain' }[ext] ?? 'binary/octet-stream';
    return { ...meta, etag: await this.etagOf(key, meta.size, meta.lastModified.getTime()), storageClass: 'STANDARD', contentType };
  }
  /** @override */
  async *list(prefix, opts) {
    for await (const item of super.list(prefix, opts)) {
      yield item.kind === 'object' ? { ...item, etag: await this.etagOf(item.key, item.size, item.lastModified.getTime()), storageClass: 'STANDARD' } : item;
    }
  }
  /** @override */
  async head(key, opts) {
    return this.s3meta(key, await super.head(key, opts));
  }
  /** @override */
  async get(key, opts) {
    const got = await super.get(key, opts);
    return { body: got.body, meta: await this.s3meta(key, got.meta) };
  }
}

/** Changes and deletes a deterministic share of the small files (run r: new body version r). */
function mutate(r, live) {
  const pick = rng(mix(SEED, 11, r));
  const want = (share) => Math.max(1, Math.round(N * share));
  const touched = new Set();
  const take = (n) => {
    const out = [];
    while (out.length < n && touched.size < live.size) {
      const i = Math.floor(pick() * N);
      if (!live.has(i) || touched.has(i)) continue;
      touched.add(i);
      out.push(ds.small[i]);
    }
    return out;
  };
  const changed = take(want(Number(args.change)));
  const deleted = take(want(Number(args.delete)));
  for (const e of changed) writeFileSync(join(lake, e.key), smallBody(ds, e, r));
  for (const e of deleted) {
    unlinkSync(join(lake, e.key));
    live.delete(e.i);
  }
  return { changed: changed.length, deleted: deleted.length };
}

log(`writing ${N} files of ${MIN}-${MAX} bytes and ${LARGE.length} large files into ${lake}`);
writeLake();
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const catalogPath = join(work, 'catalog.db');
const policy = {
  version: 1,
  file: '<catalog-footprint>',
  repository: { url: pathToFileURL(join(work, 'repository')).href, encryption: 'aes-256-gcm' },
  s3: {},
  groups: [{ name: 'lake', sources: [{ kind: 'path', path: lake, prefixes: [] }] }],
  concurrency: { list: 16, transfer: 32 },
  timezone: 'UTC',
};
const repoStore = new FsStore({ root: join(work, 'repository'), fsync: false });
const kdf = { algorithm: 'scrypt', N: 1024, r: 8, p: 1, salt: Buffer.alloc(16, 7).toString('base64') };
const repo = await Repository.init(repoStore, { password: 'catalog-footprint', kdf });
const source = args.source === 'fs' ? new FsStore({ root: lake, fsync: false }) : new S3LikeStore({ root: lake, fsync: false });
const live = new Set(ds.small.map((e) => e.i));

const runs = [];
for (let r = 0; r <= Number(args.incrementals); r++) {
  const mutation = r === 0 ? null : mutate(r, live);
  // One catalog connection per run, as one `lakeguard backup` process each.
  const catalog = Catalog.open(catalogPath, repo.id);
  const t0 = Date.now();
  const summary = await backupGroup({
    repo,
    catalog,
    policy,
    group: policy.groups[0],
    sources: [{ bucket: 'lake', store: source, prefixes: [''], isExcluded: () => false }],
  });
  catalog.close();
  const c = summary.counters;
  const row = { run: r, status: summary.status, seconds: (Date.now() - t0) / 1000, mutation, new: c.objectsNew, changed: c.objectsChanged, deleted: c.objectsDeleted, unchanged: c.objectsUnchanged };
  log(JSON.stringify(row));
  if (summary.status !== 'complete') throw new Error(`run ${r}: ${summary.status}`);
  runs.push(row);
}

const size = (f) => (existsSync(f) ? statSync(f).size : 0);
const files = { db: size(catalogPath), wal: size(`${catalogPath}-wal`), shm: size(`${catalogPath}-shm`) };
const total = files.db + files.wal + files.shm;
const db = new Database(catalogPath, { readonly: true, fileMustExist: true });
const count = (t) => /** @type {number} */ (db.prepare(`SELECT count(*) FROM ${t}`).pluck().get());
const counts = { versions: count('versions'), objects: count('objects'), blobs: count('blobs') };
const schema = db.prepare("SELECT value FROM catalog_info WHERE name = 'schema'").pluck().get();
const tables = /** @type {{ name: string, bytes: number, used: number, pages: number }[]} */ (
  db.prepare('SELECT name, sum(pgsize) AS bytes, sum(pgsize - unused) AS used, count(*) AS pages FROM dbstat GROUP BY name ORDER BY bytes DESC').all()
).map((t) => ({ ...t, perVersion: Math.round((t.bytes / counts.versions) * 10) / 10 }));
const freePages = db.pragma('freelist_count', { simple: true });
const pageSize = db.pragma('page_size', { simple: true });
db.close();
if (args['keep-catalog']) copyFileSync(catalogPath, args['keep-catalog']);

const perVersion = Math.round((total / counts.versions) * 10) / 10;
console.log(`catalog schema ${schema}: ${total} bytes (db ${files.db}, wal ${files.wal}, shm ${files.shm}; ${freePages} free pages of ${pageSize} B)`);
console.log(`${counts.versions} versions, ${counts.objects} objects, ${counts.blobs} blobs: ${perVersion} B/version`);
console.log('');
console.log(`${'table or index'.padEnd(32)} ${'bytes'.padStart(10)} ${'B/version'.padStart(10)} ${'fill'.padStart(6)}`);
for (const t of tables) console.log(`${t.name.padEnd(32)} ${String(t.bytes).padStart(10)} ${t.perVersion.toFixed(1).padStart(10)} ${((t.used / t.bytes) * 100).toFixed(0).padStart(5)}%`);

const commitFile = join(ENGINE, '.commit');
const out = args.out ?? join(ROOT, 'bench', 'results', `catalog-footprint-${new Date().toISOString().replace(/[:]/g, '-').slice(0, 19)}.json`);
writeFileSync(
  out,
  JSON.stringify({ engine: existsSync(commitFile) ? readFileSync(commitFile, 'utf8').trim() : null, objects: N, source: args.source, runs, schema, files, total, counts, perVersion, freePages, tables }, null, 2),
);
log(`results in ${out}`);
