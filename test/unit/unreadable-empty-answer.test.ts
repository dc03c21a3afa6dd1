// A fresh host whose sync cannot read a run's manifest (damaged, tampered) must not answer as if
// nothing had been backed up: `restore` of that run's group fails naming the unreadable object
// (exit 1, not the exit 2 of a wrong selection), and `runs` says why it lists nothing.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

describe('an empty answer on a host whose sync could not read a manifest', () => {
  let dir: ReturnType<typeof tempDir>;
  let policy: string;
  const cli = (args: string[], cache: string) => runCli(['--policy', policy, ...args], { LAKEGUARD_PASSWORD: 'pw', LAKEGUARD_CACHE_DIR: join(dir.path, cache) });

  beforeAll(async () => {
    dir = tempDir('unreadable-empty');
    writeTree(join(dir.path, 'one'), { 'a.txt': 'one\n' });
    writeTree(join(dir.path, 'two'), { 'b.txt': 'two\n' });
    policy = join(dir.path, 'lakeguard.yaml');
    writeFileSync(policy, 'version: 1\nrepository:\n  url: file://./repo\ngroups:\n  - name: g1\n    sources:\n      - path: ./one\n  - name: g2\n    sources:\n      - path: ./two\n');
    expect((await cli(['init'], 'a')).code).toBe(0);
    const b1 = await cli(['backup', '--group', 'g1', '--json'], 'a');
    const run = b1.messages.find((m) => m.message_type === 'summary')!.runId as string;
    expect((await cli(['backup', '--group', 'g2'], 'a')).code).toBe(0);
    // g1's only run: one byte of its manifest flipped.
    const manifest = join(dir.path, 'repo', 'runs', run);
    const bytes = readFileSync(manifest);
    bytes[bytes.length - 5]! ^= 0x01;
    writeFileSync(manifest, bytes);
  });

  afterAll(() => dir.cleanup());

  it('restore fails naming the unreadable object (exit 1); runs says why it lists nothing', async () => {
    const restored = await cli(['restore', '--group', 'g1', '--to-dir', join(dir.path, 'out'), '--json'], 'fresh');
    expect(restored.code, restored.stderr).toBe(1);
    const err = JSON.parse(restored.stderr.trim().split('\n').at(-1)!);
    expect(err.message).toMatch(/^no complete run of group g1 to restore from; this command's sync could not read 1 repository object \(warned above\), and what it holds is not in the catalog$/);
    expect(err.hint).toMatch(/^run `lakeguard verify` to name every damaged object/);
    const runs = await cli(['runs', '--group', 'g1'], 'fresh');
    expect(runs.code, runs.stderr).toBe(0);
    expect(runs.stdout.trim()).toBe("no runs of group g1 in the catalog: this command's sync could not read 1 repository object (warned above), and what it holds is not in the catalog; run `lakeguard verify` to name every damaged object");
    // The group that reads well restores as usual.
    expect((await cli(['restore', '--group', 'g2', '--to-dir', join(dir.path, 'out2')], 'fresh')).code).toBe(0);
  });
});
