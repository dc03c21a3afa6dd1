import type { Command } from 'commander';
import { copyRuns, type CopyReport } from '../engine/copy.js';
import { ExitCode, LakeguardError, RepositoryMissingError, UsageError } from '../errors.js';
import { formatBytes } from '../util/format.js';
import { action } from './action.js';
import { globalOptions, loadPolicyNamed, openAll, openWithPolicy, selectGroups } from './context.js';
import { mainOptionsOf } from './main-options.js';
import { instantOption, plural } from './query-common.js';

export function register(program: Command): void {
  program
    .command('copy')
    .description('copy runs to a second repository (its own keys, credentials and retention)')
    .requiredOption('--to-policy <file>', "the second repository's policy (its repository:, password source and credentials)")
    .option('--group <name>', 'only runs of this protection group')
    .option('--since <time>', 'only runs started at or after this instant or run (ISO 8601, a run id, or 2h / 3d / 1w ago)')
    .option('--dry-run', 'only say which runs and acknowledgements would be copied; write nothing')
    .addHelpText(
      'after',
      `
Copies every finished run of this repository (--policy) that the second one does not have yet,
oldest first: each version's content is read and authenticated, encrypted again with the second
repository's keys and deduplicated against what it holds, then the run's records, index files and
manifest are written there. The second repository is complete: restore and verify it alone.
A copied run keeps its group, host, start, end and status, gets a new id in the second repository
and names the run it was copied from. Run it again to continue an interrupted copy. The second
repository's password comes from its own policy only (password_file, password_command or
password_env), never from --password-file. See docs/copy.md.`,
    )
    .action(
      action(async ({ cmd, reporter, signal }) => {
        const flags = cmd.opts<{ toPolicy: string; group?: string; since?: string; dryRun?: boolean }>();
        const targetPolicy = loadPolicyNamed(flags.toPolicy, '--to-policy', 'give the policy of the second repository, e.g. --to-policy vault.yaml (docs/copy.md)');
        const source = await openAll(cmd, { reporter, writes: true, wholeCatalog: true, signal });
        try {
          if (flags.group !== undefined && source.catalog.listRuns({ group: flags.group }).length === 0) selectGroups(source.policy, flags.group);
          const since = flags.since === undefined ? undefined : sinceTime(flags.since, source.catalog);
          const opts = globalOptions(cmd);
          const target = await openWithPolicy(
            { passwordFromPolicyOnly: true, ...(opts.offline === undefined ? {} : { offline: opts.offline }) },
            targetPolicy,
            'copy',
            { reporter, writes: true, wholeCatalog: true, signal },
            mainOptionsOf(cmd),
          ).catch((err: unknown) => {
            // The generic hint says `lakeguard init`, which would make the source's repository.
            if (err instanceof RepositoryMissingError) {
              throw new LakeguardError(`${err.message} (the --to-policy repository)`, {
                cause: err,
                exitCode: ExitCode.repositoryMissing,
                hint: `create it first with \`lakeguard --policy ${flags.toPolicy} init\`, or check repository.url in ${flags.toPolicy}`,
              });
            }
            // The generic hint names --password-file and LAKEGUARD_PASSWORD_FILE, which are the source's.
            if (!(err instanceof LakeguardError) || err.exitCode !== ExitCode.wrongPassword) throw err;
            throw new LakeguardError(`${err.message} (the --to-policy repository)`, {
              cause: err,
              exitCode: ExitCode.wrongPassword,
              hint: `its password comes only from ${flags.toPolicy}: repository.password_file, password_command or password_env (default LAKEGUARD_PASSWORD)`,
            });
          });
          try {
            const report = await copyRuns({
              source,
              target,
              ...(flags.group === undefined ? {} : { group: flags.group }),
              ...(since === undefined ? {} : { since }),
              dryRun: flags.dryRun ?? false,
              events: reporter.event,
              signal,
            });
            reporter.summary({ ...report, ok: report.busy.length === 0 }, describeCopy(report));
            return ExitCode.ok;
          } finally {
            target.close();
          }
        } finally {
          source.close();
        }
      }),
    );
}

/** --since as a time: an instant, or the start of the run it names. */
function sinceTime(text: string, catalog: Parameters<typeof instantOption>[1]): number {
  const cut = instantOption(text, catalog, '--since');
  if ('time' in cut) return cut.time;
  const run = catalog.findRun(String(cut.runSeq));
  if (run === undefined) throw new UsageError(`--since ${text}: no such run`);
  return run.started;
}

/** The text report: each run copied (or that would be), each earlier copy given acknowledgements, a total. */
export function describeCopy(r: CopyReport): string {
  const lines: string[] = [];
  for (const c of r.copied) {
    const acks = c.acks > 0 ? `, ${plural(c.acks, 'acknowledgement')}` : '';
    lines.push(
      r.dryRun
        ? `would copy run ${c.source} (group ${c.group}, started ${c.started}): ${plural(c.versions, 'version')}${acks}`
        : `copied run ${c.source} as ${c.target} (group ${c.group}): ${plural(c.versions, 'version')}, ${plural(c.blobsNew, 'new blob')} (${formatBytes(c.bytesStored)}), ${c.blobsDeduplicated} deduplicated${acks}`,
    );
  }
  for (const a of r.acksOfEarlierCopies) lines.push(`${r.dryRun ? 'would write' : 'wrote'} ${plural(a.acks, 'acknowledgement')} of run ${a.source} (copied earlier as ${a.target})`);
  const what = r.dryRun ? 'would copy' : 'copied';
  lines.push(`${r.dryRun ? 'dry run: ' : ''}${what} ${plural(r.copied.length, 'run')} from ${r.source} to ${r.target}; ${r.alreadyCopied} already there${r.dryRun ? '' : `; ${plural(r.packsWritten, 'pack')} written (${formatBytes(r.bytesStored)})`}`);
  if (r.superseded > 0) lines.push(`${plural(r.superseded, 'superseded shard attempt')} not copied (another complete attempt of the same shard is)`);
  if (r.acksCopied > 0) lines.push(`${plural(r.acksCopied, 'acknowledgement')} of suspect runs ${r.dryRun ? 'would be ' : ''}written to the target`);
  for (const id of r.busy) lines.push(`run ${id} is being copied by another process; run copy again once it is done`);
  return lines.join('\n');
}
