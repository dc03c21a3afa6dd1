import type { Command } from 'commander';
import { verify, type VerifyReport } from '../engine/verify.js';
import { ExitCode, UsageError } from '../errors.js';
import { formatBytes, formatDuration, parseFraction } from '../util/format.js';
import { action } from './action.js';
import { openAll } from './context.js';

export function register(program: Command): void {
  program
    .command('verify')
    .description('check that everything the catalog refers to is in the repository (and, with --read-data, readable)')
    .option('--read-data', 'download every pack and authenticate and re-hash every blob')
    .option('--read-data-subset <fraction>', 'read only this share of the packs, e.g. 10%')
    .addHelpText('after', '\nExit status: 0 no damage, 1 damage found (every affected object is named) or error, 10 repository missing, 12 wrong password.')
    .action(
      action(async ({ cmd, reporter }) => {
        const opts = cmd.opts<{ readData?: boolean; readDataSubset?: string }>();
        let fraction = opts.readData ? 1 : 0;
        if (opts.readDataSubset !== undefined) {
          const f = parseFraction(opts.readDataSubset);
          if (f === null) throw new UsageError(`--read-data-subset ${opts.readDataSubset}: expected a percentage such as 10%`);
          fraction = f;
        }
        const ctx = await openAll(cmd);
        try {
          const report = await verify({ repo: ctx.repo, catalog: ctx.catalog, readData: fraction, concurrency: ctx.policy.concurrency.transfer, events: reporter.event });
          reporter.summary({ ...report, ok: report.damage.length === 0 }, describe(report));
          return report.damage.length === 0 ? ExitCode.ok : ExitCode.error;
        } finally {
          ctx.close();
        }
      }),
    );
}

function describe(r: VerifyReport): string {
  const lines = [
    `checked ${r.packsChecked} packs and ${r.indexFiles} index files; read ${r.packsRead} packs (${formatBytes(r.bytesRead)}, ${r.blobsRead} blobs) in ${formatDuration(r.durationMs)}`,
  ];
  if (r.damage.length === 0) {
    lines.push('no damage found');
  } else {
    lines.push(`DAMAGE: ${r.damage.length} problems`);
    for (const d of r.damage) {
      lines.push(`  ${d.what}: ${d.problem}`);
      for (const a of d.affected) lines.push(`    affects s3://${a.bucket}/${a.key}${a.versionId === null ? '' : ` (version ${a.versionId})`} from run ${a.run}`);
    }
  }
  return lines.join('\n');
}
