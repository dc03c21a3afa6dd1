import type BetterSqlite3 from 'better-sqlite3';

/**
 * Catalog schema, version 3. Integers for times (ms since epoch) and row ids keep rows small;
 * object metadata is deduplicated in `metas` because most objects share a content type and no
 * user metadata. `objects.latest` caches the newest version per key (by valid_from) so that
 * incremental backups compare a listing against the catalog with one indexed range scan.
 *
 * Version 2 referred to blob index files by row id (version 1 kept the 64-hex name in every
 * blobs row). Version 3 (about 75 bytes less per version, see bench/README.md): etags, storage
 * classes and last-modified times encoded (codec.ts); a version of one blob holds it in
 * `versions.blob` instead of a version_blobs row; blobs are found by a 4-byte prefix of their
 * id (`blobHashIs`) instead of a unique index holding all 32 bytes again. Version 4 (issue 19)
 * adds anomaly detection's verdicts: `run_anomalies`, `partition_stats`, `version_signals` (only
 * flagged versions have a row: a clean version costs nothing) and `acks`. Version 5 (issue 20)
 * adds `run_shards`: which runs are shard attempts of a run set (ordinary runs have no row).
 * Version 6 (issue 24) adds `drills`: restore drills recorded in the repository's drills/.
 * `acks.incident` and `forgotten_runs.manifest_kept` were added without a version (additive columns, see migrate.ts).
 */
export const SCHEMA_VERSION = 6;

export const SCHEMA = `
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
CREATE TABLE IF NOT EXISTS forgotten_runs (id TEXT PRIMARY KEY, forget TEXT NOT NULL, manifest_kept INTEGER) WITHOUT ROWID;
-- forgotten_runs.manifest_kept: 1 when the forget kept the run's manifest (its records hold
-- versions kept runs need: verify, prune and rebuild require it), 0 when it deleted it (or a later
-- forget released it: forgotten_runs.forget then names that one), 2 when it was missing and
-- catalog rebuild --accept-damage gave its versions up, NULL when its document does not say
-- (written by an earlier lakeguard). Added without a version.
-- Kept manifests (manifest_kept = 1, or NULL when an earlier lakeguard's forget kept it), by a number, and which catalogued versions only their
-- records hold (versions forget moved from their run to a later one): a later forget deletes a
-- kept manifest once none is left (forget.ts, manifestsReleased). Tables added without a version.
CREATE TABLE IF NOT EXISTS kept_manifests (id INTEGER PRIMARY KEY, run TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS kept_versions (version INTEGER PRIMARY KEY, manifest INTEGER NOT NULL);
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
, incident INTEGER NOT NULL DEFAULT 0, grp TEXT, run_started INTEGER) WITHOUT ROWID;
-- acks.incident: 1 when acknowledged as an incident (runs ack --incident), not as expected changes.
-- acks.grp, acks.run_started: the acknowledged run's group (NULL: unknown) and start (ms), kept
-- when a forget removes the run (anomalies.ts incidentCarrier).
-- Written as ALTER TABLE ADD COLUMN leaves them in a migrated catalog, so both read the same.
CREATE INDEX IF NOT EXISTS acks_by_run ON acks (run);
-- Whatever removes a version or a run (forget, a discarded half-imported run) removes what
-- anomaly detection recorded of it, so no path can leave rows behind.
CREATE TRIGGER IF NOT EXISTS version_signals_of_deleted AFTER DELETE ON versions
  BEGIN DELETE FROM version_signals WHERE version = old.id; END;
CREATE TRIGGER IF NOT EXISTS anomalies_of_deleted_run AFTER DELETE ON runs
  BEGIN DELETE FROM run_anomalies WHERE run = old.seq; DELETE FROM partition_stats WHERE run = old.seq; END;

-- Run sets (schema 5; docs/catalog.md "Run sets"): a shard attempt's membership, from its
-- manifest's "shard" field. Ordinary runs have no row, so they cost nothing.
CREATE TABLE IF NOT EXISTS run_shards (
  run INTEGER PRIMARY KEY REFERENCES runs(seq),
  set_run TEXT NOT NULL, -- the group's run-set run id (the plan's): the id users see for the run set
  set_name TEXT NOT NULL,
  shard_index INTEGER NOT NULL,
  shard_count INTEGER NOT NULL,
  shard_range TEXT NOT NULL -- JSON {after?, upTo?} (types.ts ShardRange)
);
CREATE INDEX IF NOT EXISTS run_shards_by_set ON run_shards (set_run, shard_index);
CREATE TRIGGER IF NOT EXISTS shard_of_deleted_run AFTER DELETE ON runs
  BEGIN DELETE FROM run_shards WHERE run = old.seq; END;

-- Runs of this host that ended (failed or interrupted) without their manifest: the repository
-- refused to store it (access denied, Object Lock) or was unreachable. The next backup on this
-- host writes it, as recoverOrphanedRuns does for a dead process's run. Added without a schema
-- version (an additive table: earlier lakeguard ignores it; created on open).
CREATE TABLE IF NOT EXISTS unrecorded_runs (run INTEGER PRIMARY KEY, error TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS unrecorded_of_deleted_run AFTER DELETE ON runs
  BEGIN DELETE FROM unrecorded_runs WHERE run = old.seq; END;

-- Runs 'lakeguard copy' brought here (docs/copy.md), from manifests' "copiedFrom": which source
-- run each copy is. Kept when forget removes the copy, so copy does not bring it again. Added
-- without a schema version (an additive table: earlier lakeguard ignores it; created on open).
CREATE TABLE IF NOT EXISTS copied_runs (
  source_repository TEXT NOT NULL,
  source_run TEXT NOT NULL,
  run TEXT NOT NULL, -- the copy's run id in this repository
  PRIMARY KEY (source_repository, source_run)
) WITHOUT ROWID;

-- Restore drills (schema 6; drills/<name>, docs/drill.md): one row per drill document.
CREATE TABLE IF NOT EXISTS drills (
  name TEXT PRIMARY KEY,
  created INTEGER NOT NULL,
  scope TEXT NOT NULL,
  ok INTEGER NOT NULL,
  doc TEXT NOT NULL -- the document's JSON (DrillDocument, drills.ts)
) WITHOUT ROWID;
`;

/**
 * SQL: blob row `b` has the id `hash` (a column or a named parameter). The prefix term is what
 * lets SQLite seek blobs_by_hash, so it must be the index's expression, substr(hash, 1, 4).
 */
export function blobHashIs(b: string, hash: string): string {
  return `substr(${b}.hash, 1, 4) = substr(${hash}, 1, 4) AND ${b}.hash = ${hash}`;
}

/** SQL: a catalogued version refers to blob row `b` (as its one blob, or in version_blobs). */
export function blobReferencedSql(b: string): string {
  return `(EXISTS (SELECT 1 FROM versions rv WHERE rv.blob = ${b}.id) OR EXISTS (SELECT 1 FROM version_blobs rvb WHERE rvb.blob = ${b}.id))`;
}

/**
 * Indexes that only some queries need, created by the first query that needs one instead of by
 * SCHEMA: objects_by_key holds every key a third time (see docs/catalog.md, "What one object
 * version costs") and takes a few seconds to build over a million objects, which only catalogs
 * that `find` searches across buckets should pay. No schema version counts them: a catalog with
 * or without them is the same schema, and an older lakeguard ignores them.
 */
const ON_DEMAND_INDEXES = {
  // find without --bucket: a key range across every bucket.
  objects_by_key: 'CREATE INDEX IF NOT EXISTS objects_by_key ON objects (key)',
  // calendar: the runs of a month.
  runs_by_started: 'CREATE INDEX IF NOT EXISTS runs_by_started ON runs (started)',
} as const;

export type OnDemandIndex = keyof typeof ON_DEMAND_INDEXES;

/** Per connection, the on-demand indexes known to exist (so each is created at most once). */
const ensured = new WeakMap<BetterSqlite3.Database, Set<OnDemandIndex>>();

/** Creates an on-demand index unless present; false when it cannot be (then the query scans more). */
export function ensureIndex(db: BetterSqlite3.Database, name: OnDemandIndex): boolean {
  let done = ensured.get(db);
  if (done === undefined) ensured.set(db, (done = new Set()));
  if (!done.has(name)) {
    try {
      db.exec(ON_DEMAND_INDEXES[name]);
      done.add(name);
    } catch {
      // A backup holding the write lock past busy_timeout, or a read-only file.
      return false;
    }
  }
  return true;
}
