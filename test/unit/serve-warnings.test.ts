// What `lakeguard serve` tells its operator, on a local directory and a file repository: a
// default state that holds a suspect run's records is said at start, as restore and ls say it
// (its clients cannot be told), as is an instant rebuilt around forgotten runs; under --quiet,
// which drops advice, those warnings and the failures met while serving (here a connection
// refused over --max-connections) still print.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { connectWhenListening, freePort } from '../helpers/free-port.js';
import { inProcessCli } from '../helpers/in-process-cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';
import { SERVE_KEYS, startServe } from '../helpers/serve-process.js';

const BIN = fileURLToPath(new URL('../../bin/lakeguard', import.meta.url));

/** `lakeguard serve --quiet` on a free port until `meanwhile` (given the port, once it listens) is done, then SIGTERM. */
async function quietServe(args: string[], env: Record<string, string>, meanwhile: (port: number) => Promise<void>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--expose-gc', BIN, 'serve', '--quiet', '--listen', `127.0.0.1:${port}`, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await meanwhile(port);
  child.kill('SIGTERM');
  return { code: await exited, stdout, stderr };
}

describe('serve on a state a suspect run recorded', () => {
  const dir = tempDir('serve-warnings');
  const policy = join(dir.path, 'lakeguard.yaml');
  const args = ['--policy', policy, '--catalog', join(dir.path, 'catalog.db')];
  const env = { ...SERVE_KEYS, LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') };
  afterAll(() => dir.cleanup());

  beforeAll(async () => {
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    writeTree(join(dir.path, 'lake'), { 'a.csv': 'a,1\n', 'b.csv': 'b,2\n' });
    const cli = (more: string[]) => inProcessCli([...args, ...more], env);
    expect((await cli(['init'])).code).toBe(0);
    expect((await cli(['backup', '--quiet'])).code).toBe(0);
    writeTree(join(dir.path, 'lake'), { 'HOW_TO_DECRYPT.txt': 'pay' });
    expect((await cli(['backup', '--quiet'])).code).toBe(ExitCode.suspect);
  });

  it('warns at start that the default state is SUSPECT, naming the run to look at', async () => {
    const served = await startServe(args, env);
    expect(await served.stop()).toBe(ExitCode.interrupted);
    const warnings = served.stderr().split('\n').filter((l) => l.includes('"message_type":"warning"'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/this state holds what run \S+ recorded, and it is SUSPECT \(not acknowledged\) in s3:\/\/lake\/.*lakeguard runs show \S+ --anomalies/);
  });

  it('under --quiet still prints that warning, and a connection refused while serving', async () => {
    const { stdout, stderr, code } = await quietServe([...args, '--max-connections', '1'], env, async (port) => {
      const held = await connectWhenListening(port);
      // The second connection is over the cap: closed as it arrives.
      const refused = await connectWhenListening(port);
      await new Promise((resolve) => refused.once('close', resolve));
      held.destroy();
    });
    expect(code).toBe(ExitCode.interrupted);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^warning: this state holds what run \S+ recorded, and it is SUSPECT/);
    expect(lines).toContain('warning: 1 connections refused so far: 1 were open (--max-connections)');
  });
});

describe('serve --at an instant whose runs were forgotten', () => {
  const dir = tempDir('serve-gap');
  const policy = join(dir.path, 'lakeguard.yaml');
  const args = ['--policy', policy, '--catalog', join(dir.path, 'catalog.db')];
  const env = { ...SERVE_KEYS, LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') };
  afterAll(() => dir.cleanup());

  it('says under --quiet too that the state there is rebuilt around the gap', async () => {
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\nretention: { keep_last: 1 }\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    writeTree(join(dir.path, 'lake'), { 'a.csv': 'a,1\n' });
    const cli = (more: string[]) => inProcessCli([...args, ...more], env);
    expect((await cli(['init'])).code).toBe(0);
    const first = await cli(['backup', '--json']);
    const firstId = first.stdout.match(/"runId":"(\d{8}T\d{6}Z-[0-9a-f]+)"/)![1]!;
    writeTree(join(dir.path, 'lake'), { 'b.csv': 'b,2\n' });
    expect((await cli(['backup', '--quiet'])).code).toBe(0);
    expect((await cli(['forget', '--quiet'])).code).toBe(0);
    // The first run's start (its id's second): before the kept run, after the forgotten one began.
    const at = firstId.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z.*/, '$1-$2-$3T$4:$5:$6Z');
    const { code, stderr } = await quietServe([...args, '--at', at], env, async (port) => {
      (await connectWhenListening(port)).destroy();
    });
    expect(code).toBe(ExitCode.interrupted);
    expect(stderr).toMatch(/^warning: 1 run was forgotten between the first run and \S+: the state at \S+ is rebuilt from the kept runs around it/);
  });
});
