// What an operator pastes and previews: a run's displayed time given back to `restore --at`,
// and `backup --dry-run` listing what it would read, through the real bin/lakeguard on a
// file:// repository with a local path source (unversioned: a deletion is stamped when a run
// notices it).
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messagesOf, runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

describe('times to paste and runs to preview', { timeout: 120_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const env = { LAKEGUARD_PASSWORD: 'operator-cli-pw', TZ: 'UTC' } as Record<string, string>;
  const cli = (...args: string[]) => runCli(['--policy', policy, ...args], env);
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  let dryRun: CliResult;
  let dryText: CliResult;

  beforeAll(async () => {
    dir = tempDir('operator-cli');
    env.LAKEGUARD_CACHE_DIR = join(dir.path, 'cache');
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    writeTree(join(dir.path, 'lake'), { 'keep.txt': 'kept', 'gone.txt': 'deleted before run 2', 'same.txt': 'unchanged' });
    ok(await cli('init'));
    ok(await cli('backup', '--quiet'));
    rmSync(join(dir.path, 'lake', 'gone.txt'));
    writeTree(join(dir.path, 'lake'), { 'keep.txt': 'kept, changed', 'sub/new.txt': 'new!' });
    [dryRun, dryText] = await Promise.all([cli('backup', '--dry-run', '--json'), cli('backup', '--dry-run')]);
    ok(await cli('backup', '--quiet'));
  }, 120_000);

  afterAll(() => dir.cleanup());

  it("the time `runs` shows for a run, pasted into restore --at, gives that run's state, deletions included", async () => {
    // As a person reads it: the second row of the table, its id and the time shown.
    const rows = ok(await cli('runs')).stdout.trim().split('\n').slice(1);
    expect(rows).toHaveLength(2);
    const second = { id: rows[1]!.split(/\s+/)[0]! };
    const shown = /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?Z/.exec(rows[1]!)![0];
    const out = join(dir.path, 'pasted');
    const r = ok(await cli('restore', '--at', shown, '--to-dir', out));
    expect(existsSync(join(out, 'gone.txt')), 'a file the run had seen deleted').toBe(false);
    expect(readFileSync(join(out, 'keep.txt'), 'utf8')).toBe('kept, changed');
    expect(readFileSync(join(out, 'sub/new.txt'), 'utf8')).toBe('new!');
    // Which run's knowledge that instant is.
    expect(r.stdout).toContain(`from state at ${shown}, as recorded by run ${second.id} (group local, finished ${shown})`);
  });

  it('backup --dry-run names no run id, and with --json lists each key it would read', () => {
    ok(dryRun);
    const would = messagesOf(dryRun, 'would_back_up').sort((a, b) => (a.key < b.key ? -1 : 1));
    expect(would.map((m) => [m.bucket, m.key, m.size, m.change])).toEqual([
      ['lake', 'keep.txt', 13, 'changed'],
      ['lake', 'sub/new.txt', 4, 'new'],
    ]);
    const summary = summaryOf(dryRun);
    expect(summary).toMatchObject({ dryRun: true, group: 'local', counters: { objectsNew: 1, objectsChanged: 1, objectsDeleted: 1, bytesNew: 17 } });
    expect(summary).not.toHaveProperty('runId');
    // The ids of the real runs appear nowhere in the dry run's output.
    expect(dryRun.stdout + dryText.stdout).not.toMatch(/\d{8}T\d{6}Z-[0-9a-f]{6}/);
    expect(ok(dryText).stdout).toMatch(/^dry run for group local: nothing was read or written\n/);
  });
});
