// policy show and forget as users meet them: the real bin/lakeguard on a file:// repository.
import { readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messagesOf, runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { hashTree, tempDir, writeTree } from '../helpers/fixtures.js';

const PASSWORD = 'forget-cli-pw';

describe('policy show and forget through the CLI', { timeout: 120_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const runIds: string[] = [];
  const env = { LAKEGUARD_PASSWORD: PASSWORD, TZ: 'UTC' };
  const cli = (args: string[]) => runCli(['--policy', policy, '--catalog', join(dir.path, 'catalog.db'), ...args], env);
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  const writePolicy = (retention: string) =>
    writeFileSync(
      policy,
      `version: 1\ntimezone: Europe/Berlin\n${retention}\nrepository:\n  url: file://./repo\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n        prefixes:\n          - a/\n          - prefix: b/\n            retention: { keep_last: 1, keep_daily: 3 }\n`,
    );
  const put = (key: string, body: string, hoursAgo: number) => {
    writeTree(join(dir.path, 'lake'), { [key]: body });
    const t = (Date.now() - hoursAgo * 3_600_000) / 1000;
    utimesSync(join(dir.path, 'lake', key), t, t);
  };

  beforeAll(async () => {
    dir = tempDir('forget-cli');
    policy = join(dir.path, 'lakeguard.yaml');
    writePolicy('retention: { keep_last: 2, min_age_days: 0 }');
    put('a/1.json', 'v1', 5);
    put('a/2.json', 'two', 5);
    put('b/3.csv', 'x,y\n', 5);
    ok(await cli(['init']));
    ok(await cli(['backup', '--quiet']));
    put('a/1.json', 'v2-longer', 4);
    put('a/new.json', 'new', 4);
    ok(await cli(['backup', '--quiet']));
    put('a/1.json', 'v3-longer-still', 3);
    ok(await cli(['backup', '--quiet']));
    rmSync(join(dir.path, 'lake', 'a/1.json'));
    ok(await cli(['backup', '--quiet']));
    runIds.push(...messagesOf(ok(await cli(['runs', '--json'])), 'run').map((r) => r.id as string));
    expect(runIds).toHaveLength(4);
  }, 120_000);
  afterAll(() => dir.cleanup());

  it('policy show: effective rules per prefix and where each comes from', async () => {
    const text = ok(await cli(['policy', 'show']));
    expect(text.stdout).toContain('(retention days cut in Europe/Berlin)');
    expect(text.stdout).toMatch(/lake\/b\/\n\s+keep_last\s+1\s+from prefix lake\/b\/\n\s+keep_daily\s+3\s+from prefix lake\/b\/\n\s+min_age_days\s+0\s+from policy/);
    const json = summaryOf(await cli(['policy', 'show', '--json']));
    const { anomaly, ...retention } = json.scopes[0];
    expect(retention).toEqual({ group: 'local', bucket: 'lake', prefix: 'a/', rules: { keep_last: { value: 2, from: 'policy' }, min_age_days: { value: 0, from: 'policy' } } });
    // Anomaly settings: every field with its value (shares as fractions) and where it comes from.
    expect(anomaly).toMatchObject({ enabled: { value: true, from: 'default' }, deleted: { value: 0.05, from: 'default' }, history_runs: { value: 10, from: 'default' } });
    expect(Object.keys(anomaly)).toHaveLength(14);
    expect(Object.values(anomaly as Record<string, { from: string }>).every((s) => s.from === 'default')).toBe(true);
    expect(text.stdout).toContain('    anomaly detection on, default thresholds');
  });

  it('forget --dry-run prints every run with its reasons and changes nothing; forget then removes them', async () => {
    const dry = ok(await cli(['forget', '--dry-run']));
    const lineOf = (id: string) => dry.stdout.split('\n').find((l) => l.includes(id))!;
    // Four runs within one day: b/ (keep_last 1, keep_daily 3) keeps only the newest.
    expect(lineOf(runIds[0]!)).toMatch(/complete\s+remove$/);
    expect(lineOf(runIds[1]!)).toMatch(/complete\s+remove$/);
    expect(lineOf(runIds[2]!)).toMatch(/complete\s+keep\s+last-2$/);
    expect(lineOf(runIds[3]!)).toMatch(/complete\s+keep\s+latest, last-1, daily-1$/);
    // The scopes disagree on run 3: both are shown.
    expect(dry.stdout).toContain('      lake/a/: last-2\n      lake/b/: remove');
    expect(dry.stdout).toContain('2 runs kept, would remove 2; would drop 2 object versions');
    expect(dry.stdout.trim().split('\n').at(-1)).toBe('dry run: nothing was changed');
    expect(messagesOf(ok(await cli(['runs', '--json'])), 'run')).toHaveLength(4);

    const done = summaryOf(ok(await cli(['forget', '--json'])));
    expect(done).toMatchObject({ dryRun: false, runsKept: 2, runsRemoved: 2, versionsDropped: 2 });
    expect(done.documents).toHaveLength(1);
    // Each forgotten run's manifest is deleted or kept (its records hold versions kept runs need), and the dry run said which.
    const kept = done.manifestsKept as string[];
    expect([...kept, ...(done.manifestsDeleted as string[])].sort()).toEqual(runIds.slice(0, 2).sort());
    if (kept.length > 0) expect(dry.stdout).toContain(`would keep the manifest${kept.length === 1 ? '' : 's'} of ${kept.length} forgotten run`);
    if (kept.length < 2) expect(dry.stdout).toContain(`would delete ${2 - kept.length} run manifest`);
    const runs = messagesOf(ok(await cli(['runs', '--json'])), 'run');
    expect(runs.map((r) => r.id)).toEqual(runIds.slice(2));
    ok(await cli(['verify']));

    // The latest state restores exactly as the lake is.
    ok(await cli(['restore', '--to-dir', join(dir.path, 'restored'), '--quiet']));
    expect(hashTree(join(dir.path, 'restored'))).toEqual(hashTree(join(dir.path, 'lake')));

    // An instant inside the forgotten stretch restores, with a warning that it is not exact.
    const id = runIds[1]!;
    const at = `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}Z`;
    const gap = ok(await cli(['restore', '--at', at, '--to-dir', join(dir.path, 'gap')]));
    expect(gap.stderr).toContain(`2 runs were forgotten between the first run and ${runIds[2]}`);
    const exact = ok(await cli(['restore', '--run', runIds[2]!, '--to-dir', join(dir.path, 'exact')]));
    expect(exact.stderr).not.toContain('forgotten');

    // Nothing left to do; an unknown group is bad usage.
    expect(summaryOf(ok(await cli(['forget', '--json'])))).toMatchObject({ runsRemoved: 0, versionsDropped: 0 });
    const bad = await cli(['forget', '--group', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('no group named "nope"');
  });

  it('refuses a policy that lowers the compliance floor', async () => {
    writePolicy('retention: { keep_last: 2, min_age_days: 30 }');
    writeFileSync(policy, readFileSync(policy, 'utf8').replace('keep_daily: 3 }', 'keep_daily: 3, min_age_days: 1 }'));
    const r = await cli(['forget', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/min_age_days 1 is below the 30 set by retention\.min_age_days on line 3/);
  });
});
