// The `lakeguard watch` scenario of the bench (issue 24): a stream of mixed PUTs and DELETEs
// to a bucket at a target rate (1,000 events/s by default; the rate reached is reported: the
// S3 server and the machine's two shared cores bound it), each change pushed to watch's HTTP
// endpoint as the S3 event record RGW would send, by the writer itself once S3 answered.
// RGW's own topic push is not used here: radosgw 16.2 aborted (the shared gateway) under this
// load once, in RGWPubSubHTTPEndpoint's synchronous push; the integration test covers the real
// push at low rates. Measured:
//   latency   from a PUT's (or DELETE's) answer to the end of the watch run that covered it
//             (the first run started after its push was acknowledged), median and p99, from
//             watch's own `watch_run` messages (started_at, and their arrival time)
//   cpu       watch's CPU seconds (utime + stime) during the stream, per event
// Thresholds: interval 1s, min_updates 32, max_interval 5s (the batching is what latency shows).
// Baseline, measured first in the same run: the same stream of PUTs and DELETEs without watch
// (rate reached by S3 alone); the stream with watch reports its rate as a ratio to it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { S3, dropBucket, ensureBucket } from './s3.mjs';

const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * @param {{ s3: import('@aws-sdk/client-s3').S3Client, engine: string, bin: string, work: string, env: Record<string,string>,
 *           rate: number, seconds: number, concurrency: number, log: (s: string) => void }} ctx
 */
export async function runWatchScenario(ctx) {
  const { s3 } = ctx;
  const tag = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const lake = `lgbench-watch-lake-${tag}`;
  const repo = `lgbench-watch-repo-${tag}`;
  const token = randomBytes(16).toString('hex');
  const port = await freePort();
  await ensureBucket(s3, lake);
  await ensureBucket(s3, repo);
  const policy = join(ctx.work, 'watch-policy.yaml');
  writeFileSync(
    policy,
    [
      'version: 1',
      `repository: { url: "s3://${repo}", endpoint: "${S3.endpoint}", encryption: none }`,
      `s3: { endpoint: "${S3.endpoint}" }`,
      'continuous: { interval: 1s, min_updates: 32, max_interval: 5s, reconcile: off }',
      'groups:',
      '  - name: lake',
      `    sources: [{ bucket: ${lake}, events: "http://127.0.0.1:${port}/" }]`,
      '',
    ].join('\n'),
  );
  const env = { ...ctx.env, LAKEGUARD_WATCH_TOKEN: token, LAKEGUARD_CATALOG: join(ctx.work, 'watch-catalog.db') };
  const init = spawn(ctx.bin, ['--policy', policy, 'init'], { env, stdio: 'ignore' });
  await new Promise((r) => init.on('exit', r));


  const runs = [];
  const child = spawn(ctx.bin, ['--policy', policy, 'watch', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let buffer = '';
  let stderr = '';
  let listening;
  const ready = new Promise((resolve) => (listening = resolve));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buffer += d;
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const m = JSON.parse(line);
      if (m.message_type === 'listening') listening();
      if (m.message_type === 'watch_run') runs.push({ started: Date.parse(m.started_at), finished: Date.now(), changes: m.changes, reason: m.reason });
    }
  });
  await ready;
  while (runs.length === 0) await new Promise((r) => setTimeout(r, 50)); // the seed run
  const push = async (eventName, key, sequencer) => {
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ Records: [{ eventVersion: '2.2', eventSource: 'ceph:s3', eventName, s3: { bucket: { name: lake }, object: { key, sequencer } } }] }),
    });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`push: HTTP ${res.status}`);
  };

  // The stream: `concurrency` writers share a schedule of `rate` events per second for
  // `seconds` of wall time; every fourth event deletes a key put earlier. `pushes`: each change
  // is pushed to watch once S3 answered (false: the baseline, the same stream without watch).
  const stream = async (prefix, pushes) => {
    const answered = [];
    const live = [];
    const start = Date.now();
    const end = start + ctx.seconds * 1000;
    let next = 0;
    let failed = 0;
    const writer = async () => {
      for (;;) {
        const i = next++;
        const due = start + (i * 1000) / ctx.rate;
        if (due >= end || Date.now() >= end) return; // a late schedule is cut at the end too
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const remove = i % 4 === 3 && live.length > 0;
        try {
          let key;
          if (remove) {
            key = live.shift();
            await s3.send(new DeleteObjectCommand({ Bucket: lake, Key: key }));
          } else {
            key = `${prefix}/${String(i).padStart(7, '0')}.json`;
            await s3.send(new PutObjectCommand({ Bucket: lake, Key: key, Body: `{"i":${i}}` }));
            live.push(key);
          }
          const at = Date.now();
          if (pushes) await push(remove ? 'ObjectRemoved:Delete' : 'ObjectCreated:Put', key, `${prefix}-${String(i).padStart(12, '0')}`);
          answered.push({ at, acked: Date.now() });
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: ctx.concurrency }, writer));
    return { answered, failed, seconds: (Date.now() - start) / 1000 };
  };
  // Baseline: the same stream, no push, while watch idles (its endpoint hears nothing).
  const baseline = await stream('baseline', false);
  const cpu0 = cpuSeconds(child.pid);
  const { answered, failed, seconds: streamSeconds } = await stream('events', true);
  // Wait for the run covering the last answer (max_interval at most, plus the run).
  const last = Math.max(...answered.map((a) => a.acked));
  const deadline = Date.now() + 120_000;
  while (!runs.some((r) => r.started > last) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const cpu = cpuSeconds(child.pid) - cpu0;

  child.kill('SIGTERM');
  const code = await new Promise((r) => child.on('exit', (c) => r(c)));

  const latencies = answered
    .map((a) => {
      const run = runs.find((r) => r.started > a.acked);
      return run === undefined ? null : run.finished - a.at;
    })
    .filter((x) => x !== null)
    .sort((a, b) => a - b);
  const events = answered.length;
  const result = {
    name: 'watch-latency',
    targetRate: ctx.rate,
    reachedRate: round(events / streamSeconds, 1),
    baselineRate: round(baseline.answered.length / baseline.seconds, 1),
    rateVsBaseline: round(events / streamSeconds / (baseline.answered.length / baseline.seconds), 2),
    events,
    failedRequests: failed,
    streamSeconds: round(streamSeconds, 1),
    runs: runs.length - 1,
    runReasons: runs.slice(1).reduce((acc, r) => ({ ...acc, [r.reason]: (acc[r.reason] ?? 0) + 1 }), {}),
    latencyMs: { median: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies.at(-1) ?? null, covered: latencies.length },
    watchCpuSeconds: round(cpu, 2),
    cpuMsPerEvent: round((cpu * 1000) / Math.max(1, events), 3),
    watchExit: code,
    ...(code === 0 ? {} : { watchStderr: stderr }),
  };
  await dropBucket(s3, lake).catch(() => {});
  await dropBucket(s3, repo).catch(() => {});
  return result;
}
