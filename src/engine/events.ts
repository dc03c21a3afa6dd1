import type { RunCounters, RunStatus } from '../catalog/types.js';

/**
 * Progress is reported through events; only the commands decide how to show them
 * (a progress bar on a TTY, line-delimited JSON, or nothing).
 */
export type EngineEvent =
  | { type: 'phase'; phase: string; detail?: string }
  | { type: 'progress'; phase: string; done: number; total?: number; bytes: number; failed: number }
  | { type: 'failure'; bucket: string; key: string; versionId: string | null; code: string; message: string }
  | { type: 'warning'; message: string };

export type EventSink = (event: EngineEvent) => void;

export const noEvents: EventSink = () => {};

export interface BackupSummary {
  runId: string;
  group: string;
  status: RunStatus;
  dryRun: boolean;
  counters: RunCounters;
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
