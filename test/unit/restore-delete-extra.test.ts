// `restore --in-place --delete-extra` deletes only keys the backup covers: a key outside the
// source's prefixes, or one its exclude globs leave out, was never read, so its absence from the
// restored state does not mean it did not exist then (docs/restore.md, --delete-extra).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf } from '../helpers/cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

describe('restore --delete-extra: only what the policy backs up', () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  let lake: string;
  const cli = (args: string[]) => runCli(['--policy', policy, ...args], { LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  beforeAll(async () => {
    dir = tempDir('restore-delete-extra');
    lake = join(dir.path, 'lake');
    writeTree(lake, { 'events/a.csv': 'a\n', 'events/_SUCCESS': '', 'other/x.csv': 'not backed up\n', 'top.crc': 'checksum\n' });
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(
      policy,
      'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n        prefixes: [events/]\n        exclude: ["**/_SUCCESS", "*.crc"]\n',
    );
    expect((await cli(['init'])).code).toBe(0);
    const b = await cli(['backup']);
    expect(b.code, b.stderr).toBe(0);
  });
  afterAll(() => dir.cleanup());

  it('keeps keys outside the prefixes and excluded keys; deletes a backed-up key created since', async () => {
    writeTree(lake, { 'events/new.csv': 'created after the backup\n' });
    for (const selection of [['--bucket', 'lake'], ['--group', 'local']]) {
      const dry = await cli(['restore', ...selection, '--in-place', '--delete-extra', '--dry-run', '--json']);
      expect(dry.code, dry.stderr).toBe(0);
      const deletes = dry.stdout.split('\n').filter((l) => l.includes('"action":"delete"')).map((l) => (JSON.parse(l) as { key: string }).key);
      expect(deletes, selection.join(' ')).toEqual(['events/new.csv']);
    }
    const r = await cli(['restore', '--bucket', 'lake', '--in-place', '--delete-extra', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryOf(r)).toMatchObject({ deleted: 1, failed: 0 });
    expect(existsSync(join(lake, 'events/new.csv'))).toBe(false);
    for (const kept of ['events/a.csv', 'events/_SUCCESS', 'other/x.csv', 'top.crc']) expect(existsSync(join(lake, kept)), kept).toBe(true);
  });
});
