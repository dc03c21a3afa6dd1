#!/usr/bin/env node
// Would a compressing SQLite layer (a VFS that stores each page, or each run of pages, zstd-
// compressed: the kind of layer that changes no query) bring the catalog to the issue's <= 100 B
// per version? Compresses a catalog file (made by bench/catalog-bytes.mjs, so with the real
// schema and a lake's key shape) in chunks of 4, 16 and 64 KiB at zstd levels 3, 9 and 19,
// each chunk on its own as such a layer must (a page is read and written alone), and prints
// the bytes per version. An upper bound on what page compression can do: a real layer adds its
// own page map, and SQLite's free space inside pages is counted here as it compresses.
//
//   npm run build && node bench/catalog-bytes.mjs --versions 300000 --db /tmp/cb.db
//   node bench/catalog-page-compression.mjs --db /tmp/cb.db [--out FILE]
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { compress } from 'zstd-napi';

const { values: args } = parseArgs({ options: { db: { type: 'string', default: '/tmp/lakeguard-catalog-bytes.db' }, out: { type: 'string' } } });
const db = new Database(args.db, { readonly: true });
const versions = /** @type {number} */ (db.prepare('SELECT count(*) FROM versions').pluck().get());
const pageSize = db.pragma('page_size', { simple: true });
db.close();
const file = readFileSync(args.db);
const rows = [];
for (const chunk of [4096, 16384, 65536]) {
  for (const level of [3, 9, 19]) {
    let bytes = 0;
    for (let at = 0; at < file.length; at += chunk) bytes += compress(file.subarray(at, at + chunk), { compressionLevel: level }).length;
    rows.push({ chunk, level, bytesPerVersion: Number((bytes / versions).toFixed(1)) });
    console.error(`[page-compression] ${chunk / 1024} KiB chunks, zstd ${level}: ${(bytes / versions).toFixed(1)} B/version`);
  }
}
const result = { db: args.db, pageSize, versions, fileBytesPerVersion: Number((file.length / versions).toFixed(1)), rows };
console.log(JSON.stringify(result));
if (args.out !== undefined) writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
