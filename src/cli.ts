import type * as Commander from 'commander';
import { outcome } from './commands/action.js';
import { setMainOptions, type MainOptions } from './commands/main-options.js';
import { watchOutputStreams } from './commands/output-streams.js';
import { ExitCode } from './errors.js';
import { requireCjs } from './util/cjs.js';
import { version } from './version.js';

const { Command, CommanderError, Option } = requireCjs('commander') as typeof Commander;
type Command = Commander.Command;

/** A module of src/commands that registers one top-level command (and its subcommands). */
export interface CommandModule {
  register(program: Command): void;
}

/**
 * Every top-level command and its module, in the order of the program's help. A command loads
 * only its own module (and what that imports): `lakeguard backup` never loads serve's, copy's
 * or rollback's code. Start-up time is measured in bench/README.md.
 */
const COMMAND_MODULES: readonly (readonly [name: string, load: () => Promise<CommandModule>])[] = [
  ['init', () => import('./commands/init.js')],
  ['backup', () => import('./commands/backup.js')],
  ['watch', () => import('./commands/watch.js')],
  ['restore', () => import('./commands/restore.js')],
  ['rollback', () => import('./commands/rollback.js')],
  ['verify', () => import('./commands/verify.js')],
  ['forget', () => import('./commands/forget.js')],
  ['prune', () => import('./commands/prune.js')],
  ['lock', () => import('./commands/lock.js')],
  ['runs', () => import('./commands/runs.js')],
  ['versions', () => import('./commands/versions.js')],
  ['find', () => import('./commands/find.js')],
  ['ls', () => import('./commands/ls.js')],
  ['diff', () => import('./commands/diff.js')],
  ['calendar', () => import('./commands/calendar.js')],
  ['catalog', () => import('./commands/catalog.js')],
  ['cost', () => import('./commands/cost.js')],
  ['unlock', () => import('./commands/unlock.js')],
  ['migrate', () => import('./commands/migrate.js')],
  ['key', () => import('./commands/key.js')],
  ['policy', () => import('./commands/policy.js')],
  ['serve', () => import('./commands/serve.js')],
  ['copy', () => import('./commands/copy.js')],
  ['drill', () => import('./commands/drill.js')],
];

/** The program's options that take a value (`--policy <file>`): the word after one is not the command. */
export const VALUE_OPTIONS: readonly string[] = ['--policy', '--repo', '--endpoint', '--catalog', '--password-file', '--timeout', '--retry-lock', '--metrics-file'];

/**
 * `help runs show` as `runs show --help`: commander's help command looks one word deep, and
 * would show the help of `runs`.
 */
function helpAsFlag(argv: readonly string[]): string[] {
  const i = commandIndex(argv);
  if (i === undefined || argv[i] !== 'help' || i + 1 >= argv.length) return [...argv];
  return [...argv.slice(0, i), ...argv.slice(i + 1), '--help'];
}

/** The top-level command `argv` names (its first word that is neither an option nor an option's value), if any. */
export function commandOf(argv: readonly string[]): string | undefined {
  const i = commandIndex(argv);
  return i === undefined ? undefined : argv[i];
}

/** Where commandOf's word is in `argv`. */
function commandIndex(argv: readonly string[]): number | undefined {
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return undefined;
    if (VALUE_OPTIONS.includes(arg)) i++;
    else if (!arg.startsWith('-')) return i;
  }
  return undefined;
}

/**
 * The modules `argv` needs: the named command's only, or every one (the program's help, `help
 * <command>`, a word that is no command: commander then says what exists).
 */
export async function commandModules(argv: readonly string[] = []): Promise<CommandModule[]> {
  const name = commandOf(argv);
  const own = COMMAND_MODULES.find(([n]) => n === name);
  return Promise.all((own === undefined ? COMMAND_MODULES : [own]).map(([, load]) => load()));
}

/** Every command with an action, by its path (`lakeguard <path> --help`). */
const COMMAND_PATHS = [
  'init', 'backup', 'restore', 'rollback', 'verify', 'forget', 'prune', 'lock extend', 'runs', 'runs show', 'runs ack', 'versions', 'find', 'ls',
  'diff', 'calendar', 'catalog rebuild', 'catalog sync', 'catalog info', 'cost', 'unlock', 'migrate', 'policy show', 'serve',
  'key list', 'key add', 'key remove', 'key passwd', 'copy', 'drill', 'watch',
] as const;
type CommandPath = (typeof COMMAND_PATHS)[number];

interface ExitCodeRow {
  code: ExitCode;
  /** What the code means, in the program's help. */
  meaning: string;
  /**
   * The commands that can end with it, each with its own wording ('' for `short`); 'every' for
   * codes any command can end with (action() and commander give them).
   */
  commands: 'every' | Partial<Record<CommandPath, string>>;
  /** The wording in a command's help when `commands` has none for it. */
  short: string;
  /** With `commands: 'every'`: a command's own wording. */
  notes?: Partial<Record<CommandPath, string>>;
}

const OPENS_REPOSITORY = COMMAND_PATHS.filter((path) => path !== 'init' && path !== 'policy show');
/** Commands that answer from the catalog: only their sync listens to the interrupt signal. */
const QUERIES: readonly CommandPath[] = ['runs', 'runs show', 'runs ack', 'ls', 'versions', 'find', 'diff', 'calendar', 'cost'];
const only = (paths: readonly CommandPath[], notes: Partial<Record<CommandPath, string>> = {}): Partial<Record<CommandPath, string>> =>
  Object.fromEntries(paths.map((path) => [path, notes[path] ?? '']));

/**
 * THE exit-code table: the program's help and every command's "Exit status" list are
 * generated from it (a command's help cannot list a code the table does not give it).
 */
export const EXIT_CODE_TABLE: readonly ExitCodeRow[] = [
  {
    code: ExitCode.ok,
    meaning: 'success',
    short: 'ok',
    commands: 'every',
    notes: {
      init: 'created', backup: 'complete', restore: 'restored', rollback: 'rolled back (or, with --dry-run, planned)', verify: 'no damage', forget: 'done', prune: 'done', 'lock extend': 'done',
      versions: 'ok (also when the key has no versions)', find: 'ok (also when nothing matched)', ls: 'ok (also when the prefix is empty)',
      'catalog rebuild': 'rebuilt', 'catalog sync': 'synced', 'catalog info': 'shown', 'runs ack': 'acknowledged', unlock: 'done', migrate: 'migrated or already current', 'policy show': 'done',
      serve: 'not used: serve runs until it is stopped (130)',
      'key list': 'listed', 'key add': 'added', 'key remove': 'removed', 'key passwd': 'changed',
      copy: 'copied (or nothing to copy; runs another copy is busy with are named)',
      drill: 'every sampled object restored and verified',
      watch: 'stopped by SIGINT/SIGTERM with no run cut short (a run in progress finished within --stop-grace)',
    },
  },
  {
    code: ExitCode.error,
    meaning: 'error (the message names what failed and what to do)',
    short: 'error',
    commands: 'every',
    notes: {
      init: 'error (e.g. bucket missing)',
      backup: 'failed',
      verify: 'damage found (every affected object is named) or error',
      prune: 'error (or damaged packs were found and kept)',
      'lock extend': 'error, or referenced objects missing or hidden (each named)',
      'key remove': 'error, or the key file is retained by Object Lock (its date named; nothing removed)',
      'key passwd': 'error, or the old key file is retained by Object Lock (the new key was added; both open until that date)',
      'catalog rebuild':
        'error, or the repository is damaged (object versions whose content is in no index file or a missing pack, unreadable record blobs, skipped files, runs the old catalog has whose manifest is gone: each is listed; the rest is in the new catalog)',
      'catalog sync': 'error, or something in the repository could not be applied (listed; the rest was)',
      serve: 'error (e.g. the address is in use)',
      copy: 'error (e.g. a source blob fails authentication: the run is not copied, what was copied before stays)',
      drill: 'damage found: an object could not be restored or its bytes differ from the backup (each named), or error',
      watch: 'error at start (e.g. the journal cannot be opened); a failed run is retried, never an exit',
    },
  },
  {
    code: ExitCode.usage,
    meaning: 'bad usage or invalid policy, a selection that matches nothing, or a scoped catalog that does not hold what the command needs',
    short: 'bad usage',
    commands: 'every',
    notes: {
      init: 'bad usage or policy, or a repository already exists, or --object-lock on a bucket without Object Lock',
      backup: 'bad usage or policy, or a scoped catalog',
      restore: 'bad usage, nothing matched (with a hint), a selection outside a scoped catalog, or a target that does not exist or cannot be written (a --to bucket, --to-dir)',
      rollback: 'bad usage: no --at, a bucket the policy does not name as a source, a prefix or key outside what it backs up or outside a scoped catalog',
      forget: 'invalid policy, unknown group, or a scoped catalog',
      'lock extend': 'bad usage (e.g. a repository without Object Lock), or a scoped catalog',
      runs: 'bad usage or unknown group',
      'runs show': 'bad usage, unknown run, or a list of versions, failures or anomalies on a scoped catalog',
      'runs ack': 'bad usage, unknown run, or the run is not suspect or already acknowledged',
      calendar: 'bad usage or unknown group',
      'catalog sync': 'bad usage (also with --offline)',
      cost: 'bad usage (unknown group or class), or a scoped catalog',
      'policy show': 'invalid policy',
      serve: 'bad usage: --at or --run naming nothing, an unknown group, a --listen address that is not loopback without TLS or --insecure-listen',
      prune: 'bad usage, or a scoped catalog',
      verify: 'bad usage, or a scoped catalog',
      ls: 'bad usage, or a prefix outside a scoped catalog',
      versions: 'bad usage, or a key outside a scoped catalog',
      find: 'bad usage, or a glob or bucket reaching outside a scoped catalog',
      diff: 'bad usage, or a selection outside a scoped catalog',
      'key list': 'bad usage, or an unencrypted repository',
      'key add': 'bad usage, an unencrypted repository, or the two typed passwords differ',
      'key remove': 'bad usage, no such key, the last key, or (without --force) the key in use',
      'key passwd': 'bad usage, an unencrypted repository, the two typed passwords differ, or the only key would go',
      copy: 'bad usage or policy (either one), an unknown group, the same repository twice, or a scoped catalog',
      drill: 'bad usage, nothing matched, a selection outside a scoped catalog, or a scratch target that does not exist or cannot be written (no drill recorded)',
      watch: 'bad usage or policy, an events address that is not loopback without --insecure-listen or is in use, no push token, or a scoped catalog',
    },
  },
  {
    code: ExitCode.partial,
    meaning: 'partial: some objects could not be backed up, restored or rolled back (or named keys are not in the backup); they are listed',
    short: 'partial',
    commands: {
      backup: 'partial (some objects could not be read; they are listed and recorded with the run)',
      restore: 'some objects could not be restored or named keys are not in the backup (listed)',
      rollback: 'some keys could not be rolled back (listed, e.g. AccessDenied or Object Lock); run it again to finish',
    },
  },
  {
    code: ExitCode.suspect,
    meaning: 'complete, anomalies found: the run is suspect (see `runs show <id> --anomalies`); 1 and 3 take precedence',
    short: 'suspect',
    commands: {
      backup: 'complete, but at least one run is suspect (mass overwrite, deletion, encryption, broken formats: each finding is printed; a partial run exits 3 and is still named suspect)',
    },
  },
  {
    code: ExitCode.archived,
    meaning: 'waiting for archived data: the objects not restored are all in packs archived in GLACIER or DEEP_ARCHIVE; thaw them, then run again',
    short: 'archived',
    commands: {
      restore: 'every object not restored is in an archived pack (counted in the summary): thaw those packs (S3 RestoreObject), then run the same restore again',
    },
  },
  { code: ExitCode.repositoryMissing, meaning: 'repository missing', short: 'repository missing', commands: only(OPENS_REPOSITORY) },
  {
    code: ExitCode.locked,
    meaning: "repository locked by another operation, or this command's own lock was lost",
    short: 'locked',
    commands: only(['backup', 'restore', 'rollback', 'verify', 'forget', 'prune', 'catalog rebuild', 'migrate', 'runs ack', 'serve', 'key remove', 'key passwd', 'copy', 'drill'], {
      drill: 'locked (a prune or forget runs), or its shared lock was lost (the drill is not recorded)',
      copy: 'locked (a prune or forget runs on either repository), or a lock was lost',
      restore: 'locked (a prune or forget runs)',
      serve: 'locked (a prune or forget runs), or its shared lock was lost while serving (it stops)',
      rollback: 'locked (a prune or forget runs)',
      verify: 'locked (a prune or forget runs)',
      prune: 'lock held',
      'catalog rebuild': 'locked (an exclusive operation runs)',
    }),
  },
  {
    code: ExitCode.wrongPassword,
    meaning: 'wrong or missing password',
    short: 'wrong password',
    commands: only(['init', ...OPENS_REPOSITORY], {
      init: 'no password or an empty one (from the environment, a password file or a password command)',
      'key add': 'wrong password, or no new password (or an empty one)',
      'key passwd': 'wrong password, or no new password (or an empty one)',
    }),
  },
  {
    code: ExitCode.interrupted,
    meaning: 'interrupted (SIGINT/SIGTERM)',
    short: 'interrupted',
    // The commands whose work listens to the interrupt signal; the others finish (or fail) first.
    commands: only(['backup', 'restore', 'rollback', 'verify', 'forget', 'prune', 'lock extend', 'catalog rebuild', 'catalog sync', 'serve', 'key add', 'key passwd', 'copy', 'drill', 'watch', ...QUERIES], {
      watch: 'stopped by SIGINT/SIGTERM, and the run in progress was abandoned after --stop-grace (recorded as interrupted; its changes stay journaled)',
      copy: 'interrupted (runs copied so far stay; run copy again to continue)',
      prune: 'interrupted (the repository stays consistent)',
      serve: 'stopped by SIGINT/SIGTERM, its normal end (requests in flight get up to 10 seconds)',
      'key add': 'interrupted at the password prompt (nothing changed)',
      'key passwd': 'interrupted at the password prompt (nothing changed)',
      ...Object.fromEntries(QUERIES.map((path) => [path, "interrupted while the catalog was synced (it stays usable; the next command's sync goes on)"])),
    }),
  },
];

/** The codes the command at `path` can end with, per the table, each with its wording for that command's help. */
export function exitCodesOf(path: CommandPath): { code: ExitCode; text: string }[] {
  const rows: { code: ExitCode; text: string }[] = [];
  for (const row of EXIT_CODE_TABLE) {
    const own = row.commands === 'every' ? (row.notes?.[path] ?? '') : row.commands[path];
    if (own !== undefined) rows.push({ code: row.code, text: own || row.short });
  }
  return rows;
}

/** Lines `  <code>  <text>`, wrapped at 92 columns (as the rest of the help), continuation lines under the text. */
function codeLines(rows: readonly { code: ExitCode; text: string }[]): string {
  const out: string[] = [];
  for (const { code, text } of rows) {
    let line = `  ${String(code).padEnd(5)}`;
    const indent = ' '.repeat(line.length);
    let first = true;
    for (const word of text.split(' ')) {
      if (!first && line.length + 1 + word.length > 92) {
        out.push(line);
        line = indent + word;
      } else {
        line += (first ? '' : ' ') + word;
      }
      first = false;
    }
    out.push(line);
  }
  return out.join('\n');
}

const PROGRAM_HELP = `
Exit codes:
${codeLines(EXIT_CODE_TABLE.map((row) => ({ code: row.code, text: row.meaning })))}

Environment:
  LAKEGUARD_POLICY, LAKEGUARD_REPOSITORY, LAKEGUARD_PASSWORD, LAKEGUARD_PASSWORD_FILE,
  LAKEGUARD_PASSWORD_COMMAND, LAKEGUARD_CATALOG, LAKEGUARD_CACHE_DIR, LAKEGUARD_TIMEOUT (as
  --timeout), LAKEGUARD_RETRY_LOCK (as --retry-lock), LAKEGUARD_OFFLINE=1 (as --offline),
  LAKEGUARD_THREADS (backup: threads that chunk, hash, compress and encrypt: a number, or auto
  for one per core; default 1, the main thread); AWS credentials come from the standard AWS
  chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles).

Every command that reads the catalog first syncs it with the repository (what other hosts
backed up, forgot or pruned since; usually four LIST requests). --offline skips that and warns
that answers may be stale; commands that write the repository refuse it.`;

/**
 * With --json, commander's own usage errors (unknown option, missing argument) are an
 * exit_error message too, like every other line (set before the subcommands, which inherit it).
 * A missing command (`lakeguard --json`, `lakeguard key --json`) has no error of its own:
 * commander shows the help instead, which is text, so the exit_error names the command.
 */
function jsonUsageErrors(argv: readonly string[]): Commander.OutputConfiguration {
  if (!argv.includes('--json')) return {};
  const exitError = (message: string, hint?: string): void => {
    process.stderr.write(JSON.stringify({ message_type: 'exit_error', code: ExitCode.usage, message, ...(hint === undefined ? {} : { hint }) }) + '\n');
  };
  return {
    outputError: (text: string) => exitError(text.trim().replace(/^error: /, '')),
    // Else "(run with --help for usage)" after an error, already given.
    writeErr: (text: string) => {
      const usage = /^Usage: (.+?) \[options\] \[command\]/.exec(text);
      if (usage !== null) exitError(`missing command: \`${usage[1]}\` needs one`, `\`${usage[1]} --help\` lists them`);
    },
  };
}

/** The program with the commands of `modules` (commandModules: all of them, or the one `argv` names). */
export function buildProgram(modules: readonly CommandModule[], argv: readonly string[] = [], options: MainOptions = {}): Command {
  const program = new Command('lakeguard')
    .configureOutput(jsonUsageErrors(argv))
    .description('Back up and restore S3 data lakes: packed, compressed, encrypted, point in time.')
    .version(version)
    .option('--policy <file>', 'policy YAML (default: $LAKEGUARD_POLICY or ./lakeguard.yaml)')
    .option('--repo <url>', 'repository URL, overriding the policy (s3://bucket/prefix or file:///dir)')
    .option('--endpoint <url>', 'S3 endpoint of the repository, overriding the policy')
    .option('--catalog <path>', 'catalog file (default: ~/.cache/lakeguard/<repository id>/catalog.db; a shard backup without a whole one there: shard-<I>-of-<N>.db beside it)')
    .option('--password-file <path>', 'read the repository password from this file')
    .option('--timeout <seconds>', 'fail an S3 request that gets no answer for this long (default 60, or $LAKEGUARD_TIMEOUT)')
    .option('--retry-lock <duration>', 'wait up to this long (e.g. 2h) for a conflicting repository lock, such as a prune\'s, instead of exiting 11 at once (or $LAKEGUARD_RETRY_LOCK)')
    .addOption(new Option('--json', 'line-delimited JSON messages (status, summary, error) instead of text').conflicts('quiet'))
    .option('-q, --quiet', 'print nothing but errors and what a query asks for (for cron)')
    .option('--metrics-file <path>', 'after the command, write its metrics to this Prometheus node-exporter textfile (atomically; docs/monitoring.md)')
    .option('--offline', 'answer from the local catalog without syncing it with the repository first (may be stale; also LAKEGUARD_OFFLINE=1)')
    .addHelpText('after', PROGRAM_HELP)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const command of modules) command.register(program);
  for (const sub of program.commands) sub.exitOverride();
  addExitStatusHelp(program, '');
  setMainOptions(program, options);
  return program;
}

/** Appends each command's "Exit status" list, from the table; a command missing from it is a bug caught at start. */
function addExitStatusHelp(parent: Command, prefix: string): void {
  for (const cmd of parent.commands) {
    const path = prefix + cmd.name();
    if (isCommandPath(path)) cmd.addHelpText('after', `\nExit status:\n${codeLines(exitCodesOf(path))}`);
    else if (cmd.commands.length === 0) throw new Error(`lakeguard ${path} has no row in the exit-code table (src/cli.ts)`);
    addExitStatusHelp(cmd, `${path} `);
  }
}

function isCommandPath(path: string): path is CommandPath {
  return (COMMAND_PATHS as readonly string[]).includes(path);
}

export type { MainOptions, StoreRole } from './commands/main-options.js';

/**
 * Runs the CLI on `argv` (as in process.argv: node, script, arguments) and resolves to the
 * process exit code. bin/lakeguard calls it without options; tests embed lakeguard through
 * `options` (see MainOptions and docs/development.md).
 */
export async function main(given: string[], options: MainOptions = {}): Promise<number> {
  outcome.code = ExitCode.ok;
  watchOutputStreams();
  const argv = helpAsFlag(given);
  try {
    await buildProgram(await commandModules(argv), argv, options).parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    throw err;
  }
  return outcome.code;
}
