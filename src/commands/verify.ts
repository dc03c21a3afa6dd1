import type { Command } from 'commander';
import { verify, type VerifyReport } from '../engine/verify.js';
import { ExitCode, UsageError } from '../errors.js';
import { formatBytes, formatDuration, parseFraction } from '../util/format.js';
import { plural } from './query-common.js';
import type { RepositoryLock } from '../repository/locks.js';
import { printable } from '../util/printable.js';
import { action } from './action.js';
import { releaseLock } from './release-lock.js';
import { openAll } from './context.js';
import { NO_LOCK_FLAG, NO_LOCK_HELP, lockForReading } from './read-lock.js';

export function register(program: Command): void {
  program
    .command('verify')
    .description('check every repository object (config, keys/, index/, runs/, forgets/, acks/, runsets/, packs/) against each other and the catalog; with --read-data, authenticate every byte')
    .option('--read-data', 'download every pack and authenticate and re-hash every blob in it (data and run records)')
    .option('--read-data-subset <fraction>', 'read only this share of the packs, e.g. 10%')
    .option(NO_LOCK_FLAG, NO_LOCK_HELP)
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const opts = cmd.opts<{ readData?: boolean; readDataSubset?: string; lock: boolean }>();
        // Both at once used to read the subset only: a job that asked for every byte got less.
        if (opts.readData && opts.readDataSubset !== undefined) throw new UsageError('give --read-data or --read-data-subset, not both', { hint: '--read-data reads every pack, --read-data-subset 10% a tenth of them' });
        let fraction = opts.readData ? 1 : 0;
        if (opts.readDataSubset !== undefined) {
          const f = parseFraction(opts.readDataSubset);
          if (f === null) throw new UsageError(`--read-data-subset ${opts.readDataSubset}: expected a percentage such as 10%`);
          fraction = f;
        }
        const ctx = await openAll(cmd, { reporter, wholeCatalog: true, signal });
        let lock: RepositoryLock | null = null;
        try {
          // Shared: prune (exclusive) must not delete what verify checks, or report it missing.
          lock = await lockForReading(ctx.repo, 'verify', opts.lock, reporter.event);
          const report = await verify({ repo: ctx.repo, catalog: ctx.catalog, readData: fraction, concurrency: ctx.policy.concurrency.transfer, events: reporter.event, signal });
          reporter.summary({ ...report, ok: report.damage.length === 0 }, describe(report));
          return report.damage.length === 0 ? ExitCode.ok : ExitCode.error;
        } finally {
          await releaseLock(lock, reporter);
          ctx.close();
        }
      }),
    );
}

/** Affected versions printed per damage in text mode; --json lists up to 1000. */
const MAX_PRINTED = 20;

function describe(r: VerifyReport): string {
  const lines = [
    `checked config, ${plural(r.keyFiles, 'key file')}, ${plural(r.indexFiles, 'index file')}, ${plural(r.manifests, 'run manifest')}, ${plural(r.forgets, 'forget and prune document', 'forget and prune documents')}, ${plural(r.acks, 'acknowledgement')}, ${plural(r.runSets, 'run-set plan')} and ${plural(r.packsChecked, 'pack')}; ` +
      `read ${plural(r.packsRead, 'pack')} (${formatBytes(r.bytesRead)}, ${plural(r.blobsRead, 'blob')}) in ${formatDuration(r.durationMs)}`,
  ];
  if (r.unreferencedPacks.count > 0) {
    lines.push(`note: ${plural(r.unreferencedPacks.count, 'pack')} (${formatBytes(r.unreferencedPacks.bytes)}) ${r.unreferencedPacks.count === 1 ? 'is' : 'are'} referenced by nothing (left by an interrupted backup; \`lakeguard prune\` removes them)`);
  }
  for (const key of r.strayObjects) lines.push(`note: ${key} is not a pack (nothing reads it)`);
  for (const note of r.notes) lines.push(`note: ${note}`);
  if (r.damage.length === 0) {
    lines.push('no damage found');
  } else {
    lines.push(`DAMAGE: ${plural(r.damage.length, 'problem')}`);
    for (const d of r.damage) {
      lines.push(`  ${d.what}: ${d.problem}`);
      if (d.runs.length > 0) lines.push(`    affects runs ${d.runs.join(', ')}`);
      for (const a of d.affected.slice(0, MAX_PRINTED)) lines.push(`    affects ${printable(`s3://${a.bucket}/${a.key}`)}${a.versionId === null ? '' : ` (version ${a.versionId})`} from run ${a.run}`);
      if (d.affectedCount > MAX_PRINTED) lines.push(`    … and ${d.affectedCount - MAX_PRINTED} more object versions (--json lists up to ${d.affected.length})`);
    }
  }
  return lines.join('\n');
}
