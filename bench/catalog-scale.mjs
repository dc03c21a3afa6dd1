#!/usr/bin/env node
// Catalog at scale: generates 10,000,000 object versions straight into a SQLite catalog
// (1,000,000 objects x 10 runs, 100 date partitions of 10,000 keys each, some delete markers),
// then times the incident responder's queries through the real query module (dist/):
// `ls --at` of one 10,000-key partition and `versions` of one key, among others.
//
//   npm run build && node bench/catalog-scale.mjs [--db /tmp/lakeguard-catalog-scale.db] [--objects 1000000] [--reuse]
//
// --reuse keeps an existing file of the same size (generation takes a few minutes).
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, rmSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Catalog } from '../dist/catalog/catalog.js';
import { encodeEtag, encodeLastModified } from '../dist/catalog/codec.js';
import { CatalogQueries } from '../dist/catalog/queries.js';

const { values: args } = parseArgs({
  options: {
    db: { type: 'string', default: '/tmp/lakeguard-catalog-scale.db' },
    objects: { type: 'string', default: '1000000' },
    reuse: { type: 'boolean', default: false },
  },
});
const DB = args.db;
const OBJECTS = Number(args.objects);
const RUNS = 10;
const PARTITION = 10_000; // keys per date partition
const PARTITIONS = Math.ceil(OBJECTS / PARTITION);
const BUCKET = 'lake-bench';
const REPO_ID = 'be'.repeat(16);
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 9, 1); // run r starts at T0 + r days, 02:00 UTC
const runStart = (r) => T0 + r * DAY + 2 * 3_600_000;
const BLOBS = 100_000;
const PACKS = 100;

const partitionName = (p) => {
  const d = new Date(Date.UTC(2026, 0, 1) + p * DAY).toISOString().slice(0, 10);
  return `events/dt=${d}/`;
};
const keyOf = (i) => `${partitionName(Math.floor(i / PARTITION))}part-${String(i % PARTITION).padStart(5, '0')}-c000.snappy.parquet`;
/** What each run recorded for object i: a delete marker (run 6 for every 50th, run 10 for every 20th), else a new version. */
const isDeleteMarker = (i, r) => (r === 6 && i % 50 === 0) || (r === 10 && i % 20 === 0);

function log(...parts) {
  process.stdout.write(parts.join(' ') + '\n');
}

function generate() {
  rmSync(DB, { force: true });
  rmSync(`${DB}-wal`, { force: true });
  rmSync(`${DB}-shm`, { force: true });
  // The real schema, as lakeguard creates it.
  Catalog.open(DB, REPO_ID).close();

  const db = new Database(DB);
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -2000000'); // 2 GB while generating
  const started = performance.now();

  const insertRun = db.prepare('INSERT INTO runs (seq, id, grp, started, finished, status, host, counters) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const bucket = Number(db.prepare('INSERT INTO buckets (name) VALUES (?)').run(BUCKET).lastInsertRowid);
  db.transaction(() => {
    for (let r = 1; r <= RUNS; r++) {
      const id = `${new Date(runStart(r)).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${String(r).padStart(6, '0')}`;
      insertRun.run(r, id, 'bench', runStart(r), runStart(r) + 3_600_000, 'complete', 'bench', JSON.stringify({ objectsSeen: OBJECTS }));
    }
    const insertPack = db.prepare('INSERT INTO packs (id, name, size, run) VALUES (?, ?, ?, 1)');
    for (let p = 1; p <= PACKS; p++) insertPack.run(p, createHash('sha256').update(`pack${p}`).digest('hex'), 16 << 20);
    db.prepare("INSERT INTO index_files (name) VALUES ('idx')").run();
    const indexFile = db.prepare("INSERT INTO blob_index_files (name) VALUES ('idx') RETURNING id").pluck().get();
    const insertBlob = db.prepare('INSERT INTO blobs (id, hash, pack, offset, length, raw_length, flags, index_file) VALUES (?, ?, ?, ?, ?, ?, 1, ?)');
    for (let b = 1; b <= BLOBS; b++) insertBlob.run(b, createHash('sha256').update(`blob${b}`).digest(), (b % PACKS) + 1, Math.floor(b / PACKS) * 4096, 4000, 9000, indexFile);
  })();

  const insertObject = db.prepare('INSERT INTO objects (id, bucket, key) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (let i = 0; i < OBJECTS; i++) insertObject.run(i + 1, bucket, keyOf(i));
  })();
  log(`  objects: ${OBJECTS.toLocaleString('en')} in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  // Schema 3: a one-blob version holds its blob; etag and last-modified time as the catalog encodes them.
  const insertVersion = db.prepare(
    `INSERT INTO versions (id, object, version_id, delete_marker, size, etag, last_modified, valid_from, storage_class, meta, run, blob)
     VALUES (?, ?, NULL, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)`,
  );
  let row = 0;
  // Run by run, as backups would record them: the versions of one object are spread over the table.
  for (let r = 1; r <= RUNS; r++) {
    const t = performance.now();
    db.transaction(() => {
      for (let i = 0; i < OBJECTS; i++) {
        row++;
        const validFrom = runStart(r) - 3_600_000 - ((i * 7919) % 3_600_000);
        const lastModified = encodeLastModified(validFrom, validFrom);
        if (isDeleteMarker(i, r)) {
          insertVersion.run(row, i + 1, 1, 0, encodeEtag(''), lastModified, validFrom, r, null);
        } else {
          const etag = encodeEtag(createHash('md5').update(`${i}/${r}`).digest('hex'));
          insertVersion.run(row, i + 1, 0, 1000 + ((i * 31 + r * 7) % 100_000), etag, lastModified, validFrom, r, ((i * 10 + r) % BLOBS) + 1);
        }
      }
    })();
    log(`  run ${r}: ${OBJECTS.toLocaleString('en')} versions in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const t = performance.now();
  db.exec('UPDATE objects SET latest = (SELECT id FROM versions WHERE object = objects.id ORDER BY valid_from DESC, id DESC LIMIT 1)');
  log(`  objects.latest in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  db.pragma('journal_mode = WAL');
  db.close();
  log(`generated ${(OBJECTS * RUNS).toLocaleString('en')} versions in ${((performance.now() - started) / 1000).toFixed(0)} s; ${(statSync(DB).size / 2 ** 30).toFixed(2)} GiB`);
}

/** Runs fn once cold (fresh connection) and `repeat` more times warm; returns ms. */
function time(fn) {
  const t = performance.now();
  const result = fn();
  return { ms: performance.now() - t, result };
}

function measure(name, fn, repeat = 5) {
  const first = time(fn);
  const warm = [];
  for (let i = 0; i < repeat; i++) warm.push(time(fn).ms);
  warm.sort((a, b) => a - b);
  const median = warm[Math.floor(warm.length / 2)];
  log(`${name.padEnd(58)} first ${first.ms.toFixed(1).padStart(8)} ms   median ${median.toFixed(1).padStart(8)} ms   ${first.result}`);
  return { name, first: first.ms, median };
}

/** A whole `ls` listing, page by page as the command fetches it. */
function lsAll(q, prefix, cut) {
  let entries = 0;
  let objects = 0;
  let page = q.ls(BUCKET, prefix, cut);
  for (;;) {
    entries += page.items.length;
    for (const e of page.items) objects += e.objects;
    if (page.next === null) break;
    page = q.ls(BUCKET, prefix, cut, { after: page.next });
  }
  return `${entries} entries, ${objects} objects`;
}

function countPages(fetch) {
  let n = 0;
  let page = fetch(null);
  for (;;) {
    n += page.items.length;
    if (page.next === null) return n;
    page = fetch(page.next);
  }
}

if (!(args.reuse && existsSync(DB))) {
  log(`generating ${DB}: ${OBJECTS.toLocaleString('en')} objects x ${RUNS} runs`);
  generate();
} else {
  log(`reusing ${DB} (${(statSync(DB).size / 2 ** 30).toFixed(2)} GiB)`);
}

const catalog = Catalog.open(DB, REPO_ID);
const stats = catalog.stats();
log(`catalog: ${stats.objects.toLocaleString('en')} objects, ${stats.versions.toLocaleString('en')} versions, ${stats.runs} runs`);
const q = new CatalogQueries(catalog);
const tIndex = performance.now();
q.find('no-such-prefix/**'); // the first find across buckets builds objects_by_key (once per catalog)
log(`first find across buckets on this catalog (builds the objects_by_key index): ${(performance.now() - tIndex).toFixed(0)} ms`);

const partition = partitionName(Math.floor(PARTITIONS / 2));
const key = `${partition}part-04242-c000.snappy.parquet`;
const at = { time: runStart(5) + 3_600_000 }; // between runs 5 and 6: 4 newer versions per key to skip
const results = [
  measure(`ls --at <time> ${partition} (10,000 keys)`, () => lsAll(q, partition, at)),
  measure(`ls --at <run 3> ${partition}`, () => lsAll(q, partition, { runSeq: 3 })),
  measure(`ls ${partition} (latest)`, () => lsAll(q, partition, undefined)),
  measure(`versions ${key}`, () => `${q.versionsOf(BUCKET, key).items.length} versions`),
  measure(`find '${partition}*-c000.snappy.parquet' --larger-than 90000`, () => `${countPages((after) => q.find(`${partition}*-c000.snappy.parquet`, { largerThan: 90_000 }, { after }))} matches`),
  measure(`find '${partition}**' --deleted --at <run 6>`, () => `${countPages((after) => q.find(`${partition}**`, { deleted: true, at: { runSeq: 6 } }, { after }))} matches`),
  measure(`diff <run 5> <run 6> --prefix ${partition}`, () => {
    const s = q.diffSummary({ runSeq: 5 }, { runSeq: 6 }, { prefix: partition });
    return `${s.added.objects} added, ${s.changed.objects} changed, ${s.deleted.objects} deleted`;
  }),
  measure('ls --at <time> events/ (100 partitions, 1,000,000 keys)', () => lsAll(q, 'events/', at), 1),
];
catalog.close();

const byName = (prefix) => {
  const result = results.find((r) => r.name.startsWith(prefix));
  if (result === undefined) throw new Error(`no measurement named ${prefix}...`);
  return result;
};
log('');
log(`target (< 1 s): ls --at of a 10,000-key prefix ${byName('ls --at <time>').first.toFixed(0)} ms cold / ${byName('ls --at <time>').median.toFixed(0)} ms warm; ` +
  `versions of one key ${byName('versions').first.toFixed(1)} ms cold / ${byName('versions').median.toFixed(1)} ms warm`);
