/**
 * What anomaly detection asks the catalog about a key's earlier version (src/engine/
 * anomaly-detector.ts): its ETag and size (identical rewrites; changed or added in a versioned
 * bucket) and how well its blobs compressed (stored over raw length). One indexed statement per
 * changed object, prepared once per catalog.
 */
import type { Catalog } from './catalog.js';
import { etagSql } from './codec.js';
import { sqlite } from './connection.js';

/** A key's version before the run, as anomaly detection compares with it. */
export interface PreviousVersion {
  deleteMarker: boolean;
  etag: string | null;
  size: number;
  /** Stored bytes of its blobs over their raw bytes; undefined for a version without content. */
  storedRatio: number | undefined;
}

/** Sums the blobs of version row `prev.id` (one blob in versions.blob, or several in version_blobs). */
const BLOB_SUMS = `
  SELECT prev.deleteMarker, prev.etag, prev.size, SUM(b.length) AS stored, SUM(b.raw_length) AS raw
  FROM prev LEFT JOIN version_blobs vb ON prev.blob IS NULL AND vb.version = prev.id
  LEFT JOIN blobs b ON b.id = COALESCE(prev.blob, vb.blob)`;

function prepareStatements(catalog: Catalog) {
  const db = sqlite(catalog);
  const columns = `v.id, v.delete_marker AS deleteMarker, ${etagSql('v.etag')} AS etag, v.size, v.blob`;
  return {
    byRow: db.prepare(`WITH prev AS (SELECT ${columns} FROM versions v WHERE v.id = ?) ${BLOB_SUMS}`),
    // versions_by_object (object, valid_from): the newest version of the key recorded by another run.
    latestBefore: db.prepare(
      `WITH prev AS (SELECT ${columns} FROM objects o JOIN versions v ON v.object = o.id
         WHERE o.bucket = @bucket AND o.key = @key AND v.run <> @run ORDER BY v.valid_from DESC, v.id DESC LIMIT 1) ${BLOB_SUMS}`,
    ),
  };
}

const statements = new WeakMap<Catalog, ReturnType<typeof prepareStatements>>();

function statementsOf(catalog: Catalog): ReturnType<typeof prepareStatements> {
  let stmts = statements.get(catalog);
  if (stmts === undefined) statements.set(catalog, (stmts = prepareStatements(catalog)));
  return stmts;
}

interface Row {
  deleteMarker: number | null;
  etag: string | null;
  size: number | null;
  stored: number | null;
  raw: number | null;
}

function toPrevious(row: Row | undefined): PreviousVersion | undefined {
  if (row === undefined || row.deleteMarker === null || row.size === null) return undefined;
  return {
    deleteMarker: row.deleteMarker === 1,
    etag: row.etag,
    size: row.size,
    storedRatio: row.raw === null || row.raw === 0 || row.stored === null ? undefined : row.stored / row.raw,
  };
}

/** The catalogued version in row `versionRow` (LatestVersion.versionRow). */
export function versionByRow(catalog: Catalog, versionRow: number): PreviousVersion | undefined {
  return toPrevious(statementsOf(catalog).byRow.get(versionRow) as Row | undefined);
}

/** The newest version of `bucket`/`key` that run `runSeq` did not record: the key as it was before the run. */
export function versionBeforeRun(catalog: Catalog, bucket: string, key: string, runSeq: number): PreviousVersion | undefined {
  const bucketId = catalog.findBucketId(bucket);
  if (bucketId === undefined) return undefined;
  return toPrevious(statementsOf(catalog).latestBefore.get({ bucket: bucketId, key, run: runSeq }) as Row | undefined);
}

/**
 * Whether a run that ended `complete` or `partial` (its listing finished) recorded a key of
 * `bucket` in (`after`, `upTo`] (absent bounds: open): the bucket has a baseline there to judge
 * changes against. Versions only an interrupted or failed run recorded (a first backup stopped
 * half-way, the attempt of a shard that was killed) are not one: the run that finishes the first
 * backup would otherwise see the rest of the lake as a flood of new keys.
 */
export function bucketHasBaseline(catalog: Catalog, bucket: string, range: { after?: string; upTo?: string }): boolean {
  const bucketId = catalog.findBucketId(bucket);
  if (bucketId === undefined) return false;
  return (
    sqlite(catalog)
      .prepare(
        `SELECT 1 FROM objects o JOIN versions v ON v.object = o.id JOIN runs r ON r.seq = v.run
         WHERE o.bucket = @bucket AND (@after IS NULL OR o.key > @after) AND (@upTo IS NULL OR o.key <= @upTo) AND r.status IN ('complete', 'partial')
         LIMIT 1`,
      )
      .get({ bucket: bucketId, after: range.after ?? null, upTo: range.upTo ?? null }) !== undefined
  );
}
