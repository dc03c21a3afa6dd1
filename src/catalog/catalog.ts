/**
 * The Catalog core: opening (and migrating) the file, what it remembers of its repository, runs,
 * and every write to the pack, blob, version and index-file tables. Over ~500 lines because
 * these writes share one set of prepared statements and the bucket and metadata row-id caches
 * that a rolled-back transaction must clear; splitting them would hand those internals out.
 * The questions each consumer asks live beside it, each taking the Catalog: backup-lookups.ts
 * (backup listing), restore-selection.ts (restore), verify-queries.ts and verify-scratch.ts
 * (verify), prune-queries.ts (prune), present-packs.ts and rebuild-files.ts (catalog rebuild),
 * sync.ts, forget.ts, lock-dates.ts, cost-usage.ts, instant.ts and queries.ts (the query commands).
 */
import type BetterSqlite3 from 'better-sqlite3';
import { closeSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { LakeguardError } from '../errors.js';
import { encodeEtag, encodeLastModified, encodeStorageClass } from './codec.js';
import { corruptCatalogError, isCorruptDatabase, noteCatalogOpened } from './corrupt.js';
import { makeDirectory } from '../util/make-directory.js';
import { attachConnection, sqliteDatabase } from './connection.js';
import { migrate } from './migrate.js';
import { PresentPacks, type PackCheckResult } from './present-packs.js';
import { usedBlobSql } from './prune-queries.js';
import { SCHEMA, SCHEMA_VERSION, blobHashIs } from './schema.js';
import { RUN_SQL, toRunRow } from './run-rows.js';
import { VERSION_RECORD_SQL, toVersionRecord } from './version-records.js';
import type {
  FailureRecord,
  PackRecord,
  RememberedRepository,
  RunCounters,
  RunRow,
  RunStatus,
  StoredBlob,
  StoredMeta,
  UnindexedBlob,
  VersionRecord,
} from './types.js';


export type { PackRecord, RememberedRepository, Scope, StateCut, StoredBlob, TargetKey, UnindexedBlob } from './types.js';

type Row = Record<string, unknown>;

/** A blob id in hex, as a record names it. */
const HEX_ID = /^[0-9a-f]{64}$/;

/**
 * The SQLite catalog: a cache of the repository (rebuildable from runs/ and index/) that
 * answers every query locally. All writes are batched in transactions by the callers.
 */
export class Catalog {
  private readonly bucketIds = new Map<string, number>();
  private readonly metaIds = new Map<string, number>();
  private readonly stmts: ReturnType<Catalog['prepare']>;
  /** While a rebuild checks index entries against the packs that exist (beginPresentPacks). */
  private packCheck: PresentPacks | null = null;

  private constructor(
    readonly path: string,
    private readonly db: BetterSqlite3.Database,
  ) {
    this.stmts = this.prepare();
    attachConnection(this, db);
  }

  static open(path: string, repositoryId: string): Catalog {
    let db: BetterSqlite3.Database | undefined;
    try {
      // Inside the try: a directory it cannot create (read-only, not writable, a file in the
      // way) is the same one-line error with a hint as a file it cannot open.
      if (path !== ':memory:') {
        makeDirectory(dirname(path), 0o700);
        createPrivately(path);
      }
      db = new (sqliteDatabase())(path);
      // First: a connection closing (its checkpoint) locks the file for a moment, and the
      // journal_mode pragma would fail at once with "database is locked" without a timeout.
      db.pragma('busy_timeout = 10000');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
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
   * algorithm, format version and location as of the last command that used it, null when not yet known
   * (a new catalog, or one written before lakeguard remembered them).
   */
  rememberedRepository(): RememberedRepository {
    const get = this.db.prepare('SELECT value FROM catalog_info WHERE name = ?').pluck();
    const encryption = (get.get('encryption') as string | undefined) ?? null;
    const version = get.get('format_version') as string | undefined;
    const location = (get.get('location') as string | undefined) ?? null;
    return { id: get.get('repository') as string, encryption, formatVersion: version === undefined ? null : Number(version), location };
  }

  /** Remembers the repository's encryption, format version and location (see rememberedRepository). */
  rememberRepository(identity: { encryption: string; formatVersion: number; location: string }): void {
    const put = this.db.prepare('INSERT INTO catalog_info (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value');
    this.transaction(() => {
      put.run('encryption', identity.encryption);
      put.run('format_version', String(identity.formatVersion));
      put.run('location', identity.location);
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

  /** Forgets the cached bucket and meta row ids (after their rows were deleted: scoped-sync reset). */
  forgetCachedRowIds(): void {
    this.bucketIds.clear();
    this.metaIds.clear();
  }

  /**
   * `fn` in one transaction that holds the write lock from its start (BEGIN IMMEDIATE). Deferred,
   * a transaction that reads and then writes fails at once with "database is locked" (no busy
   * wait: SQLITE_BUSY_SNAPSHOT in WAL mode) when another process wrote in between, as several
   * commands opening one catalog at once do (identity, sync). Immediate, it waits its turn.
   */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
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
      // Insert, and read the row id only of a key already there: an upsert with RETURNING costs
      // a third more per new key (a fresh sync adds one per version) and rewrites an existing row.
      insertObject: db.prepare('INSERT OR IGNORE INTO objects (bucket, key) VALUES (?, ?)'),
      findObject: db.prepare('SELECT id FROM objects WHERE bucket = ? AND key = ?').pluck(),
      metaId: db.prepare('INSERT INTO metas (json) VALUES (?) ON CONFLICT (json) DO UPDATE SET json = excluded.json RETURNING id'),
      // A version forget dropped counts as known: the next backup must not capture it again.
      versionExists: db.prepare(
        `SELECT 1 FROM (SELECT ? AS o, ? AS v) p WHERE EXISTS (SELECT 1 FROM versions WHERE object = p.o AND version_id = p.v)
           OR EXISTS (SELECT 1 FROM dropped_versions WHERE object = p.o AND version_id = p.v)`,
      ),
      // A reinstated record is imported once: the same record again (a second import) is skipped.
      recordExists: db
        .prepare('SELECT 1 FROM versions WHERE object = ? AND version_id IS ? AND valid_from = ? AND delete_marker = ?')
        .pluck(),
      insertVersion: db.prepare(
        `INSERT INTO versions (object, version_id, delete_marker, size, etag, last_modified, valid_from, storage_class, meta, run, blob)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateLatest: db.prepare(
        `UPDATE objects SET latest = @version WHERE id = @object AND (latest IS NULL OR
           (SELECT valid_from FROM versions WHERE id = objects.latest) <= @validFrom)`,
      ),
      blobRow: db.prepare(`SELECT id FROM blobs b WHERE ${blobHashIs('b', '@hash')}`).pluck(),
      // The blobs of a JSON array of hex ids: [index in the array, row id] of those catalogued.
      blobRows: db
        .prepare(`SELECT j.key, b.id FROM json_each(?) j JOIN blobs b ON ${blobHashIs('b', 'unhex(j.value)')}`)
        .raw(),
      insertVersionBlob: db.prepare('INSERT INTO version_blobs (version, seq, blob) VALUES (?, ?, ?)'),
      insertSignals: db.prepare('INSERT OR REPLACE INTO version_signals (version, signals) VALUES (?, ?)'),
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
      nthKeyFrom: db.prepare('SELECT key FROM objects WHERE bucket = @bucket AND key >= @lower AND key < @upper ORDER BY key LIMIT 1 OFFSET @skip').pluck(),
      nthKeyAfter: db.prepare('SELECT key FROM objects WHERE bucket = @bucket AND key > @lower AND key < @upper ORDER BY key LIMIT 1 OFFSET @skip').pluck(),
      hasBlob: db.prepare(`SELECT 1 FROM blobs b WHERE ${blobHashIs('b', '@hash')}`).pluck(),
      anyUnindexed: db.prepare('SELECT 1 FROM blobs WHERE index_file IS NULL LIMIT 1').pluck(),
      moveUnindexed: db.prepare(
        `UPDATE blobs AS b SET pack = @pack, offset = @offset, length = @length, raw_length = @rawLength, flags = @flags, index_file = @indexFile
         WHERE ${blobHashIs('b', '@hash')} AND b.index_file IS NULL`,
      ),
      blobLocation: db.prepare(
        `SELECT p.name AS pack, b.offset AS offset, b.length AS length, b.raw_length AS rawLength, b.flags AS flags
         FROM blobs b JOIN packs p ON p.id = b.pack WHERE ${blobHashIs('b', '@hash')}`,
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
    const rows = this.db.prepare(`${RUN_SQL} WHERE status = 'running' AND host = ? ORDER BY seq`).all(host) as Row[];
    return rows.filter((r) => r.pid === null || !isAlive(r.pid as number)).map(toRunRow);
  }

  /**
   * Records that run `seq` ended as `status` in this catalog without a manifest in the
   * repository (writing it failed with `error`): `runs` says so at once, and the next backup on
   * this host writes the manifest (`takeUnrecordedRuns`).
   */
  finishUnrecordedRun(seq: number, status: RunStatus, finished: number, counters: RunCounters, error: string): void {
    this.transaction(() => {
      this.finishRun(seq, status, finished, counters);
      this.db.prepare('INSERT OR REPLACE INTO unrecorded_runs (run, error) VALUES (?, ?)').run(seq, error);
    });
  }

  /** Why run `seq` has no manifest in the repository, if it ended without one. */
  unrecordedError(seq: number): string | undefined {
    return this.db.prepare('SELECT error FROM unrecorded_runs WHERE run = ?').pluck().get(seq) as string | undefined;
  }

  /**
   * The runs of `host` that ended without a manifest, each taken off the list in the same
   * transaction that reads it (two backups at once never record one twice); the caller puts
   * back one it could not record (`finishUnrecordedRun`).
   */
  takeUnrecordedRuns(host: string): { run: RunRow; error: string }[] {
    return this.transaction(() => {
      const rows = this.db.prepare(`${RUN_SQL} WHERE r.seq IN (SELECT run FROM unrecorded_runs) AND r.host = ? ORDER BY r.seq`).all(host) as Row[];
      return rows.map((r) => {
        const error = this.unrecordedError(r.seq as number)!;
        this.db.prepare('DELETE FROM unrecorded_runs WHERE run = ?').run(r.seq);
        return { run: toRunRow(r), error };
      });
    });
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
      .prepare(`${RUN_SQL} ${opts.group === undefined ? '' : 'WHERE grp = ?'} ORDER BY seq`)
      .all(...(opts.group === undefined ? [] : [opts.group])) as Row[];
    return rows.map(toRunRow);
  }

  /** A run by full id, unique id prefix, or sequence number. */
  findRun(ref: string): RunRow | undefined {
    const byId = this.db.prepare(`${RUN_SQL} WHERE id = ?`).get(ref) as Row | undefined;
    if (byId !== undefined) return toRunRow(byId);
    if (/^\d+$/.test(ref)) {
      const bySeq = this.db.prepare(`${RUN_SQL} WHERE seq = ?`).get(Number(ref)) as Row | undefined;
      if (bySeq !== undefined) return toRunRow(bySeq);
    }
    const byPrefix = this.db.prepare(`${RUN_SQL} WHERE id LIKE ? || '%' ESCAPE '\\' LIMIT 2`).all(ref.replace(/[%_\\]/g, '\\$&')) as Row[];
    return byPrefix.length === 1 ? toRunRow(byPrefix[0]!) : undefined;
  }

  latestRun(opts: { group?: string; statuses: RunStatus[] }): RunRow | undefined {
    const params: unknown[] = [...opts.statuses];
    let where = `status IN (${opts.statuses.map(() => '?').join(',')})`;
    if (opts.group !== undefined) {
      where += ' AND grp = ?';
      params.push(opts.group);
    }
    const row = this.db.prepare(`${RUN_SQL} WHERE ${where} ORDER BY seq DESC LIMIT 1`).get(...params) as Row | undefined;
    return row === undefined ? undefined : toRunRow(row);
  }

  // ---- what is already backed up (the backup's listing checks are in backup-lookups.ts) ----

  hasBlob(hash: Buffer): boolean {
    return this.stmts.hasBlob.get({ hash }) !== undefined;
  }

  /**
   * The row ids of the catalogued blobs among `hexes` (hex ids), for insertVersions' `blobRows`:
   * looked up a few thousand per query. Those absent are not in the map.
   */
  blobRowsOf(hexes: Iterable<string>): Map<string, number> {
    const rows = new Map<string, number>();
    let chunk: string[] = [];
    const lookUp = (): void => {
      for (const [i, id] of this.stmts.blobRows.all(JSON.stringify(chunk)) as [number, number][]) rows.set(chunk[i]!, id);
      chunk = [];
    };
    for (const hex of hexes) {
      if (HEX_ID.test(hex)) {
        chunk.push(hex);
        if (chunk.length >= 2000) lookUp();
      } else {
        // Not a well-formed id (a damaged record): looked up as Buffer.from reads it, as before.
        const id = this.stmts.blobRow.get({ hash: Buffer.from(hex, 'hex') }) as number | undefined;
        if (id !== undefined) rows.set(hex, id);
      }
    }
    if (chunk.length > 0) lookUp();
    return rows;
  }

  /** Where a blob is stored (its pack and range), or undefined when no catalogued pack holds it. */
  blobLocation(hash: Buffer): StoredBlob | undefined {
    return this.stmts.blobLocation.get({ hash }) as StoredBlob | undefined;
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

  // ---- writes (callers batch them inside `transaction`) -----------------------------------

  /**
   * Records that run `runSeq` wrote these packs (by name), where the catalog knows them and no
   * run is recorded for them yet: the packs of a run's record blobs, which no version refers to,
   * as its manifest locates them. The backup's own host records every pack it writes
   * (insertPack); with this, `cost` counts a run's record packs in its group on every host.
   */
  claimPacks(runSeq: number, names: Iterable<string>): void {
    const claim = this.db.prepare('UPDATE packs SET run = ? WHERE name = ? AND run IS NULL');
    for (const name of new Set(names)) claim.run(runSeq, name);
  }

  /**
   * Records a pack and its blobs; a blob already catalogued keeps its location, except one no
   * index file lists yet (a pack of this host's own unfinished or killed run), which moves to
   * the location an index file gives (`indexFile`). Only its own host's catalog knows such a
   * pack: a prune on another host deletes it, and this catalog would be left locating the blob
   * there, and write an index file and a manifest naming the deleted pack (docs/catalog.md).
   */
  insertPack(pack: PackRecord, runSeq: number | null, indexFile: string | null = null): void {
    const packRow = (this.stmts.insertPack.get(pack.name, pack.size, runSeq) as { id: number }).id;
    const indexRow = indexFile === null ? null : (this.stmts.indexFileId.get(indexFile) as number);
    if (this.packCheck !== null) {
      this.packCheck.insertPack(pack, packRow, indexFile, indexRow, (b) => this.insertBlob(b, packRow, indexRow));
      return;
    }
    const moveUnindexed = indexRow !== null && this.stmts.anyUnindexed.get() !== undefined;
    for (const b of pack.blobs) {
      const inserted = this.insertBlob(b, packRow, indexRow);
      if (!inserted && moveUnindexed) this.stmts.moveUnindexed.run({ hash: b.hash, pack: packRow, offset: b.offset, length: b.length, rawLength: b.rawLength, flags: b.flags, indexFile: indexRow });
    }
  }

  // ---- catalog rebuild: index entries checked against the packs that exist (present-packs.ts) ----

  /**
   * From now on insertPack knows which packs the repository has (added with addPresentPacks,
   * from one LIST of packs/) and, for a blob listed in several index files, prefers an entry
   * whose pack exists with the size the index file gives. endPresentPacks ends this.
   */
  beginPresentPacks(): void {
    this.packCheck = new PresentPacks(this);
  }

  addPresentPacks(packs: readonly { name: string; size: number }[]): void {
    if (this.packCheck === null) throw new Error('addPresentPacks before beginPresentPacks');
    this.packCheck.add(packs);
  }

  /** Ends the pack check: see PresentPacks.end. */
  endPresentPacks(): PackCheckResult {
    if (this.packCheck === null) throw new Error('endPresentPacks before beginPresentPacks');
    const result = this.packCheck.end();
    this.packCheck = null;
    return result;
  }

  /**
   * Inserts versions; a version whose S3 version id is already catalogued is skipped, unless the
   * record reinstates it (VersionRecord.reinstated; then only the same record again is skipped).
   * Returns rows inserted. `blobRows`: blob row ids (by hex id) the caller has looked up in this
   * transaction (blobRowsOf), so they are not looked up one by one.
   */
  insertVersions(runSeq: number, records: readonly VersionRecord[], blobRows?: ReadonlyMap<string, number>): number {
    let inserted = 0;
    for (const r of records) {
      const objectId = this.objectIdOf(r.bucket, r.key);
      if (r.reinstated === true) {
        if (this.stmts.recordExists.get(objectId, r.versionId, r.validFrom, r.deleteMarker ? 1 : 0) !== undefined) continue;
      } else if (r.versionId !== null && this.isVersionKnown(objectId, r.versionId)) continue;
      const blobs = r.blobs.map((hex) => {
        const blob = blobRows?.get(hex) ?? (this.stmts.blobRow.get({ hash: Buffer.from(hex, 'hex') }) as number | undefined);
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
      if (r.signals !== undefined && r.signals.length > 0) this.stmts.insertSignals.run(versionRow, r.signals.join(','));
      this.stmts.updateLatest.run({ version: versionRow, object: objectId, validFrom: r.validFrom });
      inserted++;
    }
    return inserted;
  }

  /** Inserts a blob unless its id is catalogued already; whether it did. */
  private insertBlob(b: PackRecord['blobs'][number], pack: number, indexFile: number | null): boolean {
    return this.stmts.insertBlob.run({ hash: b.hash, pack, offset: b.offset, length: b.length, rawLength: b.rawLength, flags: b.flags, indexFile }).changes > 0;
  }

  /** The row id of an object, created if needed. */
  objectIdOf(bucket: string, key: string): number {
    const id = this.bucketId(bucket);
    const inserted = this.stmts.insertObject.run(id, key);
    return inserted.changes > 0 ? Number(inserted.lastInsertRowid) : (this.stmts.findObject.get(id, key) as number);
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

  /**
   * Whether object row `objectId` has a version with this S3 version id catalogued, or had one
   * that forget dropped (the next backup must not capture it again).
   */
  isVersionKnown(objectId: number, versionId: string): boolean {
    return this.stmts.versionExists.get(objectId, versionId) !== undefined;
  }

  /** The row id of a bucket (or local source) name, undefined when the catalog has never recorded it. */
  findBucketId(name: string): number | undefined {
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

  /** The catalog no longer counts this index file as read (it is gone, and what it listed waits for a new one). */
  forgetIndexFile(name: string): void {
    this.db.prepare('DELETE FROM index_files WHERE name = ?').run(name);
  }

  addIndexFile(name: string): void {
    this.db.prepare('INSERT OR IGNORE INTO index_files (name) VALUES (?)').run(name);
  }

  // ---- reading a run's records back (manifests, catalog rebuild checks) -----------------------

  /** A page of the versions a run recorded, in row order, as its records give them (blob ids in hex). */
  versionsOfRun(runSeq: number, afterRow: number, limit: number): (VersionRecord & { row: number })[] {
    const rows = this.db.prepare(`${VERSION_RECORD_SQL} WHERE v.run = ? AND v.id > ? ORDER BY v.id LIMIT ?`).all(runSeq, afterRow, limit) as Row[];
    return rows.map(toVersionRecord);
  }

  /** One catalogued version as a record (blob ids in hex; no signals: they were the first read's). */
  versionRecordAt(row: number): VersionRecord {
    const r = this.db.prepare(`${VERSION_RECORD_SQL} WHERE v.id = ?`).get(row) as Row | undefined;
    if (r === undefined) throw new LakeguardError(`catalog: version row ${row} does not exist`);
    const { row: _row, signals: _signals, reinstated: _reinstated, ...record } = toVersionRecord(r);
    return record;
  }

  /** The failure records of a run, in the order it met them. */
  failuresOfRun(runSeq: number): FailureRecord[] {
    return (this.db.prepare('SELECT bucket, key, version_id AS versionId, code, message FROM failures WHERE run = ? ORDER BY rowid').all(runSeq) as Row[]).map(
      (r) => ({ bucket: r.bucket as string, key: r.key as string, versionId: r.versionId as string | null, code: r.code as string, message: r.message as string }),
    );
  }

  /** Whether the catalog has ever recorded an object of this bucket (or local source). */
  hasBucket(name: string): boolean {
    return this.findBucketId(name) !== undefined;
  }

  /** Every catalogued pack, by name. */
  packs(): { name: string; size: number }[] {
    return this.db.prepare('SELECT name, size FROM packs ORDER BY name').all() as { name: string; size: number }[];
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

  // ---- prune and sync: what the catalog knows of the repository's documents and packs --------

  /** Run ids the catalog knows: its runs and the runs forget removed. */
  knownRunIds(): Set<string> {
    return new Set(this.db.prepare('SELECT id FROM runs UNION SELECT id FROM forgotten_runs').pluck().all() as string[]);
  }

  /** Forget documents (forgets/<name>) this catalog has applied. */
  knownForgets(): Set<string> {
    return new Set(this.db.prepare('SELECT name FROM forgets').pluck().all() as string[]);
  }

  /**
   * Records a prune in one transaction: new packs and their blobs' new locations, kept packs
   * now listed by new index files, and the packs and index files that are about to be deleted.
   * Throws (and changes nothing) if a dropped pack still holds a used blob (prune-queries.ts).
   */
  applyPrune(change: {
    /** Iterated once, inside the transaction (prune reads each pack's blobs from a temporary table as it goes). */
    newPacks: Iterable<{ name: string; size: number; index: string; blobs: { hash: Buffer; offset: number; length: number; rawLength: number; flags: number }[] }>;
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

/**
 * Creates an empty catalog file readable by its owner alone (SQLite gives its -wal and -shm files
 * the same mode): a catalog holds in plaintext what an encrypted repository seals (keys, sizes,
 * metadata, tags, run verdicts). A file that exists keeps its mode.
 */
function createPrivately(path: string): void {
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}
