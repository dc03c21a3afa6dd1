import type { Command } from 'commander';
import type { StateCut } from '../catalog/catalog.js';
import { describeCut } from '../catalog/instant.js';
import { allPages, CatalogQueries, type LsEntry } from '../catalog/queries.js';
import { formatBytes, formatTimeMs } from '../util/format.js';
import { printable } from '../util/printable.js';
import { action } from './action.js';
import { requireInScope } from './catalog-scope-guard.js';
import { openAll } from './context.js';
import { groupsCovering, isLastClean, resolveLastClean } from './last-clean.js';
import { warnSuspectState } from './suspect-state.js';
import { cutJson, instantOption, limitOption, ListPrinter, parseObjectUrl, plural, requireBucket, warnBeforeFirstRun, withIso } from './query-common.js';

export function register(program: Command): void {
  program
    .command('ls')
    .description('list a prefix like a directory, as it was at an instant: keys, and sub-prefixes with their counts and bytes')
    .argument('<s3url>', 's3://bucket/prefix/ (a local path source goes by its directory name: s3://<dir>/<prefix>)')
    .option('--at <time>', 'the state at this instant or run (default: the newest catalogued state)')
    .option('--limit <n>', 'show at most this many entries')
    .addHelpText(
      'after',
      `
Entries are cut at the next '/' after the prefix, as \`aws s3 ls\` does: s3://b/logs/ lists what is
inside logs/, s3://b/logs lists logs/ itself and keys such as logs.txt. A key is there when its
newest version at the instant is not a delete marker. TIME is that version's time (for a
prefix: the newest below it). Times: ISO 8601 (local time unless it has an offset), a run id /
prefix / number, 90s / 15m / 2h / 3d / 1w ago, now, or last-clean (as rollback takes it).`,
    )
    .action(
      action(async ({ cmd, signal, reporter }, url: string) => {
        const flags = cmd.opts<{ at?: string; limit?: string }>();
        const { bucket, key: prefix } = parseObjectUrl(url, 'ls:');
        const max = limitOption(flags.limit) ?? Infinity;
        const ctx = await openAll(cmd, { reporter, signal, selects: () => [{ bucket, prefix }] });
        try {
          requireInScope(ctx.catalog, 'ls', [{ bucket, prefix }]);
          const q = new CatalogQueries(ctx.catalog);
          requireBucket(q, bucket);
          const cut: StateCut | undefined =
            flags.at === undefined ? undefined : isLastClean(flags.at) ? resolveLastClean(ctx.catalog, groupsCovering(ctx.policy, bucket), reporter.event, '--at').cut : instantOption(flags.at, ctx.catalog, '--at');
          if (cut !== undefined) warnBeforeFirstRun(ctx.catalog, cut, '--at', reporter.event);
          // The newest state (no --at) is the usual one right after an incident: said when a suspect run is in it.
          warnSuspectState(ctx, cut ?? { time: Date.now() }, [{ bucket, prefix }], reporter.event);
          const dir = prefix.slice(0, prefix.lastIndexOf('/') + 1);
          const printer = new ListPrinter<LsEntry>(
            reporter,
            'entry',
            [
              { header: 'TIME', value: (e) => formatTimeMs(e.time) },
              { header: 'SIZE', value: (e) => formatBytes(e.bytes), right: true },
              { header: 'OBJECTS', value: (e) => (e.type === 'prefix' ? e.objects : ''), right: true },
              { header: 'NAME', value: (e) => e.name.slice(dir.length) || e.name },
            ],
            (e) => withIso({ bucket, ...e }, 'time', 'lastModified'),
          );
          const totals = { prefixes: 0, keys: 0, objects: 0, bytes: 0 };
          for (const items of allPages(q.ls(bucket, prefix, cut), (after) => q.ls(bucket, prefix, cut, { after }))) {
            for (const e of items.slice(0, Math.max(0, max - printer.count))) {
              if (e.type === 'prefix') totals.prefixes++;
              else totals.keys++;
              totals.objects += e.objects;
              totals.bytes += e.bytes;
            }
            if (!(await printer.add(items, max))) break;
          }
          const where = `${printable(`s3://${bucket}/${prefix}`)}${cut === undefined ? '' : ` at ${describeCut(cut, ctx.catalog)}`}`;
          reporter.summary(
            { bucket, prefix, ...(cut === undefined ? {} : { at: cutJson(cut, ctx.catalog) }), ...totals, limited: printer.count === max },
            printer.count === 0
              ? `nothing under ${where}`
              : `${where}: ${plural(totals.prefixes, 'prefix', 'prefixes')}, ${plural(totals.keys, 'key')}; ` +
                  `${plural(totals.objects, 'object')}, ${formatBytes(totals.bytes)} in all${printer.count === max ? ` (stopped at --limit ${max})` : ''}`,
          );
        } finally {
          ctx.close();
        }
      }),
    );
}
