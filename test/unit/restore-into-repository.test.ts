// A restore or drill target that overlaps the repository is refused (exit 2) before anything
// is written: restored keys would land among the repository's objects (a source key `config`
// on its config), and --delete-extra would delete its packs, index files and manifests.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refuseTargetOverlappingRepository } from '../../src/commands/repository-overlap.js';
import type { Policy } from '../../src/policy/types.js';
import { runCli } from '../helpers/cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

/** Every file under `root` with its bytes, to show the repository untouched. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.set(join(e.parentPath, e.name), readFileSync(join(e.parentPath, e.name)).toString('hex'));
  }
  return out;
}

describe('restore into the repository', () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const cli = (args: string[]) => runCli(['--policy', policy, ...args], { LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') });

  beforeAll(async () => {
    dir = tempDir('restore-into-repo');
    // A lake whose keys are named like repository objects.
    writeTree(join(dir.path, 'lake'), { config: 'not a config\n', 'keys/k': 'not a key\n', 'data/a.txt': 'a\n' });
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: g\n    sources:\n      - path: ./lake\n');
    expect((await cli(['init'])).code).toBe(0);
    const b = await cli(['backup']);
    expect(b.code, b.stderr).toBe(0);
  });

  afterAll(() => dir.cleanup());

  it('--to-dir the repository, inside it or above it is refused (exit 2) and the repository is unchanged', async () => {
    const repo = join(dir.path, 'repo');
    const before = snapshot(repo);
    for (const target of [repo, dir.path]) {
      const r = await cli(['restore', '--to-dir', target, '--delete-extra', '--json']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      const err = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
      expect(err).toMatchObject({ message_type: 'exit_error', code: 2 });
      expect(err.message).toContain('overlaps the repository');
      expect(err.hint).toContain('outside the repository');
    }
    const drill = await cli(['drill', '--to-dir', repo]);
    expect(drill.code, drill.stderr).toBe(2);
    expect(snapshot(repo)).toEqual(before);
    // Beside the repository is fine.
    const ok = await cli(['restore', '--to-dir', join(dir.path, 'out')]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(join(dir.path, 'out', 'config'), 'utf8')).toBe('not a config\n');
  });

  it('--to s3:// overlaps when bucket and endpoint are the repository\'s and one prefix holds the other', () => {
    const policyAt = (url: string, endpoint?: string) => ({ repository: { url, ...(endpoint === undefined ? {} : { endpoint }) } }) as unknown as Policy;
    const refused = (p: Policy, url: string, endpoint?: string) => {
      try {
        refuseTargetOverlappingRepository(p, { url, endpoint }, '--to');
        return false;
      } catch (err) {
        expect((err as { exitCode?: number }).exitCode).toBe(2);
        return true;
      }
    };
    const aws = policyAt('s3://backups/lg');
    expect(refused(aws, 's3://backups/lg/')).toBe(true);
    expect(refused(aws, 's3://backups/lg/restore/')).toBe(true);
    expect(refused(aws, 's3://backups/')).toBe(true);
    expect(refused(aws, 's3://backups/lg2/')).toBe(false);
    expect(refused(aws, 's3://backups/other/')).toBe(false);
    expect(refused(aws, 's3://restores/lg/')).toBe(false);
    expect(refused(policyAt('s3://backups'), 's3://backups/anything/')).toBe(true);
    const local = policyAt('s3://backups/lg', 'http://127.0.0.1:7480');
    expect(refused(local, 's3://backups/lg/x/', 'http://127.0.0.1:7480/')).toBe(true);
    expect(refused(local, 's3://backups/lg/x/', 'http://10.0.0.9:7480')).toBe(false);
  });
});
