// The `lakeguard serve` scenario of the bench (issue 21), on the main data set's seed backup of
// its small objects (100,000 at scale 1):
//
//   serve-start-warm   time from starting `serve` to the first byte of a GET, with the catalog
//                      already synced (the usual case: the host that backs up, or a second start)
//   serve-start-cold   the same on an empty catalog: the start syncs it from the repository
//   serve-start-100k-warm, serve-start-100k-cold
//                      the same on a catalog of 100,000 objects whatever the scale: a directory
//                      of 100,000 small files backed up into the bench's S3 repository (a
//                      directory source, so that no 100,000-object upload to S3 is needed)
//   serve-read-32      every small object read through serve by 32 clients (lakeguard's lean
//                      GET path, bench/tools/raw-get.mjs), against
//   restore-dir        `restore --to-dir` of the same run (the same objects, to a local disk)
//   serve-read-64      the same read by 64 clients on a fresh serve process: its peak RSS
//
// The serve process's peak RSS is its VmHWM (/proc/<pid>/status) just before it is stopped,
// its CPU its utime + stime; the clients run in processes of their own. Everything shares the
// machine's cores with the S3 server (Ceph RGW), which serves the repository's packs.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { smallBody } from './dataset.mjs';
import { runMeasured, lastJson } from './proc.mjs';
import { S3 } from './s3.mjs';

const SERVE_KEYS = { LAKEGUARD_SERVE_ACCESS_KEY_ID: 'LGBENCHSERVE', LAKEGUARD_SERVE_SECRET_ACCESS_KEY: 'lakeguard-bench-serve-secret-000000000000' };
const round2 = (x) => Math.round(x * 100) / 100;
/** Objects of the catalog the start is also measured on, whatever the scale. */
export const START_CATALOG_OBJECTS = 100_000;

/** VmHWM and VmRSS of a process in MB, and its CPU seconds so far; null once it is gone. */
function procStats(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { peakRssMB: Math.round((kib('VmHWM') * 1024) / 1e6), rssMB: Math.round((kib('VmRSS') * 1024) / 1e6), cpuS: (Number(fields[11]) + Number(fields[12])) / 100 };
  } catch {
    return null;
  }
}

/**
 * Starts `lakeguard serve --json` (bin/lakeguard: as users run it) and resolves once it listens,
 * with the ms from spawn to the listening line.
 */
function startServe(ctx, { catalog, cacheDir, args }) {
  const t0 = performance.now();
  const child = spawn(ctx.bin, ['--policy', ctx.policy, '--catalog', catalog, 'serve', '--json', '--listen', '127.0.0.1:0', ...args], {
    env: { ...ctx.env, LAKEGUARD_CACHE_DIR: cacheDir, ...SERVE_KEYS },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d) => {
      if (stdout.includes('"listening"')) return;
      stdout += d;
      const line = stdout.split('\n').find((l) => l.includes('"message_type":"listening"'));
      if (line === undefined) return;
      const listening = JSON.parse(line);
      resolve({
        t0,
        listenMs: performance.now() - t0,
        url: listening.url,
        listening,
        pid: child.pid,
        stop: async () => {
          child.kill('SIGTERM');
          const code = await exited;
          if (code !== 130) throw new Error(`serve exited ${code} on SIGTERM, expected 130: ${stderr}`);
        },
      });
    });
    void exited.then((code) => reject(new Error(`serve exited ${code} before listening: ${stderr}`)));
  });
}

function serveClient(url) {
  return new S3Client({
    endpoint: url,
    region: S3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: SERVE_KEYS.LAKEGUARD_SERVE_ACCESS_KEY_ID, secretAccessKey: SERVE_KEYS.LAKEGUARD_SERVE_SECRET_ACCESS_KEY },
    maxAttempts: 1,
  });
}

/**
 * Runs the scenario. `ctx`: run.mjs's toolbox, the seed run of the small objects, and the
 * bench's policy, catalog and key file of the small objects.
 * @param {{
 *   ds: any, srcBucket: string, runId: string, policy: string, catalog: string, work: string, bin: string, engineDir: string, repoBucket: string,
 *   env: Record<string, string | undefined>, smallKeys: string, meta: Record<string, any>, log: (msg: string) => void,
 *   step: (name: string, tool: string, fn: () => Promise<any>) => Promise<any>,
 *   row: (name: string, tool: string, m: any, fields: any) => any,
 *   lakeguard: (name: string, args: string[], options?: { policy: string, catalog: string, cacheDir?: string }) => Promise<{ m: any, summaries: any[] }>,
 * }} ctx
 */
export async function runServeScenarios(ctx) {
  const { ds, log, step, row, meta } = ctx;
  const objects = ds.small.length;
  const bytes = ds.smallBytes;
  const info = { objects, bytes, runId: ctx.runId };
  meta.serve = info;
  const args = ['--run', ctx.runId, '--group', 'small'];
  const probe = ds.small[Math.floor(objects / 2)];
  const dir = join(ctx.work, 'serve');
  mkdirSync(dir, { recursive: true });

  /** Start to first byte of `probe`, on a synced catalog (warm) or an empty one (cold: a full sync). */
  const startToFirstByte = async (name, { policy, catalog, bucket, serveArgs, probeKey, probeBody, catalogObjects }) => {
    const served = await startServe({ ...ctx, policy }, { catalog, cacheDir: join(dir, `${name}-cache`), args: serveArgs });
    const client = serveClient(served.url);
    try {
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: probeKey }));
      /** @type {number | null} */
      let first = null;
      const parts = [];
      for await (const part of /** @type {import('node:stream').Readable} */ (got.Body)) {
        first ??= performance.now();
        parts.push(part);
      }
      if (first === null || !Buffer.concat(parts).equals(probeBody)) throw new Error(`${probeKey} read through serve differs from the source`);
      const stats = procStats(served.pid);
      const m = { wallMs: first - served.t0, peakRssKiB: stats === null ? null : (stats.peakRssMB * 1e6) / 1024, userS: stats?.cpuS ?? null, sysS: 0, serverCpuS: null };
      return row(name, 'lakeguard', m, { objects: 1, bytes: probeBody.length, requests: { get: 1 }, extra: { listenMs: Math.round(served.listenMs), firstByteMs: Math.round(first - served.t0), catalogObjects } });
    } finally {
      client.destroy();
      await served.stop();
    }
  };
  const mainSet = { policy: ctx.policy, bucket: ctx.srcBucket, serveArgs: args, probeKey: probe.key, probeBody: smallBody(ds, probe), catalogObjects: objects };

  await step('serve-start-warm', 'lakeguard', () => startToFirstByte('serve-start-warm', { ...mainSet, catalog: ctx.catalog }));
  await step('serve-start-cold', 'lakeguard', () => startToFirstByte('serve-start-cold', { ...mainSet, catalog: join(dir, 'cold', 'catalog.db') }));
  if (objects < START_CATALOG_OBJECTS) {
    const big = await step('serve-100k-backup', 'lakeguard', () => backupDirectory(ctx, dir));
    if (big) {
      for (const temperature of ['warm', 'cold']) {
        const name = `serve-start-100k-${temperature}`;
        const catalog = temperature === 'warm' ? big.catalog : join(dir, 'cold-100k', 'catalog.db');
        await step(name, 'lakeguard', () => startToFirstByte(name, { ...big, catalog, serveArgs: [] }));
      }
    }
  }

  /** Every small object through a fresh serve process by `clients` clients (raw-get.mjs, lean GETs). */
  const readAll = async (name, clients) => {
    const served = await startServe(ctx, { catalog: ctx.catalog, cacheDir: join(dir, `${name}-cache`), args });
    try {
      const idle = procStats(served.pid);
      const m = await runMeasured(process.execPath, [join(ctx.engineDir, 'bench/tools/raw-get.mjs'), '--bucket', ctx.srcBucket, '--keys', ctx.smallKeys, '--concurrency', String(clients), '--endpoint', served.url, '--client', 'lean', '--engine-dir', ctx.engineDir], {
        env: { ...ctx.env, LAKEGUARD_S3_ACCESS_KEY: SERVE_KEYS.LAKEGUARD_SERVE_ACCESS_KEY_ID, LAKEGUARD_S3_SECRET_KEY: SERVE_KEYS.LAKEGUARD_SERVE_SECRET_ACCESS_KEY },
        workDir: ctx.work,
        name,
      });
      if (m.code !== 0) throw new Error(`raw-get.mjs exited ${m.code}: ${m.stderr.slice(-1500)}`);
      const out = lastJson(m.stdout);
      const busy = procStats(served.pid);
      if (out.objects !== objects || out.bytes !== bytes) throw new Error(`read ${out.objects} objects, ${out.bytes} bytes through serve; expected ${objects}, ${bytes}`);
      // The serve process is what is measured: its peak RSS and CPU, beside the clients' wall time.
      const r = row(name, 'lakeguard', { ...m, peakRssKiB: busy === null ? null : (busy.peakRssMB * 1e6) / 1024, userS: busy === null || idle === null ? null : busy.cpuS - idle.cpuS, sysS: 0 }, {
        objects: out.objects,
        bytes: out.bytes,
        requests: out.requests,
        extra: { clients, idleRssMB: idle?.rssMB ?? null, clientCpuS: round2((m.userS ?? 0) + (m.sysS ?? 0)) },
      });
      return r;
    } finally {
      await served.stop();
    }
  };

  const read32 = await step('serve-read-32', 'lakeguard', () => readAll('serve-read-32', 32));
  const restored = await step('restore-dir', 'lakeguard', async () => {
    const target = join(dir, 'restored');
    const { m, summaries } = await ctx.lakeguard('restore-dir', ['restore', '--run', ctx.runId, '--group', 'small', '--to-dir', target]);
    const s = summaries.at(-1);
    if (!s) throw new Error('no summary printed');
    if (s.restored !== objects || s.bytes !== bytes) throw new Error(`restored ${s.restored} objects, ${s.bytes} bytes; expected ${objects}, ${bytes}`);
    const sample = readFileSync(join(target, probe.key));
    if (!sample.equals(smallBody(ds, probe))) throw new Error(`restored ${probe.key} differs from the source`);
    rmSync(target, { recursive: true, force: true });
    return row('restore-dir', 'lakeguard', m, { objects: s.restored, bytes: s.bytes, requests: s.requests, engineMs: s.durationMs });
  });
  const read64 = await step('serve-read-64', 'lakeguard', () => readAll('serve-read-64', 64));
  if (read32 && restored) info.throughputVsRestore = round2(restored.wallMs / read32.wallMs);
  if (read64) info.peakRssMB64 = read64.peakRssMB;
  log(`serve: ${read32?.objectsPerS?.toFixed(0) ?? '-'} objects/s through serve (32 clients) vs ${restored?.objectsPerS?.toFixed(0) ?? '-'} restore --to-dir; peak RSS ${read64?.peakRssMB ?? '-'} MB with 64 clients`);
}

/**
 * A directory of START_CATALOG_OBJECTS small files (deterministic), backed up into the bench's
 * repository bucket under a prefix of its own: a catalog of that many objects for the start
 * measurements. Returns what startToFirstByte needs.
 */
async function backupDirectory(ctx, dir) {
  const root = join(dir, 'lake-100k');
  const name = 'lake100k';
  /** @type {{ key: string, body: Buffer } | null} */
  let probe = null;
  for (let i = 0; i < START_CATALOG_OBJECTS; i++) {
    const key = `table=t${i % 4}/dt=2026-11-${String(1 + (i % 28)).padStart(2, '0')}/part-${String(i).padStart(6, '0')}.json`;
    const body = Buffer.from(`{"id":${i},"v":"${'x'.repeat(i % 200)}"}\n`);
    mkdirSync(join(root, key, '..'), { recursive: true });
    writeFileSync(join(root, key), body);
    if (i === START_CATALOG_OBJECTS / 2) probe = { key, body };
  }
  const policy = join(dir, 'lake-100k.yaml');
  writeFileSync(
    policy,
    [
      'version: 1',
      'repository:',
      `  url: s3://${ctx.repoBucket}/serve-100k`,
      `  endpoint: ${S3.endpoint}`,
      'groups:',
      '  - name: lake',
      '    sources:',
      `      - path: ${root}`,
      `        name: ${name}`,
      '',
    ].join('\n'),
  );
  const catalog = join(dir, 'catalog-100k', 'catalog.db');
  const options = { policy, catalog, cacheDir: join(dir, 'cache-100k') };
  await ctx.lakeguard('serve-100k-init', ['init'], options);
  const { m, summaries } = await ctx.lakeguard('serve-100k-backup', ['backup'], options);
  const s = summaries.at(-1);
  if (probe === null) throw new Error('no probe key');
  if (!s || s.counters.objectsNew !== START_CATALOG_OBJECTS) throw new Error(`the 100k backup recorded ${s?.counters.objectsNew} new objects, expected ${START_CATALOG_OBJECTS}`);
  ctx.row('serve-100k-backup', 'lakeguard', m, { objects: s.counters.objectsSeen, bytes: s.counters.bytesRead, requests: s.counters.requests });
  return { policy, catalog, bucket: name, probeKey: probe.key, probeBody: probe.body, catalogObjects: START_CATALOG_OBJECTS };
}
