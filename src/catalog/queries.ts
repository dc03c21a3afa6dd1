/**
 * The incident responder's read-only questions to the catalog: every version of a key, find
 * across every run, a directory-style view at an instant, what changed between two instants,
 * a month of runs, one run in detail.
 *
 * Every answer is indexed SQL with LIMIT and keyset paging: nothing here loads all versions
 * (or all objects) into JS. The state of a key at a cut is one correlated subquery per object
 * on `versions_by_object (object, valid_from)`, as in selectState (restore-selection.ts): the newest version
 * with valid_from <= T (or recorded by run <= seq), ties broken by row id, unless that version
 * is a delete marker.
 */
import type Database from 'better-sqlite3';
import { UsageError } from '../errors.js';
import { compileGlob } from '../policy/glob.js';
import type { Catalog, StateCut } from './catalog.js';
import { runSetsOf } from './run-sets.js';
import { sqlite } from './connection.js';
import { decodeStorageClass, etagSql, lastModifiedSql } from './codec.js';
import { globLiteralPrefix, upperBound } from './key-range.js';
import { bucketChangesPage, countBucketChanges, emptyDiffSummary, cutParams, keyRangeSql, runCutSql, runChanges, runVersionsPage, stateAtPage, stateVersionSql } from './diff-queries.js';
import type {
  CalendarDay,
  CalendarMonth,
  DiffCursor,
  DiffEntry,
  DiffScope,
  DiffSummary,
  FailureCursor,
  FindCursor,
  FindOptions,
  FoundObject,
  LsCursor,
  LsEntry,
  Page,
  PageOptions,
  RunDetails,
  RunVersion,
  RunVersionCursor,
  StateObject,
  VersionCursor,
  VersionInfo,
} from './query-types.js';
import { ensureIndex } from './schema.js';
import { SKIP_CODES, type FailureRecord, type RunCounters, type RunStatus, type StoredMeta } from './types.js';

export type * from './query-types.js';

type Row = Record<string, unknown>;

const DEFAULT_LIMIT = 1000;
/**
 * `runs show` counts the keys a run changed when it recorded at most this many versions: the
 * count reads each key's state before and after the run (1-2 s for 100,000 on a loaded 2-core
 * machine); above, it says how to count them with `diff`, which costs the same.
 */
export const RUN_KEYS_COUNTED_UP_TO = 100_000;
const GLOB_FUNCTION = 'lakeguard_glob';

/**
 * Read-only queries over a catalog. Construct one per opened catalog; it adds its indexes and
 * SQL function to the connection once.
 */
export class CatalogQueries {
  private readonly db: Database.Database;
  private readonly globs = new Map<string, RegExp>();

  constructor(private readonly catalog: Catalog) {
    this.db = sqlite(catalog);
    // Per connection, so register on every instance (the closure holds this instance's cache).
    this.db.function(GLOB_FUNCTION, { deterministic: true }, (pattern: unknown, key: unknown) => (this.glob(String(pattern)).test(String(key)) ? 1 : 0));
  }

  /** Bucket (or local source) names in the catalog, sorted. */
  buckets(): string[] {
    return this.db.prepare('SELECT name FROM buckets ORDER BY name').pluck().all() as string[];
  }

  /** How many runs the catalog holds (any status). */
  runCount(): number {
    return this.db.prepare('SELECT count(*) FROM runs').pluck().get() as number;
  }

  hasBucket(name: string): boolean {
    return this.db.prepare('SELECT 1 FROM buckets WHERE name = ?').get(name) !== undefined;
  }

  // ---- versions ---------------------------------------------------------------------------

  /** Every version and delete marker of one key, newest first. */
  versionsOf(bucket: string, key: string, page: PageOptions<VersionCursor> = {}): Page<VersionInfo, VersionCursor> {
    const limit = page.limit ?? DEFAULT_LIMIT;
    const after = page.after ?? null;
    const rows = this.db
      .prepare(
        `SELECT v.id AS row, v.version_id AS versionId, v.delete_marker AS deleteMarker, v.valid_from AS time,
                ${lastModifiedSql('v')} AS lastModified, v.size AS size, ${etagSql('v.etag')} AS etag, v.storage_class AS storageClass,
                r.id AS run, v.run AS runSeq, m.json AS meta,
                CASE WHEN v.delete_marker = 1 THEN NULL
                  WHEN v.blob IS NOT NULL THEN EXISTS (SELECT 1 FROM blobs bl JOIN packs p ON p.id = bl.pack WHERE bl.id = v.blob)
                  ELSE NOT EXISTS (
                    SELECT 1 FROM version_blobs vb LEFT JOIN blobs bl ON bl.id = vb.blob LEFT JOIN packs p ON p.id = bl.pack
                    WHERE vb.version = v.id AND p.id IS NULL) END AS dataPresent
         FROM objects o JOIN versions v ON v.object = o.id JOIN runs r ON r.seq = v.run LEFT JOIN metas m ON m.id = v.meta
         WHERE o.bucket = (SELECT id FROM buckets WHERE name = @bucket) AND o.key = @key${
           // `<=` bounds the index range (a key rewritten every minute has many pages); the OR only filters.
           after === null ? '' : ' AND v.valid_from <= @afterTime AND (v.valid_from < @afterTime OR v.id < @afterRow)'
         }
         ORDER BY v.valid_from DESC, v.id DESC LIMIT @limit`,
      )
      .all({ bucket, key, limit, ...(after === null ? {} : { afterTime: after.time, afterRow: after.row }) }) as Row[];
    const items = rows.map((r) => ({
      versionId: r.versionId as string | null,
      deleteMarker: r.deleteMarker === 1,
      time: r.time as number,
      lastModified: r.lastModified as number,
      size: r.size as number,
      etag: r.etag as string | null,
      storageClass: decodeStorageClass(r.storageClass),
      run: r.run as string,
      runSeq: r.runSeq as number,
      dataPresent: r.dataPresent === null ? null : r.dataPresent === 1,
      meta: r.meta === null ? null : (JSON.parse(r.meta as string) as StoredMeta),
    }));
    const last = rows.at(-1);
    return { items, next: rows.length < limit || last === undefined ? null : { time: last.time as number, row: last.row as number } };
  }

  // ---- find -------------------------------------------------------------------------------

  /**
   * Keys matching a glob (src/policy/glob.ts syntax), in key order (then bucket), each judged
   * by its state at `at` (default: its newest version, deleted or not). The glob's literal
   * prefix bounds the index range scanned, so `table=x/**` reads only that part of the catalog.
   */
  find(glob: string, opts: FindOptions = {}, page: PageOptions<FindCursor> = {}): Page<FoundObject, FindCursor> {
    this.glob(glob); // throws GlobError (exit 2) before any SQL runs
    const limit = page.limit ?? DEFAULT_LIMIT;
    const after = page.after ?? null;
    const prefix = globLiteralPrefix(glob);
    const lo = after === null ? prefix : after.key > prefix ? after.key : prefix;
    const params: Record<string, unknown> = { glob, lo, hi: upperBound(prefix), limit, afterKey: after?.key ?? null, afterObject: after?.object ?? 0 };
    const where = [keyRangeSql(params.hi as string | null), '(@afterKey IS NULL OR o.key > @afterKey OR o.id > @afterObject)', `${GLOB_FUNCTION}(@glob, o.key)`];
    if (opts.bucket !== undefined) {
      where.unshift('o.bucket = (SELECT id FROM buckets WHERE name = @bucket)');
      params.bucket = opts.bucket;
    }
    if (opts.deleted) where.push('v.delete_marker = 1');
    if (opts.largerThan !== undefined) {
      where.push('v.delete_marker = 0 AND v.size > @largerThan');
      params.largerThan = opts.largerThan;
    }
    if (opts.since !== undefined) {
      where.push('time' in opts.since ? 'v.valid_from > @since' : opts.since.runSet === undefined ? 'v.run > @since' : `NOT ${runCutSql('v.run', opts.since, 'since')}`);
      Object.assign(params, cutParams(opts.since, 'since'));
    }
    const state = stateVersionSql('o.id', opts.at, 'at');
    Object.assign(params, cutParams(opts.at, 'at'));
    // Without --bucket the planner must walk objects_by_key (key order), not the (bucket, key) index.
    const objects = opts.bucket === undefined && ensureIndex(this.db, 'objects_by_key') ? 'objects o INDEXED BY objects_by_key' : 'objects o';
    const rows = this.db
      .prepare(
        `SELECT o.id AS object, b.name AS bucket, o.key AS key, v.delete_marker AS deleted, v.version_id AS versionId, v.size AS size,
                ${etagSql('v.etag')} AS etag, v.valid_from AS time, ${lastModifiedSql('v')} AS lastModified, v.storage_class AS storageClass, r.id AS run,
                (SELECT count(*) FROM versions WHERE object = o.id) AS versions
         FROM ${objects} JOIN buckets b ON b.id = o.bucket
         JOIN versions v ON v.id = ${state}
         JOIN runs r ON r.seq = v.run
         WHERE ${where.join(' AND ')}
         ORDER BY o.key, o.id LIMIT @limit`,
      )
      .all(params) as Row[];
    const items = rows.map((r) => ({
      bucket: r.bucket as string,
      key: r.key as string,
      deleted: r.deleted === 1,
      versionId: r.versionId as string | null,
      size: r.size as number,
      etag: r.etag as string | null,
      time: r.time as number,
      lastModified: r.lastModified as number,
      storageClass: decodeStorageClass(r.storageClass),
      run: r.run as string,
      versions: r.versions as number,
    }));
    const last = rows.at(-1);
    return { items, next: rows.length < limit || last === undefined ? null : { key: last.key as string, object: last.object as number } };
  }

  // ---- ls ---------------------------------------------------------------------------------

  /**
   * The immediate children of `prefix` in `bucket` at `cut` (default: now), in key order:
   * keys with their size and time, and sub-prefixes (cut after the next '/') with the number
   * and bytes of the keys below them. Keys deleted at the cut are not there.
   */
  ls(bucket: string, prefix: string, cut?: StateCut, page: PageOptions<LsCursor> = {}): Page<LsEntry, LsCursor> {
    const limit = page.limit ?? DEFAULT_LIMIT;
    const bucketId = this.db.prepare('SELECT id FROM buckets WHERE name = ?').pluck().get(bucket) as number | undefined;
    if (bucketId === undefined) return { items: [], next: null };
    const lo = page.after?.from ?? prefix;
    const hi = upperBound(prefix);
    // Where this page ends: `limit` children further on, found by index seeks that jump over
    // each sub-prefix, so a page costs its own rows and not the rest of the prefix. (A child
    // whose keys are all deleted at the cut still counts here: a page may come out shorter.)
    const end = this.childrenBoundary(bucketId, prefix, lo, hi, limit);
    const upper = end ?? hi;
    const plen = [...prefix].length; // substr/instr count characters, not UTF-16 units
    const rest = `substr(o.key, ${plen + 1})`;
    const rows = this.db
      .prepare(
        `SELECT name, max(isPrefix) AS isPrefix, count(*) AS objects, sum(size) AS bytes, max(time) AS time,
                min(versionId) AS versionId, ${etagSql('min(etag)')} AS etag, max(lastModified) AS lastModified, min(storageClass) AS storageClass
         FROM (
           SELECT CASE WHEN instr(${rest}, '/') = 0 THEN o.key ELSE substr(o.key, 1, ${plen} + instr(${rest}, '/')) END AS name,
                  instr(${rest}, '/') > 0 AS isPrefix, v.size AS size, v.valid_from AS time, v.version_id AS versionId,
                  v.etag AS etag, ${lastModifiedSql('v')} AS lastModified, v.storage_class AS storageClass
           FROM objects o JOIN versions v ON v.id = ${stateVersionSql('o.id', cut, 'cut')}
           WHERE o.bucket = @bucketId AND ${keyRangeSql(upper)} AND v.delete_marker = 0
         )
         GROUP BY name ORDER BY name`,
      )
      .all({ bucketId, lo, hi: upper, ...cutParams(cut, 'cut') }) as Row[];
    const items = rows.map((r): LsEntry =>
      r.isPrefix === 1
        ? { type: 'prefix', name: r.name as string, objects: r.objects as number, bytes: r.bytes as number, time: r.time as number }
        : {
            type: 'object',
            name: r.name as string,
            objects: 1,
            bytes: r.bytes as number,
            time: r.time as number,
            versionId: r.versionId as string | null,
            etag: r.etag as string | null,
            lastModified: r.lastModified as number,
            storageClass: decodeStorageClass(r.storageClass),
          },
    );
    return { items, next: end === null ? null : { from: end } };
  }

  /**
   * The first key of child number `limit + 1` of `prefix` from `lo` on (where the next page
   * starts), or null when fewer children remain. One recursive query, one index seek per child:
   * after a key comes the next key, after a sub-prefix `x/` the first key >= `x0` ('0' follows '/').
   */
  private childrenBoundary(bucketId: number, prefix: string, lo: string, hi: string | null, limit: number): string | null {
    const plen = [...prefix].length;
    const below = hi === null ? '' : ' AND key < @hi';
    const slash = `instr(substr(w.k, ${plen + 1}), '/')`;
    const row = this.db
      .prepare(
        `WITH RECURSIVE w(n, k) AS (
           SELECT 0, (SELECT key FROM objects WHERE bucket = @bucketId AND key >= @lo${below} ORDER BY key LIMIT 1)
           UNION ALL
           SELECT w.n + 1, CASE WHEN ${slash} = 0
             THEN (SELECT key FROM objects WHERE bucket = @bucketId AND key > w.k${below} ORDER BY key LIMIT 1)
             ELSE (SELECT key FROM objects WHERE bucket = @bucketId AND key >= substr(w.k, 1, ${plen} + ${slash} - 1) || '0'${below} ORDER BY key LIMIT 1)
           END
           FROM w WHERE w.n < @limit AND w.k IS NOT NULL
         )
         SELECT k FROM w WHERE n = @limit`,
      )
      .pluck()
      .get({ bucketId, lo, limit, ...(hi === null ? {} : { hi }) }) as string | null | undefined;
    return row ?? null;
  }

  // ---- diff ----------------------------------------------------------------------------

  /** Counts and bytes of keys added, changed, rewritten (same content) and deleted from `from` to `to`. */
  diffSummary(from: StateCut, to: StateCut, scope: DiffScope = {}): DiffSummary {
    const summary = emptyDiffSummary(this.diffBuckets(scope));
    for (const bucket of summary.buckets) countBucketChanges(this.db, summary, bucket, from, to, scope);
    return summary;
  }

  /** The keys behind diffSummary, by bucket then key. */
  diffDetails(from: StateCut, to: StateCut, scope: DiffScope = {}, page: PageOptions<DiffCursor> = {}): Page<DiffEntry, DiffCursor> {
    const limit = page.limit ?? DEFAULT_LIMIT;
    const after = page.after ?? null;
    const items: DiffEntry[] = [];
    const buckets = this.diffBuckets(scope);
    // Resume at the cursor's bucket (by position: bucket order is the list's own).
    const start = after === null ? 0 : Math.max(0, buckets.indexOf(after.bucket));
    for (const bucket of buckets.slice(start)) {
      const afterKey = after !== null && bucket === after.bucket ? after.key : null;
      items.push(...bucketChangesPage(this.db, bucket, from, to, scope, afterKey, limit - items.length));
      if (items.length >= limit) break;
    }
    const last = items.at(-1);
    return { items, next: items.length < limit || last === undefined ? null : { bucket: last.bucket, key: last.key } };
  }

  /**
   * The objects of `bucket` under `prefix` at `cut`, in S3 key order, page after page (constant
   * memory): what `diff <T> live` merge-joins with a listing of the bucket now.
   */
  *stateAt(bucket: string, prefix: string, cut: StateCut, pageSize = DEFAULT_LIMIT): Generator<StateObject> {
    for (let after: string | null = null; ; ) {
      const rows = stateAtPage(this.db, bucket, prefix, cut, after, pageSize);
      yield* rows;
      if (rows.length < pageSize) return;
      after = rows.at(-1)!.key;
    }
  }

  private diffBuckets(scope: DiffScope): string[] {
    if (scope.buckets !== undefined) return [...new Set(scope.buckets)].sort(utf8Order);
    if (scope.group !== undefined) {
      // Every version the group's runs recorded, through versions_by_run: slower on big
      // catalogs, so commands pass the policy's buckets when they have them.
      return this.db
        .prepare(
          `SELECT DISTINCT b.name FROM runs r JOIN versions v ON v.run = r.seq JOIN objects o ON o.id = v.object
           JOIN buckets b ON b.id = o.bucket WHERE r.grp = ? ORDER BY b.name`,
        )
        .pluck()
        .all(scope.group) as string[];
    }
    return this.buckets();
  }

  // ---- calendar ---------------------------------------------------------------------------

  /** Runs of a month (`YYYY-MM`), per day of the machine's local time zone. */
  calendar(month: string, group?: string): CalendarMonth {
    const m = /^(\d{4})-(\d{2})$/.exec(month);
    const year = Number(m?.[1]);
    const mon = Number(m?.[2]);
    if (m === null || mon < 1 || mon > 12) throw new UsageError(`month ${JSON.stringify(month)}: expected YYYY-MM, such as 2026-11`);
    const localMidnight = (day: number) => {
      const d = new Date(2000, 0, 1);
      d.setFullYear(year, mon - 1, day);
      d.setHours(0, 0, 0, 0);
      return d.getTime();
    };
    const daysInMonth = new Date(Date.UTC(year, mon, 0)).getUTCDate();
    ensureIndex(this.db, 'runs_by_started');
    const starts = Array.from({ length: daysInMonth + 1 }, (_, i) => localMidnight(i + 1)); // +1: the next month's first day
    const rows = this.db
      .prepare(
        `SELECT seq, id, grp, status, started, finished, counters FROM runs
         WHERE started >= @from AND started < @to AND (@group IS NULL OR grp = @group)
           AND NOT EXISTS (SELECT 1 FROM run_shards s WHERE s.run = runs.seq) ORDER BY started, seq`,
      )
      .all({ from: starts[0]!, to: starts[daysInMonth]!, group: group ?? null }) as Row[];
    // A run set is one run, on the day its first shard attempt started.
    for (const set of runSetsOf(this.catalog, group === undefined ? {} : { group })) {
      if (set.started < starts[0]! || set.started >= starts[daysInMonth]!) continue;
      rows.push({ seq: set.firstSeq, id: set.id, grp: set.group, status: set.status, started: set.started, finished: set.finished, counters: set.counters === null ? null : JSON.stringify(set.counters) });
    }
    rows.sort((a, b) => (a.started as number) - (b.started as number) || (a.seq as number) - (b.seq as number));
    const days: CalendarDay[] = starts.slice(0, daysInMonth).map((_, i) => ({ date: `${month}-${String(i + 1).padStart(2, '0')}`, runs: [] }));
    let day = 0;
    for (const r of rows) {
      const started = r.started as number;
      while (day < daysInMonth - 1 && started >= starts[day + 1]!) day++;
      const counters = r.counters === null ? null : (JSON.parse(r.counters as string) as RunCounters);
      days[day]!.runs.push({
        id: r.id as string,
        seq: r.seq as number,
        group: r.grp as string,
        status: r.status as RunStatus,
        started,
        finished: r.finished as number | null,
        objectsFailed: counters?.objectsFailed ?? 0,
      });
    }
    return { month, timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone, group: group ?? null, days };
  }

  // ---- runs -------------------------------------------------------------------------------

  /**
   * A run (id, unique id prefix or number) with what it recorded; undefined when unknown. The
   * keys it changed are counted (about 10-15 µs a version) only up to `countKeysUpTo` versions.
   */
  runShow(ref: string, countKeysUpTo = RUN_KEYS_COUNTED_UP_TO): RunDetails | undefined {
    const run = this.catalog.findRun(ref);
    if (run === undefined) return undefined;
    const v = this.db
      .prepare('SELECT count(*) AS n, coalesce(sum(delete_marker), 0) AS markers, coalesce(sum(size), 0) AS bytes FROM versions WHERE run = ?')
      .get(run.seq) as { n: number; markers: number; bytes: number };
    const f = this.db
      .prepare(`SELECT count(*) AS n, coalesce(sum(code IN (${SKIP_CODES.map(() => '?').join(', ')})), 0) AS skipped FROM failures WHERE run = ?`)
      .get(...SKIP_CODES, run.seq) as { n: number; skipped: number };
    const unrecorded = this.catalog.unrecordedError(run.seq);
    return {
      run,
      ...(unrecorded === undefined ? {} : { unrecorded }),
      versionsRecorded: v.n,
      deleteMarkersRecorded: v.markers,
      bytesRecorded: v.bytes,
      failures: f.n - f.skipped,
      skipped: f.skipped,
      changes: v.n <= countKeysUpTo ? runChanges(this.db, run.seq) : null,
      previousSeq: (this.db.prepare('SELECT max(seq) FROM runs WHERE seq < ?').pluck().get(run.seq) as number | null) ?? null,
    };
  }

  /** The versions and delete markers a run recorded, in the order it recorded them. */
  runVersions(runSeq: number, page: PageOptions<RunVersionCursor> = {}): Page<RunVersion, RunVersionCursor> {
    return runVersionsPage(this.db, runSeq, { ...page, limit: page.limit ?? DEFAULT_LIMIT });
  }

  /** The objects a run could not back up, and the entries it skipped, in the order it met them. */
  failures(runSeq: number, page: PageOptions<FailureCursor> = {}): Page<FailureRecord, FailureCursor> {
    const limit = page.limit ?? DEFAULT_LIMIT;
    const rows = this.db
      .prepare('SELECT rowid, bucket, key, version_id AS versionId, code, message FROM failures WHERE run = ? AND rowid > ? ORDER BY rowid LIMIT ?')
      .all(runSeq, page.after?.rowid ?? 0, limit) as Row[];
    const items = rows.map((r) => ({ bucket: r.bucket as string, key: r.key as string, versionId: r.versionId as string | null, code: r.code as string, message: r.message as string }));
    const last = rows.at(-1);
    return { items, next: rows.length < limit || last === undefined ? null : { rowid: last.rowid as number } };
  }

  private glob(pattern: string): RegExp {
    let re = this.globs.get(pattern);
    if (re === undefined) {
      re = compileGlob(pattern);
      if (this.globs.size > 100) this.globs.clear();
      this.globs.set(pattern, re);
    }
    return re;
  }
}

/** A paged query page by page (constant memory): its first page, and how to get the one after a cursor. */
export function* allPages<T, C>(first: Page<T, C>, next: (after: C) => Page<T, C>): Generator<T[]> {
  for (let page = first; ; ) {
    if (page.items.length > 0) yield page.items;
    if (page.next === null) return;
    page = next(page.next);
  }
}

// ---- SQL pieces ------------------------------------------------------------------------------

/** S3's (and SQLite's BINARY) order: UTF-8 bytes, not JS's UTF-16 units. */
function utf8Order(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
