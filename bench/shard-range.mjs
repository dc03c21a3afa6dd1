#!/usr/bin/env node
// A shard on a fresh host syncs only its key range (docs/scale-out.md): what each shard of a run
// set reads from the repository and keeps in its catalog when every shard runs on a fresh host,
// against a fresh whole sync of the same repository. The lake has the key shape of
// bench/catalog-scope.mjs (`warehouse/events/dt=2026-MM-DD/part-NNNNN-<uuid>.snappy.parquet`):
// `--versions` keys in `--partitions` date partitions, backed up into a `file://` repository by
// `--runs` plain runs (history, each adding the next days). Then `--changed` keys change in every
// tenth partition and a run set of `--shards` shards runs, each shard on its own fresh catalog as
// `lakeguard backup --shards I/N` does it on a host without a whole catalog (in-process, the
// engine calls of src/commands/backup.ts): plan the run set (the first shard, from the run
// manifests' record ranges; the others read the plan), sync the shard's range, back it up. Last, a
// fresh catalog syncs the whole repository.
//
// For each shard and for the whole sync: GETs and bytes read by repository directory (`runs/`
// manifests, `packs/` record blobs, `index/` index files, `runsets/` the plan), catalog file
// bytes, versions held, wall time and CPU (process.cpuUsage: the engine runs in this process).
// Target, checked in the same run: every shard reads <= 2/N of the whole sync's bytes plus the
// manifests and plan it reads itself (which every host reads whole), and its catalog file is
// <= 2/N of the whole catalog's; the shards' ranges together hold every version exactly once.
//
//   npm run build && node bench/shard-range.mjs [--versions 120000] [--partitions 60] [--runs 6]
//        [--shards 4] [--changed 100] [--dir /tmp/lgbench-shard-range] [--out FILE]
import { execFileSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { dirCounterClass, shardLake, uuid } from './lib/shard-lake.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    versions: { type: 'string', default: '120000' },
    partitions: { type: 'string', default: '60' },
    runs: { type: 'string', default: '6' },
    shards: { type: 'string', default: '4' },
    changed: { type: 'string', default: '100' },
    dir: { type: 'string', default: '/tmp/lgbench-shard-range' },
    out: { type: 'string' },
  },
});
const N = Number(args.versions);
const P = Number(args.partitions);
const RUNS = Number(args.runs);
const SHARDS = Number(args.shards);
const CHANGED = Number(args.changed);
if (!(SHARDS >= 2)) throw new Error('--shards: at least 2');
const engine = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
const { Catalog } = await engine('catalog/catalog.js');
const { runSetsOf } = await engine('catalog/run-sets.js');
const { Repository } = await engine('repository/repository.js');
const { FsStore } = await engine('storage/fs-store.js');
const { StoreDecorator } = await engine('storage/store-decorator.js');
const { backupGroup } = await engine('engine/backup.js');
const { syncCatalog } = await engine('engine/sync.js');
const { shardCatalogScope } = await engine('engine/shard-scope.js');
const log = (msg) => console.error(`[shard-range] ${msg}`);

const day = (p) => new Date(Date.UTC(2026, 0, 1) + p * 86_400_000).toISOString().slice(0, 10);
const partitionPrefix = (p) => `warehouse/events/dt=${day(p)}/`;
const keyOf = (p, i) => `${partitionPrefix(p)}part-${String(i).padStart(5, '0')}-${uuid(p * 1_000_000 + i)}.snappy.parquet`;
// Small, distinct bodies: the bench measures metadata, not data.
const bodyOf = (p, i, v = 0) => createHash('sha512').update(v === 0 ? `body-${p}-${i}` : `body-${p}-${i}-${v}`).digest();

const DirCounter = dirCounterClass(StoreDecorator, { sizes: true });
const { repo, repoDir, lake, group, policy, source, lakeKeys } = await shardLake({ engine, dir: args.dir, password: 'shard-range', prefixes: [''], file: '<shard-range>' });
const perPartition = Math.ceil(N / P);
const runOf = (p) => Math.floor((p * RUNS) / P);
const loads = [];
const load = (step) => loads.push({ step, load1: Math.round(loadavg()[0] * 100) / 100 });

log(`${N} versions in ${P} partitions of ${perPartition}, backed up by ${RUNS} runs; then ${CHANGED} keys changed in every tenth partition and ${SHARDS} shards`);
load('start');
const writer = Catalog.open(join(args.dir, 'writer.db'), repo.id);
const history = [];
for (let r = 0; r < RUNS; r++) {
  for (let p = 0; p < P; p++) if (runOf(p) === r) for (let i = 0; i < perPartition; i++) await lake.put(keyOf(p, i), bodyOf(p, i));
  const t0 = Date.now();
  const s = await backupGroup({ repo, catalog: writer, policy, group, sources: [source()] });
  if (s.status !== 'complete') throw new Error(`history run ${r}: ${s.status}`);
  history.push({ run: s.runId, newObjects: s.counters.objectsNew, seconds: (Date.now() - t0) / 1000 });
  log(JSON.stringify(history.at(-1)));
}
const historyVersions = writer.stats().versions;
writer.close();
let changedKeys = 0;
for (let p = 0; p < P; p += 10) for (let i = 0; i < Math.min(CHANGED, perPartition); i++, changedKeys++) await lake.put(keyOf(p, i), bodyOf(p, i, 1));

const fileBytes = (f) => (existsSync(f) ? statSync(f).size : 0) + (existsSync(`${f}-wal`) ? statSync(`${f}-wal`).size : 0);
const sumDirs = (...ds) => {
  const out = {};
  for (const d of ds) {
    for (const [k, v] of Object.entries(d)) {
      const o = (out[k] ??= { gets: 0, bytes: 0, sizes: [] });
      o.gets += v.gets;
      o.bytes += v.bytes;
      o.sizes.push(...v.sizes);
    }
  }
  return out;
};
const total = (dirs) => Object.values(dirs).reduce((a, d) => ({ gets: a.gets + d.gets, bytes: a.bytes + d.bytes }), { gets: 0, bytes: 0 });
/** GETs and bytes without the per-GET sizes, for the log. */
const brief = (x) => ({ gets: x.gets, bytes: x.bytes, dirs: Object.fromEntries(Object.entries(x.dirs).map(([k, v]) => [k, `${v.gets} GETs, ${v.bytes} B`])) });
/** Wall and CPU seconds of one step. */
async function timed(fn) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const cpu = process.cpuUsage(c0);
  return { value, seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}
/** A fresh host's view of the repository: a newly opened repository on a counting store. */
async function host() {
  const store = new DirCounter(new FsStore({ root: repoDir, fsync: false }));
  const r = await Repository.open(store, { password: async () => 'shard-range' });
  store.take(); // opening (config, keys) is not the sync's
  return { store, r };
}

const shards = [];
for (let index = 0; index < SHARDS; index++) {
  const { store, r } = await host();
  const file = join(args.dir, `shard-${index}-of-${SHARDS}.db`);
  const catalog = Catalog.open(file, r.id);
  const plan = await timed(() =>
    shardCatalogScope({ repo: r, catalog, policy, groups: [group], shard: { index, of: SHARDS, runSet: 'nightly' }, dryRun: false, concurrency: 16, keys: lakeKeys }),
  );
  const planDirs = store.take();
  const scoped = plan.value;
  if (scoped.scopeTo === undefined) throw new Error(`shard ${index}: not scoped to a range`);
  const sync = await timed(() => syncCatalog({ repo: r, catalog, scopeTo: scoped.scopeTo }));
  const syncDirs = store.take();
  const held = catalog.stats().versions;
  const backup = await timed(() => backupGroup({ repo: r, catalog, policy, group, sources: [source()], shard: scoped.planned.shards.get('lake') }));
  const backupDirs = store.take();
  const s = backup.value;
  if (s.status !== 'complete') throw new Error(`shard ${index}: ${s.status}`);
  const heldAfter = catalog.stats().versions;
  catalog.close(); // folds the WAL into the file
  const dirs = sumDirs(planDirs, syncDirs);
  const row = {
    shard: index,
    planned: scoped.planned.created ? scoped.planned.planned.get('lake') : 'read',
    range: scoped.planned.shards.get('lake').range,
    plan: { ...total(planDirs), dirs: planDirs, seconds: plan.seconds, cpuSeconds: plan.cpuSeconds },
    sync: { ...total(syncDirs), dirs: syncDirs, lists: sync.value.requests.list, recordBytes: sync.value.bytesRead, indexFiles: sync.value.indexFiles, seconds: sync.seconds, cpuSeconds: sync.cpuSeconds },
    // What the shard read before its backup (plan + sync): the figure compared with the whole sync.
    read: { ...total(dirs), dirs },
    versionsSynced: held,
    backup: {
      ...total(backupDirs),
      dirs: backupDirs,
      seen: s.counters.objectsSeen,
      changed: s.counters.objectsChanged,
      new: s.counters.objectsNew,
      deleted: s.counters.objectsDeleted,
      seconds: backup.seconds,
      cpuSeconds: backup.cpuSeconds,
    },
    versionsHeld: heldAfter,
    catalogBytes: fileBytes(file),
    seconds: plan.seconds + sync.seconds + backup.seconds,
    cpuSeconds: plan.cpuSeconds + sync.cpuSeconds + backup.cpuSeconds,
  };
  shards.push(row);
  load(`shard-${index}`);
  log(JSON.stringify({ shard: index, planned: row.planned, read: brief(row.read), versionsHeld: heldAfter, catalogBytes: row.catalogBytes, seconds: row.seconds, cpuSeconds: row.cpuSeconds }));
}

// The whole repository on a fresh host, after the run set.
const whole = await (async () => {
  const { store, r } = await host();
  const file = join(args.dir, 'whole.db');
  const catalog = Catalog.open(file, r.id);
  const sync = await timed(() => syncCatalog({ repo: r, catalog }));
  const dirs = store.take();
  const held = catalog.stats().versions;
  const runSet = runSetsOf(catalog).find((x) => x.name === 'nightly');
  catalog.close();
  const row = {
    ...total(dirs),
    dirs,
    lists: sync.value.requests.list,
    recordBytes: sync.value.bytesRead,
    indexFiles: sync.value.indexFiles,
    versionsHeld: held,
    runSetStatus: runSet?.status ?? null,
    catalogBytes: fileBytes(file),
    seconds: sync.seconds,
    cpuSeconds: sync.cpuSeconds,
  };
  load('whole');
  log(JSON.stringify({ whole: { ...row, dirs: brief(row).dirs } }));
  return row;
})();

const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const manifestBytes = (dirs) => (dirs.runs?.bytes ?? 0) + (dirs.runsets?.bytes ?? 0);
for (const s of shards) {
  s.ratio = { bytesRead: round(s.read.bytes / whole.bytes), catalogBytes: round(s.catalogBytes / whole.catalogBytes), versions: round(s.versionsHeld / whole.versionsHeld) };
}
const limit = 2 / SHARDS;
const targets = [
  {
    target: `every shard reads <= 2/N (${round(limit)}) of the whole sync's bytes + its own manifest and plan bytes`,
    measured: shards.map((s) => `${s.shard}: ${s.read.bytes} <= ${Math.round(limit * whole.bytes + manifestBytes(s.read.dirs))}`),
    met: shards.every((s) => s.read.bytes <= limit * whole.bytes + manifestBytes(s.read.dirs)),
  },
  {
    target: `every shard's catalog file <= 2/N (${round(limit)}) of the whole catalog's`,
    measured: shards.map((s) => `${s.shard}: ${s.ratio.catalogBytes}`),
    met: shards.every((s) => s.catalogBytes <= limit * whole.catalogBytes),
  },
  {
    target: 'the shards synced every version of the history once (their ranges partition the keys), and the whole catalog sees a complete run set',
    measured: `${shards.reduce((a, s) => a + s.versionsSynced, 0)} synced by the shards, ${historyVersions} in the history; run set ${whole.runSetStatus}; ${shards.reduce((a, s) => a + s.backup.changed + s.backup.new, 0)} of ${changedKeys} changed keys backed up`,
    met:
      shards.reduce((a, s) => a + s.versionsSynced, 0) === historyVersions &&
      whole.runSetStatus === 'complete' &&
      shards.reduce((a, s) => a + s.backup.changed + s.backup.new, 0) === changedKeys,
  },
];
// Per version of the whole sync, for estimates at other sizes (docs/scale-out.md).
const perVersion = {
  recordBytes: round(whole.dirs.packs.bytes / whole.versionsHeld, 1),
  indexBytes: round((whole.dirs.index?.bytes ?? 0) / whole.versionsHeld, 1),
  bytesRead: round(whole.bytes / whole.versionsHeld, 1),
  catalogBytes: round(whole.catalogBytes / whole.versionsHeld, 1),
  // The median record blob read by the whole sync (the history's full blobs outnumber the shards' small ones).
  recordBlobBytes: [...whole.dirs.packs.sizes].sort((a, b) => a - b)[Math.floor(whole.dirs.packs.sizes.length / 2)],
};
for (const t of targets) log(`${t.met ? 'PASS' : 'FAIL'} ${t.target}: ${Array.isArray(t.measured) ? t.measured.join(', ') : t.measured}`);

/** The measured checkout's commit, `+src` when src/ differs from it (dist/ is built from src/). */
function engineCommit() {
  try {
    const git = (...a) => execFileSync('git', ['-C', ROOT, ...a], { encoding: 'utf8' }).trim();
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', 'src') === '' ? '' : '+src');
  } catch {
    return null;
  }
}
const result = {
  bench: 'shard-range',
  date: new Date().toISOString(),
  engine: engineCommit(),
  versions: N,
  partitions: P,
  runs: RUNS,
  shards: SHARDS,
  changedKeys,
  historyVersions,
  history,
  runSet: shards,
  whole,
  perVersion,
  targets,
  loads,
};
const text = JSON.stringify(result, null, 2);
if (args.out !== undefined) writeFileSync(args.out, text + '\n');
console.log(text);
