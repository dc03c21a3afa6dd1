import type { Command } from 'commander';
import { Catalog } from '../catalog/catalog.js';
import { rebuildCatalog, type RebuildReport } from '../engine/rebuild.js';
import { syncCatalog, type SyncReport } from '../engine/sync.js';
import { ExitCode, UsageError } from '../errors.js';
import { formatBytes, formatDuration } from '../util/format.js';
import { action } from './action.js';
import { isOffline } from './context.js';
import { openRepository } from './open-repository.js';

/** Damage lines printed in text mode; --json carries the (capped) lists. */
const MAX_PRINTED = 50;

export function register(program: Command): void {
  const catalog = program.command('catalog').description('manage the local catalog, a cache of the repository');
  catalog
    .command('rebuild')
    .description('recreate the catalog from the repository alone (index/ and runs/); the old file is replaced only when the new one is complete and undamaged')
    .option('--skip-damaged', 'leave out index files and run manifests that fail authentication (each is listed, exit 1) instead of stopping')
    .option('--accept-damage', 'install the new catalog even when the repository is damaged (without it, a damaged result is written beside the old catalog, which stays)')
    .option('--no-lock', 'take no shared repository lock (read-only credentials); a concurrent prune could then remove what is being read')
    .addHelpText(
      'after',
      `
The catalog file is --catalog, $LAKEGUARD_CATALOG, or the default under ~/.cache/lakeguard.
It must not be open in another lakeguard process (the rebuild refuses). A crash or error
leaves the old catalog untouched. When the repository is damaged, the new catalog lacks what
the damage took: it is written to <catalog>.damaged and the old catalog stays, unless
--accept-damage. A corrupt catalog file is moved aside to <catalog>.corrupt-<time>, not read.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const opts = cmd.opts<{ skipDamaged?: boolean; acceptDamage?: boolean; lock: boolean }>();
        const { policy, repo, catalogPath } = await openRepository(cmd, reporter);
        const report = await rebuildCatalog({
          repo,
          catalogPath,
          // Accepting damage means going on past damaged documents too.
          skipDamaged: (opts.skipDamaged ?? false) || (opts.acceptDamage ?? false),
          acceptDamage: opts.acceptDamage ?? false,
          lock: opts.lock,
          concurrency: Math.min(16, policy.concurrency.transfer),
          events: reporter.event,
          signal,
        });
        const damaged = report.damage.length > 0 || report.missingCount > 0;
        reporter.summary({ ...report, ok: !damaged }, describe(report, repo.location));
        return damaged ? ExitCode.error : ExitCode.ok;
      }),
    );
  catalog
    .command('sync')
    .description('bring the catalog up to date with the repository now: runs, index files, forgets, prunes and acknowledgements written since its last sync')
    .addHelpText(
      'after',
      `
Every command that reads the catalog does this first (unless --offline); an empty catalog is
filled from the repository. Only what is new is read: runs/, forgets/ and acks/ are listed after a
time marker (three LIST requests when nothing is new). \`catalog rebuild\` is for a damaged catalog.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const { opts, policy, repo, catalogPath } = await openRepository(cmd, reporter);
        if (isOffline(opts)) throw new UsageError('catalog sync cannot run offline', { hint: 'drop --offline (and LAKEGUARD_OFFLINE)' });
        const db = Catalog.open(catalogPath, repo.id);
        try {
          const report = await syncCatalog({ repo, catalog: db, concurrency: Math.min(16, policy.concurrency.transfer), events: reporter.event, signal });
          const damaged = report.damage.length > 0 || report.missingCount > 0;
          reporter.summary({ catalog: catalogPath, ...report, ok: !damaged }, describeSync(report, catalogPath, repo.location));
          return damaged ? ExitCode.error : ExitCode.ok;
        } finally {
          db.close();
        }
      }),
    );
}

function describeSync(r: SyncReport, catalog: string, location: string): string {
  const applied = r.runs + r.indexFiles + r.forgets + r.prunes + r.acks;
  const lines = [
    applied === 0
      ? `catalog ${catalog} is up to date with ${location}`
      : `synced catalog ${catalog} with ${location}: ${r.runs} runs, ${r.indexFiles} index files, ${r.forgets} forget documents, ${r.prunes} prune documents, ${r.acks} acknowledgements applied`,
    `  requests: ${r.requests.list} LIST, ${r.requests.get} GET in ${formatDuration(r.durationMs)}${r.full ? ' (first sync: the whole repository was listed)' : ''}`,
  ];
  for (const id of r.runIds.slice(0, MAX_PRINTED)) lines.push(`  run ${id}`);
  if (r.runs > MAX_PRINTED) lines.push(`  … and ${r.runs - MAX_PRINTED} more runs`);
  for (const d of r.damage.slice(0, MAX_PRINTED)) lines.push(`DAMAGE: ${d.what}: ${d.problem}`);
  if (r.missingCount > 0) lines.push(`DAMAGE: ${r.missingCount} object versions refer to blobs in no index file and were left out; run \`lakeguard verify --read-data\``);
  return lines.join('\n');
}

function describe(r: RebuildReport, location: string): string {
  const lines = [
    `${r.installed ? 'rebuilt catalog' : 'wrote a new, DAMAGED catalog (not installed) to'} ${r.catalog} from ${location} in ${formatDuration(r.durationMs)}`,
    `  ${r.runs} runs, ${r.versions} object versions, ${r.failures} recorded failures`,
    `  ${r.blobs} blobs in ${r.packs} packs from ${r.indexFiles} index files; ${formatBytes(r.bytesRead)} of records read`,
  ];
  if (r.movedAside !== null) lines.push(`  the old catalog file was corrupt: moved to ${r.movedAside}`);
  if (r.previousRuns !== null) lines.push(`  the ${r.installed ? 'replaced' : 'kept'} catalog has ${r.previousRuns} runs`);
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
    if (!r.installed) {
      lines.push(
        `the new catalog was NOT installed: ${r.previousRuns === null ? 'there is no catalog' : 'the old catalog stays'} at ${r.target}; ` +
          'rerun with --accept-damage to install one that lacks the above',
      );
    }
  }
  return lines.join('\n');
}
