import type { Command } from 'commander';
import { statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Catalog } from '../catalog/catalog.js';
import { catalogScope, describeScope, scopeIsOnDemand, type CatalogPrefix } from '../catalog/scope.js';
import { catalogHoldsNothing, syncMarker, wholeByRequest } from '../catalog/sync.js';
import { shardCatalogRange, shardCatalogsIn } from '../catalog/shard-catalogs.js';
import { rebuildCatalog, type RebuildReport } from '../engine/rebuild.js';
import { DAMAGE_NEXT_STEP, syncCatalog, type SyncReport } from '../engine/sync.js';
import { ExitCode, UsageError } from '../errors.js';
import { formatBytes, formatDuration } from '../util/format.js';
import { action } from './action.js';
import { defaultCatalogPath, isOffline } from './context.js';
import { openRepository } from './open-repository.js';
import { parseObjectUrl, plural } from './query-common.js';
import { printable } from '../util/printable.js';

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
        // A rebuild is how a catalog follows its repository to a new location (engine/identity.ts).
        const { policy, repo, catalogPath } = await openRepository(cmd, reporter, { rebuilding: true });
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
        reporter.summary({ ...report, ok: !damaged }, describeRebuild(report, repo.location));
        return damaged ? ExitCode.error : ExitCode.ok;
      }),
    );
  catalog
    .command('sync')
    .description('bring the catalog up to date with the repository now: runs, index files, forgets, prunes and acknowledgements written since its last sync')
    .option('--prefix <s3url>', 'hold only this prefix (s3://bucket/prefix/; repeatable): a fresh catalog becomes scoped, a scoped one gets the prefix added', collect)
    .option('--all', 'make a scoped catalog whole: import the whole repository')
    .addHelpText(
      'after',
      `
Every command that reads the catalog does this first (unless --offline); an empty catalog is
filled from the repository. Only what is new is read: runs/, forgets/ and acks/ are listed after a
time marker (four LIST requests when nothing is new). \`catalog rebuild\` is for a damaged catalog.

A scoped catalog (--prefix on a catalog that holds nothing yet) reads only the record blobs whose
keys overlap its prefixes, and no index file: a laptop that restores one partition of a big
repository downloads only that partition's metadata. Commands outside the scope, and commands
that decide from the whole repository (backup, watch, copy, forget, prune, verify, lock extend,
cost), say so and stop (exit 2; docs/catalog.md "Commands on a scoped catalog"). Adding a prefix
imports only its keys; --all imports the whole repository anew. A plain \`catalog sync\` keeps
the scope; --prefix on a whole catalog changes nothing.

On a fresh host, the first command that selects keys (ls, versions, restore, diff --bucket, ...)
scopes the catalog to them on demand, and later commands add what they select, or make it whole
when they need every version (docs/catalog.md "On-demand catalogs"); run \`catalog sync\` first
to hold the whole repository instead.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const { opts, policy, repo, catalogPath } = await openRepository(cmd, reporter);
        if (isOffline(opts)) throw new UsageError('catalog sync cannot run offline', { hint: 'drop --offline (and LAKEGUARD_OFFLINE)' });
        const widen = scopeOptions(cmd.opts<{ prefix?: string[]; all?: boolean }>());
        const db = Catalog.open(catalogPath, repo.id);
        try {
          const report = await syncCatalog({
            repo,
            catalog: db,
            concurrency: Math.min(16, policy.concurrency.transfer),
            events: reporter.event,
            signal,
            ...(widen === undefined ? {} : { widen }),
          });
          // A prefix that holds nothing may be a typo (or a partition not backed up yet): say so, it is not an error.
          if (Array.isArray(widen) && report.scope !== null) {
            for (const p of widen) {
              if (db.nthKey(p.bucket, p.prefix, null, 1) === undefined) reporter.event({ type: 'warning', message: `no version in the repository is under ${describeScope([p])} (yet)` });
            }
          }
          const damaged = report.damage.length > 0 || report.missingCount > 0;
          reporter.summary({ catalog: catalogPath, ...report, ok: !damaged }, describeSync(report, catalogPath, repo.location));
          return damaged ? ExitCode.error : ExitCode.ok;
        } finally {
          db.close();
        }
      }),
    );
  catalog
    .command('info')
    .description('what the local catalog holds: its file, runs and versions, the scope (whole or scoped prefixes), and the last sync marker')
    .action(
      action(async ({ cmd, reporter }) => {
        const { repo, catalogPath } = await openRepository(cmd, reporter);
        // Read as it is, without syncing: this is what the catalog knows now.
        const db = Catalog.open(catalogPath, repo.id);
        try {
          const stats = db.stats();
          const scope = catalogScope(db);
          const marker = syncMarker(db);
          const bytes = statSync(catalogPath).size;
          const holds = catalogHolds(scope, marker, catalogHoldsNothing(db));
          const whole = wholeByRequest(db);
          // The host's default catalog: the shard catalogs beside it (shard backups on this host while it was not made whole with `catalog sync --all`) are this host's too.
          const hostCatalog = catalogPath === defaultCatalogPath(repo.id);
          const shardCatalogs = (hostCatalog ? shardCatalogsIn(dirname(catalogPath)) : []).map((f) => ({
            path: f.path,
            index: f.index,
            of: f.of,
            group: f.group ?? null,
            range: shardCatalogRange(f.path),
            bytes: f.bytes,
            modified: f.modified.toISOString(),
          }));
          const onDemand = scopeIsOnDemand(db);
          reporter.answer(
            { catalog: catalogPath, repository: repo.location, ...stats, bytes, holds, scope, scopeOnDemand: onDemand, wholeByRequest: whole, marker, shardCatalogs },
            [
              `catalog ${catalogPath} of ${repo.location} (${formatBytes(bytes)})`,
              `  ${plural(stats.runs, 'run')}, ${plural(stats.versions, 'object version')} of ${plural(stats.objects, 'key')}, ${plural(stats.blobs, 'blob')} in ${plural(stats.packs, 'pack')}`,
              describeHolding(scope, onDemand, holds === 'nothing'),
              `  synced up to ${marker ?? 'never'}`,
              ...(hostCatalog
                ? [
                    whole
                      ? '  shard backups on this host (--shards N) use this file: `lakeguard catalog sync --all` made it whole'
                      : '  shard backups on this host (--shards N) keep their key ranges in their own files beside it (`lakeguard catalog sync --all` makes them use this one)',
                  ]
                : []),
              ...(shardCatalogs.length === 0
                ? []
                : [
                    `  shard catalogs beside it (\`--catalog FILE\` shows one; removed after a week unwritten):`,
                    ...shardCatalogs.map(
                      (f) =>
                        `    ${basename(f.path)}: shard ${f.index} of ${f.of}${f.group === null ? '' : ` (group ${f.group})`}, ${f.range === null ? 'no key range yet' : describeScope(f.range)} (${formatBytes(f.bytes)}, written ${f.modified.replace(/\.\d+Z$/, 'Z')})`,
                    ),
                  ]),
            ].join('\n'),
          );
          return ExitCode.ok;
        } finally {
          db.close();
        }
      }),
    );
}

/** Repeatable options collect into a list. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `--prefix` (repeatable) and `--all` as the sync's scope change; undefined: none. */
function scopeOptions(o: { prefix?: string[]; all?: boolean }): readonly CatalogPrefix[] | 'all' | undefined {
  if (o.all === true && o.prefix !== undefined) throw new UsageError('catalog sync: give --prefix or --all, not both', { hint: '--all makes the catalog whole, which holds every prefix' });
  if (o.all === true) return 'all';
  if (o.prefix === undefined) return undefined;
  return o.prefix.map((url) => {
    const { bucket, key } = parseObjectUrl(url, '--prefix');
    return { bucket, prefix: key };
  });
}

/**
 * What a catalog holds, for `catalog info`: nothing yet (never synced: no marker and nothing
 * learned; a rebuilt catalog has runs and no marker, and holds the whole repository), the whole
 * repository, or a scope.
 */
export type CatalogHolds = 'nothing' | 'whole' | 'scoped';

function catalogHolds(scope: readonly CatalogPrefix[] | null, marker: string | null, holdsNothing: boolean): CatalogHolds {
  if (scope !== null) return 'scoped';
  return marker === null && holdsNothing ? 'nothing' : 'whole';
}

/** One line on what the catalog holds (a scoped catalog names its prefixes and how to widen it). */
function describeHolding(scope: readonly CatalogPrefix[] | null, onDemand: boolean, nothingYet = false): string {
  if (nothingYet) return "  holds: nothing yet (never synced; the next command imports only the keys it selects (ls, restore, ...) or else the whole repository)";
  if (scope === null) return '  holds: the whole repository';
  const what = scope.length === 0 ? 'the runs and no key' : `only ${describeScope(scope)}`;
  return onDemand
    ? `  holds: ${what} (on demand: a command that selects other keys adds them, one that needs every version makes it whole; \`lakeguard catalog sync --all\` makes it whole now)`
    : `  holds: ${what} (scoped); \`lakeguard catalog sync --prefix s3://bucket/prefix/\` adds a prefix, \`lakeguard catalog sync --all\` makes it whole`;
}

export function describeSync(r: SyncReport, catalog: string, location: string): string {
  const applied = r.runs + r.indexFiles + r.forgets + r.prunes + r.acks;
  const lines = [
    applied === 0
      ? `catalog ${catalog} is up to date with ${location}`
      : `synced catalog ${catalog} with ${location}: ${plural(r.runs, 'run')}, ${plural(r.indexFiles, 'index file')}, ${plural(r.forgets, 'forget document')}, ${plural(r.prunes, 'prune document')}, ${plural(r.acks, 'acknowledgement')} applied`,
    `  requests: ${r.requests.list} LIST, ${r.requests.get} GET in ${formatDuration(r.durationMs)}${r.full ? ' (first sync: the whole repository was listed)' : ''}`,
    describeHolding(r.scope, r.scopeOnDemand),
  ];
  if (r.scopeChanged) {
    lines.push(
      r.widenedInPlace
        ? `  the scope changed: only the added prefixes were imported (${formatBytes(r.bytesRead)} of records read)`
        : `  the scope changed: the catalog was emptied and imported anew for it (${formatBytes(r.bytesRead)} of records read)`,
    );
  }
  for (const id of r.runIds.slice(0, MAX_PRINTED)) lines.push(`  run ${id}`);
  if (r.runs > MAX_PRINTED) lines.push(`  … and ${r.runs - MAX_PRINTED} more runs`);
  for (const d of r.damage.slice(0, MAX_PRINTED)) lines.push(`DAMAGE: ${d.what}: ${d.problem}`);
  if (r.damage.length > MAX_PRINTED) lines.push(`DAMAGE: … and ${r.damage.length - MAX_PRINTED} more (--json lists them)`);
  if (r.damage.length > 0) lines.push(`the repository is damaged; ${DAMAGE_NEXT_STEP}`);
  if (r.missingCount > 0) lines.push(`DAMAGE: ${plural(r.missingCount, 'object version')} ${r.missingCount === 1 ? 'refers' : 'refer'} to blobs in no index file and ${r.missingCount === 1 ? 'was' : 'were'} left out; run \`lakeguard verify --read-data\``);
  return lines.join('\n');
}

/** The report of `catalog rebuild` for people. */
export function describeRebuild(r: RebuildReport, location: string): string {
  const lines = [
    `${r.installed ? 'rebuilt catalog' : 'wrote a new, DAMAGED catalog (not installed) to'} ${r.catalog} from ${location} in ${formatDuration(r.durationMs)}`,
    `  ${plural(r.runs, 'run')}, ${plural(r.versions, 'object version')}, ${plural(r.failures, 'recorded failure')}`,
    `  ${plural(r.blobs, 'blob')} in ${plural(r.packs, 'pack')} from ${plural(r.indexFiles, 'index file')}; ${formatBytes(r.bytesRead)} of records read`,
  ];
  if (r.movedAside !== null) lines.push(`  the old catalog file was corrupt: moved to ${r.movedAside}`);
  if (r.previousRuns !== null) lines.push(`  the ${r.installed ? 'replaced' : 'kept'} catalog has ${plural(r.previousRuns, 'run')}`);
  if (r.damage.length > 0) {
    lines.push(`DAMAGE: ${r.damage.length} problems`);
    for (const d of r.damage.slice(0, MAX_PRINTED)) lines.push(`  ${d.what}: ${d.problem}`);
    if (r.damage.length > MAX_PRINTED) lines.push(`  … and ${r.damage.length - MAX_PRINTED} more (--json lists them)`);
  }
  if (r.missingCount > 0) {
    lines.push(`DAMAGE: ${r.missingCount} object versions refer to blobs in no index file; they were left out of the catalog:`);
    for (const m of r.missing.slice(0, MAX_PRINTED)) {
      lines.push(`  ${printable(`${m.bucket}/${m.key}`)}${m.versionId === null ? '' : ` (version ${printable(m.versionId)})`} from run ${m.run}: blob ${m.blob}`);
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
