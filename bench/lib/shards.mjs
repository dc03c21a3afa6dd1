// The scale-out scenario of the bench (issue 20): one seed backup of the same bucket by 1, 2
// and 4 lakeguard processes on this machine. 1 is a plain `backup` (what a single worker runs
// today); 2 and 4 are the shards of one run set (`backup --shards N --shard I --run-set NAME`),
// started together, each with its own catalog and cache directory, as pods with empty HOMEs
// are. Each count backs up into a repository of its own.
//
// Measured per count: wall time from the first start to the last exit (objects/s), the CPU
// seconds of the lakeguard processes (user + system, summed) and of the S3 server's daemons in
// that interval, per 1,000 objects. Honestly bounded: this machine has 2 cores, shared by the
// shards and the one local S3 server (Ceph RGW), so more than 2 processes cannot add CPU; what
// the scenario shows is how much of the 1-process run's time was waiting (latency) that more
// processes overlap, and what sharding costs in CPU per object (planning, a listing per range).
// The model beyond this machine is docs/scale-out.md, "Sizing model".
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { smallBody } from './dataset.mjs';
import { forEachLimit } from './pool.mjs';
import { serverCpuSeconds } from './proc.mjs';
import { S3, dropBucket, ensureBucket } from './s3.mjs';

/** Objects of the scenario's bucket (all small objects of smaller data sets, e.g. smoke runs). */
export const SHARD_OBJECTS = 10_000;
/** The process counts compared; the first is the baseline. */
export const SHARD_COUNTS = [1, 2, 4];

const round2 = (x) => Math.round(x * 100) / 100;

/**
 * Runs the scenario `repeats` times (the order of the counts alternates between repeats, so
 * that drift in the machine's load does not favour one count); one row per count, from the
 * repeat with the median wall time. `ctx` is run.mjs's toolbox (as for the incident scenarios).
 * @param {{
 *   s3: import('@aws-sdk/client-s3').S3Client, ds: any, tag: string, work: string, repoBucket: string,
 *   concurrency: number, listConcurrency: number, repeats: number, meta: Record<string, any>,
 *   log: (msg: string) => void,
 *   step: (name: string, tool: string, fn: () => Promise<any>) => Promise<any>,
 *   row: (name: string, tool: string, m: any, fields: any) => any,
 *   lakeguard: (name: string, args: string[], options: { policy: string, catalog: string, cacheDir?: string, okCodes?: number[] }) => Promise<{ m: any, summaries: any[], messages: any[] }>,
 * }} ctx
 */
export async function runShardScenarios(ctx) {
  const { s3, ds, tag, log, step, row, meta } = ctx;
  const entries = ds.small.slice(0, Math.min(SHARD_OBJECTS, ds.small.length));
  const bytes = entries.reduce((n, e) => n + e.size, 0);
  const bucket = `lgbench-shards-${tag}`;
  /** @type {{ bucket: string, objects: number, bytes: number, repeats: number, nproc?: number, runs: any[], summary: any[] }} */
  const info = { bucket, objects: entries.length, bytes, repeats: ctx.repeats, runs: [], summary: [] };
  meta.shards = info;
  try {
    await ensureBucket(s3, bucket);
    log(`shard scenarios: ${entries.length} objects into ${bucket}; ${SHARD_COUNTS.join(', ')} processes, ${ctx.repeats} repeat(s)`);
    await forEachLimit(entries, 64, (e) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: e.key, Body: smallBody(ds, e, 0), ContentType: 'application/octet-stream' })));

    /** @type {Map<number, any[]>} count -> its measured runs */
    const byCount = new Map(SHARD_COUNTS.map((n) => [n, []]));
    for (let r = 0; r < ctx.repeats; r++) {
      const order = r % 2 === 0 ? SHARD_COUNTS : [...SHARD_COUNTS].reverse();
      for (const n of order) {
        await step(`shards-${n}${r === 0 ? '' : `-${r}`}`, 'lakeguard', async () => {
          const run = await measureRunSet(ctx, { bucket, shards: n, repeat: r, expectNew: entries.length });
          byCount.get(n)?.push(run);
          info.runs.push(run);
        });
      }
    }

    // One row per count: its median run.
    const base = median(byCount.get(SHARD_COUNTS[0]) ?? []);
    for (const n of SHARD_COUNTS) {
      const run = median(byCount.get(n) ?? []);
      if (!run) continue;
      const r = row(`shards-${n}`, 'lakeguard', run.m, {
        objects: entries.length,
        bytes,
        requests: run.requests,
        engineMs: null,
        extra: { processes: n, runSet: run.runSet, perProcess: run.perProcess, wallMsRuns: (byCount.get(n) ?? []).map((x) => Math.round(x.m.wallMs)) },
      });
      const summary = {
        processes: n,
        objectsPerS: round2(r.objectsPerS ?? 0),
        speedup: base ? round2(base.m.wallMs / run.m.wallMs) : null,
        clientCpuSPer1000: round2((run.m.userS + run.m.sysS) / (entries.length / 1000)),
        serverCpuSPer1000: run.m.serverCpuS == null ? null : round2(run.m.serverCpuS / (entries.length / 1000)),
        requests: run.requests,
      };
      info.summary.push(summary);
      log(
        `shards-${n}: ${summary.objectsPerS} objects/s (${summary.speedup}x the 1-process run), ` +
          `${summary.clientCpuSPer1000} s lakeguard CPU + ${summary.serverCpuSPer1000 ?? '-'} s server CPU per 1,000 objects`,
      );
    }
  } finally {
    const err = await dropBucket(s3, bucket);
    if (err) meta.notes.push(`cleanup: ${err}`);
  }
}

/**
 * One seed of the bucket by `shards` processes started at once into a fresh repository.
 * Returns a measurement shaped like runMeasured's (wall from the first start to the last exit,
 * CPU summed over the processes, peak RSS the largest) plus the per-process numbers.
 */
async function measureRunSet(ctx, { bucket, shards, repeat, expectNew }) {
  const name = `shards-${shards}-r${repeat}`;
  const dir = join(ctx.work, name);
  mkdirSync(dir, { recursive: true });
  const policy = join(dir, 'lakeguard.yaml');
  const endpoint = S3.endpoint;
  writeFileSync(
    policy,
    [
      'version: 1',
      'repository:',
      `  url: s3://${ctx.repoBucket}/${name}`,
      `  endpoint: ${endpoint}`,
      's3:',
      `  endpoint: ${endpoint}`,
      'groups:',
      '  - name: lake',
      '    sources:',
      `      - bucket: ${bucket}`,
      `concurrency: { list: ${ctx.listConcurrency}, transfer: ${ctx.concurrency} }`,
      '',
    ].join('\n'),
  );
  /** Each process has its own catalog and cache, as a pod with an empty HOME. */
  const proc = (i) => ({ policy, catalog: join(dir, `host-${i}`, 'catalog.db'), cacheDir: join(dir, `host-${i}`, 'cache') });
  await ctx.lakeguard(`${name}-init`, ['init'], proc('init'));

  const runSet = shards === 1 ? null : `bench-${ctx.tag}-${name}`;
  const server0 = serverCpuSeconds();
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: shards }, (_, i) => {
      const args = runSet === null ? ['backup'] : ['backup', '--shards', String(shards), '--shard', String(i), '--run-set', runSet];
      return ctx.lakeguard(`${name}-${i}`, args, proc(i));
    }),
  );
  const wallMs = performance.now() - t0;
  const server1 = serverCpuSeconds();

  const perProcess = results.map(({ m, summaries }, i) => {
    const s = summaries.at(-1);
    if (!s) throw new Error(`${name} process ${i}: no summary`);
    return {
      shard: i,
      wallMs: Math.round(m.wallMs),
      cpuS: round2(m.userS + m.sysS),
      peakRssMB: m.peakRssKiB === null ? null : Math.round((m.peakRssKiB * 1024) / 1e6),
      objectsSeen: s.counters.objectsSeen,
      objectsNew: s.counters.objectsNew,
      objectsFailed: s.counters.objectsFailed,
      requests: s.counters.requests,
      runId: s.runId,
    };
  });
  const sum = (f) => perProcess.reduce((n, p) => n + f(p), 0);
  const failed = sum((p) => p.objectsFailed);
  const copied = sum((p) => p.objectsNew);
  if (failed > 0) throw new Error(`${name}: ${failed} objects failed`);
  // Every object exactly once over the shards: the ranges split the key space.
  if (copied !== expectNew) throw new Error(`${name}: the processes copied ${copied} new objects together, expected ${expectNew}`);
  const requests = {};
  for (const p of perProcess) for (const [k, v] of Object.entries(p.requests)) requests[k] = (requests[k] ?? 0) + v;
  const m = {
    wallMs,
    userS: results.reduce((n, r) => n + (r.m.userS ?? 0), 0),
    sysS: results.reduce((n, r) => n + (r.m.sysS ?? 0), 0),
    peakRssKiB: Math.max(...results.map((r) => r.m.peakRssKiB ?? 0)),
    serverCpuS: server0 === null || server1 === null ? null : round2(server1 - server0),
  };
  return { shards, repeat, runSet, m, requests, perProcess };
}

/** The run with the median wall time (the lower middle of an even count). */
function median(runs) {
  if (runs.length === 0) return undefined;
  const sorted = [...runs].sort((a, b) => a.m.wallMs - b.m.wallMs);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}
