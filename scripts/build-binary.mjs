#!/usr/bin/env node
// `npm run build:binary`: builds dist-bin/lakeguard, lakeguard as one executable file for Linux
// x64 that needs no Node.js and no node_modules (Node's single executable applications).
//
//   1. esbuild bundles dist/binary.js (src/binary.ts: bin/lakeguard's job) and everything it
//      imports, the AWS SDK included, into one CommonJS script: SEA runs one CommonJS script.
//      Four modules are put in place of others: dist/util/cjs.js (createRequire, which finds
//      packages in node_modules at run time) by one whose require calls the bundler sees;
//      dist/version.js (reads package.json) by the literal version;
//      dist/repository/encode-worker-path.js by null (no worker file: encoding in-thread); the two native
//      addons' loaders (better-sqlite3's `bindings`, zstd-napi/binding.js) by
//      loadEmbeddedAddon (src/util/native-addon.ts).
//   2. `node --experimental-sea-config` makes the preparation blob: the script and the two
//      `.node` files as assets.
//   3. postject injects the blob into a copy of this node binary, flipping the sentinel fuse.
//   4. The new binary must print this package's version and create a repository (both addons
//      loaded), or the build fails.
//
// At run time the binary writes each addon once to <cache dir>/native/<sha256>/ and loads it
// from there (docs/development.md, "The single-file binary").
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const out = join(root, 'dist-bin');
const work = join(out, 'build');
const binary = join(out, 'lakeguard');
/** The fuse Node's SEA support looks for in its own binary (Node's SEA documentation). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** @param {string} message */
function fail(message) {
  process.stderr.write(`build-binary: ${message}\n`);
  process.exit(1);
}

// The binary is this node binary plus the addons compiled for it by `npm ci`: both are linux-x64
// builds here, and nothing else is tested.
const platform = `${process.platform}-${process.arch}`;
if (platform !== 'linux-x64') fail(`the single-file binary is built on linux-x64 only, and this is ${platform}`);
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 12)) fail(`Node ${process.versions.node} cannot embed assets in a single executable; use Node >= 20.12`);
if (!existsSync(join(dist, 'binary.js'))) fail('dist/binary.js is missing: run `npm run build` first');

const requireHere = createRequire(join(root, 'package.json'));
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const started = Date.now();
/** @param {string} step */
const log = (step) => process.stderr.write(`build-binary: ${step} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);

/** The `.node` files the binary carries, by the name they are written under. */
const addons = [
  { name: 'better_sqlite3.node', path: join(dirname(requireHere.resolve('better-sqlite3')), '..', 'build', 'Release', 'better_sqlite3.node') },
  { name: 'zstd-napi.node', path: join(dirname(requireHere.resolve('zstd-napi/binding.js')), 'build', 'Release', 'binding.node') },
].map((addon) => {
  if (!existsSync(addon.path)) fail(`${addon.path} is missing: run \`npm ci\` (it compiles the native addons)`);
  return { ...addon, sha256: createHash('sha256').update(readFileSync(addon.path)).digest('hex') };
});

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// ---- 1. bundle ------------------------------------------------------------------------------
const { build } = await import('esbuild');
const nativeAddonModule = join(dist, 'util', 'native-addon.js');
/** @param {string} path */
const exactly = (path) => new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
/**
 * A module that loads `addon` from the binary's assets; `exports` is what it exports, where
 * `load()` returns the loaded addon.
 * @param {{ name: string, sha256: string }} addon
 * @param {string} exports
 */
const addonModule = (addon, exports) => `const { getRawAsset } = require('node:sea');
const { loadEmbeddedAddon } = require(${JSON.stringify(nativeAddonModule)});
const load = () => loadEmbeddedAddon({ name: ${JSON.stringify(addon.name)}, sha256: ${JSON.stringify(addon.sha256)}, bytes: () => getRawAsset(${JSON.stringify(addon.name)}) });
module.exports = ${exports};
`;
const [sqliteAddon, zstdAddon] = addons;

/** @type {import('esbuild').Plugin} */
const binaryModules = {
  name: 'lakeguard-binary',
  setup(b) {
    b.onLoad({ filter: exactly(join(dist, 'util', 'cjs.js')) }, () => ({ contents: cjsShim(), loader: 'js', resolveDir: join(dist, 'util') }));
    b.onLoad({ filter: exactly(join(dist, 'version.js')) }, () => ({ contents: `export const version = ${JSON.stringify(version)};\n`, loader: 'js' }));
    // No worker script beside a single file: the encode pool stays in-thread (LAKEGUARD_THREADS).
    b.onLoad({ filter: exactly(join(dist, 'repository', 'encode-worker-path.js')) }, () => ({ contents: 'export function encodeWorkerScript() { return null; }\n', loader: 'js' }));
    // better-sqlite3 loads its addon with require('bindings')('better_sqlite3.node').
    b.onResolve({ filter: /^bindings$/ }, (args) =>
      /[\\/]better-sqlite3[\\/]/.test(args.importer) ? { path: 'bindings', namespace: 'lakeguard-addon' } : { errors: [{ text: `${args.importer} loads a native addon through 'bindings': add it to scripts/build-binary.mjs` }] },
    );
    b.onLoad({ filter: /^bindings$/, namespace: 'lakeguard-addon' }, () => ({
      contents: addonModule(
        sqliteAddon,
        `(name) => {
  if (name !== ${JSON.stringify(sqliteAddon.name)}) throw new Error('lakeguard binary: no embedded addon ' + name);
  return load();
}`,
      ),
      loader: 'js',
      resolveDir: dist,
    }));
    // zstd-napi's binding.js requires build/<configuration>/binding.node by a computed name.
    b.onLoad({ filter: /[\\/]zstd-napi[\\/]binding\.js$/ }, () => ({ contents: addonModule(zstdAddon, 'load()'), loader: 'js', resolveDir: dist }));
  },
};

/**
 * dist/util/cjs.js for the bundle: requireCjs(id) with one literal require per package that
 * dist/ loads through it, so the bundler includes each one and it still runs on first use (the
 * AWS SDK only when a command needs it).
 */
function cjsShim() {
  const ids = new Set();
  for (const file of jsFiles(dist)) {
    // dist/bundle/ (scripts/build-bundle.mjs) holds the same modules again, for bin/lakeguard.
    if (file === join(dist, 'util', 'cjs.js') || file.startsWith(join(dist, 'bundle'))) continue;
    const text = readFileSync(file, 'utf8');
    for (const call of text.matchAll(/\brequireCjs\(/g)) {
      const literal = /^requireCjs\((['"])([^'"]+)\1\)/.exec(text.slice(call.index));
      if (literal === null) fail(`${relative(root, file)}: requireCjs( without a string literal; the bundler cannot see what it loads`);
      else ids.add(literal[2]);
    }
  }
  const table = [...ids].sort().map((id) => `  ${JSON.stringify(id)}: () => require(${JSON.stringify(id)}),`).join('\n');
  return `const modules = {\n${table}\n};
export function requireCjs(id) {
  const load = modules[id];
  if (load === undefined) throw new Error('lakeguard binary: ' + id + ' was not bundled (scripts/build-binary.mjs)');
  return load();
}\n`;
}

/**
 * @param {string} dir
 * @returns {string[]}
 */
function jsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return jsFiles(path);
    return entry.name.endsWith('.js') ? [path] : [];
  });
}

const bundle = join(work, 'lakeguard.cjs');
const bundled = await build({
  entryPoints: [join(dist, 'binary.js')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: `node${process.versions.node}`,
  plugins: [binaryModules],
  logLevel: 'warning',
});
// A warning here is a binary that breaks at run time: `import.meta` is empty in the bundle, a
// require the bundler cannot follow finds no node_modules beside the binary.
if (bundled.errors.length > 0 || bundled.warnings.length > 0) fail('the bundle has errors or warnings (above): the binary would not run');
log(`bundled ${relative(root, bundle)}, ${(statSync(bundle).size / 2 ** 20).toFixed(1)} MiB`);

// ---- 2. the SEA preparation blob -----------------------------------------------------------
const blob = join(work, 'sea-prep.blob');
const config = join(work, 'sea-config.json');
writeFileSync(
  config,
  JSON.stringify(
    {
      main: bundle,
      output: blob,
      // The warning would precede every command's output; lakeguard's own tests cover the binary.
      disableExperimentalSEAWarning: true,
      // No useCodeCache: V8 rejects the cache, with a warning on stderr before every command,
      // whenever NODE_OPTIONS carries a V8 flag (--max-old-space-size, --expose-gc). It saves
      // ~20 % of start-up CPU; output that changes with the environment costs more.
      assets: Object.fromEntries(addons.map((addon) => [addon.name, addon.path])),
    },
    null,
    2,
  ),
);
const prepared = spawnSync(process.execPath, ['--experimental-sea-config', config], { cwd: work, encoding: 'utf8' });
if (prepared.status !== 0) fail(`node --experimental-sea-config failed: ${(prepared.stderr || prepared.stdout).trim()}`);
log(`prepared ${relative(root, blob)}`);

// ---- 3. inject it into a copy of node -------------------------------------------------------
const nodeBinary = readFileSync(process.execPath);
if (!nodeBinary.includes(SEA_FUSE)) fail(`${process.execPath} was built without single executable application support; use an official Node.js build`);
const temp = `${binary}.tmp`;
writeFileSync(temp, nodeBinary, { mode: 0o755 });
const { inject } = requireHere('postject');
// Its ELF library warns about each of node's .note sections it has no name for: harmless (step 4
// runs the result), and noise in every build's output.
const warn = console.warn;
console.warn = (/** @type {unknown[]} */ ...args) => {
  if (!String(args[0]).startsWith("warning: Can't find string offset for section name")) warn(...args);
};
try {
  await inject(temp, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
} finally {
  console.warn = warn;
}
chmodSync(temp, 0o755);
log('injected the blob into a copy of node');

// ---- 4. it runs -----------------------------------------------------------------------------
// init loads better-sqlite3's addon (the new catalog); zstd-napi's is loaded on the first blob
// compressed (src/repository/compress.ts), which binary.test.ts's backups cover.
const smokeEnv = { ...process.env, LAKEGUARD_CACHE_DIR: join(work, 'cache'), LAKEGUARD_PASSWORD: 'build-binary' };
/** @type {[string[], string | null][]} arguments, and the exact stdout where it matters */
const smokeRuns = [
  [['--version'], `${version}\n`],
  [['--repo', `file://${join(work, 'repository')}`, 'init', '--json'], null],
];
for (const [args, expected] of smokeRuns) {
  const smoke = spawnSync(temp, args, { encoding: 'utf8', env: smokeEnv });
  if (smoke.status !== 0 || (expected !== null && smoke.stdout !== expected)) {
    fail(`the new binary does not run: \`lakeguard ${args.join(' ')}\` exited ${smoke.status} with ${JSON.stringify((smoke.stdout + smoke.stderr).trim().slice(0, 500))}`);
  }
}
renameSync(temp, binary);
log(`built ${relative(root, binary)} (lakeguard ${version}, ${(statSync(binary).size / 2 ** 20).toFixed(1)} MiB)`);
