// A backup under --quiet (cron mails what a job prints) whose run is suspect: one warning line on
// stderr beside exit 4, since quiet prints no summary (docs/output.md "--quiet").
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { inProcessCli } from '../helpers/in-process-cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

describe('backup --quiet of a suspect run', () => {
  const dir = tempDir('quiet-suspect');
  afterAll(() => dir.cleanup());

  it('says in one line that the run is suspect, and where to look', async () => {
    const policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    writeTree(join(dir.path, 'lake'), { 'a.csv': 'a,1\n', 'b.csv': 'b,2\n' });
    const cli = (args: string[]) => inProcessCli(['--policy', policy, '--catalog', join(dir.path, 'catalog.db'), ...args], { LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });
    expect((await cli(['init'])).code).toBe(0);
    const clean = await cli(['backup', '--quiet']);
    expect([clean.code, clean.stdout, clean.stderr]).toEqual([0, '', '']);
    writeTree(join(dir.path, 'lake'), { 'HOW_TO_DECRYPT.txt': 'pay' });
    const suspect = await cli(['backup', '--quiet']);
    expect(suspect.code).toBe(ExitCode.suspect);
    expect(suspect.stdout).toBe('');
    expect(suspect.stderr).toMatch(/^warning: run \S+ \(group local\) is SUSPECT: 1 partition with anomalies, 1 object flagged; see `lakeguard runs show \S+ --anomalies`\n$/);
  });
});
