import type BetterSqlite3 from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { LakeguardError } from '../errors.js';
import { requireCjs } from '../util/cjs.js';
import { decodeStorageClass, encodeEtag, encodeLastModified, encodeStorageClass, etagSql, lastModifiedSql } from './codec.js';
import { corruptCatalogError, isCorruptDatabase, noteCatalogOpened } from './corrupt.js';
import { attachConnection } from './connection.js';
import { migrate } from './migrate.js';
import { SCHEMA, SCHEMA_VERSION, blobHashIs, blobReferencedSql } from './schema.js';
import type {
  BlobLocation,
  FailureRecord,
  LatestVersion,
  RestoreItem,
  RunCounters,
  RunRow,
  RunStatus,
  StoredMeta,
  VersionRecord,
} from './types.js';

const Database = requireCjs('better-sqlite3') as typeof BetterSqlite3;

export interface PackRecord {
  name: string;
  size: number;
  blobs: { hash: Buffer; offset: number; length: number; rawLength: number; flags: number }[];
}

/** Where a blob is stored: its pack, its range there, and how it is encoded (blobs.flags). */
export interface StoredBlob {
  pack: string;
  offset: number;
  length: number;
  rawLength: number;
  flags: number;
}

/** A blob of a written pack that no index file lists yet. */
export interface UnindexedBlob {
  row: number;
  pack: string;
  packSize: number;
  hash: Buffer;
  offset: number;
  length: number;
  rawLength: number;
  flags: number;
}

/** Which versions count as "the state": as recorded up to a run, or as of an instant. */
export type StateCut = { runSeq: number } | { time: number };

/** A part of the catalog to restore or inspect: a bucket, optionally narrowed to a prefix or one key. */
export interface Scope {
  bucket: string;
  prefix?: string;
  key?: string;
  /** With `key`: this exact version, whatever the cut. */
  versionId?: string;
}

type Row = Record<string, unknown>;

/** A key a restore target already holds: `key` as catalogued, `targetKey` as the target names it. */
export interface TargetKey {
  bucket: string;
  key: string;
  targetKey: string;
  size: number;
  etag: string;
}

/** The repository a catalog belongs to, as the catalog remembers it (Catalog.rememberedRepository). */
export interface RememberedRepository {
  id: string;
  /** `aes-256-gcm` or `none`; null when not yet remembered. */
  encryption: string | null;
  formatVersion: number | null;
}

/**
 * The SQLite catalog: a cache of the repository (rebuildable from runs/ and index/) that
 * answers every query locally. All writes are batched in transactions by the callers.
 */
export class Catalog {
  private readonly bucketIds = new Map<string, number>();
  private readonly metaIds = new Map<string, number>();
  /** Prepared once per restore target inventory (the temp table is recreated each time). */
  private targetLookup: BetterSqlite3.Statement | null = null;
  private selectedLookup: BetterSqlite3.Statement | undefined;
  private readonly stmts: ReturnType<Catalog['prepare']>;
  /** While a rebuild checks index entries against the packs that exist (beginPresentPacks). */
  private packCheck: {
    present: BetterSqlite3.Statement;
    markMissing: BetterSqlite3.Statement;
    relocate: BetterSqlite3.Statement;
    anyMissing: boolean;
    /** Entries that lie outside their pack, per "<index file> <pack>". */
    outside: Map<string, number>;
  } | null = null;

  private constructor(
    readonly path: string,
    private readonly db: BetterSqlite3.Database,
  ) {
    this.stmts = this.prepare();
    attachConnection(this, db);
  }

  static open(path: string, repositoryId: string): Catalog {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    let db: BetterSqlite3.Database | undefined;
    try {
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 10000');
      migrate(db);
      db.exec(SCHEMA);
    } catch (err) {
      db?.close();
      if (isCorruptDatabase(err)) throw corruptCatalogError(path, err);
      const known = err instanceof LakeguardError ? err : undefined; // a catalog of a newer schema
      throw new LakeguardError(`cannot open catalog ${path}: ${err instanceof Error ? err.message : err}`, {
        cause: err,
        hint: known?.hint ?? 'check the file and its directory are writable (set LAKEGUARD_CACHE_DIR or --catalog to move it)',
      });
    }
    const info = db.prepare('SELECT value FROM catalog_info WHERE name = ?');
    const repo = info.get('repository') as { value: string } | undefined;
    if (repo === undefined) {
      const put = db.prepare('INSERT INTO catalog_info (name, value) VALUES (?, ?)');
      db.transaction(() => {
        put.run('repository', repositoryId);
        put.run('schema', String(SCHEMA_VERSION));
      })();
    } else if (repo.value !== repositoryId) {
      db.close();
      throw new LakeguardError(`catalog ${path} belongs to repository ${repo.value}, not ${repositoryId}`, {
        hint: 'point --catalog at another file, or delete this one and run `lakeguard catalog rebuild`',
      });
    }
    noteCatalogOpened(path);
    return new Catalog(path, db);
  }

  /**
   * What this catalog remembers of its repository beyond the id (catalog_info): its encryption
   * algorithm and format version as of the last command that used it, null when not yet known
   * (a new catalog, or one written before lakeguard remembered them).
   */
  rememberedRepository(): RememberedRepository {
    const get = this.db.prepare('SELECT value FROM catalog_info WHERE name = ?').pluck();
    const encryption = (get.get('encryption') as string | undefined) ?? null;
    const version = get.get('format_version') as string | undefined;
    return { id: get.get('repository') as string, encryption, formatVersion: version === undefined ? null : Number(version) };
  }

  /** Remembers the repository's encryption and format version (see rememberedRepository). */
  rememberRepository(identity: { encryption: string; formatVersion: number }): void {
    const put = this.db.prepare('INSERT INTO catalog_info (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value');
    this.transaction(() => {
      put.run('encryption', identity.encryption);
      put.run('format_version', String(identity.formatVersion));
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * Writes without waiting for the disk until finishBulkLoad: only for a catalog that a crash
   * discards anyway (the temporary file of a rebuild).
   */
  beginBulkLoad(): void {
    this.db.pragma('synchronous = OFF');
  }

  /** Makes the file durable and self-contained (its WAL folded in), as before it is renamed into place. */
  finishBulkLoad(): void {
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      // The rollback may have removed bucket and meta rows the caches still map to row ids
      // (which SQLite then hands out again): forget them.
      this.bucketIds.clear();
      this.metaIds.clear();
      throw err;
    }
  }

  private prepare() {
    const db = this.db;
    return {
      insertRun: db.prepare('INSERT INTO runs (id, grp, started, status, host, pid) VALUES (?, ?, ?, ?, ?, ?)'),
      finishRun: db.prepare('UPDATE runs SET finished = ?, status = ?, counters = ? WHERE seq = ?'),
      bucketId: db.prepare('INSERT INTO buckets (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id'),
      findBucket: db.prepare('SELECT id FROM buckets WHERE name = ?'),
      objectId: db.prepare(
        'INSERT INTO objects (bucket, key) VALUES (?, ?) ON CONFLICT (bucket, key) DO UPDATE SET key = excluded.key RETURNING id',
      ),
      metaId: db.prepare('INSERT INTO metas (json) VALUES (?) ON CONFLICT (json) DO UPDATE SET json = excluded.json RETURNING id'),
      // A version forget dropped counts as known: the next backup must not capture it again.
      versionExists: db.prepare(
        `SELECT 1 FROM (SELECT ? AS o, ? AS v) p WHERE EXISTS (SELECT 1 FROM versions WHERE object = p.o AND version_id = p.v)
           OR EXISTS (SELECT 1 FROM dropped_versions WHERE object = p.o AND version_id = p.v)`,
      ),
      insertVersion: db.prepare(
        `INSERT INTO versions (object, version_id, delete_marker, size, etag, last_modified, valid_from, storage_class, meta, run, blob)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateLatest: db.prepare(
        `UPDATE objects SET latest = @version WHERE id = @object AND (latest IS NULL OR
           (SELECT valid_from FROM versions WHERE id = objects.latest) <= @validFrom)`,
      ),
      blobRow: db.prepare(`SELECT id FROM blobs b WHERE ${blobHashIs('b', '@hash')}`).pluck(),
      insertVersionBlob: db.prepare('INSERT INTO version_blobs (version, seq, blob) VALUES (?, ?, ?)'),
      insertPack: db.prepare('INSERT INTO packs (name, size, run) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET size = excluded.size RETURNING id'),
      // No unique index on hash (it would hold every id twice): a hash already there is skipped here.
      insertBlob: db.prepare(
        `INSERT INTO blobs (hash, pack, offset, length, raw_length, flags, index_file)
         SELECT @hash, @pack, @offset, @length, @rawLength, @flags, @indexFile WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE ${blobHashIs('b', '@hash')})`,
      ),
      indexFileId: db
        .prepare('INSERT INTO blob_index_files (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id')
        .pluck(),
      insertFailure: db.prepare('INSERT INTO failures (run, bucket, key, version_id, code, message) VALUES (?, ?, ?, ?, ?, ?)'),
      latestPageAfter: db.prepare(latestPageSql('>', true)).raw(true),
      latestPageFrom: db.prepare(latestPageSql('>=', true)).raw(true),
      latestPageAfterOpen: db.prepare(latestPageSql('>', false)).raw(true),
      latestPageFromOpen: db.prepare(latestPageSql('>=', false)).raw(true),
      hasBlob: db.prepare(`SELECT 1 FROM blobs b WHERE ${blobHashIs('b', '@hash')}`).pluck(),
      blobLocation: db.prepare(
        `SELECT p.name AS pack, b.offset AS offset, b.length AS length, b.raw_length AS rawLength, b.flags AS flags
         FROM blobs b JOIN packs p ON p.id = b.pack WHERE ${blobHashIs('b', '@hash')}`,
      ),
      nthKeyFrom: db.prepare('SELECT key FROM objects WHERE bucket = @bucket AND key >= @lower AND key < @upper ORDER BY key LIMIT 1 OFFSET @skip').pluck(),
      nthKeyAfter: db.prepare('SELECT key FROM objects WHERE bucket = @bucket AND key > @lower AND key < @upper ORDER BY key LIMIT 1 OFFSET @skip').pluck(),
      hasLiveKeys: db.prepare(
        `SELECT 1 FROM objects o JOIN versions v ON v.id = o.latest
         WHERE o.bucket = @bucket AND o.key >= @lower AND o.key < @upper AND v.delete_marker = 0 LIMIT 1`,
      ).pluck(),
      objectOf: db.prepare('SELECT id FROM objects WHERE bucket = ? AND key = ?').pluck(),
      latestNullVersion: db.prepare(
        `SELECT v.delete_marker AS deleteMarker, ${etagSql('v.etag')} AS etag, v.size AS size, ${lastModifiedSql('v')} AS lastModified FROM versions v
         WHERE v.object = ? AND v.version_id IS NULL ORDER BY v.valid_from DESC, v.id DESC LIMIT 1`,
      ),
    };
  }

  // ---- runs --------------------------------------------------------------------------

  /** `pid`: the process running it (null when a rebuild imports a finished run). */
  beginRun(run: { id: string; group: string; started: number; host: string; pid?: number }): number {
    return Number(this.stmts.insertRun.run(run.id, run.group, run.started, 'running', run.host, run.pid ?? null).lastInsertRowid);
  }

  /** Runs still marked running that were started on `host` by a process that no longer exists. */
  orphanedRuns(host: string, isAlive: (pid: number) => boolean): RunRow[] {
    const rows = this.db.prepare("SELECT * FROM runs WHERE status = 'running' AND host = ? ORDER BY seq").all(host) as Row[];
    return rows.filter((r) => r.pid === null || !isAlive(r.pid as number)).map(toRunRow);
  }

  /** Gives a run a new id (an orphaned run recorded later is named by the time it is recorded: docs/catalog.md "Sync"). */
  renameRun(seq: number, id: string): void {
    this.db.prepare('UPDATE runs SET id = ? WHERE seq = ?').run(id, seq);
  }

  finishRun(seq: number, status: RunStatus, finished: number, counters: RunCounters): void {
    this.stmts.finishRun.run(finished, status, JSON.stringify(counters), seq);
  }

  listRuns(opts: { group?: string } = {}): RunRow[] {
    const rows = this.db
      .prepare(`SELECT * FROM runs ${opts.group === undefined ? '' : 'WHERE grp = ?'} ORDER BY seq`)
      .all(...(opts.group === undefined ? [] : [opts.group])) as Row[];
    return rows.map(toRunRow);
  }

  /** A run by full id, unique id prefix, or sequence number. */
  findRun(ref: string): RunRow | undefined {
    const byId = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(ref) as Row | undefined;
    if (byId !== undefined) return toRunRow(byId);
    if (/^\d+$/.test(ref)) {
      const bySeq = this.db.prepare('SELECT * FROM runs WHERE seq = ?').get(Number(ref)) as Row | undefined;
      if (bySeq !== undefined) return toRunRow(bySeq);
    }
    const byPrefix = this.db.prepare("SELECT * FROM runs WHERE id LIKE ? || '%' ESCAPE '\\' LIMIT 2").all(ref.replace(/[%_\\]/g, '\\$&')) as Row[];
    return byPrefix.length === 1 ? toRunRow(byPrefix[0]!) : undefined;
  }

  latestRun(opts: { group?: string; statuses: RunStatus[] }): RunRow | undefined {
    const params: unknown[] = [...opts.statuses];
    let where = `status IN (${opts.statuses.map(() => '?').join(',')})`;
    if (opts.group !== undefined) {
      where += ' AND grp = ?';
      params.push(opts.group);
    }
    const row = this.db.prepare(`SELECT * FROM runs WHERE ${where} ORDER BY seq DESC LIMIT 1`).get(...params) as Row | undefined;
    return row === undefined ? undefined : toRunRow(row);
  }

  // ---- what is already backed up -------------------------------------------------------

  hasBlob(hash: Buffer): boolean {
    return this.stmts.hasBlob.get({ hash }) !== undefined;
  }

  /** Where a blob is stored (its pack and range), or undefined when no catalogued pack holds it. */
  blobLocation(hash: Buffer): StoredBlob | undefined {
    return this.stmts.blobLocation.get({ hash }) as StoredBlob | undefined;
  }

  /**
   * Whether a listed version is already catalogued: by version id, or — for the "null" version
   * of a bucket whose versioning was suspended or enabled late — by etag, size and time.
   */
  hasVersion(bucket: string, entry: { key: string; versionId: string | null; isDeleteMarker: boolean; etag: string; size: number; lastModified: Date }): boolean {
    const bucketId = this.findBucketId(bucket);
    if (bucketId === undefined) return false;
    const objectId = this.stmts.objectOf.get(bucketId, entry.key) as number | undefined;
    if (objectId === undefined) return false;
    if (entry.versionId !== null) return this.stmts.versionExists.get(objectId, entry.versionId) !== undefined;
    const row = this.stmts.latestNullVersion.get(objectId) as { deleteMarker: number; etag: string; size: number; lastModified: number } | undefined;
    if (row === undefined) return false;
    if (entry.isDeleteMarker) return row.deleteMarker === 1;
    return row.deleteMarker === 0 && row.etag === entry.etag && row.size === entry.size && row.lastModified === entry.lastModified.getTime();
  }

  /**
   * One page of the newest catalogued version per key in `bucket` from `lower` up to `upper`, in key
   * order (SQLite's BINARY collation = UTF-8 byte order = S3 listing order).
   */
  latestPage(bucket: string, lower: string, inclusive: boolean, upper: string | null, limit: number): LatestVersion[] {
    const id = this.findBucketId(bucket);
    if (id === undefined) return [];
    const stmt =
      upper === null
        ? inclusive ? this.stmts.latestPageFromOpen : this.stmts.latestPageAfterOpen
        : inclusive ? this.stmts.latestPageFrom : this.stmts.latestPageAfter;
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
   * The `n`-th catalogued key (1-based, deleted keys included) under `prefix`, counting after
   * `after` (exclusive) or from the start of the prefix; undefined when there are fewer.
   */
  nthKey(bucket: string, prefix: string, after: string | null, n: number): string | undefined {
    const id = this.findBucketId(bucket);
    if (id === undefined) return undefined;
    const params = { bucket: id, lower: after ?? prefix, upper: prefix + '\u{10FFFF}', skip: n - 1 };
    return (after === null ? this.stmts.nthKeyFrom : this.stmts.nthKeyAfter).get(params) as string | undefined;
  }

  /** Whether any key under `prefix` currently exists (its newest version is not a delete marker). */
  hasLiveKeys(bucket: string, prefix: string): boolean {
    const id = this.findBucketId(bucket);
    if (id === undefined) return false;
    return this.stmts.hasLiveKeys.get({ bucket: id, lower: prefix, upper: prefix + '\u{10FFFF}' }) !== undefined;
  }

  // ---- writes (callers batch them inside `transaction`) -----------------------------------

  insertPack(pack: PackRecord, runSeq: number | null, indexFile: string | null = null): void {
    const packRow = (this.stmts.insertPack.get(pack.name, pack.size, runSeq) as { id: number }).id;
    const indexRow = indexFile === null ? null : (this.stmts.indexFileId.get(indexFile) as number);
    const check = this.packCheck;
    if (check !== null && check.present.get(pack.name, pack.size) === undefined) {
      check.markMissing.run(packRow);
      check.anyMissing = true;
      for (const b of pack.blobs) this.insertBlob(b, packRow, indexRow);
      return;
    }
    for (const b of pack.blobs) {
      if (check !== null && b.offset + b.length > pack.size - 4) {
        // An entry outside its pack locates nothing: left out (its versions are reported missing).
        const key = `${indexFile ?? ''} ${pack.name}`;
        check.outside.set(key, (check.outside.get(key) ?? 0) + 1);
        continue;
      }
      this.insertBlob(b, packRow, indexRow);
      // A blob first located in a missing pack moves here: this copy can be read.
      if (check?.anyMissing) check.relocate.run({ hash: b.hash, pack: packRow, offset: b.offset, length: b.length, rawLength: b.rawLength, flags: b.flags, indexFile: indexRow });
    }
  }

  // ---- catalog rebuild: index entries checked against the packs that exist ------------------

  /**
   * From now on insertPack knows which packs the repository has (added with addPresentPacks,
   * from one LIST of packs/) and, for a blob listed in several index files, prefers an entry
   * whose pack exists with the size the index file gives. endPresentPacks ends this.
   */
  beginPresentPacks(): void {
    this.db.exec(`DROP TABLE IF EXISTS temp.present_packs; CREATE TEMP TABLE present_packs (name TEXT PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;
                  DROP TABLE IF EXISTS temp.missing_packs; CREATE TEMP TABLE missing_packs (id INTEGER PRIMARY KEY)`);
    this.packCheck = {
      present: this.db.prepare('SELECT 1 FROM temp.present_packs WHERE name = ? AND size = ?').pluck(),
      markMissing: this.db.prepare('INSERT OR IGNORE INTO temp.missing_packs (id) VALUES (?)'),
      relocate: this.db.prepare(
        `UPDATE blobs SET pack = @pack, offset = @offset, length = @length, raw_length = @rawLength, flags = @flags, index_file = @indexFile
         WHERE ${blobHashIs('blobs', '@hash')} AND pack IN (SELECT id FROM temp.missing_packs)`,
      ),
      anyMissing: false,
      outside: new Map(),
    };
  }

  addPresentPacks(packs: readonly { name: string; size: number }[]): void {
    const put = this.db.prepare('INSERT OR REPLACE INTO temp.present_packs (name, size) VALUES (?, ?)');
    this.transaction(() => packs.forEach((p) => put.run(p.name, p.size)));
  }

  /**
   * Ends the pack check: packs index files list that do not exist (or not with that size) and
   * still locate blobs (no other index file has them in an existing pack), with the number of
   * catalogued versions that need those blobs, and index entries that were left out because
   * they lie outside their pack. Missing packs that locate nothing are dropped.
   */
  endPresentPacks(): { lost: { pack: string; blobs: number; versions: number }[]; outside: { indexFile: string; pack: string; entries: number }[] } {
    const lost = this.db
      .prepare(
        `SELECT p.name AS pack, count(b.id) AS blobs,
                (SELECT count(*) FROM versions v WHERE v.blob IN (SELECT id FROM blobs WHERE pack = p.id)
                   OR v.id IN (SELECT vb.version FROM version_blobs vb JOIN blobs x ON x.id = vb.blob WHERE x.pack = p.id)) AS versions
         FROM temp.missing_packs m JOIN packs p ON p.id = m.id JOIN blobs b ON b.pack = p.id GROUP BY p.id ORDER BY p.name`,
      )
      .all() as { pack: string; blobs: number; versions: number }[];
    this.transaction(() => {
      this.db.prepare('DELETE FROM packs WHERE id IN (SELECT id FROM temp.missing_packs) AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.pack = packs.id)').run();
    });
    const outside = [...(this.packCheck?.outside ?? [])].map(([key, entries]) => {
      const [indexFile = '', pack = ''] = key.split(' ');
      return { indexFile, pack, entries };
    });
    this.packCheck = null;
    this.db.exec('DROP TABLE IF EXISTS temp.present_packs; DROP TABLE IF EXISTS temp.missing_packs');
    return { lost, outside };
  }

  /** Inserts versions; a version whose S3 version id is already catalogued is skipped. Returns rows inserted. */
  insertVersions(runSeq: number, records: readonly VersionRecord[]): number {
    let inserted = 0;
    for (const r of records) {
      const objectId = (this.stmts.objectId.get(this.bucketId(r.bucket), r.key) as { id: number }).id;
      if (r.versionId !== null && this.stmts.versionExists.get(objectId, r.versionId) !== undefined) continue;
      const blobs = r.blobs.map((hex) => {
        const blob = this.stmts.blobRow.get({ hash: Buffer.from(hex, 'hex') }) as number | undefined;
        if (blob === undefined) throw new LakeguardError(`catalog: version ${r.bucket}/${r.key} refers to unknown blob ${hex}`);
        return blob;
      });
      const versionRow = Number(
        this.stmts.insertVersion.run(
          objectId,
          r.versionId,
          r.deleteMarker ? 1 : 0,
          r.size,
          encodeEtag(r.etag),
          encodeLastModified(r.lastModified, r.validFrom),
          r.validFrom,
          encodeStorageClass(r.storageClass),
          this.metaId(r.meta),
          runSeq,
          blobs.length === 1 ? blobs[0] : null,
        ).lastInsertRowid,
      );
      if (blobs.length > 1) blobs.forEach((blob, seq) => this.stmts.insertVersionBlob.run(versionRow, seq, blob));
      this.stmts.updateLatest.run({ version: versionRow, object: objectId, validFrom: r.validFrom });
      inserted++;
    }
    return inserted;
  }

  private insertBlob(b: PackRecord['blobs'][number], pack: number, indexFile: number | null): void {
    this.stmts.insertBlob.run({ hash: b.hash, pack, offset: b.offset, length: b.length, rawLength: b.rawLength, flags: b.flags, indexFile });
  }

  /** The row id of an object, created if needed. */
  objectIdOf(bucket: string, key: string): number {
    return (this.stmts.objectId.get(this.bucketId(bucket), key) as { id: number }).id;
  }

  insertFailures(runSeq: number, failures: readonly FailureRecord[]): void {
    for (const f of failures) this.stmts.insertFailure.run(runSeq, f.bucket, f.key, f.versionId, f.code, f.message);
  }

  private bucketId(name: string): number {
    let id = this.bucketIds.get(name);
    if (id === undefined) {
      id = (this.stmts.bucketId.get(name) as { id: number }).id;
      this.bucketIds.set(name, id);
    }
    return id;
  }

  private findBucketId(name: string): number | undefined {
    const cached = this.bucketIds.get(name);
    if (cached !== undefined) return cached;
    const row = this.stmts.findBucket.get(name) as { id: number } | undefined;
    if (row !== undefined) this.bucketIds.set(name, row.id);
    return row?.id;
  }

  private metaId(meta: StoredMeta | undefined): number | null {
    if (meta === undefined || Object.keys(meta).length === 0) return null;
    const json = JSON.stringify(meta);
    let id = this.metaIds.get(json);
    if (id === undefined) {
      id = (this.stmts.metaId.get(json) as { id: number }).id;
      if (this.metaIds.size < 10_000) this.metaIds.set(json, id);
    }
    return id;
  }

  // ---- index files ----------------------------------------------------------------------

  /**
   * Blobs of written packs that no index file lists yet (this run's, or a crashed run's), as
   * they are read: a run of 1,000,000 objects has that many, and the caller keeps only what it
   * writes. No other statement may run on this catalog until the iteration ends.
   */
  unindexedBlobs(limit: number): IterableIterator<UnindexedBlob> {
    return this.db
      .prepare(
        `SELECT b.id AS row, p.name AS pack, p.size AS packSize, b.hash AS hash, b.offset AS offset, b.length AS length,
                b.raw_length AS rawLength, b.flags AS flags
         FROM blobs b JOIN packs p ON p.id = b.pack WHERE b.index_file IS NULL ORDER BY b.id LIMIT ?`,
      )
      .iterate(limit) as IterableIterator<UnindexedBlob>;
  }

  markIndexed(name: string, rows: readonly number[]): void {
    const mark = this.db.prepare('UPDATE blobs SET index_file = ? WHERE id = ?');
    this.transaction(() => {
      this.db.prepare('INSERT OR IGNORE INTO index_files (name) VALUES (?)').run(name);
      const indexRow = this.stmts.indexFileId.get(name) as number;
      for (const row of rows) mark.run(indexRow, row);
    });
  }

  /**
   * Blobs the catalog took as indexed but no index file in the repository lists (one was lost
   * or damaged): unindexedBlobs() returns them again, so the next backup (or prune) writes them
   * into a new index file.
   */
  markUnindexed(hashes: readonly Buffer[]): void {
    const unmark = this.db.prepare(`UPDATE blobs AS b SET index_file = NULL WHERE ${blobHashIs('b', '@hash')}`);
    this.transaction(() => hashes.forEach((hash) => unmark.run({ hash })));
  }

    knownIndexFiles(): Set<string> {
    return new Set(this.db.prepare('SELECT name FROM index_files').pluck().all() as string[]);
  }

  addIndexFile(name: string): void {
    this.db.prepare('INSERT OR IGNORE INTO index_files (name) VALUES (?)').run(name);
  }

  // ---- reading a run's records back (manifests, catalog rebuild checks) -----------------------

  versionsOfRun(runSeq: number, afterRow: number, limit: number): (VersionRecord & { row: number })[] {
    const rows = this.db
      .prepare(
        `SELECT v.id AS row, b.name AS bucket, o.key AS key, v.version_id AS versionId, v.delete_marker AS deleteMarker,
                v.size AS size, ${etagSql('v.etag')} AS etag, ${lastModifiedSql('v')} AS lastModified, v.valid_from AS validFrom,
                v.storage_class AS storageClass, m.json AS meta,
                CASE WHEN v.blob IS NOT NULL THEN (SELECT hex(bl.hash) FROM blobs bl WHERE bl.id = v.blob)
                  ELSE (SELECT group_concat(hex(x.hash), ',') FROM (SELECT bl.hash AS hash FROM version_blobs vb JOIN blobs bl ON bl.id = vb.blob
                   WHERE vb.version = v.id ORDER BY vb.seq) x) END AS blobs
         FROM versions v JOIN objects o ON o.id = v.object JOIN buckets b ON b.id = o.bucket LEFT JOIN metas m ON m.id = v.meta
         WHERE v.run = ? AND v.id > ? ORDER BY v.id LIMIT ?`,
      )
      .all(runSeq, afterRow, limit) as Row[];
    return rows.map((r) => ({
      row: r.row as number,
      bucket: r.bucket as string,
      key: r.key as string,
      versionId: r.versionId as string | null,
      deleteMarker: r.deleteMarker === 1,
      size: r.size as number,
      etag: r.etag as string,
      lastModified: r.lastModified as number,
      validFrom: r.validFrom as number,
      ...(r.storageClass === null ? {} : { storageClass: decodeStorageClass(r.storageClass)! }),
      ...(r.meta === null ? {} : { meta: JSON.parse(r.meta as string) as StoredMeta }),
      blobs: r.blobs === null ? [] : (r.blobs as string).toLowerCase().split(','),
    }));
  }

  failuresOfRun(runSeq: number): FailureRecord[] {
    return (this.db.prepare('SELECT bucket, key, version_id AS versionId, code, message FROM failures WHERE run = ? ORDER BY rowid').all(runSeq) as Row[]).map(
      (r) => ({ bucket: r.bucket as string, key: r.key as string, versionId: r.versionId as string | null, code: r.code as string, message: r.message as string }),
    );
  }

  // ---- restore selection ------------------------------------------------------------------

  /**
   * Materializes the versions that make up the state of `scopes` at `cut` into a temp table,
   * ordered so that objects stored in the same pack are adjacent (one coalesced read per pack).
   * Returns the number of objects selected. Resolution happens in SQL, never in JS.
   */
  selectState(scopes: readonly Scope[], cut: StateCut): number {
    const db = this.db;
    db.exec('DROP TABLE IF EXISTS temp.sel; DROP TABLE IF EXISTS temp.plan');
    db.exec('CREATE TEMP TABLE sel (version INTEGER PRIMARY KEY, bucket TEXT, key TEXT); CREATE INDEX temp.sel_by_key ON sel (bucket, key)');
    this.selectedLookup = undefined; // prepared against the table just replaced
    const cutSql = 'runSeq' in cut ? 'run <= @cut' : 'valid_from <= @cut';
    const cutValue = 'runSeq' in cut ? cut.runSeq : cut.time;
    const selectSql = (bounded: boolean): string =>
      `INSERT OR IGNORE INTO sel (version, bucket, key)
       SELECT v.id, b.name, o.key FROM objects o JOIN buckets b ON b.id = o.bucket
       JOIN versions v ON v.id = (SELECT id FROM versions WHERE object = o.id AND ${cutSql} ORDER BY valid_from DESC, id DESC LIMIT 1)
       WHERE b.name = @bucket AND o.key >= @lo ${bounded ? 'AND o.key < @hi' : ''} AND v.delete_marker = 0`;
    const bounded = db.prepare(selectSql(true));
    const open = db.prepare(selectSql(false));
    const exact = db.prepare(
      `INSERT OR IGNORE INTO sel (version, bucket, key)
       SELECT v.id, b.name, o.key FROM objects o JOIN buckets b ON b.id = o.bucket JOIN versions v ON v.object = o.id
       WHERE b.name = @bucket AND o.key = @key AND v.version_id = @versionId AND v.delete_marker = 0`,
    );
    this.transaction(() => {
      for (const s of scopes) {
        if (s.versionId !== undefined && s.key !== undefined) {
          exact.run({ bucket: s.bucket, key: s.key, versionId: s.versionId });
          continue;
        }
        const lo = s.key ?? s.prefix ?? '';
        const hi = s.key !== undefined ? s.key + '\u0000' : s.prefix ? s.prefix + '\u{10FFFF}' : null;
        if (hi === null) open.run({ bucket: s.bucket, lo, cut: cutValue });
        else bounded.run({ bucket: s.bucket, lo, hi, cut: cutValue });
      }
    });
    db.exec(
      `CREATE TEMP TABLE plan AS
       SELECT sel.version AS version, sel.bucket AS bucket, sel.key AS key, v.blob IS NULL AND vb0.blob IS NOT NULL AS multi,
              bl.pack AS pack, bl.offset AS offset
       FROM sel JOIN versions v ON v.id = sel.version LEFT JOIN version_blobs vb0 ON vb0.version = sel.version AND vb0.seq = 0
       LEFT JOIN blobs bl ON bl.id = coalesce(v.blob, vb0.blob)
       ORDER BY multi, bl.pack, bl.offset`,
    );
    return db.prepare('SELECT count(*) FROM plan').pluck().get() as number;
  }

  /** Whether the selected state holds this key (for --delete-extra). */
  selectedHas(bucket: string, key: string): boolean {
    // Prepared once: --keys-from may ask this for every one of many keys.
    this.selectedLookup ??= this.db.prepare('SELECT 1 FROM temp.sel WHERE bucket = ? AND key = ?');
    return this.selectedLookup.get(bucket, key) !== undefined;
  }

  /** A page of the selected state, in plan order (rowid). */
  statePage(afterRowid: number, limit: number): { rowid: number; items: RestoreItem[] } {
    const rows = this.db
      .prepare(
        `SELECT plan.rowid AS rowid, plan.version AS versionRow, plan.bucket AS bucket, plan.key AS key, v.version_id AS versionId,
                v.size AS size, ${etagSql('v.etag')} AS etag, ${lastModifiedSql('v')} AS lastModified, m.json AS meta
         FROM plan JOIN versions v ON v.id = plan.version LEFT JOIN metas m ON m.id = v.meta
         WHERE plan.rowid > ? ORDER BY plan.rowid LIMIT ?`,
      )
      .all(afterRowid, limit) as Row[];
    if (rows.length === 0) return { rowid: afterRowid, items: [] };
    const blobs = this.db
      .prepare(
        `SELECT x.version AS version, bl.hash AS hash, p.name AS pack, bl.offset AS offset, bl.length AS length,
                bl.raw_length AS rawLength, bl.flags AS flags
         FROM (SELECT v.id AS version, 0 AS seq, v.blob AS blob FROM plan JOIN versions v ON v.id = plan.version
                 WHERE plan.rowid > @after AND plan.rowid <= @last AND v.blob IS NOT NULL
               UNION ALL
               SELECT vb.version, vb.seq, vb.blob FROM plan JOIN version_blobs vb ON vb.version = plan.version
                 WHERE plan.rowid > @after AND plan.rowid <= @last) x
         JOIN blobs bl ON bl.id = x.blob JOIN packs p ON p.id = bl.pack
         ORDER BY x.version, x.seq`,
      )
      .all({ after: afterRowid, last: rows.at(-1)!.rowid }) as Row[];
    const byVersion = new Map<number, BlobLocation[]>();
    for (const b of blobs) {
      const list = byVersion.get(b.version as number) ?? [];
      list.push({
        hash: b.hash as Buffer,
        pack: b.pack as string,
        offset: b.offset as number,
        length: b.length as number,
        rawLength: b.rawLength as number,
        compressed: ((b.flags as number) & 1) === 1,
      });
      byVersion.set(b.version as number, list);
    }
    const items = rows.map((r) => ({
      versionRow: r.versionRow as number,
      bucket: r.bucket as string,
      key: r.key as string,
      versionId: r.versionId as string | null,
      size: r.size as number,
      etag: r.etag as string | null,
      lastModified: r.lastModified as number,
      meta: r.meta === null ? {} : (JSON.parse(r.meta as string) as StoredMeta),
      blobs: byVersion.get(r.versionRow as number) ?? [],
    }));
    return { rowid: rows.at(-1)!.rowid as number, items };
  }

  // ---- restore target inventory ------------------------------------------------------------

  /**
   * Starts an empty inventory of what a restore target already holds (a temp table, so a
   * target of millions of keys is never held in memory): overwrite decisions and
   * --delete-extra read it.
   */
  beginTargetInventory(): void {
    this.db.exec(
      'DROP TABLE IF EXISTS temp.target; CREATE TEMP TABLE target (bucket TEXT, key TEXT, target_key TEXT, size INTEGER, etag TEXT, PRIMARY KEY (bucket, key))',
    );
    this.targetLookup = this.db.prepare('SELECT bucket, key, target_key AS targetKey, size, etag FROM temp.target WHERE bucket = ? AND key = ?');
  }

  addTargetKeys(rows: readonly TargetKey[]): void {
    const add = this.db.prepare('INSERT OR REPLACE INTO temp.target (bucket, key, target_key, size, etag) VALUES (?, ?, ?, ?, ?)');
    this.transaction(() => rows.forEach((r) => add.run(r.bucket, r.key, r.targetKey, r.size, r.etag)));
  }

  /** What the target holds at a selected key (from the inventory), or undefined. */
  targetKeyOf(bucket: string, key: string): TargetKey | undefined {
    if (this.targetLookup === null) throw new Error('targetKeyOf before beginTargetInventory');
    return this.targetLookup.get(bucket, key) as TargetKey | undefined;
  }

  /** Whether the catalog has ever recorded an object of this bucket (or local source). */
  hasBucket(name: string): boolean {
    return this.findBucketId(name) !== undefined;
  }

  /** A page of inventoried target keys that the selected state does not hold (--delete-extra), in rowid order. */
  extraTargetKeys(afterRowid: number, limit: number): (TargetKey & { rowid: number })[] {
    return this.db
      .prepare(
        `SELECT t.rowid AS rowid, t.bucket AS bucket, t.key AS key, t.target_key AS targetKey, t.size AS size, t.etag AS etag FROM temp.target t
         WHERE t.rowid > ? AND NOT EXISTS (SELECT 1 FROM temp.sel s WHERE s.bucket = t.bucket AND s.key = t.key) ORDER BY t.rowid LIMIT ?`,
      )
      .all(afterRowid, limit) as (TargetKey & { rowid: number })[];
  }

  /**
   * For a selection that came out empty: the newest run at or before the cut and the oldest
   * after it that recorded a live (not deleted) version in the scopes, so the error can name
   * where data is. Null when none did; `ever` says whether the scopes ever held a key.
   */
  dataRunsAround(scopes: readonly Scope[], cut: StateCut): { before: RunRow | null; after: RunRow | null; ever: boolean } {
    const col = 'runSeq' in cut ? 'v.run' : 'v.valid_from';
    const cutValue = 'runSeq' in cut ? cut.runSeq : cut.time;
    const sql = (side: '<=' | '>', order: 'DESC' | 'ASC'): string =>
      `SELECT v.run FROM objects o JOIN versions v ON v.object = o.id
       WHERE o.bucket = (SELECT id FROM buckets WHERE name = @bucket) AND o.key >= @lo AND o.key < @hi
         AND v.delete_marker = 0 AND ${col} ${side} @cut ORDER BY v.run ${order} LIMIT 1`;
    const beforeStmt = this.db.prepare(sql('<=', 'DESC')).pluck();
    const afterStmt = this.db.prepare(sql('>', 'ASC')).pluck();
    const anyStmt = this.db.prepare('SELECT 1 FROM objects o WHERE o.bucket = (SELECT id FROM buckets WHERE name = @bucket) AND o.key >= @lo AND o.key < @hi LIMIT 1');
    let before: number | null = null;
    let after: number | null = null;
    let ever = false;
    for (const s of scopes) {
      const lo = s.key ?? s.prefix ?? '';
      const params = { bucket: s.bucket, lo, hi: s.key !== undefined ? s.key + '\u0000' : lo + '\u{10FFFF}', cut: cutValue };
      ever ||= anyStmt.get(params) !== undefined;
      const b = beforeStmt.get(params) as number | undefined;
      const a = afterStmt.get(params) as number | undefined;
      if (b !== undefined && (before === null || b > before)) before = b;
      if (a !== undefined && (after === null || a < after)) after = a;
    }
    const runs = before === null && after === null ? [] : this.listRuns();
    return { before: runs.find((r) => r.seq === before) ?? null, after: runs.find((r) => r.seq === after) ?? null, ever };
  }

  // ---- verify ---------------------------------------------------------------------------

  /** Blobs referenced by versions but not located in any pack (should never happen). */
  danglingBlobReferences(): number {
    return this.db
      .prepare(
        `SELECT (SELECT count(*) FROM versions v WHERE v.blob IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = v.blob))
              + (SELECT count(*) FROM version_blobs vb WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = vb.blob))`,
      )
      .pluck()
      .get() as number;
  }

  packs(): { name: string; size: number }[] {
    return this.db.prepare('SELECT name, size FROM packs ORDER BY name').all() as { name: string; size: number }[];
  }

  referencedPacks(): { name: string; size: number }[] {
    return this.db
      .prepare(`SELECT p.name AS name, p.size AS size FROM packs p WHERE EXISTS (SELECT 1 FROM blobs b WHERE b.pack = p.id AND ${blobReferencedSql('b')}) ORDER BY p.name`)
      .all() as { name: string; size: number }[];
  }

  blobsOfPack(name: string): { hash: Buffer; offset: number; length: number; rawLength: number; flags: number }[] {
    return this.db
      .prepare('SELECT b.hash AS hash, b.offset AS offset, b.length AS length, b.raw_length AS rawLength, b.flags AS flags FROM blobs b JOIN packs p ON p.id = b.pack WHERE p.name = ? ORDER BY b.offset')
      .all(name) as ReturnType<Catalog['blobsOfPack']>;
  }

  /** Object versions that need any of these blobs (hex ids), to name the damage. */
  versionsUsingBlobs(hashes: readonly Buffer[]): { bucket: string; key: string; versionId: string | null; run: string }[] {
    if (hashes.length === 0) return [];
    this.db.exec('DROP TABLE IF EXISTS temp.bad; CREATE TEMP TABLE bad (hash BLOB PRIMARY KEY)');
    const put = this.db.prepare('INSERT OR IGNORE INTO bad (hash) VALUES (?)');
    this.transaction(() => hashes.forEach((h) => put.run(h)));
    // CROSS JOIN keeps `bad` (a few ids) outside: one blobs_by_hash seek each, not a scan of blobs.
    return this.db
      .prepare(
        `SELECT DISTINCT bk.name AS bucket, o.key AS key, v.version_id AS versionId, r.id AS run
         FROM bad CROSS JOIN blobs bl ON ${blobHashIs('bl', 'bad.hash')}
         JOIN versions v ON v.id IN (SELECT id FROM versions WHERE blob = bl.id UNION ALL SELECT version FROM version_blobs WHERE blob = bl.id)
         JOIN objects o ON o.id = v.object JOIN buckets bk ON bk.id = o.bucket JOIN runs r ON r.seq = v.run
         ORDER BY bk.name, o.key`,
      )
      .all() as { bucket: string; key: string; versionId: string | null; run: string }[];
  }

  /** Buckets (source names) that runs of a group recorded versions of. */
  bucketsOfGroup(group: string): string[] {
    return this.db
      .prepare(
        `SELECT DISTINCT b.name FROM runs r JOIN versions v ON v.run = r.seq JOIN objects o ON o.id = v.object JOIN buckets b ON b.id = o.bucket
         WHERE r.grp = ? ORDER BY b.name`,
      )
      .pluck()
      .all(group) as string[];
  }

  // ---- prune: what the repository may drop (all of prune's SQL is here, for schema changes) ----

  /** Run ids the catalog knows: its runs and the runs forget removed. */
  knownRunIds(): Set<string> {
    return new Set(this.db.prepare('SELECT id FROM runs UNION SELECT id FROM forgotten_runs').pluck().all() as string[]);
  }

  /** Forget documents (forgets/<name>) this catalog has applied. */
  knownForgets(): Set<string> {
    return new Set(this.db.prepare('SELECT name FROM forgets').pluck().all() as string[]);
  }

  /**
   * Declares the record blobs that run manifests in the repository refer to: together with
   * every blob a catalogued version refers to, they are the blobs prune keeps. Returns the
   * ones the catalog does not locate (they must not be pruned blindly).
   */
  setPruneRecordBlobs(hashes: readonly Buffer[]): Buffer[] {
    this.db.exec('DROP TABLE IF EXISTS temp.prune_records; CREATE TEMP TABLE prune_records (hash BLOB PRIMARY KEY) WITHOUT ROWID');
    const put = this.db.prepare('INSERT OR IGNORE INTO temp.prune_records (hash) VALUES (?)');
    this.transaction(() => hashes.forEach((h) => put.run(h)));
    return this.db.prepare(`SELECT r.hash FROM temp.prune_records r WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE ${blobHashIs('b', 'r.hash')})`).pluck().all() as Buffer[];
  }

  /** Per catalogued pack: its blob rows, and how many of them (and how many bytes) are still used. */
  packUsage(): { name: string; blobs: number; usedBlobs: number; usedBytes: number }[] {
    return this.db
      .prepare(
        `SELECT name, count(blob) AS blobs, coalesce(sum(used), 0) AS usedBlobs, coalesce(sum(used * length), 0) AS usedBytes
         FROM (SELECT p.id AS pack, p.name AS name, b.id AS blob, b.length AS length,
                      CASE WHEN b.id IS NOT NULL AND ${usedBlobSql('b')} THEN 1 ELSE 0 END AS used
               FROM packs p LEFT JOIN blobs b ON b.pack = p.id)
         GROUP BY pack`,
      )
      .all() as { name: string; blobs: number; usedBlobs: number; usedBytes: number }[];
  }

  /** The used blobs located in one pack, in pack order (what a repack copies). */
  usedBlobsOfPack(name: string): { hash: Buffer; offset: number; length: number; rawLength: number; flags: number }[] {
    return this.db
      .prepare(
        `SELECT b.hash AS hash, b.offset AS offset, b.length AS length, b.raw_length AS rawLength, b.flags AS flags
         FROM blobs b JOIN packs p ON p.id = b.pack WHERE p.name = ? AND ${usedBlobSql('b')} ORDER BY b.offset`,
      )
      .all(name) as ReturnType<Catalog['usedBlobsOfPack']>;
  }

  /**
   * Records a prune in one transaction: new packs and their blobs' new locations, kept packs
   * now listed by new index files, and the packs and index files that are about to be deleted.
   * Throws (and changes nothing) if a dropped pack still holds a used blob.
   */
  applyPrune(change: {
    newPacks: { name: string; size: number; index: string; blobs: { hash: Buffer; offset: number; length: number; rawLength: number; flags: number }[] }[];
    /** Kept packs listed again by a new index file (their old one is being deleted). */
    relisted: { pack: string; index: string }[];
    droppedPacks: readonly string[];
    droppedIndexFiles: readonly string[];
    newIndexFiles: readonly string[];
  }): void {
    const db = this.db;
    const packId = db.prepare('SELECT id FROM packs WHERE name = ?').pluck();
    const moveBlob = db.prepare(
      `UPDATE blobs SET pack = @pack, offset = @offset, length = @length, raw_length = @rawLength, flags = @flags, index_file = @indexFile
       WHERE ${blobHashIs('blobs', '@hash')}`,
    );
    // Only rows whose index file is going: a pack's blobs may be split over several index files.
    const relist = db.prepare(
      'UPDATE blobs SET index_file = ? WHERE pack = ? AND index_file IN (SELECT f.id FROM blob_index_files f JOIN json_each(?) j ON j.value = f.name)',
    );
    const indexRow = (name: string): number => this.stmts.indexFileId.get(name) as number;
    const dropped = JSON.stringify(change.droppedIndexFiles);
    const stillUsed = db.prepare(`SELECT count(*) FROM blobs b WHERE b.pack = ? AND ${usedBlobSql('b')}`).pluck();
    this.transaction(() => {
      for (const p of change.newPacks) {
        const id = (this.stmts.insertPack.get(p.name, p.size, null) as { id: number }).id;
        for (const b of p.blobs) {
          const indexFile = indexRow(p.index);
          const moved = moveBlob.run({ hash: b.hash, pack: id, offset: b.offset, length: b.length, rawLength: b.rawLength, flags: b.flags, indexFile });
          if (moved.changes === 0) this.insertBlob(b, id, indexFile);
        }
      }
      for (const r of change.relisted) {
        const id = packId.get(r.pack) as number | undefined;
        if (id !== undefined) relist.run(indexRow(r.index), id, dropped);
      }
      for (const name of change.droppedPacks) {
        const id = packId.get(name) as number | undefined;
        if (id === undefined) continue;
        const used = stillUsed.get(id) as number;
        if (used > 0) throw new LakeguardError(`prune: pack ${name} still holds ${used} used blobs; nothing was changed`);
        db.prepare('DELETE FROM blobs WHERE pack = ?').run(id);
        db.prepare('DELETE FROM packs WHERE id = ?').run(id);
      }
      const dropIndex = db.prepare('DELETE FROM index_files WHERE name = ?');
      for (const name of change.droppedIndexFiles) dropIndex.run(name);
      for (const name of change.newIndexFiles) this.addIndexFile(name);
    });
  }

  /** Failure records (objects runs could not back up, entries they skipped) of every run. */
  failureCount(): number {
    return this.db.prepare('SELECT count(*) FROM failures').pluck().get() as number;
  }

  /** Per run (by seq): how many versions the catalog holds that it recorded; runs with none are absent. */
  versionCountsByRun(): Map<number, number> {
    const rows = this.db.prepare('SELECT run, count(*) AS n FROM versions GROUP BY run').all() as { run: number; n: number }[];
    return new Map(rows.map((r) => [r.run, r.n]));
  }

  stats(): { runs: number; objects: number; versions: number; blobs: number; packs: number } {
    const count = (t: string) => this.db.prepare(`SELECT count(*) FROM ${t}`).pluck().get() as number;
    return { runs: count('runs'), objects: count('objects'), versions: count('versions'), blobs: count('blobs'), packs: count('packs') };
  }
}

/** SQL condition: blob row `b` is used by a catalogued version or by a run manifest's records (temp.prune_records). */
function usedBlobSql(b: string): string {
  return `(${blobReferencedSql(b)} OR EXISTS (SELECT 1 FROM temp.prune_records r WHERE r.hash = ${b}.hash))`;
}

/** Columns in the order Catalog.latestPage reads them (raw rows). */
function latestPageSql(lowerOp: '>' | '>=', bounded: boolean): string {
  return `SELECT o.id AS objectId, o.key AS key, v.id AS versionRow, v.version_id AS versionId, v.delete_marker AS deleteMarker,
                 v.size AS size, ${etagSql('v.etag')} AS etag, ${lastModifiedSql('v')} AS lastModified, v.valid_from AS validFrom
          FROM objects o JOIN versions v ON v.id = o.latest
          WHERE o.bucket = @bucket AND o.key ${lowerOp} @lower ${bounded ? 'AND o.key < @upper' : ''}
          ORDER BY o.key LIMIT @limit`;
}

function toRunRow(r: Row): RunRow {
  return {
    seq: r.seq as number,
    id: r.id as string,
    group: r.grp as string,
    started: r.started as number,
    finished: r.finished as number | null,
    status: r.status as RunStatus,
    host: r.host as string | null,
    counters: r.counters === null ? null : (JSON.parse(r.counters as string) as RunCounters),
  };
}
