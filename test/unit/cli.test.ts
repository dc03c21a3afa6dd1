// The CLI as users meet it: exit codes, one-line errors with a next step, --json and --quiet,
// and no secret ever printed. Runs the real bin/lakeguard against file:// repositories.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RepositoryMissingError, StorageError } from '../../src/errors.js';
import { runCli, runCliKilledBeforeWrite, summaryOf, type CliResult } from '../helpers/cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

const PASSWORD = 'pw-Sekr1t-should-never-be-printed';
const BIN = fileURLToPath(new URL('../../bin/lakeguard', import.meta.url));
const AWS_SECRET = 'aws-Secret-Key-never-printed-0123456789';

describe('lakeguard CLI', () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const outputs: CliResult[] = [];
  const env = (extra: Record<string, string | undefined> = {}) => ({
    LAKEGUARD_PASSWORD: PASSWORD,
    AWS_ACCESS_KEY_ID: 'AKIATESTNOTREAL',
    AWS_SECRET_ACCESS_KEY: AWS_SECRET,
    LAKEGUARD_CACHE_DIR: join(dir.path, 'cache'),
    ...extra,
  });
  const cli = async (args: string[], extra: Record<string, string | undefined> = {}) => {
    const r = await runCli(args, env(extra));
    outputs.push(r);
    return r;
  };

  beforeAll(() => {
    dir = tempDir('cli');
    writeTree(join(dir.path, 'lake'), { 'a/1.json': '{"a":1}\n', 'a/2.json': '{"a":2}\n', 'b/c/3.csv': 'x,y\n1,2\n' });
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(
      policy,
      `version: 1
repository:
  url: file://./repo
groups:
  - name: local
    sources:
      - path: ./lake
`,
    );
  });

  afterAll(() => dir.cleanup());

  it('documents the exit codes in --help', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    for (const code of ['0 ', '1 ', '2 ', '3 ', '10 ', '11 ', '12 ', '130 ']) expect(r.stdout).toContain(`\n  ${code}`);
    const backupHelp = await cli(['backup', '--help']);
    expect(backupHelp.stdout).toMatch(/\n {2}3 +partial/);
    // `help` looks as deep as the command given: `help runs show` is that command's help, not `runs`'.
    const nested = await cli(['--policy', policy, 'help', 'runs', 'show']);
    expect([nested.code, nested.stdout.split('\n')[0]]).toEqual([0, 'Usage: lakeguard runs show [options] <id>']);
  });

  it('bad usage exits 2', async () => {
    const r = await cli(['backup', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--no-such-flag'/);
  });

  it('flags that cannot go together are bad usage, never one of them ignored without a word', async () => {
    const cases: [string[], string][] = [
      // Read the 5% subset only, and said "no damage found".
      [['verify', '--read-data', '--read-data-subset', '5%'], 'give --read-data or --read-data-subset, not both'],
      // Restored the version, whatever the instant said.
      [['restore', '--bucket', 'lake', '--key', 'a/1.json', '--version-id', 'v1', '--at', '2h', '--to-dir', join(dir.path, 'never')], '--version-id names one exact version: give it without --at or --run'],
      // Printed the failures' CSV (a header only), not the versions.
      [['runs', 'show', '1', '--csv', '--versions'], '--csv lists the failures (with --anomalies, the flagged objects), not the versions'],
      // Printed the counts alone.
      [['diff', '1', '2', '--limit', '5'], '--limit limits the keys --details lists: give --details too'],
      // Restored into the directory, the endpoint unused.
      [['restore', '--to-dir', join(dir.path, 'never'), '--to-endpoint', 'http://127.0.0.1:7480'], '--to-endpoint is the S3 server of the --to bucket: give --to s3://bucket/prefix/ with it'],
      [['drill', '--to-dir', join(dir.path, 'never'), '--to-endpoint', 'http://127.0.0.1:7480'], '--to-endpoint is the S3 server of the --to bucket: give --to s3://bucket/prefix/ with it'],
      // `find **/*.json` unquoted, as the shell passes it: commander's "too many arguments" said nothing of quoting.
      [['find', 'a/1.json', 'a/2.json'], 'find takes one glob, got 2 words: the shell expanded an unquoted glob into file names?'],
    ];
    for (const [args, message] of cases) {
      const r = await cli(['--repo', join(dir.path, 'no-repository'), ...args]);
      expect(r.stderr.split('\n')[0], args.join(' ')).toBe(`lakeguard: ${message}`);
      expect(r.code, args.join(' ')).toBe(2);
    }
    const drill = await cli(['--repo', join(dir.path, 'no-repository'), 'drill', '--to-dir', join(dir.path, 'never'), '--json', '--csv']);
    expect(JSON.parse(drill.stderr)).toEqual({ message_type: 'exit_error', code: 2, message: 'give --json or --csv, not both' });
    expect(drill.stdout).toBe('');
  });

  it('a missing repository exits 10 with one line and a hint', async () => {
    const r = await cli(['--policy', policy, 'backup']);
    expect(r.code).toBe(10);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^lakeguard: no lakeguard repository at file:\/\/.*\/repo\/$/);
    expect(lines[1]).toMatch(/hint: .*lakeguard init/);
    expect(lines).toHaveLength(2);
  });

  it("a repository whose S3 bucket does not exist is named as such, with where to look", () => {
    const err = new RepositoryMissingError('s3://no-such-bucket/lake/', { cause: new StorageError('NoSuchBucket', 'GET s3://no-such-bucket/lake/config: NoSuchBucket') });
    expect(err.exitCode).toBe(10);
    expect(err.message).toBe('no lakeguard repository at s3://no-such-bucket/lake/: its bucket does not exist');
    expect(err.hint).toMatch(/repository\.url \(and endpoint, region\).*create the bucket/);
  });

  it('an --endpoint that is no http(s) URL is bad usage, checked as the policy checks endpoint:', async () => {
    const r = await cli(['--policy', policy, '--endpoint', 'not-a-url', 'runs']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('lakeguard: --endpoint: expected an http:// or https:// URL such as http://127.0.0.1:7480, got "not-a-url"\n  hint: give the S3 server of the repository, e.g. --endpoint https://s3.example.com\n');
  });

  it('an invalid policy exits 2 naming file, line and field', async () => {
    const bad = join(dir.path, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: x\n    sources:\n      - bucket: Not_A_Bucket\n        prefixs: [a/]\n');
    const r = await cli(['--policy', bad, 'backup']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:7:\d+ groups\[0\]\.sources\[0\]\.bucket/);
    expect(r.stderr).toMatch(/bad\.yaml:8:\d+ groups\[0\]\.sources\[0\]\.prefixs: .*prefixes/);
  });

  it('init creates the repository once; a second init is refused without touching it', async () => {
    const r = await cli(['--policy', policy, 'init', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryOf(r)).toMatchObject({ encrypted: true });
    const again = await cli(['--policy', policy, 'init']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
  });

  it('an empty LAKEGUARD_REPOSITORY, LAKEGUARD_POLICY or LAKEGUARD_CATALOG counts as unset, never as the current directory', async () => {
    // An `env:` entry with no value: taken as it was, the repository was the current directory,
    // where init made one (and every other command looked for one) instead of the policy's.
    const cwd = join(dir.path, 'cwd');
    mkdirSync(cwd);
    const own = join(dir.path, 'env-policy.yaml');
    writeFileSync(own, readFileSync(policy, 'utf8').replace('file://./repo', 'file://./env-repo'));
    const empty = { LAKEGUARD_REPOSITORY: '', LAKEGUARD_POLICY: '', LAKEGUARD_CATALOG: '' };
    const init = await runCli(['--policy', own, 'init'], env(empty), { cwd });
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain(`file://${join(dir.path, 'env-repo')}/`);
    expect(readdirSync(cwd)).toEqual([]);
    const runs = await runCli(['--policy', own, 'runs'], env(empty), { cwd });
    expect(runs.stdout, runs.stderr).toBe('no runs yet: run `lakeguard backup`\n');
    expect(runs.code).toBe(0);
    // Given on the command line, empty is bad usage.
    const flag = await runCli(['--repo', '', 'runs'], env(), { cwd });
    expect(flag.stderr).toBe('lakeguard: --repo: empty\n  hint: give s3://bucket/prefix, file:///dir or a directory\n');
    expect(flag.code).toBe(2);
  });

  it('a wrong or missing password exits 12', async () => {
    const wrong = await cli(['--policy', policy, 'runs'], { LAKEGUARD_PASSWORD: 'not-it' });
    expect(wrong.code).toBe(12);
    expect(wrong.stderr).toMatch(/^lakeguard: wrong password for repository file:\/\//);
    const missing = await cli(['--policy', policy, 'runs'], { LAKEGUARD_PASSWORD: undefined });
    expect(missing.code).toBe(12);
    expect(missing.stderr).toMatch(/no password: LAKEGUARD_PASSWORD is not set/);
    const empty = await cli(['--policy', policy, 'runs'], { LAKEGUARD_PASSWORD: '' });
    expect(empty.code).toBe(12);
    expect(empty.stderr).toMatch(/no password: LAKEGUARD_PASSWORD is empty\n/);
    const noFile = await cli(['--policy', policy, '--password-file', join(dir.path, 'no-such-file'), 'runs']);
    expect(noFile.stderr).toMatch(/^lakeguard: cannot read the password file .*no-such-file \(--password-file\): ENOENT\n  hint: /);
    expect(noFile.code).toBe(12);
    const failing = await cli(['--policy', policy, 'runs'], { LAKEGUARD_PASSWORD: undefined, LAKEGUARD_PASSWORD_COMMAND: 'exit 3' });
    expect(failing.stderr).toMatch(/^lakeguard: the password command \(LAKEGUARD_PASSWORD_COMMAND\) failed: no password\n/);
    expect(failing.code).toBe(12);
  });

  it('reads the password from --password-file and LAKEGUARD_PASSWORD_COMMAND', async () => {
    const file = join(dir.path, 'pw.txt');
    writeFileSync(file, PASSWORD + '\n');
    const viaFile = await cli(['--policy', policy, '--password-file', file, 'runs'], { LAKEGUARD_PASSWORD: undefined });
    expect(viaFile.code, viaFile.stderr).toBe(0);
    const viaCommand = await cli(['--policy', policy, 'runs'], { LAKEGUARD_PASSWORD: undefined, LAKEGUARD_PASSWORD_COMMAND: `cat ${file}` });
    expect(viaCommand.code, viaCommand.stderr).toBe(0);
  });

  it('--quiet prints nothing on success; --json prints status and summary lines', async () => {
    const quiet = await cli(['--policy', policy, 'backup', '--quiet']);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).toBe('');
    expect(quiet.stderr).toBe('');

    const json = await cli(['--policy', policy, 'backup', '--json']);
    expect(json.code).toBe(0);
    expect(json.stdout.trim().split('\n').every((l) => JSON.parse(l).message_type !== undefined)).toBe(true);
    expect(summaryOf(json)).toMatchObject({ status: 'complete', counters: { objectsUnchanged: 3, packsWritten: 0 } });

    // A command that is asked something prints its answer under --quiet, as `runs` does.
    const answers = await Promise.all([['key', 'list'], ['policy', 'show'], ['catalog', 'info'], ['cost']].map((c) => cli(['--policy', policy, ...c, '--quiet'])));
    expect(answers.map((r) => [r.code, r.stdout.split('\n')[0]])).toEqual([
      [0, expect.stringMatching(/^ +ID +CREATED +HOST/)],
      [0, expect.stringMatching(/^policy .*lakeguard\.yaml \(retention days cut in UTC\)$/)],
      [0, expect.stringMatching(/^catalog .* of file:\/\/.*\/repo\/ \(/)],
      [0, expect.stringMatching(/\S/)],
    ]);
  });

  it('--quiet --offline still says the answer may be stale (a warning that qualifies the answer)', async () => {
    const r = await cli(['--policy', policy, 'find', '**/*.json', '--quiet', '--offline']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^warning: offline: catalog .*catalog\.db was not synced with file:\/\/.*; answers may be stale\n$/);
    // The list is the answer: printed as without --quiet (as `runs --quiet` prints its table),
    // only the closing count line is left out.
    const plain = await cli(['--policy', policy, 'find', '**/*.json', '--offline']);
    expect(r.stdout.split('\n').filter((l) => l.includes('s3://lake/')).length).toBe(2);
    expect(plain.stdout.startsWith(r.stdout)).toBe(true);
  });

  it('a warning or error written to a stderr whose reader is gone (`2>&1 | head -1`) is dropped: the exit code stays the command\'s own', async () => {
    // The child waits (stdin-gate.cjs) until the read end of its stderr pipe is closed: what it
    // writes there then meets EPIPE for sure.
    const withStderrClosed = async (args: string[]): Promise<{ code: number | null; stdout: string }> => {
      const child = spawn(process.execPath, ['--require', fileURLToPath(new URL('../helpers/stdin-gate.cjs', import.meta.url)), BIN, '--policy', policy, ...args], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env() },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      const exited = once(child, 'close');
      child.stderr.destroy();
      await once(child.stderr, 'close');
      child.stdin.end('go');
      const [code] = (await exited) as [number | null];
      return { code, stdout };
    };
    const warned = await withStderrClosed(['find', '**/*.json', '--offline']);
    expect(warned.stdout).toMatch(/^2 keys matched/m);
    expect(warned.code).toBe(0);
    // A fatal error's line is lost, its exit code is not.
    expect((await withStderrClosed(['restore', '--run', 'nope', '--to-dir', join(dir.path, 'never'), '--offline'])).code).toBe(2);
  });

  it.skipIf(!existsSync('/dev/full'))('stdout that cannot take the output (a log on a full disk): exit 1 naming it, no stack trace, no lock left', async () => {
    const toFullDisk = async (args: string[]): Promise<{ code: number | null; stderr: string }> => {
      const full = openSync('/dev/full', 'w');
      const child = spawn(process.execPath, [BIN, '--policy', policy, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env() }, stdio: ['ignore', full, 'pipe'] });
      closeSync(full);
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const [code] = (await once(child, 'close')) as [number | null];
      return { code, stderr };
    };
    const message = 'cannot write to stdout (ENOSPC: no space left on device, write): what the command printed there is incomplete';
    const hint = 'make room where stdout goes, or send it elsewhere';
    const runsBefore = summaryOf(await cli(['--policy', policy, 'runs', '--json'])).runs as number;
    // A query ends at once; a backup finishes (its run recorded, its lock released), then says it.
    for (const args of [['runs'], ['find', '**/*.json'], ['backup']]) {
      const r = await toFullDisk(args);
      expect(r.stderr, args.join(' ')).toBe(`lakeguard: ${message}\n  hint: ${hint}\n`);
      expect(r.code, args.join(' ')).toBe(1);
    }
    const json = await toFullDisk(['backup', '--json']);
    expect(JSON.parse(json.stderr)).toEqual({ message_type: 'exit_error', code: 1, message, hint });
    expect(json.code).toBe(1);
    expect(summaryOf(await cli(['--policy', policy, 'runs', '--json'])).runs).toBe(runsBefore + 2);
    const locks = join(dir.path, 'repo', 'locks');
    expect(existsSync(locks) ? readdirSync(locks) : []).toEqual([]);
    // Nothing on stdout, nothing lost: a quiet backup exits 0.
    expect((await toFullDisk(['backup', '--quiet'])).code).toBe(0);
  });

  it('a --to-endpoint that is no http(s) URL is bad usage for restore and drill, never damage', async () => {
    for (const command of ['restore', 'drill']) {
      const r = await cli(['--policy', policy, command, '--to', 's3://restore-bucket/p/', '--to-endpoint', 'not-a-url']);
      expect(r.stderr, command).toMatch(/^lakeguard: --to-endpoint: expected an http:\/\/ or https:\/\/ URL such as http:\/\/127\.0\.0\.1:7480, got "not-a-url"\n  hint: .*\n$/);
      expect(r.code, command).toBe(2);
    }
  });

  it('--json without a command (or a subcommand) is one exit_error line, not silence', async () => {
    for (const [args, path] of [[['--json'], 'lakeguard'], [['key', '--json'], 'lakeguard key']] as const) {
      const r = await cli([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(JSON.parse(r.stderr)).toEqual({ message_type: 'exit_error', code: 2, message: `missing command: \`${path}\` needs one`, hint: `\`${path} --help\` lists them` });
    }
  });

  it('errors in --json mode are one exit_error line on stderr', async () => {
    const r = await cli(['--policy', policy, 'restore', '--to-dir', join(dir.path, 'x'), '--json', '--run', 'nope']);
    expect(r.code).toBe(2);
    const line = JSON.parse(r.stderr.trim());
    expect(line).toMatchObject({ message_type: 'exit_error', code: 2 });
    expect(line.message).toMatch(/no run "nope"/);
  });

  it('restores and verifies through the CLI', async () => {
    const out = join(dir.path, 'restored');
    const r = await cli(['--policy', policy, 'restore', '--to-dir', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/restored 3 of 3 objects/);
    const v = await cli(['--policy', policy, 'verify', '--read-data-subset', '50%']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/no damage found/);
    const both = await cli(['--policy', policy, 'restore', '--to-dir', out, '--to', 's3://x/']);
    expect(both.code).toBe(2);
  });

  it('restores the keys listed in --keys-from, and names a bad line', async () => {
    const list = join(dir.path, 'keys.txt');
    writeFileSync(list, '# two of three\ns3://lake/a/1.json\n\ns3://lake/b/c/3.csv\n');
    const out = join(dir.path, 'some');
    const r = await cli(['--policy', policy, 'restore', '--keys-from', list, '--to-dir', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/restored 2 of 2 objects/);
    writeFileSync(list, 'a/1.json\n');
    const bad = await cli(['--policy', policy, 'restore', '--keys-from', list, '--to-dir', out]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/keys\.txt:1: "a\/1\.json" is not s3:\/\/bucket\/key/);
  });

  it.skipIf(!existsSync('/dev/stdin'))('--keys-from a pipe (/dev/stdin, a shell\'s <(…)) is read once: its keys are restored', async () => {
    // A real pipe from sh (node's own 'pipe' stdio is a socket, which /dev/stdin cannot open).
    const args = [BIN, '--policy', policy, 'restore', '--keys-from', '/dev/stdin', '--to-dir', join(dir.path, 'from-pipe'), '--json'];
    const child = spawn('sh', ['-c', 'printf "s3://lake/a/1.json\\ns3://lake/b/c/3.csv\\n" | "$@"', 'sh', process.execPath, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const [code] = (await once(child, 'close')) as [number | null];
    // Read a second time, the pipe was empty: "--keys-from /dev/stdin lists no keys", exit 2.
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toMatchObject({ message_type: 'summary', objects: 2, restored: 2 });
  });

  it('restores --at an instant and refuses a nonsense instant', async () => {
    const out = join(dir.path, 'at-now');
    const now = await cli(['--policy', policy, 'restore', '--at', 'now', '--to-dir', out]);
    expect(now.code, now.stderr).toBe(0);
    expect(now.stdout).toMatch(/restored 3 of 3 objects .* from state at 20/);
    const before = await cli(['--policy', policy, 'restore', '--at', '2000-01-01', '--to-dir', join(dir.path, 'at-2000')]);
    expect(before.code).toBe(2);
    expect(before.stderr).toMatch(/nothing to restore: lake\/ held no objects in the state at 2000-01-01/);
    const bad = await cli(['--policy', policy, 'restore', '--at', 'yesterday-ish', '--to-dir', out]);
    expect(bad.code).toBe(2);
    // Named as find, ls and rollback name it.
    expect(bad.stderr).toMatch(/^lakeguard: --at: cannot read "yesterday-ish" as an instant or a run\n/);
    expect(bad.stderr.trim().split("\n")[0]).toMatch(/^lakeguard: /);
  });

  it('backs up every group of the policy under one shared lock, released at the end', async () => {
    const two = join(dir.path, 'two-groups');
    writeTree(join(two, 'lake'), { 'x/1.json': '{"x":1}\n', 'y/2.json': '{"y":2}\n' });
    const twoPolicy = join(two, 'lakeguard.yaml');
    writeFileSync(
      twoPolicy,
      `version: 1
repository:
  url: file://./repo
groups:
  - name: first
    sources:
      - path: ./lake/x
  - name: second
    sources:
      - path: ./lake/y
`,
    );
    expect((await cli(['--policy', twoPolicy, 'init'])).code).toBe(0);
    const locks = () => readdirSync(join(two, 'repo', 'locks'));
    // Killed before its second write to the repository: the first was the lock, and it names both groups.
    const killed = await runCliKilledBeforeWrite(2, ['--policy', twoPolicy, 'backup'], env());
    outputs.push(killed);
    expect(killed.code).not.toBe(0);
    expect(locks()).toHaveLength(1);
    const stale = locks()[0]!;
    const info = JSON.parse(readFileSync(join(two, 'repo', 'locks', stale), 'utf8'));
    expect(info).toMatchObject({ type: 'shared', operation: 'backup of groups first, second' });
    // A dead process's lock on this host is stale: the next backup runs both groups and leaves only that lock.
    const r = await cli(['--policy', twoPolicy, '--json', 'backup']);
    expect(r.code).toBe(0);
    expect(r.messages.filter((m) => m.message_type === 'summary').map((m) => [m.group, m.status])).toEqual([
      ['first', 'complete'],
      ['second', 'complete'],
    ]);
    expect(locks()).toEqual([stale]);
  });

  it('never prints a password or a secret key', () => {
    expect(outputs.length).toBeGreaterThan(10);
    for (const r of outputs) {
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
      expect(r.stdout + r.stderr).not.toContain(AWS_SECRET);
    }
  });
});
