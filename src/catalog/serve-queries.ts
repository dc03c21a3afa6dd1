/**
 * What `lakeguard serve` asks the catalog (docs/serve.md "How it reads"): the objects of a bucket
 * at a state cut in key order from a bound (the protocol layer's listings are built from seeks
 * with it), one key's state or one of its versions, a key range's versions newest first, and
 * where the bytes of a range of an object's content are.
 *
 * As everywhere (queries.ts), the state of a key at a cut is one correlated subquery per object
 * on `versions_by_object`; every walk is over the (bucket, key) index from a bound, read lazily
 * (a caller that stops early reads no further rows), never a whole bucket.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Catalog, StateCut } from './catalog.js';
import { decodeStorageClass, etagSql, lastModifiedSql } from './codec.js';
import { sqlite } from './connection.js';
import { cutParams, runCutSql } from './diff-queries.js';
import type { BlobLocation, StoredMeta } from './types.js';
import { blobLocationOf } from './restore-selection.js';

type Row = Record<string, unknown>;

/** One catalogued version (or delete marker) of a key. */
export interface ServedVersion {
  key: string;
  /** versions.id: what content lookups take. */
  versionRow: number;
  versionId: string | null;
  deleteMarker: boolean;
  size: number;
  etag: string | null;
  lastModified: number;
  /** valid_from: from when it is the key's state. */
  validFrom: number;
  storageClass: string | null;
}

/** A version with its stored metadata (content type, user metadata, tags). */
export interface ServedObject extends ServedVersion {
  meta: StoredMeta;
}

/** A blob of an object's content and where in the content it starts. */
export interface ContentBlob extends BlobLocation {
  /** Offset of the blob's first byte in the object's content. */
  position: number;
  /** Bytes of the blob's pack (reads around the blob stay inside it). */
  packSize: number;
}

/** Where the next version after a versions page starts: a key, and a version row of it (0: its first). */
export interface VersionsCursor {
  key: string;
  /** Exclusive: versions of `key` ordered after this one (newest first); null: every version of `key`. */
  after: { validFrom: number; row: number } | null;
}

const VERSION_COLUMNS = (v: string): string =>
  `${v}.id AS versionRow, ${v}.version_id AS versionId, ${v}.delete_marker AS deleteMarker, ${v}.size AS size, ${etagSql(`${v}.etag`)} AS etag,
   ${lastModifiedSql(v)} AS lastModified, ${v}.valid_from AS validFrom, ${v}.storage_class AS storageClass`;

function servedVersion(r: Row): ServedVersion {
  return {
    key: r.key as string,
    versionRow: r.versionRow as number,
    versionId: r.versionId as string | null,
    deleteMarker: r.deleteMarker === 1,
    size: r.size as number,
    etag: r.etag as string | null,
    lastModified: r.lastModified as number,
    validFrom: r.validFrom as number,
    storageClass: decodeStorageClass(r.storageClass),
  };
}

function servedObject(r: Row): ServedObject {
  return { ...servedVersion(r), meta: r.meta === null || r.meta === undefined ? {} : (JSON.parse(r.meta as string) as StoredMeta) };
}

/** The SQL of a cut depends on its kind (time, run, run set): one cached statement per kind. */
function cutKind(cut: StateCut): string {
  return 'time' in cut ? 'time' : cut.runSet === undefined ? 'run' : 'set';
}

/**
 * SQL: version row `v` is recorded at the cut bound to `@cut`, by a run the catalog held when
 * `serve` pinned its view (`@pinned`): a backup that another process records into the same
 * catalog file meanwhile (its versions may be older than the instant: a file's time is its
 * modification time) changes no answer of this server (docs/serve.md "One catalog, pinned").
 */
function inCut(v: string, cut: StateCut): string {
  return `${'time' in cut ? `${v}.valid_from <= @cut` : runCutSql(`${v}.run`, cut, 'cut')} AND ${v}.run <= @pinned`;
}

/** SQL: the row id of `object`'s state version at the cut (stateVersionSql), pinned as inCut. */
function servedStateSql(object: string, cut: StateCut): string {
  return `(SELECT id FROM versions sv WHERE sv.object = ${object} AND ${inCut('sv', cut)} ORDER BY sv.valid_from DESC, sv.id DESC LIMIT 1)`;
}


/** Read-only catalog questions of one `serve` process; statements are prepared once and reused. */
export class ServeQueries {
  private readonly db: BetterSqlite3.Database;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();

  /**
   * `pinned`: the newest run number the catalog held when the view was pinned (Infinity: none,
   * every run counts). Versions of later runs are never answered.
   */
  constructor(
    catalog: Catalog,
    private readonly pinned = Number.MAX_SAFE_INTEGER,
  ) {
    this.db = sqlite(catalog);
  }

  /** The cut's parameters, with the pinned run. */
  private cutParams(cut: StateCut): Record<string, unknown> {
    return { ...cutParams(cut, 'cut'), pinned: this.pinned };
  }

  private statement(name: string, sql: () => string): BetterSqlite3.Statement {
    let stmt = this.statements.get(name);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql());
      this.statements.set(name, stmt);
    }
    return stmt;
  }

  /** Every bucket (or directory source) the catalog has recorded a key of. */
  allBuckets(): string[] {
    return this.statement('buckets', () => 'SELECT name FROM buckets ORDER BY name')
      .pluck()
      .all() as string[];
  }

  /** The bucket's row id, or undefined when the catalog has never recorded a key of it. */
  bucketId(name: string): number | undefined {
    return this.statement('bucket', () => 'SELECT id FROM buckets WHERE name = ?')
      .pluck()
      .get(name) as number | undefined;
  }

  /**
   * The objects (not delete markers) of a bucket at `cut`, in key order, from `from` (inclusive
   * or not) up to `below` (exclusive; null: the end of the bucket). Lazy: each row read is one
   * index step plus its state lookup, and stopping early reads nothing more.
   */
  *objectsAt(bucketId: number, cut: StateCut, from: string, inclusive: boolean, below: string | null): Generator<ServedVersion> {
    const stmt = this.statement(`objects:${cutKind(cut)}:${inclusive}:${below !== null}`, () =>
      `SELECT o.key AS key, ${VERSION_COLUMNS('v')}
       FROM objects o JOIN versions v ON v.id = ${servedStateSql('o.id', cut)}
       WHERE o.bucket = @bucketId AND o.key ${inclusive ? '>=' : '>'} @from${below === null ? '' : ' AND o.key < @below'} AND v.delete_marker = 0
       ORDER BY o.key`,
    );
    const params = { bucketId, from, ...(below === null ? {} : { below }), ...this.cutParams(cut) };
    for (const r of stmt.iterate(params) as IterableIterator<Row>) yield servedVersion(r);
  }

  /** A key's state at `cut` (a delete marker too), or undefined when it had no version yet. */
  stateOf(bucketId: number, key: string, cut: StateCut): ServedObject | undefined {
    const r = this.statement(`state:${cutKind(cut)}`, () =>
      `SELECT o.key AS key, ${VERSION_COLUMNS('v')}, m.json AS meta
       FROM objects o JOIN versions v ON v.id = ${servedStateSql('o.id', cut)} LEFT JOIN metas m ON m.id = v.meta
       WHERE o.bucket = @bucketId AND o.key = @key`,
    ).get({ bucketId, key, ...this.cutParams(cut) }) as Row | undefined;
    return r === undefined ? undefined : servedObject(r);
  }

  /**
   * A catalogued version of a key by its S3 version id (null: the source's unversioned "null"
   * version, its newest record at `cut`). A reinstated version has several records of the same
   * content: the newest counts.
   */
  versionOf(bucketId: number, key: string, versionId: string | null, cut: StateCut): ServedObject | undefined {
    const stmt =
      versionId === null
        ? this.statement(`null-version:${cutKind(cut)}`, () =>
            `SELECT o.key AS key, ${VERSION_COLUMNS('v')}, m.json AS meta
             FROM objects o JOIN versions v ON v.object = o.id LEFT JOIN metas m ON m.id = v.meta
             WHERE o.bucket = @bucketId AND o.key = @key AND v.version_id IS NULL AND ${inCut('v', cut)}
             ORDER BY v.valid_from DESC, v.id DESC LIMIT 1`,
          )
        : this.statement('version', () =>
            `SELECT o.key AS key, ${VERSION_COLUMNS('v')}, m.json AS meta
             FROM objects o JOIN versions v ON v.object = o.id LEFT JOIN metas m ON m.id = v.meta
             WHERE o.bucket = @bucketId AND o.key = @key AND v.version_id = @versionId AND v.run <= @pinned
             ORDER BY v.valid_from DESC, v.id DESC LIMIT 1`,
          );
    const r = stmt.get({ bucketId, key, ...(versionId === null ? this.cutParams(cut) : { versionId, pinned: this.pinned }) }) as Row | undefined;
    return r === undefined ? undefined : servedObject(r);
  }

  /**
   * The keys of a bucket with at least one version or delete marker recorded at `cut`, in key
   * order from `from` (inclusive or not) up to `below` (exclusive; null: the end). Lazy.
   */
  *keysWithVersionsAt(bucketId: number, cut: StateCut, from: string, inclusive: boolean, below: string | null): Generator<{ object: number; key: string }> {
    const stmt = this.statement(`keys:${cutKind(cut)}:${inclusive}:${below !== null}`, () =>
      `SELECT o.id AS object, o.key AS key FROM objects o
       WHERE o.bucket = @bucketId AND o.key ${inclusive ? '>=' : '>'} @from${below === null ? '' : ' AND o.key < @below'}
         AND EXISTS (SELECT 1 FROM versions v WHERE v.object = o.id AND ${inCut('v', cut)})
       ORDER BY o.key`,
    );
    const params = { bucketId, from, ...(below === null ? {} : { below }), ...this.cutParams(cut) };
    yield* stmt.iterate(params) as IterableIterator<{ object: number; key: string }>;
  }

  /**
   * The versions and delete markers of one key recorded at `cut`, newest first, after the
   * record `after` (exclusive; null: from the newest). A version recorded several times (a
   * reinstated one: catalog.md) is listed once, at its newest record; so is an unversioned
   * source's "null" version (S3 has one per key). Lazy.
   */
  *versionsAt(object: number, key: string, cut: StateCut, after: { validFrom: number; row: number } | null): Generator<ServedVersion> {
    const stmt = this.statement(`versions:${cutKind(cut)}:${after !== null}`, () =>
      `SELECT ${VERSION_COLUMNS('v')} FROM versions v
       WHERE v.object = @object AND ${inCut('v', cut)}${after === null ? '' : ' AND v.valid_from <= @afterTime AND (v.valid_from < @afterTime OR v.id < @afterRow)'}
         AND NOT EXISTS (SELECT 1 FROM versions w WHERE w.object = v.object AND w.version_id IS v.version_id AND ${inCut('w', cut)}
                         AND (w.valid_from > v.valid_from OR (w.valid_from = v.valid_from AND w.id > v.id)))
       ORDER BY v.valid_from DESC, v.id DESC`,
    );
    const params = { object, ...this.cutParams(cut), ...(after === null ? {} : { afterTime: after.validFrom, afterRow: after.row }) };
    for (const r of stmt.iterate(params) as IterableIterator<Row>) yield servedVersion({ ...r, key });
  }

  /** The newest record of a key's version (null: its "null" version) at `cut`: where a version listing resumes. */
  versionRecordAt(object: number, versionId: string | null, cut: StateCut): { validFrom: number; row: number } | undefined {
    return this.statement(`record:${cutKind(cut)}`, () =>
      `SELECT v.valid_from AS validFrom, v.id AS row FROM versions v
       WHERE v.object = @object AND v.version_id IS @versionId AND ${inCut('v', cut)} ORDER BY v.valid_from DESC, v.id DESC LIMIT 1`,
    ).get({ object, versionId, ...this.cutParams(cut) }) as { validFrom: number; row: number } | undefined;
  }

  /** The object row of a key, or undefined. */
  objectId(bucketId: number, key: string): number | undefined {
    return this.statement('object', () => 'SELECT id FROM objects WHERE bucket = ? AND key = ?')
      .pluck()
      .get(bucketId, key) as number | undefined;
  }

  /**
   * The blobs of a version's content that hold bytes `start` to `end` (inclusive), in order,
   * each with its position in the content. Null when a blob of the content up to `end` is no
   * longer located in a pack (the catalog lost it: a prune that did not know this version),
   * since positions after it cannot be known.
   */
  contentBlobs(versionRow: number, start: number, end: number): ContentBlob[] | null {
    const rows = this.statement(
      'content',
      () =>
        `WITH parts(seq, blob) AS (
           SELECT 0, blob FROM versions WHERE id = @version AND blob IS NOT NULL
           UNION ALL SELECT seq, blob FROM version_blobs WHERE version = @version
         ), placed AS (
           SELECT parts.seq AS seq, bl.hash AS hash, p.name AS pack, p.size AS packSize, bl.offset AS offset, bl.length AS length,
                  bl.raw_length AS rawLength, bl.flags AS flags,
                  sum(coalesce(bl.raw_length, 0)) OVER (ORDER BY parts.seq) AS contentEnd,
                  max(p.id IS NULL) OVER (ORDER BY parts.seq) AS lost
           FROM parts LEFT JOIN blobs bl ON bl.id = parts.blob LEFT JOIN packs p ON p.id = bl.pack
         )
         SELECT * FROM placed WHERE contentEnd > @start AND coalesce(contentEnd - rawLength, contentEnd) <= @end ORDER BY seq`,
    ).all({ version: versionRow, start, end }) as Row[];
    const blobs: ContentBlob[] = [];
    for (const r of rows) {
      if (r.lost === 1) return null;
      blobs.push(contentBlob(r));
    }
    return blobs;
  }
}

function contentBlob(r: Row): ContentBlob {
  return {
    ...blobLocationOf(r),
    position: (r.contentEnd as number) - (r.rawLength as number),
    packSize: r.packSize as number,
  };
}
