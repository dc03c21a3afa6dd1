import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures.js';

// The README's first command is `npm ci && npm run demo`: the demo script must keep working as
// the CLI's output evolves (it parses `runs --json`, which once changed shape under it).
const DEMO = fileURLToPath(new URL('../../scripts/demo.mjs', import.meta.url));

describe('npm run demo (scripts/demo.mjs)', () => {
  const dir = tempDir('demo');
  afterAll(() => dir.cleanup());

  it('backs up, changes, backs up again, restores both runs byte-identical and verifies', () => {
    const run = spawnSync(process.execPath, [DEMO], { env: { ...process.env, LAKEGUARD_DEMO_DIR: dir.path }, encoding: 'utf8' });
    expect(run.stderr).not.toMatch(/SyntaxError|TypeError/);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('latest run restored byte-identical to the lake now: yes');
    expect(run.stdout).toContain('first run restored byte-identical to the lake as it was: yes');
    expect(run.stdout).toMatch(/no damage found/);
    // Seven CLI processes one after another: on a loaded 2-core machine that can take a minute.
  }, 180_000);
});
