// Commands on a scoped catalog (docs/catalog.md "Commands on a scoped catalog"): the guard's two
// rules on their own, then the real CLI on a file:// repository and a second host's catalog
// synced with `catalog sync --prefix s3://lake/in/`: every command that decides from the whole
// repository refuses it (exit 2, one line, nothing written to the repository), and every key
// selection answers inside the scope and is refused when it reaches outside.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqliteDatabase } from '../../src/catalog/connection.js';
import { recordRunAnomalies } from '../../src/catalog/anomalies.js';
import { setCatalogScope } from '../../src/catalog/scope.js';
import { requireWholeCatalog } from '../../src/catalog/scope.js';
import { requireInScope, uncoveredSelection } from '../../src/commands/catalog-scope-guard.js';
import { ExitCode, UsageError } from '../../src/errors.js';
import { messagesOf, runCli, summaryOf, type CliResult } from '../helpers/cli.js';
import { inProcessCli } from '../helpers/in-process-cli.js';
import { initRepo, tempDir, testPolicy, writeTree } from '../helpers/fixtures.js';
import { backupGroup } from '../../src/engine/backup.js';
import { forget } from '../../src/engine/forget.js';
import { extendRetention } from '../../src/engine/lock-extend.js';
import { prune } from '../../src/engine/prune.js';
import type { Group } from '../../src/policy/types.js';
import { FsStore } from '../../src/storage/fs-store.js';

const REPO = 'd4'.repeat(16);


describe('the scope guard', () => {
  const scoped = (): Catalog => {
    const catalog = Catalog.open(':memory:', REPO);
    setCatalogScope(catalog, [
      { bucket: 'lake', prefix: 'in/' },
      { bucket: 'logs', prefix: '' },
    ]);
    return catalog;
  };

  it('lets a whole catalog through both rules', () => {
    const catalog = Catalog.open(':memory:', REPO);
    expect(() => requireWholeCatalog(catalog, 'prune')).not.toThrow();
    expect(uncoveredSelection(catalog, [{ bucket: null, prefix: '' }])).toBeNull();
    catalog.close();
  });

  it('refuses a scoped catalog to a command that needs the whole repository, in one line naming the scope and the way out', () => {
    const catalog = scoped();
    let err: unknown;
    try {
      requireWholeCatalog(catalog, 'prune');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(ExitCode.usage);
    expect((err as UsageError).message).toBe(
      'prune needs every version of the repository; this catalog holds only s3://lake/in/, s3://logs/ (scoped). Run it on a host with a whole catalog, or `lakeguard catalog sync --all` first',
    );
    catalog.close();
  });

  it('the engines of backup, forget, prune and lock extend refuse a scoped catalog too, before touching the repository', async () => {
    const dir = tempDir('scope-engines');
    try {
      const store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
      const repo = await initRepo(store);
      const catalog = Catalog.open(join(dir.path, 'catalog.db'), repo.id);
      setCatalogScope(catalog, [{ bucket: 'lake', prefix: 'in/' }]);
      const before = readdirSync(join(dir.path, 'repo'), { recursive: true }).sort();
      const group: Group = { name: 'lake', sources: [{ kind: 'path', path: join(dir.path, 'lake'), prefixes: [''], exclude: [] }] };
      const policy = testPolicy(store.location, [group]);
      const refused = /needs every version of the repository; this catalog holds only s3:\/\/lake\/in\/ \(scoped\)/;
      await expect(backupGroup({ repo, catalog, policy, group })).rejects.toThrow(refused);
      await expect(forget(repo, catalog, policy, { dryRun: false })).rejects.toThrow(refused);
      await expect(prune({ repo, catalog, dryRun: false } as Parameters<typeof prune>[0])).rejects.toThrow(refused);
      await expect(extendRetention({ repo, catalog } as Parameters<typeof extendRetention>[0])).rejects.toThrow(refused);
      expect(readdirSync(join(dir.path, 'repo'), { recursive: true }).sort()).toEqual(before);
      catalog.close();
    } finally {
      dir.cleanup();
    }
  });

  it('answers a selection inside the scope and refuses one that only overlaps it or lies outside', () => {
    const catalog = scoped();
    // Inside: the scope's prefix itself, deeper prefixes, keys, and a whole bucket the scope holds.
    expect(uncoveredSelection(catalog, [{ bucket: 'lake', prefix: 'in/' }, { bucket: 'lake', prefix: 'in/dt=1/part-0.parquet' }, { bucket: 'logs', prefix: '' }])).toBeNull();
    // Overlapping (s3://lake/ holds in/ and more), a sibling, the prefix without its slash, another bucket, every bucket.
    for (const outside of [
      { bucket: 'lake', prefix: '' },
      { bucket: 'lake', prefix: 'out/' },
      { bucket: 'lake', prefix: 'in' },
      { bucket: 'other', prefix: 'in/' },
      { bucket: null, prefix: 'in/' },
    ]) {
      expect(uncoveredSelection(catalog, [{ bucket: 'lake', prefix: 'in/x' }, outside])).toEqual(outside);
    }
    expect(() => requireInScope(catalog, 'ls', [{ bucket: 'lake', prefix: '' }])).toThrow(
      "ls: s3://lake/ reaches outside the catalog's scope: this catalog holds only s3://lake/in/, s3://logs/ (scoped). Narrow the selection to that, or run `lakeguard catalog sync --prefix s3://lake/` (adds it) or `lakeguard catalog sync --all` first",
    );
    // Every bucket can only be widened to the whole repository.
    expect(() => requireInScope(catalog, 'find', [{ bucket: null, prefix: 'in/' }])).toThrow(/^find: in\/ in every bucket reaches outside .* or run `lakeguard catalog sync --all` \(every bucket\) first$/);
    catalog.close();
  });
});

describe('commands on a scoped catalog', { timeout: 180_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  let catalogPath: string;
  const runIds: string[] = [];
  const env = { LAKEGUARD_CACHE_DIR: '', TZ: 'UTC' };
  const cli = (args: string[]): Promise<CliResult> => runCli(['--policy', policy, '--catalog', catalogPath, ...args], env);
  /** The same command in this process (inProcessCli). */
  const inProcess = (args: string[]): Promise<CliResult> => inProcessCli(['--policy', policy, '--catalog', catalogPath, ...args], env);
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  /** Every file of the repository with its size and modification time: what a refusal must leave alone. */
  const repositoryState = (): string[] => {
    const root = join(dir.path, 'repo');
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) => {
        const p = join(d, e.name);
        if (e.isDirectory()) return [`${relative(root, p)}/`, ...walk(p)];
        const s = statSync(p);
        return [`${relative(root, p)} ${s.size} ${s.mtimeMs}`];
      });
    return walk(root).sort();
  };
  /** A refusal: exit 2, nothing on stdout, one line on stderr, the repository as it was. */
  const refused = async (args: string[], message: RegExp, run = inProcess): Promise<CliResult> => {
    const before = repositoryState();
    const r = await run(args);
    expect(r.code, `${args.join(' ')}: exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(ExitCode.usage);
    expect(r.stdout, args.join(' ')).toBe('');
    expect(r.stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
    expect(r.stderr, args.join(' ')).toMatch(message);
    expect(r.stderr, args.join(' ')).toContain('this catalog holds only s3://lake/in/ (scoped)');
    expect(repositoryState(), args.join(' ')).toEqual(before);
    return r;
  };

  beforeAll(async () => {
    dir = tempDir('scope-guard');
    env.LAKEGUARD_CACHE_DIR = join(dir.path, 'cache');
    policy = join(dir.path, 'lakeguard.yaml');
    catalogPath = join(dir.path, 'catalog.db');
    // Unencrypted: no key derivation per command (the rules do not depend on encryption).
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    writeTree(join(dir.path, 'lake'), { 'in/a.csv': 'a,1\n', 'in/sub/b.csv': 'b,2\n', 'out/c.csv': 'c,3\n', 'top.txt': 'top' });
    ok(await cli(['init']));
    ok(await cli(['backup', '--quiet']));
    writeTree(join(dir.path, 'lake'), { 'in/a.csv': 'a,1\na,11\n', 'out/c.csv': 'c,3\nc,33\n' });
    ok(await cli(['backup', '--quiet']));
    runIds.push(...messagesOf(ok(await cli(['runs', '--json'])), 'run').map((r) => r.id as string));
    expect(runIds).toHaveLength(2);
    // A second host: a fresh catalog synced for s3://lake/in/ only (the backups' catalog stays whole).
    catalogPath = join(dir.path, 'laptop.db');
    const synced = ok(await inProcess(['catalog', 'sync', '--prefix', 's3://lake/in/', '--json']));
    expect(summaryOf(synced)).toMatchObject({ scope: [{ bucket: 'lake', prefix: 'in/' }] });
    // It holds in/a.csv (two versions) and in/sub/b.csv, nothing of out/ or top.txt.
    expect(summaryOf(ok(await inProcess(['catalog', 'info', '--json'])))).toMatchObject({ runs: 2, objects: 2, versions: 3 });
  }, 180_000);

  afterAll(() => dir.cleanup());

  it('refuses every command that decides from the whole repository, before writing anything', async () => {
    const whole = /^lakeguard: (.+) needs every version of the repository; this catalog holds only s3:\/\/lake\/in\/ \(scoped\)\. Run it on a host with a whole catalog, or `lakeguard catalog sync --all` first\n$/;
    for (const args of [['backup'], ['backup', '--shards', '2', '--shard', '0', '--run-set', 'scoped'], ['forget'], ['prune'], ['verify'], ['cost'], ['lock', 'extend'], ['watch'], ['copy', '--to-policy', policy]]) {
      const r = await refused(args, whole);
      expect(whole.exec(r.stderr)?.[1]).toBe(args[0] === 'lock' ? 'lock extend' : args[0]);
    }
    await refused(['runs', 'show', runIds[1]!, '--versions'], /^lakeguard: runs show --versions needs every version \(and failure\) the run recorded; /);
    await refused(['runs', 'show', runIds[1]!, '--anomalies', '--json'], /"runs show --anomalies needs every version/);
    // And as the installed command prints it.
    await refused(['prune'], whole, cli);
  });

  it('refuses a selection that reaches outside the scope, and writes no restore target', async () => {
    const outside = (cmd: string, what: string) => new RegExp(`^lakeguard: ${cmd}: ${what} reaches outside the catalog's scope: this catalog holds only s3://lake/in/ \\(scoped\\)\\. Narrow the selection to that, or run `);
    await refused(['ls', 's3://lake/'], outside('ls', 's3://lake/'));
    await refused(['ls', 's3://lake/in'], outside('ls', 's3://lake/in'));
    await refused(['versions', 's3://lake/out/c.csv'], outside('versions', 's3://lake/out/c.csv'));
    await refused(['find', 'in/**'], outside('find', 'in/ in every bucket'));
    await refused(['find', '--bucket', 'lake', '**/*.csv'], outside('find', 's3://lake/'));
    await refused(['diff', '1', '2', '--prefix', 'in/'], outside('diff', 'in/ in every bucket'));
    await refused(['diff', '1', '2', '--group', 'local'], outside('diff', 's3://lake/'));
    await refused(['diff', '1', 'live'], outside('diff live', 's3://lake/'));
    await refused(['rollback', '--bucket', 'lake', '--prefix', 'out/', '--at', '1', '--dry-run'], outside('rollback', 's3://lake/out/'));
    const target = join(dir.path, 'refused-restore');
    await refused(['restore', '--bucket', 'lake', '--to-dir', target], outside('restore', 's3://lake/'));
    await refused(['restore', '--group', 'local', '--to-dir', target], outside('restore', 's3://lake/'));
    const keys = join(dir.path, 'keys.txt');
    writeFileSync(keys, 's3://lake/in/a.csv\ns3://lake/out/c.csv\n');
    await refused(['restore', '--keys-from', keys, '--to-dir', target], outside('restore', 's3://lake/out/c.csv'), cli);
    expect(existsSync(target)).toBe(false);
  });

  it('answers inside the scope as a whole catalog would', async () => {
    const ls = ok(await inProcess(['ls', 's3://lake/in/', '--json']));
    expect(messagesOf(ls, 'entry').map((e) => [e.type, e.name])).toEqual([
      ['object', 'in/a.csv'],
      ['prefix', 'in/sub/'],
    ]);
    const versions = ok(await inProcess(['versions', 's3://lake/in/a.csv', '--json']));
    expect(summaryOf(versions)).toMatchObject({ versions: 2, deleteMarkers: 0, missingData: 0 });
    const found = ok(await inProcess(['find', '--bucket', 'lake', 'in/**', '--json']));
    expect(messagesOf(found, 'match').map((m) => m.key)).toEqual(['in/a.csv', 'in/sub/b.csv']);
    const diff = ok(await inProcess(['diff', '1', '2', '--bucket', 'lake', '--prefix', 'in/', '--json']));
    expect(summaryOf(diff)).toMatchObject({ added: { objects: 0 }, changed: { objects: 1 }, deleted: { objects: 0 } });
    // The live side inside the scope: in/a.csv changed since run 1, nothing else.
    const live = ok(await inProcess(['diff', '1', 'live', '--prefix', 'in/', '--json']));
    expect(summaryOf(live)).toMatchObject({ changed: { objects: 1 }, added: { objects: 0 }, deleted: { objects: 0 }, unchanged: { objects: 1 } });
    const plan = ok(await inProcess(['rollback', '--bucket', 'lake', '--prefix', 'in/', '--at', '1', '--dry-run', '--json']));
    // Back to run 1: the two keys under in/ planned, nothing deleted, nothing outside in/.
    const actions = Object.values(summaryOf(plan).actions as Record<string, { keys: number }>);
    expect(actions.reduce((n, a) => n + a.keys, 0)).toBe(2);
    expect(summaryOf(plan)).toMatchObject({ dryRun: true, actions: { delete: { keys: 0 } }, target: expect.stringMatching(/\/lake\/in\/$/) });
    const target = join(dir.path, 'restored');
    ok(await cli(['restore', '--bucket', 'lake', '--prefix', 'in/', '--run', '1', '--to-dir', target, '--quiet']));
    expect(readFileSync(join(target, 'in/a.csv'), 'utf8')).toBe('a,1\n');
    expect(readFileSync(join(target, 'in/sub/b.csv'), 'utf8')).toBe('b,2\n');
    expect(readdirSync(target)).toEqual(['in']);
  });

  it('a restore that selects nothing names no neighbours from a part the catalog holds only partly', async () => {
    // A scope without its slash: s3://lake/in/s holds in/sub/ but not in/a.csv, its neighbour.
    const saved = catalogPath;
    catalogPath = join(dir.path, 'narrow.db');
    try {
      ok(await inProcess(['catalog', 'sync', '--prefix', 's3://lake/in/s', '--quiet']));
      const r = await inProcess(['restore', '--bucket', 'lake', '--prefix', 'in/sx/', '--to-dir', join(dir.path, 'nothing')]);
      expect(r.code).toBe(ExitCode.usage);
      expect(r.stderr).toMatch(/^lakeguard: nothing to restore: the catalog has no key under lake\/in\/sx\//);
      // Not "lake/in/ holds: in/sub/": the whole catalog's answer is in/a.csv, in/sub/.
      expect(r.stderr).not.toMatch(/holds: in\/sub\//);
    } finally {
      catalogPath = saved;
    }
  });

  it('shows runs whole, and of one run only what its manifest says', async () => {
    // Run rows and their counters come from the manifests: whole on any catalog.
    const runs = ok(await inProcess(['runs', '--json']));
    expect(messagesOf(runs, 'run').map((r) => (r.counters as { objectsSeen: number }).objectsSeen)).toEqual([4, 4]);
    ok(await inProcess(['calendar', '--month', new Date().toISOString().slice(0, 7), '--json']));
    const shown = ok(await inProcess(['runs', 'show', runIds[1]!, '--json']));
    expect(summaryOf(shown)).toMatchObject({ id: runIds[1], versionsRecorded: null, changes: null, scope: [{ bucket: 'lake', prefix: 'in/' }] });
    // A suspect run's verdict (whole, from its manifest) with where its flagged objects are listed.
    const file = new (sqliteDatabase())(catalogPath, { readonly: true });
    const id = file.prepare("SELECT value FROM catalog_info WHERE name = 'repository'").pluck().get() as string;
    file.close();
    const laptop = Catalog.open(catalogPath, id);
    try {
      recordRunAnomalies(laptop, laptop.findRun(runIds[1]!)!.seq, {
        suspect: true,
        findings: [{ bucket: 'lake', partition: 'in/', rules: ['overwritten'], reasons: ['overwrote 1 of 2 keys'] }],
        partitions: [],
        flaggedObjects: 1,
      });
    } finally {
      laptop.close();
    }
    const text = ok(await cli(['runs', 'show', runIds[1]!]));
    expect(text.stdout).toMatch(/^anomalies +SUSPECT: 1 partition, 1 object flagged \(`--anomalies` lists them on a whole catalog\)$/m);
    expect(text.stdout).toMatch(/^listing +4 seen: /m);
    expect(text.stdout).toMatch(/^versions +not known here: this catalog holds only s3:\/\/lake\/in\/ \(scoped\); `lakeguard diff 1 2 --bucket lake --prefix in\/ --details` lists what it changed inside it$/m);
  });

  it('diff --group reads every key of the group\'s buckets its runs recorded, also where the policy no longer looks', async () => {
    // The group now backs up in/ only; its runs recorded out/c.csv too (changed by run 2).
    const narrowed = join(dir.path, 'narrowed.yaml');
    writeFileSync(narrowed, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n        prefixes: [in/]\n');
    const saved = policy;
    const laptop = catalogPath;
    policy = narrowed;
    try {
      catalogPath = join(dir.path, 'catalog.db'); // the backups' whole catalog
      const whole = summaryOf(ok(await inProcess(['diff', '1', '2', '--group', 'local', '--json'])));
      catalogPath = laptop;
      expect(whole).toMatchObject({ changed: { objects: 2 } });
      // The scoped catalog knows in/ only: an answer would lack out/c.csv.
      await refused(['diff', '1', '2', '--group', 'local'], /^lakeguard: diff: s3:\/\/lake\/ reaches outside the catalog's scope/);
      const inside = summaryOf(ok(await inProcess(['diff', '1', '2', '--group', 'local', '--prefix', 'in/', '--json'])));
      expect(inside).toMatchObject({ changed: { objects: 1 }, added: { objects: 0 }, deleted: { objects: 0 } });
    } finally {
      policy = saved;
      catalogPath = laptop;
    }
  });

  // Last: it makes the catalog whole again.
  it('catalog rebuild is allowed and writes a whole catalog', async () => {
    ok(await inProcess(['catalog', 'rebuild', '--quiet']));
    const ls = ok(await inProcess(['ls', 's3://lake/', '--json']));
    expect(messagesOf(ls, 'entry').map((e) => e.name)).toEqual(['in/', 'out/', 'top.txt']);
    ok(await inProcess(['prune', '--dry-run', '--quiet']));
  });
});

describe('a scope of whole buckets, and a group the policy does not name', { timeout: 120_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let repoUrl: string;
  let laptop: string;
  const env = { LAKEGUARD_CACHE_DIR: '', TZ: 'UTC', LAKEGUARD_PASSWORD: 'test-password' };
  /** The CLI in this process (inProcessCli), on a laptop with only --repo: no policy names the group. */
  const run = (args: string[]): Promise<CliResult> => inProcessCli(['--repo', repoUrl, '--catalog', laptop, ...args], env);

  beforeAll(async () => {
    dir = tempDir('scope-buckets');
    env.LAKEGUARD_CACHE_DIR = join(dir.path, 'cache');
    // One group over two buckets, one named like the start of the other.
    const store = new FsStore({ root: join(dir.path, 'repo'), fsync: false });
    const repo = await initRepo(store);
    repoUrl = store.location;
    writeTree(join(dir.path, 'lake'), { 'in/a.csv': 'a,1\n' });
    writeTree(join(dir.path, 'lake2'), { 'in/x.csv': 'x,1\n' });
    const group: Group = { name: 'local', sources: ['lake', 'lake2'].map((d) => ({ kind: 'path' as const, path: join(dir.path, d), prefixes: [''], exclude: [] })) };
    const backupCatalog = Catalog.open(join(dir.path, 'backup.db'), repo.id);
    await backupGroup({ repo, catalog: backupCatalog, policy: testPolicy(store.location, [group]), group });
    backupCatalog.close();
    laptop = join(dir.path, 'laptop.db');
    const synced = await run(['catalog', 'sync', '--prefix', 's3://lake/', '--json']);
    expect(synced.code, synced.stderr).toBe(0);
    expect(summaryOf(synced)).toMatchObject({ scope: [{ bucket: 'lake', prefix: '' }] });
  }, 120_000);
  afterAll(() => dir.cleanup());

  it('restore and drill of such a group are refused: the catalog knows only the buckets of its scope', async () => {
    const message = /^lakeguard: (restore|drill): group "local" is not in the policy, so its buckets are known only to a whole catalog; this catalog holds only s3:\/\/lake\/ \(scoped\)\. Give --bucket/;
    for (const cmd of ['restore', 'drill']) {
      const target = join(dir.path, `${cmd}-target`);
      const r = await run([cmd, '--group', 'local', '--to-dir', target]);
      // Not a restore of lake alone, exit 0: lake2 is in the group's backups too.
      expect(r.code, `${cmd}: ${r.stdout}${r.stderr}`).toBe(ExitCode.usage);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(existsSync(target)).toBe(false);
    }
    // diff refused it before too (as every bucket): now it says why.
    const diff = await run(['diff', '1', '1', '--group', 'local']);
    expect(diff.code).toBe(ExitCode.usage);
    expect(diff.stderr).toMatch(/^lakeguard: diff: group "local" is not in the policy, so its buckets are known only to a whole catalog/);
    // The bucket the scope holds is restored as a whole catalog would.
    const target = join(dir.path, 'lake-target');
    expect((await run(['restore', '--bucket', 'lake', '--to-dir', target, '--quiet'])).code).toBe(0);
    expect(readFileSync(join(target, 'in/a.csv'), 'utf8')).toBe('a,1\n');
  });

  it('serve of such a group is refused before it listens', async () => {
    const { createServer } = await import('node:net');
    // A port in use: a serve that went on would fail to listen (exit 1), not hang.
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as { port: number }).port;
      const r = await run(['serve', '--group', 'local', '--listen', `127.0.0.1:${port}`]);
      expect(r.code, r.stderr).toBe(ExitCode.usage);
      expect(r.stderr).toMatch(/^lakeguard: serve: group "local" is not in the policy, so its buckets are known only to a whole catalog; this catalog holds only s3:\/\/lake\/ \(scoped\)/);
    } finally {
      busy.close();
    }
  });
});
