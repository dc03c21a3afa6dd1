// vitest globalSetup: compile src/ to dist/ once, so tests that run the real CLI
// (bin/lakeguard → dist/bundle/) never run stale code, also when vitest is started directly.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set once dist/ is built: every project lists this setup, and one tsc run per `vitest run` is enough. */
const BUILT = Symbol.for('lakeguard.test.distBuilt');

export default function setup(): void {
  const flags = globalThis as { [BUILT]?: true };
  if (flags[BUILT]) return;
  // `npm test` has just built dist/ in its `pretest` script (package.json): a second tsc run
  // would only repeat it. Any other start (`npx vitest run FILE`, an editor) builds here.
  const root = fileURLToPath(new URL('../..', import.meta.url));
  if (process.env.npm_lifecycle_event === 'test' && builtByPretest(root)) return;
  execFileSync(process.execPath, [fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
  // bin/lakeguard runs dist/bundle/, made from dist/ as `npm run build` makes it.
  execFileSync(process.execPath, [join(root, 'scripts', 'build-bundle.mjs')], { cwd: root, stdio: 'inherit' });
  flags[BUILT] = true;
}

function builtByPretest(root: string): boolean {
  const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts;
  return scripts?.pretest === 'npm run build';
}
