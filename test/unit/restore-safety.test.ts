// Restores never leave the target and never guess (issue 17, part 4): links planted in the
// target, file modes, keys and scopes that are not in the backup, overwrite policies and
// dry runs, through the real CLI against a file:// repository.
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryOf } from '../helpers/cli.js';
import { hashTree, tempDir, writeTree } from '../helpers/fixtures.js';

describe('restore into a directory: safety and explicit answers', () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  let lake: string;
  const cli = (args: string[]) =>
    runCli(['--policy', policy, ...args], { LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  beforeAll(async () => {
    dir = tempDir('restore-safety');
    lake = join(dir.path, 'lake');
    writeTree(lake, {
      'a/x.txt': 'x in a\n',
      'b/c/y.txt': 'y in b/c\n',
      'z.txt': 'z at the top\n',
      'ok/1.txt': 'one\n',
      'ok/2.txt': 'two\n',
      'modes/private': 'secret\n',
      'modes/script.sh': '#!/bin/sh\n',
      'modes/wide': 'world-writable, setuid\n',
    });
    chmodSync(join(lake, 'modes/private'), 0o600);
    chmodSync(join(lake, 'modes/script.sh'), 0o750);
    chmodSync(join(lake, 'modes/wide'), 0o4777);
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: local\n    sources:\n      - path: ./lake\n');
    expect((await cli(['init'])).code).toBe(0);
    const b = await cli(['backup']);
    expect(b.code, b.stderr).toBe(0);
  });

  afterAll(() => dir.cleanup());

  it('never follows a symbolic link planted in --to-dir: those objects fail by name, exit 3, nothing written outside', async () => {
    const target = join(dir.path, 'linked');
    const outside = join(dir.path, 'outside');
    mkdirSync(join(target, 'b'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(outside, 'victim.txt'), 'must stay\n');
    symlinkSync(outside, join(target, 'a')); // a -> /elsewhere
    symlinkSync('../../outside', join(target, 'b', 'c')); // b/c -> ../.. (out of the target)
    symlinkSync(join(outside, 'victim.txt'), join(target, 'z.txt')); // the file itself is a link
    const r = await cli(['restore', '--to-dir', target, '--json']);
    expect(r.code, r.stderr).toBe(3);
    const errors = r.stderr.trim().split('\n').map((l) => JSON.parse(l));
    expect(errors.filter((e) => e.message_type === 'error').map((e) => [e.key, e.code]).sort()).toEqual([
      ['a/x.txt', 'SymlinkInPath'],
      ['b/c/y.txt', 'SymlinkInPath'],
    ]);
    expect(r.stderr).toMatch(/a is a symbolic link/);
    expect(r.stderr).toMatch(/b\/c is a symbolic link/);
    expect(summaryOf(r)).toMatchObject({ objects: 8, restored: 6, failed: 2 });
    // Nothing appeared outside; the linked file was replaced by a real file, its target untouched.
    expect(readdirSync(outside)).toEqual(['victim.txt']);
    expect(readFileSync(join(outside, 'victim.txt'), 'utf8')).toBe('must stay\n');
    expect(lstatSync(join(target, 'z.txt')).isFile()).toBe(true);
    expect(readFileSync(join(target, 'z.txt'), 'utf8')).toBe('z at the top\n');
  });

  it('gives restored files the mode recorded from a directory source, capped at 0755 (no setuid, no group/other write)', async () => {
    const target = join(dir.path, 'modes-out');
    const r = await cli(['restore', '--to-dir', target, '--bucket', 'lake', '--prefix', 'modes/']);
    expect(r.code, r.stderr).toBe(0);
    const mode = (f: string) => statSync(join(target, 'modes', f)).mode & 0o7777;
    expect(mode('private')).toBe(0o600);
    expect(mode('script.sh')).toBe(0o750);
    expect(mode('wide')).toBe(0o755);
  });

  it('names each --keys-from key that is not in the backup and exits 3', async () => {
    const list = join(dir.path, 'keys.txt');
    writeFileSync(list, 's3://lake/ok/1.txt\ns3://lake/no/such.txt\ns3://nolake/ok/2.txt\n');
    const target = join(dir.path, 'some');
    const r = await cli(['restore', '--keys-from', list, '--to-dir', target]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/failed: lake\/no\/such\.txt: not in the backup/);
    expect(r.stderr).toMatch(/failed: nolake\/ok\/2\.txt: not in the backup: no bucket or source "nolake"/);
    expect(r.stdout).toMatch(/restored 1 of 1 object /);
    expect(r.stdout).toMatch(/2 named keys are not in the backup/);
    // Two buckets named: each under its own directory, as always.
    expect(readdirSync(join(target, 'lake', 'ok'))).toEqual(['1.txt']);
    const json = await cli(['restore', '--keys-from', list, '--to-dir', target, '--json']);
    expect(json.code).toBe(3);
    expect(summaryOf(json)).toMatchObject({ missing: 2, failed: 0 });
  });

  it('an unknown --bucket, --group or --prefix, or an empty instant, exits 2 with a hint and writes nothing', async () => {
    const target = join(dir.path, 'never');
    const bucket = await cli(['restore', '--to-dir', target, '--bucket', 'laek']);
    expect(bucket.code).toBe(2);
    expect(bucket.stderr).toMatch(/no bucket or source named "laek" in the catalog\n {2}hint: known: lake/);
    const group = await cli(['restore', '--to-dir', target, '--group', 'lcoal', '--at', 'now']);
    expect(group.code).toBe(2);
    expect(group.stderr).toMatch(/no group named "lcoal".*\n {2}hint: groups: local/);
    const prefix = await cli(['restore', '--to-dir', target, '--bucket', 'lake', '--prefix', 'nope/']);
    expect(prefix.code).toBe(2);
    expect(prefix.stderr).toMatch(/nothing to restore: the catalog has no key under lake\/nope\//);
    expect(prefix.stderr).toMatch(/hint: lake\/ holds: a\/, b\/, modes\/, ok\/, z\.txt\n/);
    const early = await cli(['restore', '--to-dir', target, '--at', '2000-01-01']);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/nothing to restore: lake\/ held no objects in the state at 2000-01-01T/);
    expect(early.stderr).toMatch(/hint: run \d{8}T\d{6}Z-[0-9a-f]{6} \(20\d\d-.*\) after: pick it with --run or --at/);
    expect(existsSync(target)).toBe(false);
  });

  it('a --to-dir no write can succeed in is refused in one line (exit 2) before any object is read', async () => {
    const file = join(dir.path, 'a-file');
    writeFileSync(file, 'not a directory');
    const under = await cli(['restore', '--to-dir', join(file, 'x')]);
    expect(under.code).toBe(2);
    expect(under.stderr).toBe(`lakeguard: --to-dir ${join(file, 'x')}: ${file} is not a directory\n  hint: choose a directory you can write in (it is created when missing)\n`);
    const itself = await cli(['restore', '--to-dir', file, '--json']);
    expect(itself.code).toBe(2);
    expect(itself.stderr).toMatch(/--to-dir .*a-file: exists and is not a directory/);
    expect(itself.stdout).not.toMatch(/"message_type":"(restored|failed)"/);
    expect(readFileSync(file, 'utf8')).toBe('not a directory');
  });

  it('--overwrite if-changed (default) rewrites only changed files; never skips existing ones; always writes all', async () => {
    const target = join(dir.path, 'again');
    const first = await cli(['restore', '--to-dir', target, '--json']);
    expect(summaryOf(first)).toMatchObject({ restored: 8, skippedIdentical: 0, requests: { put: 8 } });
    // Same size, other content (mtime kept, so only the content check can tell); another file shortened.
    const changed = join(target, 'ok/1.txt');
    const { mtime } = statSync(changed);
    writeFileSync(changed, 'ONE\n');
    utimesSync(changed, mtime, mtime);
    writeFileSync(join(target, 'ok/2.txt'), 't\n');
    const second = await cli(['restore', '--to-dir', target, '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(summaryOf(second)).toMatchObject({ objects: 8, restored: 2, replaced: 2, skippedIdentical: 6, skippedExisting: 0, requests: { put: 2 } });
    expect(hashTree(target)).toEqual(hashTree(lake));

    writeFileSync(changed, 'local edit\n');
    const dry = await cli(['restore', '--to-dir', target, '--dry-run']);
    expect(dry.stdout).toMatch(/^would replace +lake\/ok\/1\.txt \(4 B\)$/m);
    expect(dry.stdout).toMatch(/^  would replace 1 of them: the target held that key with other content \(--overwrite never keeps it\)$/m);
    const never = await cli(['restore', '--to-dir', target, '--overwrite', 'never', '--json']);
    expect(summaryOf(never)).toMatchObject({ restored: 0, skippedExisting: 8, requests: { put: 0 } });
    expect(readFileSync(changed, 'utf8')).toBe('local edit\n');
    const always = await cli(['restore', '--to-dir', target, '--overwrite', 'always', '--json']);
    expect(summaryOf(always)).toMatchObject({ restored: 8, skippedIdentical: 0, requests: { put: 8 } });
    expect(hashTree(target)).toEqual(hashTree(lake));
    const bad = await cli(['restore', '--to-dir', target, '--overwrite', 'sometimes']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--overwrite "sometimes": expected always, if-changed, never/);
  });

  it('--dry-run lists each key with its action, counts and bytes, and writes or deletes nothing', async () => {
    const target = join(dir.path, 'dry');
    const fresh = await cli(['restore', '--to-dir', target, '--dry-run']);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stdout).toMatch(/would write +lake\/ok\/1\.txt \(4 B\)/);
    expect(fresh.stdout).toMatch(/dry run: would restore 8 of 8 objects \(\d+ B\) .*nothing was written/);
    // A directory that does not exist yet is made by the restore: no warning of a refusal to come.
    expect(fresh.stderr).not.toMatch(/does not exist/);
    expect(existsSync(target)).toBe(false);

    writeTree(target, { 'ok/1.txt': 'one\n', 'ok/2.txt': 'TWO\n', 'extra.txt': 'not in the backup\n' });
    const before = hashTree(target);
    const r = await cli(['restore', '--to-dir', target, '--dry-run', '--delete-extra', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const actions = r.messages.filter((m) => m.message_type === 'restore_action').map((m) => [m.key, m.action]);
    expect(Object.fromEntries(actions)).toEqual({
      'a/x.txt': 'write',
      'b/c/y.txt': 'write',
      'z.txt': 'write',
      'ok/1.txt': 'skip-identical',
      'ok/2.txt': 'write',
      'modes/private': 'write',
      'modes/script.sh': 'write',
      'modes/wide': 'write',
      'extra.txt': 'delete',
    });
    expect(summaryOf(r)).toMatchObject({ dryRun: true, objects: 8, restored: 7, skippedIdentical: 1, bytesSkipped: 4, deleted: 1, requests: { get: 0, put: 0 } });
    expect(hashTree(target)).toEqual(before);
  });

  it('--to-profile and --to-role-arn name who writes an S3 target: refused with --to-dir, and a malformed ARN (exit 2)', async () => {
    const target = join(dir.path, 'profiled');
    const withDir = await cli(['restore', '--to-dir', target, '--to-profile', 'restore']);
    expect(withDir.code).toBe(2);
    expect(withDir.stderr).toContain('--to-profile and --to-role-arn name who writes an S3 target: use them with --to or --in-place, not --to-dir');
    const badArn = await cli(['restore', '--to', 's3://restore-target/', '--to-role-arn', 'arn:aws:iam::1:user/bob']);
    expect(badArn.code).toBe(2);
    expect(badArn.stderr).toContain('--to-role-arn arn:aws:iam::1:user/bob: not a role ARN');
    expect(existsSync(target)).toBe(false);
  });
});
