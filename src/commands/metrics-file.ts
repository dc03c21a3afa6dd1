import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { mergeFamilies, parseOwnPrometheus, renderPrometheus } from '../report/prometheus.js';
import type { MetricsCollector } from '../report/metrics.js';

/**
 * `--metrics-file PATH`: the node-exporter textfile, rewritten after each command. The series
 * of this command replace the same series in the file; the others (other groups, other
 * commands) stay, so one file holds the last backup of every group and the last drill.
 * Written to a temporary file in the same directory and renamed: the collector never reads
 * half a file. Two commands ending at the same instant may lose one's update (last rename wins).
 */
export async function writeMetricsFile(path: string, metrics: MetricsCollector): Promise<void> {
  let older = null;
  try {
    older = parseOwnPrometheus(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const text = renderPrometheus(mergeFamilies(older ?? [], metrics.toFamilies()));
  // Not ending in .prom: the collector skips it while it is being written.
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeFile(temp, text, { mode: 0o644 });
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
