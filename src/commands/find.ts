import type { Command } from 'commander';
import { describeCut } from '../catalog/instant.js';
import { allPages, CatalogQueries, type FindOptions, type FoundObject } from '../catalog/queries.js';
import { UsageError } from '../errors.js';
import { compileGlob } from '../policy/glob.js';
import { formatBytes, formatTimeMs } from '../util/format.js';
import { action } from './action.js';
import { globLiteralPrefix } from '../catalog/key-range.js';
import { requireInScope } from './catalog-scope-guard.js';
import { openAll } from './context.js';
import { cutJson, instantOption, limitOption, ListPrinter, plural, requireBucket, sizeOption, warnBeforeFirstRun, withIso } from './query-common.js';

interface FindFlags {
  bucket?: string;
  at?: string;
  deleted?: boolean;
  largerThan?: string;
  since?: string;
  limit?: string;
}

export function register(program: Command): void {
  program
    .command('find')
    .description('search every run for keys matching a glob')
    .argument('<glob>', "glob over the full key, as in exclude lists: 'table=x/**', '**/*.parquet', '*.csv' (any depth)")
    .option('-b, --bucket <name>', 'only this bucket (or local source name)')
    .option('--at <time>', 'judge each key by its state at this instant or run (default: its newest version)')
    .option('--deleted', 'only keys that are deleted (at --at, or now)')
    .option('--larger-than <size>', 'only objects larger than this: bytes, 512KiB, 10MiB, 1G')
    .option('--since <time>', 'only keys created, changed or deleted after this instant or run')
    .option('--limit <n>', 'show at most this many keys')
    // Checked in the action: more words than one glob is an unquoted glob the shell expanded.
    .allowExcessArguments(true)
    .addHelpText(
      'after',
      `
Each key found is shown with its state: its newest version, or with --at the version it had at
that instant (keys created later are not shown). Deleted keys are listed too, marked
"deleted"; --deleted shows only them. Times: ISO 8601 (local time unless it has an offset), a
run id / prefix / number, 90s / 15m / 2h / 3d / 1w ago, or now. A glob whose start is literal
(table=x/**) reads only that range of the catalog.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }, glob: string) => {
        const flags = cmd.opts<FindFlags>();
        if (cmd.args.length > 1) {
          throw new UsageError(`find takes one glob, got ${cmd.args.length} words: the shell expanded an unquoted glob into file names?`, {
            hint: "quote it, e.g. lakeguard find '**/*.parquet'",
          });
        }
        compileGlob(glob); // a malformed glob is bad usage (exit 2), before the repository is opened
        const max = limitOption(flags.limit) ?? Infinity;
        const largerThan = flags.largerThan === undefined ? undefined : sizeOption(flags.largerThan, '--larger-than');
        // The glob's literal start is the prefix every match has (in --bucket, else in every bucket).
        const selection = [{ bucket: flags.bucket ?? null, prefix: globLiteralPrefix(glob) }];
        const ctx = await openAll(cmd, { reporter, signal, selects: () => selection });
        try {
          requireInScope(ctx.catalog, 'find', selection);
          const q = new CatalogQueries(ctx.catalog);
          if (flags.bucket !== undefined) requireBucket(q, flags.bucket);
          const now = Date.now();
          const opts: FindOptions = {
            ...(flags.bucket === undefined ? {} : { bucket: flags.bucket }),
            ...(flags.at === undefined ? {} : { at: instantOption(flags.at, ctx.catalog, '--at', now) }),
            ...(flags.deleted ? { deleted: true } : {}),
            ...(largerThan === undefined ? {} : { largerThan }),
            ...(flags.since === undefined ? {} : { since: instantOption(flags.since, ctx.catalog, '--since', now) }),
          };
          if (opts.at !== undefined) warnBeforeFirstRun(ctx.catalog, opts.at, '--at', reporter.event);
          const printer = new ListPrinter<FoundObject>(
            reporter,
            'match',
            [
              { header: 'TIME', value: (f) => formatTimeMs(f.time) },
              { header: 'STATE', value: (f) => (f.deleted ? 'deleted' : 'object') },
              { header: 'SIZE', value: (f) => (f.deleted ? '-' : formatBytes(f.size)), right: true },
              { header: 'VERSIONS', value: (f) => f.versions, right: true },
              { header: 'OBJECT', value: (f) => `s3://${f.bucket}/${f.key}` },
            ],
            (f) => withIso({ ...f }, 'time', 'lastModified'),
          );
          let deleted = 0;
          let bytes = 0;
          for (const items of allPages(q.find(glob, opts), (after) => q.find(glob, opts, { after }))) {
            for (const f of items.slice(0, Math.max(0, max - printer.count))) {
              if (f.deleted) deleted++;
              else bytes += f.size;
            }
            if (!(await printer.add(items, max))) break;
          }
          const n = printer.count;
          const at = opts.at === undefined ? '' : ` at ${describeCut(opts.at, ctx.catalog)}`;
          reporter.summary(
            { glob, ...(opts.at === undefined ? {} : { at: cutJson(opts.at, ctx.catalog) }), matched: n, deleted, bytes, limited: n === max },
            n === 0
              ? `no key matches ${JSON.stringify(glob)}${at}${flags.bucket === undefined ? '' : ` in ${flags.bucket}`}`
              : `${plural(n, 'key')} matched${at}${deleted > 0 ? ` (${deleted} deleted)` : ''}, ${formatBytes(bytes)}${n === max ? ` (stopped at --limit ${max})` : ''}`,
          );
        } finally {
          ctx.close();
        }
      }),
    );
}
