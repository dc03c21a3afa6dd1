/**
 * A sample of a bucket's keys from its newest S3 Inventory report, for planning shard
 * boundaries of a bucket the catalog does not know yet (a seed): no LIST at all. Parquet
 * reports are sampled from their footers (each row group's smallest key and row count: a few
 * KiB per file; where a writer truncated the key statistics, the row group's first key is
 * read instead); CSV reports are read through once and sampled by reservoir (memory
 * bounded by `maxPoints`). Row counts include the report's older versions and delete markers
 * where the Parquet footer cannot tell them apart: a balance estimate, not a count. A Parquet
 * row group stands for its rows from its smallest key on, which holds when the report's files
 * are written in key order; where files interleave, shards are less balanced, never wrong
 * (every key still belongs to exactly one shard).
 */
import { parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { S3Store } from '../storage/s3-store.js';
import type { ObjectStore } from '../storage/types.js';
import { compareKeys } from '../util/key-order.js';
import { inventoryRows, rangedBuffer } from './inventory-files.js';
import { inventoryLocation, newestInventoryReport, type InventoryReport } from './inventory-report.js';
import { definedOnly, type SourceInventory } from './sources.js';

/** Keys of a report in key order, each standing for about `rows` rows at or before it (after the previous point). */
export interface InventoryKeySample {
  report: InventoryReport;
  /** Rows of the report (Parquet: all rows; CSV: current objects). */
  total: number;
  points: { key: string; rows: number }[];
}

const DEFAULT_POINTS = 10_000;

/**
 * Samples the keys of `bucket` from the newest report at `inventory` (for the shard planner:
 * src/engine/shards*.ts). `scratchDir`: where CSV reading may spool (nothing is left there).
 */
export async function sampleInventoryKeys(
  bucket: string,
  inventory: SourceInventory,
  opts: { scratchDir: string; maxPoints?: number; signal?: AbortSignal; reportStore?: ObjectStore },
): Promise<InventoryKeySample> {
  const at = inventoryLocation(inventory.url);
  const store = opts.reportStore ?? new S3Store({ bucket: at.bucket, ...definedOnly({ endpoint: inventory.endpoint, region: inventory.region, credentials: inventory.credentials, profile: inventory.profile }) });
  const report = await newestInventoryReport(store, at, bucket, opts.signal);
  const reservoir = new Reservoir(opts.maxPoints ?? DEFAULT_POINTS);
  const points: { key: string; rows: number }[] = [];
  if (report.format === 'Parquet') {
    const groups: { first: string; last: string | undefined; rows: number }[] = [];
    for (const file of report.files) {
      const buffer = rangedBuffer(store, file, opts.signal);
      const metadata = await parquetMetadataAsync(buffer);
      let start = 0;
      for (const group of metadata.row_groups) {
        const rows = Number(group.num_rows);
        const stats = group.columns.find((c) => c.meta_data?.path_in_schema.join('.') === 'key')?.meta_data?.statistics;
        const [min, max] = [stats?.min_value, stats?.max_value];
        const last = typeof max === 'string' && stats?.is_max_value_exact !== false ? max : undefined;
        if (typeof min === 'string' && stats?.is_min_value_exact !== false) groups.push({ first: min, last, rows });
        else if (rows > 0) {
          // No statistics, or a truncated min (not a key): the row group's first key is read.
          const [row] = await parquetReadObjects({ file: buffer, metadata, columns: ['key'], rowStart: start, rowEnd: start + 1 });
          if (typeof row?.key === 'string') groups.push({ first: row.key, last, rows });
        }
        start += rows;
      }
    }
    // A row group's rows lie from its first key up to the next group's first key: they are
    // counted at that key (the last group's at its own largest key, or its first).
    groups.sort((a, b) => compareKeys(a.first, b.first));
    groups.forEach((g, i) => points.push({ key: groups[i + 1]?.first ?? g.last ?? g.first, rows: g.rows }));
  } else {
    for await (const row of inventoryRows(store, report, { spoolDir: opts.scratchDir, ...definedOnly({ signal: opts.signal }) })) {
      if (row.isLatest && !row.isDeleteMarker) reservoir.add(row.key);
    }
  }
  const sampled = reservoir.keys();
  const weight = sampled.length === 0 ? 0 : reservoir.seen / sampled.length;
  points.push(...sampled.map((key) => ({ key, rows: weight })));
  points.sort((a, b) => compareKeys(a.key, b.key));
  return { report, total: points.reduce((n, p) => n + p.rows, 0), points };
}

/** Uniform sample of at most `size` keys from a stream of any length (Algorithm R). */
class Reservoir {
  seen = 0;
  private readonly sample: string[] = [];

  constructor(private readonly size: number) {}

  add(key: string): void {
    this.seen++;
    if (this.sample.length < this.size) this.sample.push(key);
    else {
      const i = Math.floor(Math.random() * this.seen);
      if (i < this.size) this.sample[i] = key;
    }
  }

  keys(): string[] {
    return this.sample;
  }
}
