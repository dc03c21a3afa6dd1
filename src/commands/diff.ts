import type { Command } from 'commander';
import { describeCut } from '../catalog/instant.js';
import { allPages, CatalogQueries, type DiffEntry, type DiffScope, type DiffSide, type DiffSummary } from '../catalog/queries.js';
import { sourceName } from '../engine/sources.js';
import { formatBytes, formatTimeMs } from '../util/format.js';
import { action } from './action.js';
import { openAll, type Opened } from './context.js';
import { cutJson, instantOption, isoTime, limitOption, ListPrinter, plural, requireBucket, requireGroup, withIso } from './query-common.js';
import type { Reporter } from './reporter.js';

interface DiffFlags {
  group?: string;
  bucket?: string;
  prefix?: string;
  details?: boolean;
  limit?: string;
}

export function register(program: Command): void {
  program
    .command('diff')
    .description('what changed between two instants or runs: keys added, changed and deleted, with counts and bytes')
    .argument('<from>', 'the earlier instant or run')
    .argument('<to>', 'the later instant or run')
    .option('-g, --group <name>', 'only keys of this protection group')
    .option('-b, --bucket <name>', 'only this bucket (or local source name)')
    .option('-p, --prefix <prefix>', 'only keys under this prefix')
    .option('--details', 'list every key that changed (after the summary)')
    .option('--limit <n>', 'with --details: list at most this many keys')
    .addHelpText(
      'after',
      `
Compares the state at <from> with the state at <to>: "added" keys did not exist (or were
deleted) at <from>, "deleted" ones no longer exist at <to>, "changed" ones are another version
with other content, "rewritten" ones another version with the same content (same size, and same
ETag or the same content in the repository). --details lists each key with both sizes, both
ETags and the time of the change (for a deleted key: when it was deleted).
Times: ISO 8601 (local time unless it has an offset), a run id / prefix / number,
90s / 15m / 2h / 3d / 1w ago, or now. For unversioned sources the resolution is one run: several
changes between two runs look like one.`,
    )
    .action(
      action(async ({ cmd, reporter }, fromText: string, toText: string) => {
        const flags = cmd.opts<DiffFlags>();
        const max = limitOption(flags.limit) ?? Infinity;
        const ctx = await openAll(cmd, { reporter });
        try {
          const q = new CatalogQueries(ctx.catalog);
          const now = Date.now();
          const from = instantOption(fromText, ctx.catalog, 'diff <from>', now);
          const to = instantOption(toText, ctx.catalog, 'diff <to>', now);
          const scope = scopeOf(ctx, q, flags);
          const summary = q.diffSummary(from, to, scope);
          const header = `from ${describeCut(from, ctx.catalog)} to ${describeCut(to, ctx.catalog)}`;
          if (!reporter.json) reporter.info(describe(summary, header, scope, flags.details === true));
          let listed = 0;
          if (flags.details) {
            const printer = diffPrinter(reporter);
            for (const items of allPages(q.diffDetails(from, to, scope), (after) => q.diffDetails(from, to, scope, { after }))) if (!printer.add(items, max)) break;
            listed = printer.count;
          }
          if (reporter.json) reporter.summary({ from: cutJson(from), to: cutJson(to), ...scopeJson(scope), ...summary, ...(flags.details ? { listed } : {}) }, '');
        } finally {
          ctx.close();
        }
      }),
    );
}

/** --bucket, else the group's sources from the policy (or, without one, the catalog), narrowed by --prefix. */
function scopeOf(ctx: Opened, q: CatalogQueries, flags: DiffFlags): DiffScope {
  const scope: DiffScope = {};
  if (flags.prefix !== undefined) scope.prefix = flags.prefix;
  if (flags.group !== undefined) {
    scope.group = flags.group;
    requireGroup(ctx.policy, ctx.catalog, flags.group);
    const group = ctx.policy.groups.find((g) => g.name === flags.group);
    if (group !== undefined) scope.buckets = group.sources.map(sourceName);
  }
  if (flags.bucket !== undefined) {
    requireBucket(q, flags.bucket);
    scope.buckets = [flags.bucket];
  }
  return scope;
}

function scopeJson(scope: DiffScope): Record<string, unknown> {
  return { ...(scope.group === undefined ? {} : { group: scope.group }), ...(scope.prefix === undefined ? {} : { prefix: scope.prefix }) };
}

/**
 * The --details list: both sizes, both ETags (quotes dropped), and the time of the change: when
 * the new version was written, or for a deleted key when it was deleted.
 */
export function diffPrinter(reporter: Reporter): ListPrinter<DiffEntry> {
  const etag = (side: DiffSide | null) => (side === null ? '-' : (side.etag ?? '-').replace(/"/g, ''));
  return new ListPrinter<DiffEntry>(
    reporter,
    'change',
    [
      { header: 'CHANGE', value: (d) => d.change },
      { header: 'BEFORE', value: (d) => (d.before === null ? '-' : formatBytes(d.before.size)), right: true },
      { header: 'AFTER', value: (d) => (d.after === null ? '-' : formatBytes(d.after.size)), right: true },
      { header: 'TIME', value: (d) => (d.change === 'deleted' ? formatTimeMs(d.deletedAt) : formatTimeMs(d.after?.time ?? null)) },
      { header: 'ETAG BEFORE', value: (d) => etag(d.before) },
      { header: 'ETAG AFTER', value: (d) => etag(d.after) },
      { header: 'OBJECT', value: (d) => `s3://${d.bucket}/${d.key}` },
    ],
    (d) => ({
      ...d,
      before: d.before === null ? null : withIso(d.before, 'time'),
      after: d.after === null ? null : withIso(d.after, 'time'),
      deletedAt: d.deletedAt,
      deletedAtIso: isoTime(d.deletedAt),
    }),
  );
}

function describe(s: DiffSummary, header: string, scope: DiffScope, details: boolean): string {
  const where = [
    s.buckets.length === 0 ? 'no buckets' : `${s.buckets.length === 1 ? 'bucket' : 'buckets'} ${s.buckets.join(', ')}`,
    scope.prefix === undefined ? '' : `prefix ${scope.prefix}`,
    scope.group === undefined ? '' : `group ${scope.group}`,
  ].filter((x) => x !== '');
  const total = s.added.objects + s.changed.objects + s.rewritten.objects + s.deleted.objects;
  const lines = [`${header}, ${where.join(', ')}:`, ...summaryLines(s)];
  if (total === 0) lines.push('no changes');
  else if (!details) lines.push('(list the keys with --details)');
  return lines.join('\n');
}

/** The counts of a diff (or of what a run recorded), one line per kind; `rewritten` only when there are some. */
export function summaryLines(s: DiffSummary, indent = '  '): string[] {
  const line = (kind: string, n: number, text: string) => `${indent}${kind.padEnd(10)} ${plural(n, 'object').padEnd(14)} ${text}`;
  return [
    line('added', s.added.objects, formatBytes(s.added.bytes)),
    line('changed', s.changed.objects, `${formatBytes(s.changed.bytesBefore)} -> ${formatBytes(s.changed.bytes)}`),
    ...(s.rewritten.objects > 0 ? [line('rewritten', s.rewritten.objects, `${formatBytes(s.rewritten.bytes)} (a new version with the same content: not a change)`)] : []),
    line('deleted', s.deleted.objects, formatBytes(s.deleted.bytes)),
  ];
}
