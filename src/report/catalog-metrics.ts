/**
 * Metrics from what the catalog holds (a long-running process's `/metrics`: serve, watch):
 * the last run of every group and the last drill of every scope, as the textfile has them.
 */
import { runVerdict } from '../catalog/anomalies.js';
import type { Catalog } from '../catalog/catalog.js';
import { listDrills } from '../catalog/drills.js';
import type { RunRow } from '../catalog/types.js';
import type { MetricsCollector } from './metrics.js';

export function addCatalogMetrics(catalog: Catalog, metrics: MetricsCollector): void {
  const lastRun = new Map<string, RunRow>();
  const lastComplete = new Map<string, RunRow>();
  for (const r of catalog.listRuns()) {
    if (r.status === 'running' || r.finished === null) continue;
    if ((lastRun.get(r.group)?.finished ?? -Infinity) <= r.finished) lastRun.set(r.group, r);
    if (r.status === 'complete' && (lastComplete.get(r.group)?.finished ?? -Infinity) <= r.finished) lastComplete.set(r.group, r);
  }
  for (const [group, run] of lastRun) {
    // The last complete run first: the last run's own sample (when it is complete) then wins.
    const complete = lastComplete.get(group);
    if (complete !== undefined && complete !== run) metrics.backupRun({ group, status: 'complete', started: complete.started, finished: complete.finished, counters: null });
    const verdict = runVerdict(catalog, run.seq);
    metrics.backupRun({
      group,
      status: run.status,
      started: run.started,
      finished: run.finished,
      counters: run.counters,
      ...(verdict === undefined ? {} : { anomalies: { suspect: verdict.suspect && verdict.ack === null, flaggedObjects: verdict.flaggedObjects, findings: verdict.findings.length } }),
    });
  }
  const lastDrill = new Map<string, ReturnType<typeof listDrills>[number]>();
  for (const d of listDrills(catalog)) lastDrill.set(d.scope, d);
  for (const d of lastDrill.values()) {
    metrics.drill({ scope: d.scope, finished: d.created, ok: d.ok, rtoMs: d.doc.rtoMs, objects: d.doc.objects.restored, bytes: d.doc.bytes, damaged: d.doc.objects.damaged, rpoMs: d.doc.rpoMs });
  }
}
