/**
 * Catalog side of `catalog sync` (src/engine/sync.ts): where the last sync stopped, who is
 * syncing this file now, a run whose import did not finish, and applying a prune document.
 * Everything here is small transactions on catalog_info and the blob tables.
 */
import type { Catalog, PackRecord } from './catalog.js';
import { isFileBusy, sqlite } from './connection.js';
import { blobHashIs, blobReferencedSql } from './schema.js';
import { scopeHoldsKey, setCatalogScope, type CatalogPrefix } from './scope.js';
import { upperBound } from './key-range.js';
import { LakeguardError } from '../errors.js';

/** catalog_info names. */
const MARKER = 'sync_after';
const OWNER = 'sync_owner';
const IMPORTING = 'sync_importing';
const INCOMPLETE = 'sync_incomplete';
/** Set by `catalog sync --all`: the catalog is meant to hold the whole repository, also while the repository holds no run yet. */
export const WHOLE_BY_REQUEST = 'whole_by_request';

function info(catalog: Catalog, name: string): string | undefined {
  return sqlite(catalog).prepare('SELECT value FROM catalog_info WHERE name = ?').pluck().get(name) as string | undefined;
}

function setInfo(catalog: Catalog, name: string, value: string | null): void {
  if (value === null) sqlite(catalog).prepare('DELETE FROM catalog_info WHERE name = ?').run(name);
  else sqlite(catalog).prepare('INSERT INTO catalog_info (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value').run(name, value);
}

/**
 * The listing marker: every `runs/` and `forgets/` object named at or before it has been
 * applied, and none can appear any more (see docs/catalog.md "Sync"). Null: never synced.
 */
export function syncMarker(catalog: Catalog): string | null {
  return info(catalog, MARKER) ?? null;
}

/** Moves the marker forward (never back). */
export function advanceSyncMarker(catalog: Catalog, marker: string): void {
  catalog.transaction(() => {
    const old = info(catalog, MARKER);
    if (old === undefined || old < marker) setInfo(catalog, MARKER, marker);
  });
}

/**
 * Takes the right to sync this catalog file (one connection at a time): granted when nobody
 * holds it or its holder's process is gone. `owner` is `<pid>:<random>`, so two connections
 * of one process are told apart too. Returns the live holder otherwise.
 */
export function takeSyncLease(catalog: Catalog, owner: string, isAlive: (pid: number) => boolean): string | null {
  return catalog.transaction(() => {
    const holder = info(catalog, OWNER);
    const pid = Number(holder?.split(':')[0]);
    if (holder !== undefined && holder !== owner && Number.isInteger(pid) && pid > 0 && isAlive(pid)) return holder;
    setInfo(catalog, OWNER, owner);
    return null;
  });
}

export function releaseSyncLease(catalog: Catalog, owner: string): void {
  catalog.transaction(() => {
    if (info(catalog, OWNER) === owner) setInfo(catalog, OWNER, null);
  });
}

/** The run being imported (set before its first row, cleared after its last). */
export function importingRun(catalog: Catalog): string | null {
  return info(catalog, IMPORTING) ?? null;
}

export function setImportingRun(catalog: Catalog, id: string | null): void {
  catalog.transaction(() => setInfo(catalog, IMPORTING, id));
}

/**
 * Removes a run whose import stopped half-way (its versions, failures and row), so that it can
 * be imported again whole. Objects whose newest version was one of its versions get their
 * newest remaining one back.
 */
export function discardRun(catalog: Catalog, id: string): void {
  const db = sqlite(catalog);
  catalog.transaction(() => {
    const seq = db.prepare('SELECT seq FROM runs WHERE id = ?').pluck().get(id) as number | undefined;
    if (seq !== undefined) {
      dropRunRecords(catalog, seq);
      db.prepare('DELETE FROM runs WHERE seq = ?').run(seq);
    }
    setInfo(catalog, IMPORTING, null);
  });
}

/**
 * Removes what run `seq` recorded (versions, failures, anomaly verdict and statistics) but not
 * the run: a half-imported run (discardRun), or a shard attempt superseded by another complete
 * attempt of its index (run-sets.ts). Objects whose newest version was one of its versions get
 * their newest remaining one back. One transaction.
 */
export function dropRunRecords(catalog: Catalog, seq: number): void {
  const db = sqlite(catalog);
  catalog.transaction(() => {
    db.prepare(
      `UPDATE objects SET latest = (SELECT v.id FROM versions v WHERE v.object = objects.id AND v.run <> @seq ORDER BY v.valid_from DESC, v.id DESC LIMIT 1)
       WHERE latest IN (SELECT id FROM versions WHERE run = @seq)`,
    ).run({ seq });
    db.prepare('DELETE FROM version_blobs WHERE version IN (SELECT id FROM versions WHERE run = ?)').run(seq);
    db.prepare('DELETE FROM kept_versions WHERE version IN (SELECT id FROM versions WHERE run = ?)').run(seq);
    db.prepare('DELETE FROM versions WHERE run = ?').run(seq);
    db.prepare('DELETE FROM failures WHERE run = ?').run(seq);
    db.prepare('DELETE FROM run_anomalies WHERE run = ?').run(seq);
    db.prepare('DELETE FROM partition_stats WHERE run = ?').run(seq);
  });
}

/**
 * Every table whose rows a catalog learns from the repository, those that refer to others first. Not
 * `pending_deletions`: a forget's own retries, which only a whole catalog has (forget refuses a
 * scoped one), and which a reset may not lose.
 */
const LEARNED_TABLES = [
  'kept_versions', 'kept_manifests', 'version_signals', 'version_blobs', 'versions', 'failures', 'run_anomalies', 'partition_stats', 'run_shards', 'runs', 'dropped_versions',
  'objects', 'buckets', 'metas', 'blobs', 'packs', 'blob_index_files', 'index_files', 'forgotten_runs', 'forgets', 'acks', 'drills',
] as const;

/**
 * Empties the catalog of everything it learned from the repository and records its new scope
 * (null: the whole repository), in one transaction: the next sync starts from the beginning
 * (no marker) and imports what the scope holds. A scope is never wider than what a completed
 * sync imported for it: until the next sync ends, there is no marker, and every command syncs
 * first (docs/catalog.md "Scoped catalogs"). `onDemand`: see setCatalogScope (absent: as it was).
 */
export function resetCatalogForScope(catalog: Catalog, scope: readonly CatalogPrefix[] | null, onDemand?: boolean): void {
  const db = sqlite(catalog);
  const reset = (): void => {
    catalog.transaction(() => {
      for (const table of LEARNED_TABLES) db.prepare(`DELETE FROM ${table}`).run();
      for (const name of [MARKER, IMPORTING, INCOMPLETE]) setInfo(catalog, name, null);
      if (scope !== null) setInfo(catalog, WHOLE_BY_REQUEST, null);
      setCatalogScope(catalog, scope, onDemand);
    });
  };
  // Another process answering from this file (a `serve`, a long restore) would go on from an
  // emptied catalog, and then from runs numbered anew: refused while one has it open.
  if (catalogHoldsNothing(catalog)) reset();
  else aloneOnFile(catalog, reset);
  catalog.forgetCachedRowIds();
}

/** A change of scope refused because another process has the catalog file open. */
export class CatalogInUseError extends LakeguardError {}

/** How long a change that needs the catalog file alone waits for another connection to close (one that is closing holds it a moment). */
const ALONE_WAIT_MS = 1000;

/**
 * Runs `fn` holding the catalog file exclusively: a connection of another process that has it
 * open (in WAL mode an open connection keeps a shared lock) makes this fail within a second,
 * with a one-line error naming the file. The lock is released before returning.
 */
function aloneOnFile(catalog: Catalog, fn: () => void): void {
  const release = takeFileAlone(catalog);
  try {
    fn();
  } finally {
    release();
  }
}

/**
 * Fails (CatalogInUseError) when another process has the catalog file open: before a change that
 * removes keys (a shard range resized in place), which then runs as one transaction under the
 * sync lease, so a process that opens the file meanwhile reads the old state until it commits.
 */
export function requireAloneOnFile(catalog: Catalog): void {
  aloneOnFile(catalog, () => {});
}

/** Takes the catalog file exclusively (CatalogInUseError when another process has it open); returns what gives it back. */
function takeFileAlone(catalog: Catalog): () => void {
  const db = sqlite(catalog);
  const timeout = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma(`busy_timeout = ${ALONE_WAIT_MS}`);
  db.pragma('locking_mode = EXCLUSIVE');
  const release = (): void => {
    // Back to shared locking: the exclusive lock goes at the next access of the file.
    db.pragma('locking_mode = NORMAL');
    db.prepare('SELECT 1 FROM catalog_info LIMIT 1').get();
    db.pragma(`busy_timeout = ${timeout}`);
  };
  try {
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
  } catch (err) {
    release();
    if (!isFileBusy(err)) throw err;
    throw new CatalogInUseError(`catalog ${catalog.path} is in use by another lakeguard process, and changing its scope empties it first`, {
      hint: 'let that process finish (or stop it: a `serve`, a restore), then run `lakeguard catalog sync` with --prefix or --all again',
    });
  }
  return release;
}

/** What a shard catalog dropped when its range shrank or moved (dropKeysOutside). */
export interface DroppedOutside {
  objects: number;
  versions: number;
  failures: number;
  blobs: number;
  packs: number;
}

/**
 * A shard range resized in place (src/engine/sync.ts Sync.resize), the part that removes: every
 * object in `removed` that `scope` (the new range) does not hold, with its versions, their blob
 * lists and signals, and its dropped versions; the failures of keys outside `scope`; then the
 * blobs only those versions used, and the record blobs `unusedRecords` names (a run's record
 * blobs whose key range is now outside the scope), unless a remaining version uses them or they
 * are `keptRecords` or listed by one of `keptIndexFiles` (a prune's index files, which a fresh
 * sync reads whole); then the packs left without a blob, and buckets nothing names. Row by row
 * what a fresh sync of `scope` would not hold, so call it inside the resize's transaction.
 */
export function dropKeysOutside(
  catalog: Catalog,
  removed: readonly CatalogPrefix[],
  scope: readonly CatalogPrefix[],
  unusedRecords: readonly string[],
  keptRecords: ReadonlySet<string>,
  keptIndexFiles: readonly string[],
): DroppedOutside {
  const db = sqlite(catalog);
  const dropped: DroppedOutside = { objects: 0, versions: 0, failures: 0, blobs: 0, packs: 0 };
  db.exec(
    'CREATE TEMP TABLE IF NOT EXISTS resize_objects (id INTEGER PRIMARY KEY); CREATE TEMP TABLE IF NOT EXISTS resize_blobs (id INTEGER PRIMARY KEY); CREATE TEMP TABLE IF NOT EXISTS resize_packs (id INTEGER PRIMARY KEY)',
  );
  db.exec('DELETE FROM resize_objects; DELETE FROM resize_blobs; DELETE FROM resize_packs');
  for (const part of removed) {
    // An indexed range of objects (bucket, key): BINARY collation is S3's key order.
    const upper = upperBound(part.prefix);
    const where = ['o.bucket = (SELECT id FROM buckets WHERE name = @bucket)', 'o.key >= @prefix'];
    if (upper !== null) where.push('o.key < @upper');
    if (part.after !== undefined) where.push('o.key > @after');
    if (part.upTo !== undefined) where.push('o.key <= @upTo');
    db.prepare(`INSERT OR IGNORE INTO resize_objects (id) SELECT o.id FROM objects o WHERE ${where.join(' AND ')}`).run({
      bucket: part.bucket,
      prefix: part.prefix,
      ...(upper === null ? {} : { upper }),
      ...(part.after === undefined ? {} : { after: part.after }),
      ...(part.upTo === undefined ? {} : { upTo: part.upTo }),
    });
  }
  // `removed` may be wider than the difference (scopeDifference): keys the new range holds stay.
  // Read a page at a time (a range that moves far drops millions of objects), deleting between pages.
  const page = db.prepare('SELECT r.id AS id, b.name AS bucket, o.key AS key FROM resize_objects r JOIN objects o ON o.id = r.id JOIN buckets b ON b.id = o.bucket WHERE r.id > ? ORDER BY r.id LIMIT 10000');
  const keep = db.prepare('DELETE FROM resize_objects WHERE id = ?');
  for (let after = 0; ; ) {
    const rows = page.all(after) as { id: number; bucket: string; key: string }[];
    if (rows.length === 0) break;
    for (const row of rows) if (scopeHoldsKey(scope, row.bucket, row.key)) keep.run(row.id);
    after = rows.at(-1)!.id;
  }
  const ofObjects = 'SELECT id FROM versions WHERE object IN (SELECT id FROM resize_objects)';
  db.exec(`INSERT OR IGNORE INTO resize_blobs (id) SELECT blob FROM versions WHERE blob IS NOT NULL AND object IN (SELECT id FROM resize_objects)`);
  db.exec(`INSERT OR IGNORE INTO resize_blobs (id) SELECT blob FROM version_blobs WHERE version IN (${ofObjects})`);
  const blobId = db.prepare(`SELECT id FROM blobs WHERE ${blobHashIs('blobs', '@hash')}`).pluck();
  const candidate = db.prepare('INSERT OR IGNORE INTO resize_blobs (id) VALUES (?)');
  for (const hex of unusedRecords) {
    const id = blobId.get({ hash: Buffer.from(hex, 'hex') }) as number | undefined;
    if (id !== undefined) candidate.run(id);
  }
  const unmark = db.prepare('DELETE FROM resize_blobs WHERE id = ?');
  for (const hex of keptRecords) {
    const id = blobId.get({ hash: Buffer.from(hex, 'hex') }) as number | undefined;
    if (id !== undefined) unmark.run(id);
  }
  db.exec(`DELETE FROM version_blobs WHERE version IN (${ofObjects})`);
  dropped.versions = db.prepare('DELETE FROM versions WHERE object IN (SELECT id FROM resize_objects)').run().changes;
  db.exec('DELETE FROM dropped_versions WHERE object IN (SELECT id FROM resize_objects)');
  dropped.objects = db.prepare('DELETE FROM objects WHERE id IN (SELECT id FROM resize_objects)').run().changes;
  // Failures a page at a time too (a far move drops many).
  const failurePage = db.prepare('SELECT rowid AS id, bucket, key FROM failures WHERE rowid > ? ORDER BY rowid LIMIT 10000');
  const dropFailure = db.prepare('DELETE FROM failures WHERE rowid = ?');
  for (let after = 0; ; ) {
    const rows = failurePage.all(after) as { id: number; bucket: string; key: string }[];
    if (rows.length === 0) break;
    for (const f of rows) if (!scopeHoldsKey(scope, f.bucket, f.key)) dropped.failures += dropFailure.run(f.id).changes;
    after = rows.at(-1)!.id;
  }
  // The blobs that go, and their packs, stay in SQL: a far move drops millions.
  db.prepare(
    `DELETE FROM resize_blobs WHERE id IN (SELECT blobs.id FROM blobs WHERE blobs.id IN (SELECT id FROM resize_blobs) AND (${blobReferencedSql('blobs')}
       OR blobs.index_file IN (SELECT f.id FROM blob_index_files f WHERE f.name IN (SELECT value FROM json_each(@kept)))))`,
  ).run({ kept: JSON.stringify(keptIndexFiles) });
  db.exec('INSERT OR IGNORE INTO resize_packs (id) SELECT pack FROM blobs WHERE id IN (SELECT id FROM resize_blobs)');
  dropped.blobs = db.prepare('DELETE FROM blobs WHERE id IN (SELECT id FROM resize_blobs)').run().changes;
  dropped.packs = db.prepare('DELETE FROM packs WHERE id IN (SELECT id FROM resize_packs) AND NOT EXISTS (SELECT 1 FROM blobs WHERE pack = packs.id)').run().changes;
  db.exec('DELETE FROM buckets WHERE NOT EXISTS (SELECT 1 FROM objects WHERE bucket = buckets.id) AND NOT EXISTS (SELECT 1 FROM partition_stats WHERE bucket = buckets.id)');
  db.exec('DELETE FROM resize_objects; DELETE FROM resize_blobs; DELETE FROM resize_packs');
  return dropped;
}

/** Whether the catalog has learned nothing from its repository yet (a fresh host): no run, forget or acknowledgement. */
export function catalogHoldsNothing(catalog: Catalog): boolean {
  return sqlite(catalog).prepare('SELECT NOT EXISTS (SELECT 1 FROM runs) AND NOT EXISTS (SELECT 1 FROM forgets) AND NOT EXISTS (SELECT 1 FROM acks)').pluck().get() === 1;
}

/** Records that `catalog sync --all` made this catalog whole on purpose (see catalogIsFresh). */
export function markWholeByRequest(catalog: Catalog): void {
  setInfo(catalog, WHOLE_BY_REQUEST, '1');
}

/** Whether `catalog sync --all` made this catalog whole on purpose. */
export function wholeByRequest(catalog: Catalog): boolean {
  return info(catalog, WHOLE_BY_REQUEST) !== undefined;
}

/**
 * Whether a catalog is fresh: it holds nothing of the repository, and nobody made it whole with
 * `catalog sync --all` (on a repository with no run yet, that leaves it as empty as a new file).
 * A fresh catalog may be scoped by a shard or `--prefix`; any other one is never narrowed.
 */
export function catalogIsFresh(catalog: Catalog): boolean {
  return catalogHoldsNothing(catalog) && !wholeByRequest(catalog);
}

/**
 * The index file (a `blob_index_files` name only, never in `index_files`, which lists the index
 * files read) of blobs a scoped catalog located from run records: not a repository object name
 * (those are hex), so nothing reads, extends or deletes it.
 */
export const LOCATED_BY_RECORDS = '(located by run records)';

/**
 * Records pack locations from an index file a prune wrote: a blob already catalogued in one of
 * `movingFrom` (packs a prune deletes) moves to its new location; other blobs are added as
 * `insertPack` does (a blob located elsewhere keeps that location). One transaction.
 */
export function relocatePacks(catalog: Catalog, packs: readonly PackRecord[], indexFile: string, movingFrom: ReadonlySet<string>): void {
  const db = sqlite(catalog);
  const from = db.prepare('SELECT id FROM packs WHERE name = ?').pluck();
  catalog.transaction(() => {
    const oldIds = [...movingFrom].map((name) => from.get(name) as number | undefined).filter((id): id is number => id !== undefined);
    const move = db.prepare(
      `UPDATE blobs SET pack = @pack, offset = @offset, length = @length, raw_length = @rawLength, flags = @flags,
         index_file = (SELECT id FROM blob_index_files WHERE name = @indexFile)
       WHERE ${blobHashIs('blobs', '@hash')} AND pack IN (SELECT value FROM json_each(@old))`,
    );
    const listed = db.prepare(
      `UPDATE blobs SET index_file = (SELECT id FROM blob_index_files WHERE name = @indexFile)
       WHERE ${blobHashIs('blobs', '@hash')} AND pack = @pack AND offset = @offset AND index_file = (SELECT id FROM blob_index_files WHERE name = '${LOCATED_BY_RECORDS}')`,
    );
    for (const p of packs) {
      catalog.insertPack({ ...p, blobs: [] }, null, indexFile);
      const pack = from.get(p.name) as number;
      const old = JSON.stringify(oldIds);
      const rest: PackRecord['blobs'] = [];
      for (const b of p.blobs) {
        if (oldIds.length === 0 || move.run({ ...b, pack, indexFile, old }).changes === 0) rest.push(b);
      }
      catalog.insertPack({ ...p, blobs: rest }, null, indexFile);
      // A blob a scoped catalog located from run records, there: this index file lists it now, as a fresh sync finds it.
      for (const b of rest) listed.run({ hash: b.hash, pack, offset: b.offset, indexFile });
    }
    catalog.addIndexFile(indexFile);
  });
}

/**
 * Applies the deletions of a prune document: blob rows still located in a deleted pack are
 * removed unless a catalogued version needs them (those are returned: their data is gone),
 * the pack rows with them, and the deleted index files are forgotten. Versions of this host's
 * unfinished runs (a killed backup's, or one whose manifest the repository refused:
 * `unrecorded_runs`) whose content was in a deleted pack that no index file
 * listed are dropped first, and counted in `lost`: no other host knew them, the prune rightly
 * took the pack for garbage, and recording them later would name content that is gone (the
 * next backup copies those objects again). Marks the document applied. One transaction.
 */
export function dropPrunedPacks(
  catalog: Catalog,
  name: string,
  created: number,
  packs: readonly string[],
  indexFiles: readonly string[],
  lost: { versions: number } = { versions: 0 },
): { pack: string; blobs: number }[] {
  const db = sqlite(catalog);
  const packId = db.prepare('SELECT id FROM packs WHERE name = ?').pluck();
  const dropUnused = db.prepare(`DELETE FROM blobs WHERE pack = ? AND NOT ${blobReferencedSql('blobs')}`);
  const left = db.prepare('SELECT count(*) FROM blobs WHERE pack = ?').pluck();
  const dropPack = db.prepare('DELETE FROM packs WHERE id = ?');
  const dropIndex = db.prepare('DELETE FROM index_files WHERE name = ?');
  const unlistedVersions = db.prepare(
    `SELECT v.id AS id, v.object AS object FROM versions v JOIN runs r ON r.seq = v.run
     WHERE (r.status = 'running' OR r.seq IN (SELECT run FROM unrecorded_runs)) AND (
       v.blob IN (SELECT id FROM blobs WHERE pack = @pack AND index_file IS NULL)
       OR v.id IN (SELECT vb.version FROM version_blobs vb JOIN blobs b ON b.id = vb.blob WHERE b.pack = @pack AND b.index_file IS NULL))`,
  );
  const dropSignals = db.prepare('DELETE FROM version_signals WHERE version = ?');
  const dropVersionBlobs = db.prepare('DELETE FROM version_blobs WHERE version = ?');
  const dropVersion = db.prepare('DELETE FROM versions WHERE id = ?');
  const resetLatest = db.prepare(
    'UPDATE objects SET latest = (SELECT id FROM versions WHERE object = objects.id ORDER BY valid_from DESC, id DESC LIMIT 1) WHERE id = ? AND (latest IS NULL OR latest = ?)',
  );
  return catalog.transaction(() => {
    const stranded: { pack: string; blobs: number }[] = [];
    for (const pack of packs) {
      const id = packId.get(pack) as number | undefined;
      if (id === undefined) continue;
      for (const v of unlistedVersions.all({ pack: id }) as { id: number; object: number }[]) {
        dropSignals.run(v.id);
        dropVersionBlobs.run(v.id);
        dropVersion.run(v.id);
        resetLatest.run(v.object, v.id);
        lost.versions++;
      }
      dropUnused.run(id);
      const n = left.get(id) as number;
      if (n === 0) dropPack.run(id);
      else stranded.push({ pack, blobs: n });
    }
    for (const file of indexFiles) dropIndex.run(file);
    markDocumentApplied(catalog, name, created);
    return stranded;
  });
}

/** Records a forgets/ document as applied (forget documents do this in applyForgetDocument). */
export function markDocumentApplied(catalog: Catalog, name: string, created: number): void {
  sqlite(catalog).prepare('INSERT OR IGNORE INTO forgets (name, created) VALUES (?, ?)').run(name, created);
}

/**
 * forgets/<time>-<hex>-prune: what a prune replaced (docs/repository-format.md "forgets/").
 * Other hosts apply it to their catalogs: blobs move to the new packs, deleted ones go.
 */
export interface PruneDocument {
  version: 1;
  kind: 'prune';
  id: string;
  created: string;
  host: string;
  /** Index files the prune wrote (they locate every blob it moved). */
  indexFilesAdded: string[];
  indexFilesRemoved: string[];
  packsRemoved: string[];
}

export function isPruneDocument(doc: unknown): doc is PruneDocument {
  return typeof doc === 'object' && doc !== null && (doc as { kind?: unknown }).kind === 'prune';
}

/** A run imported without some of its versions (their blobs are in no index file). */
export interface IncompleteRun {
  run: string;
  /** Versions whose blobs are in no index file. */
  versions: number;
  /** Record blobs that could not be read (the versions they held are unknown). */
  recordBlobs: number;
  /**
   * A forgotten run whose manifest the forget document named here kept (for versions kept runs
   * still need) was missing when this catalog applied it: those versions are not in it at all.
   */
  keptBy?: string;
}

/** What a catalog lacks because of an incomplete run, as a clause after `catalog <path>`. */
export function incompleteClause(run: IncompleteRun): string {
  return run.keptBy !== undefined
    ? `lacks the versions only run ${run.run}'s manifest holds (a sync applied forget ${run.keptBy} while it was missing)`
    : `was imported without part of run ${run.run}`;
}

/** Runs a sync imported incomplete: every later sync says so again, until a rebuild replaces the catalog. */
export function incompleteRuns(catalog: Catalog): IncompleteRun[] {
  const value = info(catalog, INCOMPLETE);
  return value === undefined ? [] : (JSON.parse(value) as IncompleteRun[]);
}

/**
 * Lists `run` as incomplete; a run listed already (a widening found more of it missing) keeps its
 * one entry, with the counts added. Returns the entry as listed now.
 */
export function addIncompleteRun(catalog: Catalog, run: IncompleteRun): IncompleteRun {
  return catalog.transaction(() => {
    const runs = incompleteRuns(catalog);
    const i = runs.findIndex((r) => r.run === run.run);
    const entry = i < 0 ? run : { ...runs[i]!, versions: runs[i]!.versions + run.versions, recordBlobs: runs[i]!.recordBlobs + run.recordBlobs };
    if (i < 0) runs.push(entry);
    else runs[i] = entry;
    setInfo(catalog, INCOMPLETE, JSON.stringify(runs));
    return entry;
  });
}

/** The ids of the runs this catalog holds (not the forgotten ones). */
export function runRowIds(catalog: Catalog): string[] {
  return sqlite(catalog).prepare('SELECT id FROM runs').pluck().all() as string[];
}

/** The row number of run `id` in this catalog, or undefined when it holds no such run. */
export function runSeqOf(catalog: Catalog, id: string): number | undefined {
  return sqlite(catalog).prepare('SELECT seq FROM runs WHERE id = ?').pluck().get(id) as number | undefined;
}

/**
 * Runs `fn` (which awaits reads from the repository) in one write transaction on the catalog
 * file: everything it writes commits together, or, when it throws (or the process dies), none of
 * it does. A widening of a scoped catalog (src/engine/sync.ts) records its new scope inside, so a
 * scope never claims keys the catalog does not hold. Other connections read the state before it
 * meanwhile (WAL); a writer among them waits (their syncs wait for the lease anyway).
 */
export async function inOneTransaction(catalog: Catalog, fn: () => Promise<void>): Promise<void> {
  const db = sqlite(catalog);
  db.exec('BEGIN IMMEDIATE');
  try {
    await fn();
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    catalog.forgetCachedRowIds();
    throw err;
  }
}
