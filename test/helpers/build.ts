// vitest globalSetup: compile src/ to dist/ once, so tests that run the real CLI
// (bin/lakeguard → dist/) never run stale code, also when vitest is started directly.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Set once dist/ is built: every project lists this setup, and one tsc run per `vitest run` is enough. */
const BUILT = Symbol.for('lakeguard.test.distBuilt');

export default function setup(): void {
  const flags = globalThis as { [BUILT]?: true };
  if (flags[BUILT]) return;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync(process.execPath, [fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
  flags[BUILT] = true;
}
