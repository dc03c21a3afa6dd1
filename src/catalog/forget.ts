/**
 * Catalog side of `forget`: reading versions object by object for the planner, and applying a
 * forget document. The same `applyForgetDocument` runs after `forget` writes a document and
 * when `catalog rebuild` replays the repository's documents, so both reach the same catalog.
 */
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';
import { recordCopiedRun } from './copied-runs.js';
import { catalogScope, scopeHoldsKey } from './scope.js';

/** A version dropped by forget, as named in a forget document: enough to find it again. */
export type DroppedVersion = [bucket: string, key: string, versionId: string | null, validFrom: number, deleteMarker: 0 | 1];

export interface ForgetDocument {
  version: 1;
  /** Shared by every part of one forget operation. */
  id: string;
  part: number;
  parts: number;
  created: string;
  host: string;
  /** Runs removed as points in time. Every part lists all of them: each part is self-consistent. */
  forgotten: string[];
  /**
   * Of the forgotten runs, those whose manifests this forget keeps: their records hold versions
   * kept runs still need (the catalog hands those versions to the next kept run, whose manifest
   * does not list them). verify, prune and catalog rebuild require these manifests; the others
   * were deleted. Absent in documents of earlier lakeguard (then nobody knows which were kept).
   */
  manifestsKept?: string[];
  /**
   * Manifests earlier forgets kept that this one deletes: no version their records hold is kept
   * any more. Readers treat them as forget-deleted from here on. Absent when none.
   */
  manifestsReleased?: string[];
  dropped: DroppedVersion[];
  /**
   * Of the forgotten runs, those that were copies (`lakeguard copy`): which run of which
   * repository each was copied from, so a catalog that never saw their manifests (deleted by
   * this forget) still knows those runs were copied here and copy does not bring them again.
   * Absent when none was (and in documents of earlier lakeguard).
   */
  copiedFrom?: { run: string; repository: string; source: string }[];
}

export interface PlanVersion {
  id: number;
  run: number;
  validFrom: number;
  size: number;
  /** kept_manifests.id of the forgotten run whose kept manifest records it, or null: its run's own. */
  keptBy: number | null;
}

export interface PlanObject {
  id: number;
  bucket: string;
  key: string;
  latest: number | null;
  /** Oldest first, by (valid_from, id): the order in which state queries pick the newest. */
  versions: PlanVersion[];
}

/**
 * Runs whose manifests these forget documents deleted (run id → the document): forgotten and not
 * kept. A manifest of one that is in the repository again (restored from an older copy, or left
 * by a forget that stopped before deleting it) is not imported: its records may be pruned, and the
 * run is forgotten anyway. Documents of earlier lakeguard do not say which they kept: none counted.
 */
export function manifestsDeletedBy(docs: Iterable<[string, ForgetDocument]>): Map<string, string> {
  const deleted = new Map<string, string>();
  for (const [name, doc] of docs) {
    for (const id of Array.isArray(doc.manifestsReleased) ? doc.manifestsReleased : []) if (!deleted.has(id)) deleted.set(id, name);
    if (!Array.isArray(doc.manifestsKept) || !Array.isArray(doc.forgotten)) continue;
    const kept = new Set(doc.manifestsKept);
    for (const id of doc.forgotten) if (!kept.has(id) && !deleted.has(id)) deleted.set(id, name);
  }
  return deleted;
}

/** Kept manifests (of forgotten runs; also those an earlier lakeguard's forget kept without saying so) with how many catalogued versions only their records hold. */
export function keptManifestCounts(catalog: Catalog): { id: number; run: string; versions: number }[] {
  return sqlite(catalog)
    .prepare(
      `SELECT m.id AS id, m.run AS run, coalesce(k.n, 0) AS versions FROM kept_manifests m JOIN forgotten_runs f ON f.id = m.run
       LEFT JOIN (SELECT manifest, count(*) AS n FROM kept_versions GROUP BY manifest) k ON k.manifest = m.id
       WHERE f.manifest_kept = 1 OR f.manifest_kept IS NULL ORDER BY m.run`,
    )
    .all() as { id: number; run: string; versions: number }[];
}

/** Per run, the versions its own manifest records (not those moved to it from a forgotten run whose manifest was kept). */
export function ownVersionCounts(catalog: Catalog): Map<number, number> {
  const rows = sqlite(catalog)
    .prepare('SELECT run, count(*) AS n FROM versions v WHERE NOT EXISTS (SELECT 1 FROM kept_versions k WHERE k.version = v.id) GROUP BY run')
    .all() as { run: number; n: number }[];
  return new Map(rows.map((r) => [r.run, r.n]));
}

/**
 * What forgotten_runs.manifest_kept says of a forgotten run's manifest: `kept` (required),
 * `deleted` (by a forget, or released by a later one: nothing needs it), `given-up` (it was
 * missing, and `catalog rebuild --accept-damage` installed this catalog without its versions).
 */
export type ForgottenManifest = 'kept' | 'deleted' | 'given-up';
const MANIFEST_STATES: Record<number, ForgottenManifest> = { 0: 'deleted', 1: 'kept', 2: 'given-up' };

/** Forgotten runs with what their manifests are to this catalog, and the forget that decided it last; absent: not known (an earlier lakeguard's forget). */
export function forgottenManifests(catalog: Catalog): Map<string, { state: ForgottenManifest; forget: string }> {
  const rows = sqlite(catalog).prepare('SELECT id, forget, manifest_kept AS kept FROM forgotten_runs WHERE manifest_kept IS NOT NULL ORDER BY id').all() as { id: string; forget: string; kept: number }[];
  return new Map(rows.flatMap((r) => (MANIFEST_STATES[r.kept] === undefined ? [] : [[r.id, { state: MANIFEST_STATES[r.kept]!, forget: r.forget }] as const])));
}

/**
 * These forgotten runs' manifests are required no more: the catalog gave up the versions only they
 * held. Remembered as such: should one come back, verify and prune say this catalog lacks them.
 */
export function giveUpKeptManifests(catalog: Catalog, ids: readonly string[]): void {
  const clear = sqlite(catalog).prepare('UPDATE forgotten_runs SET manifest_kept = 2 WHERE id = ?');
  catalog.transaction(() => ids.forEach((id) => clear.run(id)));
}

/** Objects with their versions, in object id order, a page at a time (keyset paging, bounded memory). */
export function* objectsWithVersions(catalog: Catalog, pageSize = 2000): Generator<PlanObject[]> {
  const db = sqlite(catalog);
  const objects = db.prepare(
    `SELECT o.id AS id, b.name AS bucket, o.key AS key, o.latest AS latest FROM objects o JOIN buckets b ON b.id = o.bucket
     WHERE o.id > ? ORDER BY o.id LIMIT ?`,
  );
  const versions = db.prepare(
    `SELECT v.id AS id, v.object AS object, v.run AS run, v.valid_from AS validFrom, v.size AS size, k.manifest AS keptBy
     FROM versions v LEFT JOIN kept_versions k ON k.version = v.id WHERE v.object >= ? AND v.object <= ? ORDER BY v.object, v.valid_from, v.id`,
  );
  for (let after = 0; ; ) {
    const rows = objects.all(after, pageSize) as Omit<PlanObject, 'versions'>[];
    if (rows.length === 0) return;
    const byId = new Map<number, PlanObject>(rows.map((r) => [r.id, { ...r, versions: [] }]));
    for (const v of versions.iterate(rows[0]!.id, rows.at(-1)!.id) as Iterable<PlanVersion & { object: number }>) {
      byId.get(v.object)?.versions.push({ id: v.id, run: v.run, validFrom: v.validFrom, size: v.size, keptBy: v.keptBy });
    }
    yield [...byId.values()];
    after = rows.at(-1)!.id;
  }
}

/** The document entries of versions by catalog row id (for writing a forget document). */
export function describeVersions(catalog: Catalog, ids: readonly number[]): DroppedVersion[] {
  const stmt = sqlite(catalog).prepare(
    `SELECT b.name AS bucket, o.key AS key, v.version_id AS versionId, v.valid_from AS validFrom, v.delete_marker AS deleteMarker
     FROM versions v JOIN objects o ON o.id = v.object JOIN buckets b ON b.id = o.bucket WHERE v.id = ?`,
  );
  return ids.map((id) => {
    const r = stmt.get(id) as { bucket: string; key: string; versionId: string | null; validFrom: number; deleteMarker: 0 | 1 };
    return [r.bucket, r.key, r.versionId, r.validFrom, r.deleteMarker];
  });
}

export interface ApplyResult {
  versionsDropped: number;
  runsForgotten: number;
  /** Manifests the document says it kept whose runs this catalog never held: missing from the repository (or unreadable). */
  keptMissing: string[];
}

/**
 * Applies one forget document (one transaction): drops the listed versions (remembering S3
 * version ids, so the next backup does not capture them again), then removes the forgotten
 * runs, moving the versions they still hold to the next run that remains — the first run
 * whose state includes them — so no kept run's state changes.
 */
export function applyForgetDocument(catalog: Catalog, name: string, doc: ForgetDocument): ApplyResult {
  const db = sqlite(catalog);
  const runSeq = db.prepare('SELECT seq FROM runs WHERE id = ?').pluck();
  const nextRun = db.prepare('SELECT min(seq) FROM runs WHERE seq > ? AND id NOT IN (SELECT value FROM json_each(?))').pluck();
  const moveVersions = db.prepare('UPDATE versions SET run = ? WHERE run = ?');
  const deleteFailures = db.prepare('DELETE FROM failures WHERE run = ?');
  const deleteRun = db.prepare('DELETE FROM runs WHERE seq = ?');
  const markForgotten = db.prepare('INSERT OR IGNORE INTO forgotten_runs (id, forget, manifest_kept) VALUES (?, ?, ?)');
  const wasForgotten = db.prepare('SELECT 1 FROM forgotten_runs WHERE id = ?').pluck();
  const keepManifest = db.prepare('INSERT OR IGNORE INTO kept_manifests (run) VALUES (?)');
  const keptId = db.prepare('SELECT id FROM kept_manifests WHERE run = ?').pluck();
  // A version moved here from an earlier forgotten run stays that run's (its record is there).
  const keepVersions = db.prepare('INSERT OR IGNORE INTO kept_versions (version, manifest) SELECT id, ? FROM versions WHERE run = ?');
  const hasOwnVersions = db.prepare('SELECT 1 FROM versions v WHERE v.run = ? AND NOT EXISTS (SELECT 1 FROM kept_versions k WHERE k.version = v.id) LIMIT 1').pluck();
  const release = db.prepare('UPDATE forgotten_runs SET manifest_kept = 0, forget = ? WHERE id = ? AND (manifest_kept = 1 OR manifest_kept IS NULL)');
  const unkeep = db.prepare('DELETE FROM kept_manifests WHERE run = ?');
  const markApplied = db.prepare('INSERT OR IGNORE INTO forgets (name, created) VALUES (?, ?)');

  // A scoped catalog holds no row of a key outside its scope, not even a dropped version's.
  const scope = catalogScope(catalog);
  return catalog.transaction(() => {
    for (const c of doc.copiedFrom ?? []) recordCopiedRun(catalog, { repository: c.repository, run: c.source }, c.run);
    const versionsDropped = dropListedVersions(catalog, doc, (bucket, key) => scopeHoldsKey(scope, bucket, key));
    const forgotten = JSON.stringify(doc.forgotten);
    const kept = doc.manifestsKept === undefined ? undefined : new Set(doc.manifestsKept);
    const manifestKept = (id: string): 0 | 1 | null => (kept === undefined ? null : kept.has(id) ? 1 : 0);
    let runsForgotten = 0;
    const keptMissing: string[] = [];
    for (const id of doc.forgotten) {
      const seq = runSeq.get(id) as number | undefined;
      if (seq === undefined) {
        // Never imported: its manifest was deleted (by this forget, or a later one) or is missing.
        // Remembered all the same, so a manifest that comes back is known as forgotten, not new.
        if (wasForgotten.get(id) === undefined && kept?.has(id) === true) keptMissing.push(id);
        markForgotten.run(id, name, manifestKept(id));
        continue;
      }
      const next = nextRun.get(seq, forgotten) as number | null;
      // No later run to hand its versions to: the run stays (the planner never produces this).
      if (next === null) continue;
      // A document of an earlier lakeguard does not say which manifests it kept: it deleted those
      // of runs with nothing left, so a run whose records still hold versions kept its manifest.
      if (kept === undefined ? hasOwnVersions.get(seq) !== undefined : kept.has(id)) {
        keepManifest.run(id);
        keepVersions.run(keptId.get(id), seq);
      }
      moveVersions.run(next, seq);
      deleteFailures.run(seq);
      deleteRun.run(seq);
      markForgotten.run(id, name, manifestKept(id));
      runsForgotten++;
    }
    for (const id of doc.manifestsReleased ?? []) {
      release.run(name, id);
      unkeep.run(id);
    }
    markApplied.run(name, Date.parse(doc.created));
    return { versionsDropped, runsForgotten, keptMissing };
  });
}

/**
 * The version part of a forget document, for the keys `holds` accepts: drops the listed
 * versions the catalog has and remembers their S3 version ids. Also replayed alone for the keys
 * a scoped catalog adds when it is widened in place (src/engine/sync.ts). Returns the versions dropped.
 */
export function dropListedVersions(catalog: Catalog, doc: ForgetDocument, holds: (bucket: string, key: string) => boolean): number {
  const db = sqlite(catalog);
  const versionOf = db
    .prepare('SELECT id FROM versions WHERE object = ? AND valid_from = ? AND version_id IS ? AND delete_marker = ?')
    .pluck();
  const deleteBlobs = db.prepare('DELETE FROM version_blobs WHERE version = ?');
  const deleteVersion = db.prepare('DELETE FROM versions WHERE id = ?');
  const unkeepVersion = db.prepare('DELETE FROM kept_versions WHERE version = ?');
  const remember = db.prepare('INSERT OR IGNORE INTO dropped_versions (object, version_id) VALUES (?, ?)');
  const clearLatest = db.prepare('UPDATE objects SET latest = NULL WHERE id = ? AND latest = ?');
  const resetLatest = db.prepare(
    'UPDATE objects SET latest = (SELECT id FROM versions WHERE object = objects.id ORDER BY valid_from DESC, id DESC LIMIT 1) WHERE id = ?',
  );
  return catalog.transaction(() => {
    let versionsDropped = 0;
    for (const [bucket, key, versionId, validFrom, deleteMarker] of doc.dropped) {
      if (!holds(bucket, key)) continue;
      // Remembered even when the version is not in this catalog (a rebuild whose manifest
      // forget deleted): the version is still in the bucket and must not be captured again.
      const object = catalog.objectIdOf(bucket, key);
      if (versionId !== null) remember.run(object, versionId);
      const version = versionOf.get(object, validFrom, versionId, deleteMarker) as number | undefined;
      if (version === undefined) continue;
      deleteBlobs.run(version);
      deleteVersion.run(version);
      unkeepVersion.run(version);
      if (clearLatest.run(object, version).changes > 0) resetLatest.run(object);
      versionsDropped++;
    }
    return versionsDropped;
  });
}

/** Start time of a run from its id (`20261123T101500Z-3fa2c1`), or of a sync marker (its time part); null for another form. */
export function runIdTime(id: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(id);
  return m === null ? null : Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/**
 * When `time` falls between two remaining runs with forgotten runs between them: how many, and
 * the kept runs around the gap (so restore can say its state there is not exact).
 */
export function forgottenGapAt(catalog: Catalog, time: number): { forgotten: number; before: string | null; after: string | null } | null {
  const db = sqlite(catalog);
  const before = db.prepare('SELECT id, started FROM runs WHERE started <= ? ORDER BY started DESC, id DESC LIMIT 1').get(time) as { id: string; started: number } | undefined;
  const after = db.prepare('SELECT id, started FROM runs WHERE started > ? ORDER BY started, id LIMIT 1').get(time) as { id: string; started: number } | undefined;
  const from = before?.started ?? -Infinity;
  const to = after?.started ?? Infinity;
  let forgotten = 0;
  for (const id of db.prepare('SELECT id FROM forgotten_runs').pluck().iterate() as Iterable<string>) {
    const t = runIdTime(id);
    if (t !== null && t > from && t < to) forgotten++;
  }
  return forgotten === 0 ? null : { forgotten, before: before?.id ?? null, after: after?.id ?? null };
}

/** Objects forget could not delete yet (Object Lock), oldest first. */
export function pendingDeletions(catalog: Catalog): string[] {
  return sqlite(catalog).prepare('SELECT name FROM pending_deletions ORDER BY name').pluck().all() as string[];
}

export function setPendingDeletion(catalog: Catalog, name: string, lockedUntil: number | null): void {
  if (lockedUntil === null) sqlite(catalog).prepare('DELETE FROM pending_deletions WHERE name = ?').run(name);
  else sqlite(catalog).prepare('INSERT OR REPLACE INTO pending_deletions (name, locked_until) VALUES (?, ?)').run(name, lockedUntil);
}
