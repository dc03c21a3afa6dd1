#!/usr/bin/env node
// Restore to a directory, side by side (issue 22): the bench's small files backed up once by
// lakeguard (a path source) and by restic, then `lakeguard restore --to-dir` of that run with
// each engine given and `restic restore` of restic's snapshot, alternated for several rounds.
// Prints user+sys CPU seconds, wall seconds and peak RSS of each run, and the medians.
//
//   node bench/tools/restore-dir.mjs --work /tmp/rd --scale 0.05 --engines /tmp/lg-base,. \
//     [--repo file|s3] [--rounds 3] [--no-restic] [--to s3://bucket/prefix] [--profile DIR]
//
// --repo file: both repositories are local directories under --work (no S3 server in the
// numbers); --repo s3: both are in bucket lgbench-restoredir-<scale> on the test server.
// --to: restore into that S3 location instead of a directory (restic has no such mode: skipped).
// The set-up (files, seeds) is kept in --work and reused by later calls with the same options.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { describeDataset, smallBody } from '../lib/dataset.mjs';
import { runMeasured } from '../lib/proc.mjs';
import { S3, ensureBucket, s3Client } from '../lib/s3.mjs';

const { values: o } = parseArgs({
  options: {
    work: { type: 'string', default: '/tmp/lg-restore-dir' },
    scale: { type: 'string', default: '0.05' },
    engines: { type: 'string', default: '/tmp/lg-base,.' },
    repo: { type: 'string', default: 'file' },
    rounds: { type: 'string', default: '3' },
    restic: { type: 'boolean', default: true },
    'no-restic': { type: 'boolean', default: false },
    to: { type: 'string' },
    profile: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
  },
});
const scale = Number(o.scale);
const work = resolve(o.work, `${o.repo}-${scale}`);
const engines = o.engines.split(',').map((e) => resolve(e));
const withRestic = o.restic && !o['no-restic'] && o.to === undefined;
const password = 'lakeguard bench password';
const nodeEnv = { PATH: `${dirname(process.execPath)}:${process.env.PATH}`, HOME: process.env.HOME, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
const awsEnv = { AWS_ACCESS_KEY_ID: S3.accessKeyId, AWS_SECRET_ACCESS_KEY: S3.secretAccessKey, AWS_REGION: S3.region };
const bucket = `lgbench-restoredir-${String(scale).replace('.', '-')}`;
mkdirSync(work, { recursive: true });

const ds = describeDataset({ scale });
const src = join(work, 'files');
if (!existsSync(join(src, '.done'))) {
  for (const e of ds.small) {
    const f = join(src, 'small', e.key);
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, smallBody(ds, e));
  }
  writeFileSync(join(src, '.done'), '');
}
if (o.repo === 's3' || o.to !== undefined) await ensureBucket(s3Client(), o.to === undefined ? bucket : new URL(o.to).hostname);

const policy = join(work, 'policy.yaml');
const repoUrl = o.repo === 's3' ? `s3://${bucket}/lakeguard` : `file://${join(work, 'lg-repo')}`;
writeFileSync(
  policy,
  `version: 1
repository:
  url: ${repoUrl}
${o.repo === 's3' ? `  endpoint: ${S3.endpoint}\n` : ''}groups:
  - name: dir
    sources:
      - path: ${join(src, 'small')}
        name: lake
${o.to !== undefined ? `s3:\n  endpoint: ${S3.endpoint}\n` : ''}concurrency: { list: 8, transfer: ${o.concurrency} }
`,
);
const catalog = join(work, 'catalog', 'catalog.db');
mkdirSync(dirname(catalog), { recursive: true });

async function lakeguard(engine, name, args, extraEnv = {}) {
  const m = await runMeasured(join(engine, 'bin', 'lakeguard'), ['--policy', policy, '--catalog', catalog, '--json', ...args], {
    env: { ...nodeEnv, ...awsEnv, LAKEGUARD_PASSWORD: password, LAKEGUARD_CACHE_DIR: join(work, 'cache'), ...extraEnv },
    workDir: work,
    name,
  });
  if (m.code !== 0) throw new Error(`${name}: lakeguard ${args[0]} exited ${m.code}: ${m.stderr.slice(-1500)}`);
  const summary = m.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((x) => x.message_type === 'summary').at(-1);
  return { m, summary };
}

const resticRepo = o.repo === 's3' ? `s3:${S3.endpoint}/${bucket}/restic` : join(work, 'restic-repo');
const resticEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...awsEnv, RESTIC_PASSWORD: password, RESTIC_CACHE_DIR: join(work, 'restic-cache') };
const resticFlags = o.repo === 's3' ? ['-o', `s3.connections=${o.concurrency}`] : [];
async function restic(name, args, cwd) {
  const m = await runMeasured('restic', ['-r', resticRepo, ...args, ...resticFlags], { env: resticEnv, cwd, workDir: work, name });
  if (m.code !== 0) throw new Error(`restic ${args[0]} exited ${m.code}: ${m.stderr.slice(-1500)}`);
  return m;
}

const stateFile = join(work, 'state.json');
const state = existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, 'utf8')) : {};
if (state.runId === undefined) {
  await lakeguard(engines[0], 'init', ['init']);
  const { summary } = await lakeguard(engines[0], 'seed', ['backup']);
  state.runId = summary.runId;
  writeFileSync(stateFile, JSON.stringify(state));
}
if (withRestic && state.snapshot === undefined) {
  await restic('restic-init', ['init', '--repository-version', '2']);
  const m = await restic('restic-backup', ['backup', '--json', '--host', 'bench', 'small'], src);
  state.snapshot = m.stdout.split('\n').filter((l) => l.includes('"summary"')).map((l) => JSON.parse(l)).at(-1).snapshot_id;
  writeFileSync(stateFile, JSON.stringify(state));
}

const probe = ds.small[Math.floor(ds.small.length / 3)];
const results = new Map();
const record = (name, m) => {
  const r = { cpu: m.userS + m.sysS, wall: m.wallMs / 1000, rssMB: m.peakRssKiB / 1024 };
  if (!results.has(name)) results.set(name, []);
  results.get(name).push(r);
  console.log(`${name.padEnd(28)} cpu ${r.cpu.toFixed(2)} s  wall ${r.wall.toFixed(2)} s  rss ${r.rssMB.toFixed(0)} MB`);
};
for (let round = 0; round < Number(o.rounds); round++) {
  for (const [i, engine] of engines.entries()) {
    const name = `lakeguard[${i}] ${engine.split('/').at(-1)}`;
    const target = join(work, 'target');
    rmSync(target, { recursive: true, force: true });
    const to = o.to === undefined ? ['--to-dir', target] : ['--to', `${o.to.replace(/\/$/, '')}/r${round}e${i}/`];
    const prof = o.profile === undefined ? {} : { LAKEGUARD_NODE_FLAGS: `--cpu-prof --cpu-prof-dir=${o.profile} --cpu-prof-name=restore-e${i}-r${round}.cpuprofile` };
    const { m, summary } = await lakeguard(engine, `restore-${i}`, ['restore', '--run', state.runId, '--group', 'dir', '--overwrite', 'always', ...to], prof);
    if (summary.restored !== ds.small.length || summary.failed !== 0) throw new Error(`${name}: restored ${summary.restored}, failed ${summary.failed}`);
    if (o.to === undefined && !readFileSync(join(target, probe.key)).equals(smallBody(ds, probe))) throw new Error(`${name}: ${probe.key} differs`);
    record(name, m);
  }
  if (withRestic) {
    const target = join(work, 'restic-target');
    rmSync(target, { recursive: true, force: true });
    record('restic', await restic('restic-restore', ['restore', state.snapshot, '--target', target]));
    if (!readFileSync(join(target, 'small', probe.key)).equals(smallBody(ds, probe))) throw new Error(`restic: ${probe.key} differs`);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`\nmedians of ${o.rounds} rounds, ${ds.small.length} files, ${(ds.smallBytes / 1e6).toFixed(1)} MB, repository ${o.repo}${o.to ? `, to ${o.to}` : ''}`);
for (const [name, rs] of results) {
  const cpu = median(rs.map((r) => r.cpu));
  console.log(`${name.padEnd(28)} cpu ${cpu.toFixed(2)} s (${((cpu / ds.small.length) * 1000).toFixed(3)} ms/object)  wall ${median(rs.map((r) => r.wall)).toFixed(2)} s  rss ${median(rs.map((r) => r.rssMB)).toFixed(0)} MB`);
}
