#!/usr/bin/env node
// Nights of a run set on a young, growing time-partitioned lake (docs/scale-out.md "Stable
// boundaries", "A shard on a fresh host syncs only its key range"): what each shard's persistent
// range catalog reads from the repository night after night when the plan moves its range.
//
// The lake has keys `t/dt=2026-01-DD/part-NNNNN-<uuid>.snappy.parquet`: `--days` days of `--per-day`
// keys are backed up by one plain run a day (history, on a whole catalog). Then `--nights` nights:
// each adds the next day's keys and rewrites `--changed` keys of the day three days before, and
// runs a run set of `--shards` shards (run set `night-<n>`), one after the other, each on its own
// persistent catalog file `shard-<I>-of-<N>.db` kept from night to night (as on a host that keeps
// its cache directory), the in-process engine calls of `backup --shards I/N`: plan (the first
// shard, from the run manifests' record ranges; the others read the plan), sync the shard's
// range, back it up. A new day's keys sort after every earlier key, so they fall on the last
// shard: the plan changes whenever its share leaves the ±25% tolerance.
//
// Per shard and night: whether the plan reused the last boundaries, the shard's range, and what
// its sync read (GETs and bytes of `packs/`: record blobs; every directory), whether the file was
// imported anew (the sync started from nothing) or its range moved in place, versions held, and
// seconds. `--engine-dir DIR` measures the lakeguard built in DIR (dist/), e.g. an earlier commit.
//
//   npm run build && node bench/shard-nights.mjs [--days 10] [--per-day 3000] [--nights 8]
//        [--shards 4] [--changed 50] [--engine-dir DIR] [--dir /tmp/lgbench-shard-nights] [--out FILE]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { dirCounterClass, shardLake, uuid } from './lib/shard-lake.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    days: { type: 'string', default: '10' },
    'per-day': { type: 'string', default: '3000' },
    nights: { type: 'string', default: '8' },
    shards: { type: 'string', default: '4' },
    changed: { type: 'string', default: '50' },
    'engine-dir': { type: 'string', default: ROOT },
    dir: { type: 'string', default: '/tmp/lgbench-shard-nights' },
    out: { type: 'string' },
  },
});
const DAYS = Number(args.days);
const PER_DAY = Number(args['per-day']);
const NIGHTS = Number(args.nights);
const SHARDS = Number(args.shards);
const CHANGED = Number(args.changed);
const ENGINE = resolve(args['engine-dir']);
if (!(SHARDS >= 2)) throw new Error('--shards: at least 2');
const engine = (p) => import(pathToFileURL(join(ENGINE, 'dist', p)).href);
const { Catalog } = await engine('catalog/catalog.js');
const { Repository } = await engine('repository/repository.js');
const { FsStore } = await engine('storage/fs-store.js');
const { StoreDecorator } = await engine('storage/store-decorator.js');
const { backupGroup } = await engine('engine/backup.js');
const { syncCatalog } = await engine('engine/sync.js');
const { shardCatalogScope } = await engine('engine/shard-scope.js');
const { readPlan } = await engine('engine/shard-plan.js');
const log = (msg) => console.error(`[shard-nights] ${msg}`);

const dayName = (d) => new Date(Date.UTC(2026, 0, 1) + d * 86_400_000).toISOString().slice(0, 10);
const keyOf = (d, i) => `t/dt=${dayName(d)}/part-${String(i).padStart(5, '0')}-${uuid(d * 1_000_000 + i)}.snappy.parquet`;
const bodyOf = (d, i, v = 0) => createHash('sha512').update(`body-${d}-${i}-${v}`).digest();

const DirCounter = dirCounterClass(StoreDecorator);
const { repo, repoDir, lake, group, policy, source, lakeKeys } = await shardLake({ engine, dir: args.dir, password: 'shard-nights', prefixes: ['t/'], file: '<shard-nights>' });
const addDay = async (d) => {
  for (let i = 0; i < PER_DAY; i++) await lake.put(keyOf(d, i), bodyOf(d, i));
};

log(`${DAYS} days of ${PER_DAY} keys (one plain run a day), then ${NIGHTS} nights of ${SHARDS} shards, each adding a day and rewriting ${CHANGED} keys; engine ${ENGINE}`);
const writer = Catalog.open(join(args.dir, 'writer.db'), repo.id);
for (let d = 0; d < DAYS; d++) {
  await addDay(d);
  const s = await backupGroup({ repo, catalog: writer, policy, group, sources: [source()] });
  if (s.status !== 'complete') throw new Error(`history day ${d}: ${s.status}`);
}
writer.close();
log('history written');

const sum = (dirs) => Object.values(dirs).reduce((a, d) => ({ gets: a.gets + d.gets, bytes: a.bytes + d.bytes }), { gets: 0, bytes: 0 });
const rows = [];
const nights = [];
for (let n = 1; n <= NIGHTS; n++) {
  const newDay = DAYS + n - 1;
  await addDay(newDay);
  for (let i = 0; i < CHANGED; i++) await lake.put(keyOf(newDay - 3, i), bodyOf(newDay - 3, i, n));
  const runSet = `night-${n}`;
  let backedUp = 0;
  for (let index = 0; index < SHARDS; index++) {
    const store = new DirCounter(new FsStore({ root: repoDir, fsync: false }));
    const r = await Repository.open(store, { password: async () => 'shard-nights' });
    store.take();
    const catalog = Catalog.open(join(args.dir, `shard-${index}-of-${SHARDS}.db`), r.id);
    const t0 = Date.now();
    const scoped = await shardCatalogScope({ repo: r, catalog, policy, groups: [group], shard: { index, of: SHARDS, runSet }, dryRun: false, concurrency: 16, keys: lakeKeys });
    const planDirs = store.take();
    const t1 = Date.now();
    const warnings = [];
    const sync = await syncCatalog({ repo: r, catalog, scopeTo: scoped.scopeTo, events: (e) => void (e.type === 'warning' && warnings.push(e.message)) });
    const syncDirs = store.take();
    const t2 = Date.now();
    const shard = scoped.planned.shards.get('lake');
    const b = await backupGroup({ repo: r, catalog, policy, group, sources: [source()], shard });
    if (b.status !== 'complete') throw new Error(`night ${n} shard ${index}: ${b.status}`);
    const t3 = Date.now();
    backedUp += b.counters.objectsNew + b.counters.objectsChanged;
    const versionsHeld = catalog.stats().versions;
    catalog.close();
    const reuse = scoped.planned.reuse.get('lake');
    const row = {
      night: n,
      shard: index,
      plan: scoped.planned.created ? ('from' in (reuse ?? {}) ? 'made: reused' : 'made: new boundaries') : 'read',
      ...(reuse === undefined ? {} : { reuse: 'from' in reuse ? `within ${Math.round(reuse.worst * 1000) / 10}%` : reuse.why, boundariesKept: 'from' in reuse ? SHARDS - 1 : (reuse.kept ?? 0) }),
      range: shard.range,
      planRead: sum(planDirs),
      sync: {
        recordBlobs: syncDirs.packs?.gets ?? 0,
        recordBytes: syncDirs.packs?.bytes ?? 0,
        indexFiles: syncDirs.index?.gets ?? 0,
        ...sum(syncDirs),
        importedAnew: sync.full,
        rangeChanged: sync.scopeChanged,
        movedInPlace: sync.resized !== undefined && sync.resized !== null,
        ...(sync.resized ? { dropped: sync.resized } : {}),
        warnings: warnings.length,
      },
      backup: { seen: b.counters.objectsSeen, new: b.counters.objectsNew, changed: b.counters.objectsChanged },
      versionsHeld,
      seconds: { plan: (t1 - t0) / 1000, sync: (t2 - t1) / 1000, backup: (t3 - t2) / 1000 },
    };
    rows.push(row);
    log(JSON.stringify({ night: n, shard: index, plan: row.plan, reuse: row.reuse, sync: row.sync, versionsHeld }));
  }
  const plan = await readPlan(repo, runSet);
  const these = rows.filter((r) => r.night === n);
  const night = {
    night: n,
    boundsReused: plan.groups.lake.boundsFrom !== undefined,
    boundariesKept: these.find((r) => r.boundariesKept !== undefined)?.boundariesKept ?? null,
    shardsImportedAnew: these.filter((r) => r.sync.importedAnew).length,
    shardsMovedInPlace: these.filter((r) => r.sync.movedInPlace).length,
    recordBlobsRead: these.reduce((a, r) => a + r.sync.recordBlobs, 0),
    recordBytesRead: these.reduce((a, r) => a + r.sync.recordBytes, 0),
    syncBytesRead: these.reduce((a, r) => a + r.sync.bytes, 0),
    maxShardRecordBlobs: Math.max(...these.map((r) => r.sync.recordBlobs)),
    backedUp,
    expectedBackedUp: PER_DAY + CHANGED,
  };
  if (backedUp !== night.expectedBackedUp) throw new Error(`night ${n}: ${backedUp} keys backed up, ${night.expectedBackedUp} expected`);
  nights.push(night);
  log(JSON.stringify(night));
}

function engineCommit() {
  try {
    const git = (...a) => execFileSync('git', ['-C', ENGINE, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', 'src') === '' ? '' : '+src');
  } catch {
    try {
      return execFileSync('cat', [join(ENGINE, '.commit')], { encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  }
}
const totals = {
  nights: NIGHTS,
  nightsReused: nights.filter((x) => x.boundsReused).length,
  shardImportsAnew: nights.slice(1).reduce((a, x) => a + x.shardsImportedAnew, 0),
  recordBlobsRead: nights.slice(1).reduce((a, x) => a + x.recordBlobsRead, 0),
  recordBytesRead: nights.slice(1).reduce((a, x) => a + x.recordBytesRead, 0),
  note: 'after night 1 (every file is fresh on night 1)',
};
log(JSON.stringify(totals));
const result = { bench: 'shard-nights', date: new Date().toISOString(), engine: engineCommit(), days: DAYS, perDay: PER_DAY, shards: SHARDS, changed: CHANGED, nights, totals, shards_: rows };
const text = JSON.stringify(result, null, 2);
if (args.out !== undefined) writeFileSync(args.out, text + '\n');
console.log(text);
