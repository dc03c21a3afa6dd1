/**
 * Removing an unfinished run from the catalog: `copy` begins each copied run under the source
 * run's id, so a copy that was killed leaves that id "running" here. The packs it wrote stay
 * catalogued (their blobs deduplicate the copy that resumes; a catalog that never saw them
 * leaves them to prune as garbage); only the run and what it recorded go.
 */
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';

/** Drops an unfinished run's versions, failures and row in one transaction (a finished run is refused). */
export function discardUnfinishedRun(catalog: Catalog, seq: number): void {
  const db = sqlite(catalog);
  catalog.transaction(() => {
    const status = db.prepare('SELECT status FROM runs WHERE seq = ?').pluck().get(seq) as string | undefined;
    if (status === undefined) return;
    if (status !== 'running') throw new Error(`catalog: run ${seq} is ${status}, not unfinished; it cannot be discarded`);
    const objects = db.prepare('SELECT DISTINCT object FROM versions WHERE run = ?').pluck().all(seq) as number[];
    db.prepare('DELETE FROM version_signals WHERE version IN (SELECT id FROM versions WHERE run = ?)').run(seq);
    db.prepare('DELETE FROM version_blobs WHERE version IN (SELECT id FROM versions WHERE run = ?)').run(seq);
    db.prepare('DELETE FROM versions WHERE run = ?').run(seq);
    const resetLatest = db.prepare(
      'UPDATE objects SET latest = (SELECT id FROM versions WHERE object = objects.id ORDER BY valid_from DESC, id DESC LIMIT 1) WHERE id = ?',
    );
    for (const object of objects) resetLatest.run(object);
    for (const table of ['failures', 'run_anomalies', 'partition_stats', 'run_shards']) db.prepare(`DELETE FROM ${table} WHERE run = ?`).run(seq);
    db.prepare('UPDATE packs SET run = NULL WHERE run = ?').run(seq);
    db.prepare('DELETE FROM runs WHERE seq = ?').run(seq);
  });
}
