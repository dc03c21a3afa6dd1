import type { Command } from 'commander';
import { copySourceOf, sourceRunRefError } from '../catalog/copied-runs.js';
import { allPages, CatalogQueries, RUN_KEYS_COUNTED_UP_TO, type DiffSummary, type RunDetails, type RunVersion } from '../catalog/queries.js';
import { ambiguousRunSetName, runSetOfRef, runSetsNamed, type RunSet } from '../catalog/run-sets.js';
import type { FailureRecord, RunRow } from '../catalog/types.js';
import { listDrills, type DrillRow } from '../catalog/drills.js';
import { UsageError } from '../errors.js';
import { DAMAGE_NEXT_STEP } from '../engine/sync.js';
import { unreadableNote } from './unreadable.js';
import { drillJson } from './calendar.js';
import { formatBytes, formatDuration, formatTimeMs, table } from '../util/format.js';
import { printable } from '../util/printable.js';
import { action } from './action.js';
import { catalogScope, isRangeScope, scopeIsOnDemand, type CatalogPrefix } from '../catalog/scope.js';
import { holdsOnly, requireWholeCatalog } from '../catalog/scope.js';
import { openAll } from './context.js';
import { csvRow, drained, limitOption, ListPrinter, plural, requireGroup, withIso } from './query-common.js';
import { endQueryWhenStdoutFails } from './output-streams.js';
import type { Reporter } from './reporter.js';
import { registerAck, runMarks, showAnomalies, verdictLines } from './runs-anomalies.js';
import { isRunSet, runSetMark, runSetMessage, runSetStatus, runsAndRunSets, showRunSet } from './runs-sets.js';

export function register(program: Command): void {
  const runs = program
    .command('runs')
    .description('list backup runs recorded in the catalog (`runs show <id>` for one run)')
    .option('-g, --group <name>', 'only runs of this group')
    .addHelpText(
      'after',
      `
FINISHED is when a run ended, to the millisecond: pasted into \`restore --at\` (or ls/find/diff
--at) it gives the state that run recorded, including the deletions it noticed while it ran
(an unversioned source's deletion is stamped when the run sees it). A run id gives the same
state by run: \`--at <id>\` or \`restore --run <id>\`. A suspect run (anomalies found, not yet
acknowledged) shows "! SUSPECT" after its status: \`runs show <id> --anomalies\` says why,
\`runs ack <id>\` records that you looked. --json prints one "run" message per run (with
"suspect" and "acknowledged"), one "drill" message per restore drill, then a "summary".

A sharded backup (\`backup --shards N\`) is one row per group: its run set, with the status
complete, partial, failed (every attempt failed or was interrupted) or running and "(shards
done/N)", with the indexes no attempt is known of ("shard 4 with nothing recorded in 12m00s"); --json adds
"runSet" and "shards" ({of, complete, missing, notStarted, notStartedSince, attempts}).
\`runs show <run set id>\` lists its shards and the missing ones.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const opts = cmd.opts<{ group?: string }>();
        endQueryWhenStdoutFails(reporter);
        // Run rows come from the manifests: a fresh host reads no key's records for them (on demand).
        const ctx = await openAll(cmd, { reporter, signal, selects: () => [] });
        try {
          if (opts.group !== undefined) requireGroup(ctx.policy, ctx.catalog, opts.group);
          const runs = runsAndRunSets(ctx.catalog, opts.group);
          const drills = listDrills(ctx.catalog).filter((d) => opts.group === undefined || d.scope === `group:${opts.group}`);
          const runMark = runMarks(ctx.catalog);
          const mark = (r: RunRow | RunSet) => (isRunSet(r) ? runSetMark(r, runMark) : runMark(r.id));
          if (reporter.json) {
            for (const r of runs) {
              if (isRunSet(r)) reporter.data(runSetMessage(r, runMark), '');
              else reporter.data({ message_type: 'run', ...withIso(r, 'started', 'finished'), suspect: mark(r) === 'suspect', acknowledged: mark(r) === 'acknowledged' }, '');
            }
            for (const d of drills) reporter.data({ message_type: 'drill', ...drillJson(d) }, '');
            reporter.summary({ runs: runs.length, drills: drills.length, ...(opts.group === undefined ? {} : { group: opts.group }) }, '');
            return;
          }
          const rows = runs.map((r) => [
            r.id,
            r.group,
            r.finished === null ? '-' : formatTimeMs(r.finished),
            isRunSet(r) ? runSetStatus(r, mark(r)) : mark(r) === 'suspect' ? `${r.status} ! SUSPECT` : r.status,
            r.counters?.objectsSeen ?? 0,
            (r.counters?.objectsNew ?? 0) + (r.counters?.objectsChanged ?? 0),
            r.counters?.objectsFailed ?? 0,
            formatBytes(r.counters?.bytesStored ?? 0),
            // A run set still running has no wall time yet (its counters sum what its shards did).
            r.counters === null || r.finished === null ? '-' : formatDuration(r.counters.durationMs),
          ]);
          reporter.data(
            null,
            runs.length === 0
              ? ctx.unreadable > 0
                ? `no runs${opts.group === undefined ? '' : ` of group ${opts.group}`} in the catalog: ${unreadableNote(ctx.unreadable)!}; ${DAMAGE_NEXT_STEP}`
                : `no runs${opts.group === undefined ? '' : ` of group ${opts.group}`} yet: run \`lakeguard backup\``
              : table(['ID', 'GROUP', 'FINISHED', 'STATUS', 'OBJECTS', 'NEW', 'FAILED', 'STORED', 'DURATION'], rows),
          );
          if (drills.length > 0) reporter.data(null, `\nrestore drills (\`lakeguard drill\`)\n${drillTable(drills)}`);
        } finally {
          ctx.close();
        }
      }),
    );

  runs
    .command('show')
    .description("one run's counters, the keys it changed, the versions it recorded and, for partial runs, the objects that failed")
    .argument('<id>', 'run id, unique id prefix or run number')
    .option('--versions', `list every version and delete marker the run recorded (without it: the first ${VERSIONS_SHOWN})`)
    .option('--failures', 'list the objects that failed, with their error, and the entries skipped (symbolic links, special files)')
    .option('--csv', 'print the failures as CSV (bucket,key,version_id,code,message) and nothing else')
    .option('--limit <n>', 'list at most this many versions (with --versions), failures or flagged objects')
    .option('--anomalies', 'list what anomaly detection flagged: the partition findings, then each flagged object with its signals (--json, --csv)')
    .addHelpText(
      'after',
      `
"keys" counts the keys the run recorded a version of as \`lakeguard diff <n-1> <n>\` counts them
(added, changed, rewritten with the same content, deleted). "listing" counts what its listing
found: in a versioned bucket every new version of a key is "new", so a key overwritten three
times is three new versions there and one changed key above. CHANGE in the version list is what
that version did compared with the key's version just before it. --json prints "version"
messages with --versions, "failure" messages with --failures, then a "summary".`,
    )
    // The program sets exitOverride on its direct subcommands only.
    .exitOverride()
    .action(
      action(async ({ cmd, signal, reporter }, ref: string) => {
        const flags = cmd.opts<{ versions?: boolean; failures?: boolean; csv?: boolean; limit?: string; anomalies?: boolean }>();
        const max = limitOption(flags.limit) ?? Infinity;
        // --csv writes the failures (with --anomalies the flagged objects) and nothing else: the versions were left out without a word.
        if (flags.csv && flags.versions) throw new UsageError('--csv lists the failures (with --anomalies, the flagged objects), not the versions', { hint: '`--versions --json` lists every version, one JSON line each' });
        endQueryWhenStdoutFails(reporter);
        // What a run recorded, key by key, is known only to a whole catalog (its counters and
        // verdict come from the manifest: those a scoped catalog shows). An on-demand catalog
        // becomes whole for a listing (its keys are not known before the sync).
        const listing = flags.versions ? '--versions' : flags.failures ? '--failures' : flags.csv ? '--csv' : flags.anomalies ? '--anomalies' : null;
        const ctx = await openAll(cmd, { reporter, signal, selects: () => (listing === null ? [] : null) });
        try {
          const q = new CatalogQueries(ctx.catalog);
          const scope = catalogScope(ctx.catalog);
          if (listing !== null) requireWholeCatalog(ctx.catalog, `runs show ${listing}`, 'every version (and failure) the run recorded');
          // A run set's id (or a unique prefix no run's id has): its shards, as one run.
          const set = runSetOfRef(ctx.catalog, ref);
          if (set !== undefined) {
            // Started with --group when some group of the policy has no run set of that name: its re-run needs it too.
            const named = new Set(runSetsNamed(ctx.catalog, set.name).map((s) => s.group));
            const rerunGroup = ctx.policy.groups.every((g) => named.has(g.name)) ? undefined : set.group;
            return showRunSet(set, reporter, runMarks(ctx.catalog), flags, scope !== null, undefined, copySourceOf(ctx.catalog, set.attempts.map((a) => a.run.id)), rerunGroup);
          }
          // --anomalies shows no keys line: skip counting them.
          const details = q.runShow(ref, flags.anomalies || scope !== null ? 0 : undefined);
          if (details === undefined) throw sourceRunRefError(ctx.catalog, ref) ?? ambiguousRunSetName(ctx.catalog, ref) ?? new UsageError(`no run ${JSON.stringify(ref)} in the catalog`, { hint: 'list runs with `lakeguard runs`' });
          const seq = details.run.seq;
          if (flags.anomalies) return await showAnomalies(ctx.catalog, details.run, reporter, { csv: flags.csv === true, ...(flags.limit === undefined ? {} : { limit: flags.limit }) });
          const pages = () => allPages(q.failures(seq), (after) => q.failures(seq, { after }));
          if (flags.csv && !reporter.json) {
            let out = csvRow(['bucket', 'key', 'version_id', 'code', 'message']);
            let n = 0;
            for (const items of pages()) {
              for (const f of items.slice(0, Math.max(0, max - n))) out += csvRow([f.bucket, f.key, f.versionId, f.code, f.message]);
              n = Math.min(max, n + items.length);
              process.stdout.write(out);
              out = '';
              if (n >= max) break;
              await drained();
            }
            if (out !== '') process.stdout.write(out);
            return;
          }
          // As `runs` marks it: a script reading --json must see what the text's SUSPECT line says.
          const mark = runMarks(ctx.catalog)(details.run.id);
          const marks = { suspect: mark === 'suspect', acknowledged: mark === 'acknowledged' };
          if (scope !== null) return showScoped(details, scope, scopeIsOnDemand(ctx.catalog), verdictLines(ctx.catalog, details.run, true), reporter, marks);
          const listVersions = flags.versions === true || (!reporter.json && !flags.failures);
          if (!reporter.json) reporter.info(describe(details, flags.failures === true || flags.csv === true, verdictLines(ctx.catalog, details.run)));
          if (listVersions && details.versionsRecorded > 0) reporter.info('');
          if (listVersions) {
            // Without --versions, a first look: a few versions and how to see the rest.
            const shown = flags.versions ? max : VERSIONS_SHOWN;
            const printer = runVersionPrinter(reporter);
            for (const items of allPages(q.runVersions(seq, { limit: Math.min(1000, shown + 1) }), (after) => q.runVersions(seq, { after }))) {
              if (!(await printer.add(items, shown))) break;
            }
            if (!flags.versions && details.versionsRecorded > printer.count) {
              reporter.info(`… ${details.versionsRecorded - printer.count} more: \`lakeguard runs show ${details.run.id} --versions\` lists them all (--limit N, --json)`);
            }
          }
          if (flags.failures || flags.csv) {
            const printer = new ListPrinter<FailureRecord>(
              reporter,
              'failure',
              [
                { header: 'CODE', value: (f) => f.code },
                { header: 'OBJECT', value: (f) => `s3://${f.bucket}/${f.key}${f.versionId === null ? '' : ` (version ${f.versionId})`}` },
                { header: 'MESSAGE', value: (f) => f.message.replace(/\s+/g, ' ') },
              ],
              (f) => ({ ...f }),
            );
            for (const items of pages()) if (!(await printer.add(items, max))) break;
          }
          if (reporter.json) {
            let changes: Omit<DiffSummary, 'buckets'> | null = null;
            if (details.changes !== null) {
              const { buckets: _, ...counts } = details.changes;
              changes = counts;
            }
            reporter.summary(
              {
                ...withIso(details.run, 'started', 'finished'),
                ...marks,
                ...(details.unrecorded === undefined ? {} : { unrecorded: details.unrecorded }),
                changes,
                versionsRecorded: details.versionsRecorded,
                deleteMarkersRecorded: details.deleteMarkersRecorded,
                bytesRecorded: details.bytesRecorded,
                failures: details.failures,
                skipped: details.skipped,
              },
              '',
            );
          }
        } finally {
          ctx.close();
        }
      }),
    );

  registerAck(runs);
}

/** How many versions `runs show` lists without --versions. */
const VERSIONS_SHOWN = 20;

function runVersionPrinter(reporter: Reporter): ListPrinter<RunVersion> {
  return new ListPrinter<RunVersion>(
    reporter,
    'version',
    [
      { header: 'CHANGE', value: (v) => (v.change === 'none' ? '-' : v.change) },
      { header: 'TIME', value: (v) => formatTimeMs(v.time) },
      { header: 'SIZE', value: (v) => (v.deleteMarker ? '-' : formatBytes(v.size)), right: true },
      { header: 'ETAG', value: (v) => (v.deleteMarker ? '(delete marker)' : (v.etag ?? '-').replace(/"/g, '')) },
      { header: 'VERSION ID', value: (v) => v.versionId ?? '-' },
      { header: 'OBJECT', value: (v) => `s3://${v.bucket}/${v.key}` },
    ],
    (v) => ({ ...withIso(v, 'time') }),
  );
}

/**
 * `runs show <id>` on a scoped catalog: what the manifest says (status, counters, verdict), and
 * instead of the counts of the versions it recorded, that this catalog does not know them.
 */
function showScoped(
  d: RunDetails,
  scope: readonly CatalogPrefix[],
  onDemand: boolean,
  verdict: [string, string][],
  reporter: Reporter,
  marks: { suspect: boolean; acknowledged: boolean },
): void {
  const lines = headLines(d);
  lines.push(...counterLines(d.run));
  // The way to the run's versions inside the scope (its first prefix, as an example).
  const { bucket, prefix } = scope[0] ?? { bucket: '', prefix: '' };
  // Under a prefix P of bucket `b`: what the run changed (a diff from the run before it), or for
  // the first run the catalog holds (no run before it to diff from) the state it recorded.
  const underP = (b: string, what: string): string =>
    d.previousSeq === null
      ? `\`lakeguard ls s3://${b}/P --at ${d.run.id}\` ${what === 'lists' ? 'shows' : `${what} and shows`} what it recorded under a prefix P`
      : `\`lakeguard diff ${d.previousSeq} ${d.run.seq} --bucket ${b} --prefix P --details\` ${what === 'lists' ? 'lists' : `${what} and lists`} what it changed under a prefix P`;
  const inside = onDemand
    ? // On demand, any prefix is one command away (docs/catalog.md "On-demand catalogs").
      `${underP('B', 'imports')}; \`lakeguard runs show ${d.run.id} --versions\` imports the whole repository`
    : scope.length === 0 || isRangeScope(scope)
      ? `${underP(bucket || 'B', 'lists')} inside the key range`
      : d.previousSeq !== null
      ? `\`lakeguard diff ${d.previousSeq} ${d.run.seq} --bucket ${bucket}${prefix === '' ? '' : ` --prefix ${prefix}`} --details\` lists what it changed inside it`
      : `\`lakeguard ls s3://${bucket}/${prefix} --at ${d.run.id}\` shows what it recorded inside it`;
  lines.push(['versions', printable(`not known here: ${holdsOnly(scope, onDemand)}; ${inside}`)]);
  lines.splice(3, 0, ...verdict);
  reporter.summary(
    {
      ...withIso(d.run, 'started', 'finished'),
      ...marks,
      // Null, not the scope's share: these count the whole run.
      changes: null,
      versionsRecorded: null,
      deleteMarkersRecorded: null,
      bytesRecorded: null,
      failures: null,
      skipped: null,
      scope,
    },
    lines.map(([k, v]) => `${k.padEnd(9)} ${v}`).join('\n'),
  );
}

/** The first lines of `runs show`: which run, whose, how it ended. */
function headLines(d: RunDetails): [string, string][] {
  const r = d.run;
  const c = r.counters;
  return [
    ['run', `${r.id} (#${r.seq})`],
    ['group', r.group],
    ['status', d.unrecorded === undefined ? r.status : `${r.status}, not in the repository: its manifest could not be written (${d.unrecorded}); the next \`lakeguard backup\` on host ${r.host ?? '-'} records it`],
    ['host', r.host ?? '-'],
    ['started', formatTimeMs(r.started)],
    ['finished', r.finished === null ? '-' : `${formatTimeMs(r.finished)}${c === null ? '' : ` (${formatDuration(c.durationMs)})`}`],
  ];
}

/** What the run's manifest counted: its listing, data, blobs and requests. */
function counterLines(r: RunRow): [string, string][] {
  const c = r.counters;
  if (c === null) return [];
  return [
    [
      'listing',
      `${c.objectsSeen} seen: ${c.objectsNew} new, ${c.objectsChanged} changed, ${c.objectsUnchanged} unchanged, ` +
        `${c.objectsDeleted} deleted, ${c.objectsFailed} failed, ${c.objectsExcluded} excluded` +
        (c.objectsSkipped ? `, ${c.objectsSkipped} skipped (not regular files)` : ''),
    ],
    ...Object.entries(c.inventory ?? {}).map(([bucket, at]): [string, string] => ['inventory', inventoryListing(bucket, at)]),
    ...(c.objectsGoneSinceReport ? [['inventory', `${c.objectsGoneSinceReport} listed keys were deleted since their report (not read; the next report shows them gone)`] as [string, string]] : []),
    ...(c.objectsNewerThanReport
      ? [['inventory', `${c.objectsNewerThanReport} keys kept as the catalog knows them: watch (or another run) saw them after their report was made, which lists them older or not at all`] as [string, string]]
      : []),
    ['data', `${formatBytes(c.bytesRead)} read, ${formatBytes(c.bytesNew)} new, ${formatBytes(c.bytesStored)} stored in ${plural(c.packsWritten, 'pack')}`],
    ['blobs', `${c.blobsNew} new, ${c.blobsDeduplicated} deduplicated`],
    ['requests', Object.entries(c.requests).map(([k, v]) => `${v} ${k}`).join(', ')],
  ];
}

function describe(d: RunDetails, listingFailures: boolean, verdict: [string, string][]): string {
  const r = d.run;
  const lines = headLines(d);
  const k = d.changes;
  const asDiff = d.previousSeq !== null ? `\`lakeguard diff ${d.previousSeq} ${r.seq}\`` : '';
  lines.push([
    'keys',
    k === null
      ? `not counted for a run of more than ${RUN_KEYS_COUNTED_UP_TO.toLocaleString('en-US')} versions${asDiff === '' ? '' : `: ${asDiff} counts them`}`
      : `${k.added.objects} added, ${k.changed.objects} changed, ${k.rewritten.objects > 0 ? `${k.rewritten.objects} rewritten (same content), ` : ''}` +
        `${k.deleted.objects} deleted` +
        (asDiff === '' ? '' : ` (as ${asDiff} counts them)`),
  ]);
  lines.push(...counterLines(r));
  lines.push([
    'versions',
    `${d.versionsRecorded} recorded${d.deleteMarkersRecorded > 0 ? ` (${plural(d.deleteMarkersRecorded, 'delete marker')})` : ''}, ${formatBytes(d.bytesRecorded)}`,
  ]);
  lines.push(['failures', d.failures === 0 ? 'none' : `${d.failures}`]);
  if (d.skipped > 0) lines.push(['skipped', `${d.skipped} (symbolic links, special files: not backed up)`]);
  if (d.failures + d.skipped > 0) lines[lines.length - 1]![1] += listingFailures ? ':' : ' (list them with --failures, or --csv)';
  lines.splice(3, 0, ...verdict);
  return lines.map(([k, v]) => `${k.padEnd(9)} ${v}`).join('\n');
}

/** Drills as `runs` lists them after the runs: the newest last, as the runs. */
function drillTable(drills: readonly DrillRow[]): string {
  const rows = drills.map((d) => [
    d.name,
    d.scope,
    formatTimeMs(d.created),
    d.ok ? 'passed' : `FAILED (${d.doc.objects.damaged} damaged)`,
    `${d.doc.objects.verified}/${d.doc.objects.sampled}`,
    formatBytes(d.doc.bytes),
    formatDuration(d.doc.rtoMs),
    d.doc.rpoMs === null ? '-' : formatDuration(d.doc.rpoMs),
  ]);
  return table(['DRILL', 'SCOPE', 'FINISHED', 'RESULT', 'VERIFIED', 'BYTES', 'RTO', 'RPO'], rows);
}

/**
 * Where a run's listing of `bucket` came from when it was an S3 Inventory report made at `at`
 * (counters.inventory): what the run knows of the bucket is as of then, not of the run.
 */
export function inventoryListing(bucket: string, at: string): string {
  return `${bucket} listed from its S3 Inventory report of ${formatTimeMs(Date.parse(at))} (newer changes are the report's lag)`;
}
