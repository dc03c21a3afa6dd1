#!/usr/bin/env node
// What a command scoped to one partition reads of a catalog, by the catalog's size (docs/scale-out.md
// "Per-partition catalogs: decided against"): the latest state of every key under a prefix (what
// `ls`, `restore --prefix` and a scoped backup's merge-join start from), in a fresh process, with
// the page cache dropped first (--drop-caches, root only). Bytes SQLite read (rchar) and bytes the
// disk read (read_bytes, readahead included), from /proc/self/io of a child per run.
//
//   node bench/catalog-bytes.mjs --versions 100000 --db /tmp/cb100k.db
//   node bench/catalog-bytes.mjs --versions 2000000 --db /tmp/cb2m.db
//   node bench/catalog-prefix-read.mjs --db /tmp/cb100k.db --db /tmp/cb2m.db --drop-caches
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    db: { type: 'string', multiple: true, default: [] },
    prefix: { type: 'string', default: 'warehouse/events/dt=2020-01-02/hour=05/' },
    runs: { type: 'string', default: '3' },
    'drop-caches': { type: 'boolean', default: false },
    child: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});

const io = () => Object.fromEntries(readFileSync('/proc/self/io', 'utf8').trim().split('\n').map((l) => l.split(': ')).map(([k, v]) => [k, Number(v)]));

if (args.child) {
  const Database = createRequire(import.meta.url)('better-sqlite3');
  const before = io();
  const db = new Database(args.db[0], { readonly: true });
  const rows = db
    .prepare(
      `SELECT o.key, v.size, v.etag, b.hash FROM objects o JOIN versions v ON v.id = o.latest LEFT JOIN blobs b ON b.id = v.blob
       WHERE o.bucket = 1 AND o.key >= ? AND o.key < ? ORDER BY o.key`,
    )
    .all(args.prefix, `${args.prefix}\uffff`);
  const after = io();
  console.log(JSON.stringify({ rows: rows.length, sqliteReadBytes: after.rchar - before.rchar, diskReadBytes: after.read_bytes - before.read_bytes }));
  process.exit(0);
}

const results = [];
for (const db of args.db) {
  const versions = JSON.parse(execFileSync(process.execPath, ['-e', `const D=require('better-sqlite3');console.log(JSON.stringify(new D(${JSON.stringify(db)},{readonly:true}).prepare('SELECT count(*) AS n FROM versions').get().n))`], { encoding: 'utf8' }));
  for (let i = 0; i < Number(args.runs); i++) {
    if (args['drop-caches']) {
      execFileSync('sync');
      writeFileSync('/proc/sys/vm/drop_caches', '3');
    }
    const child = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--child', '--db', db, '--prefix', args.prefix], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(child.stderr);
    results.push({ db, versions, fileBytes: statSync(db).size, ...JSON.parse(child.stdout) });
    console.error(`[catalog-prefix-read] ${JSON.stringify(results.at(-1))}`);
  }
}
if (args.out) writeFileSync(args.out, JSON.stringify({ bench: 'catalog-prefix-read', prefix: args.prefix, dropCaches: args['drop-caches'], results }, null, 2));
