/**
 * What a backup asks the catalog while it lists its sources (src/engine/scan.ts): the newest
 * catalogued version of each key, page by page in key order (the incremental merge-join
 * against a listing), whether a listed version is already catalogued (and its row), whether a prefix still
 * holds live keys. These run once per listed key or page, so their statements are prepared once
 * per catalog (Catalog.nthKey, which splits a prefix for the fan-out, stays with the Catalog).
 */
import type { Catalog } from './catalog.js';
import { etagSql, lastModifiedSql } from './codec.js';
import { sqlite } from './connection.js';
import type { LatestVersion } from './types.js';

function prepareStatements(catalog: Catalog) {
  const db = sqlite(catalog);
  return {
    latestPageAfter: db.prepare(latestPageSql('>', true)).raw(true),
    latestPageFrom: db.prepare(latestPageSql('>=', true)).raw(true),
    latestPageAfterOpen: db.prepare(latestPageSql('>', false)).raw(true),
    latestPageFromOpen: db.prepare(latestPageSql('>=', false)).raw(true),
    hasLiveKeys: db
      .prepare(
        `SELECT 1 FROM objects o JOIN versions v ON v.id = o.latest
         WHERE o.bucket = @bucket AND o.key >= @lower AND o.key < @upper AND v.delete_marker = 0 LIMIT 1`,
      )
      .pluck(),
    liveKeyCount: db
      .prepare(
        `SELECT count(*) FROM objects o JOIN versions v ON v.id = o.latest
         WHERE o.bucket = @bucket AND o.key >= @lower AND o.key < @upper AND v.delete_marker = 0`,
      )
      .pluck(),
    objectOf: db.prepare('SELECT id FROM objects WHERE bucket = ? AND key = ?').pluck(),
    // Each alone: SQLite reads min and max of a rowid from the b-tree's ends only one per query.
    lowestObject: db.prepare('SELECT min(id) FROM objects').pluck(),
    highestObject: db.prepare('SELECT max(id) FROM objects').pluck(),
    liveKeysFrom: db
      .prepare(
        `SELECT o.key FROM objects o JOIN versions v ON v.id = o.latest
         WHERE o.id >= @from AND o.id < @to AND +o.bucket = @bucket AND v.delete_marker = 0 ORDER BY o.id LIMIT @limit`,
      )
      .pluck(),
    latestNullVersion: db.prepare(
      `SELECT v.id AS row, v.delete_marker AS deleteMarker, ${etagSql('v.etag')} AS etag, v.size AS size, ${lastModifiedSql('v')} AS lastModified FROM versions v
       WHERE v.object = ? AND v.version_id IS NULL ORDER BY v.valid_from DESC, v.id DESC LIMIT 1`,
    ),
    // The newest record of a version: a version may have several (docs/catalog.md "Reinstated versions").
    versionRow: db.prepare('SELECT id FROM versions WHERE object = ? AND version_id = ? ORDER BY valid_from DESC, id DESC LIMIT 1').pluck(),
    isDropped: db.prepare('SELECT 1 FROM dropped_versions WHERE object = ? AND version_id = ?').pluck(),
    versionRun: db.prepare('SELECT run FROM versions WHERE id = ?').pluck(),
    runListed: db.prepare('SELECT started, counters FROM runs WHERE seq = ?'),
  };
}

const statements = new WeakMap<Catalog, ReturnType<typeof prepareStatements>>();

function statementsOf(catalog: Catalog): ReturnType<typeof prepareStatements> {
  let stmts = statements.get(catalog);
  if (stmts === undefined) statements.set(catalog, (stmts = prepareStatements(catalog)));
  return stmts;
}

/** A listed version as the catalog knows it (see cataloguedVersion). */
type ListedVersion = { key: string; versionId: string | null; isDeleteMarker: boolean; etag: string; size: number; lastModified: Date };

/**
 * Whether a listed version is already catalogued: by version id, or — for the "null" version
 * of a bucket whose versioning was suspended or enabled late — by etag, size and time.
 */
export function hasVersion(catalog: Catalog, bucket: string, entry: ListedVersion): boolean {
  return cataloguedVersion(catalog, bucket, entry) !== undefined;
}

/**
 * The catalog row of a listed version (its newest record), null when forget dropped every
 * record of it (the version id is remembered, docs/catalog.md "Forget"), undefined when the
 * catalog never had it. Matched as hasVersion says. `objectId`: the key's object row when the
 * caller already knows it (saves a lookup per listed version).
 */
export function cataloguedVersion(catalog: Catalog, bucket: string, entry: ListedVersion, objectId?: number): number | null | undefined {
  const stmts = statementsOf(catalog);
  let object = objectId;
  if (object === undefined) {
    const bucketId = catalog.findBucketId(bucket);
    if (bucketId === undefined) return undefined;
    object = stmts.objectOf.get(bucketId, entry.key) as number | undefined;
    if (object === undefined) return undefined;
  }
  if (entry.versionId !== null) {
    const row = stmts.versionRow.get(object, entry.versionId) as number | undefined;
    if (row !== undefined) return row;
    return stmts.isDropped.get(object, entry.versionId) === undefined ? undefined : null;
  }
  const row = stmts.latestNullVersion.get(object) as { row: number; deleteMarker: number; etag: string; size: number; lastModified: number } | undefined;
  if (row === undefined) return undefined;
  const same = entry.isDeleteMarker
    ? row.deleteMarker === 1
    : row.deleteMarker === 0 && row.etag === entry.etag && row.size === entry.size && row.lastModified === entry.lastModified.getTime();
  return same ? row.row : undefined;
}

/**
 * One page of the newest catalogued version per key in `bucket` from `lower` up to `upper`, in key
 * order (SQLite's BINARY collation = UTF-8 byte order = S3 listing order).
 */
export function latestPage(catalog: Catalog, bucket: string, lower: string, inclusive: boolean, upper: string | null, limit: number): LatestVersion[] {
  const id = catalog.findBucketId(bucket);
  if (id === undefined) return [];
  const stmts = statementsOf(catalog);
  const stmt = upper === null ? (inclusive ? stmts.latestPageFromOpen : stmts.latestPageAfterOpen) : inclusive ? stmts.latestPageFrom : stmts.latestPageAfter;
  // Rows as arrays (columns in latestPageSql's order): an incremental run reads every
  // catalogued key, and named rows cost ~40 % more per key.
  const rows = (upper === null ? stmt.all({ bucket: id, lower, limit }) : stmt.all({ bucket: id, lower, upper, limit })) as unknown[][];
  return rows.map((r) => ({
    objectId: r[0] as number,
    key: r[1] as string,
    versionRow: r[2] as number,
    versionId: r[3] as string | null,
    deleteMarker: r[4] === 1,
    size: r[5] as number,
    etag: r[6] as string | null,
    lastModified: r[7] as number,
    validFrom: r[8] as number,
  }));
}

/**
 * When the run that wrote a catalog record (its row) looked at `bucket`: the time of the S3
 * Inventory report it listed the bucket from (counters.inventory), else its start (a LIST, or
 * the keys of a watch run, are listed after it). undefined when the row has no run.
 * `cache`: run seq -> that time, shared by the lookups of one listing.
 */
export function recordSeenAt(catalog: Catalog, bucket: string, versionRow: number, cache: Map<number, number>): number | undefined {
  const stmts = statementsOf(catalog);
  const seq = stmts.versionRun.get(versionRow) as number | undefined;
  if (seq === undefined) return undefined;
  let at = cache.get(seq);
  if (at === undefined) {
    const run = stmts.runListed.get(seq) as { started: number; counters: string | null } | undefined;
    if (run === undefined) return undefined;
    const report = run.counters === null ? undefined : (JSON.parse(run.counters) as { inventory?: Record<string, string> }).inventory?.[bucket];
    at = report === undefined ? run.started : Date.parse(report);
    cache.set(seq, at);
  }
  return at;
}

/** Whether any key under `prefix` currently exists (its newest version is not a delete marker). */
export function hasLiveKeys(catalog: Catalog, bucket: string, prefix: string): boolean {
  const id = catalog.findBucketId(bucket);
  if (id === undefined) return false;
  return statementsOf(catalog).hasLiveKeys.get({ bucket: id, lower: prefix, upper: prefix + '\u{10FFFF}' }) !== undefined;
}

/**
 * How many keys under `prefix` currently exist. A run driven by a key list (watch) sees only
 * the keys it was given, so the anomaly shares of a partition are taken against this count.
 */
export function liveKeyCount(catalog: Catalog, bucket: string, prefix: string): number {
  const id = catalog.findBucketId(bucket);
  if (id === undefined) return 0;
  return statementsOf(catalog).liveKeyCount.get({ bucket: id, lower: prefix, upper: prefix + '\u{10FFFF}' }) as number;
}

/** Columns in the order latestPage reads them (raw rows). */
function latestPageSql(lowerOp: '>' | '>=', bounded: boolean): string {
  return `SELECT o.id AS objectId, o.key AS key, v.id AS versionRow, v.version_id AS versionId, v.delete_marker AS deleteMarker,
                 v.size AS size, ${etagSql('v.etag')} AS etag, ${lastModifiedSql('v')} AS lastModified, v.valid_from AS validFrom
          FROM objects o JOIN versions v ON v.id = o.latest
          WHERE o.bucket = @bucket AND o.key ${lowerOp} @lower ${bounded ? 'AND o.key < @upper' : ''}
          ORDER BY o.key LIMIT @limit`;
}

/**
 * Whether the group's last `window` finished runs (complete or partial) include none that
 * listed every version of its versioned sources (counters.versionListing 'full'): a run of
 * catalogs from before the field existed, or the first one, counts as due.
 */
export function fullVersionListingDue(catalog: Catalog, group: string, window: number): boolean {
  const rows = sqlite(catalog)
    .prepare(`SELECT counters FROM runs WHERE grp = ? AND status IN ('complete', 'partial') ORDER BY seq DESC LIMIT ?`)
    .pluck()
    .all(group, window) as (string | null)[];
  return !rows.some((text) => text !== null && (JSON.parse(text) as { versionListing?: string }).versionListing === 'full');
}

/**
 * A sample of the keys of `bucket` whose newest catalogued version is live, spread over the
 * whole catalog whatever its size: the objects' row ids are cut into `strata` equal spans, and
 * from a random point of each, the first `perStratum` such keys within `window` rows (fewer
 * when the bucket's objects are sparse there). A catalog of no more objects than strata gives
 * every key. At most strata × window rows are read.
 */
export function sampleLiveKeys(catalog: Catalog, bucket: string, opts: { strata: number; perStratum: number; window: number; random?: () => number }): string[][] {
  const id = catalog.findBucketId(bucket);
  if (id === undefined) return [];
  const stmts = statementsOf(catalog);
  const lo = stmts.lowestObject.get() as number | null;
  const hi = stmts.highestObject.get() as number | null;
  if (lo === null || hi === null) return [];
  const span = hi - lo + 1;
  const n = Math.min(opts.strata, span);
  const random = opts.random ?? Math.random;
  const out: string[][] = [];
  for (let j = 0; j < n; j++) {
    const from = lo + Math.floor(((j + (n === span ? 0 : random())) * span) / n);
    out.push(stmts.liveKeysFrom.all({ from, to: from + opts.window, bucket: id, limit: opts.perStratum }) as string[]);
  }
  return out;
}

/**
 * When the group's runs before run `seq` (all of them for null) last observed its sources: the
 * latest end of one (null: none ended). A file changed since has a version starting after it.
 */
export function lastObservation(catalog: Catalog, group: string, seq: number | null): number | null {
  return sqlite(catalog)
    .prepare('SELECT max(finished) FROM runs WHERE grp = ? AND finished IS NOT NULL AND (? IS NULL OR seq < ?)')
    .pluck()
    .get(group, seq, seq) as number | null;
}

/**
 * Keys of `bucket` whose reads failed in the group's runs since its last listing of every version
 * (that run included; every run when none did) and are still missing: a version id the catalog
 * does not hold, or a null version no later run recorded (null versions are not told apart by
 * id). An incremental of a versioned bucket
 * asks only about keys whose current state changed, so a failed version that is no longer
 * current would otherwise wait for the next full listing (scan.ts scanChangedVersions). Sorted
 * in key order (BINARY collation = S3 listing order).
 */
export function keysToRetry(catalog: Catalog, group: string, bucket: string): string[] {
  const db = sqlite(catalog);
  const runs = db.prepare(`SELECT seq, counters FROM runs WHERE grp = ? AND status IN ('complete', 'partial') ORDER BY seq DESC`).raw(true).iterate(group) as IterableIterator<[number, string | null]>;
  let since = 0;
  for (const [seq, text] of runs) {
    if (text !== null && (JSON.parse(text) as { versionListing?: string }).versionListing === 'full') {
      since = seq;
      break;
    }
  }
  return db
    .prepare(
      `SELECT DISTINCT f.key FROM failures f JOIN runs r ON r.seq = f.run
       WHERE r.grp = @group AND f.run >= @since AND f.bucket = @bucket
         AND NOT EXISTS (
           SELECT 1 FROM objects o JOIN buckets b ON b.id = o.bucket JOIN versions v ON v.object = o.id
           WHERE b.name = @bucket AND o.key = f.key AND v.version_id IS f.version_id AND (f.version_id IS NOT NULL OR v.run > f.run))
       ORDER BY f.key`,
    )
    .pluck()
    .all({ group, since, bucket }) as string[];
}
