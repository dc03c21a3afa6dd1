// On-demand catalogs (docs/catalog.md "On-demand catalogs"): on a fresh host, a command that
// selects keys imports only them; later commands add what they select, or make the catalog whole
// when they need every version. First the decision on its own, then the real CLI on a file://
// repository, with each answer compared to a whole catalog's.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqliteDatabase } from '../../src/catalog/connection.js';
import { scopeIsOnDemand, setCatalogScope } from '../../src/catalog/scope.js';
import { commandDemand, type KeySelection } from '../../src/commands/catalog-scope-guard.js';
import { onDemandChange } from '../../src/engine/on-demand-scope.js';
import { openWithPolicy, resolvePolicy } from '../../src/commands/context.js';
import { Reporter } from '../../src/commands/reporter.js';
import { ExitCode, UsageError } from '../../src/errors.js';
import { messagesOf, summaryOf, type CliResult } from '../helpers/cli.js';
import { inProcessCli } from '../helpers/in-process-cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

const REPO = 'e5'.repeat(16);

describe('what a command adds to an on-demand catalog', () => {
  const open = (scope: { prefix: string }[] | null, onDemand: boolean): Catalog => {
    const catalog = Catalog.open(':memory:', REPO);
    if (scope !== null) setCatalogScope(catalog, scope.map((p) => ({ bucket: 'lake', ...p })), onDemand);
    return catalog;
  };
  const inDir = [{ bucket: 'lake', prefix: 'in/' }];
  /** What a command's sync changes: the command says what it selects, the sync decides (under its lease). */
  const changeFor = (catalog: Catalog, selection: readonly KeySelection[] | null | undefined, wholeCatalog: boolean) => {
    const demand = commandDemand(selection, wholeCatalog);
    return demand === undefined ? undefined : onDemandChange(catalog, demand);
  };

  it('scopes a fresh catalog to what a command selects, and leaves it whole when the command cannot say or needs everything', () => {
    const fresh = open(null, false);
    expect(changeFor(fresh, inDir, false)).toEqual(inDir);
    expect(changeFor(fresh, [{ bucket: 'lake', prefix: 'in/a.csv', exact: true }], false)).toEqual([{ bucket: 'lake', prefix: 'in/a.csv' }]);
    // `runs`: no key at all, the runs only.
    expect(changeFor(fresh, [], false)).toEqual([]);
    // Every bucket, a group only the catalog knows, a command that does not say, a whole-repository command: a whole sync, as before.
    expect(changeFor(fresh, [{ bucket: null, prefix: 'in/' }], false)).toBeUndefined();
    expect(changeFor(fresh, null, false)).toBeUndefined();
    expect(changeFor(fresh, undefined, false)).toBeUndefined();
    // A whole-repository command asks for all, which leaves a fresh catalog to a whole sync.
    expect(commandDemand(inDir, true)).toBe('all');
    expect(changeFor(fresh, inDir, true)).toBeUndefined();
    fresh.close();
  });

  it('adds what an on-demand catalog lacks, makes it whole for every bucket or version, and never touches another catalog', () => {
    const lazy = open([{ prefix: 'in/' }], true);
    expect(scopeIsOnDemand(lazy)).toBe(true);
    expect(changeFor(lazy, [{ bucket: 'lake', prefix: 'in/sub/' }], false)).toBeUndefined();
    expect(changeFor(lazy, [{ bucket: 'lake', prefix: 'in/sub/' }, { bucket: 'lake', prefix: 'out/' }, { bucket: 'logs', prefix: '' }], false)).toEqual([
      { bucket: 'lake', prefix: 'out/' },
      { bucket: 'logs', prefix: '' },
    ]);
    expect(changeFor(lazy, [{ bucket: null, prefix: '' }], false)).toBe('all');
    expect(changeFor(lazy, null, false)).toBe('all');
    expect(changeFor(lazy, undefined, true)).toBe('all');
    // `runs` selects no keys: run rows are whole on any catalog.
    expect(changeFor(lazy, [], false)).toBeUndefined();
    expect(changeFor(lazy, undefined, false)).toBeUndefined();
    lazy.close();
    // Scoped by `catalog sync --prefix` (or a shard), or whole and synced: never changed by a command.
    const pinned = open([{ prefix: 'in/' }], false);
    expect(scopeIsOnDemand(pinned)).toBe(false);
    expect(changeFor(pinned, [{ bucket: 'lake', prefix: 'out/' }], false)).toBeUndefined();
    expect(changeFor(pinned, undefined, true)).toBeUndefined();
    pinned.close();
  });

  it('scopes thousands of selected keys of one bucket as their directories, one level up at a time', () => {
    const fresh = open(null, false);
    // 1,000 keys of 10 partitions: those 10, not the bucket.
    const keys = Array.from({ length: 1000 }, (_, i) => ({ bucket: 'lake', prefix: `in/dt=2026-12-0${i % 10}/part-${i}.parquet`, exact: true }));
    expect(changeFor(fresh, keys, false)).toEqual(Array.from({ length: 10 }, (_, d) => ({ bucket: 'lake', prefix: `in/dt=2026-12-0${d}/` })));
    // 40 partitions of two tables: one level up, the tables.
    const wide = Array.from({ length: 40 }, (_, i) => ({ bucket: 'lake', prefix: `t${i % 2}/dt=${i}/part-0.parquet`, exact: true }));
    expect(changeFor(fresh, wide, false)).toEqual([{ bucket: 'lake', prefix: 't0/' }, { bucket: 'lake', prefix: 't1/' }]);
    // 40 top-level keys: the bucket; 32 stay as they are, each bucket counted on its own.
    expect(changeFor(fresh, Array.from({ length: 40 }, (_, i) => ({ bucket: 'lake', prefix: `k${i}`, exact: true })), false)).toEqual([{ bucket: 'lake', prefix: '' }]);
    const few = [...Array.from({ length: 32 }, (_, i) => ({ bucket: 'lake', prefix: `k${i}` })), ...Array.from({ length: 32 }, (_, i) => ({ bucket: 'logs', prefix: `k${i}` }))];
    expect(changeFor(fresh, few, false)).toHaveLength(64);
    fresh.close();
  });
});

describe('an on-demand catalog on a second host', { timeout: 180_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const env = { LAKEGUARD_CACHE_DIR: '', TZ: 'UTC' };
  const cli = (catalog: string, args: string[]): Promise<CliResult> => inProcessCli(['--policy', policy, '--catalog', join(dir.path, catalog), ...args], env);
  const ok = (r: CliResult): CliResult => {
    expect(r.code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  const info = async (catalog: string): Promise<Record<string, unknown>> => summaryOf(ok(await cli(catalog, ['catalog', 'info', '--json'])));
  /** The same command on the backups' whole catalog and on `catalog`: equal answers (its --json lines of `type`). */
  const sameAsWhole = async (catalog: string, args: string[], type: string): Promise<Record<string, unknown>[]> => {
    const whole = messagesOf(ok(await cli('catalog.db', [...args, '--json'])), type);
    const answered = messagesOf(ok(await cli(catalog, [...args, '--json'])), type);
    expect(answered, args.join(' ')).toEqual(whole);
    expect(answered.length, args.join(' ')).toBeGreaterThan(0);
    return answered;
  };

  beforeAll(async () => {
    dir = tempDir('on-demand');
    env.LAKEGUARD_CACHE_DIR = join(dir.path, 'cache');
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\n  encryption: none\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    writeTree(join(dir.path, 'lake'), { 'in/a.csv': 'a,1\n', 'in/sub/b.csv': 'b,2\n', 'out/c.csv': 'c,3\n', 'top.txt': 'top' });
    ok(await cli('catalog.db', ['init']));
    ok(await cli('catalog.db', ['backup', '--quiet']));
    writeTree(join(dir.path, 'lake'), { 'in/a.csv': 'a,1\na,11\n', 'out/c.csv': 'c,3\nc,33\n' });
    ok(await cli('catalog.db', ['backup', '--quiet']));
  }, 180_000);

  afterAll(() => dir.cleanup());

  it('imports only what the first command selects, and catalog info says so', async () => {
    const ls = ok(await cli('laptop.db', ['ls', 's3://lake/in/', '--json']));
    expect(messagesOf(ls, 'entry')).toEqual(messagesOf(ok(await cli('catalog.db', ['ls', 's3://lake/in/', '--json'])), 'entry'));
    // in/a.csv (two versions) and in/sub/b.csv: nothing of out/ or top.txt; the runs whole.
    expect(await info('laptop.db')).toMatchObject({ holds: 'scoped', scope: [{ bucket: 'lake', prefix: 'in/' }], scopeOnDemand: true, wholeByRequest: false, runs: 2, objects: 2, versions: 3 });
    const text = ok(await cli('laptop.db', ['catalog', 'info'])).stdout;
    expect(text).toContain('holds: only s3://lake/in/ (on demand: a command that selects other keys adds them, one that needs every version makes it whole;');
  });

  it('adds the keys of later commands in place, answering each as a whole catalog does', async () => {
    await sameAsWhole('laptop.db', ['versions', 's3://lake/out/c.csv'], 'version');
    expect(await info('laptop.db')).toMatchObject({ scope: [{ bucket: 'lake', prefix: 'in/' }, { bucket: 'lake', prefix: 'out/c.csv' }], scopeOnDemand: true, objects: 3, versions: 5 });
    // Inside the scope nothing is added.
    await sameAsWhole('laptop.db', ['diff', '1', '2', '--bucket', 'lake', '--prefix', 'in/'], 'summary');
    expect((await info('laptop.db')).versions).toBe(5);
    const target = join(dir.path, 'restored');
    ok(await cli('laptop.db', ['restore', '--bucket', 'lake', '--prefix', 'in/', '--run', '1', '--to-dir', target, '--quiet']));
    expect(readFileSync(join(target, 'in/a.csv'), 'utf8')).toBe('a,1\n');
    // A restore of the whole bucket adds the rest of it (top.txt).
    ok(await cli('laptop.db', ['restore', '--bucket', 'lake', '--to-dir', join(dir.path, 'bucket'), '--quiet']));
    expect(readFileSync(join(dir.path, 'bucket', 'top.txt'), 'utf8')).toBe('top');
    expect(await info('laptop.db')).toMatchObject({ scope: [{ bucket: 'lake', prefix: '' }], scopeOnDemand: true, objects: 4, versions: 6 });
  });

  it('answers offline only inside what it holds', async () => {
    ok(await cli('offline2.db', ['ls', 's3://lake/in/', '--quiet']));
    const outside = await cli('offline2.db', ['ls', 's3://lake/out/', '--offline']);
    expect(outside.code).toBe(ExitCode.usage);
    // The refusal says why (offline adds nothing) and the way on, not the wording for a catalog scoped by request.
    expect(outside.stderr).toMatch(
      /^warning: offline: .*\nlakeguard: ls: s3:\/\/lake\/out\/ is not in this catalog: this catalog holds only s3:\/\/lake\/in\/ \(on demand\), which adds what a command selects when it syncs: --offline \(or LAKEGUARD_OFFLINE\) skips that\. Run it again without them, or run `lakeguard catalog sync --prefix s3:\/\/lake\/out\/` first\n$/,
    );
    const verify = await cli('offline2.db', ['verify', '--offline']);
    expect(verify.code).toBe(ExitCode.usage);
    // Every bucket (find without --bucket): the catalog would become whole, not add a prefix.
    const find = await cli('offline2.db', ['find', '**/*.csv', '--offline']);
    expect([find.code, find.stderr]).toEqual([
      ExitCode.usage,
      expect.stringMatching(/lakeguard: find: every bucket is not in this catalog: this catalog holds only s3:\/\/lake\/in\/ \(on demand\), which becomes whole when a command that reads every bucket syncs it: --offline \(or LAKEGUARD_OFFLINE\) skips that\. Run it again without them, or run `lakeguard catalog sync --all` first\n$/),
    ]);
    expect(verify.stderr).toMatch(/lakeguard: verify needs every version of the repository; this catalog holds only s3:\/\/lake\/in\/ \(on demand\), which becomes whole when such a command syncs it: --offline \(or LAKEGUARD_OFFLINE\) skips that\. Run it again without them, or run `lakeguard catalog sync --all` first\n$/);
    expect((await info('offline2.db')).scope).toEqual([{ bucket: 'lake', prefix: 'in/' }]);
  });

  it('names a command that works for the first run it holds, which has no run before it to diff from', async () => {
    const runs = messagesOf(ok(await cli('first.db', ['runs', '--json'])), 'run');
    const first = runs[0]!.id as string;
    const shown = ok(await cli('first.db', ['runs', 'show', first]));
    expect(shown.stdout).toMatch(new RegExp(`^versions +not known here: this catalog holds no key \\(on demand\\); \`lakeguard ls s3://B/P --at ${first}\` imports and shows what it recorded under a prefix P;`, 'm'));
    // That command, for a prefix: what the whole catalog answers.
    await sameAsWhole('first.db', ['ls', 's3://lake/in/', '--at', first], 'entry');
  });

  it('becomes whole for a shard backup on a named file a command scoped on demand', async () => {
    ok(await cli('shard.db', ['ls', 's3://lake/in/', '--quiet']));
    // Its keys are known only once planned: made whole (as for a plain backup), not refused.
    ok(await cli('shard.db', ['backup', '--shards', '2', '--shard', '0', '--run-set', 'night', '--dry-run', '--quiet']));
    expect(await info('shard.db')).toMatchObject({ holds: 'whole', scope: null, versions: 6 });
  });

  it('becomes whole for a command that needs every version or every bucket, without marking it whole by request', async () => {
    ok(await cli('prune.db', ['ls', 's3://lake/out/', '--quiet']));
    expect((await info('prune.db')).versions).toBe(2);
    ok(await cli('prune.db', ['prune', '--dry-run', '--quiet']));
    expect(await info('prune.db')).toMatchObject({ holds: 'whole', scope: null, scopeOnDemand: false, wholeByRequest: false, objects: 4, versions: 6 });
    ok(await cli('find.db', ['versions', 's3://lake/top.txt', '--quiet']));
    await sameAsWhole('find.db', ['find', '**/*.csv'], 'match');
    expect(await info('find.db')).toMatchObject({ holds: 'whole', versions: 6 });
  });

  it('shows runs on a fresh host from the manifests alone, then imports what later commands select', async () => {
    // Every field as the backups' whole catalog has it (counters, verdicts, run sets come from the manifests).
    const runs = await sameAsWhole('runs.db', ['runs'], 'run');
    expect(runs.map((r) => (r.counters as { objectsSeen: number }).objectsSeen)).toEqual([4, 4]);
    expect(await info('runs.db')).toMatchObject({ holds: 'scoped', scope: [], scopeOnDemand: true, runs: 2, objects: 0, versions: 0 });
    expect(ok(await cli('runs.db', ['catalog', 'info'])).stdout).toContain('holds: the runs and no key (on demand:');
    ok(await cli('runs.db', ['calendar', '--month', new Date().toISOString().slice(0, 7), '--quiet']));
    // An acknowledgement reads a run's verdict (from its manifest): no key either (run 1 is not suspect: refused, after the sync).
    const ack = await cli('ack.db', ['runs', 'ack', '1']);
    expect([ack.code, ack.stderr]).toEqual([ExitCode.usage, expect.stringMatching(/is not suspect; there is nothing to acknowledge/)]);
    expect(await info('ack.db')).toMatchObject({ scope: [], scopeOnDemand: true, runs: 2, versions: 0 });
    const id = runs[1]!.id as string;
    const shown = ok(await cli('runs.db', ['runs', 'show', id]));
    expect(shown.stdout).toMatch(new RegExp(`^versions +not known here: this catalog holds no key \\(on demand\\); \`lakeguard diff 1 2 --bucket B --prefix P --details\` imports and lists what it changed under a prefix P; \`lakeguard runs show ${id} --versions\` imports the whole repository$`, 'm'));
    // Added in place (nothing emptied), answered as a whole catalog answers.
    await sameAsWhole('runs.db', ['diff', '1', '2', '--bucket', 'lake', '--prefix', 'in/', '--details'], 'change');
    expect(await info('runs.db')).toMatchObject({ scope: [{ bucket: 'lake', prefix: 'in/' }], scopeOnDemand: true, runs: 2, versions: 3 });
    // A listing of one run's versions: the whole repository.
    // In row order: the backups' catalog has them in the order the run finished them, a synced one in key order.
    const byKey = (r: CliResult) => messagesOf(r, 'version').sort((a, b) => String(a.key).localeCompare(String(b.key)));
    const versions = byKey(ok(await cli('runs.db', ['runs', 'show', id, '--versions', '--json'])));
    expect(versions).toEqual(byKey(ok(await cli('catalog.db', ['runs', 'show', id, '--versions', '--json']))));
    expect(versions.length).toBeGreaterThan(0);
    expect(await info('runs.db')).toMatchObject({ holds: 'whole', scopeOnDemand: false, versions: 6 });
  });

  it('a whole-repository command whose file another process scopes between its check and its sync: made whole, or refused', async () => {
    // The other process acts in scopeBeforeSync: after the command's check, before its sync.
    const open = (catalog: string, onDemand: boolean) => {
      const opts = { policy, catalog: join(dir.path, catalog) };
      return openWithPolicy(opts, resolvePolicy(opts), 'verify', {
        reporter: new Reporter({ quiet: true }),
        wholeCatalog: true,
        scopeBeforeSync: async ({ catalog: c }) => {
          setCatalogScope(c, [{ bucket: 'lake', prefix: 'in/' }], onDemand);
          return undefined;
        },
      });
    };
    // A fresh host's `ls` (on demand): this command's sync makes the file whole.
    const opened = await open('race-lazy.db', true);
    expect(opened.catalog.stats().versions).toBe(6);
    opened.close();
    expect(await info('race-lazy.db')).toMatchObject({ holds: 'whole', scope: null });
    // `catalog sync --prefix` (an operator's choice): left as it is, and the command refused.
    const refused = await open('race-pinned.db', false).then(
      (o) => (o.close(), null),
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(UsageError);
    expect((refused as UsageError).message).toMatch(/^verify needs every version of the repository; this catalog holds only s3:\/\/lake\/in\/ \(scoped\)/);
    expect(await info('race-pinned.db')).toMatchObject({ scope: [{ bucket: 'lake', prefix: 'in/' }], scopeOnDemand: false });
  });

  it('a command that cannot name its keys, on a fresh file another process scopes on demand before its sync: made whole', async () => {
    // `restore` of the latest run's group selects null: decided by the sync from the file as it
    // is then (on demand), not as the command found it (fresh, which alone would sync whole).
    const opts = { policy, catalog: join(dir.path, 'race-unnamed.db') };
    const opened = await openWithPolicy(opts, resolvePolicy(opts), 'restore', {
      reporter: new Reporter({ quiet: true }),
      selects: () => null,
      scopeBeforeSync: async ({ catalog: c }) => {
        setCatalogScope(c, [{ bucket: 'lake', prefix: 'in/' }], true);
        return undefined;
      },
    });
    expect(opened.catalog.stats().versions).toBe(6);
    opened.close();
    expect(await info('race-unnamed.db')).toMatchObject({ holds: 'whole', scope: null, scopeOnDemand: false });
  });

  it('says why it cannot become whole while another process has it open, and changes nothing', async () => {
    ok(await cli('busy.db', ['ls', 's3://lake/in/', '--quiet']));
    const path = join(dir.path, 'busy.db');
    const file = new (sqliteDatabase())(path, { readonly: true });
    const id = file.prepare("SELECT value FROM catalog_info WHERE name = 'repository'").pluck().get() as string;
    file.close();
    // A `serve` on the same file: another connection, open.
    const reader = Catalog.open(path, id);
    try {
      const r = await cli('busy.db', ['verify']);
      expect(r.code).toBe(ExitCode.error);
      expect(r.stderr).toBe(
        `lakeguard: catalog ${path} holds only s3://lake/in/ (on demand) and this command needs the whole repository, which empties the catalog before importing it; another lakeguard process has it open\n` +
          '  hint: let that process finish (or stop it: a `serve`, a restore), then run this command again; or give this command a catalog of its own (--catalog FILE)\n',
      );
      // Adding a prefix does not empty it: it goes on.
      ok(await cli('busy.db', ['ls', 's3://lake/out/', '--quiet']));
    } finally {
      reader.close();
    }
    expect(await info('busy.db')).toMatchObject({ scope: [{ bucket: 'lake', prefix: 'in/' }, { bucket: 'lake', prefix: 'out/' }], scopeOnDemand: true, versions: 5 });
    ok(await cli('busy.db', ['verify', '--quiet']));
    expect(await info('busy.db')).toMatchObject({ holds: 'whole', versions: 6 });
  });

  it('leaves a catalog `catalog sync --prefix` scoped as it is, and a fresh one whole for commands that do not say what they read', async () => {
    ok(await cli('pinned.db', ['catalog', 'sync', '--prefix', 's3://lake/in/', '--quiet']));
    expect(await info('pinned.db')).toMatchObject({ scope: [{ bucket: 'lake', prefix: 'in/' }], scopeOnDemand: false });
    const r = await cli('pinned.db', ['ls', 's3://lake/out/']);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toMatch(/reaches outside the catalog's scope: this catalog holds only s3:\/\/lake\/in\/ \(scoped\)\. Narrow the selection to that, or run `lakeguard catalog sync --prefix s3:\/\/lake\/out\/`/);
    // A listing of a run's failures cannot say its keys before the sync.
    ok(await cli('failures.db', ['runs', 'show', '1', '--failures', '--quiet']));
    expect(await info('failures.db')).toMatchObject({ holds: 'whole', scope: null, versions: 6 });
  });
});
