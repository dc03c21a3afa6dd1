/**
 * Which source runs `lakeguard copy` brought into this repository (docs/copy.md): filled from
 * manifests' `copiedFrom` (by copy itself, and by sync and rebuild when they import a copied
 * run), and kept when forget removes a copy, so that copy does not bring that run again.
 */
import { UsageError } from '../errors.js';
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';

/** Remembers that run `runId` of this repository is the copy of `from.run` of repository `from.repository`. */
export function recordCopiedRun(catalog: Catalog, from: { repository: string; run: string }, runId: string): void {
  sqlite(catalog).prepare('INSERT OR IGNORE INTO copied_runs (source_repository, source_run, run) VALUES (?, ?, ?)').run(from.repository, from.run, runId);
}

/** The ids of the runs of `sourceRepository` this catalog knows were copied here (forgotten since or not). */
export function copiedRunIds(catalog: Catalog, sourceRepository: string): Set<string> {
  return new Set(sqlite(catalog).prepare('SELECT source_run FROM copied_runs WHERE source_repository = ?').pluck().all(sourceRepository) as string[]);
}

/** Source run id -> the id of its copy in this repository, for the runs of `sourceRepository` copied here. */
export function copiesOf(catalog: Catalog, sourceRepository: string): Map<string, string> {
  const rows = sqlite(catalog).prepare('SELECT source_run AS source, run FROM copied_runs WHERE source_repository = ?').all(sourceRepository) as { source: string; run: string }[];
  return new Map(rows.map((r) => [r.source, r.run]));
}

/** Of `runIds` (runs of this repository), those that are copies: where each was copied from (forget documents carry it). */
export function copiedFromOf(catalog: Catalog, runIds: readonly string[]): { run: string; repository: string; source: string }[] {
  if (runIds.length === 0) return [];
  return sqlite(catalog)
    .prepare('SELECT run, source_repository AS repository, source_run AS source FROM copied_runs WHERE run IN (SELECT value FROM json_each(?)) ORDER BY run')
    .all(JSON.stringify(runIds)) as { run: string; repository: string; source: string }[];
}

/**
 * `ref` is the id of a run of another repository whose copy this catalog holds (a responder
 * restoring from a vault knows the source's run ids): the error that names the copy to give
 * instead; or the id of a run `forget` removed: the error that says so (not "no run", as for a
 * typo); undefined otherwise.
 */
export function sourceRunRefError(catalog: Catalog, ref: string): UsageError | undefined {
  const forgotten = sqlite(catalog).prepare('SELECT forget FROM forgotten_runs WHERE id = ?').pluck().get(ref) as string | undefined;
  if (forgotten !== undefined) {
    return new UsageError(`run ${ref} was forgotten (forgets/${forgotten}): the retention rules removed it, so its state is no longer a run to pick`, {
      hint: 'pick a kept run (`lakeguard runs`), or an instant with --at (rebuilt from the kept runs around it, with a warning)',
    });
  }
  const rows = sqlite(catalog).prepare('SELECT run, source_repository AS repository FROM copied_runs WHERE source_run = ? ORDER BY run').all(ref) as { run: string; repository: string }[];
  const copy = rows.find((r) => catalog.findRun(r.run) !== undefined);
  if (copy === undefined) return undefined;
  return new UsageError(`${JSON.stringify(ref)} is a run of repository ${copy.repository}; lakeguard copy brought it here as run ${copy.run}`, { hint: `give ${copy.run}` });
}

/** The repository these runs were copied from (the first that has one), or undefined when none is a copy. */
export function copySourceOf(catalog: Catalog, runIds: readonly string[]): string | undefined {
  return copiedFromOf(catalog, runIds)[0]?.repository;
}
