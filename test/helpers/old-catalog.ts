// Catalogs as lakeguard wrote them before schema 5, for the migration tests: the schema 4 DDL
// verbatim (src/catalog/schema.ts at 548a8ba), the schema 3 DDL
// verbatim (src/catalog/schema.ts at 9add5a2), the schema 2 DDL
// verbatim (src/catalog/schema.ts at 2ff7d91), schema 1 derived from it (blobs.index_file held
// the index file's name), and a writer that stores records as the old Catalog did: etags,
// storage classes and times as given, every blob of a version in version_blobs.
import Database from 'better-sqlite3';
import type { PackRecord } from '../../src/catalog/catalog.js';
import type { FailureRecord, RunCounters, RunStatus, VersionRecord } from '../../src/catalog/types.js';

/** Schema 3 DDL verbatim (src/catalog/schema.ts before schema 4 added the anomaly tables). */
export const SCHEMA_3 = `
CREATE TABLE IF NOT EXISTS catalog_info (name TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS runs (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  grp TEXT NOT NULL,
  started INTEGER NOT NULL,
  finished INTEGER,
  status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed', 'interrupted')),
  host TEXT,
  pid INTEGER,
  counters TEXT
);

CREATE TABLE IF NOT EXISTS buckets (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);

CREATE TABLE IF NOT EXISTS objects (
  id INTEGER PRIMARY KEY,
  bucket INTEGER NOT NULL REFERENCES buckets(id),
  key TEXT NOT NULL,
  latest INTEGER,
  UNIQUE (bucket, key)
);

CREATE TABLE IF NOT EXISTS metas (id INTEGER PRIMARY KEY, json TEXT NOT NULL UNIQUE);

CREATE TABLE IF NOT EXISTS versions (
  id INTEGER PRIMARY KEY,
  object INTEGER NOT NULL REFERENCES objects(id),
  version_id TEXT,
  delete_marker INTEGER NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT, -- codec.ts
  last_modified INTEGER, -- NULL: valid_from (codec.ts)
  valid_from INTEGER NOT NULL,
  storage_class, -- a name or a class code (codec.ts); no declared type, so codes stay integers
  meta INTEGER REFERENCES metas(id),
  run INTEGER NOT NULL REFERENCES runs(seq),
  blob INTEGER -- the content of a version of exactly one blob; else its blobs are in version_blobs
);
CREATE INDEX IF NOT EXISTS versions_by_object ON versions (object, valid_from);
CREATE INDEX IF NOT EXISTS versions_by_run ON versions (run);
CREATE INDEX IF NOT EXISTS versions_by_blob ON versions (blob) WHERE blob IS NOT NULL;

CREATE TABLE IF NOT EXISTS packs (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  size INTEGER NOT NULL,
  run INTEGER
);

CREATE TABLE IF NOT EXISTS blobs (
  id INTEGER PRIMARY KEY,
  hash BLOB NOT NULL, -- unique: Catalog.insertPack inserts a hash only if absent
  pack INTEGER NOT NULL REFERENCES packs(id),
  offset INTEGER NOT NULL,
  length INTEGER NOT NULL,
  raw_length INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  index_file INTEGER REFERENCES blob_index_files(id)
);
CREATE INDEX IF NOT EXISTS blobs_by_hash ON blobs (substr(hash, 1, 4));
CREATE INDEX IF NOT EXISTS blobs_by_pack ON blobs (pack);
CREATE INDEX IF NOT EXISTS blobs_unindexed ON blobs (id) WHERE index_file IS NULL;

-- The blobs of versions of two or more blobs, in order (seq from 0).
CREATE TABLE IF NOT EXISTS version_blobs (
  version INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  blob INTEGER NOT NULL,
  PRIMARY KEY (version, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS version_blobs_by_blob ON version_blobs (blob);

-- Index files this catalog has read or written (all of their blobs are catalogued).
CREATE TABLE IF NOT EXISTS index_files (name TEXT PRIMARY KEY);
-- The index file that lists a blob (blobs.index_file), by row id: the name once, not in every blob row.
CREATE TABLE IF NOT EXISTS blob_index_files (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);

CREATE TABLE IF NOT EXISTS failures (
  run INTEGER NOT NULL REFERENCES runs(seq),
  bucket TEXT NOT NULL,
  key TEXT NOT NULL,
  version_id TEXT,
  code TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS failures_by_run ON failures (run);

-- Retention (forget). Runs that forget removed as points in time; their manifests may still
-- exist in the repository (Object Lock, or records that kept runs still need).
CREATE TABLE IF NOT EXISTS forgotten_runs (id TEXT PRIMARY KEY, forget TEXT NOT NULL) WITHOUT ROWID;
-- Versions forget dropped from versioned sources, so the next backup does not capture them again.
CREATE TABLE IF NOT EXISTS dropped_versions (
  object INTEGER NOT NULL,
  version_id TEXT NOT NULL,
  PRIMARY KEY (object, version_id)
) WITHOUT ROWID;
-- Repository objects forget wanted to delete but Object Lock still retains; retried by every forget.
CREATE TABLE IF NOT EXISTS pending_deletions (name TEXT PRIMARY KEY, locked_until INTEGER) WITHOUT ROWID;
-- Forget documents (forgets/<name>) this catalog has applied.
CREATE TABLE IF NOT EXISTS forgets (name TEXT PRIMARY KEY, created INTEGER NOT NULL) WITHOUT ROWID;
`;

export const SCHEMA_2 = `
CREATE TABLE IF NOT EXISTS catalog_info (name TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS runs (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  grp TEXT NOT NULL,
  started INTEGER NOT NULL,
  finished INTEGER,
  status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed', 'interrupted')),
  host TEXT,
  pid INTEGER,
  counters TEXT
);

CREATE TABLE IF NOT EXISTS buckets (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);

CREATE TABLE IF NOT EXISTS objects (
  id INTEGER PRIMARY KEY,
  bucket INTEGER NOT NULL REFERENCES buckets(id),
  key TEXT NOT NULL,
  latest INTEGER,
  UNIQUE (bucket, key)
);

CREATE TABLE IF NOT EXISTS metas (id INTEGER PRIMARY KEY, json TEXT NOT NULL UNIQUE);

CREATE TABLE IF NOT EXISTS versions (
  id INTEGER PRIMARY KEY,
  object INTEGER NOT NULL REFERENCES objects(id),
  version_id TEXT,
  delete_marker INTEGER NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT,
  last_modified INTEGER NOT NULL,
  valid_from INTEGER NOT NULL,
  storage_class TEXT,
  meta INTEGER REFERENCES metas(id),
  run INTEGER NOT NULL REFERENCES runs(seq)
);
CREATE INDEX IF NOT EXISTS versions_by_object ON versions (object, valid_from);
CREATE INDEX IF NOT EXISTS versions_by_run ON versions (run);

CREATE TABLE IF NOT EXISTS packs (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  size INTEGER NOT NULL,
  run INTEGER
);

CREATE TABLE IF NOT EXISTS blobs (
  id INTEGER PRIMARY KEY,
  hash BLOB NOT NULL UNIQUE,
  pack INTEGER NOT NULL REFERENCES packs(id),
  offset INTEGER NOT NULL,
  length INTEGER NOT NULL,
  raw_length INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  index_file INTEGER REFERENCES blob_index_files(id)
);
CREATE INDEX IF NOT EXISTS blobs_by_pack ON blobs (pack, offset);
CREATE INDEX IF NOT EXISTS blobs_unindexed ON blobs (id) WHERE index_file IS NULL;

CREATE TABLE IF NOT EXISTS version_blobs (
  version INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  blob INTEGER NOT NULL,
  PRIMARY KEY (version, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS version_blobs_by_blob ON version_blobs (blob);

-- Index files this catalog has read or written (all of their blobs are catalogued).
CREATE TABLE IF NOT EXISTS index_files (name TEXT PRIMARY KEY);
-- The index file that lists a blob (blobs.index_file), by row id: the name once, not in every blob row.
CREATE TABLE IF NOT EXISTS blob_index_files (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);

CREATE TABLE IF NOT EXISTS failures (
  run INTEGER NOT NULL REFERENCES runs(seq),
  bucket TEXT NOT NULL,
  key TEXT NOT NULL,
  version_id TEXT,
  code TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS failures_by_run ON failures (run);

-- Retention (forget). Runs that forget removed as points in time; their manifests may still
-- exist in the repository (Object Lock, or records that kept runs still need).
CREATE TABLE IF NOT EXISTS forgotten_runs (id TEXT PRIMARY KEY, forget TEXT NOT NULL) WITHOUT ROWID;
-- Versions forget dropped from versioned sources, so the next backup does not capture them again.
CREATE TABLE IF NOT EXISTS dropped_versions (
  object INTEGER NOT NULL,
  version_id TEXT NOT NULL,
  PRIMARY KEY (object, version_id)
) WITHOUT ROWID;
-- Repository objects forget wanted to delete but Object Lock still retains; retried by every forget.
CREATE TABLE IF NOT EXISTS pending_deletions (name TEXT PRIMARY KEY, locked_until INTEGER) WITHOUT ROWID;
-- Forget documents (forgets/<name>) this catalog has applied.
CREATE TABLE IF NOT EXISTS forgets (name TEXT PRIMARY KEY, created INTEGER NOT NULL) WITHOUT ROWID;
`;

/** Schema 4 DDL verbatim (src/catalog/schema.ts at 548a8ba, before schema 5 added run_shards). */
export const SCHEMA_4 = `
CREATE TABLE IF NOT EXISTS catalog_info (name TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS runs (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  grp TEXT NOT NULL,
  started INTEGER NOT NULL,
  finished INTEGER,
  status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed', 'interrupted')),
  host TEXT,
  pid INTEGER,
  counters TEXT
);

CREATE TABLE IF NOT EXISTS buckets (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);

CREATE TABLE IF NOT EXISTS objects (
  id INTEGER PRIMARY KEY,
  bucket INTEGER NOT NULL REFERENCES buckets(id),
  key TEXT NOT NULL,
  latest INTEGER,
  UNIQUE (bucket, key)
);

CREATE TABLE IF NOT EXISTS metas (id INTEGER PRIMARY KEY, json TEXT NOT NULL UNIQUE);

CREATE TABLE IF NOT EXISTS versions (
  id INTEGER PRIMARY KEY,
  object INTEGER NOT NULL REFERENCES objects(id),
  version_id TEXT,
  delete_marker INTEGER NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT, -- codec.ts
  last_modified INTEGER, -- NULL: valid_from (codec.ts)
  valid_from INTEGER NOT NULL,
  storage_class, -- a name or a class code (codec.ts); no declared type, so codes stay integers
  meta INTEGER REFERENCES metas(id),
  run INTEGER NOT NULL REFERENCES runs(seq),
  blob INTEGER -- the content of a version of exactly one blob; else its blobs are in version_blobs
);
CREATE INDEX IF NOT EXISTS versions_by_object ON versions (object, valid_from);
CREATE INDEX IF NOT EXISTS versions_by_run ON versions (run);
CREATE INDEX IF NOT EXISTS versions_by_blob ON versions (blob) WHERE blob IS NOT NULL;

CREATE TABLE IF NOT EXISTS packs (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  size INTEGER NOT NULL,
  run INTEGER
);

CREATE TABLE IF NOT EXISTS blobs (
  id INTEGER PRIMARY KEY,
  hash BLOB NOT NULL, -- unique: Catalog.insertPack inserts a hash only if absent
  pack INTEGER NOT NULL REFERENCES packs(id),
  offset INTEGER NOT NULL,
  length INTEGER NOT NULL,
  raw_length INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  index_file INTEGER REFERENCES blob_index_files(id)
);
CREATE INDEX IF NOT EXISTS blobs_by_hash ON blobs (substr(hash, 1, 4));
CREATE INDEX IF NOT EXISTS blobs_by_pack ON blobs (pack);
CREATE INDEX IF NOT EXISTS blobs_unindexed ON blobs (id) WHERE index_file IS NULL;

-- The blobs of versions of two or more blobs, in order (seq from 0).
CREATE TABLE IF NOT EXISTS version_blobs (
  version INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  blob INTEGER NOT NULL,
  PRIMARY KEY (version, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS version_blobs_by_blob ON version_blobs (blob);

-- Index files this catalog has read or written (all of their blobs are catalogued).
CREATE TABLE IF NOT EXISTS index_files (name TEXT PRIMARY KEY);
-- The index file that lists a blob (blobs.index_file), by row id: the name once, not in every blob row.
CREATE TABLE IF NOT EXISTS blob_index_files (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);

CREATE TABLE IF NOT EXISTS failures (
  run INTEGER NOT NULL REFERENCES runs(seq),
  bucket TEXT NOT NULL,
  key TEXT NOT NULL,
  version_id TEXT,
  code TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS failures_by_run ON failures (run);

-- Retention (forget). Runs that forget removed as points in time; their manifests may still
-- exist in the repository (Object Lock, or records that kept runs still need).
CREATE TABLE IF NOT EXISTS forgotten_runs (id TEXT PRIMARY KEY, forget TEXT NOT NULL) WITHOUT ROWID;
-- Versions forget dropped from versioned sources, so the next backup does not capture them again.
CREATE TABLE IF NOT EXISTS dropped_versions (
  object INTEGER NOT NULL,
  version_id TEXT NOT NULL,
  PRIMARY KEY (object, version_id)
) WITHOUT ROWID;
-- Repository objects forget wanted to delete but Object Lock still retains; retried by every forget.
CREATE TABLE IF NOT EXISTS pending_deletions (name TEXT PRIMARY KEY, locked_until INTEGER) WITHOUT ROWID;
-- Forget documents (forgets/<name>) this catalog has applied.
CREATE TABLE IF NOT EXISTS forgets (name TEXT PRIMARY KEY, created INTEGER NOT NULL) WITHOUT ROWID;

-- Anomaly detection (schema 4; docs/catalog.md "Anomalies"). A run's verdict, as its manifest's
-- "anomalies" gives it; runs recorded before detection existed have no row (not suspect).
CREATE TABLE IF NOT EXISTS run_anomalies (
  run INTEGER PRIMARY KEY REFERENCES runs(seq),
  suspect INTEGER NOT NULL,
  flagged INTEGER NOT NULL,
  findings TEXT NOT NULL -- JSON array of PartitionFinding (anomaly-types.ts)
);
-- What each run did to each partition it changed: the history later runs compare against.
CREATE TABLE IF NOT EXISTS partition_stats (
  bucket INTEGER NOT NULL REFERENCES buckets(id),
  partition TEXT NOT NULL,
  run INTEGER NOT NULL REFERENCES runs(seq),
  before INTEGER NOT NULL,
  added INTEGER NOT NULL,
  changed INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  bytes_added INTEGER NOT NULL,
  bytes_changed INTEGER NOT NULL,
  bytes_deleted INTEGER NOT NULL,
  changed_verified INTEGER, -- PartitionStats.changedVerified; NULL when not recorded
  signals TEXT, -- JSON object of signal counts; NULL when none
  PRIMARY KEY (bucket, partition, run)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS partition_stats_by_run ON partition_stats (run);
-- Signals of flagged versions only (comma-separated ObjectSignal names).
CREATE TABLE IF NOT EXISTS version_signals (version INTEGER PRIMARY KEY, signals TEXT NOT NULL);
-- Acknowledgements (acks/<name>): a person looked at a suspect run.
CREATE TABLE IF NOT EXISTS acks (
  name TEXT PRIMARY KEY,
  run TEXT NOT NULL, -- runs.id (text: an ack outlives a forgotten run's row)
  host TEXT NOT NULL,
  created INTEGER NOT NULL,
  by TEXT,
  note TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS acks_by_run ON acks (run);
-- Whatever removes a version or a run (forget, a discarded half-imported run) removes what
-- anomaly detection recorded of it, so no path can leave rows behind.
CREATE TRIGGER IF NOT EXISTS version_signals_of_deleted AFTER DELETE ON versions
  BEGIN DELETE FROM version_signals WHERE version = old.id; END;
CREATE TRIGGER IF NOT EXISTS anomalies_of_deleted_run AFTER DELETE ON runs
  BEGIN DELETE FROM run_anomalies WHERE run = old.seq; DELETE FROM partition_stats WHERE run = old.seq; END;
`;

/** Schema 1: the index file's name in every blobs row, no blob_index_files. */
export const SCHEMA_1 = SCHEMA_2.replace('index_file INTEGER REFERENCES blob_index_files(id)', 'index_file TEXT').replace(
  /CREATE TABLE IF NOT EXISTS blob_index_files [^\n]*\n/,
  '',
);

export interface OldRun {
  id: string;
  group: string;
  started: number;
  status: RunStatus;
  finished: number;
  counters: RunCounters;
  /** Packs written by the run, each listed by an index file or not (null). */
  packs: { pack: PackRecord; index: string | null }[];
  records: VersionRecord[];
  failures: FailureRecord[];
}

/** The same writes as the schema 1/2 Catalog: runs, packs and blobs, then versions, one run after the other. */
export function writeOldCatalog(path: string, repositoryId: string, runs: readonly OldRun[], schema: 1 | 2): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(schema === 1 ? SCHEMA_1 : SCHEMA_2);
  const put = db.prepare('INSERT INTO catalog_info (name, value) VALUES (?, ?)');
  put.run('repository', repositoryId);
  put.run('schema', String(schema));
  const insertRun = db.prepare('INSERT INTO runs (id, grp, started, status, host, pid) VALUES (?, ?, ?, ?, ?, ?)');
  const finishRun = db.prepare('UPDATE runs SET finished = ?, status = ?, counters = ? WHERE seq = ?');
  const insertPack = db.prepare('INSERT INTO packs (name, size, run) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET size = excluded.size RETURNING id').pluck();
  const indexFileId = (name: string): number =>
    db.prepare('INSERT INTO blob_index_files (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id').pluck().get(name) as number;
  const insertBlob = db.prepare(
    'INSERT INTO blobs (hash, pack, offset, length, raw_length, flags, index_file) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING',
  );
  const addIndexFile = db.prepare('INSERT OR IGNORE INTO index_files (name) VALUES (?)');
  const bucketId = db.prepare('INSERT INTO buckets (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id').pluck();
  const objectId = db.prepare('INSERT INTO objects (bucket, key) VALUES (?, ?) ON CONFLICT (bucket, key) DO UPDATE SET key = excluded.key RETURNING id').pluck();
  const metaId = db.prepare('INSERT INTO metas (json) VALUES (?) ON CONFLICT (json) DO UPDATE SET json = excluded.json RETURNING id').pluck();
  const versionExists = db.prepare('SELECT 1 FROM versions WHERE object = ? AND version_id = ?');
  const insertVersion = db.prepare(
    `INSERT INTO versions (object, version_id, delete_marker, size, etag, last_modified, valid_from, storage_class, meta, run)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const blobRow = db.prepare('SELECT id FROM blobs WHERE hash = ?').pluck();
  const insertVersionBlob = db.prepare('INSERT INTO version_blobs (version, seq, blob) VALUES (?, ?, ?)');
  const updateLatest = db.prepare(
    `UPDATE objects SET latest = @version WHERE id = @object AND (latest IS NULL OR
       (SELECT valid_from FROM versions WHERE id = objects.latest) <= @validFrom)`,
  );
  const insertFailure = db.prepare('INSERT INTO failures (run, bucket, key, version_id, code, message) VALUES (?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (const run of runs) {
      const seq = Number(insertRun.run(run.id, run.group, run.started, 'running', 'backup-1', null).lastInsertRowid);
      for (const { pack, index } of run.packs) {
        const packRow = insertPack.get(pack.name, pack.size, seq) as number;
        const indexValue = index === null ? null : schema === 1 ? index : indexFileId(index);
        for (const b of pack.blobs) insertBlob.run(b.hash, packRow, b.offset, b.length, b.rawLength, b.flags, indexValue);
        if (index !== null) addIndexFile.run(index);
      }
      for (const r of run.records) {
        const object = objectId.get(bucketId.get(r.bucket), r.key) as number;
        if (r.versionId !== null && versionExists.get(object, r.versionId) !== undefined) continue;
        const meta = r.meta === undefined || Object.keys(r.meta).length === 0 ? null : (metaId.get(JSON.stringify(r.meta)) as number);
        const version = Number(
          insertVersion.run(object, r.versionId, r.deleteMarker ? 1 : 0, r.size, r.etag, r.lastModified, r.validFrom, r.storageClass ?? null, meta, seq).lastInsertRowid,
        );
        r.blobs.forEach((hex, i) => insertVersionBlob.run(version, i, blobRow.get(Buffer.from(hex, 'hex'))));
        updateLatest.run({ version, object, validFrom: r.validFrom });
      }
      for (const f of run.failures) insertFailure.run(seq, f.bucket, f.key, f.versionId, f.code, f.message);
      finishRun.run(run.finished, run.status, JSON.stringify(run.counters), seq);
    }
  })();
  return db;
}
