import type * as Commander from 'commander';
import { createRequire } from 'node:module';
import { outcome } from './commands/action.js';
import * as backup from './commands/backup.js';
import * as calendar from './commands/calendar.js';
import * as catalog from './commands/catalog.js';
import * as cost from './commands/cost.js';
import * as diff from './commands/diff.js';
import * as find from './commands/find.js';
import * as forgetCmd from './commands/forget.js';
import * as init from './commands/init.js';
import * as lock from './commands/lock.js';
import * as ls from './commands/ls.js';
import { setMainOptions, type MainOptions } from './commands/main-options.js';
import * as migrate from './commands/migrate.js';
import * as policyCmd from './commands/policy.js';
import * as prune from './commands/prune.js';
import * as restore from './commands/restore.js';
import * as runs from './commands/runs.js';
import * as unlock from './commands/unlock.js';
import * as verify from './commands/verify.js';
import * as versions from './commands/versions.js';
import { ExitCode } from './errors.js';
import { requireCjs } from './util/cjs.js';

const { Command, CommanderError, Option } = requireCjs('commander') as typeof Commander;
type Command = Commander.Command;

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

const EXIT_CODES = `
Exit codes:
  0    success
  1    error (the message names what failed and what to do)
  2    bad usage or invalid policy, or a selection that matches nothing
  3    partial: some objects could not be backed up or restored (or named keys are
       not in the backup); they are listed
  10   repository missing
  11   repository locked by another operation, or this command's own lock was lost
  12   wrong or missing password
  130  interrupted (SIGINT/SIGTERM)

Environment:
  LAKEGUARD_POLICY, LAKEGUARD_REPOSITORY, LAKEGUARD_PASSWORD, LAKEGUARD_PASSWORD_FILE,
  LAKEGUARD_PASSWORD_COMMAND, LAKEGUARD_CATALOG, LAKEGUARD_CACHE_DIR, LAKEGUARD_TIMEOUT (as
  --timeout), LAKEGUARD_OFFLINE=1 (as --offline); AWS credentials come from the standard AWS
  chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles).

Every command that reads the catalog first syncs it with the repository (what other hosts
backed up, forgot or pruned since; usually two LIST requests). --offline skips that and warns
that answers may be stale; commands that write the repository refuse it.`;

/**
 * With --json, commander's own usage errors (unknown option, missing argument) are an
 * exit_error message too, like every other line (set before the subcommands, which inherit it).
 */
function jsonUsageErrors(argv: readonly string[]): Commander.OutputConfiguration {
  if (!argv.includes('--json')) return {};
  return {
    outputError: (text: string) => process.stderr.write(JSON.stringify({ message_type: 'exit_error', code: ExitCode.usage, message: text.trim().replace(/^error: /, '') }) + '\n'),
    writeErr: () => {}, // "(run with --help for usage)" and help shown for an error
  };
}

export function buildProgram(argv: readonly string[] = [], options: MainOptions = {}): Command {
  const program = new Command('lakeguard')
    .configureOutput(jsonUsageErrors(argv))
    .description('Back up and restore S3 data lakes: packed, compressed, encrypted, point in time.')
    .version(version)
    .option('--policy <file>', 'policy YAML (default: $LAKEGUARD_POLICY or ./lakeguard.yaml)')
    .option('--repo <url>', 'repository URL, overriding the policy (s3://bucket/prefix or file:///dir)')
    .option('--endpoint <url>', 'S3 endpoint of the repository, overriding the policy')
    .option('--catalog <path>', 'catalog file (default: ~/.cache/lakeguard/<repository id>/catalog.db)')
    .option('--password-file <path>', 'read the repository password from this file')
    .option('--timeout <seconds>', 'fail an S3 request that gets no answer for this long (default 60, or $LAKEGUARD_TIMEOUT)')
    .addOption(new Option('--json', 'line-delimited JSON messages (status, summary, error) instead of text').conflicts('quiet'))
    .option('-q, --quiet', 'print nothing but errors (for cron)')
    .option('--offline', 'answer from the local catalog without syncing it with the repository first (may be stale; also LAKEGUARD_OFFLINE=1)')
    .addHelpText('after', EXIT_CODES)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const command of [init, backup, restore, verify, forgetCmd, prune, lock, runs, versions, find, ls, diff, calendar, catalog, cost, unlock, migrate, policyCmd]) command.register(program);
  for (const sub of program.commands) sub.exitOverride();
  setMainOptions(program, options);
  return program;
}

export type { MainOptions, StoreRole } from './commands/main-options.js';

/**
 * Runs the CLI on `argv` (as in process.argv: node, script, arguments) and resolves to the
 * process exit code. bin/lakeguard calls it without options; tests embed lakeguard through
 * `options` (see MainOptions and docs/development.md).
 */
export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  outcome.code = ExitCode.ok;
  try {
    await buildProgram(argv, options).parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    throw err;
  }
  return outcome.code;
}
