// What `lakeguard serve` tells its operator, on a local directory and a file repository: a
// default state that holds a suspect run's records is said at start, as restore and ls say it
// (its clients cannot be told).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { inProcessCli } from '../helpers/in-process-cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';
import { SERVE_KEYS, startServe } from '../helpers/serve-process.js';

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
});
