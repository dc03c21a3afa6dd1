#!/usr/bin/env node
// Issue 22: CPU per file of a seed of a local directory, engines side by side, and restic on the
// same files. The small objects of the bench data set (same generator, same keys and bodies as
// `npm run bench`'s `seed-dir`) are written once to a directory; each round runs, for every
// engine (alternating) and every LAKEGUARD_THREADS value, `init` + `backup` into a fresh
// repository in a local directory (no S3 server: the main thread's per-file work, not requests),
// then `restic backup` of the same files into a fresh local restic repository. Each command runs
// under /usr/bin/time; bench/tools/thread-cpu.cjs (preloaded) adds the CPU of lakeguard's main
// thread and of the threads alive at exit (V8's platform threads, libuv's pool; the encode threads
// have ended). The JSON summary gives medians of CPU s (user + sys), wall, CPU ms per file (whole
// process and main thread) and the ratios (restic time ÷ seed time, 2 threads ÷ 1 in objects/s).
//
//   node bench/tools/seed-dir.mjs --engines /tmp/lg-base32,. [--scale 0.1] [--rounds 3] [--threads 1,2] [--no-restic] [--cpu-prof DIR] [--out FILE]
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeDataset, smallBody } from '../lib/dataset.mjs';
import { lastJson, runMeasured } from '../lib/proc.mjs';

const { values: opts } = parseArgs({
  options: {
    engines: { type: 'string' },
    scale: { type: 'string', default: '0.1' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1,2' },
    'no-restic': { type: 'boolean', default: false },
    dir: { type: 'string', default: '/tmp/lgbench-seeddir' },
    'cpu-prof': { type: 'string' },
    out: { type: 'string' },
  },
});
const engines = (opts.engines ?? '').split(',').filter(Boolean).map((e) => resolve(e));
if (engines.length === 0) throw new Error('--engines DIR[,DIR...] is required');
const threadsList = opts.threads.split(',').filter(Boolean);
const THREAD_CPU = fileURLToPath(new URL('./thread-cpu.cjs', import.meta.url));
const log = (m) => process.stderr.write(`[seed-dir] ${m}\n`);
const ds = describeDataset({ seed: 42, scale: Number(opts.scale) });
const n = ds.small.length;

/** The small objects as files under DIR/lake-N (reused when complete). */
function writeLake() {
  const lake = join(opts.dir, `lake-${n}`);
  const marker = `${lake}.complete`;
  if (existsSync(marker)) return lake;
  rmSync(lake, { recursive: true, force: true });
  for (const entry of ds.small) {
    const file = join(lake, 'small', entry.key);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, smallBody(ds, entry));
  }
  writeFileSync(marker, String(n));
  return lake;
}

const lake = writeLake();
const work = join(opts.dir, 'work');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const baseEnv = { PATH: `${dirname(process.execPath)}:${process.env.PATH}`, HOME: process.env.HOME };
const rows = [];
const cpu = (m) => m.userS + m.sysS;
let seq = 0;

async function seed(engine, threads, round) {
  const name = `e${engines.indexOf(engine)}-t${threads}-r${round}`;
  const at = join(work, name);
  mkdirSync(at, { recursive: true });
  const policy = join(at, 'lakeguard.yaml');
  writeFileSync(
    policy,
    `version: 1
repository:
  url: file://${join(at, 'repository')}
groups:
  - name: dir
    sources:
      - path: ${join(lake, 'small')}
        name: lake
concurrency: { list: 16, transfer: 32 }
`,
  );
  const threadCpu = join(at, 'thread-cpu.ndjson');
  /** @type {NodeJS.ProcessEnv} */
  const env = {
    ...baseEnv,
    LAKEGUARD_PASSWORD: 'seed-dir bench',
    LAKEGUARD_CACHE_DIR: join(at, 'cache'),
    LAKEGUARD_THREADS: threads,
    LG_THREAD_CPU_OUT: threadCpu,
    LAKEGUARD_NODE_FLAGS: `--require ${THREAD_CPU}`,
  };
  const args = (cmd) => ['--policy', policy, '--catalog', join(at, 'catalog.db'), '--json', ...cmd];
  const init = await runMeasured(join(engine, 'bin', 'lakeguard'), args(['init']), { env, workDir: at, name: 'init' });
  if (init.code !== 0) throw new Error(`${name} init exited ${init.code}: ${init.stderr.slice(-800)}`);
  if (opts['cpu-prof']) {
    const profDir = join(resolve(opts['cpu-prof']), name);
    mkdirSync(profDir, { recursive: true });
    env.LAKEGUARD_NODE_FLAGS += ` --cpu-prof --cpu-prof-dir=${profDir}`;
  }
  const la = loadavg()[0];
  const m = await runMeasured(join(engine, 'bin', 'lakeguard'), args(['backup']), { env, workDir: at, name: 'backup' });
  if (m.code !== 0) throw new Error(`${name} backup exited ${m.code}: ${m.stderr.slice(-800)}`);
  const s = lastJson(m.stdout);
  if (s.counters?.objectsNew !== n) throw new Error(`${name}: ${s.counters?.objectsNew} new objects, expected ${n}`);
  const tcLine = existsSync(threadCpu) ? readFileSync(threadCpu, 'utf8').trim().split('\n').at(-1) : undefined;
  const tc = tcLine ? JSON.parse(tcLine) : null;
  const row = { seq: seq++, round, engine, threads, cpuS: +cpu(m).toFixed(2), mainThreadCpuS: tc?.mainS ?? null, mainThreadMsPerFile: tc ? +((tc.mainS * 1000) / n).toFixed(3) : null, otherThreadsCpuS: tc?.otherThreads ?? null, userS: m.userS, sysS: m.sysS, wallS: +(m.wallMs / 1000).toFixed(2), peakRssMB: m.peakRssKiB === null ? null : Math.round(m.peakRssKiB / 1024), cpuMsPerFile: +((cpu(m) * 1000) / n).toFixed(3), load1: la };
  log(JSON.stringify(row));
  rows.push(row);
  rmSync(join(at, 'repository'), { recursive: true, force: true });
}

async function restic(round) {
  const at = join(work, `restic-r${round}`);
  mkdirSync(at, { recursive: true });
  const env = { ...baseEnv, RESTIC_PASSWORD: 'seed-dir bench', RESTIC_CACHE_DIR: join(at, 'cache') };
  const repo = join(at, 'repo');
  const init = await runMeasured('restic', ['-r', repo, 'init', '--repository-version', '2'], { env, workDir: at, name: 'init' });
  if (init.code !== 0) throw new Error(`restic init exited ${init.code}: ${init.stderr.slice(-800)}`);
  const la = loadavg()[0];
  const m = await runMeasured('restic', ['-r', repo, 'backup', '--json', '--host', 'bench', 'small'], { env, cwd: lake, workDir: at, name: 'backup' });
  if (m.code !== 0) throw new Error(`restic backup exited ${m.code}: ${m.stderr.slice(-800)}`);
  const summary = lastJson(m.stdout);
  if (summary.total_files_processed !== n) throw new Error(`restic processed ${summary.total_files_processed} files, expected ${n}`);
  const row = { seq: seq++, round, engine: 'restic', threads: null, cpuS: +cpu(m).toFixed(2), userS: m.userS, sysS: m.sysS, wallS: +(m.wallMs / 1000).toFixed(2), peakRssMB: m.peakRssKiB === null ? null : Math.round(m.peakRssKiB / 1024), cpuMsPerFile: +((cpu(m) * 1000) / n).toFixed(3), load1: la };
  log(JSON.stringify(row));
  rows.push(row);
  rmSync(at, { recursive: true, force: true });
}

for (let round = 0; round < Number(opts.rounds); round++) {
  // Alternate the engines' order each round so neither always runs first.
  const order = round % 2 === 0 ? engines : [...engines].reverse();
  for (const threads of threadsList) for (const engine of order) await seed(engine, threads, round);
  if (!opts['no-restic']) await restic(round);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pick = (engine, threads) => rows.filter((r) => r.engine === engine && r.threads === threads);
const resticRows = pick('restic', null);
const resticWall = median(resticRows.map((r) => r.wallS));
const summary = {
  files: n,
  restic: resticRows.length ? { cpuS: median(resticRows.map((r) => r.cpuS)), wallS: resticWall } : null,
  engines: engines.map((engine) => {
    const commitFile = join(engine, '.commit');
    const byThreads = Object.fromEntries(
      threadsList.map((t) => {
        const rs = pick(engine, t);
        const wallS = median(rs.map((r) => r.wallS));
        return [t, { cpuS: median(rs.map((r) => r.cpuS)), wallS, cpuMsPerFile: median(rs.map((r) => r.cpuMsPerFile)), mainThreadMsPerFile: median(rs.map((r) => r.mainThreadMsPerFile)), peakRssMB: median(rs.map((r) => r.peakRssMB)), resticTimeOverSeed: resticWall ? +(resticWall / wallS).toFixed(3) : null }];
      }),
    );
    const [a, b] = threadsList;
    const ratio = a && b ? +(byThreads[a].wallS / byThreads[b].wallS).toFixed(3) : null;
    return { engine, commit: existsSync(commitFile) ? readFileSync(commitFile, 'utf8').trim() : null, byThreads, [`threads ${b} ÷ ${a}, objects/s`]: ratio };
  }),
};
const result = { tool: 'bench/tools/seed-dir.mjs', at: new Date().toISOString(), options: opts, summary, rows };
process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
if (opts.out) writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n');
