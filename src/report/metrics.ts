/**
 * What lakeguard tells Prometheus: the metric families of a command, a backup run and a
 * drill, collected while a command runs (MetricsCollector) and rendered by prometheus.ts.
 * Names and labels are documented in docs/monitoring.md; changing one breaks users' alerts.
 */
import type { RunAnomalies } from '../catalog/anomaly-types.js';
import type { RunCounters, RunStatus } from '../catalog/types.js';
import type { MetricFamily, MetricType, Sample } from './prometheus.js';

/** Every status a run can end with: each gets a sample (1 for the run's, 0 for the others), so a new run replaces all of them. */
const END_STATUSES: readonly RunStatus[] = ['complete', 'partial', 'failed', 'interrupted'];

/** A backup run as metrics see it: a command's summary, or a catalog row (serve's /metrics). */
export interface RunMetricInput {
  group: string;
  status: RunStatus;
  /** ms since epoch */
  started: number;
  /** ms since epoch; null while running */
  finished: number | null;
  counters: RunCounters | null;
  anomalies?: Pick<RunAnomalies, 'suspect' | 'flaggedObjects'> & { findings: number };
}

/** A drill's result as metrics see it (src/engine/drill.ts makes one). */
export interface DrillMetricInput {
  /** What was drilled: `group:NAME`, `bucket:NAME/PREFIX` or `keys:FILE`. */
  scope: string;
  /** ms since epoch */
  finished: number;
  ok: boolean;
  rtoMs: number;
  objects: number;
  bytes: number;
  damaged: number;
  /** Age of the newest run at the drilled instant, ms; null without any run. */
  rpoMs: number | null;
}

/** Collects the series of one command (or one `watch` cycle); later additions of the same series win. */
export class MetricsCollector {
  private readonly families = new Map<string, MetricFamily>();

  add(name: string, type: MetricType, help: string, labels: Record<string, string>, value: number): void {
    let family = this.families.get(name);
    if (family === undefined) this.families.set(name, (family = { name, help, type, samples: [] }));
    const key = JSON.stringify(Object.entries(labels).sort());
    const sample: Sample = { labels, value };
    const at = family.samples.findIndex((s) => JSON.stringify(Object.entries(s.labels).sort()) === key);
    if (at >= 0) family.samples[at] = sample;
    else family.samples.push(sample);
  }

  get empty(): boolean {
    return this.families.size === 0;
  }

  toFamilies(): MetricFamily[] {
    return [...this.families.values()].map((f) => ({ ...f, samples: [...f.samples] }));
  }

  /** The command's own outcome: when it ended, its exit code and how long it took. */
  command(command: string, endedMs: number, exitCode: number, durationMs: number): void {
    const labels = { command };
    this.add('lakeguard_command_last_run_timestamp_seconds', 'gauge', 'When the command last ended (Unix time).', labels, seconds(endedMs));
    this.add('lakeguard_command_last_exit_code', 'gauge', 'Exit code of the last run of the command (0 ok, 3 partial, 4 suspect; docs: README "Exit codes").', labels, exitCode);
    this.add('lakeguard_command_last_duration_seconds', 'gauge', 'Wall time of the last run of the command.', labels, durationMs / 1000);
  }

  /** A backup run of a group (complete, partial, failed or interrupted). */
  backupRun(run: RunMetricInput): void {
    const group = { group: run.group };
    const ended = run.finished ?? run.started;
    this.add('lakeguard_backup_last_run_timestamp_seconds', 'gauge', 'When the last backup run of the group ended (Unix time).', group, seconds(ended));
    // Only a complete run moves it: an alert on its age fires however the other runs end.
    if (run.status === 'complete') this.add('lakeguard_backup_last_success_timestamp_seconds', 'gauge', 'When the last complete backup run of the group ended (Unix time).', group, seconds(ended));
    for (const status of END_STATUSES) {
      this.add('lakeguard_backup_last_status', 'gauge', 'Status of the last backup run of the group: 1 for its status, 0 for the others.', { ...group, status }, run.status === status ? 1 : 0);
    }
    const c = run.counters;
    if (c !== null) {
      this.add('lakeguard_backup_last_duration_seconds', 'gauge', 'Wall time of the last backup run of the group.', group, c.durationMs / 1000);
      const objects: Record<string, number> = { seen: c.objectsSeen, new: c.objectsNew, changed: c.objectsChanged, unchanged: c.objectsUnchanged, deleted: c.objectsDeleted, failed: c.objectsFailed };
      for (const [kind, value] of Object.entries(objects)) this.add('lakeguard_backup_last_objects', 'gauge', 'Objects of the last backup run of the group, by what happened to them.', { ...group, kind }, value);
      const bytes: Record<string, number> = { read: c.bytesRead, stored: c.bytesStored };
      for (const [kind, value] of Object.entries(bytes)) this.add('lakeguard_backup_last_bytes', 'gauge', 'Bytes the last backup run of the group read from the sources and stored in the repository (after dedup and compression).', { ...group, kind }, value);
      for (const [method, value] of Object.entries(c.requests)) {
        this.add('lakeguard_backup_last_requests', 'gauge', 'S3 requests of the last backup run of the group, by method.', { ...group, method }, value);
      }
    }
    if (run.anomalies !== undefined) {
      this.add('lakeguard_backup_last_suspect', 'gauge', 'Whether the last backup run of the group is suspect (anomalies found; docs/anomalies.md).', group, run.anomalies.suspect ? 1 : 0);
      this.add('lakeguard_backup_last_anomaly_findings', 'gauge', 'Partition findings of the last backup run of the group.', group, run.anomalies.findings);
      this.add('lakeguard_backup_last_flagged_objects', 'gauge', 'Object versions carrying anomaly signals in the last backup run of the group.', group, run.anomalies.flaggedObjects);
    }
  }

  /** A restore drill (docs/drill.md). */
  drill(d: DrillMetricInput): void {
    const scope = { scope: d.scope };
    this.add('lakeguard_drill_last_run_timestamp_seconds', 'gauge', 'When the last drill of the scope ended (Unix time).', scope, seconds(d.finished));
    if (d.ok) this.add('lakeguard_drill_last_success_timestamp_seconds', 'gauge', 'When the last drill of the scope that verified every byte ended (Unix time).', scope, seconds(d.finished));
    this.add('lakeguard_drill_last_ok', 'gauge', 'Whether the last drill of the scope restored and verified every object (1) or not (0).', scope, d.ok ? 1 : 0);
    this.add('lakeguard_drill_rto_seconds', 'gauge', 'Measured restore time (RTO) of the last drill of the scope: restore and verification, wall time.', scope, d.rtoMs / 1000);
    this.add('lakeguard_drill_objects', 'gauge', 'Objects the last drill of the scope restored.', scope, d.objects);
    this.add('lakeguard_drill_bytes', 'gauge', 'Bytes the last drill of the scope restored.', scope, d.bytes);
    this.add('lakeguard_drill_damaged_objects', 'gauge', 'Objects the last drill of the scope could not restore intact.', scope, d.damaged);
    const perSecond = d.rtoMs > 0 ? 1000 / d.rtoMs : 0;
    this.add('lakeguard_drill_objects_per_second', 'gauge', 'Restore rate of the last drill of the scope, objects per second.', scope, d.objects * perSecond);
    this.add('lakeguard_drill_bytes_per_second', 'gauge', 'Restore rate of the last drill of the scope, bytes per second.', scope, d.bytes * perSecond);
    if (d.rpoMs !== null) this.add('lakeguard_drill_rpo_seconds', 'gauge', 'Age of the newest backup run at the drilled instant (RPO), seconds.', scope, d.rpoMs / 1000);
  }
}

function seconds(ms: number): number {
  return Math.round(ms) / 1000;
}
