// `restore --bucket` and `drill --bucket` without --group or --run: the state is the latest run
// of the group that backs up that bucket, not the newest run of any group (which may not have
// read the bucket at all), and a drill's RPO is that group's.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messagesOf, summaryOf, type CliResult } from '../helpers/cli.js';
import { inProcessCli } from '../helpers/in-process-cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

describe('restore and drill of a bucket take its group latest run', { timeout: 120_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const env = { LAKEGUARD_CACHE_DIR: '', TZ: 'UTC' };
  const cli = (args: string[]): Promise<CliResult> => inProcessCli(['--policy', policy, '--catalog', join(dir.path, 'catalog.db'), ...args], env);
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  let runs: { id: string; group: string }[];

  beforeAll(async () => {
    dir = tempDir('bucket-group');
    env.LAKEGUARD_CACHE_DIR = join(dir.path, 'cache');
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(
      policy,
      'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: g1\n    sources:\n      - path: ./la\n  - name: g2\n    sources:\n      - path: ./lb\n',
    );
    writeTree(join(dir.path, 'la'), { 'a.csv': 'a,1\n' });
    writeTree(join(dir.path, 'lb'), { 'b.csv': 'b,1\n' });
    ok(await cli(['init']));
    // g1 backs up la, then g2 backs up lb: the newest run of all is g2's.
    ok(await cli(['backup', '--group', 'g1', '--quiet']));
    ok(await cli(['backup', '--group', 'g2', '--quiet']));
    runs = messagesOf(ok(await cli(['runs', '--json'])), 'run').map((r) => ({ id: r.id as string, group: r.group as string }));
    expect(runs.map((r) => r.group)).toEqual(['g1', 'g2']);
  }, 120_000);

  afterAll(() => dir.cleanup());

  it('restore --bucket names the run of the bucket group', async () => {
    const r = ok(await cli(['restore', '--bucket', 'la', '--to-dir', join(dir.path, 'out'), '--json']));
    expect(summaryOf(r).state).toBe(`run ${runs[0]!.id}`);
  });

  it('drill --bucket measures RPO from the run of the bucket group', async () => {
    const r = ok(await cli(['drill', '--bucket', 'la', '--to-dir', join(dir.path, 'scratch'), '--json']));
    expect(summaryOf(r)).toMatchObject({ state: `run ${runs[0]!.id}`, run: runs[0]!.id, ok: true });
  });

  it('drill --bucket --at measures RPO from the newest run of the bucket group at that instant', async () => {
    const r = ok(await cli(['drill', '--bucket', 'la', '--at', runs[1]!.id, '--to-dir', join(dir.path, 'scratch-at'), '--json']));
    expect(summaryOf(r)).toMatchObject({ run: runs[0]!.id, ok: true });
  });

  it('drill --at a run: the drilled instant is that run, so its RPO is 0 however old it is', async () => {
    const r = summaryOf(ok(await cli(['drill', '--group', 'g1', '--at', runs[0]!.id, '--to-dir', join(dir.path, 'scratch-run'), '--json'])));
    expect(r).toMatchObject({ scope: 'group:g1', run: runs[0]!.id, rpoMs: 0, ok: true });
  });
});

describe('drill --at on a policy of one group', { timeout: 120_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const env = { LAKEGUARD_CACHE_DIR: '', TZ: 'UTC' };
  const cli = (args: string[]): Promise<CliResult> => inProcessCli(['--policy', policy, '--catalog', join(dir.path, 'catalog.db'), ...args], env);

  beforeAll(async () => {
    dir = tempDir('one-group');
    env.LAKEGUARD_CACHE_DIR = join(dir.path, 'cache');
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: only\n    sources:\n      - path: ./la\n');
    writeTree(join(dir.path, 'la'), { 'a.csv': 'a,1\n' });
    expect((await cli(['init'])).code).toBe(0);
    expect((await cli(['backup', '--quiet'])).code).toBe(0);
  }, 120_000);

  afterAll(() => dir.cleanup());

  it('records the group it drilled (the policy has one), not an empty one', async () => {
    const id = messagesOf(await cli(['runs', '--json']), 'run')[0]!.id as string;
    const r = await cli(['drill', '--at', id, '--to-dir', join(dir.path, 'scratch'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryOf(r)).toMatchObject({ scope: 'group:only', run: id, rpoMs: 0, ok: true });
  });
});
