import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The encode pool's worker script: next to this module when it runs from dist/; run from the
 * TypeScript sources (the tests), the built one in dist/ (the tests build first, as the CLI tests
 * do). Null when neither exists: encoding stays in-thread. Its own module because the
 * single-file binary has no files and no `import.meta`: scripts/build-binary.mjs puts one that
 * answers null in its place.
 */
export function encodeWorkerScript(): URL | null {
  const here = import.meta.url;
  const url = here.endsWith('.ts') ? new URL('../../dist/repository/encode-worker.js', here) : new URL('./encode-worker.js', here);
  return url.protocol === 'file:' && existsSync(fileURLToPath(url)) ? url : null;
}
