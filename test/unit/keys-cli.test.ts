// `lakeguard key list | add | remove | passwd` end to end on a directory repository: the
// password sources of a new password, --json, exit codes 0, 2 and 12, and opening with each key.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsStore } from '../../src/storage/fs-store.js';
import { runCli } from '../helpers/cli.js';
import { TEST_KDF, initRepo, tempDir } from '../helpers/fixtures.js';

describe('lakeguard key', () => {
  let dir: ReturnType<typeof tempDir>;
  let repoDir: string;
  beforeEach(() => {
    dir = tempDir('keys-cli');
    repoDir = join(dir.path, 'repo');
  });
  afterEach(() => dir.cleanup());

  const key = (password: string, args: string[], extra: Record<string, string> = {}) =>
    runCli(['--repo', `file://${repoDir}`, '--json', 'key', ...args], {
      LAKEGUARD_PASSWORD: password,
      LAKEGUARD_CACHE_DIR: join(dir.path, 'cache'),
      LAKEGUARD_NEW_PASSWORD: undefined,
      ...extra,
    });
  const summary = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;

  // Each CLI process costs a second or more on a busy 2-core box (and a key file's scrypt): a
  // generous timeout, as for the other CLI tests, so that load never fails them.
  it('adds and lists passwords; refuses the key in use, and a missing new password (12)', async () => {
    await initRepo(new FsStore({ root: repoDir, fsync: false }), { password: 'first' });

    const added = await key('first', ['add'], { LAKEGUARD_NEW_PASSWORD: 'second' });
    expect(added.code, added.stderr).toBe(0);
    const second = summary(added.stdout).added as string;
    expect(readdirSync(join(repoDir, 'keys'))).toEqual([second]);

    const listed = await key('second', ['list']);
    expect(listed.code, listed.stderr).toBe(0);
    const keys = summary(listed.stdout).keys as { id: string; host: string | null; current: boolean }[];
    expect(keys.map((k) => [k.id, k.current])).toEqual([['config', false], [second, true]]);
    expect(keys[1]!.host).toBeTruthy();

    const inUse = await key('first', ['remove', 'config']);
    expect(inUse.code).toBe(2);
    expect(inUse.stderr).toContain('key config is the password this command opened the repository with');

    const noNew = await key('first', ['add']);
    expect(noNew.code).toBe(12);
    expect(noNew.stderr).toMatch(/no new password: give --new-password-file, set LAKEGUARD_NEW_PASSWORD.*"hint":"e\.g\. `lakeguard key add --new-password-file/);
    // The hint names the command that was run.
    expect((await key('first', ['passwd'])).stderr).toMatch(/"hint":"e\.g\. `lakeguard key passwd --new-password-file/);
  }, 120_000);

  it('passwd replaces the key in use; config loses its password; the last key stays', async () => {
    const repo = await initRepo(new FsStore({ root: repoDir, fsync: false }), { password: 'first' });
    const second = await repo.addPassword('second', { ...TEST_KDF });

    // passwd from the key file `second`: a new key file, `second` gone; `first` (config) untouched.
    writeFileSync(join(dir.path, 'third'), 'third\n');
    const changed = await key('second', ['passwd', '--new-password-file', join(dir.path, 'third')]);
    expect(changed.code, changed.stderr).toBe(0);
    expect(summary(changed.stdout)).toMatchObject({ removed: second });
    expect((await key('second', ['list'])).code).toBe(12);

    const removed = await key('third', ['remove', 'config']);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await key('first', ['list'])).code).toBe(12);

    const last = await key('third', ['remove', '--force', readdirSync(join(repoDir, 'keys'))[0]!.slice(0, 8)]);
    expect(last.code).toBe(2);
    expect(last.stderr).toMatch(/is the last password of the repository/);
  }, 120_000);
});
