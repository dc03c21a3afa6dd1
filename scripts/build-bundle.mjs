#!/usr/bin/env node
// The second step of `npm run build` (after tsc): bundles lakeguard's own modules in dist/ into
// dist/bundle/, which bin/lakeguard runs. Start-up CPU: node's ESM loader resolves, reads and
// links each module file on its own, and a command loaded ~150 of lakeguard's files; the bundle
// is an entry chunk (dist/bundle/cli.js) plus the chunks the command's own module needs
// (esbuild code splitting, one split point per `import()` of src/cli.ts). Measured in
// bench/README.md ("Start-up"): 10-25 % less CPU per command.
//
// Only lakeguard's modules are bundled: packages stay in node_modules and load as they did
// (requireCjs, import), so the AWS SDK, commander, yaml and the native addons (better-sqlite3,
// zstd-napi) are the same files as without the bundle. The encode pool's worker stays
// dist/repository/encode-worker.js. The source maps chain through tsc's to src/ (node
// --enable-source-maps, or LAKEGUARD_NODE_FLAGS=--enable-source-maps, prints src/ lines).
//
// Two modules are put in place of others, as scripts/build-binary.mjs does: dist/version.js
// (reads ../package.json, relative to its file) by the literal version, and
// dist/repository/encode-worker-path.js by one that finds the worker from dist/bundle/.
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const out = join(dist, 'bundle');

if (!existsSync(join(dist, 'cli.js'))) {
  process.stderr.write('build-bundle: dist/cli.js is missing: run tsc first (`npm run build` does both)\n');
  process.exit(1);
}

const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
/** @param {string} path */
const exactly = (path) => new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

/** @type {import('esbuild').Plugin} */
const bundleModules = {
  name: 'lakeguard-bundle',
  setup(b) {
    b.onLoad({ filter: exactly(join(dist, 'version.js')) }, () => ({ contents: `export const version = ${JSON.stringify(version)};\n`, loader: 'js' }));
    // The worker script is dist/repository/encode-worker.js, one directory up from the chunks.
    b.onLoad({ filter: exactly(join(dist, 'repository', 'encode-worker-path.js')) }, () => ({
      contents: `import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
export function encodeWorkerScript() {
  const url = new URL('../repository/encode-worker.js', import.meta.url);
  return existsSync(fileURLToPath(url)) ? url : null;
}
`,
      loader: 'js',
    }));
  },
};

/**
 * Packages stay in node_modules, except those named here: pure JavaScript, loaded by most
 * commands, and many files each (yaml: ~50 CommonJS modules, each resolved on disk by node's
 * CommonJS loader at every start).
 */
const BUNDLED_PACKAGES = new Set(process.env.LG_BUNDLE_PKGS === undefined ? ['yaml'] : process.env.LG_BUNDLE_PKGS.split(',').filter(Boolean));
/** @type {import('esbuild').Plugin} */
const externalPackages = {
  name: 'lakeguard-external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:')) return { path: args.path, external: true };
      const name = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
      // Inside a bundled package, its own dependencies are bundled with it.
      if (BUNDLED_PACKAGES.has(name ?? '') || /[\\/]node_modules[\\/]/.test(args.importer)) return undefined;
      return { path: args.path, external: true };
    });
  },
};

// Built beside dist/bundle/ and swapped in by two renames: a lakeguard starting meanwhile (another
// test run's build, a second terminal) finds the old bundle or the new one, never half of one.
const next = `${out}.${process.pid}.new`;
const old = `${out}.${process.pid}.old`;
rmSync(next, { recursive: true, force: true });
const result = await build({
  entryPoints: { cli: join(dist, 'cli.js'), 'heap-pacer': join(dist, 'util', 'heap-pacer.js') },
  outdir: next,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  plugins: [bundleModules, externalPackages],
  // A bundled CommonJS package's require() of a node built-in ('process'), in an ES module.
  banner: { js: "import { createRequire as __lakeguardCreateRequire } from 'node:module'; const require = __lakeguardCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
// A warning here is a bundle that may break at run time (e.g. an import esbuild cannot follow).
if (result.errors.length > 0 || result.warnings.length > 0) {
  rmSync(next, { recursive: true, force: true });
  process.stderr.write('build-bundle: the bundle has errors or warnings (above)\n');
  process.exit(1);
}
if (existsSync(out)) renameSync(out, old);
renameSync(next, out);
rmSync(old, { recursive: true, force: true });
