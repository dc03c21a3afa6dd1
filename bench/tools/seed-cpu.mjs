#!/usr/bin/env node
// Issue 22: client CPU per small object of a seed from S3, engines side by side. Each round
// runs, for every engine (alternating): the lean raw GET loop of the small objects
// (bench/tools/raw-get.mjs through that engine's lean transport) and a seed of the same objects
// (`backup --group small`) into a fresh repository prefix; each under /usr/bin/time. Prints one
// line per measurement and a JSON summary (CPU ms per object, objects/s, seed ÷ loop).
//
//   node bench/tools/seed-cpu.mjs --engines /tmp/lg-base,. [--scale 0.1] [--rounds 3] [--no-loop | --loop-first-only] [--parallel] [--cpu-prof DIR] [--out FILE]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { lastJson, runMeasured } from '../lib/proc.mjs';
import { ensureBucket } from '../lib/s3.mjs';
import { engineEnv, enginesOf, smallDataset, smallGroupSetup } from '../lib/small-group.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const { values: opts } = parseArgs({
  options: {
    engines: { type: 'string' },
    scale: { type: 'string', default: '0.1' },
    seed: { type: 'string', default: '42' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '32' },
    'no-loop': { type: 'boolean', default: false },
    // The raw GET loop through the first engine only (the baseline's), not every engine's.
    'loop-first-only': { type: 'boolean', default: false },
    parallel: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    out: { type: 'string' },
  },
});
const engines = enginesOf(opts.engines);
const log = (m) => process.stderr.write(`[seed-cpu] ${m}\n`);
const { s3, ds, src } = await smallDataset({ seed: Number(opts.seed), scale: Number(opts.scale), log });
const repoBucket = 'lgbench-seedcpu';
await ensureBucket(s3, repoBucket);
const work = mkdtempSync(join(tmpdir(), 'lg-seedcpu-'));
const keys = join(work, 'small.keys');
writeFileSync(keys, ds.small.map((e) => e.key).join('\n') + '\n');
const n = ds.small.length;
const env = engineEnv();
const tag = Date.now().toString(36);
const rows = [];
const cpu = (m) => m.userS + m.sysS;
/** One engine's part of a round: its raw GET loop (unless told otherwise), then its seed. */
async function measureEngine(round, i, engine, what) {
  {
    const name = `e${i}-r${round}`;
    if (what !== 'seed' && !opts['no-loop'] && !(opts['loop-first-only'] && i > 0)) {
      const m = await runMeasured(process.execPath, [join(ROOT, 'bench/tools/raw-get.mjs'), '--bucket', src, '--keys', keys, '--concurrency', opts.concurrency, '--client', 'lean', '--engine-dir', engine], { env, workDir: work, name: `loop-${name}` });
      if (m.code !== 0) throw new Error(`raw-get: ${m.stderr.slice(-800)}`);
      const out = lastJson(m.stdout);
      if (out.objects !== n) throw new Error(`raw-get read ${out.objects}`);
      rows.push({ round, engine, what: 'loop', cpuS: cpu(m), userS: m.userS, sysS: m.sysS, wallS: m.wallMs / 1000, rssMB: Math.round((m.peakRssKiB ?? 0) / 1024), load: loadavg()[0] });
      log(JSON.stringify(rows.at(-1)));
    }
    if (what === 'loop') return;
    const lg = smallGroupSetup({ work, name, repoUrl: `s3://${repoBucket}/${tag}/${name}`, src, tables: ds.tables, concurrency: opts.concurrency, env });
    const bin = join(engine, 'bin', 'lakeguard');
    const init = await runMeasured(bin, [...lg.args, 'init'], { env: lg.env, workDir: work, name: `init-${name}` });
    if (init.code !== 0) throw new Error(`init: ${init.stderr.slice(-800)}`);
    const prof = opts['cpu-prof'] ? { LAKEGUARD_NODE_FLAGS: `--cpu-prof --cpu-prof-dir=${resolve(opts['cpu-prof'])} --cpu-prof-name=${name}.cpuprofile` } : {};
    const m = await runMeasured(bin, [...lg.args, 'backup', '--group', 'small'], { env: { ...lg.env, ...prof }, workDir: work, name: `seed-${name}` });
    if (m.code !== 0 && m.code !== 4) throw new Error(`backup exited ${m.code}: ${m.stderr.slice(-800)}`);
    const summary = m.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((x) => x.message_type === 'summary').at(-1);
    if (summary?.counters.objectsNew !== n) throw new Error(`seed recorded ${summary?.counters.objectsNew} new objects, expected ${n}`);
    rows.push({ round, engine, what: 'seed', cpuS: cpu(m), userS: m.userS, sysS: m.sysS, wallS: m.wallMs / 1000, rssMB: Math.round((m.peakRssKiB ?? 0) / 1024), load: loadavg()[0], packs: summary.counters.packsWritten, bytesStored: summary.counters.bytesStored, requests: summary.counters.requests, engineMs: summary.counters.durationMs });
    log(JSON.stringify(rows.at(-1)));
  }
}
for (let round = 0; round < Number(opts.rounds); round++) {
  if (opts.parallel) {
    // The seeds of every engine at the same time (loops first, one by one): the same load for
    // each, so their CPU seconds compare on a machine others share; wall times do not.
    if (!opts['no-loop']) for (const [i, engine] of engines.entries()) if (!(opts['loop-first-only'] && i > 0)) await measureEngine(round, i, engine, 'loop');
    await Promise.all(engines.map((engine, i) => measureEngine(round, i, engine, 'seed')));
  } else {
    for (const [i, engine] of engines.entries()) await measureEngine(round, i, engine, 'both');
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const summary = engines.map((engine) => {
  const pick = (what, f) => median(rows.filter((r) => r.engine === engine && r.what === what).map(f));
  const loopRows = rows.filter((r) => r.what === 'loop' && r.engine === (opts['loop-first-only'] ? engines[0] : engine));
  const loopCpu = loopRows.length === 0 ? null : median(loopRows.map((r) => r.cpuS));
  const loopWall = loopRows.length === 0 ? null : median(loopRows.map((r) => r.wallS));
  const seedCpu = pick('seed', (r) => r.cpuS);
  const seedWall = pick('seed', (r) => r.wallS);
  return {
    engine,
    objects: n,
    seedCpuMsPerObject: (seedCpu * 1000) / n,
    loopCpuMsPerObject: loopCpu === null ? null : (loopCpu * 1000) / n,
    seedObjectsPerS: n / seedWall,
    loopObjectsPerS: loopWall === null ? null : n / loopWall,
    seedOverLoopRate: loopWall === null ? null : loopWall / seedWall,
    seedRssMB: pick('seed', (r) => r.rssMB),
  };
});
const result = { date: new Date().toISOString(), scale: Number(opts.scale), rounds: Number(opts.rounds), rows, summary };
if (opts.out) writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n');
process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
rmSync(work, { recursive: true, force: true });
