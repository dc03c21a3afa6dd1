// `runs show <id> --json` carries the run's `suspect` and `acknowledged` as `runs` does
// (docs/output.md: "the run's `run` fields"): a script must see what the text's SUSPECT says.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf } from '../helpers/cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

describe('runs show --json of a suspect run', () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const cli = (args: string[]) => runCli(['--policy', policy, ...args], { LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  beforeAll(async () => {
    dir = tempDir('runs-show-suspect');
    const lake = join(dir.path, 'lake');
    writeTree(lake, { 'data/a.txt': 'a\n', 'data/b.txt': 'b\n' });
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: g\n    sources:\n      - path: ./lake\n');
    expect((await cli(['init'])).code).toBe(0);
    expect((await cli(['backup'])).code).toBe(0);
    writeTree(lake, { 'data/HOW_TO_DECRYPT_FILES.txt': 'pay\n' });
    expect((await cli(['backup'])).code).toBe(4);
  });

  afterAll(() => dir.cleanup());

  it('says suspect: true until `runs ack`, then acknowledged: true; a clean run says neither', async () => {
    const runs = (await cli(['runs', '--json'])).messages.filter((m) => m.message_type === 'run');
    const [clean, suspect] = runs.map((r) => r.id as string);
    expect(runs.map((r) => r.suspect)).toEqual([false, true]);
    expect(summaryOf(await cli(['runs', 'show', suspect!, '--json']))).toMatchObject({ id: suspect, suspect: true, acknowledged: false });
    expect(summaryOf(await cli(['runs', 'show', clean!, '--json']))).toMatchObject({ id: clean, suspect: false, acknowledged: false });
    expect((await cli(['runs', 'ack', suspect!, '--note', 'test'])).code).toBe(0);
    expect(summaryOf(await cli(['runs', 'show', suspect!, '--json']))).toMatchObject({ id: suspect, suspect: false, acknowledged: true });
  });
});
