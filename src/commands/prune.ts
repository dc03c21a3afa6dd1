import type { Command } from 'commander';
import { prune, type PruneReport } from '../engine/prune.js';
import { ExitCode, UsageError } from '../errors.js';
import { formatBytes, formatDuration, parseFraction } from '../util/format.js';
import { plural } from './query-common.js';
import { action } from './action.js';
import { openAll } from './context.js';

export function register(program: Command): void {
  program
    .command('prune')
    .description('delete packs nothing refers to and repack mostly-empty ones (exclusive lock)')
    .option('--max-unused <percent>', 'unused share of pack bytes to tolerate; emptier packs are repacked', '5%')
    .option('--dry-run', 'only say what would be deleted and repacked; change nothing')
    .addHelpText(
      'after',
      `
Used data: every blob a catalogued version refers to, and the record blobs of every run
manifest in the repository. Packs with no used blob are deleted; partly used packs are
repacked (used blobs copied into new packs), emptiest first, until the unused bytes left are
at most --max-unused of all pack bytes. New packs and index files are written before the old
ones are deleted, so a crash at any point leaves a restorable repository; run prune again to
finish. Objects under Object Lock retention are kept and listed with the date they become
deletable. The catalog must know every run in the repository (else: \`catalog rebuild\` first).`,
    )
    .action(
      action(async ({ cmd, reporter, signal }) => {
        const opts = cmd.opts<{ maxUnused: string; dryRun?: boolean }>();
        const maxUnused = parseFraction(opts.maxUnused);
        if (maxUnused === null) throw new UsageError(`--max-unused ${opts.maxUnused}: expected a percentage from 0% to 100%, such as 5%`);
        const ctx = await openAll(cmd, { reporter, writes: true, wholeCatalog: true, signal });
        try {
          if (!opts.dryRun) ctx.repo.requireWritable();
          const report = await prune({ repo: ctx.repo, catalog: ctx.catalog, maxUnused, dryRun: opts.dryRun ?? false, events: reporter.event, signal });
          reporter.summary({ ...report, ok: report.damaged.length === 0 && report.missing.length === 0 }, describe(report));
          return report.damaged.length === 0 && report.missing.length === 0 ? ExitCode.ok : ExitCode.error;
        } finally {
          ctx.close();
        }
      }),
    );
}

function describe(r: PruneReport): string {
  const would = r.dryRun ? 'would be ' : '';
  const b = r.bytes;
  const lines = [
    `${r.dryRun ? 'dry run: ' : ''}${plural(r.packs.before, 'pack')} (${formatBytes(b.before)}): ${formatBytes(b.used)} used, ${formatBytes(b.unusedBefore)} unused (${pct(b.unusedBefore, b.before)})`,
    `packs ${would}deleted: ${r.packs.removed}, ${would}repacked: ${r.packs.repacked}, kept: ${r.packs.kept}${r.dryRun ? '' : `, written: ${r.packs.written} (${formatBytes(b.written)})`}`,
    `index files ${would}deleted or replaced: ${r.indexFiles.removed} of ${r.indexFiles.before}${r.dryRun ? '' : `, written: ${r.indexFiles.written}`}`,
    `${r.dryRun ? 'would free' : 'freed'} ${formatBytes(b.freed)}, ${r.dryRun ? 'would rewrite' : 'rewrote'} ${formatBytes(b.rewritten)}; unused ${r.dryRun ? 'would be' : 'now'} ${formatBytes(b.unusedAfter)} (${r.unusedAfterPercent}% of pack bytes; limit ${Math.round(r.maxUnused * 10_000) / 100}%)`,
    `requests: ${r.requests.list} list, ${r.requests.get} get, ${r.requests.put} put, ${r.requests.delete} delete, in ${formatDuration(r.durationMs)}`,
  ];
  for (const o of r.retained) lines.push(`retained: ${o.object} locked until ${o.lockedUntil.slice(0, 10)}; deletable then`);
  for (const d of r.damaged) lines.push(`DAMAGE: ${d.what}: ${d.problem}`);
  for (const m of r.missing) lines.push(`MISSING: pack ${m} is used but not in the repository (run \`lakeguard verify\`)`);
  return lines.join('\n');
}

function pct(part: number, whole: number): string {
  return whole === 0 ? '0%' : `${Math.round((part / whole) * 1000) / 10}%`;
}
