import type { Command } from 'commander';
import { rebuildCatalog, type RebuildReport } from '../engine/rebuild.js';
import { ExitCode } from '../errors.js';
import { formatBytes, formatDuration } from '../util/format.js';
import { action } from './action.js';
import { openRepository } from './open-repository.js';

/** Damage lines printed in text mode; --json carries the (capped) lists. */
const MAX_PRINTED = 50;

export function register(program: Command): void {
  const catalog = program.command('catalog').description('manage the local catalog, a cache of the repository');
  catalog
    .command('rebuild')
    .description('recreate the catalog from the repository alone (index/ and runs/); the old file is replaced only when the new one is complete')
    .option('--skip-damaged', 'leave out index files and run manifests that fail authentication (each is listed, exit 1) instead of stopping')
    .option('--no-lock', 'take no shared repository lock (read-only credentials); a concurrent prune could then remove what is being read')
    .addHelpText(
      'after',
      `
The catalog file is --catalog, $LAKEGUARD_CATALOG, or the default under ~/.cache/lakeguard.
It must not be open in another lakeguard process (the rebuild refuses). A crash or error
leaves the old catalog untouched.

Exit status: 0 rebuilt, 1 error, or the repository is damaged (object versions whose content
is in no index file, unreadable record blobs, skipped files: each is listed; the rest is in the
new catalog), 10 repository missing, 11 locked (an exclusive operation runs), 12 wrong password,
130 interrupted.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const opts = cmd.opts<{ skipDamaged?: boolean; lock: boolean }>();
        const { policy, repo, catalogPath } = await openRepository(cmd);
        const report = await rebuildCatalog({
          repo,
          catalogPath,
          skipDamaged: opts.skipDamaged ?? false,
          lock: opts.lock,
          concurrency: Math.min(16, policy.concurrency.transfer),
          events: reporter.event,
          signal,
        });
        const damaged = report.damage.length > 0 || report.missingCount > 0;
        reporter.summary({ ...report, ok: !damaged }, describe(report, repo.store.location));
        return damaged ? ExitCode.error : ExitCode.ok;
      }),
    );
}

function describe(r: RebuildReport, location: string): string {
  const lines = [
    `rebuilt catalog ${r.catalog} from ${location} in ${formatDuration(r.durationMs)}`,
    `  ${r.runs} runs, ${r.versions} object versions, ${r.failures} recorded failures`,
    `  ${r.blobs} blobs in ${r.packs} packs from ${r.indexFiles} index files; ${formatBytes(r.bytesRead)} of records read`,
  ];
  if (r.previousRuns !== null) lines.push(`  the replaced catalog had ${r.previousRuns} runs`);
  if (r.damage.length > 0) {
    lines.push(`DAMAGE: ${r.damage.length} problems`);
    for (const d of r.damage.slice(0, MAX_PRINTED)) lines.push(`  ${d.what}: ${d.problem}`);
    if (r.damage.length > MAX_PRINTED) lines.push(`  … and ${r.damage.length - MAX_PRINTED} more (--json lists them)`);
  }
  if (r.missingCount > 0) {
    lines.push(`DAMAGE: ${r.missingCount} object versions refer to blobs in no index file; they were left out of the catalog:`);
    for (const m of r.missing.slice(0, MAX_PRINTED)) {
      lines.push(`  ${m.bucket}/${m.key}${m.versionId === null ? '' : ` (version ${m.versionId})`} from run ${m.run}: blob ${m.blob}`);
    }
    if (r.missingCount > MAX_PRINTED) lines.push(`  … and ${r.missingCount - MAX_PRINTED} more${r.missing.length > MAX_PRINTED ? ' (--json lists up to 1000)' : ''}`);
  }
  if (r.damage.length > 0 || r.missingCount > 0) {
    lines.push('the repository is damaged: everything else is in the new catalog and restorable; run `lakeguard verify --read-data`');
  }
  return lines.join('\n');
}
