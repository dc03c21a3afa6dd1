#!/usr/bin/env node
// The main job on an embedded default: generate a small sample lake in a local directory,
// back it up into a file:// repository with the real CLI, change it, back it up again,
// restore both runs, verify the repository, and prove the restores are byte-identical.
// Needs no cloud account and no S3 server. Output goes to ./demo-output (recreated each time).
// LAKEGUARD_DEMO_BIN runs another lakeguard executable instead of bin/lakeguard (the single-file
// binary: test/unit/binary.test.ts).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.env.LAKEGUARD_DEMO_DIR ?? join(root, 'demo-output'));
const lake = join(out, 'sample-lake');
const lakeguard = process.env.LAKEGUARD_DEMO_BIN ? [resolve(process.env.LAKEGUARD_DEMO_BIN)] : [process.execPath, join(root, 'bin/lakeguard')];
const env = {
  ...process.env,
  LAKEGUARD_PASSWORD: 'demo-password-not-for-production',
  LAKEGUARD_CACHE_DIR: join(out, 'cache'),
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// ---- a small, lake-shaped data set: date-partitioned JSON lines and CSV, logs, some binary ----
let seed = 20261123;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const write = (key, body) => {
  const path = join(lake, key);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, body);
};
let files = 0;
let temporary = 0;
for (const table of ['orders', 'clicks', 'invoices']) {
  for (let day = 1; day <= 10; day++) {
    const dt = `2026-11-${String(day).padStart(2, '0')}`;
    for (let part = 0; part < 20; part++) {
      const rows = [];
      for (let i = 0; i < 20 + Math.floor(rand() * 60); i++) {
        rows.push(JSON.stringify({ table, dt, id: `${part}-${i}`, amount: Math.round(rand() * 100000) / 100, customer: `c${Math.floor(rand() * 5000)}` }));
      }
      write(`${table}/dt=${dt}/part-${String(part).padStart(5, '0')}.json`, rows.join('\n') + '\n');
      files++;
    }
    write(`${table}/dt=${dt}/_SUCCESS`, '');
    write(`${table}/dt=${dt}/_temporary/attempt_0/part-0.crc`, 'excluded by the policy\n');
    files += 2;
    temporary++;
  }
}
const noise = Buffer.alloc(256 * 1024);
for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(rand() * 256);
write('raw/images/blob.bin', noise);
write('raw/images/blob-copy.bin', noise); // a duplicate: stored once
files += 2;

const policyPath = join(out, 'lakeguard.yaml');
writeFileSync(
  policyPath,
  `# Written by scripts/demo.mjs: a local directory backed up into a file:// repository.
version: 1
repository:
  url: file://./repository
  password_env: LAKEGUARD_PASSWORD
groups:
  - name: sample
    sources:
      - path: ./sample-lake
        exclude: ["**/_temporary/**"]
concurrency: { list: 8, transfer: 16 }
`,
);

// ---- run the real CLI -----------------------------------------------------------------------
const cli = (args, { expect = 0 } = {}) => {
  process.stdout.write(`\n$ lakeguard ${args.join(' ')}\n`);
  const r = spawnSync(lakeguard[0], [...lakeguard.slice(1), '--policy', policyPath, ...args], { env, cwd: out, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  process.stdout.write(r.stdout);
  if (r.status !== expect) {
    process.stderr.write(`demo: lakeguard ${args.join(' ')} exited ${r.status}, expected ${expect}\n`);
    process.exit(1);
  }
  return r.stdout;
};

/**
 * @param {string} dir
 * @param {(key: string) => boolean} [skip]
 */
const hashTree = (dir, skip = () => false) => {
  const hashes = new Map();
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const key = relative(dir, p).split('\\').join('/');
      if (skip(key)) continue;
      if (statSync(p).isDirectory()) walk(p);
      else hashes.set(key, createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return hashes;
};
const excluded = (key) => key.includes('/_temporary');
const same = (a, b) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

/** One line saying what the next step shows, for a first-time reader. */
const say = (text) => process.stdout.write(`\n# ${text}`);

console.log(`sample lake: ${files} files in ${lake} (${temporary} of them under _temporary/, which the policy excludes)`);
console.log(`policy: ${policyPath}; repository: ${join(out, 'repository')} (encrypted, password in LAKEGUARD_PASSWORD)`);
say('create the repository');
cli(['init']);
say('first backup: every object is new');
cli(['backup']);
const firstState = hashTree(lake, excluded);

// Change the lake: overwrite a file, add one, delete one.
write('orders/dt=2026-11-01/part-00000.json', '{"corrected":true}\n');
write('orders/dt=2026-11-11/part-00000.json', '{"new":"day"}\n');
rmSync(join(lake, 'clicks/dt=2026-11-05/part-00003.json'));
say('changed the lake: overwrote orders/dt=2026-11-01/part-00000.json, added orders/dt=2026-11-11/part-00000.json,\n# deleted clicks/dt=2026-11-05/part-00003.json; the second backup reads and stores only what changed');
cli(['backup']);
say('both runs, each a point in time to restore');
cli(['runs']);

// `runs --json` prints one message per line: a `run` message per run, then a `summary`.
const runs = spawnSync(lakeguard[0], [...lakeguard.slice(1), '--policy', policyPath, 'runs', '--json'], { env, cwd: out, encoding: 'utf8' })
  .stdout.split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line))
  .filter((m) => m.message_type === 'run');
say('restore the latest state, then the state the first run recorded');
cli(['restore', '--to-dir', join(out, 'restore-latest')]);
cli(['restore', '--run', runs[0].id, '--to-dir', join(out, 'restore-first')]);
say('check the repository, reading and authenticating every byte');
cli(['verify', '--read-data']);

const latestOk = same(hashTree(join(out, 'restore-latest')), hashTree(lake, excluded));
const firstOk = same(hashTree(join(out, 'restore-first')), firstState);
say('compare the restores with the lake, file by file (sha256)\n');
console.log(`latest run restored byte-identical to the lake now: ${latestOk ? 'yes' : 'NO'}`);
console.log(`first run restored byte-identical to the lake as it was: ${firstOk ? 'yes' : 'NO'}`);
console.log(`everything is in ${out}`);
process.exit(latestOk && firstOk ? 0 : 1);
