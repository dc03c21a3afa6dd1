#!/usr/bin/env node
// lakeguard's benchmark suite (issue 6): a seeded lake-like data set on the local S3 server,
// lakeguard's scenarios, and baselines measured in the same run (raw GET loop, bare listing,
// rclone copy, restic backup); issue 19's incident response (rollback against restore
// --in-place and a copy of everything, anomaly detection's CPU cost, false positives); and
// issue 20's scale-out (1, 2 and 4 shard processes); issue 21's `serve` (start to first byte,
// reads through it against restore --to-dir, peak RSS under 64 clients). Writes bench/results/<date>.json and
// prints a table, the ratios to the baselines and PASS/FAIL per target. See bench/README.md.
//
//   npm run bench -- [--scale 1] [--seed 42] [--concurrency 32] [--quick | --lakeguard-only | --seed-only]
//                    [--cpu-prof] [--rss-compare FILE] [--out FILE] [--keep] [--drop-source] [--engine-dir DIR]
//                    [--anomaly-repeats N] [--timing-repeats N] [--skip-incident | --incident-only]
//                    [--shard-repeats N] [--skip-shards | --shards-only] [--skip-serve | --serve-only]
//                    [--watch-only [--watch-rate 1000] [--watch-seconds 20]]
//                    [--skip-versioned | --versioned-only]
//
// `npm run bench` builds first; `node bench/run.mjs` alone uses the existing dist/.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeDataset, smallBody } from './lib/dataset.mjs';
import { ensureCommands, lastJson, runMeasured } from './lib/proc.mjs';
import { startProxy } from './lib/proxy.mjs';
import { runIncidentScenarios } from './lib/incident.mjs';
import { runShardScenarios } from './lib/shards.mjs';
import { runServeScenarios } from './lib/serve.mjs';
import { runVersionedScenarios } from './lib/versioned.mjs';
import { checkIssue22Targets, checkTargets, formatIssue22Targets, formatTable, rate, ratios, table } from './lib/report.mjs';
import { S3, dropBucket, ensureBucket, getBytes, listAll, s3Client } from './lib/s3.mjs';
import { applyMutation, dropMarker, ensureDataset, META_BUCKET, revertMutation, sourceBucketName } from './lib/upload.mjs';
import { summarizeProfile } from './tools/cpuprofile-top.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MB = 1e6;

const { values: opts } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    seed: { type: 'string', default: '42' },
    concurrency: { type: 'string', default: '32' },
    'list-concurrency': { type: 'string', default: '16' },
    quick: { type: 'boolean', default: false },
    'lakeguard-only': { type: 'boolean', default: false },
    'seed-only': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    'rss-compare': { type: 'string' },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'drop-source': { type: 'boolean', default: false },
    'engine-dir': { type: 'string' },
    'repo-via-proxy': { type: 'boolean', default: false },
    'anomaly-repeats': { type: 'string' },
    'timing-repeats': { type: 'string', default: '3' },
    'skip-incident': { type: 'boolean', default: false },
    'incident-only': { type: 'boolean', default: false },
    'shard-repeats': { type: 'string' },
    'skip-shards': { type: 'boolean', default: false },
    'shards-only': { type: 'boolean', default: false },
    'skip-serve': { type: 'boolean', default: false },
    'serve-only': { type: 'boolean', default: false },
    'watch-only': { type: 'boolean', default: false },
    'watch-rate': { type: 'string', default: '1000' },
    'watch-seconds': { type: 'string', default: '20' },
    'skip-versioned': { type: 'boolean', default: false },
    'versioned-only': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 16).join('\n').replace(/^\/\/ ?/gm, '') + '\n');
  process.exit(0);
}

// The lakeguard under test: this checkout, or another one with dist/ built (e.g. a
// `git archive` of a fixed commit, so that engine work in progress here is not measured).
const ENGINE = resolve(opts['engine-dir'] ?? ROOT);
const BIN = join(ENGINE, 'bin', 'lakeguard');
const scale = Number(opts.scale);
const seed = Number(opts.seed);
const concurrency = Number(opts.concurrency);
const listConcurrency = Number(opts['list-concurrency']);
// How often the short timed steps run (bare listings, no-change incrementals); the median
// counts. 1 for a smoke run (test/integration/bench-smoke.test.ts), which checks that every
// step works and reports numbers, not the numbers themselves.
const timingRepeats = Number(opts['timing-repeats']);
if (!(scale > 0) || !Number.isInteger(seed) || !(concurrency > 0) || !(Number.isInteger(timingRepeats) && timingRepeats > 0)) {
  console.error('bench: --scale must be > 0, --seed an integer, --concurrency > 0, --timing-repeats an integer > 0');
  process.exit(2);
}
const mode = opts['versioned-only'] ? 'versioned-only' : opts['serve-only'] ? 'serve-only' : opts['shards-only'] ? 'shards-only' : opts['incident-only'] ? 'incident-only' : opts['seed-only'] ? 'seed-only' : opts['lakeguard-only'] ? 'lakeguard-only' : opts.quick ? 'quick' : 'full';
const withBaselines = mode === 'full' || mode === 'quick';
const withSlowBaselines = mode === 'full';
// The main data set: its upload, seeds and scenarios (not with --incident-only, --shards-only).
const withMainSet = mode !== 'incident-only' && mode !== 'shards-only' && mode !== 'versioned-only';
const withScenarios = mode !== 'seed-only' && mode !== 'serve-only' && withMainSet;
const withIncident = (withScenarios || mode === 'incident-only') && !opts['skip-incident'];
// Issue 20's shard processes: in the full run and with --shards-only (not in --quick runs,
// which the smoke test uses: three more seeds of their own bucket).
const withShards = (mode === 'full' || mode === 'lakeguard-only' || mode === 'shards-only') && !opts['skip-shards'];
// Issue 21's serve: on the seed of the small objects (--serve-only seeds only those).
const withServe = (mode === 'full' || mode === 'lakeguard-only' || mode === 'serve-only') && !opts['skip-serve'];
// Issue 22's versioned bucket (2,000 keys x 5, then 10 versions): in the full and --lakeguard-only
// runs and with --versioned-only (not in --quick ones: 20,000 PUTs of its own).
const withVersioned = (mode === 'full' || mode === 'lakeguard-only' || mode === 'versioned-only') && !opts['skip-versioned'];

const T0 = performance.now();
const log = (msg) => process.stderr.write(`[bench +${((performance.now() - T0) / 1000).toFixed(0)}s] ${msg}\n`);

// --- the server and the tools -------------------------------------------------------------

function ensureServer() {
  const status = spawnSync('bash', [join(ROOT, 'scripts/s3-server.sh'), 'status'], { stdio: ['ignore', 'ignore', 'ignore'] });
  if (status.status === 0) return;
  log('S3 server not running: starting it (scripts/s3-server.sh start)');
  execFileSync('bash', [join(ROOT, 'scripts/s3-server.sh'), 'start'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

if (new URL(S3.endpoint).hostname === '127.0.0.1' || new URL(S3.endpoint).hostname === 'localhost') ensureServer();
ensureCommands([['/usr/bin/time', 'time'], ...(withSlowBaselines ? [['rclone', 'rclone'], ['restic', 'restic']] : [])], log);
if (!existsSync(join(ENGINE, 'dist', 'cli.js'))) {
  console.error(`bench: ${join(ENGINE, 'dist')} is missing: run \`npm run bench\` (it builds first) or \`npm run build\``);
  process.exit(2);
}

// --- issue 24's watch: a section of its own (its own buckets; none of the data set) -------------

if (opts['watch-only']) {
  const { runWatchScenario } = await import('./lib/watch.mjs');
  const work = mkdtempSync(join(tmpdir(), 'lakeguard-bench-watch-'));
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', AWS_ACCESS_KEY_ID: S3.accessKeyId, AWS_SECRET_ACCESS_KEY: S3.secretAccessKey, AWS_REGION: 'us-east-1', LAKEGUARD_CACHE_DIR: join(work, 'cache') };
  const started = new Date();
  const watch = await runWatchScenario({
    s3: s3Client({ sockets: 128 }),
    engine: ENGINE,
    bin: BIN,
    work,
    env,
    rate: Number(opts['watch-rate']),
    seconds: Number(opts['watch-seconds']),
    concurrency,
    log,
  });
  const file = resolve(opts.out ?? join(ROOT, 'bench', 'results', `${started.toISOString().replace(/[:.]/g, '-').slice(0, 16)}-watch-only-${commit}.json`));
  const machine = { cpus: cpus().length, loadavg: loadavg().map((x) => Math.round(x * 100) / 100), totalmemGB: Math.round(totalmem() / 1e9), release: release() };
  writeFileSync(file, JSON.stringify({ date: started.toISOString(), mode: 'watch-only', commit, machine, watch }, null, 2) + '\n');
  rmSync(work, { recursive: true, force: true });
  log(JSON.stringify(watch, null, 2));
  log(`results: ${file}`);
  process.exit(watch.watchExit === 0 ? 0 : 1);
}

// --- set-up ---------------------------------------------------------------------------------

const s3 = s3Client({ sockets: 128 });
const ds = describeDataset({ seed, scale });
const srcBucket = sourceBucketName(seed, scale);
const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const tag = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
const buckets = {
  repo: `lgbench-repo-${tag}`,
  restore: `lgbench-restore-${tag}`,
  rclone: `lgbench-rclone-${tag}`,
  restic: `lgbench-restic-${tag}`,
};
const work = mkdtempSync(join(tmpdir(), 'lakeguard-bench-'));
const outFile = resolve(opts.out ?? join(ROOT, 'bench', 'results', `${stamp}.json`));
mkdirSync(dirname(outFile), { recursive: true });
const profileDir = opts['cpu-prof'] ? outFile.replace(/\.json$/, '') + '-profiles' : null;

const upload = withMainSet ? await ensureDataset(s3, ds, { bucket: srcBucket, concurrency: 64, log }) : { uploaded: false, seconds: 0 };
const keyFile = (name, keys) => {
  const path = join(work, `${name}.keys`);
  writeFileSync(path, keys.join('\n') + '\n');
  return path;
};
const smallKeys = keyFile('small', ds.small.map((e) => e.key));
const largeKeys = keyFile('large', ds.large.map((e) => e.key));

const rows = [];
const meta = {
  startedAt: new Date().toISOString(),
  mode,
  scale,
  seed,
  concurrency: { transfer: concurrency, list: listConcurrency },
  machine: machineInfo(),
  dataset: {
    bucket: srcBucket,
    generator: ds.version,
    smallObjects: ds.small.length,
    smallBytes: ds.smallBytes,
    largeObjects: ds.large.length,
    largeBytes: ds.largeBytes,
    duplicates: ds.small.filter((e) => e.dupOf >= 0).length,
    tables: ds.tables,
    upload,
  },
  buckets,
  /** @type {string[]} */
  notes: [],
  /** @type {{ name: string, runIds: string[], suspect: boolean, anomalies: number }[]} every backup of the main data set: the false-positive count */
  ordinaryRuns: [],
};

function machineInfo() {
  const cephVersion = (() => {
    try {
      return execFileSync('radosgw', ['--version'], { encoding: 'utf8' }).trim().split('\n')[0];
    } catch {
      return null;
    }
  })();
  const toolVersion = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', env: { PATH: process.env.PATH } }).trim().split('\n')[0];
    } catch {
      return null;
    }
  };
  const git = (args) => {
    try {
      return execFileSync('git', args, { cwd: ENGINE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const commitFile = join(ENGINE, '.commit');
  return {
    // The engine measured: its directory, commit (a `git archive` extraction names it in a
    // .commit file), and whether src/ had uncommitted changes (dist/ is what ran).
    engineDir: ENGINE,
    commit: git(['rev-parse', '--short', 'HEAD']) ?? (existsSync(commitFile) ? readFileSync(commitFile, 'utf8').trim() : null),
    srcDirty: existsSync(join(ENGINE, '.git')) ? Boolean(git(['status', '--porcelain', '--', 'src'])) : false,
    hostname: hostname(),
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? null,
    memoryMB: Math.round(totalmem() / MB),
    kernel: release(),
    node: process.version,
    ceph: cephVersion,
    rclone: toolVersion('rclone', ['version']),
    restic: toolVersion('restic', ['version']),
    endpoint: S3.endpoint,
  };
}

// --- measuring --------------------------------------------------------------------------------

const emptyRequests = () => ({ list: 0, get: 0, head: 0, put: 0, copy: 0, post: 0, delete: 0 });

/**
 * Records one measurement as a row of the results and returns it. `extra` holds step-specific
 * JSON (run ids, counters, proxy counts) that later steps read and add to.
 * @param {string} name
 * @param {string} tool
 * @param {Awaited<ReturnType<typeof runMeasured>>} m
 * @param {{ objects: number, bytes: number | null, requests: Record<string, unknown>, storedBytes?: number | null, engineMs?: number | null, extra?: Record<string, any> }} fields
 */
function row(name, tool, m, { objects, bytes, requests, storedBytes = null, engineMs = null, extra = {} }) {
  const r = {
    // 1-minute load average when the step ended: other work on the machine shows up here.
    loadavg1: Math.round(loadavg()[0] * 100) / 100,
    name,
    tool,
    ok: true,
    wallMs: Math.round(m.wallMs),
    objects,
    bytes,
    objectsPerS: rate(objects, m.wallMs),
    MBps: bytes === null ? null : rate(bytes / MB, m.wallMs),
    requests: { ...emptyRequests(), ...requests },
    storedBytes,
    peakRssMB: m.peakRssKiB === null ? null : Math.round((m.peakRssKiB * 1024) / MB),
    cpuS: m.userS === null || m.sysS === null ? null : Math.round((m.userS + m.sysS) * 100) / 100,
    // CPU the S3 server's daemons used meanwhile (the same two cores): see serverCpuSeconds.
    serverCpuS: m.serverCpuS ?? null,
    engineMs,
    extra,
  };
  rows.push(r);
  log(
    `${name} (${tool}): ${(r.wallMs / 1000).toFixed(2)} s, ${objects} objects, ${r.objectsPerS?.toFixed(0)} obj/s, ${r.MBps?.toFixed(1) ?? '-'} MB/s, peak RSS ${r.peakRssMB} MB`,
  );
  return r;
}

/**
 * Runs one step. A failure (the tool failed, or its result is wrong) is recorded and the bench
 * goes on; a row the step already measured stays in the results, marked failed.
 */
/** The median's index in a sorted list of `--timing-repeats` runs (the lower one of an even count). */
const medianIndex = (sorted) => Math.floor((sorted.length - 1) / 2);

async function step(name, tool, fn) {
  const before = rows.length;
  try {
    return await fn();
  } catch (err) {
    const message = String(/** @type {Error} */ (err).message);
    log(`${name} (${tool}) FAILED: ${message}`);
    const measured = rows.slice(before).find((r) => r.name === name);
    if (measured) Object.assign(measured, { ok: false, error: message.split('\n')[0] });
    else rows.push({ name, tool, ok: false, error: message.split('\n')[0] });
    meta.notes.push(`${name} FAILED: ${message}`);
    return undefined;
  }
}

async function bucketBytes(bucket, prefix = '') {
  return (await listAll(s3, bucket, prefix)).bytes;
}

// lakeguard is run as users run it, as a program (bin/lakeguard starts node itself, with its
// malloc settings): the node that runs the bench comes first on the PATH.
const nodeEnv = () => ({ PATH: `${dirname(process.execPath)}:${process.env.PATH}`, HOME: process.env.HOME, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
const awsEnv = () => ({ AWS_ACCESS_KEY_ID: S3.accessKeyId, AWS_SECRET_ACCESS_KEY: S3.secretAccessKey, AWS_REGION: S3.region });

async function runTool(name, script, args) {
  const m = await runMeasured(process.execPath, [join(ROOT, 'bench/tools', script), ...args], {
    env: { ...nodeEnv(), ...awsEnv(), LAKEGUARD_S3_ENDPOINT: S3.endpoint },
    workDir: work,
    name,
  });
  if (m.code !== 0) throw new Error(`${script} exited ${m.code}: ${m.stderr.slice(-1500)}`);
  return { m, out: lastJson(m.stdout) };
}

// --- lakeguard ----------------------------------------------------------------------------------

// --repo-via-proxy: lakeguard's repository traffic (not its source reads) goes through the
// counting proxy, which then breaks PUTs and GETs down by repository directory (packs/,
// index/, runs/, locks/ ...) and cross-checks lakeguard's own counters.
const repoProxy = opts['repo-via-proxy'] ? await startProxy({ upstream: S3.endpoint, byPrefixDepth: 2 }) : null;
const policyFile = join(work, 'lakeguard.yaml');
const catalogFile = join(work, 'catalog', 'catalog.db');
mkdirSync(dirname(catalogFile), { recursive: true });
writeFileSync(
  policyFile,
  `version: 1
repository:
  url: s3://${buckets.repo}/lakeguard
  endpoint: ${repoProxy?.endpoint ?? S3.endpoint}
s3:
  endpoint: ${S3.endpoint}
groups:
  - name: small
    sources:
      - bucket: ${srcBucket}
        prefixes: [${ds.tables.map((t) => JSON.stringify(t)).join(', ')}]
  - name: large
    sources:
      - bucket: ${srcBucket}
        prefixes: ["raw/"]
concurrency: { list: ${listConcurrency}, transfer: ${concurrency} }
`,
);

/**
 * Runs the lakeguard under test with the bench's policy and catalog (or those of another
 * scenario); an exit code outside `okCodes` throws. `backup` may also exit 4 (complete, and
 * suspect: issue 19), which its callers record.
 * @param {string} name
 * @param {string[]} args
 * @param {{ policy?: string, catalog?: string, cacheDir?: string, okCodes?: number[], env?: Record<string, string> }} [options]
 */
async function lakeguard(name, args, { policy = policyFile, catalog = catalogFile, cacheDir = join(work, 'cache'), okCodes = args[0] === 'backup' ? [0, 4] : [0], env = {} } = {}) {
  const profile = profileDir ? { LAKEGUARD_NODE_FLAGS: `--cpu-prof --cpu-prof-dir=${profileDir} --cpu-prof-name=${name}.cpuprofile` } : {};
  const m = await runMeasured(BIN, ['--policy', policy, '--catalog', catalog, '--json', ...args], {
    env: { ...nodeEnv(), ...awsEnv(), ...profile, LAKEGUARD_PASSWORD: 'lakeguard bench password', LAKEGUARD_CACHE_DIR: cacheDir, ...env },
    workDir: work,
    name: `lakeguard-${name}`,
  });
  const messages = m.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  const summaries = messages.filter((x) => x.message_type === 'summary');
  if (!okCodes.includes(m.code)) throw new Error(`lakeguard ${args[0]} exited ${m.code}: ${m.stderr.split('\n').filter(Boolean).slice(-5).join(' | ')}`);
  return { m, summaries, messages, stdout: m.stdout };
}

function sumCounters(summaries) {
  const c = { objectsSeen: 0, objectsNew: 0, objectsChanged: 0, objectsUnchanged: 0, objectsDeleted: 0, objectsFailed: 0, bytesRead: 0, bytesStored: 0, packsWritten: 0, blobsDeduplicated: 0, durationMs: 0, requests: { list: 0, get: 0, head: 0, put: 0, delete: 0 } };
  for (const s of summaries) {
    for (const k of Object.keys(c)) if (k !== 'requests') c[k] += s.counters[k] ?? 0;
    for (const k of Object.keys(c.requests)) c.requests[k] += s.counters.requests[k] ?? 0;
  }
  return c;
}

let repoBytes = 0;
/**
 * One `lakeguard backup`: returns the measurement and the row fields (not yet a row).
 * @param {string} name
 * @param {string[]} args
 * @param {{ expectNew?: number }} [options]
 */
async function measureBackup(name, args, { expectNew } = {}) {
  repoProxy?.take();
  const { m, summaries, messages } = await lakeguard(name, ['backup', ...args]);
  const proxied = repoProxy?.take();
  if (summaries.length === 0) throw new Error('no summary printed');
  const c = sumCounters(summaries);
  // Issue 19: a run with anomalies is complete and exits 4. The bench's ordinary runs (seeds,
  // incrementals) must not be suspect: each is counted for the false-positive target.
  const suspect = m.code === 4;
  const anomalies = messages.filter((x) => x.message_type === 'anomaly');
  meta.ordinaryRuns.push({ name, runIds: summaries.map((s) => s.runId), suspect, anomalies: anomalies.length, ...(suspect ? { findings: anomalies.slice(0, 20) } : {}) });
  if (c.objectsFailed > 0) throw new Error(`${c.objectsFailed} objects failed`);
  if (expectNew !== undefined && c.objectsNew !== expectNew) throw new Error(`expected ${expectNew} new objects, got ${c.objectsNew}`);
  const after = await bucketBytes(buckets.repo, 'lakeguard/');
  const stored = after - repoBytes;
  repoBytes = after;
  const fields = {
    objects: c.objectsSeen,
    bytes: c.bytesRead,
    requests: c.requests,
    storedBytes: stored,
    engineMs: c.durationMs,
    extra: { runIds: summaries.map((s) => s.runId), counters: c, suspect, anomalyMessages: anomalies.length, ...(proxied ? { repositoryRequests: proxied } : {}) },
  };
  return { m, fields, c };
}

async function lakeguardBackup(name, args, opts) {
  const { m, fields } = await measureBackup(name, args, opts);
  return row(name, 'lakeguard', m, fields);
}

async function lakeguardRestore(name, args, expectObjects) {
  repoProxy?.take();
  const { m, summaries } = await lakeguard(name, ['restore', ...args]);
  const proxied = repoProxy?.take();
  const s = summaries.at(-1);
  if (!s) throw new Error('no summary printed');
  if (s.failed > 0) throw new Error(`${s.failed} objects failed to restore`);
  if (expectObjects !== undefined && s.restored !== expectObjects) throw new Error(`expected ${expectObjects} restored objects, got ${s.restored}`);
  const to = args[args.indexOf('--to') + 1];
  const target = new URL(to);
  const stored = await bucketBytes(target.hostname, target.pathname.slice(1));
  return row(name, 'lakeguard', m, { objects: s.restored, bytes: s.bytes, requests: s.requests, storedBytes: stored, engineMs: s.durationMs, extra: { summary: s, ...(proxied ? { repositoryRequests: proxied } : {}) } });
}

// --- the steps ----------------------------------------------------------------------------------

await ensureBucket(s3, buckets.repo);
await ensureBucket(s3, buckets.restore);

const listArgs = (client) => ['--bucket', srcBucket, '--client', client, '--engine-dir', ENGINE];

if (withBaselines) {
  // (d) bare listing: three times, the median counts (it is short and the machine is shared).
  // `listing` lists the way lakeguard does (its lean request path); `listing-sdk` through the
  // AWS SDK, for comparison: the targets use the first, the faster one.
  for (const [name, client] of [['listing', 'lean'], ['listing-sdk', 'sdk']]) {
    await step(name, `${client}-list`, async () => {
      const runs = [];
      for (let i = 0; i < timingRepeats; i++) runs.push(await runTool(`${name}-${i}`, 'list.mjs', listArgs(client)));
      runs.sort((a, b) => a.m.wallMs - b.m.wallMs);
      const { m, out } = runs[medianIndex(runs)];
      if (out.objects !== ds.small.length + ds.large.length) throw new Error(`listing saw ${out.objects} objects, expected ${ds.small.length + ds.large.length}`);
      return row(name, `${client}-list`, m, { objects: out.objects, bytes: null, requests: out.requests, extra: { wallMsRuns: runs.map((r) => Math.round(r.m.wallMs)) } });
    });
  }
  // (a) the limit: raw GET loop, same keys, same concurrency. `raw-get-*` sends the GETs the
  // way lakeguard does (its own lean GET path), `raw-get-sdk-*` through the AWS SDK, as a
  // tool built on the SDK would: the targets use the first, the faster one.
  for (const [client, tool, prefix] of [['lean', 'lean-get', 'raw-get'], ['sdk', 'sdk-get', 'raw-get-sdk']]) {
    /** @type {[name: string, keyFile: string, objects: number][]} */
    const reads = [[`${prefix}-small`, smallKeys, ds.small.length], [`${prefix}-large`, largeKeys, ds.large.length]];
    for (const [name, file, n] of reads) {
      await step(name, tool, async () => {
        const { m, out } = await runTool(name, 'raw-get.mjs', ['--bucket', srcBucket, '--keys', file, '--concurrency', String(concurrency), '--client', client, '--engine-dir', ENGINE]);
        if (out.objects !== n) throw new Error(`read ${out.objects} objects, expected ${n}`);
        return row(name, tool, m, { objects: out.objects, bytes: out.bytes, requests: out.requests });
      });
    }
  }
}

let seedRunId;
if (withMainSet) {
  await step('init', 'lakeguard', async () => {
    const { m } = await lakeguard('init', ['init']);
    meta.initMs = Math.round(m.wallMs);
  });
  const seedSmall = await step('seed-small', 'lakeguard', () => lakeguardBackup('seed-small', ['--group', 'small'], { expectNew: ds.small.length }));
  seedRunId = seedSmall?.extra.runIds[0];
  if (mode !== 'serve-only') {
    const seedLarge = await step('seed-large', 'lakeguard', () => lakeguardBackup('seed-large', ['--group', 'large'], { expectNew: ds.large.length }));
    if (seedSmall && seedLarge) meta.repositoryBytesAfterSeed = repoBytes;
  }
}

if (withScenarios) {
  // Three no-change runs (each is short, and the machine is shared): the median counts. With
  // the baselines, each run is paired with a bare listing just before it, and the target is
  // checked on the median of the paired ratios (the listing alone varied 1.8x between runs).
  await step('incremental-nochange', 'lakeguard', async () => {
    const runs = [];
    const pairedListingMs = [];
    for (let i = 0; i < timingRepeats; i++) {
      if (withBaselines) pairedListingMs.push(Math.round((await runTool(`listing-pair-${i}`, 'list.mjs', listArgs('lean'))).m.wallMs));
      const run = await measureBackup(`incremental-nochange-${i + 1}`, []);
      if (run.c.objectsNew + run.c.objectsChanged + run.c.objectsDeleted !== 0) throw new Error(`no-change run saw changes: ${JSON.stringify(run.c)}`);
      runs.push(run);
    }
    const sorted = [...runs].sort((a, b) => a.m.wallMs - b.m.wallMs);
    const { m, fields } = sorted[medianIndex(sorted)];
    fields.extra.wallMsRuns = runs.map((r) => Math.round(r.m.wallMs));
    fields.extra.engineMsRuns = runs.map((r) => r.c.durationMs);
    if (withBaselines) {
      fields.extra.pairedListingMs = pairedListingMs;
      fields.extra.pairedRatios = runs.map((r, i) => Math.round((r.m.wallMs / pairedListingMs[i]) * 1000) / 1000);
    }
    return row('incremental-nochange', 'lakeguard', m, fields);
  });
  await step('restore-full', 'lakeguard', () => lakeguardRestore('restore-full', ['--bucket', srcBucket, '--to', `s3://${buckets.restore}/full/`], ds.small.length + ds.large.length));
  if (withBaselines) {
    // (e) the limit of a restore to S3: the lean GET+PUT copy loop of the same objects, the
    // same requests in flight, each body held in memory and PUT with its Content-MD5.
    await step('copy-loop', 'lean-get-put', async () => {
      const all = keyFile('all', [...ds.small, ...ds.large].map((e) => e.key));
      const { m, out } = await runTool('copy-loop', 'raw-get.mjs', ['--bucket', srcBucket, '--keys', all, '--concurrency', String(concurrency), '--client', 'lean', '--engine-dir', ENGINE, '--put-bucket', buckets.restore, '--put-prefix', 'copy/']);
      if (out.objects !== ds.small.length + ds.large.length || out.requests.put !== out.objects) throw new Error(`copied ${out.objects} objects with ${out.requests.put} PUTs`);
      return row('copy-loop', 'lean-get-put', m, { objects: out.objects, bytes: out.bytes, requests: out.requests });
    });
  }
  const single = ds.small[Math.floor(ds.small.length / 2)];
  await step('restore-single', 'lakeguard', async () => {
    const r = await lakeguardRestore('restore-single', ['--bucket', srcBucket, '--key', single.key, '--to', `s3://${buckets.restore}/single/`], 1);
    const got = await getBytes(s3, buckets.restore, `single/${single.key}`);
    if (!got.equals(smallBody(ds, single))) throw new Error(`restored ${single.key} differs from the source`);
    r.extra.key = single.key;
    return r;
  });
  const prefix = `${ds.tables[0]}dt=2026-11-15/`;
  const inPrefix = ds.small.filter((e) => e.key.startsWith(prefix)).length;
  await step('restore-prefix', 'lakeguard', async () => {
    const r = await lakeguardRestore('restore-prefix', ['--bucket', srcBucket, '--prefix', prefix, '--to', `s3://${buckets.restore}/prefix/`], inPrefix);
    r.extra.prefix = prefix;
    return r;
  });
}

/**
 * Issue 22: lakeguard against restic on the same local files (the small objects, downloaded):
 * `seed-dir` (a path source, into the same S3 server through the same counting proxy as
 * restic's backup) against `restic-small`; `restore-dir-local` of that run to an empty directory
 * against `restic-restore` of restic's small snapshot to another.
 */
async function localDirectoryScenarios({ dir, repo, env, resticFlags, proxy }) {
  const root = join(dir, 'small');
  /** One seed of the files into a repository of its own; `threads`: LAKEGUARD_THREADS. */
  const seedDir = async (name, threads) => {
    const policy = join(work, `lakeguard-${name}.yaml`);
    writeFileSync(
      policy,
      `version: 1
repository:
  url: s3://${buckets.repo}/${name}
  endpoint: ${proxy.endpoint}
groups:
  - name: dir
    sources:
      - path: ${root}
        name: lake
concurrency: { list: ${listConcurrency}, transfer: ${concurrency} }
`,
    );
    const options = { policy, catalog: join(work, `catalog-${name}`, 'catalog.db'), cacheDir: join(work, `cache-${name}`), env: { LAKEGUARD_THREADS: threads } };
    mkdirSync(dirname(options.catalog), { recursive: true });
    await lakeguard(`${name}-init`, ['init'], options);
    let runId;
    await step(name, 'lakeguard', async () => {
      proxy.take();
      const { m, summaries } = await lakeguard(name, ['backup'], options);
      const counts = proxy.take();
      const s = summaries.at(-1);
      if (!s || s.counters.objectsNew !== ds.small.length) throw new Error(`seed of the directory recorded ${s?.counters.objectsNew} new objects, expected ${ds.small.length}`);
      runId = s.runId;
      return row(name, 'lakeguard', m, { objects: s.counters.objectsSeen, bytes: s.counters.bytesRead, requests: counts, engineMs: s.counters.durationMs, extra: { counters: s.counters, threads } });
    });
    return { runId, options };
  };
  // The encode pool (issue 22): the same seed with every encode in the main thread, and with
  // one encode thread per core (engines before the pool ignore the setting).
  await seedDir('seed-dir-1thread', '1');
  const { runId, options } = await seedDir('seed-dir', 'auto');
  if (runId === undefined) return;
  await step('restore-dir-local', 'lakeguard', async () => {
    const target = join(work, 'restore-dir-local');
    const { m, summaries } = await lakeguard('restore-dir-local', ['restore', '--run', runId, '--group', 'dir', '--to-dir', target], options);
    const s = summaries.at(-1);
    if (!s || s.restored !== ds.small.length || s.failed > 0) throw new Error(`restore --to-dir restored ${s?.restored} objects (${s?.failed} failed), expected ${ds.small.length}`);
    const probe = ds.small[Math.floor(ds.small.length / 3)];
    if (!readFileSync(join(target, probe.key)).equals(smallBody(ds, probe))) throw new Error(`restored ${probe.key} differs from the source`);
    rmSync(target, { recursive: true, force: true });
    return row('restore-dir-local', 'lakeguard', m, { objects: s.restored, bytes: s.bytes, requests: s.requests, engineMs: s.durationMs });
  });
  await step('restic-restore', 'restic', async () => {
    const snapshot = rows.find((x) => x.name === 'restic-small' && x.ok)?.extra.summary.snapshot_id;
    if (snapshot === undefined) throw new Error('no restic snapshot of the small files');
    const target = join(work, 'restic-restore');
    proxy.take();
    const m = await runMeasured('restic', ['-r', repo, 'restore', snapshot, '--target', target, ...resticFlags], { env, workDir: work, name: 'restic-restore' });
    const counts = proxy.take();
    if (m.code !== 0) throw new Error(`restic restore exited ${m.code}: ${m.stderr.slice(-1500)}`);
    const probe = ds.small[Math.floor(ds.small.length / 3)];
    const found = spawnSync('find', [target, '-type', 'f', '-path', `*/${probe.key}`], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
    if (!found || !readFileSync(found).equals(smallBody(ds, probe))) throw new Error(`restic restored ${probe.key} differently (or not at all)`);
    rmSync(target, { recursive: true, force: true });
    return row('restic-restore', 'restic', m, { objects: ds.small.length, bytes: ds.smallBytes, requests: counts, extra: { proxy: counts } });
  });
}

if (withSlowBaselines) {
  const proxy = await startProxy({ upstream: S3.endpoint });
  try {
    // Calibration: what the counting proxy itself costs (raw GET over a sample, direct vs proxied).
    await step('proxy-calibration', 'sdk-get', async () => {
      const sample = keyFile('sample', ds.small.slice(0, Math.min(5000, ds.small.length)).map((e) => e.key));
      const direct = await runTool('calib-direct', 'raw-get.mjs', ['--bucket', srcBucket, '--keys', sample, '--concurrency', String(concurrency)]);
      proxy.take();
      const proxied = await runTool('calib-proxy', 'raw-get.mjs', ['--bucket', srcBucket, '--keys', sample, '--concurrency', String(concurrency), '--endpoint', proxy.endpoint]);
      const counted = proxy.take();
      meta.proxyCalibration = {
        objects: direct.out.objects,
        directMs: Math.round(direct.m.wallMs),
        proxiedMs: Math.round(proxied.m.wallMs),
        slowdown: Math.round((proxied.m.wallMs / direct.m.wallMs) * 1000) / 1000,
        countedGets: counted.get,
      };
      if (counted.get !== direct.out.objects) throw new Error(`proxy counted ${counted.get} GETs for ${direct.out.objects} objects`);
      log(`proxy calibration: ${JSON.stringify(meta.proxyCalibration)}`);
    });

    // (b) rclone copy bucket -> bucket, through the counting proxy. Two remote names, so rclone
    // streams every object through itself (GET + PUT) instead of a server-side CopyObject.
    const rcloneFlags = ['--transfers', String(concurrency), '--checkers', String(concurrency), '--fast-list', '--s3-no-check-bucket', '--s3-no-head', '--s3-chunk-size', '16M', '--s3-upload-concurrency', '4', '--stats', '0', '--log-level', 'ERROR'];
    meta.rcloneFlags = rcloneFlags.join(' ');
    await step('rclone-copy', 'rclone', async () => {
      await ensureBucket(s3, buckets.rclone);
      const remote = (name) => ({
        [`RCLONE_CONFIG_${name}_TYPE`]: 's3',
        [`RCLONE_CONFIG_${name}_PROVIDER`]: 'Ceph',
        [`RCLONE_CONFIG_${name}_ACCESS_KEY_ID`]: S3.accessKeyId,
        [`RCLONE_CONFIG_${name}_SECRET_ACCESS_KEY`]: S3.secretAccessKey,
        [`RCLONE_CONFIG_${name}_ENDPOINT`]: proxy.endpoint,
        [`RCLONE_CONFIG_${name}_FORCE_PATH_STYLE`]: 'true',
      });
      proxy.take();
      // AWS_CA_BUNDLE must not reach rclone/restic (they refuse a plain-http endpoint with it).
      const m = await runMeasured('rclone', ['copy', `lgsrc:${srcBucket}`, `lgdst:${buckets.rclone}`, ...rcloneFlags], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, RCLONE_CONFIG: join(work, 'rclone.conf'), ...remote('LGSRC'), ...remote('LGDST') },
        workDir: work,
        name: 'rclone',
      });
      const counts = proxy.take();
      if (m.code !== 0) throw new Error(`rclone exited ${m.code}: ${m.stderr.slice(-1500)}`);
      const stored = await listAll(s3, buckets.rclone);
      if (stored.keys !== ds.small.length + ds.large.length) throw new Error(`rclone copied ${stored.keys} objects`);
      return row('rclone-copy', 'rclone', m, { objects: stored.keys, bytes: ds.smallBytes + ds.largeBytes, requests: counts, storedBytes: stored.bytes, extra: { proxy: counts } });
    });

    // (c) restic backup of the same files on local disk into a restic repository on the server.
    await step('restic', 'restic', async () => {
      const dir = join(work, 'download');
      const dl = await runTool('download', 'raw-get.mjs', ['--bucket', srcBucket, '--keys', smallKeys, '--concurrency', String(concurrency), '--out-dir', join(dir, 'small')]);
      await runTool('download-large', 'raw-get.mjs', ['--bucket', srcBucket, '--keys', largeKeys, '--concurrency', String(concurrency), '--out-dir', join(dir, 'large')]);
      meta.resticDownloadMs = Math.round(dl.m.wallMs);
      const repo = `s3:${proxy.endpoint}/${buckets.restic}`;
      const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...awsEnv(), RESTIC_PASSWORD: 'lakeguard bench password', RESTIC_CACHE_DIR: join(work, 'restic-cache') };
      const resticFlags = ['-o', `s3.connections=${concurrency}`];
      meta.resticFlags = `init --repository-version 2; backup --json ${resticFlags.join(' ')} (compression auto, pack size default)`;
      const init = await runMeasured('restic', ['-r', repo, 'init', '--repository-version', '2', ...resticFlags], { env, workDir: work, name: 'restic-init' });
      if (init.code !== 0) throw new Error(`restic init exited ${init.code}: ${init.stderr.slice(-1500)}`);
      let before = await bucketBytes(buckets.restic);
      /** @type {[name: string, dir: string, files: number][]} */
      const resticRuns = [['restic-small', 'small', ds.small.length], ['restic-large', 'large', ds.large.length]];
      for (const [name, sub, n] of resticRuns) {
        await step(name, 'restic', async () => {
          proxy.take();
          const m = await runMeasured('restic', ['-r', repo, 'backup', '--json', '--host', 'bench', ...resticFlags, sub], { env, cwd: dir, workDir: work, name });
          const counts = proxy.take();
          if (m.code !== 0) throw new Error(`restic backup exited ${m.code}: ${m.stderr.slice(-1500)}`);
          const summary = lastJson(m.stdout.split('\n').filter((l) => l.includes('"message_type":"summary"')).join('\n'));
          const after = await bucketBytes(buckets.restic);
          const stored = after - before;
          before = after;
          if (summary.total_files_processed !== n) throw new Error(`restic processed ${summary.total_files_processed} files, expected ${n}`);
          return row(name, 'restic', m, { objects: summary.total_files_processed, bytes: summary.total_bytes_processed, requests: counts, storedBytes: stored, extra: { summary, proxy: counts } });
        });
      }
      await localDirectoryScenarios({ dir, repo, env, resticFlags, proxy });
      rmSync(dir, { recursive: true, force: true });
    });
    // restic's own row is the two sub-rows; drop the wrapper if it succeeded.
  } finally {
    await proxy.close();
  }
}

if (withScenarios) {
  // The instant of the point-in-time query: after the seed and no-change runs, before the
  // mutation (1.5 s apart from both: listings have ms, GET responses s precision).
  await new Promise((r) => setTimeout(r, 1500));
  const instant = new Date();
  await new Promise((r) => setTimeout(r, 1500));
  log('mutating the source: 1 % changed, 0.5 % deleted');
  const plan = await applyMutation(s3, ds, { bucket: srcBucket });
  try {
    if (withBaselines) {
      await step('listing-after-change', 'lean-list', async () => {
        const runs = [];
        for (let i = 0; i < timingRepeats; i++) runs.push(await runTool(`listing2-${i}`, 'list.mjs', listArgs('lean')));
        runs.sort((a, b) => a.m.wallMs - b.m.wallMs);
        const { m, out } = runs[medianIndex(runs)];
        return row('listing-after-change', 'lean-list', m, { objects: out.objects, bytes: null, requests: out.requests, extra: { wallMsRuns: runs.map((r) => Math.round(r.m.wallMs)) } });
      });
    }
    await step('incremental-changed', 'lakeguard', async () => {
      const r = await lakeguardBackup('incremental-changed', []);
      const c = r.extra.counters;
      if (c.objectsChanged !== plan.changed.length || c.objectsDeleted !== plan.deleted.length || c.objectsNew !== 0) {
        throw new Error(`expected ${plan.changed.length} changed and ${plan.deleted.length} deleted, got ${c.objectsChanged} changed, ${c.objectsDeleted} deleted, ${c.objectsNew} new`);
      }
      return r;
    });
    // Point-in-time query: list the runs, then restore one changed key as the seed run had it.
    await step('pit-runs', 'lakeguard', async () => {
      const { m, stdout } = await lakeguard('pit-runs', ['runs']);
      const runs = JSON.parse(stdout.split('\n').find((l) => l.startsWith('[')) ?? '[]');
      return row('pit-runs', 'lakeguard', m, { objects: runs.length, bytes: null, requests: {}, extra: { runs: runs.length } });
    });
    const changedKey = plan.changed[0];
    await step('pit-restore-key', 'lakeguard', async () => {
      if (!seedRunId) throw new Error('no seed run');
      const r = await lakeguardRestore('pit-restore-key', ['--bucket', srcBucket, '--key', changedKey.key, '--run', seedRunId, '--to', `s3://${buckets.restore}/pit/`], 1);
      const got = await getBytes(s3, buckets.restore, `pit/${changedKey.key}`);
      if (!got.equals(smallBody(ds, changedKey, 0))) throw new Error(`point-in-time restore of ${changedKey.key} is not the seed run's content`);
      r.extra.key = changedKey.key;
      return r;
    });
    const helpOf = (...args) => spawnSync(BIN, [...args, '--help'], { encoding: 'utf8', env: nodeEnv() }).stdout ?? '';
    const help = helpOf();
    const hasLs = /^\s+ls\b/m.test(help);
    meta.queryCommands = { ls: hasLs, versions: /^\s+versions\b/m.test(help), restoreAt: /--at\b/.test(helpOf('restore')) };
    if (meta.queryCommands.restoreAt) {
      await step('pit-restore-at', 'lakeguard', async () => {
        const r = await lakeguardRestore('pit-restore-at', ['--bucket', srcBucket, '--key', changedKey.key, '--at', instant.toISOString(), '--to', `s3://${buckets.restore}/pit-at/`], 1);
        const got = await getBytes(s3, buckets.restore, `pit-at/${changedKey.key}`);
        if (!got.equals(smallBody(ds, changedKey, 0))) throw new Error(`restore --at ${instant.toISOString()} of ${changedKey.key} is not the content of that instant`);
        r.extra.key = changedKey.key;
        r.extra.at = instant.toISOString();
        return r;
      });
    }
    if (hasLs) {
      // `ls s3://bucket/prefix/ [--at T]` (the catalog's directory view at an instant): one
      // partition (its keys), and one table (60 partitions with their counts and bytes).
      const lsHelp = helpOf('ls');
      const at = /--at\b/.test(lsHelp) ? ['--at', instant.toISOString()] : [];
      for (const [name, prefix] of [['pit-ls-partition', `${ds.tables[0]}dt=2026-11-15/`], ['pit-ls-table', ds.tables[0]]]) {
        await step(name, 'lakeguard', async () => {
          const { m, summaries } = await lakeguard(name, ['ls', `s3://${srcBucket}/${prefix}`, ...at]);
          const sum = summaries.at(-1) ?? {};
          return row(name, 'lakeguard', m, { objects: (sum.keys ?? 0) + (sum.prefixes ?? 0), bytes: null, requests: {}, extra: { summary: sum } });
        });
      }
    }
    if (meta.queryCommands.versions) {
      await step('pit-versions', 'lakeguard', async () => {
        const { m, summaries } = await lakeguard('pit-versions', ['versions', `s3://${srcBucket}/${changedKey.key}`]);
        const sum = summaries.at(-1) ?? {};
        if (sum.versions !== 2) throw new Error(`expected 2 versions of ${changedKey.key}, got ${sum.versions}`);
        return row('pit-versions', 'lakeguard', m, { objects: sum.versions, bytes: null, requests: {}, extra: { summary: sum } });
      });
    }
    if (!hasLs) {
      meta.notes.push('`lakeguard ls`/`versions` do not exist (yet): the point-in-time query is timed with `runs`, `restore --key --run` and `restore --key --at`.');
    }
  } finally {
    log('reverting the mutation of the source bucket');
    await revertMutation(s3, ds, { bucket: srcBucket });
  }
}

// Issue 19: rollback against restore --in-place and a copy of everything, and anomaly
// detection's CPU cost, on a versioned bucket of their own (bench/lib/incident.mjs).
if (withIncident) {
  const repeats = opts['anomaly-repeats'] !== undefined ? Number(opts['anomaly-repeats']) : scale < 0.05 ? 1 : mode === 'full' ? 3 : 2;
  await runIncidentScenarios({ s3, ds, tag, work, repoBucket: buckets.repo, concurrency, listConcurrency, repeats, meta, log, step, row, lakeguard, runTool });
}

// Issue 20: the same seed by 1, 2 and 4 processes (bench/lib/shards.mjs).
if (withShards) {
  const repeats = opts['shard-repeats'] !== undefined ? Number(opts['shard-repeats']) : 1;
  await runShardScenarios({ s3, ds, tag, work, repoBucket: buckets.repo, concurrency, listConcurrency, repeats, meta, log, step, row, lakeguard });
}

// Issue 22: a versioned bucket's no-change incremental against a listing of its current keys.
if (withVersioned) {
  await ensureBucket(s3, buckets.repo);
  await runVersionedScenarios({ s3, ds, tag, work, repoBucket: buckets.repo, engineDir: ENGINE, concurrency, listConcurrency, meta, log, step, row, lakeguard, runTool });
}

// Issue 21: serve on the seed of the small objects (bench/lib/serve.mjs).
if (withServe && seedRunId !== undefined) {
  await runServeScenarios({
    ds,
    srcBucket,
    runId: seedRunId,
    policy: policyFile,
    catalog: catalogFile,
    work,
    bin: BIN,
    engineDir: ENGINE,
    repoBucket: buckets.repo,
    env: { ...nodeEnv(), ...awsEnv(), LAKEGUARD_PASSWORD: 'lakeguard bench password' },
    smallKeys,
    meta,
    log,
    step,
    row,
    lakeguard,
  });
}

// Catalog footprint: files on disk / object versions recorded.
if (withMainSet) await step('catalog', 'lakeguard', async () => {
  const files = readdirSync(dirname(catalogFile)).filter((f) => f.startsWith('catalog.db'));
  const size = (f) => (existsSync(join(dirname(catalogFile), f)) ? statSync(join(dirname(catalogFile), f)).size : 0);
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(catalogFile, { readonly: true, fileMustExist: true });
  const versions = /** @type {{ n: number }} */ (db.prepare('SELECT count(*) AS n FROM versions').get()).n;
  const objects = /** @type {{ n: number }} */ (db.prepare('SELECT count(*) AS n FROM objects').get()).n;
  const blobs = /** @type {{ n: number }} */ (db.prepare('SELECT count(*) AS n FROM blobs').get()).n;
  /** @type {unknown[] | null} */
  let pageStats = null;
  try {
    pageStats = db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC').all();
  } catch {
    // dbstat is an optional SQLite module.
  }
  db.close();
  const dbBytes = size('catalog.db');
  const walBytes = size('catalog.db-wal');
  const shmBytes = size('catalog.db-shm');
  const totalBytes = dbBytes + walBytes + shmBytes;
  meta.catalog = { files, dbBytes, walBytes, shmBytes, totalBytes, versions, objects, blobs, bytesPerVersion: Math.round((totalBytes / versions) * 10) / 10, tables: pageStats };
});

await repoProxy?.close();

// --- profiles -----------------------------------------------------------------------------------

if (profileDir && existsSync(profileDir)) {
  meta.profiles = {};
  for (const f of readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'))) {
    meta.profiles[f] = summarizeProfile(JSON.parse(readFileSync(join(profileDir, f), 'utf8')), 25);
  }
}

// --- clean-up -----------------------------------------------------------------------------------

if (!opts.keep) {
  log('dropping the target buckets');
  const errors = (await Promise.all(Object.values(buckets).map((b) => dropBucket(s3, b)))).filter(Boolean);
  for (const e of errors) meta.notes.push(`cleanup: ${e}`);
}
if (opts['drop-source']) {
  const err = await dropBucket(s3, srcBucket);
  if (err) meta.notes.push(`cleanup: ${err}`);
  await dropMarker(s3, srcBucket).catch(() => {});
  // The meta bucket is shared by every data set: deleted only when this was the last one.
  if ((await listAll(s3, META_BUCKET)).keys === 0) await dropBucket(s3, META_BUCKET);
}
if (opts.keep) log(`kept the work directory ${work} and buckets ${Object.values(buckets).join(', ')}`);
else rmSync(work, { recursive: true, force: true });

// --- report -------------------------------------------------------------------------------------

meta.finishedAt = new Date().toISOString();
meta.totalSeconds = Math.round((performance.now() - T0) / 1000);
let rssCompare;
let issue22RssCompare;
if (opts['rss-compare']) {
  const other = JSON.parse(readFileSync(opts['rss-compare'], 'utf8'));
  const seedRow = other.rows.find((x) => x.name === 'seed-small' && x.ok);
  if (seedRow) rssCompare = { scale: other.meta.scale, peakRssMB: seedRow.peakRssMB, file: opts['rss-compare'] };
  // Issue 22 compares every command's peak RSS, not only the seed's.
  issue22RssCompare = { scale: other.meta.scale, rows: other.rows, file: opts['rss-compare'] };
}
const ratioList = ratios(rows);
const targets = checkTargets(rows, meta, { rssCompare });
const issue22Targets = checkIssue22Targets(rows, meta, { rssCompare: issue22RssCompare });
const result = { meta, rows, ratios: ratioList, targets, issue22Targets };
writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');

const out = [];
out.push(`lakeguard bench — scale ${scale} (${ds.small.length} small objects, ${(ds.smallBytes / MB).toFixed(0)} MB + ${ds.large.length} large, ${(ds.largeBytes / MB).toFixed(0)} MB), concurrency ${concurrency}, mode ${mode}`);
out.push(`machine: ${meta.machine.nproc} cores, ${meta.machine.memoryMB} MB, ${meta.machine.ceph ?? 'ceph ?'}; total ${meta.totalSeconds} s`);
out.push('');
out.push(formatTable(rows));
out.push('');
if (ratioList.length) {
  out.push(table(['ratio', 'value', 'meaning'], ratioList.map((r) => [r.name, r.value.toFixed(3), r.text])));
  out.push('');
}
if (meta.proxyCalibration) out.push(`counting proxy: ${meta.proxyCalibration.slowdown}x the direct raw GET time on ${meta.proxyCalibration.objects} objects (rclone and restic ran through it)`);
if (meta.shards?.summary.length) {
  out.push(`shard processes (${meta.shards.objects} objects, ${meta.machine.nproc} cores shared with the S3 server):`);
  out.push(
    table(
      ['processes', 'objects/s', 'x 1 process', 'lakeguard CPU s / 1,000 obj', 'server CPU s / 1,000 obj'],
      meta.shards.summary.map((x) => [String(x.processes), x.objectsPerS.toFixed(0), x.speedup?.toFixed(2) ?? '-', x.clientCpuSPer1000.toFixed(2), x.serverCpuSPer1000?.toFixed(2) ?? '-']),
    ),
  );
}
if (meta.serve) {
  const r = (name) => rows.find((x) => x.name === name && x.ok);
  const first = (name) => (r(name) ? `${(r(name).extra.firstByteMs / 1000).toFixed(2)} s (listening after ${(r(name).extra.listenMs / 1000).toFixed(2)} s)` : '-');
  out.push(`serve (${meta.serve.objects} objects): start to first byte ${first('serve-start-warm')} on a synced catalog, ${first('serve-start-cold')} on an empty one;`);
  if (r('serve-start-100k-warm')) out.push(`  on a catalog of 100,000 objects: ${first('serve-start-100k-warm')} synced, ${first('serve-start-100k-cold')} empty;`);
  out.push(`  32 clients ${r('serve-read-32')?.objectsPerS?.toFixed(0) ?? '-'} objects/s vs restore --to-dir ${r('restore-dir')?.objectsPerS?.toFixed(0) ?? '-'}; serve peak RSS ${r('serve-read-32')?.peakRssMB ?? '-'} MB (32 clients), ${r('serve-read-64')?.peakRssMB ?? '-'} MB (64)`);
}
if (meta.catalog) out.push(`catalog: ${meta.catalog.totalBytes} bytes for ${meta.catalog.versions} versions (${meta.catalog.bytesPerVersion} B/version)`);
out.push('');
out.push(table(['target', 'status', 'measured'], targets.map((t) => [t.target, t.status, t.measured])));
out.push('', formatIssue22Targets(issue22Targets));
if (meta.profiles) {
  for (const [f, p] of Object.entries(meta.profiles).filter(([f]) => /^(seed-small|seed-large|incremental-nochange-1|incremental-changed|restore-full)\./.test(f))) {
    out.push('', `cpu profile ${f}: ${(p.totalMs / 1000).toFixed(1)} s sampled, top self time:`);
    out.push(table(['self ms', '%', 'function', 'where'], p.top.slice(0, 15).map((x) => [x.selfMs.toFixed(0), x.pct.toFixed(1), x.name, x.where])));
  }
}
for (const n of meta.notes) out.push(`note: ${n}`);
out.push('', `results: ${outFile}`);
process.stdout.write(out.join('\n') + '\n');
process.exitCode = rows.some((x) => !x.ok) ? 1 : 0;
