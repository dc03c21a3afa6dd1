/**
 * What `lakeguard cost` measures, read from the catalog as it is: a few aggregate SQL queries
 * per group, so nothing proportional to the number of objects is held in memory. Only table
 * and column names are relied on (runs, objects, versions, version_blobs, blobs, packs,
 * index_files), so a catalog thinned by forget/prune reads the same. A version's blobs are
 * `versions.blob` (one blob) or its version_blobs rows (two or more), as in schema.ts.
 */
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';
import type { RunCounters, RunStatus } from './types.js';

/** A set of stored objects, split at a class's minimum billable size. */
export interface ObjectSet {
  objects: number;
  bytes: number;
  /** Objects smaller than the minimum billable size, and their bytes. */
  smallObjects: number;
  smallBytes: number;
}

export interface RunUsage {
  id: string;
  started: number;
  status: RunStatus;
  /** null for a run still running (or killed before it was recorded). */
  counters: RunCounters | null;
  /** The group's live source state after this run: keys whose newest version is not a delete marker. */
  sourceObjects: number;
  sourceBytes: number;
}

export interface GroupUsage {
  group: string;
  /** Oldest first. */
  runs: RunUsage[];
  /** Live source state as of the group's latest run. */
  source: { objects: number; bytes: number };
  /** Every object version the catalog keeps for the group (delete markers apart). */
  retained: ObjectSet;
  deleteMarkers: number;
  /** Packs holding the group's data (shared packs count in each group that uses them). */
  packs: ObjectSet;
  /** Index files and run manifests: small repository objects whose size the catalog does not keep. */
  metadataObjects: number;
}

export interface RepositoryUsage {
  packs: ObjectSet;
  metadataObjects: number;
  retained: ObjectSet;
  deleteMarkers: number;
}

/** Groups that have runs in the catalog, by name. */
export function catalogGroups(catalog: Catalog): string[] {
  return sqlite(catalog).prepare('SELECT DISTINCT grp FROM runs ORDER BY grp').pluck().all() as string[];
}

const GROUP_RUNS = 'SELECT seq FROM runs WHERE grp = @group';

export function groupUsage(catalog: Catalog, group: string, minObjectBytes: number): GroupUsage {
  const db = sqlite(catalog);
  const p = { group, min: minObjectBytes };

  // Live state after each run: each version changes its key's state from the previous version's
  // (by valid_from) to its own; summing those changes per run, in run order, gives the state.
  const deltas = new Map<number, { objects: number; bytes: number }>();
  const deltaRows = db.prepare(
    `SELECT run, sum(live - prev_live) AS objects, sum(bytes - prev_bytes) AS bytes FROM (
       SELECT v.run AS run, 1 - v.delete_marker AS live, (1 - v.delete_marker) * v.size AS bytes,
              coalesce(lag(1 - v.delete_marker) OVER w, 0) AS prev_live,
              coalesce(lag((1 - v.delete_marker) * v.size) OVER w, 0) AS prev_bytes
       FROM versions v WHERE v.run IN (${GROUP_RUNS})
       WINDOW w AS (PARTITION BY v.object ORDER BY v.valid_from, v.id))
     GROUP BY run`,
  );
  for (const r of deltaRows.iterate(p) as Iterable<{ run: number; objects: number; bytes: number }>) deltas.set(r.run, { objects: r.objects, bytes: r.bytes });

  const runs: RunUsage[] = [];
  let objects = 0;
  let bytes = 0;
  const runRows = db.prepare('SELECT seq, id, started, status, counters FROM runs WHERE grp = @group ORDER BY seq');
  for (const r of runRows.iterate(p) as Iterable<{ seq: number; id: string; started: number; status: RunStatus; counters: string | null }>) {
    const d = deltas.get(r.seq);
    objects += d?.objects ?? 0;
    bytes += d?.bytes ?? 0;
    runs.push({ id: r.id, started: r.started, status: r.status, counters: r.counters === null ? null : (JSON.parse(r.counters) as RunCounters), sourceObjects: objects, sourceBytes: bytes });
  }

  const source = db
    .prepare(
      `SELECT count(*) AS objects, coalesce(sum(v.size), 0) AS bytes FROM objects o JOIN versions v ON v.id = o.latest
       WHERE v.delete_marker = 0 AND o.id IN (SELECT object FROM versions WHERE run IN (${GROUP_RUNS}))`,
    )
    .get(p) as { objects: number; bytes: number };

  // Delete markers are counted apart in the same scan and left out of the object set.
  const { deleteMarkers, ...retained } = db
    .prepare(
      `SELECT count(*) - coalesce(sum(delete_marker), 0) AS objects, coalesce(sum((1 - delete_marker) * size), 0) AS bytes,
              coalesce(sum(size < @min AND delete_marker = 0), 0) AS smallObjects,
              coalesce(sum(CASE WHEN size < @min AND delete_marker = 0 THEN size ELSE 0 END), 0) AS smallBytes,
              coalesce(sum(delete_marker), 0) AS deleteMarkers
       FROM versions WHERE run IN (${GROUP_RUNS})`,
    )
    .get(p) as ObjectSet & { deleteMarkers: number };

  // A group's packs: those holding blobs its versions refer to, and those its runs wrote (run
  // records). After a catalog rebuild packs have no run, so the references carry the weight.
  const groupPacks = `WITH gp AS (
      SELECT b.pack AS id FROM versions v JOIN blobs b ON b.id = v.blob WHERE v.run IN (${GROUP_RUNS})
      UNION SELECT b.pack FROM versions v JOIN version_blobs vb ON vb.version = v.id JOIN blobs b ON b.id = vb.blob WHERE v.run IN (${GROUP_RUNS})
      UNION SELECT id FROM packs WHERE run IN (${GROUP_RUNS}))`;
  // One statement, so the pack set is computed once (it walks every version of the group).
  const { indexFiles, ...packs } = db
    .prepare(
      `${groupPacks} ${objectSetSql('size')},
         (SELECT count(DISTINCT index_file) FROM blobs WHERE pack IN (SELECT id FROM gp) AND index_file IS NOT NULL) AS indexFiles
       FROM packs WHERE id IN (SELECT id FROM gp)`,
    )
    .get(p) as ObjectSet & { indexFiles: number };
  const manifests = runs.filter((r) => r.status !== 'running').length;

  return { group, runs, source, retained, deleteMarkers, packs, metadataObjects: indexFiles + manifests };
}

/** The whole repository as the catalog knows it: every pack (also those no group refers to any more). */
export function repositoryUsage(catalog: Catalog, minObjectBytes: number): RepositoryUsage {
  const db = sqlite(catalog);
  const p = { min: minObjectBytes };
  const packs = db.prepare(`${objectSetSql('size')} FROM packs`).get(p) as ObjectSet;
  const retained = db.prepare(`${objectSetSql('size')} FROM versions WHERE delete_marker = 0`).get(p) as ObjectSet;
  const deleteMarkers = db.prepare('SELECT count(*) FROM versions WHERE delete_marker = 1').pluck().get() as number;
  const indexFiles = db.prepare('SELECT count(*) FROM index_files').pluck().get() as number;
  const manifests = db.prepare("SELECT count(*) FROM runs WHERE status <> 'running'").pluck().get() as number;
  return { packs, retained, deleteMarkers, metadataObjects: indexFiles + manifests };
}

function objectSetSql(size: string): string {
  return `SELECT count(*) AS objects, coalesce(sum(${size}), 0) AS bytes,
            coalesce(sum(${size} < @min), 0) AS smallObjects, coalesce(sum(CASE WHEN ${size} < @min THEN ${size} ELSE 0 END), 0) AS smallBytes`;
}
