import type { Command } from 'commander';
import { forget, type ForgetResult, type RunVerdict } from '../engine/forget.js';
import { objectKey } from '../repository/layout.js';
import { RepositoryLock } from '../repository/locks.js';
import { formatBytes, formatTime } from '../util/format.js';
import { action } from './action.js';
import { openAll, selectGroups } from './context.js';

export function register(program: Command): void {
  program
    .command('forget')
    .description("apply the policy's retention rules: remove runs no rule keeps, and drop the versions no kept run needs")
    .option('--group <name>', 'only the runs of this group')
    .option('--dry-run', 'print every run with the decision and the reasons; change nothing')
    .addHelpText(
      'after',
      `
Every run is printed with why it is kept (latest, last-2, daily-3, weekly-1, monthly-1,
yearly-1, within-30d, min-age, running, pre-anomaly: the last clean run before a suspect run
nobody acknowledged yet, kept whatever keep_* says) or "remove". forget writes a forget document to the
repository, updates the catalog, and deletes run manifests nothing needs any more; it never
deletes packs: run \`lakeguard prune\` afterwards to free the space.`,
    )
    .action(
      action(async ({ cmd, reporter, signal }) => {
        const opts = cmd.opts<{ group?: string; dryRun?: boolean }>();
        const ctx = await openAll(cmd, { reporter, writes: true, wholeCatalog: true, signal });
        try {
          if (opts.group !== undefined) selectGroups(ctx.policy, opts.group);
          const dryRun = opts.dryRun ?? false;
          if (!dryRun) ctx.repo.requireWritable();
          // Dropping versions must not race a backup that is about to refer to them.
          const lock = dryRun ? null : await RepositoryLock.acquire(ctx.repo, 'exclusive', 'forget');
          try {
            const result = await forget(ctx.repo, ctx.catalog, ctx.policy, {
              dryRun,
              signal,
              events: reporter.event,
              ...(opts.group === undefined ? {} : { group: opts.group }),
            });
            reporter.summary(toJson(result), describe(result));
          } finally {
            await lock?.release();
          }
        } finally {
          ctx.close();
        }
      }),
    );
}

function toJson(r: ForgetResult): Record<string, unknown> {
  return {
    dryRun: r.dryRun,
    runs: r.verdicts.map((v) => ({
      id: v.run.id,
      group: v.run.group,
      started: new Date(v.run.started).toISOString(),
      status: v.run.status,
      keep: v.keep,
      reasons: v.reasons,
      ...(v.scopes.length > 1 ? { scopes: v.scopes } : {}),
      // A shard attempt is kept or removed with its run set (one unit).
      ...(v.run.shard === undefined ? {} : { runSet: v.run.shard.set, shard: v.run.shard.index }),
    })),
    runsKept: r.verdicts.filter((v) => v.keep).length,
    runsRemoved: r.forgotten.length,
    versionsDropped: r.dropped.length,
    bytesDropped: r.droppedBytes,
    documents: r.documents,
    manifestsDeleted: r.manifestsDeleted,
    // Forgotten runs whose manifests stay (versions kept runs need are recorded only there), and
    // manifests earlier forgets kept that this one lets go (deleted with manifestsDeleted).
    manifestsKept: r.manifestsKept,
    manifestsReleased: r.released,
    manifestsLocked: r.manifestsLocked,
    plansDeleted: r.plansDeleted,
    checkpointsDeleted: r.checkpointsDeleted,
  };
}

function describe(r: ForgetResult): string {
  const lines: string[] = [];
  const groups = [...new Set(r.verdicts.map((v) => v.run.group))];
  for (const group of groups) {
    lines.push(`group ${group}`);
    for (const v of r.verdicts.filter((x) => x.run.group === group)) lines.push(...runLines(v));
  }
  const kept = r.verdicts.filter((v) => v.keep).length;
  const what = r.dryRun ? 'would remove' : 'removed';
  lines.push(
    `${kept} run${kept === 1 ? '' : 's'} kept, ${what} ${r.forgotten.length}; ${r.dryRun ? 'would drop' : 'dropped'} ${r.dropped.length} object version${r.dropped.length === 1 ? '' : 's'} (${formatBytes(r.droppedBytes)} of source data)`,
  );
  if (r.documents.length > 0) lines.push(`wrote ${objectKey('forgets', r.documents[0]!)}${r.documents.length > 1 ? ` and ${r.documents.length - 1} more parts` : ''}`);
  if (r.manifestsDeleted.length > 0) lines.push(`deleted ${r.manifestsDeleted.length} run manifest${r.manifestsDeleted.length === 1 ? '' : 's'}`);
  const gone = r.emptyRuns.length + r.released.length;
  if (r.dryRun && gone > 0) lines.push(`would delete ${gone} run manifest${gone === 1 ? '' : 's'}`);
  const keptOnes = r.manifestsKept.length;
  if (keptOnes > 0) lines.push(`${r.dryRun ? 'would keep' : 'kept'} the manifest${keptOnes === 1 ? '' : 's'} of ${keptOnes} forgotten run${keptOnes === 1 ? '' : 's'}: versions kept runs need are recorded only there`);
  if (r.plansDeleted.length > 0) lines.push(`deleted the plans of ${r.plansDeleted.length} forgotten run set${r.plansDeleted.length === 1 ? '' : 's'} (runsets/)`);
  if (r.checkpointsDeleted.length > 0) lines.push(`deleted ${r.checkpointsDeleted.length} checkpoint document${r.checkpointsDeleted.length === 1 ? '' : 's'} of shard attempts no re-run needs (checkpoints/)`);
  for (const l of r.manifestsLocked) lines.push(`kept ${l.name}: locked until ${l.lockedUntil.slice(0, 10)}; a later forget deletes it then`);
  if (!r.dryRun && r.dropped.length > 0) lines.push('run `lakeguard prune` to free the space the dropped versions used');
  if (r.dryRun) lines.push('dry run: nothing was changed');
  return lines.join('\n');
}

function runLines(v: RunVerdict): string[] {
  const started = formatTime(v.run.started);
  const decision = v.keep ? `keep    ${v.reasons.join(', ')}` : 'remove';
  const shard = v.run.shard === undefined ? '' : `  (run set ${v.run.shard.set}, shard ${v.run.shard.index} of ${v.run.shard.of})`;
  const lines = [`  ${v.run.id.padEnd(24)} ${started}  ${v.run.status.padEnd(11)} ${decision}${shard}`];
  // Scopes with their own rules may disagree; show each when they do.
  if (v.scopes.length > 1 && new Set(v.scopes.map((s) => `${s.keep}:${s.reasons.join(',')}`)).size > 1) {
    for (const s of v.scopes) lines.push(`      ${s.scope}: ${s.keep ? s.reasons.join(', ') : 'remove'}`);
  }
  return lines;
}
