/**
 * How anomaly verdicts are shown (docs/anomalies.md, docs/output.md): the `backup` output of a
 * suspect run, `runs show <id> --anomalies [--json|--csv]`, and `runs ack <id>`. runs.ts and
 * backup.ts call in here so that their own code stays about runs and backups.
 */
import type { Command } from 'commander';
import { acksOfRun, flaggedObjects, partitionStatsOfRun, runVerdict, shownAck, suspectRuns, type AckRow, type FlaggedObject } from '../catalog/anomalies.js';
import type { PartitionFinding } from '../catalog/anomaly-types.js';
import type { Catalog } from '../catalog/catalog.js';
import { ambiguousRunSetName, runSetOfRef, type RunSet } from '../catalog/run-sets.js';
import type { RunRow } from '../catalog/types.js';
import type { Repository } from '../repository/repository.js';
import { acknowledgeRun } from '../engine/ack.js';
import type { BackupSummary } from '../engine/events.js';
import { UsageError } from '../errors.js';
import { formatBytes, formatTimeMs } from '../util/format.js';
import { printable } from '../util/printable.js';
import { action } from './action.js';
import { openAll } from './context.js';
import { csvRow, drained, limitOption, ListPrinter, plural } from './query-common.js';
import type { JsonMessage, Reporter } from './reporter.js';

/** Findings shown in the text output of `backup`; `runs show --anomalies` lists all. */
const FINDINGS_SHOWN = 10;

/** `backup --json`: one `anomaly` message per finding of a run. */
export function anomalyMessages(s: BackupSummary): JsonMessage[] {
  if (s.dryRun || s.anomalies === undefined) return [];
  return s.anomalies.findings.map((f) => ({ message_type: 'anomaly', runId: s.runId, group: s.group, bucket: f.bucket, partition: f.partition, rules: f.rules, reasons: f.reasons }));
}

/** `backup`'s text for a suspect run: that it is, why, and the command to look closer (empty for a clean run). */
export function suspectBlock(s: BackupSummary): string {
  const a = s.anomalies;
  if (s.dryRun || a === undefined || !a.suspect) return '';
  const lines = [
    '',
    `  SUSPECT   anomalies in ${plural(a.findings.length, 'partition')}, ${plural(a.flaggedObjects, 'object')} flagged: the backup is complete, but what it recorded may be damage`,
  ];
  for (const f of a.findings.slice(0, FINDINGS_SHOWN)) {
    for (const reason of f.reasons) lines.push(`            s3://${printable(`${f.bucket}/${f.partition}`)}: ${printable(reason)}`);
  }
  if (a.findings.length > FINDINGS_SHOWN) lines.push(`            and ${a.findings.length - FINDINGS_SHOWN} more partitions`);
  lines.push(
    `  next      lakeguard runs show ${s.runId} --anomalies`,
    `            (to repair: \`${rollbackHint(a.findings)}\`${otherBuckets(a.findings)}; if expected: \`lakeguard runs ack ${s.runId}\`)`,
  );
  return lines.join('\n');
}

/**
 * The rollback a responder would try first: the first finding's bucket, under the deepest prefix
 * (at a `/`) that holds every finding of that bucket, back to the last clean run. (Naming only
 * the first partition would leave the others poisoned.)
 */
export function rollbackHint(findings: readonly PartitionFinding[]): string {
  const first = findings[0];
  if (first === undefined) return 'lakeguard rollback --bucket B --prefix P --at last-clean --dry-run';
  const prefix = commonPrefix(findings.filter((f) => f.bucket === first.bucket).map((f) => f.partition));
  return `lakeguard rollback --bucket ${printable(first.bucket)}${prefix === '' ? '' : ` --prefix ${printable(prefix)}`} --at last-clean --dry-run`;
}

/** After the hint: that findings in other buckets need their own rollback ('' when none). */
export function otherBuckets(findings: readonly PartitionFinding[]): string {
  const others = new Set(findings.map((f) => f.bucket).filter((b) => b !== findings[0]?.bucket)).size;
  return others === 0 ? '' : ` (and the same for ${plural(others, 'other bucket')})`;
}

/** The longest common prefix of partition prefixes, cut back to its last `/`. */
function commonPrefix(partitions: readonly string[]): string {
  let common = partitions[0] ?? '';
  for (const p of partitions) {
    let i = 0;
    while (i < common.length && i < p.length && common[i] === p[i]) i++;
    common = common.slice(0, i);
  }
  return common.slice(0, common.lastIndexOf('/') + 1);
}

/** The mark of a run in `runs` and `calendar`: 'suspect', 'acknowledged' or null. */
export function runMarks(catalog: Catalog): (runId: string) => 'suspect' | 'acknowledged' | null {
  const marks = suspectRuns(catalog);
  return (runId) => {
    const m = marks.get(runId);
    return m === undefined ? null : m.acknowledged ? 'acknowledged' : 'suspect';
  };
}

/** The `runs show` lines about a run's verdict (none for a run without one). */
export function verdictLines(catalog: Catalog, run: RunRow, scoped = false): [string, string][] {
  const v = runVerdict(catalog, run.seq);
  if (v === undefined) return [];
  // A scoped catalog refuses --anomalies (the flagged objects of the whole run): say where it works.
  const listing = scoped ? '`--anomalies` lists them on a whole catalog' : null;
  if (!v.suspect) return [['anomalies', v.flaggedObjects === 0 ? 'none' : `none by the partition rules; ${plural(v.flaggedObjects, 'object')} carry signals (${listing ?? '--anomalies'})`]];
  const lines: [string, string][] = [['anomalies', `SUSPECT: ${plural(v.findings.length, 'partition')}, ${plural(v.flaggedObjects, 'object')} flagged (${listing ?? 'list them with --anomalies'})`]];
  lines.push(['ack', v.ack === null ? `none: \`lakeguard runs ack ${run.id}\` once you have looked` : describeAck(v.ack)]);
  return lines;
}

function describeAck(a: AckRow): string {
  return `acknowledged${a.incident === 1 ? ' as an incident' : ''}${a.by === null ? '' : ` by ${a.by}`} on ${a.host} at ${formatTimeMs(a.created)}${a.note === null ? '' : `: ${a.note}`}`;
}

/** `runs show <id> --anomalies [--json|--csv]`: the partition findings, then every flagged object. */
export async function showAnomalies(catalog: Catalog, run: RunRow, reporter: Reporter, opts: { csv: boolean; limit?: string }): Promise<void> {
  const max = limitOption(opts.limit) ?? Infinity;
  const verdict = runVerdict(catalog, run.seq);
  const objects = flaggedObjects(catalog, run.seq);
  const signalsOf = (o: FlaggedObject): string[] => [...o.signals, ...(o.change === 'deleted' && o.rules.includes('deleted') ? ['deleted'] : []), ...(o.change === 'changed' && o.rules.includes('overwritten') ? ['overwritten'] : [])];
  if (opts.csv && !reporter.json) {
    process.stdout.write(csvRow(['bucket', 'key', 'version_id', 'change', 'size', 'valid_from', 'signals', 'partition', 'rules']));
    let n = 0;
    let out = '';
    for (const o of objects) {
      if (n++ >= max) break;
      out += csvRow([o.bucket, o.key, o.versionId, o.change, String(o.size), new Date(o.validFrom).toISOString(), signalsOf(o).join(' '), o.partition, o.rules.join(' ')]);
      if (n % 1000 === 0) {
        process.stdout.write(out);
        out = '';
        await drained();
      }
    }
    if (out !== '') process.stdout.write(out);
    return;
  }
  if (reporter.json) {
    for (const f of verdict?.findings ?? []) reporter.data({ message_type: 'anomaly', runId: run.id, bucket: f.bucket, partition: f.partition, rules: f.rules, reasons: f.reasons }, '');
  } else {
    reporter.info(findingsText(catalog, run));
  }
  const printer = new ListPrinter<FlaggedObject>(
    reporter,
    'flagged_object',
    [
      { header: 'CHANGE', value: (o) => o.change },
      { header: 'OBJECT', value: (o) => `s3://${o.bucket}/${o.key}${o.versionId === null ? '' : ` (version ${o.versionId})`}` },
      { header: 'SIZE', value: (o) => formatBytes(o.size) },
      { header: 'SIGNALS', value: (o) => signalsOf(o).join(', ') },
    ],
    (o) => ({ ...o, validFrom: new Date(o.validFrom).toISOString(), signals: signalsOf(o) }),
  );
  let page: FlaggedObject[] = [];
  for (const o of objects) {
    page.push(o);
    if (page.length === 1000) {
      if (!(await printer.add(page, max))) break;
      page = [];
    }
  }
  if (page.length > 0) await printer.add(page, max);
  const ack = shownAck(acksOfRun(catalog, run.id));
  if (reporter.json) {
    reporter.summary(
      {
        runId: run.id,
        suspect: verdict?.suspect ?? false,
        acknowledged: ack !== undefined,
        ...(ack === undefined ? {} : { ack: { ...ack, created: new Date(ack.created).toISOString(), incident: ack.incident === 1 } }),
        findings: verdict?.findings.length ?? 0,
        // The verdict's count (versions with signals of their own); the listing adds the deletes
        // and overwrites of partitions whose rules fired, and `listed` counts what it printed.
        flaggedObjects: verdict?.flaggedObjects ?? 0,
        listed: printer.count,
        judged: verdict !== undefined,
      },
      '',
    );
  } else if (printer.count === 0) {
    reporter.info('no flagged objects');
  }
}

function findingsText(catalog: Catalog, run: RunRow): string {
  const v = runVerdict(catalog, run.seq);
  if (v === undefined) return `run ${run.id} was not judged for anomalies (recorded before detection, interrupted, or detection is off)`;
  const lines = [`run ${run.id}: ${v.suspect ? 'SUSPECT' : 'not suspect'}${v.ack === null ? '' : `, ${describeAck(v.ack)}`}`];
  const stats = new Map(partitionStatsOfRun(catalog, run.seq).map((p) => [`${p.bucket}/${p.partition}`, p]));
  for (const f of v.findings) {
    const p = stats.get(`${f.bucket}/${f.partition}`);
    const counts = p === undefined ? '' : ` (${p.before} keys before: ${p.added} added, ${p.changed} changed, ${p.deleted} deleted)`;
    lines.push(`  s3://${printable(`${f.bucket}/${f.partition}`)}${counts}`);
    for (const reason of f.reasons) lines.push(`    ${printable(reason)}`);
  }
  if (v.suspect && v.ack === null) {
    lines.push(`next: \`${rollbackHint(v.findings)}\`${otherBuckets(v.findings)}, then \`lakeguard runs ack ${run.id} --incident\`; or \`lakeguard runs ack ${run.id}\` if these changes were expected`);
  }
  return lines.join('\n') + '\n';
}

/** `runs ack <id> [--note TEXT] [--incident]`. */
export function registerAck(runs: Command): void {
  runs
    .command('ack')
    .description('acknowledge a suspect run: record in the repository that a person looked at it (it is no longer marked and counts as clean; with --incident, as real damage dealt with)')
    .argument('<id>', 'run id, unique id prefix or run number; a run set id acknowledges its suspect shard attempts')
    .option('--note <text>', 'why (kept with the acknowledgement, shown by `runs show`)')
    .option('--incident', 'the run recorded real damage, now dealt with: unmark it, but never take its state as last-clean or its changes as normal')
    .exitOverride()
    .action(
      action(async ({ cmd, signal, reporter }, ref: string) => {
        const opts = cmd.opts<{ note?: string; incident?: boolean }>();
        // A run's verdict and acknowledgements come from the manifests and acks/: no key's records (on demand).
        const ctx = await openAll(cmd, { reporter, signal, writes: true, selects: () => [] });
        try {
          const note = { ...(opts.note === undefined ? {} : { note: opts.note }), ...(opts.incident === true ? { incident: true } : {}) };
          // A run set's id (what `runs` shows for a sharded backup): its suspect shard attempts.
          const set = runSetOfRef(ctx.catalog, ref);
          if (set !== undefined) return await ackRunSet(ctx.repo, ctx.catalog, set, note, reporter);
          const run = ctx.catalog.findRun(ref);
          if (run === undefined) throw ambiguousRunSetName(ctx.catalog, ref) ?? new UsageError(`no run ${JSON.stringify(ref)} in the catalog`, { hint: 'list runs with `lakeguard runs`' });
          const { ack } = await acknowledgeRun(ctx.repo, ctx.catalog, run, note);
          reporter.summary(
            { runId: run.id, ack: ack.id, by: ack.by ?? null, host: ack.host, created: ack.created, note: ack.note ?? null, incident: ack.incident === true },
            `acknowledged run ${run.id}${ack.incident === true ? ' as an incident' : ''}${ack.by === undefined ? '' : ` as ${ack.by}`} (acks/${ack.id}); ${ackEffect(ack.incident === true)}`,
          );
        } finally {
          ctx.close();
        }
      }),
    );
}

/**
 * `runs ack <run set id>`: a run set is suspect when one of its counting shard attempts is, so
 * acknowledging it acknowledges each such attempt (one acks/ document per attempt, as `runs ack
 * <attempt id>` writes). Refused when none is suspect.
 */
async function ackRunSet(repo: Repository, catalog: Catalog, set: RunSet, note: { note?: string; incident?: boolean }, reporter: Reporter): Promise<void> {
  const mark = runMarks(catalog);
  const counting = set.attempts.filter((a) => a.counts);
  const suspect = counting.filter((a) => mark(a.run.id) === 'suspect');
  if (suspect.length === 0) {
    const acked = counting.some((a) => mark(a.run.id) === 'acknowledged');
    throw new UsageError(`run set ${set.id} (${set.name}) ${acked ? 'was already acknowledged' : 'is not suspect; there is nothing to acknowledge'}`, {
      hint: acked ? `see \`lakeguard runs show ${set.id}\`` : 'list suspect runs with `lakeguard runs`',
    });
  }
  const done: { runId: string; shard: number; ack: string; by: string | null; host: string; created: string }[] = [];
  for (const a of suspect) {
    const { ack } = await acknowledgeRun(repo, catalog, a.run, note);
    done.push({ runId: a.run.id, shard: a.index, ack: ack.id, by: ack.by ?? null, host: ack.host, created: ack.created });
  }
  const by = done[0]!.by;
  reporter.summary(
    { runSet: set.id, acks: done, note: note.note ?? null, incident: note.incident === true },
    `acknowledged run set ${set.id} (${set.name})${note.incident === true ? ' as an incident' : ''}: its suspect ${done.length === 1 ? 'shard attempt' : 'shard attempts'} ` +
      `${done.map((d) => `${d.runId} (shard ${d.shard}, acks/${d.ack})`).join(', ')}${by === null ? '' : ` as ${by}`}; ${ackEffect(note.incident === true)}`,
  );
}

/** What an acknowledgement changes, for `runs ack`'s summary line. */
function ackEffect(incident: boolean): string {
  return incident
    ? 'it is no longer marked suspect; its state is never last-clean, and its changes never count as normal'
    : 'it is no longer marked suspect, and counts as clean: its changes are taken as normal (use --incident for real damage)';
}
