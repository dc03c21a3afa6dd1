// What `lakeguard serve` tells its operator, on a local directory and a file repository: a
// default state that holds a suspect run's records is said at start, as restore and ls say it
// (its clients cannot be told), and under --quiet, which drops advice, that warning and the
// failures met while serving (here a connection refused over --max-connections) still print.
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
    const port = await freePort();
    const child = spawn(process.execPath, ['--expose-gc', BIN, 'serve', '--quiet', '--listen', `127.0.0.1:${port}`, '--max-connections', '1', ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const held = await connectWhenListening(port);
    // The second connection is over the cap: closed as it arrives.
    const refused = await connectWhenListening(port);
    await new Promise((resolve) => refused.once('close', resolve));
    held.destroy();
    child.kill('SIGTERM');
    expect(await exited).toBe(ExitCode.interrupted);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^warning: this state holds what run \S+ recorded, and it is SUSPECT/);
    expect(lines).toContain('warning: 1 connections refused so far: 1 were open (--max-connections)');
  });
});
