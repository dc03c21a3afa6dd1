import type { Command } from 'commander';
import type { StateCut } from '../catalog/catalog.js';
import { describeCut } from '../catalog/instant.js';
import { allPages, CatalogQueries, type DiffScope, type DiffSummary } from '../catalog/queries.js';
import { sourceName } from '../engine/sources.js';
import { UsageError } from '../errors.js';
import type { Policy } from '../policy/types.js';
import { requireGroupBucketsKnown, requireInScope, type KeySelection } from './catalog-scope-guard.js';
import { action } from './action.js';
import { openAll, type Opened } from './context.js';
import { liveDiff, liveSelects } from './diff-live.js';
import { groupsCovering, isLastClean, resolveLastClean } from './last-clean.js';
import { diffPrinter, summaryLines } from './diff-output.js';
import { cutJson, instantOption, limitOption, requireBucket, requireGroup, warnBeforeFirstRun } from './query-common.js';

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
    .argument('<from>', 'the earlier instant or run, or last-clean (as rollback --at takes it)')
    .argument('<to>', 'the later instant or run, or "live": the source buckets as they are now')
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

\`diff <from> live\` lists the policy's sources now (only listings: no object is read) and
compares them with the backup's state at <from> (last-clean works here too, as for rollback),
to check a repair without another backup:
"unchanged" keys have the same ETag and size, which for multipart uploads (and SSE-KMS or SSE-C)
is not a checksum of the content, so such a key may show as changed with the same bytes. The
keys that differ are printed as they are found (--details), the counts last; the last line says
"identical" or "differs". Exit 0 either way; --json's summary has "identical": true/false.
Times: ISO 8601 (local time unless it has an offset), a run id / prefix / number,
90s / 15m / 2h / 3d / 1w ago, now, or last-clean (the state the last clean run before the oldest
unacknowledged suspect run recorded, for the groups covering --bucket or --group). For unversioned sources the resolution is one run: several
changes between two runs look like one.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }, fromText: string, toText: string) => {
        const flags = cmd.opts<DiffFlags>();
        const max = limitOption(flags.limit) ?? Infinity;
        if (flags.limit !== undefined && flags.details !== true) throw new UsageError('--limit limits the keys --details lists: give --details too');
        const live = toText.trim().toLowerCase() === 'live';
        const ctx = await openAll(cmd, { reporter, signal, selects: (policy) => (live ? liveSelects(policy, flags) : diffSelection(policy, flags)) });
        try {
          const q = new CatalogQueries(ctx.catalog);
          const now = Date.now();
          const cutOf = (text: string, label: string): StateCut => {
            const cut = isLastClean(text)
              ? resolveLastClean(ctx.catalog, flags.group === undefined ? groupsCovering(ctx.policy, flags.bucket) : [flags.group], reporter.event, label).cut
              : instantOption(text, ctx.catalog, label, now);
            warnBeforeFirstRun(ctx.catalog, cut, label, reporter.event);
            return cut;
          };
          const from = cutOf(fromText, 'diff <from>');
          if (live) {
            await liveDiff(ctx, q, reporter, from, flags, max);
            return;
          }
          const to = cutOf(toText, 'diff <to>');
          const scope = scopeOf(ctx, q, flags);
          const summary = q.diffSummary(from, to, scope);
          const header = `from ${describeCut(from, ctx.catalog)} to ${describeCut(to, ctx.catalog)}`;
          if (!reporter.json) reporter.info(describe(summary, header, scope, flags.details === true));
          let listed = 0;
          if (flags.details) {
            const printer = diffPrinter(reporter);
            for (const items of allPages(q.diffDetails(from, to, scope), (after) => q.diffDetails(from, to, scope, { after }))) if (!(await printer.add(items, max))) break;
            listed = printer.count;
          }
          if (reporter.json) reporter.summary({ from: cutJson(from, ctx.catalog), to: cutJson(to, ctx.catalog), ...scopeJson(scope), ...summary, ...(flags.details ? { listed } : {}) }, '');
        } finally {
          ctx.close();
        }
      }),
    );
}


/**
 * The keys both sides of a diff read: --bucket, else the group's buckets (every key of them its
 * runs recorded, also under a prefix the policy no longer names), else every bucket; under
 * --prefix. null for a group the policy does not name (its buckets are what its runs recorded).
 */
function diffSelection(policy: Policy, flags: DiffFlags): KeySelection[] | null {
  const prefix = flags.prefix ?? '';
  if (flags.bucket !== undefined) return [{ bucket: flags.bucket, prefix }];
  if (flags.group === undefined) return [{ bucket: null, prefix }];
  const group = policy.groups.find((g) => g.name === flags.group);
  return group === undefined ? null : group.sources.map((s) => ({ bucket: sourceName(s), prefix }));
}

/** --bucket, else the group's sources from the policy (or, without one, the catalog), narrowed by --prefix. */
function scopeOf(ctx: Opened, q: CatalogQueries, flags: DiffFlags): DiffScope {
  const scope: DiffScope = {};
  if (flags.prefix !== undefined) scope.prefix = flags.prefix;
  const group = flags.group === undefined ? undefined : ctx.policy.groups.find((g) => g.name === flags.group);
  const selection = diffSelection(ctx.policy, flags);
  // A group the policy does not name: its buckets are those its runs recorded, which only a whole catalog knows.
  if (selection === null) requireGroupBucketsKnown(ctx.catalog, 'diff', flags.group!);
  requireInScope(ctx.catalog, 'diff', selection ?? []);
  if (flags.group !== undefined) {
    scope.group = flags.group;
    requireGroup(ctx.policy, ctx.catalog, flags.group);
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

