import type Database from 'better-sqlite3';
import { LakeguardError } from '../errors.js';
import { encodeEtag, encodeStorageClass } from './codec.js';
import { runIdTime } from './forget.js';
import { SCHEMA, SCHEMA_VERSION } from './schema.js';

/**
 * Brings a catalog written by an earlier lakeguard up to SCHEMA's shape, in place; runs before
 * SCHEMA is applied (a new file has nothing to migrate). Each step is one IMMEDIATE transaction
 * that checks the shape it needs inside it: a crash leaves the catalog as it was, and a process
 * that opened the catalog at the same time finds the step done.
 */
export function migrate(db: Database.Database): void {
  if (!hasTable(db, 'versions')) return;
  const stored = storedSchema(db);
  if (stored !== undefined && Number(stored) > SCHEMA_VERSION) {
    throw new LakeguardError(`catalog schema ${stored} was written by a newer lakeguard; this one reads schema ${SCHEMA_VERSION} and older`, {
      hint: 'use the newer lakeguard, or point --catalog at another file and run `lakeguard catalog rebuild`',
    });
  }
  step(db, () => !columns(db, 'runs').some((c) => c.name === 'pid'), () => db.exec('ALTER TABLE runs ADD COLUMN pid INTEGER'));
  step(db, () => columns(db, 'blobs').find((c) => c.name === 'index_file')?.type === 'TEXT', () => migrateIndexFileIds(db));
  step(db, () => !columns(db, 'versions').some((c) => c.name === 'blob'), () => migrateCompactVersions(db));
  // Not "is run_anomalies missing": the schema 2 → 3 step creates every table of SCHEMA.
  step(db, () => Number(storedSchema(db) ?? 4) < 4, () => migrateAnomalies(db));
  step(db, () => Number(storedSchema(db) ?? 5) < 5, () => migrateRunSets(db));
  step(db, () => Number(storedSchema(db) ?? 6) < 6, () => migrateDrills(db));
  // Additive, without a schema version: an earlier lakeguard names its columns and reads such
  // an acknowledgement as one of expected changes. Acks recorded before are of that kind.
  step(db, () => !columns(db, 'acks').some((c) => c.name === 'incident'), () => db.exec('ALTER TABLE acks ADD COLUMN incident INTEGER NOT NULL DEFAULT 0'));
  // Additive too: the acknowledged run's group and start, from its row while there is one.
  step(db, () => !columns(db, 'acks').some((c) => c.name === 'grp'), () => migrateAckRuns(db));
  // Additive: which forgotten runs' manifests their forget kept. Unknown (NULL) for forgets applied
  // before: their documents did not say, and nothing checks those manifests (as before).
  step(db, () => !columns(db, 'forgotten_runs').some((c) => c.name === 'manifest_kept'), () => db.exec('ALTER TABLE forgotten_runs ADD COLUMN manifest_kept INTEGER'));
}

/**
 * acks.grp and acks.run_started: filled from the acknowledged runs' rows; a run forgotten
 * already gets its start from its id, and no group (its acknowledgement then counts for every
 * group, see anomalies.ts incidentCarrier).
 */
function migrateAckRuns(db: Database.Database): void {
  db.exec('ALTER TABLE acks ADD COLUMN grp TEXT');
  db.exec('ALTER TABLE acks ADD COLUMN run_started INTEGER');
  db.exec('UPDATE acks SET grp = (SELECT grp FROM runs WHERE id = acks.run), run_started = (SELECT started FROM runs WHERE id = acks.run)');
  const orphans = db.prepare('SELECT name, run FROM acks WHERE run_started IS NULL').all() as { name: string; run: string }[];
  const set = db.prepare('UPDATE acks SET run_started = ? WHERE name = ?');
  for (const a of orphans) set.run(runIdTime(a.run), a.name);
}

/**
 * Schema 5 → 6: `drills`; nothing existing changes. Drills recorded in the repository before
 * are learned by `catalog rebuild` (a sync lists only what is new since its marker).
 */
function migrateDrills(db: Database.Database): void {
  db.exec(SCHEMA);
  db.exec("UPDATE catalog_info SET value = '6' WHERE name = 'schema'");
}

/**
 * Schema 4 → 5: `run_shards` (run-set membership of shard attempts), its index and trigger;
 * nothing existing changes. A schema 4 lakeguard imported shard manifests as ordinary runs
 * (it ignored the field): `catalog rebuild` groups them into their run sets.
 */
function migrateRunSets(db: Database.Database): void {
  db.exec(SCHEMA);
  db.exec("UPDATE catalog_info SET value = '5' WHERE name = 'schema'");
}

/**
 * Schema 3 → 4: the anomaly tables (run_anomalies, partition_stats, version_signals, acks) and
 * their triggers; nothing existing changes. Runs recorded before have no verdict: not suspect.
 * A catalog whose runs' manifests carry verdicts (written by a newer host) learns them with
 * `catalog rebuild`; sync only reads what is new.
 */
function migrateAnomalies(db: Database.Database): void {
  db.exec(SCHEMA);
  db.exec("UPDATE catalog_info SET value = '4' WHERE name = 'schema'");
}

function step(db: Database.Database, needed: () => boolean, run: () => void): void {
  if (!needed()) return;
  db.transaction(() => {
    if (needed()) run();
  }).immediate();
}

/**
 * Schema 1 → 2: blobs.index_file held the index file's name (64 hex characters per blob); it
 * now holds blob_index_files.id.
 */
function migrateIndexFileIds(db: Database.Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS blob_index_files (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
    INSERT OR IGNORE INTO blob_index_files (name) SELECT DISTINCT index_file FROM blobs WHERE index_file IS NOT NULL;
    CREATE TABLE blobs_v2 (
      id INTEGER PRIMARY KEY,
      hash BLOB NOT NULL UNIQUE,
      pack INTEGER NOT NULL REFERENCES packs(id),
      offset INTEGER NOT NULL,
      length INTEGER NOT NULL,
      raw_length INTEGER NOT NULL,
      flags INTEGER NOT NULL,
      index_file INTEGER REFERENCES blob_index_files(id)
    );
    INSERT INTO blobs_v2 (id, hash, pack, offset, length, raw_length, flags, index_file)
      SELECT b.id, b.hash, b.pack, b.offset, b.length, b.raw_length, b.flags, f.id
      FROM blobs b LEFT JOIN blob_index_files f ON f.name = b.index_file;
    DROP TABLE blobs;
    ALTER TABLE blobs_v2 RENAME TO blobs;
    CREATE INDEX blobs_by_pack ON blobs (pack, offset);
    CREATE INDEX blobs_unindexed ON blobs (id) WHERE index_file IS NULL;
    UPDATE catalog_info SET value = '2' WHERE name = 'schema';
  `);
}

/**
 * Schema 2 → 3: etags, storage classes and last-modified times encoded (codec.ts), the blob of a
 * one-blob version moved from version_blobs into versions.blob, and blobs indexed by a prefix of
 * their id instead of a unique index. The old tables are renamed, SCHEMA creates the new ones,
 * rows are copied with their ids (nothing refers to a row by anything else), the old tables go.
 * Their pages are reused by later writes (the file does not shrink; `catalog rebuild` writes a
 * compact one).
 */
function migrateCompactVersions(db: Database.Database): void {
  db.function('lakeguard_encode_etag', { deterministic: true }, (etag: unknown) => (typeof etag === 'string' ? encodeEtag(etag) : etag));
  db.function('lakeguard_encode_storage_class', { deterministic: true }, (name: unknown) => (typeof name === 'string' ? encodeStorageClass(name) : name));
  db.exec(`
    DROP INDEX IF EXISTS versions_by_object;
    DROP INDEX IF EXISTS versions_by_run;
    DROP INDEX IF EXISTS blobs_by_pack;
    DROP INDEX IF EXISTS blobs_unindexed;
    DROP INDEX IF EXISTS version_blobs_by_blob;
    ALTER TABLE versions RENAME TO versions_v2;
    ALTER TABLE blobs RENAME TO blobs_v2;
    ALTER TABLE version_blobs RENAME TO version_blobs_v2;
  `);
  db.exec(SCHEMA);
  db.exec(`
    INSERT INTO blobs (id, hash, pack, offset, length, raw_length, flags, index_file)
      SELECT id, hash, pack, offset, length, raw_length, flags, index_file FROM blobs_v2 ORDER BY id;
    INSERT INTO versions (id, object, version_id, delete_marker, size, etag, last_modified, valid_from, storage_class, meta, run, blob)
      SELECT v.id, v.object, v.version_id, v.delete_marker, v.size, lakeguard_encode_etag(v.etag), nullif(v.last_modified, v.valid_from),
             v.valid_from, lakeguard_encode_storage_class(v.storage_class), v.meta, v.run,
             (SELECT CASE WHEN count(*) = 1 THEN min(vb.blob) END FROM version_blobs_v2 vb WHERE vb.version = v.id)
      FROM versions_v2 v ORDER BY v.id;
    INSERT INTO version_blobs (version, seq, blob)
      SELECT vb.version, vb.seq, vb.blob FROM version_blobs_v2 vb LEFT JOIN versions v ON v.id = vb.version
      WHERE v.blob IS NULL ORDER BY vb.version, vb.seq;
    DROP TABLE versions_v2;
    DROP TABLE blobs_v2;
    DROP TABLE version_blobs_v2;
    UPDATE catalog_info SET value = '3' WHERE name = 'schema';
  `);
}

function storedSchema(db: Database.Database): string | undefined {
  return hasTable(db, 'catalog_info') ? (db.prepare("SELECT value FROM catalog_info WHERE name = 'schema'").pluck().get() as string | undefined) : undefined;
}

function hasTable(db: Database.Database, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

function columns(db: Database.Database, table: string): { name: string; type: string }[] {
  return db.prepare(`PRAGMA table_info(${table})`).all() as { name: string; type: string }[];
}
