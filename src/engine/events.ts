import type { RunAnomalies } from '../catalog/anomaly-types.js';
import type { RunCounters, RunStatus } from '../catalog/types.js';
import type { PlannedKey } from './rollback-plan.js';

/**
 * Progress is reported through events; only the commands decide how to show them
 * (a progress bar on a TTY, line-delimited JSON, or nothing).
 */
export type EngineEvent =
  | { type: 'phase'; phase: string; detail?: string }
  | { type: 'progress'; phase: string; done: number; total?: number; bytes: number; failed: number }
  | { type: 'failure'; bucket: string; key: string; versionId: string | null; code: string; message: string }
  /**
   * `qualifies`: the warning says the command's answer rests on stale, partial or suspect
   * knowledge (docs/output.md "--quiet"); --quiet prints it too.
   */
  | { type: 'warning'; message: string; qualifies?: true }
  /** A dry run's object that a real run would read (new or changed since the catalog's version). */
  | { type: 'would-back-up'; bucket: string; key: string; versionId: string | null; size: number; change: 'new' | 'changed' }
  /**
   * A restore's decision for one key (reported by dry runs): write, skip-identical, skip-existing
   * or delete; `replaces`: a write over other content the target holds at the key.
   */
  | { type: 'action'; action: 'write' | 'skip-identical' | 'skip-existing' | 'delete'; bucket: string; key: string; size: number; replaces?: true }
  /** A rollback's plan for one key (reported by dry runs; rollback-plan.ts says what each action does). */
  | ({ type: 'rollback-action'; bucket: string } & PlannedKey);

export type EventSink = (event: EngineEvent) => void;

export const noEvents: EventSink = () => {};

export interface BackupSummary {
  /** The run's id; a dry run records no run, and the backup command does not show this one. */
  runId: string;
  group: string;
  status: RunStatus;
  dryRun: boolean;
  counters: RunCounters;
  /** Anomaly detection's verdict (docs/anomalies.md); absent when nothing was judged (a dry run, a failed run, detection off). */
  anomalies?: RunAnomalies;
  /** A shard attempt's run set (the group's run-set id and name) and its index of `of`. */
  shard?: { set: string; name: string; index: number; of: number };
}

export function emptyCounters(): RunCounters {
  return {
    objectsSeen: 0,
    objectsNew: 0,
    objectsChanged: 0,
    objectsUnchanged: 0,
    objectsDeleted: 0,
    objectsFailed: 0,
    objectsExcluded: 0,
    objectsSkipped: 0,
    bytesRead: 0,
    bytesNew: 0,
    bytesStored: 0,
    blobsNew: 0,
    blobsDeduplicated: 0,
    packsWritten: 0,
    requests: { list: 0, get: 0, head: 0, put: 0, delete: 0 },
    durationMs: 0,
  };
}
