import type { Command } from 'commander';
import { formatBytes, formatDuration, formatTime, table } from '../util/format.js';
import { action } from './action.js';
import { openAll } from './context.js';

export function register(program: Command): void {
  program
    .command('runs')
    .description('list backup runs recorded in the catalog')
    .option('-g, --group <name>', 'only runs of this group')
    .action(
      action(async ({ cmd, reporter }) => {
        const opts = cmd.opts<{ group?: string }>();
        const ctx = await openAll(cmd);
        try {
          const runs = ctx.catalog.listRuns(opts.group === undefined ? {} : { group: opts.group });
          const rows = runs.map((r) => [
            r.id,
            r.group,
            formatTime(r.started),
            r.status,
            r.counters?.objectsSeen ?? 0,
            (r.counters?.objectsNew ?? 0) + (r.counters?.objectsChanged ?? 0),
            r.counters?.objectsFailed ?? 0,
            formatBytes(r.counters?.bytesStored ?? 0),
            r.counters === null ? '-' : formatDuration(r.counters.durationMs),
          ]);
          reporter.data(
            runs,
            runs.length === 0
              ? 'no runs yet: run `lakeguard backup`'
              : table(['ID', 'GROUP', 'STARTED', 'STATUS', 'OBJECTS', 'NEW', 'FAILED', 'STORED', 'DURATION'], rows),
          );
        } finally {
          ctx.close();
        }
      }),
    );
}
