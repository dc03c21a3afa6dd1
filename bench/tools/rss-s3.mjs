#!/usr/bin/env node
// Issue 22: peak RSS and CPU of a seed from S3 and of a full restore to S3, engines side by side.
// For every engine at the same time (same load): `backup --group small` of the data set's small
// objects into a fresh repository prefix, then `restore --bucket SRC --to s3://.../` of them into
// a fresh target prefix; each under /usr/bin/time (peak RSS, user+sys CPU). Prints one line per
// measurement and a JSON summary.
//
//   node bench/tools/rss-s3.mjs --engines /tmp/lg-base,. [--scale 0.1] [--rounds 1] [--out FILE]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runMeasured } from '../lib/proc.mjs';
import { ensureBucket } from '../lib/s3.mjs';
import { engineEnv, enginesOf, smallDataset, smallGroupSetup } from '../lib/small-group.mjs';

const { values: opts } = parseArgs({
  options: {
    engines: { type: 'string' },
    scale: { type: 'string', default: '0.1' },
    seed: { type: 'string', default: '42' },
    rounds: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '32' },
    out: { type: 'string' },
  },
});
const engines = enginesOf(opts.engines);
const log = (m) => process.stderr.write(`[rss-s3] ${m}\n`);
const { s3, ds, src } = await smallDataset({ seed: Number(opts.seed), scale: Number(opts.scale), log });
const bucket = 'lgbench-rss-s3';
await ensureBucket(s3, bucket);
const work = mkdtempSync(join(tmpdir(), 'lg-rss-s3-'));
const n = ds.small.length;
const env = engineEnv();
const tag = Date.now().toString(36);
const rows = [];
async function measureEngine(round, i, engine) {
  const name = `e${i}-r${round}`;
  const lg = smallGroupSetup({ work, name, repoUrl: `s3://${bucket}/${tag}/${name}/repo`, src, tables: ds.tables, concurrency: opts.concurrency, env });
  const bin = join(engine, 'bin', 'lakeguard');
  const run = async (what, args, ok) => {
    const m = await runMeasured(bin, [...lg.args, ...args], { env: lg.env, workDir: work, name: `${what}-${name}` });
    if (!ok.includes(m.code)) throw new Error(`${what} exited ${m.code}: ${m.stderr.slice(-800)}`);
    rows.push({ round, engine, what, objects: n, cpuS: (m.userS ?? 0) + (m.sysS ?? 0), wallS: m.wallMs / 1000, rssMB: Math.round((m.peakRssKiB ?? 0) / 1024), load: loadavg()[0] });
    log(JSON.stringify(rows.at(-1)));
  };
  await run('init', ['init'], [0]);
  await run('seed', ['backup', '--group', 'small'], [0, 4]);
  await run('restore-full', ['restore', '--bucket', src, '--to', `s3://${bucket}/${tag}/${name}/restored/`], [0]);
}
for (let round = 0; round < Number(opts.rounds); round++) await Promise.all(engines.map((engine, i) => measureEngine(round, i, engine)));
const result = { date: new Date().toISOString(), scale: Number(opts.scale), objects: n, rounds: Number(opts.rounds), rows: rows.filter((r) => r.what !== 'init') };
if (opts.out) writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n');
process.stdout.write(JSON.stringify(result.rows, null, 2) + '\n');
rmSync(work, { recursive: true, force: true });
