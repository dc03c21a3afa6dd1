/**
 * What changed between two state cuts, key by key: the SQL behind `diff`, `runs show`'s
 * "keys" line and its version list. One definition of a change, used by all of them:
 *
 *   added      absent (or a delete marker) at `from`, an object at `to`
 *   deleted    an object at `from`, absent (or a delete marker) at `to`
 *   changed    an object at both, another version with other content
 *   rewritten  an object at both, another version with the same content: the same size and
 *              the same ETag or the same content blob in the repository (an identical
 *              rewrite, a copy onto itself): not a change of content, counted apart
 *
 * As in queries.ts, the state of a key at a cut is one correlated subquery per object on
 * `versions_by_object`, and every list is keyset-paged.
 */
import type Database from 'better-sqlite3';
import type { StateCut } from './catalog.js';
import { etagSql } from './codec.js';
import { upperBound } from './key-range.js';
import type { ChangeKind, DiffEntry, DiffScope, DiffSide, DiffSummary, Page, PageOptions, RunVersion, RunVersionCursor, StateObject } from './query-types.js';

type Row = Record<string, unknown>;

export function emptyDiffSummary(buckets: string[]): DiffSummary {
  return {
    added: { objects: 0, bytes: 0 },
    changed: { objects: 0, bytes: 0, bytesBefore: 0 },
    rewritten: { objects: 0, bytes: 0 },
    deleted: { objects: 0, bytes: 0 },
    buckets,
  };
}

/** Adds rows `(change, n, bytes, bytesBefore)` of a GROUP BY change to a summary. */
function addCounts(summary: DiffSummary, rows: Row[]): void {
  for (const r of rows) {
    const kind = r.change as ChangeKind;
    summary[kind].objects += r.n as number;
    summary[kind].bytes += r.bytes as number;
    if (kind === 'changed') summary.changed.bytesBefore += r.bytesBefore as number;
  }
}

const COUNT_SQL = (inner: string) =>
  `SELECT change, count(*) AS n, total(CASE WHEN change = 'deleted' THEN asize ELSE bsize END) AS bytes, total(asize) AS bytesBefore
   FROM (${inner}) WHERE change IS NOT NULL GROUP BY change`;

/** Counts and bytes of one bucket's changes from `from` to `to`, added to `summary`. */
export function countBucketChanges(db: Database.Database, summary: DiffSummary, bucket: string, from: StateCut, to: StateCut, scope: DiffScope): void {
  addCounts(summary, db.prepare(COUNT_SQL(bucketDiffSql(from, to, scope))).all(bucketDiffParams(bucket, from, to, scope, null, -1)) as Row[]);
}

/** One page of one bucket's changes, in key order after `afterKey`. */
export function bucketChangesPage(db: Database.Database, bucket: string, from: StateCut, to: StateCut, scope: DiffScope, afterKey: string | null, limit: number): DiffEntry[] {
  const rows = db
    .prepare(`SELECT * FROM (${bucketDiffSql(from, to, scope)}) WHERE change IS NOT NULL ORDER BY key LIMIT @limit`)
    .all(bucketDiffParams(bucket, from, to, scope, afterKey, limit)) as Row[];
  return rows.map((r) => diffEntry(r, bucket));
}

/**
 * The keys run `seq` recorded a version of, compared from the state before it (every run
 * numbered below it) to the state it recorded: exactly what `diff <seq - 1> <seq>` counts
 * for those keys, whatever the source's versioning (a key rewritten three times between two
 * runs is one changed key, though the run recorded three versions).
 */
export function runChanges(db: Database.Database, seq: number): DiffSummary {
  const summary = emptyDiffSummary([]);
  const inner = changeSql(`(SELECT DISTINCT object FROM versions WHERE run = @to) t JOIN objects o ON o.id = t.object`, '1', { runSeq: seq - 1 }, { runSeq: seq });
  addCounts(summary, db.prepare(COUNT_SQL(inner)).all({ from: seq - 1, to: seq }) as Row[]);
  return summary;
}

/**
 * The versions (and delete markers) run `seq` recorded, in the order it recorded them, each
 * with what it did to its key compared with the key's version just before it.
 */
export function runVersionsPage(db: Database.Database, seq: number, page: PageOptions<RunVersionCursor>): Page<RunVersion, RunVersionCursor> {
  const limit = page.limit ?? 1000;
  const rows = db
    .prepare(
      `SELECT v.id AS row, b.name AS bucket, o.key AS key, v.version_id AS versionId, v.delete_marker AS deleteMarker, v.size AS size,
              ${etagSql('v.etag')} AS etag, v.valid_from AS time, p.delete_marker AS pdm, p.size AS psize, p.etag AS petag, v.etag AS vetag,
              p.blob AS pblob, v.blob AS vblob, p.id AS pid
       FROM versions v JOIN objects o ON o.id = v.object JOIN buckets b ON b.id = o.bucket
       LEFT JOIN versions p ON p.id = (
         SELECT id FROM versions q WHERE q.object = v.object AND (q.valid_from < v.valid_from OR (q.valid_from = v.valid_from AND q.id < v.id))
         ORDER BY q.valid_from DESC, q.id DESC LIMIT 1)
       WHERE v.run = @seq AND v.id > @after ORDER BY v.id LIMIT @limit`,
    )
    .all({ seq, after: page.after?.row ?? 0, limit }) as Row[];
  const items = rows.map((r): RunVersion => {
    const before = r.pid !== null && r.pdm === 0;
    const deleteMarker = r.deleteMarker === 1;
    const same = before && !deleteMarker && r.psize === r.size && ((r.petag !== null && r.petag === r.vetag) || (r.pblob !== null && r.pblob === r.vblob));
    const change: ChangeKind | 'none' = deleteMarker ? (before ? 'deleted' : 'none') : !before ? 'added' : same ? 'rewritten' : 'changed';
    return {
      bucket: r.bucket as string,
      key: r.key as string,
      versionId: r.versionId as string | null,
      deleteMarker,
      size: r.size as number,
      etag: deleteMarker ? null : (r.etag as string | null),
      time: r.time as number,
      change,
    };
  });
  const last = rows.at(-1);
  return { items, next: rows.length < limit || last === undefined ? null : { row: last.row as number } };
}

/**
 * One page of the objects of `bucket` under `prefix` as they were at `cut` (keys deleted or not
 * yet written then are left out), in key order after `afterKey`: the catalog's side of a
 * comparison with a listing of the bucket now.
 */
export function stateAtPage(db: Database.Database, bucket: string, prefix: string, cut: StateCut, afterKey: string | null, limit: number): StateObject[] {
  const hi = upperBound(prefix);
  const rows = db
    .prepare(
      `SELECT o.key AS key, v.version_id AS versionId, v.size AS size, ${etagSql('v.etag')} AS etag, v.valid_from AS time
       FROM objects o JOIN versions v ON v.id = ${stateVersionSql('o.id', cut, 'cut')}
       WHERE o.bucket = (SELECT id FROM buckets WHERE name = @bucket) AND ${keyRangeSql(hi)} AND (@afterKey IS NULL OR o.key > @afterKey)
         AND v.delete_marker = 0
       ORDER BY o.key LIMIT @limit`,
    )
    .all({ bucket, lo: afterKey !== null && afterKey > prefix ? afterKey : prefix, hi, afterKey, ...cutParams(cut, 'cut'), limit }) as Row[];
  return rows.map((r) => ({ key: r.key as string, versionId: r.versionId as string | null, size: r.size as number, etag: r.etag as string | null, time: r.time as number }));
}

function diffEntry(r: Row, bucket: string): DiffEntry {
  const side = (p: 'a' | 'b'): DiffSide | null =>
    r[`${p}id`] === null || r[`${p}dm`] === 1
      ? null
      : { versionId: r[`${p}vid`] as string | null, size: r[`${p}size`] as number, etag: r[`${p}etag`] as string | null, time: r[`${p}time`] as number };
  const change = r.change as ChangeKind;
  // A key deleted by a delete marker (a versioned bucket's, or the one a run writes when it
  // sees a key gone from an unversioned source): when that happened, not when its data was written.
  const deletedAt = change === 'deleted' && r.bdm === 1 ? (r.btime as number) : null;
  return { change, bucket, key: r.key as string, before: side('a'), after: side('b'), deletedAt };
}

export function cutValue(cut: StateCut): number {
  return 'time' in cut ? cut.time : cut.runSeq;
}

/**
 * The named parameters a cut bound to `@param` needs: its value, and for a run set's cut the
 * seqs of its shard attempts as a JSON array (`@<param>Set`).
 */
export function cutParams(cut: StateCut | undefined, param: string): Record<string, unknown> {
  if (cut === undefined) return {};
  return { [param]: cutValue(cut), ...('runSeq' in cut && cut.runSet !== undefined ? { [`${param}Set`]: JSON.stringify(cut.runSet.seqs) } : {}) };
}

/**
 * SQL: the run number in `column` is inside a run cut bound to `@param`: numbered up to it, or,
 * for a run set's cut, one of its shard attempts (types.ts StateCut).
 */
export function runCutSql(column: string, cut: { runSeq: number; runSet?: unknown }, param: string): string {
  return cut.runSet === undefined ? `${column} <= @${param}` : `(${column} <= @${param} OR ${column} IN (SELECT value FROM json_each(@${param}Set)))`;
}

/**
 * `o.key` from @lo up to @hi. The upper bound is left out of the SQL rather than written as
 * `(@hi IS NULL OR o.key < @hi)`, which SQLite cannot use to end the index range (it would
 * read on to the end of the bucket, filtering).
 */
export function keyRangeSql(hi: string | null): string {
  return hi === null ? 'o.key >= @lo' : 'o.key >= @lo AND o.key < @hi';
}

/** The row id of `object`'s state version at the cut bound to `@param` (no cut: its newest version). */
export function stateVersionSql(object: string, cut: StateCut | undefined, param: string): string {
  const filter = cut === undefined ? '' : 'time' in cut ? ` AND valid_from <= @${param}` : ` AND ${runCutSql('run', cut, param)}`;
  return `(SELECT id FROM versions WHERE object = ${object}${filter} ORDER BY valid_from DESC, id DESC LIMIT 1)`;
}

/**
 * The objects of `source` (SQL after FROM, naming objects `o`) filtered by `where`, with their
 * state at both cuts (`@from`, `@to`) and the change between them (NULL: none).
 */
function changeSql(source: string, where: string, from: StateCut, to: StateCut): string {
  return `SELECT key, aid, adm, avid, asize, aetag, atime, bid, bdm, bvid, bsize, betag, btime,
            CASE WHEN (aid IS NULL OR adm = 1) AND bid IS NOT NULL AND bdm = 0 THEN 'added'
                 WHEN aid IS NOT NULL AND adm = 0 AND (bid IS NULL OR bdm = 1) THEN 'deleted'
                 WHEN aid IS NOT NULL AND adm = 0 AND bid IS NOT NULL AND bdm = 0 AND aid <> bid THEN
                   CASE WHEN asize = bsize AND ((arawetag IS NOT NULL AND arawetag = brawetag) OR (ablob IS NOT NULL AND ablob = bblob))
                        THEN 'rewritten' ELSE 'changed' END END AS change
          FROM (
            SELECT o.key AS key,
                   a.id AS aid, a.delete_marker AS adm, a.version_id AS avid, a.size AS asize, ${etagSql('a.etag')} AS aetag, a.valid_from AS atime,
                   a.etag AS arawetag, a.blob AS ablob,
                   b.id AS bid, b.delete_marker AS bdm, b.version_id AS bvid, b.size AS bsize, ${etagSql('b.etag')} AS betag, b.valid_from AS btime,
                   b.etag AS brawetag, b.blob AS bblob
            FROM ${source}
            LEFT JOIN versions a ON a.id = ${stateVersionSql('o.id', from, 'from')}
            LEFT JOIN versions b ON b.id = ${stateVersionSql('o.id', to, 'to')}
            WHERE ${where}
          )`;
}

/** One bucket's objects (under the scope's prefix, of its group) with their change. */
function bucketDiffSql(from: StateCut, to: StateCut, scope: DiffScope): string {
  const group =
    scope.group === undefined ? '' : ' AND EXISTS (SELECT 1 FROM versions g WHERE g.object = o.id AND g.run IN (SELECT seq FROM runs WHERE grp = @group))';
  return changeSql(
    'objects o',
    `o.bucket = (SELECT id FROM buckets WHERE name = @bucket) AND ${keyRangeSql(upperBound(scope.prefix ?? ''))} AND (@afterKey IS NULL OR o.key > @afterKey)${group}`,
    from,
    to,
  );
}

function bucketDiffParams(bucket: string, from: StateCut, to: StateCut, scope: DiffScope, afterKey: string | null, limit: number): Record<string, unknown> {
  const prefix = scope.prefix ?? '';
  return {
    bucket,
    lo: afterKey !== null && afterKey > prefix ? afterKey : prefix,
    hi: upperBound(prefix),
    afterKey,
    ...cutParams(from, 'from'),
    ...cutParams(to, 'to'),
    ...(scope.group === undefined ? {} : { group: scope.group }),
    ...(limit < 0 ? {} : { limit }),
  };
}
