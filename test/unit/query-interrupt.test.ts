// Ctrl-C (or SIGTERM) during a query's first sync on a fresh host stops it at once (exit 130),
// as it stops a backup: before, queries and restore did not hand the signal to their sync, so
// the first interrupt was swallowed and a long sync went on. The catalog stays usable.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli.js';
import { ExitCode } from '../../src/errors.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import type { GetOptions, GetResult, ObjectStore } from '../../src/storage/types.js';
import { inProcessCli } from '../helpers/in-process-cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

/** The repository as seen by a host whose operator presses Ctrl-C when the sync reads its first manifest. */
class InterruptAtFirstManifest extends StoreDecorator {
  gets = 0;
  override get(key: string, opts?: GetOptions): Promise<GetResult> {
    if (key.startsWith('runs/') && this.gets++ === 0) process.emit('SIGINT');
    return super.get(key, opts);
  }
}

describe('a query interrupted during its sync', () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const env = (cache: string) => ({ LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_CACHE_DIR: join(dir.path, cache) });

  beforeAll(async () => {
    dir = tempDir('query-interrupt');
    writeTree(join(dir.path, 'lake'), { 'a.txt': 'one\n', 'b/c.txt': 'two\n' });
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: g\n    sources:\n      - path: ./lake\n');
    expect((await inProcessCli(['--policy', policy, 'init'], env('a'))).code).toBe(0);
    expect((await inProcessCli(['--policy', policy, 'backup'], env('a'))).code).toBe(0);
  });
  afterAll(() => dir.cleanup());

  const run = async (argv: string[], cache: string, wrap?: (s: ObjectStore) => ObjectStore): Promise<{ code: number; stderr: string }> => {
    const saved = { env: { ...process.env }, out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
    let stderr = '';
    Object.assign(process.env, env(cache));
    process.stdout.write = () => true;
    process.stderr.write = (chunk: string | Uint8Array) => ((stderr += String(chunk)), true);
    try {
      return { code: await main(['node', 'lakeguard', '--policy', policy, ...argv], wrap === undefined ? {} : { wrapStore: wrap }), stderr };
    } finally {
      process.stdout.write = saved.out;
      process.stderr.write = saved.err;
      process.env = saved.env;
    }
  };

  it('ls, runs, find, diff, versions, calendar, cost and restore stop with exit 130, and answer when run again', async () => {
    const commands: [string, string[]][] = [
      ['ls', ['ls', 's3://lake/']],
      ['runs', ['runs']],
      ['find', ['find', '*.txt']],
      ['diff', ['diff', '2020-01-01', 'now']],
      ['versions', ['versions', 's3://lake/a.txt']],
      ['calendar', ['calendar']],
      ['cost', ['cost']],
      ['restore', ['restore', '--to-dir', join(dir.path, 'out')]],
    ];
    for (const [name, argv] of commands) {
      const stopped = await run(argv, `fresh-${name}`, (s) => new InterruptAtFirstManifest(s));
      expect(stopped.code, `${name}: ${stopped.stderr}`).toBe(ExitCode.interrupted);
      const again = await run(argv, `fresh-${name}`);
      expect(again.code, `${name}: ${again.stderr}`).toBe(ExitCode.ok);
    }
  });
});
