// A run set as users meet it: `runs`, `runs show`, `ls --at`, `diff` and `restore` through the
// real bin/lakeguard on a file:// repository, the shard attempts written as independent hosts
// write them (test/helpers/shards.ts), next to an ordinary run whose output stays as it was.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRunId } from '../../src/engine/run-id.js';
import type { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { messagesOf, runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { hashTree, initRepo, tempDir, writeTree } from '../helpers/fixtures.js';
import { writeShardAttempt } from '../helpers/shards.js';

/** The `warning` messages (stderr with --json) about a suspect state. */
const suspectWarnings = (r: CliResult): string[] =>
  r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { message_type: string; message: string })
    .filter((m) => m.message_type === 'warning' && m.message.includes('SUSPECT'))
    .map((m) => m.message);
const BIN = fileURLToPath(new URL('../../bin/lakeguard', import.meta.url));
const RANGES = [{ upTo: ['lake', 'g'] }, { after: ['lake', 'g'], upTo: ['lake', 'n'] }, { after: ['lake', 'n'], upTo: ['lake', 't'] }, { after: ['lake', 't'] }];
const PREFIX = ['c', 'h', 'p', 'w'];

describe('run sets through the CLI', { timeout: 120_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let repo: Repository;
  let policy: string;
  const set = newRunId(new Date(Date.now() - 60_000));
  const attempts: string[] = [];
  let ordinary = '';
  const env = { LAKEGUARD_PASSWORD: 'test-password', TZ: 'UTC' };
  const cli = (args: string[]) => runCli(['--policy', policy, '--catalog', join(dir.path, 'catalog.db'), ...args], env);
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  const shard = async (index: number) => {
    const objects = Array.from({ length: 3 }, (_, i) => ({ bucket: 'lake', key: `${PREFIX[index]}/${i}.json`, body: `{"shard":${index},"i":${i}}` }));
    const m = await writeShardAttempt(repo, { group: 'lake', set, name: 'nightly', index, of: 4, range: RANGES[index] as never, started: Date.now() - 50_000 + index, objects });
    attempts[index] = m.id;
  };

  beforeAll(async () => {
    dir = tempDir('run-sets-cli');
    repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: lake\n    sources:\n      - path: ./lake\n');
    writeTree(join(dir.path, 'lake'), { 'a/1.json': '{"a":1}' });
    ordinary = summaryOf(ok(await cli(['backup', '--json']))).runId as string;
    for (const i of [0, 1, 2]) await shard(i);
  }, 120_000);
  afterAll(() => dir.cleanup());

  it('runs lists the run set as one row, running with its missing shard; the ordinary run is unchanged', async () => {
    const runs = messagesOf(ok(await cli(['runs', '--json'])), 'run');
    expect(runs.map((r) => r.id)).toEqual([ordinary, set]);
    expect(Object.keys(runs[0]!)).toEqual(['message_type', 'seq', 'id', 'group', 'started', 'startedIso', 'finished', 'finishedIso', 'status', 'host', 'counters', 'suspect', 'acknowledged']);
    expect(runs[1]).toMatchObject({ id: set, group: 'lake', status: 'running', finished: null, runSet: 'nightly', suspect: false });
    expect(runs[1]!.shards).toMatchObject({ of: 4, complete: 3, missing: [3] });
    expect(runs[1]!.shards.attempts.map((a: { index: number; id: string; counts: boolean }) => [a.index, a.id, a.counts])).toEqual([0, 1, 2].map((i) => [i, attempts[i], true]));
    expect(runs[1]!.counters).toMatchObject({ objectsSeen: 9, objectsNew: 9 });

    const text = ok(await cli(['runs'])).stdout;
    expect(text.split('\n').find((l) => l.startsWith(set))).toMatch(/lake\s+-\s+running \(shards 3\/4, shard 3 with nothing recorded in [^)]+\)\s+9\s+9\s+0\s+\S+ \S+\s+-$/);

    const show = ok(await cli(['runs', 'show', set])).stdout;
    expect(show).toContain(`run set   ${set} (nightly, 4 shards)`);
    expect(show).toContain('status    running: 3 of 4 shards complete; missing: 3');
    expect(show).toMatch(new RegExp(`^\\s*1\\s+${attempts[1]}\\s+complete\\s+after s3://lake/g up to s3://lake/n\\s+3\\s+3\\s+0`, 'm'));
    expect(show).toMatch(/^\s*3\s+-\s+missing/m);
    expect(show).toContain('missing: 1 shard (3) without a finished attempt; run it again with `lakeguard backup --run-set nightly --shards 4 --shard 3`');
    // A policy with a group the run set was not started for (it was run with --group): the re-run needs --group too.
    const twoGroups = join(dir.path, 'two-groups.yaml');
    writeFileSync(twoGroups, `${readFileSync(policy, 'utf8')}  - name: other\n    sources:\n      - path: ./lake\n`);
    const withGroup = ok(await runCli(['--policy', twoGroups, '--catalog', join(dir.path, 'catalog.db'), 'runs', 'show', set], env)).stdout;
    expect(withGroup).toContain('run it again with `lakeguard backup --group lake --run-set nightly --shards 4 --shard 3`');
    expect(summaryOf(ok(await cli(['runs', 'show', set, '--json'])))).toMatchObject({ id: set, status: 'running', shards: { missing: [3] } });
    // An attempt is still a run of its own.
    expect(ok(await cli(['runs', 'show', attempts[0]!])).stdout).toContain(`run       ${attempts[0]} (#2)`);
    // A restore of it, or of an instant before its last shard, says the state is not the whole run set's.
    const byRun = summaryOf(ok(await cli(['restore', '--run', set, '--to-dir', join(dir.path, 'by-run'), '--json'])));
    expect(byRun.state).toBe(`run set ${set} (nightly, running: 3 of 4 shards complete, missing 3)`);
    const byTime = summaryOf(ok(await cli(['restore', '--at', 'now', '--to-dir', join(dir.path, 'by-time'), '--json'])));
    expect(byTime.state).toMatch(new RegExp(`; run set ${set} \\(nightly\\) had 3 of 4 shards finished then: in the key ranges of the others, this is what earlier runs recorded$`));
    expect(ok(await cli(['ls', 's3://lake/', '--at', 'now'])).stdout).toContain(`(run set ${set} (nightly) had 3 of 4 shards finished then: in the key ranges of the others, this is what earlier runs recorded)`);
    // --json says it too: a script must not take the state for the whole run set's.
    expect(summaryOf(ok(await cli(['ls', 's3://lake/', '--at', set, '--json']))).at).toMatchObject({ runSet: set, status: 'running', shards: { of: 4, complete: 3, missing: [3] } });
    expect(summaryOf(ok(await cli(['find', '**', '--at', 'now', '--json']))).at).toMatchObject({ unfinishedRunSet: { id: set, name: 'nightly', shards: 4, done: 3 } });
    const refused = await cli(['runs', 'show', set, '--versions']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`is a run set of 3 shard attempts: --versions lists what one attempt recorded`);
  });

  it("once the last shard lands the run set is complete, and its id is an instant for ls, diff and restore", async () => {
    await shard(3);
    const [, runSet] = messagesOf(ok(await cli(['runs', '--json'])), 'run');
    expect(runSet).toMatchObject({ id: set, status: 'complete', shards: { complete: 4, missing: [] } });

    const ls = ok(await cli(['ls', 's3://lake/', '--at', set])).stdout;
    for (const p of ['a/', 'c/', 'h/', 'p/', 'w/']) expect(ls).toContain(p);
    // The name it was started with (--run-set nightly) names it as well.
    expect(ok(await cli(['ls', 's3://lake/', '--at', 'nightly'])).stdout).toBe(ls);
    expect(summaryOf(ok(await cli(['runs', 'show', 'nightly', '--json'])))).toMatchObject({ id: set, status: 'complete' });
    const diff = summaryOf(ok(await cli(['diff', ordinary, set, '--json'])));
    expect(diff).toMatchObject({ added: { objects: 12 }, changed: { objects: 0 }, deleted: { objects: 0 } });
    expect(diff.to).toEqual({ runSet: set, runSeqs: expect.arrayContaining([2, 3, 4, 5]), status: 'complete', shards: { of: 4, complete: 4, missing: [] } });

    const target = join(dir.path, 'restored');
    ok(await cli(['restore', '--at', set, '--to-dir', target, '--quiet']));
    const tree = hashTree(target);
    expect(tree.size).toBe(13);
    expect(readFileSync(join(target, 'p', '2.json'), 'utf8')).toBe('{"shard":2,"i":2}');
    // restore without --at takes the newest run set as one run.
    const latest = join(dir.path, 'latest');
    const latestRestore = summaryOf(ok(await cli(['restore', '--to-dir', latest, '--json'])));
    expect(latestRestore.state).toMatch(new RegExp(`^run set ${set} \\(nightly, complete: 4 of 4 shards complete, finished `));
    expect(hashTree(latest)).toEqual(tree);
    const now = summaryOf(ok(await cli(['restore', '--at', 'now', '--to-dir', join(dir.path, 'now'), '--json'])));
    expect(now.state).not.toContain('run set');
    // forget names each attempt's run set (they are kept or removed together).
    const dry = summaryOf(ok(await cli(['forget', '--dry-run', '--json'])));
    expect(dry.runs.filter((r: { runSet?: string }) => r.runSet === set).map((r: { shard: number }) => r.shard).sort()).toEqual([0, 1, 2, 3]);
    expect(dry.runs.find((r: { id: string }) => r.id === ordinary)).not.toHaveProperty('runSet');
  });

  const suspectSet = newRunId(new Date(Date.now() - 30_000));
  const ids: string[] = [];

  it('a suspect run set names its suspect attempts: in the table, in JSON, in the --anomalies hint', async () => {
    const verdict = { suspect: true, findings: [{ bucket: 'lake', partition: 'p/', rules: ['broken-formats' as const], reasons: ['3 of 3 new or changed objects do not have their extension\'s format'] }], partitions: [], flaggedObjects: 3 };
    for (const index of [0, 1]) {
      const objects = [{ bucket: 'lake', key: `${index === 0 ? 'c' : 'p'}/0.json`, body: `{"day":2,"shard":${index}}` }];
      const range = (index === 0 ? { upTo: ['lake', 'g'] } : { after: ['lake', 'g'] }) as never;
      const m = await writeShardAttempt(repo, { group: 'lake', set: suspectSet, name: 'day2', index, of: 2, range, started: Date.now() - 30_000 + index, objects, ...(index === 1 ? { anomalies: verdict } : {}) });
      ids.push(m.id);
    }
    const show = ok(await cli(['runs', 'show', suspectSet])).stdout;
    expect(show).toContain(`status    complete ! SUSPECT (shard attempt ${ids[1]} is suspect: \`lakeguard runs show ${ids[1]} --anomalies\`)`);
    expect(show).toMatch(new RegExp(`^\\s*0\\s+${ids[0]}\\s+complete\\s+up to`, 'm'));
    expect(show).toMatch(new RegExp(`^\\s*1\\s+${ids[1]}\\s+complete ! SUSPECT\\s+after`, 'm'));
    const attemptsJson = (r: CliResult) => messagesOf(r, 'run').find((m) => m.id === suspectSet)!.shards.attempts.map((a: { id: string; suspect: boolean }) => [a.id, a.suspect]);
    expect(attemptsJson(ok(await cli(['runs', '--json'])))).toEqual([[ids[0], false], [ids[1], true]]);
    // The hint points at the attempt that has anomalies, not at the first (clean) one.
    const refused = await cli(['runs', 'show', suspectSet, '--anomalies']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`\`lakeguard runs show ${ids[1]} --anomalies\``);
    expect(refused.stderr).not.toContain(ids[0]);
  });

  it('a restore of a state that holds a suspect run\'s flagged partition says so, and names the last clean state', async () => {
    const warnings = (r: CliResult) => suspectWarnings(r);
    const poisoned = ok(await cli(['restore', '--bucket', 'lake', '--prefix', 'p/', '--to-dir', join(dir.path, 'suspect'), '--dry-run', '--json']));
    expect(warnings(poisoned)).toEqual([
      `this state holds what run set ${suspectSet} recorded, and it is SUSPECT (not acknowledged) in s3://lake/p/: it may be damage (\`lakeguard runs show ${ids[1]} --anomalies\`); the last clean state is run set ${set} (\`--at ${set}\`)`,
    ]);
    // The same state of a partition it did not flag, and the clean state itself: no warning.
    expect(warnings(ok(await cli(['restore', '--bucket', 'lake', '--prefix', 'c/', '--to-dir', join(dir.path, 'suspect'), '--dry-run', '--json'])))).toEqual([]);
    expect(warnings(ok(await cli(['restore', '--bucket', 'lake', '--prefix', 'p/', '--at', set, '--to-dir', join(dir.path, 'suspect'), '--dry-run', '--json'])))).toEqual([]);
    // ls of the newest state (no --at) says the same; of the clean state, nothing.
    expect(warnings(ok(await cli(['ls', 's3://lake/p/', '--json'])))).toEqual(warnings(poisoned));
    expect(warnings(ok(await cli(['ls', 's3://lake/p/', '--at', set, '--json'])))).toEqual([]);

    // last-clean, as rollback and diff take it, for restore and ls too; the suspect is named by its run set.
    const lastClean = summaryOf(ok(await cli(['restore', '--bucket', 'lake', '--prefix', 'p/', '--at', 'last-clean', '--to-dir', join(dir.path, 'clean'), '--json'])));
    expect(lastClean.state).toMatch(new RegExp(`^run set ${set} \\(nightly, complete: 4 of 4 shards complete, finished .*\\) \\(the last clean run before the suspect run set ${suspectSet}\\)$`));
    expect(readFileSync(join(dir.path, 'clean', 'p', '0.json'), 'utf8')).toBe('{"shard":2,"i":0}');
    expect(ok(await cli(['ls', 's3://lake/p/', '--at', 'last-clean'])).stdout).toContain(`s3://lake/p/ at run set ${set} (nightly, complete`);

    // A responder's scoped catalog refuses --anomalies: the pointers say where it works.
    const scoped = (args: string[]) => runCli(['--policy', policy, '--catalog', join(dir.path, 'scoped.db'), ...args], env);
    ok(await scoped(['catalog', 'sync', '--prefix', 's3://lake/p/']));
    expect(ok(await scoped(['runs', 'show', suspectSet])).stdout).toContain(`\`lakeguard runs show ${ids[1]} --anomalies\` on a whole catalog)`);
    expect(suspectWarnings(ok(await scoped(['restore', '--bucket', 'lake', '--prefix', 'p/', '--to-dir', join(dir.path, 'suspect'), '--dry-run', '--json'])))[0]).toContain(`(\`lakeguard runs show ${ids[1]} --anomalies\` on a whole catalog)`);
  });

  it('`runs ack <run set id>` acknowledges its suspect attempts; a clean or acknowledged run set is refused', async () => {
    // `runs` shows the run set's id: that is what a responder acknowledges.
    const ack = ok(await cli(['runs', 'ack', suspectSet, '--note', 'rolled back', '--json']));
    expect(summaryOf(ack)).toMatchObject({ runSet: suspectSet, acks: [{ runId: ids[1], shard: 1 }], note: 'rolled back' });
    const after = messagesOf(ok(await cli(['runs', '--json'])), 'run').find((m) => m.id === suspectSet)!;
    expect(after).toMatchObject({ suspect: false, acknowledged: true });
    expect(ok(await cli(['runs'])).stdout.split('\n').find((l) => l.startsWith(suspectSet))).not.toContain('SUSPECT');
    const again = await cli(['runs', 'ack', suspectSet]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`run set ${suspectSet} (day2) was already acknowledged`);
    // Acknowledged: a restore of it is no longer warned about.
    const restored = ok(await cli(['restore', '--bucket', 'lake', '--prefix', 'p/', '--to-dir', join(dir.path, 'suspect'), '--dry-run', '--json']));
    expect(suspectWarnings(restored)).toEqual([]);
    const clean = await cli(['runs', 'ack', set]);
    expect(clean.code).toBe(2);
    expect(clean.stderr).toContain(`run set ${set} (nightly) is not suspect`);
  });

  /** The CLI with stdout's reader gone before it writes its first line (`| head` at once): every write is EPIPE. */
  const withoutReader = async (args: string[]): Promise<{ code: number | null; stderr: string }> => {
    const child = spawn(process.execPath, [BIN, '--policy', policy, '--catalog', join(dir.path, 'catalog.db'), ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    return { code, stderr };
  };

  it('`runs show <id> | head`: a reader that goes away ends it quietly, exit 0, no stack trace', async () => {
    for (const args of [['runs', 'show', set], ['runs']]) {
      const { code, stderr } = await withoutReader(args);
      expect(stderr, args.join(' ')).not.toContain('EPIPE');
      expect(code, `${args.join(' ')}: ${stderr}`).toBe(0);
    }
  });

  it('`restore --dry-run --json | head`: the restore finishes and releases its lock', async () => {
    const { code, stderr } = await withoutReader(['restore', '--bucket', 'lake', '--to-dir', join(dir.path, 'nobody-reads'), '--dry-run', '--json']);
    expect(stderr).not.toContain('EPIPE');
    expect(code, stderr).toBe(0);
    const locks = join(dir.path, 'repo', 'locks');
    expect(existsSync(locks) ? readdirSync(locks) : []).toEqual([]);
  });
});
