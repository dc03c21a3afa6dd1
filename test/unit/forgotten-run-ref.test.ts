// A run `forget` removed, named by id (`runs show`, `restore --run`, `--at`): exit 2 saying it was
// forgotten and by which forget document, not "no run" as for a typo.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

describe('a forgotten run named by id', () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  let first: string;
  const cli = (args: string[]) => runCli(['--policy', policy, ...args], { LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  beforeAll(async () => {
    dir = tempDir('forgotten-run-ref');
    const lake = join(dir.path, 'lake');
    writeTree(lake, { 'a.txt': 'one\n' });
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: g\n    retention: { keep_last: 1 }\n    sources:\n      - path: ./lake\n');
    expect((await cli(['init'])).code).toBe(0);
    const b1 = await cli(['backup', '--json']);
    first = b1.messages.find((m) => m.message_type === 'summary')!.runId as string;
    writeTree(lake, { 'a.txt': 'two\n' });
    expect((await cli(['backup'])).code).toBe(0);
    expect((await cli(['forget'])).code).toBe(0);
  });

  afterAll(() => dir.cleanup());

  it('runs show, restore --run and --at say it was forgotten (exit 2); an unknown id still says no run', async () => {
    for (const args of [['runs', 'show', first], ['restore', '--run', first, '--to-dir', join(dir.path, 'out')], ['ls', 's3://lake/', '--at', first]]) {
      const r = await cli([...args, '--json']);
      expect(r.code, r.stderr).toBe(2);
      const err = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
      expect(err.message).toMatch(new RegExp(`run ${first} was forgotten \\(forgets/[^)]+\\)`));
      expect(err.hint).toMatch(/pick a kept run/);
    }
    const typo = await cli(['runs', 'show', '20990101T000000Z-000000']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/no run "20990101T000000Z-000000" in the catalog/);
  });
});
