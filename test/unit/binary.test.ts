// `npm run build:binary` (scripts/build-binary.mjs): lakeguard as one executable file. Built once
// for this file (~15 s idle, ~45 s on a loaded machine: mostly postject rewriting a copy of the
// 94 MiB node binary), then copied alone into a temporary directory, far from any node_modules,
// dist or package.json.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILD = join(ROOT, 'scripts/build-binary.mjs');
const DEMO = join(ROOT, 'scripts/demo.mjs');
const NPM_CLI = join(ROOT, 'bin/lakeguard');
/** For the tests that start a few processes: seconds each when idle, many on a loaded CI box. */
const SPAWNS_TIMEOUT = 120_000;

describe('the single-file binary (npm run build:binary)', () => {
  const dir = tempDir('binary');
  const binary = join(dir.path, 'lakeguard');
  const env = { PATH: process.env.PATH, HOME: dir.path, LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') };
  afterAll(() => dir.cleanup());

  beforeAll(() => {
    const build = spawnSync(process.execPath, [BUILD], { cwd: ROOT, encoding: 'utf8' });
    expect(build.stderr).toMatch(/built dist-bin\/lakeguard/);
    expect(build.status).toBe(0);
    copyFileSync(join(ROOT, 'dist-bin/lakeguard'), binary);
  }, 300_000);

  /** Runs the binary and the npm install's CLI (as bin/lakeguard starts it) with the same arguments. */
  function both(args: string[]): { binary: SpawnSyncReturns<string>; npm: SpawnSyncReturns<string> } {
    const opts = { cwd: dir.path, env, encoding: 'utf8' as const };
    return { binary: spawnSync(binary, args, opts), npm: spawnSync(process.execPath, ['--expose-gc', NPM_CLI, ...args], opts) };
  }

  /** Runs a program without blocking this process (the test's own server must answer it). */
  function run(program: string, args: string[], runEnv: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(program, args, { cwd: dir.path, env: runEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('runs the demo from a directory without node_modules: backup, restore byte-identical, verify', () => {
    const run = spawnSync(process.execPath, [DEMO], {
      env: { ...env, LAKEGUARD_DEMO_BIN: binary, LAKEGUARD_DEMO_DIR: join(dir.path, 'demo') },
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/\$ lakeguard init\n/);
    expect(run.stdout).toMatch(/run \S+ \(group sample\): complete/);
    expect(run.stdout).toContain('latest run restored byte-identical to the lake now: yes');
    expect(run.stdout).toContain('first run restored byte-identical to the lake as it was: yes');
    expect(run.stdout).toMatch(/no damage found/);
  }, 180_000);

  it('prints the version of package.json, as the npm install does', () => {
    const r = both(['--version']);
    expect(r.binary.status).toBe(0);
    expect(r.binary.stdout).toBe(r.npm.stdout);
    expect(r.binary.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  }, SPAWNS_TIMEOUT);

  it('takes node options from NODE_OPTIONS, without a word: --expose-gc turns the heap pacer on', () => {
    const probe = join(dir.path, 'gc-probe.cjs');
    writeFileSync(probe, 'process.on("exit", () => process.stderr.write(`gc ${typeof globalThis.gc}\\n`));\n');
    const plain = spawnSync(binary, ['--version'], { cwd: dir.path, env: { ...env, NODE_OPTIONS: `--require ${probe}` }, encoding: 'utf8' });
    expect(plain.stderr).toBe('gc undefined\n');
    const withGc = spawnSync(binary, ['--version'], { cwd: dir.path, env: { ...env, NODE_OPTIONS: `--expose-gc --max-old-space-size=512 --require ${probe}` }, encoding: 'utf8' });
    expect(withGc.stdout).toBe(plain.stdout);
    expect(withGc.stderr).toBe('gc function\n');
  }, SPAWNS_TIMEOUT);

  it('ends with the same messages and exit codes as the npm install', () => {
    const missing = `file://${join(dir.path, 'no-repository-here')}`;
    for (const [args, code] of [
      [['--no-such-option'], 2],
      [['--repo', missing, 'runs'], 10],
      [['--repo', missing, 'runs', '--json'], 10],
    ] as const) {
      const r = both([...args]);
      expect(r.binary.status).toBe(code);
      expect(r.npm.status).toBe(code);
      expect(r.binary.stderr).toBe(r.npm.stderr);
      expect(r.binary.stdout).toBe(r.npm.stdout);
    }
  }, SPAWNS_TIMEOUT);

  it('carries the AWS SDK: with LAKEGUARD_S3_TRANSPORT=sdk it answers as the npm install does', async () => {
    // An S3 endpoint where no key exists: `runs` reads the repository's config, gets 404, exit 10.
    const agents: string[] = [];
    const server = http.createServer((req, res) => {
      agents.push(req.headers['user-agent'] ?? '');
      res.writeHead(404, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const args = ['--repo', 's3://lakeguard-binary/repo', '--endpoint', `http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'runs'];
      const sdkEnv = { ...env, LAKEGUARD_S3_TRANSPORT: 'sdk', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', LAKEGUARD_PASSWORD: 'pw' };
      const fromBinary = await run(binary, args, sdkEnv);
      const fromNpm = await run(process.execPath, ['--expose-gc', NPM_CLI, ...args], sdkEnv);
      expect(fromBinary).toEqual({ code: 10, stdout: '', stderr: expect.stringMatching(/^lakeguard: no lakeguard repository at s3:\/\/lakeguard-binary\/repo\//) });
      expect(fromBinary).toEqual(fromNpm);
      expect(agents.length).toBeGreaterThanOrEqual(2);
      expect(agents.every((agent) => agent.includes('aws-sdk-js'))).toBe(true);
    } finally {
      server.close();
    }
  }, SPAWNS_TIMEOUT);

  it('says that LAKEGUARD_THREADS has no effect in it (no worker script), and backs up in the main thread', () => {
    const base = join(dir.path, 'threads');
    mkdirSync(join(base, 'data'), { recursive: true });
    writeFileSync(join(base, 'data', 'a.txt'), 'one blob to encode\n');
    const policy = join(base, 'policy.yaml');
    writeFileSync(policy, `version: 1\nrepository:\n  url: file://${join(base, 'repo')}\ngroups:\n  - name: g\n    sources:\n      - path: ${join(base, 'data')}\n`);
    const opts = { cwd: dir.path, env: { ...env, LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_THREADS: '2' }, encoding: 'utf8' as const };
    expect(spawnSync(binary, ['--policy', policy, 'init', '--json'], opts).status).toBe(0);
    const r = spawnSync(binary, ['--policy', policy, 'backup', '--json'], opts);
    expect(r.status).toBe(0);
    const parse = (text: string) => text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const lines = parse(r.stdout);
    expect(parse(r.stderr)).toEqual([
      { message_type: 'warning', message: expect.stringMatching(/^LAKEGUARD_THREADS=2 has no effect: .*single-file binary.*encodes in the main thread$/) },
    ]);
    expect(lines.at(-1)).toMatchObject({ message_type: 'summary', status: 'complete', counters: { objectsNew: 1 } });
  }, SPAWNS_TIMEOUT);

  it('refuses, in one line with a hint, a cache directory it cannot write its native addons to', () => {
    const file = join(dir.path, 'not-a-directory');
    writeFileSync(file, '');
    for (const json of [false, true]) {
      const r = spawnSync(binary, json ? ['runs', '--json'] : ['runs'], { cwd: dir.path, env: { ...env, LAKEGUARD_CACHE_DIR: file }, encoding: 'utf8' });
      expect(r.status).toBe(1);
      if (json) {
        expect(JSON.parse(r.stderr)).toMatchObject({ message_type: 'exit_error', code: 1, hint: expect.stringContaining('LAKEGUARD_CACHE_DIR') });
      } else {
        expect(r.stderr).toMatch(new RegExp(`^lakeguard: cannot load the native addon zstd-napi\\.node from ${file}/native/[0-9a-f]{64}: .*\\n  hint: set LAKEGUARD_CACHE_DIR .*\\n$`));
      }
    }
    // Help and the version need no addon (an image's default command on a read-only file system).
    for (const args of [['--version'], ['--help'], ['help', 'backup'], ['restore', '--help']]) {
      const r = spawnSync(binary, args, { cwd: dir.path, env: { ...env, LAKEGUARD_CACHE_DIR: file }, encoding: 'utf8' });
      expect({ args, status: r.status, stderr: r.stderr }).toEqual({ args, status: 0, stderr: '' });
      expect(r.stdout.length).toBeGreaterThan(0);
    }
  }, SPAWNS_TIMEOUT);

  it('writes its native addons into a private directory named by their hash, and loads them from there', () => {
    const cache = join(dir.path, 'fresh-cache');
    const opts = { cwd: dir.path, env: { ...env, LAKEGUARD_CACHE_DIR: cache, LAKEGUARD_PASSWORD: 'pw' }, encoding: 'utf8' as const };
    const repo = `file://${join(dir.path, 'repository')}`;
    // init writes the catalog (better-sqlite3); every command compresses or decompresses (zstd).
    for (const args of [['init'], ['runs']]) {
      const r = spawnSync(binary, ['--repo', repo, ...args], opts);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
    const listing = spawnSync('find', [join(cache, 'native'), '-printf', '%M %P\\n'], { encoding: 'utf8' });
    expect(listing.stdout.replace(/[0-9a-f]{64}/g, '<sha256>').trim().split('\n').map((line) => line.trimEnd()).sort()).toEqual([
      '-rwx------ <sha256>/better_sqlite3.node',
      '-rwx------ <sha256>/zstd-napi.node',
      'drwx------',
      'drwx------ <sha256>',
      'drwx------ <sha256>',
    ]);
  }, SPAWNS_TIMEOUT);
});
