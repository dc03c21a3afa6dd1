/** `diff <T> live`: the backup's state at T against the source buckets as they are now. */
import type { StateCut } from '../catalog/catalog.js';
import { describeCut } from '../catalog/instant.js';
import type { CatalogQueries, DiffEntry } from '../catalog/queries.js';
import { emptyDiffSummary } from '../catalog/diff-queries.js';
import { compareLive, livePrefixes } from '../engine/live-diff.js';
import { openSource, prefixesWithin, sourceName } from '../engine/sources.js';
import { requireInScope, type KeySelection } from './catalog-scope-guard.js';
import { UsageError } from '../errors.js';
import type { Policy, Source } from '../policy/types.js';
import { formatBytes, formatTimeMs } from '../util/format.js';
import type { Opened } from './context.js';
import { diffPrinter, summaryLines } from './diff-output.js';
import { cutJson, isoTime, plural, requireGroup } from './query-common.js';
import type { Reporter } from './reporter.js';

/** Rows of --details printed at once. */
const PAGE = 500;

export interface LiveFlags {
  group?: string;
  bucket?: string;
  prefix?: string;
  details?: boolean;
}

/**
 * Lists each source in scope now and compares it with the catalog's state at `from`. Prints the
 * counts (and with --details the keys that differ) in diff's shape; the summary says whether
 * they are identical. Exit 0 either way: a difference is an answer, not an error.
 */
export async function liveDiff(ctx: Opened, q: CatalogQueries, reporter: Reporter, from: StateCut, flags: LiveFlags, max: number): Promise<void> {
  const sources = liveSources(ctx, flags);
  // Every key listed is compared with the catalog: a key outside its scope would read as added.
  requireInScope(ctx.catalog, 'diff live', sourceSelection(sources, flags));
  const listedAt = Date.now();
  const summary = emptyDiffSummary(sources.map(sourceName));
  const state = describeCut(from, ctx.catalog);
  const where = [`${summary.buckets.length === 1 ? 'bucket' : 'buckets'} ${summary.buckets.join(', ')}`, flags.prefix === undefined ? '' : `prefix ${flags.prefix}`].filter((x) => x !== '').join(', ');
  reporter.info(`from ${state} to the live ${where}, listed now (${formatTimeMs(listedAt)}):`);
  const unchanged = { objects: 0, bytes: 0 };
  let multipartEtags = 0;
  // The keys that differ are printed as they come, so counts come last (a listing is not re-read).
  const printer = flags.details ? diffPrinter(reporter) : null;
  // Rows go out a page at a time, so the first page sets the table's column widths.
  let page: DiffEntry[] = [];
  const flush = async (): Promise<void> => {
    if (printer !== null && page.length > 0) await printer.add(page, max);
    page = [];
  };
  for (const source of sources) {
    const opened = openSource(source, ctx.policy);
    for (const prefix of livePrefixes(opened, flags.prefix)) {
      for await (const c of compareLive(q, opened, prefix, from)) {
        if (c.kind === 'unchanged') {
          unchanged.objects++;
          unchanged.bytes += c.size;
          continue;
        }
        const e = c.entry;
        const counts = summary[e.change];
        counts.objects++;
        counts.bytes += e.change === 'deleted' ? e.before!.size : e.after!.size;
        if (e.change === 'changed') summary.changed.bytesBefore += e.before!.size;
        if (c.multipartEtag) multipartEtags++;
        if (printer !== null && printer.count + page.length < max) page.push(e);
        if (page.length >= PAGE) await flush();
      }
    }
  }
  await flush();
  const { rewritten: _, ...counts } = summary;
  const differing = summary.added.objects + summary.changed.objects + summary.deleted.objects;
  const lines = [
    ...summaryLines(summary),
    `  ${'unchanged'.padEnd(10)} ${plural(unchanged.objects, 'object').padEnd(14)} ${formatBytes(unchanged.bytes)} (same ETag and size)`,
    differing === 0
      ? `identical: the live ${where} holds the same keys with the same ETags and sizes as the state at ${state}`
      : `differs: ${plural(differing, 'key')}${flags.details ? '' : ' (list them with --details)'}`,
  ];
  if (multipartEtags > 0) {
    lines.push(`${plural(multipartEtags, 'changed object')} with a multipart ETag on one side: an ETag is not a checksum of the content there, the bytes may be the same`);
  }
  reporter.summary(
    {
      from: cutJson(from, ctx.catalog),
      to: 'live',
      listedAt,
      listedAtIso: isoTime(listedAt),
      ...(flags.prefix === undefined ? {} : { prefix: flags.prefix }),
      ...(flags.group === undefined ? {} : { group: flags.group }),
      ...counts,
      unchanged,
      multipartEtags,
      identical: differing === 0,
      ...(printer === null ? {} : { listed: printer.count }),
    },
    lines.join('\n'),
  );
}

/** The keys `diff … live` lists, before the catalog is synced (OpenAllOptions.selects). */
export function liveSelects(policy: Policy, flags: LiveFlags): KeySelection[] {
  return sourceSelection(policySources(policy, flags), flags);
}

function sourceSelection(sources: readonly Source[], flags: LiveFlags): KeySelection[] {
  return sources.flatMap((s) => prefixesWithin(s.prefixes, flags.prefix).map((prefix) => ({ bucket: sourceName(s), prefix })));
}

/** The policy's sources in --group and --bucket, each once (a source in two groups is listed once). */
function policySources(policy: Policy, flags: LiveFlags): Source[] {
  const sources = policy.groups.flatMap((g) => (flags.group === undefined || g.name === flags.group ? g.sources : []));
  return [...new Map(sources.filter((s) => flags.bucket === undefined || sourceName(s) === flags.bucket).map((s) => [sourceName(s), s])).values()];
}

/** The policy's sources in scope: --bucket, else --group's, else every one. Only they can be listed. */
function liveSources(ctx: Opened, flags: LiveFlags): Source[] {
  if (flags.group !== undefined) requireGroup(ctx.policy, ctx.catalog, flags.group);
  const sources = policySources(ctx.policy, flags);
  if (sources.length === 0) {
    const known = [...new Set(ctx.policy.groups.flatMap((g) => g.sources.map(sourceName)))];
    throw new UsageError(`diff live: ${flags.bucket === undefined ? 'no source' : `${JSON.stringify(flags.bucket)} is not a source`}${flags.group === undefined ? '' : ` of group ${flags.group}`} in the policy`, {
      hint: known.length === 0 ? 'add the bucket to a group of the policy' : `the live side lists the policy's sources: ${known.slice(0, 10).join(', ')}`,
    });
  }
  return sources;
}
