// SIMULATES `lakeguard forget` (being built on another branch) for prune tests, following its
// contract: a forgotten run's versions and their version_blobs rows leave the catalog, the run
// moves from `runs` to `forgotten_runs`, and its manifest is deleted from the repository.
// Only use it on runs whose versions no later run's state needs (the caller arranges that).
import type Database from 'better-sqlite3';

export function simulateForgetInCatalog(db: Database.Database, runId: string): void {
  const seq = db.prepare('SELECT seq FROM runs WHERE id = ?').pluck().get(runId) as number | undefined;
  if (seq === undefined) throw new Error(`simulateForget: no run ${runId}`);
  db.transaction(() => {
    db.prepare('DELETE FROM version_blobs WHERE version IN (SELECT id FROM versions WHERE run = ?)').run(seq);
    db.prepare('UPDATE objects SET latest = NULL WHERE latest IN (SELECT id FROM versions WHERE run = ?)').run(seq);
    db.prepare('DELETE FROM versions WHERE run = ?').run(seq);
    db.prepare(
      'UPDATE objects SET latest = (SELECT id FROM versions v WHERE v.object = objects.id ORDER BY valid_from DESC, id DESC LIMIT 1) WHERE latest IS NULL',
    ).run();
    db.prepare('DELETE FROM failures WHERE run = ?').run(seq);
    db.prepare('DELETE FROM runs WHERE seq = ?').run(seq);
    db.prepare("INSERT INTO forgotten_runs (id, forget) VALUES (?, 'simulated-forget')").run(runId);
  })();
}
