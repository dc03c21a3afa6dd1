#!/usr/bin/env node
// The per-object cost of a restore, two engines in one process (issue 22): each engine's own
// dist/ modules (repository, catalog, restore engine, stores) restore the run that
// bench/tools/restore-dir.mjs set up in --work, alternately, --reps times each. One process
// means no start-up (modules, scrypt) in the numbers, and back-to-back repetitions pair the
// engines under the same load. CPU is process.cpuUsage() (every thread: libuv's pool too).
//
//   node bench/tools/restore-ab.mjs --work /tmp/rd/s3-0.05 --engines /tmp/lg-base,. --reps 6 \
//     [--to s3://bucket/prefix] [--concurrency 32]
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { S3 } from '../lib/s3.mjs';

const { values: o } = parseArgs({
  options: {
    work: { type: 'string' },
    engines: { type: 'string', default: '/tmp/lg-base,.' },
    reps: { type: 'string', default: '5' },
    to: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
  },
});
if (o.work === undefined) throw new Error('--work DIR: the directory bench/tools/restore-dir.mjs set up (e.g. /tmp/rd/s3-0.05)');
const work = resolve(o.work);
Object.assign(process.env, { AWS_ACCESS_KEY_ID: S3.accessKeyId, AWS_SECRET_ACCESS_KEY: S3.secretAccessKey, AWS_REGION: S3.region });
const state = JSON.parse(readFileSync(join(work, 'state.json'), 'utf8'));
const repoUrl = existsSync(join(work, 'lg-repo')) ? pathToFileURL(join(work, 'lg-repo')).href : `s3://lgbench-restoredir-${(work.split('-').at(-1) ?? '').replace('.', '-')}/lakeguard`;

const engines = [];
for (const dir of o.engines.split(',').map((e) => resolve(e))) {
  const load = (p) => import(pathToFileURL(join(dir, 'dist', p)).href);
  const [{ Repository }, { openStore }, { Catalog }, { restore }, { FsStore }] = await Promise.all(
    ['repository/repository.js', 'storage/open.js', 'catalog/catalog.js', 'engine/restore.js', 'storage/fs-store.js'].map(load),
  );
  const repo = await Repository.open(openStore(repoUrl, { endpoint: S3.endpoint, maxSockets: Number(o.concurrency) * 2 }), { password: async () => 'lakeguard bench password' });
  const catalog = Catalog.open(join(work, 'catalog', 'catalog.db'), repo.id);
  const run = catalog.findRun(state.runId);
  engines.push({ name: dir.split('/').at(-1), dir, repo, catalog, restore, FsStore, openStore, cut: { runSeq: run.seq } });
}

/** @type {{ cpu: number, wall: number, n: number }[][]} */
const results = engines.map(() => []);
for (let rep = 0; rep < Number(o.reps); rep++) {
  for (const [i, e] of engines.entries()) {
    const targetDir = o.to === undefined ? mkdtempSync(join(work, 'ab-')) : null;
    const to = o.to ?? '';
    const target = targetDir !== null ? new e.FsStore({ root: targetDir, fsync: false, userFiles: true }) : e.openStore(`${to.replace(/\/$/, '')}/ab${rep}e${i}/`, { endpoint: S3.endpoint, maxSockets: Number(o.concurrency) * 2, uploadConcurrency: 2 });
    global.gc?.();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const s = await e.restore({ repo: e.repo, catalog: e.catalog, scopes: [{ bucket: 'lake' }], cut: e.cut, target, bucketDirs: false, overwrite: 'always', concurrency: Number(o.concurrency) });
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    if (s.failed !== 0) throw new Error(`${e.name}: ${s.failed} failed`);
    const cpu = (c.user + c.system) / 1e6;
    results[i].push({ cpu, wall, n: s.restored });
    console.log(`rep ${rep} ${e.name.padEnd(12)} ${s.restored} objects  cpu ${cpu.toFixed(2)} s (${((cpu / s.restored) * 1000).toFixed(3)} ms/object)  wall ${wall.toFixed(2)} s  rss ${(process.memoryUsage.rss() / 1e6).toFixed(0)} MB`);
    if (targetDir !== null) rmSync(targetDir, { recursive: true, force: true });
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`\nmedians of ${o.reps} repetitions`);
for (const [i, e] of engines.entries()) {
  const cpu = median(results[i].map((r) => r.cpu));
  console.log(`${e.name.padEnd(12)} cpu ${cpu.toFixed(2)} s (${((cpu / results[i][0].n) * 1000).toFixed(3)} ms/object)  wall ${median(results[i].map((r) => r.wall)).toFixed(2)} s`);
}
// Paired: each repetition's ratio of the last engine to the first (the same minute's load).
if (engines.length > 1) {
  const last = results[results.length - 1] ?? [];
  const ratios = (results[0] ?? []).map((r, k) => (last[k]?.cpu ?? NaN) / r.cpu);
  console.log(`cpu ratio ${engines.at(-1).name}/${engines[0].name} per repetition: ${ratios.map((x) => x.toFixed(2)).join(' ')} (median ${median(ratios).toFixed(2)})`);
}
for (const e of engines) e.catalog.close();
process.exit(0);
