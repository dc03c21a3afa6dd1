import type { Command } from 'commander';
import { DAMAGE_NEXT_STEP } from '../engine/sync.js';
import { unreadableNote } from './unreadable.js';
import { extendRetention, type ExtendReport } from '../engine/lock-extend.js';
import { ExitCode, UsageError } from '../errors.js';
import { DAY_MS, parseRetentionDays } from '../repository/object-lock.js';
import { action } from './action.js';
import { openAll } from './context.js';

export function register(program: Command): void {
  const lock = program.command('lock').description('S3 Object Lock of the repository');
  lock
    .command('extend')
    .description('extend the retention of every object the repository still needs, so none expires within the retention period')
    .option('-n, --dry-run', 'count what would be extended; change nothing')
    .option('--slack <duration>', 'extend this far beyond the retention, e.g. 30d (default: a quarter of the retention)')
    .addHelpText(
      'after',
      `
Objects still needed: config, keys/, forgets/, every run manifest in runs/, the index
files the catalog knows, and the packs holding kept versions or run records (what prune
keeps). An object whose retain-until is less than now + retention is extended to
now + retention + slack; the others cost no request, as the catalog remembers each date.
Run it daily (cron): most days it makes no request at all.

An object hidden by a delete marker (someone ran a DELETE without version id, which Object
Lock allows) keeps its data version retained and is named in a warning.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const opts = cmd.opts<{ dryRun?: boolean; slack?: string }>();
        let slackMs: number | undefined;
        if (opts.slack !== undefined) {
          const days = parseRetentionDays(opts.slack);
          if (days === null) throw new UsageError(`--slack ${opts.slack}: expected a duration in days, weeks or years such as 30d, 4w or 1y`);
          slackMs = days * DAY_MS;
        }
        const ctx = await openAll(cmd, { reporter, writes: true, wholeCatalog: true, signal });
        try {
          const report = await extendRetention({
            repo: ctx.repo,
            catalog: ctx.catalog,
            dryRun: opts.dryRun ?? false,
            concurrency: ctx.policy.concurrency.transfer,
            events: reporter.event,
            signal,
            ...(slackMs === undefined ? {} : { slackMs }),
          });
          // What the sync could not read (a damaged index file) is not in the catalog, and neither are
          // the packs only it lists: they were not extended, and their retention runs out.
          const unreadable = unreadableNote(ctx.unreadable);
          if (unreadable !== null) reporter.event({ type: 'warning', message: `${unreadable}: what only ${ctx.unreadable === 1 ? 'it references' : 'they reference'} (the packs of a damaged index file) was not extended; ${DAMAGE_NEXT_STEP}` });
          reporter.summary({ ...report, unreadable: ctx.unreadable }, describe(report));
          // Missing or hidden objects are damage to repair, even though everything else was extended.
          return report.missing + report.hidden + ctx.unreadable > 0 ? ExitCode.error : ExitCode.ok;
        } finally {
          ctx.close();
        }
      }),
    );
}

function describe(r: ExtendReport): string {
  const q = r.requests;
  const lines = [
    `${r.dryRun ? 'dry run: ' : ''}checked ${r.checked} objects (${r.mode}, ${r.retentionDays} days): ${r.extended} ${r.dryRun ? 'would be ' : ''}extended${r.extendedUntil === null ? '' : ` to ${r.extendedUntil}`}, ${r.asked} asked the server${r.missing ? `, ${r.missing} MISSING` : ''}${r.hidden ? `, ${r.hidden} hidden by delete markers` : ''}`,
    `requests: ${q.list} LIST, ${q.head} retention reads, ${q.put} retention writes`,
    r.nextDue === null ? 'nothing to keep retained' : `next extension needed: ${r.nextDue}`,
  ];
  return lines.join('\n');
}
