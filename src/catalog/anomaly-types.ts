/**
 * Anomaly detection (issue 19): the contract between the detector, which watches a backup run's
 * changes and content (src/engine/anomaly-detector.ts), and what records, shows and acts on its findings
 * (run manifest, catalog, `runs`, `forget`, `rollback`). Types only.
 *
 * A run's changes are judged per partition: a policy prefix, and each first level below it
 * (`events/` -> `events/date=2026-12-01/`); keys directly under the prefix form the prefix's own
 * partition. An empty prefix (a whole bucket) partitions by the first level of the bucket.
 */

/** What one object version's content or name says about it (docs/anomalies.md). */
export type ObjectSignal =
  /** Its extension names a format (Parquet, ORC, Avro, gzip, zstd, JSON/CSV text) its bytes do not have. */
  | 'format'
  /** Its new data does not compress although its earlier version (or its text format) did. */
  | 'incompressible'
  /** A new key named like a ransom note. */
  | 'ransom-note'
  /** A new key that is a key deleted in the same run plus an extension, or a known ransomware extension. */
  | 'extension-swap'
  /** A new version with the same content (ETag and size) as the version it replaces. */
  | 'identical';

/** A partition-level rule that fired (docs/anomalies.md gives each default and why). */
export type PartitionRule =
  | 'overwritten'
  | 'deleted'
  | 'added'
  | 'broken-formats'
  | 'incompressible'
  | 'identical-rewrites'
  | 'ransom-notes'
  | 'extension-swaps';

/** What one run did to one partition. Only partitions with at least one change are kept. */
export interface PartitionStats {
  bucket: string;
  /** The partition's key prefix ('' for the root of a bucket backed up whole). */
  partition: string;
  /** Live keys before the run: unchanged + changed + deleted. */
  before: number;
  added: number;
  changed: number;
  deleted: number;
  /** Sizes: of new objects, of the new versions of changed ones, of the deleted ones' last versions. */
  bytesAdded: number;
  bytesChanged: number;
  bytesDeleted: number;
  /**
   * Of `changed`: new versions whose data was verified valid (their extension's format
   * signature, and compressing as their earlier version did). The `overwritten` rule leaves
   * them out: a partition rewritten with good data is an ordinary day. Absent in statistics
   * recorded before it existed: then every change counts.
   */
  changedVerified?: number;
  /** Objects of this partition carrying each object signal. */
  signals: Partial<Record<ObjectSignal, number>>;
}

/** A partition whose changes crossed a threshold. */
export interface PartitionFinding {
  bucket: string;
  partition: string;
  rules: PartitionRule[];
  /** One line per rule, for people: "deleted 41 of 120 keys (34 %; threshold 20 %, history max 2 %)". */
  reasons: string[];
}

/** A run's anomaly verdict, recorded in its manifest (docs/repository-format.md, runs/). */
export interface RunAnomalies {
  /** True when at least one partition rule fired: the run is `suspect` until acknowledged. */
  suspect: boolean;
  findings: PartitionFinding[];
  /** Every partition the run changed: the history later runs of the same scope compare against. */
  partitions: PartitionStats[];
  /** Object versions (and delete records) carrying at least one signal. */
  flaggedObjects: number;
}

/**
 * Earlier runs' statistics of one partition (newest first, at most `limit`), from clean or
 * acknowledged runs only, so that an incident does not raise its own baseline. Implemented on
 * the catalog; `noHistory` when there is none (a first run, or a dry run).
 */
export interface AnomalyHistory {
  partitionHistory(bucket: string, partition: string, limit: number): PartitionStats[];
  /**
   * A partition's live keys as its last `limit` clean runs that changed it recorded them (a run
   * set: the sum of its shards' parts), the largest; the run set `exceptSet` (the judged run's
   * own) left out; undefined when none did.
   */
  partitionObjects?(bucket: string, partition: string, limit: number, exceptSet?: string): number | undefined;
}

export const noHistory: AnomalyHistory = { partitionHistory: () => [] };
