/**
 * Catalog side of anomaly detection (schema 4; docs/catalog.md "Anomalies"): recording a run's
 * verdict, the history later runs compare against (`CatalogAnomalyHistory`), acknowledgements,
 * the last clean run before an incident (rollback's `--at last-clean`, forget's `pre-anomaly`),
 * and the flagged objects of one run (`runs show --anomalies`).
 *
 * "Suspect" below always means suspect and not acknowledged: an acknowledged run counts as clean
 * everywhere (history, last-clean, marks), as a person has looked at it.
 */
import type { AnomalyHistory, ObjectSignal, PartitionFinding, PartitionRule, PartitionStats, RunAnomalies } from './anomaly-types.js';
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';
import { runSet, shardOfRun, type RunSet } from './run-sets.js';
import { runIdTime } from './forget.js';
import type { RunRow } from './types.js';

/**
 * acks/<UTC YYYYMMDDTHHMMSSZ>-<6 hex>: a person acknowledged a suspect run
 * (docs/repository-format.md "acks/"). `id` is the document's own name.
 */
export interface AckDocument {
  version: 1;
  id: string;
  /** The acknowledged run's id. */
  run: string;
  host: string;
  /** ISO 8601 UTC. */
  created: string;
  /** Who acknowledged it (the operating-system user), when known. */
  by?: string;
  note?: string;
  /**
   * The run was an incident (it recorded damage), now dealt with: it is no longer marked, but
   * its state is never `last-clean` and its statistics never become history. Absent: the
   * flagged changes were expected (a false alarm), and the run counts as clean.
   */
  incident?: true;
  /**
   * The acknowledged run's group and start (ISO 8601 UTC), written since lakeguard knew that a
   * forget may remove the run before its acknowledgement stops mattering: an incident's
   * acknowledgement marks the runs of its group that started after it and before the
   * acknowledgement (incidentCarrier), also once the run itself is forgotten.
   */
  group?: string;
  started?: string;
}

/** An acknowledgement as the catalog holds it. */
export interface AckRow {
  name: string;
  run: string;
  host: string;
  /** ms since the epoch. */
  created: number;
  by: string | null;
  note: string | null;
  /** 1: acknowledged as an incident (AckDocument.incident). */
  incident: 0 | 1;
}

/** A run's recorded verdict. */
export interface RunVerdict {
  /** As detected: true even after an acknowledgement. */
  suspect: boolean;
  flaggedObjects: number;
  findings: PartitionFinding[];
  /** The acknowledgement that says what the run is (shownAck), or null. */
  ack: AckRow | null;
}

/** SQL: run row `r` is suspect and no acknowledgement names it. */
export function unacknowledgedSuspectSql(r: string): string {
  return `(EXISTS (SELECT 1 FROM run_anomalies ra WHERE ra.run = ${r}.seq AND ra.suspect = 1) AND NOT EXISTS (SELECT 1 FROM acks a WHERE a.run = ${r}.id))`;
}

/**
 * SQL: run row `r` is suspect and not taken as expected changes: it is not acknowledged, or
 * acknowledged as an incident (which counts over an acknowledgement of expected changes: a
 * person corrected it, see acknowledgeRun). Such a run's state is never clean, and its
 * statistics never become a partition's history.
 */
export function notCleanSuspectSql(r: string): string {
  return (
    `(EXISTS (SELECT 1 FROM run_anomalies ra WHERE ra.run = ${r}.seq AND ra.suspect = 1) AND ` +
    `(NOT EXISTS (SELECT 1 FROM acks a WHERE a.run = ${r}.id AND a.incident = 0) OR EXISTS (SELECT 1 FROM acks a WHERE a.run = ${r}.id AND a.incident = 1)))`
  );
}

/** The acknowledgement that says what a run is: its first as an incident, else its first (acksOfRun order). */
export function shownAck(acks: readonly AckRow[]): AckRow | undefined {
  return acks.find((a) => a.incident === 1) ?? acks[0];
}

const STATS_COLUMNS = 'bucket, partition, run, before, added, changed, deleted, bytes_added, bytes_changed, bytes_deleted, changed_verified, signals';

/**
 * Records a run's verdict and the statistics of every partition it changed. Called in the
 * transaction that marks the run finished (backup) or imported (sync, rebuild); replaces what
 * an earlier call recorded for the run.
 */
export function recordRunAnomalies(catalog: Catalog, runSeq: number, anomalies: RunAnomalies): void {
  const db = sqlite(catalog);
  const bucketId = db.prepare('INSERT INTO buckets (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id').pluck();
  const putStats = db.prepare(`INSERT OR REPLACE INTO partition_stats (${STATS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  catalog.transaction(() => {
    db.prepare('INSERT OR REPLACE INTO run_anomalies (run, suspect, flagged, findings) VALUES (?, ?, ?, ?)').run(
      runSeq,
      anomalies.suspect ? 1 : 0,
      anomalies.flaggedObjects,
      JSON.stringify(anomalies.findings),
    );
    for (const p of anomalies.partitions) {
      const signals = Object.keys(p.signals).length === 0 ? null : JSON.stringify(p.signals);
      putStats.run(bucketId.get(p.bucket), p.partition, runSeq, p.before, p.added, p.changed, p.deleted, p.bytesAdded, p.bytesChanged, p.bytesDeleted, p.changedVerified ?? null, signals);
    }
  });
}

/** The verdict recorded for a run, or undefined when it has none (recorded before detection existed, or a failed run). */
export function runVerdict(catalog: Catalog, runSeq: number): RunVerdict | undefined {
  const db = sqlite(catalog);
  const row = db.prepare('SELECT r.id AS id, ra.suspect AS suspect, ra.flagged AS flagged, ra.findings AS findings FROM run_anomalies ra JOIN runs r ON r.seq = ra.run WHERE ra.run = ?').get(runSeq) as
    | { id: string; suspect: number; flagged: number; findings: string }
    | undefined;
  if (row === undefined) return undefined;
  return { suspect: row.suspect === 1, flaggedObjects: row.flagged, findings: JSON.parse(row.findings) as PartitionFinding[], ack: shownAck(acksOfRun(catalog, row.id)) ?? null };
}

/** Ids of suspect runs, each with whether it is acknowledged (for the `runs` and `calendar` marks). */
export function suspectRuns(catalog: Catalog): Map<string, { acknowledged: boolean }> {
  const rows = sqlite(catalog)
    .prepare(
      `SELECT r.id AS id, EXISTS (SELECT 1 FROM acks a WHERE a.run = r.id) AS acked
       FROM run_anomalies ra JOIN runs r ON r.seq = ra.run WHERE ra.suspect = 1`,
    )
    .all() as { id: string; acked: number }[];
  return new Map(rows.map((r) => [r.id, { acknowledged: r.acked === 1 }]));
}

/** The partition statistics a run recorded (for `runs show --anomalies`). */
export function partitionStatsOfRun(catalog: Catalog, runSeq: number): PartitionStats[] {
  const rows = sqlite(catalog)
    .prepare(`SELECT b.name AS bucketName, ps.* FROM partition_stats ps JOIN buckets b ON b.id = ps.bucket WHERE ps.run = ? ORDER BY b.name, ps.partition`)
    .all(runSeq) as StatsRow[];
  return rows.map(toStats);
}

/**
 * A partition's statistics in its last runs that were neither suspect (unless acknowledged as
 * expected changes) nor failed, newest first: one seek of partition_stats' primary key per changed partition.
 */
export class CatalogAnomalyHistory implements AnomalyHistory {
  private readonly select;

  private readonly objects;

  constructor(private readonly catalog: Catalog) {
    this.objects = sqlite(catalog).prepare(
      `SELECT ps.run AS run, rs.set_run AS setRun, rs.shard_index AS shard, ps.before + ps.added - ps.deleted AS live
       FROM partition_stats ps JOIN runs r ON r.seq = ps.run LEFT JOIN run_shards rs ON rs.run = ps.run
       WHERE ps.bucket = @bucketId AND ps.partition = @partition AND r.status IN ('complete', 'partial', 'interrupted') AND NOT ${notCleanSuspectSql('r')}
         AND rs.set_run IS NOT @exceptSet
       ORDER BY ps.run DESC LIMIT @rows`,
    );
    this.select = sqlite(catalog).prepare(
      `SELECT @bucket AS bucketName, ps.* FROM partition_stats ps JOIN runs r ON r.seq = ps.run
       WHERE ps.bucket = @bucketId AND ps.partition = @partition AND r.status IN ('complete', 'partial', 'interrupted') AND NOT ${notCleanSuspectSql('r')}
       ORDER BY ps.run DESC LIMIT @limit`,
    );
  }

  partitionHistory(bucket: string, partition: string, limit: number): PartitionStats[] {
    const bucketId = this.catalog.findBucketId(bucket);
    if (bucketId === undefined || limit <= 0) return [];
    return (this.select.all({ bucket, bucketId, partition, limit }) as StatsRow[]).map(toStats);
  }

  partitionObjects(bucket: string, partition: string, limit: number, exceptSet?: string): number | undefined {
    const bucketId = this.catalog.findBucketId(bucket);
    if (bucketId === undefined || limit <= 0) return undefined;
    const rows = this.objects.all({ bucketId, partition, exceptSet: exceptSet ?? null, rows: limit * 64 }) as { run: number; setRun: string | null; shard: number | null; live: number }[];
    // Each run, or run set (each shard index's part from its newest attempt), in the last `limit` that changed the partition.
    const units = new Map<string, Map<number, number>>();
    for (const r of rows) {
      const unit = r.setRun === null ? `run ${r.run}` : `set ${r.setRun}`;
      let parts = units.get(unit);
      if (parts === undefined) {
        if (units.size === limit) break;
        units.set(unit, (parts = new Map()));
      }
      if (!parts.has(r.shard ?? 0)) parts.set(r.shard ?? 0, r.live);
    }
    if (units.size === 0) return undefined;
    // The largest: a unit's shards that did not change the partition recorded no part of it.
    return Math.max(...[...units.values()].map((parts) => [...parts.values()].reduce((a, b) => a + b, 0)));
  }
}

interface StatsRow {
  bucketName: string;
  partition: string;
  before: number;
  added: number;
  changed: number;
  deleted: number;
  bytes_added: number;
  bytes_changed: number;
  bytes_deleted: number;
  changed_verified: number | null;
  signals: string | null;
}

function toStats(r: StatsRow): PartitionStats {
  return {
    bucket: r.bucketName,
    partition: r.partition,
    before: r.before,
    added: r.added,
    changed: r.changed,
    deleted: r.deleted,
    bytesAdded: r.bytes_added,
    bytesChanged: r.bytes_changed,
    bytesDeleted: r.bytes_deleted,
    ...(r.changed_verified === null ? {} : { changedVerified: r.changed_verified }),
    signals: r.signals === null ? {} : (JSON.parse(r.signals) as PartitionStats['signals']),
  };
}

// ---- acknowledgements ----------------------------------------------------------------------

/** Records an acknowledgement (an ack document written here or read from the repository); idempotent. */
export function insertAck(catalog: Catalog, doc: AckDocument): void {
  const db = sqlite(catalog);
  // The run's group and start: from the document, else from the run row (a document written
  // before they were), else its start from its id and no group (the run was forgotten first).
  const run = db.prepare('SELECT grp, started FROM runs WHERE id = ?').get(doc.run) as { grp: string; started: number } | undefined;
  const started = doc.started !== undefined ? Date.parse(doc.started) : (run?.started ?? runIdTime(doc.run));
  db.prepare('INSERT OR IGNORE INTO acks (name, run, host, created, by, note, incident, grp, run_started) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
    doc.id,
    doc.run,
    doc.host,
    Date.parse(doc.created),
    doc.by ?? null,
    doc.note ?? null,
    doc.incident === true ? 1 : 0,
    doc.group ?? run?.grp ?? null,
    started,
  );
}

/** Names of the ack documents this catalog has recorded. */
export function knownAcks(catalog: Catalog): Set<string> {
  return new Set(sqlite(catalog).prepare('SELECT name FROM acks').pluck().all() as string[]);
}

/** Every acknowledgement the catalog holds: its name and the run it names. */
export function knownAckRuns(catalog: Catalog): Map<string, string> {
  const rows = sqlite(catalog).prepare('SELECT name, run FROM acks').all() as { name: string; run: string }[];
  return new Map(rows.map((r) => [r.name, r.run]));
}

/** Acknowledgements of a run, oldest first. */
export function acksOfRun(catalog: Catalog, runId: string): AckRow[] {
  return sqlite(catalog).prepare('SELECT name, run, host, created, by, note, incident FROM acks WHERE run = ? ORDER BY created, name').all(runId) as AckRow[];
}

// ---- the last clean run ----------------------------------------------------------------------

/** The incident window of some groups: the oldest unacknowledged suspect run, and the last clean run before it. */
export interface CleanState {
  /** The oldest unacknowledged suspect run of the groups; undefined when there is none. */
  suspect: RunRow | undefined;
  /**
   * The newest complete run of the groups, not suspect (unless acknowledged as expected
   * changes: an incident's state is never clean), started before `suspect` (any time when there
   * is none); undefined when there is none. For a run set, one of its attempts (see `lastCleanSet`).
   */
  lastClean: RunRow | undefined;
  /**
   * When the last clean run is a shard attempt: its run set, which is complete and has no
   * suspect attempt (unless acknowledged as expected changes) (a run set is suspect when any of its shards is). Its state
   * is the run set's cut, never the attempt's alone (that would miss the other shards' keys).
   */
  lastCleanSet?: RunSet;
  /**
   * The newest run acknowledged as an incident that started after `lastClean` (the reason a
   * newer complete run is not the last clean one), when `suspect` is undefined.
   */
  incident?: RunRow;
}

/**
 * `last-clean` for the groups that cover a bucket (rollback `--at last-clean`) or for one group
 * (forget's `pre-anomaly` keep): indexed queries on runs. A shard attempt is a candidate only
 * as part of its run set: a set that is not complete, or that has a suspect attempt not
 * acknowledged as expected changes, is skipped as a whole.
 */
export function lastCleanRun(catalog: Catalog, groups: readonly string[]): CleanState {
  const db = sqlite(catalog);
  const json = JSON.stringify(groups);
  const suspectId = db
    .prepare(
      `SELECT r.id FROM runs r JOIN run_anomalies ra ON ra.run = r.seq
       WHERE ra.suspect = 1 AND r.grp IN (SELECT value FROM json_each(@groups)) AND NOT EXISTS (SELECT 1 FROM acks a WHERE a.run = r.id)
       ORDER BY r.started, r.seq LIMIT 1`,
    )
    .pluck()
    .get({ groups: json }) as string | undefined;
  const suspect = suspectId === undefined ? undefined : catalog.findRun(suspectId);
  const candidates = db
    .prepare(
      `SELECT r.id FROM runs r
       WHERE r.grp IN (SELECT value FROM json_each(@groups)) AND r.status = 'complete' AND NOT ${notCleanSuspectSql('r')}
         AND (@before IS NULL OR r.started < @before)
       ORDER BY r.started DESC, r.seq DESC`,
    )
    .pluck()
    .iterate({ groups: json, before: suspect?.started ?? null }) as IterableIterator<string>;
  const suspectRun = db.prepare(`SELECT 1 FROM runs r WHERE r.seq = ? AND ${notCleanSuspectSql('r')}`).pluck();
  const carriesIncident = incidentCarrier(catalog, groups);
  const judged = new Set<string>();
  for (const id of candidates) {
    const run = catalog.findRun(id)!;
    if (carriesIncident(run)) continue;
    const shard = shardOfRun(catalog, run.seq);
    if (shard === undefined) return withIncident({ suspect, lastClean: run });
    if (judged.has(shard.set)) continue;
    judged.add(shard.set);
    const set = runSet(catalog, shard.set);
    if (set === undefined || set.status !== 'complete') continue;
    if (set.attempts.some((a) => a.counts && suspectRun.get(a.run.seq) !== undefined)) continue;
    return withIncident({ suspect, lastClean: run, lastCleanSet: set });
  }
  return { suspect, lastClean: undefined };

  function withIncident(state: CleanState): CleanState {
    if (state.suspect !== undefined || state.lastClean === undefined) return state;
    const incident = db
      .prepare(
        `SELECT r.id FROM runs r WHERE r.grp IN (SELECT value FROM json_each(@groups)) AND r.started > @after AND ${notCleanSuspectSql('r')}
         ORDER BY r.started DESC, r.seq DESC LIMIT 1`,
      )
      .pluck()
      .get({ groups: json, after: state.lastClean.started }) as string | undefined;
    return incident === undefined ? state : { ...state, incident: catalog.findRun(incident)! };
  }
}

/**
 * A run after an incident that knew the buckets only from before the incident's acknowledgement
 * (which follows the rollback) carries the incident's state: it started before the ack, or
 * listed from an S3 Inventory report created before it (the same report as the incident's run
 * finds nothing new). It is not clean, though nothing in it was flagged. The incident's group
 * and start are the acknowledgement's own (acks.grp, acks.run_started), so this holds after a
 * forget removed the incident's run; an acknowledgement that cannot say its group (written by
 * an earlier lakeguard, its run forgotten before this catalog learned it) counts for every group.
 */
function incidentCarrier(catalog: Catalog, groups: readonly string[]): (run: RunRow) => boolean {
  const json = JSON.stringify(groups);
  const incidentAcked = sqlite(catalog)
    .prepare(
      `SELECT max(a.created) FROM acks a
       WHERE a.incident = 1 AND (a.grp IS NULL OR a.grp IN (SELECT value FROM json_each(@groups))) AND a.run_started < @started`,
    )
    .pluck();
  return (run) => {
    const acked = incidentAcked.get({ groups: json, started: run.started }) as number | null;
    if (acked === null) return false;
    const reports = Object.values(run.counters?.inventory ?? {}).map((t) => Date.parse(t));
    return Math.min(run.started, ...reports) < acked;
  };
}

// ---- flagged objects of one run ------------------------------------------------------------------

/** What a flagged object version did in its run. */
export type FlaggedChange = 'added' | 'changed' | 'deleted';

export interface FlaggedObject {
  bucket: string;
  key: string;
  versionId: string | null;
  change: FlaggedChange;
  /** Bytes of the version; for a delete, of the version it deleted. */
  size: number;
  /** ms since the epoch. */
  validFrom: number;
  /** The object's own signals (may be empty for a delete or overwrite in a partition whose rule fired). */
  signals: ObjectSignal[];
  /** Its partition, and the rules that fired there (empty when the partition has no finding). */
  partition: string;
  rules: PartitionRule[];
}

/**
 * The flagged objects of a run, by bucket and key: every version carrying signals, and the
 * deletes (overwrites) in partitions where the `deleted` (`overwritten`) rule fired, derived from
 * the run's versions (nothing is stored twice). A key belongs to the longest partition of the
 * run's statistics that prefixes it (a prefix's own partition holds only the keys directly under it).
 */
export function* flaggedObjects(catalog: Catalog, runSeq: number): Generator<FlaggedObject> {
  const verdict = runVerdict(catalog, runSeq);
  const partitions = new Map<string, string[]>();
  for (const p of partitionStatsOfRun(catalog, runSeq)) partitions.set(p.bucket, [...(partitions.get(p.bucket) ?? []), p.partition]);
  const rulesOf = new Map<string, PartitionRule[]>((verdict?.findings ?? []).map((f) => [`${f.bucket}\u0000${f.partition}`, f.rules]));
  const fired = (verdict?.findings ?? [])
    .filter((f) => f.rules.includes('deleted') || f.rules.includes('overwritten'))
    .map((f) => ({ b: f.bucket, p: f.partition }));
  const rows = sqlite(catalog)
    .prepare(
      // The fired partitions as a table read once (not JSON parsed again for every version).
      `WITH fired (bucket, prefix, length) AS MATERIALIZED (
         SELECT bk.id, json_extract(f.value, '$.p'), length(json_extract(f.value, '$.p'))
         FROM json_each(@fired) f JOIN buckets bk ON bk.name = json_extract(f.value, '$.b'))
       SELECT b.name AS bucket, o.key AS key, v.version_id AS versionId, v.delete_marker AS deleteMarker, v.size AS size, v.valid_from AS validFrom,
              vs.signals AS signals,
              (SELECT p.delete_marker FROM versions p WHERE p.object = v.object AND p.valid_from < v.valid_from ORDER BY p.valid_from DESC LIMIT 1) AS before,
              (SELECT p.size FROM versions p WHERE p.object = v.object AND p.valid_from < v.valid_from ORDER BY p.valid_from DESC LIMIT 1) AS beforeSize
       FROM versions v JOIN objects o ON o.id = v.object JOIN buckets b ON b.id = o.bucket LEFT JOIN version_signals vs ON vs.version = v.id
       WHERE v.run = @run AND (vs.version IS NOT NULL OR EXISTS (SELECT 1 FROM fired f WHERE f.bucket = o.bucket AND substr(o.key, 1, f.length) = f.prefix))
       ORDER BY b.name, o.key, v.valid_from`,
    )
    .iterate({ run: runSeq, fired: JSON.stringify(fired) }) as IterableIterator<{
    bucket: string;
    key: string;
    versionId: string | null;
    deleteMarker: number;
    size: number;
    validFrom: number;
    signals: string | null;
    before: number | null;
    beforeSize: number | null;
  }>;
  for (const r of rows) {
    const change: FlaggedChange = r.deleteMarker === 1 ? 'deleted' : r.before === 0 ? 'changed' : 'added';
    const partition = longestPrefix(partitions.get(r.bucket) ?? [], r.key);
    const rules = partition === undefined ? [] : (rulesOf.get(`${r.bucket}\u0000${partition}`) ?? []);
    const signals = r.signals === null ? [] : (r.signals.split(',') as ObjectSignal[]);
    const ruled = (change === 'deleted' && rules.includes('deleted')) || (change === 'changed' && rules.includes('overwritten'));
    if (signals.length === 0 && !ruled) continue;
    // A delete marker has no size: a delete is as big as what it deleted.
    const size = change === 'deleted' ? (r.beforeSize ?? 0) : r.size;
    yield { bucket: r.bucket, key: r.key, versionId: r.versionId, change, size, validFrom: r.validFrom, signals, partition: partition ?? '', rules };
  }
}

function longestPrefix(prefixes: readonly string[], key: string): string | undefined {
  let best: string | undefined;
  for (const p of prefixes) if (key.startsWith(p) && (best === undefined || p.length > best.length)) best = p;
  return best;
}

/** A suspect run whose findings lie in a state a command is about to hand out (restore). */
export interface SuspectInState {
  run: RunRow;
  /** Its flagged partitions that the selection reaches, as `bucket/partition`. */
  partitions: string[];
  /** Acknowledged as an incident (and no clean run in the state recorded the lake after it). */
  incident: boolean;
}

/**
 * Whether a partition (anomaly-detector.ts partitionOf) holds a key starting with `prefix`.
 * The partition '' holds only a bucket's top-level keys (a source of the whole bucket), so a
 * prefix inside a directory never reaches it. Any other partition is taken to hold every key
 * under it: one that is a source prefix's own top level looks the same, and then the answer
 * errs on the side of a warning.
 */
function partitionMeetsPrefix(partition: string, prefix: string): boolean {
  if (partition.startsWith(prefix)) return true;
  return prefix.startsWith(partition) && (partition !== '' || !prefix.includes('/'));
}

/**
 * The suspect runs (unacknowledged, or acknowledged as incidents with no clean complete run of
 * their group after them in the state: until then the state is still the damage) whose recorded
 * changes are part of state `cut` and whose
 * flagged partitions overlap the selection (a bucket and a key prefix each; a partition below a
 * prefix, or a prefix inside a partition: partitionMeetsPrefix). A run is part of the state when it is numbered at or
 * before the cut's run, is one of a run set's attempts or numbered before them, or (a time cut)
 * started before that time. Suspect runs are few: they are filtered here, not in SQL.
 */
export function suspectRunsInState(
  catalog: Catalog,
  cut: { runSeq: number; runSet?: { seqs: readonly number[] } } | { time: number },
  selection: readonly { bucket: string; prefix: string }[],
): SuspectInState[] {
  const db = sqlite(catalog);
  const rows = db
    .prepare(
      `SELECT r.id AS id, r.seq AS seq, r.started AS started, r.grp AS grp, ra.findings AS findings, EXISTS (SELECT 1 FROM acks a WHERE a.run = r.id) AS acked
       FROM run_anomalies ra JOIN runs r ON r.seq = ra.run WHERE ${notCleanSuspectSql('r')} ORDER BY r.seq`,
    )
    .all() as { id: string; seq: number; started: number; grp: string; findings: string; acked: 0 | 1 }[];
  // Clean complete runs of a group that started after an incident: one of them in the state recorded the lake after it.
  const cleanAfter = db.prepare(`SELECT r.id AS id, r.seq AS seq, r.started AS started FROM runs r WHERE r.grp = ? AND r.status = 'complete' AND r.started > ? AND NOT ${notCleanSuspectSql('r')}`);
  const carriers = new Map<string, (run: RunRow) => boolean>();
  const carries = (group: string, id: string): boolean => {
    let check = carriers.get(group);
    if (check === undefined) carriers.set(group, (check = incidentCarrier(catalog, [group])));
    return check(catalog.findRun(id)!);
  };
  const inCut = (r: { seq: number; started: number }): boolean => {
    if ('time' in cut) return r.started <= cut.time;
    if (cut.runSet === undefined) return r.seq <= cut.runSeq;
    return cut.runSet.seqs.includes(r.seq) || r.seq < Math.min(...cut.runSet.seqs);
  };
  const out: SuspectInState[] = [];
  for (const r of rows) {
    if (!inCut(r)) continue;
    // An incident acknowledged as dealt with stops mattering once a clean run recorded what came after it.
    if (r.acked === 1 && (cleanAfter.all(r.grp, r.started) as { id: string; seq: number; started: number }[]).some((c) => inCut(c) && !carries(r.grp, c.id))) continue;
    const partitions = (JSON.parse(r.findings) as PartitionFinding[])
      .filter((f) => selection.some((s) => s.bucket === f.bucket && partitionMeetsPrefix(f.partition, s.prefix)))
      .map((f) => `${f.bucket}/${f.partition}`);
    const run = catalog.findRun(r.id);
    if (partitions.length > 0 && run !== undefined) out.push({ run, partitions, incident: r.acked === 1 });
  }
  return out;
}
