/**
 * Entry point of the single-file executable: scripts/build-binary.mjs bundles it with everything
 * it imports into one CommonJS script that Node's single executable application support runs.
 * It does what bin/lakeguard does for the npm install, but for the shell line: the binary is
 * started directly, so glibc's malloc defaults and --expose-gc (heap pacer) are not set for it
 * (docs/development.md, "The single-file binary"). The npm install never loads this module.
 */
import { Reporter } from './commands/reporter.js';
import { LakeguardError } from './errors.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.env.UV_THREADPOOL_SIZE ??= '16';

/**
 * `--help`, `--version` and `help` need no addon: they answer without the cache directory, so an
 * image's default command (`--help`) works on a read-only root file system without a volume.
 */
function answersWithoutAddons(args: readonly string[]): boolean {
  return args.length === 0 || args[0] === 'help' || args.some((a) => a === '--help' || a === '-h' || a === '--version' || a === '-V');
}

async function run(): Promise<void> {
  let main: typeof import('./cli.js').main;
  try {
    // Imported only now, after the environment above: the bundle runs a module's top level on
    // its first import. Loading a native addon (the binary first writes it to the cache
    // directory) can fail, with one line.
    ({ main } = await import('./cli.js'));
    // zstd-napi's addon is loaded on first use (src/repository/compress.ts); the binary loads it
    // at start, as it always did: a cache directory it cannot write fails here, before any work.
    if (!answersWithoutAddons(process.argv.slice(2))) (await import('./repository/compress.js')).zstd();
  } catch (err) {
    if (!(err instanceof LakeguardError)) throw err;
    process.exitCode = new Reporter({ json: process.argv.includes('--json') }).fatal(err);
    return;
  }
  const { startHeapPacer } = await import('./util/heap-pacer.js');
  startHeapPacer();
  process.exitCode = await main(process.argv);
}

// As bin/lakeguard's top-level await: an unexpected error ends the process with its stack, exit 1.
void run();
