#!/usr/bin/env node
// Peak RSS of a seed backup at two object counts (issue 6: "backing up 1,000,000 small objects
// must not use materially more memory than 100,000"), without uploading 1,000,000 objects to the
// shared S3 server: the small objects of the bench data set (same generator, same keys) are
// written to a local directory, and lakeguard backs the directory up into a repository in
// another directory. Everything that scales with the object count (listing, catalog, records,
// index, manifest) runs as in an S3 backup; only the reads come from files instead of GETs.
// --max-size caps each body (default 4 KiB) so that 1,000,000 files fit on disk and in time;
// bodies only size the constant pipeline buffers, not what grows per object.
//
//   npm run build && node bench/rss-flat.mjs --objects 100000,1000000 [--max-size 4096] [--dir /tmp/lgbench-rss-flat]
import { mkdirSync, rmSync, writeFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeDataset, smallBody } from './lib/dataset.mjs';
import { runMeasured, lastJson } from './lib/proc.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    objects: { type: 'string', default: '100000,1000000' },
    'max-size': { type: 'string', default: '4096' },
    dir: { type: 'string', default: '/tmp/lgbench-rss-flat' },
    'engine-dir': { type: 'string', default: ROOT },
    out: { type: 'string' },
  },
});
const counts = args.objects.split(',').map(Number);
const maxSize = Number(args['max-size']);
const BIN = join(resolve(args['engine-dir']), 'bin', 'lakeguard');
const log = (msg) => console.error(`[rss-flat] ${msg}`);

/** Writes the first n small objects of the data set (scale n / 100,000) as files; reuses a complete earlier write. */
function writeLake(n) {
  const lake = join(args.dir, `lake-${n}-${maxSize}`);
  const marker = `${lake}.complete`;
  if (existsSync(marker)) return lake;
  rmSync(lake, { recursive: true, force: true });
  const ds = describeDataset({ seed: 42, scale: n / 100_000 });
  const t0 = Date.now();
  let bytes = 0;
  for (const entry of ds.small) {
    const e = { ...entry, size: Math.min(entry.size, maxSize) };
    const body = smallBody(ds, e);
    const file = join(lake, entry.key);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, body);
    bytes += body.length;
    if (entry.i % 100_000 === 99_999) log(`  wrote ${entry.i + 1}/${n} files (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  writeFileSync(marker, JSON.stringify({ n, maxSize, bytes }));
  return lake;
}

const results = [];
for (const n of counts) {
  log(`writing ${n} files (bodies capped at ${maxSize} bytes)`);
  const lake = writeLake(n);
  const work = join(args.dir, `work-${n}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const policy = join(work, 'lakeguard.yaml');
  writeFileSync(
    policy,
    `version: 1
repository:
  url: file://${join(work, 'repository')}
groups:
  - name: lake
    sources:
      - path: ${lake}
concurrency: { list: 16, transfer: 32 }
`,
  );
  const env = { PATH: `${dirname(process.execPath)}:${process.env.PATH}`, HOME: process.env.HOME, LAKEGUARD_PASSWORD: 'rss-flat', LAKEGUARD_CACHE_DIR: join(work, 'cache') };
  const run = (name, cmd) => runMeasured(BIN, ['--policy', policy, '--catalog', join(work, 'catalog.db'), '--json', ...cmd], { env, workDir: work, name });
  const init = await run('init', ['init']);
  if (init.code !== 0) throw new Error(`init exited ${init.code}: ${init.stderr.slice(-500)}`);
  log(`backing up ${n} files`);
  const m = await run('backup', ['backup']);
  if (m.code !== 0) throw new Error(`backup exited ${m.code}: ${m.stderr.slice(-1000)}`);
  if (m.peakRssKiB === null || m.userS === null || m.sysS === null) throw new Error(`backup: no peak RSS or CPU times from /usr/bin/time -v`);
  const summary = lastJson(m.stdout);
  const catalogBytes = ['', '-wal'].reduce((s, x) => s + (existsSync(join(work, `catalog.db${x}`)) ? statSync(join(work, `catalog.db${x}`)).size : 0), 0);
  const row = { objects: n, maxSize, wallMs: Math.round(m.wallMs), peakRssMB: Math.round(m.peakRssKiB / 1024), cpuS: +(m.userS + m.sysS).toFixed(1), objectsNew: summary?.counters?.objectsNew, catalogBytes };
  log(JSON.stringify(row));
  results.push(row);
  rmSync(join(work, 'repository'), { recursive: true, force: true });
}
if (results.length >= 2) {
  const [a, b] = [results[0], results.at(-1)];
  log(`peak RSS ${a.peakRssMB} MB at ${a.objects} objects, ${b.peakRssMB} MB at ${b.objects}: ${(b.peakRssMB / a.peakRssMB).toFixed(2)}x`);
}
const out = args.out ?? join(ROOT, 'bench', 'results', `rss-flat-${new Date().toISOString().replace(/[:]/g, '-').slice(0, 19)}.json`);
const commitFile = join(resolve(args['engine-dir']), '.commit');
writeFileSync(out, JSON.stringify({ engine: existsSync(commitFile) ? readFileSync(commitFile, 'utf8').trim() : null, results }, null, 2));
log(`results in ${out}`);
