/**
 * Restore drills as the catalog holds them (schema 6): one row per drills/<name> document of
 * the repository, so `runs` and `calendar` show drills next to the runs they tested.
 */
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';

/**
 * drills/<UTC YYYYMMDDTHHMMSSZ>-<6 hex>: one restore drill (docs/repository-format.md
 * "drills/", docs/drill.md). `id` is the document's own name. Fields are only ever added.
 */
export interface DrillDocument {
  version: 1;
  id: string;
  host: string;
  /** ISO 8601 UTC: when the drill ended. */
  created: string;
  /** What was drilled: `group:NAME`, `bucket:NAME/PREFIX` or `keys:FILE`. */
  scope: string;
  /** The restored state: `run <id>`, `state at <time>`... */
  state: string;
  /** The run whose state was restored, or the newest at the drilled instant; null without one. */
  run: string | null;
  /** Every sampled object restored and every byte verified. */
  ok: boolean;
  /** Objects in the selected state, objects sampled, restored, verified, damaged. */
  objects: { selected: number; sampled: number; restored: number; verified: number; damaged: number };
  bytes: number;
  /** Restore wall time (RTO), verification time, and the whole drill, ms. */
  rtoMs: number;
  verifyMs: number;
  durationMs: number;
  /** Age of the newest run at the drilled instant, ms (RPO); null without any run. */
  rpoMs: number | null;
  /** The first damaged objects (bucket, key, why). */
  damaged: { bucket: string; key: string; problem: string }[];
}

/** A drill as `runs` lists it. */
export interface DrillRow {
  name: string;
  created: number;
  scope: string;
  ok: boolean;
  doc: DrillDocument;
}

/** Records a drill (written here or read from the repository); idempotent. */
export function insertDrill(catalog: Catalog, doc: DrillDocument): void {
  sqlite(catalog)
    .prepare('INSERT OR IGNORE INTO drills (name, created, scope, ok, doc) VALUES (?, ?, ?, ?, ?)')
    .run(doc.id, Date.parse(doc.created), doc.scope, doc.ok ? 1 : 0, JSON.stringify(doc));
}

/** Names of the drill documents this catalog has recorded. */
export function knownDrills(catalog: Catalog): Set<string> {
  return new Set(sqlite(catalog).prepare('SELECT name FROM drills').pluck().all() as string[]);
}

/** Drills, oldest first; with `from`/`to` (ms), those that ended in [from, to). */
export function listDrills(catalog: Catalog, range: { from?: number; to?: number } = {}): DrillRow[] {
  const rows = sqlite(catalog)
    .prepare('SELECT name, created, scope, ok, doc FROM drills WHERE created >= ? AND created < ? ORDER BY created, name')
    .all(range.from ?? 0, range.to ?? Number.MAX_SAFE_INTEGER) as { name: string; created: number; scope: string; ok: number; doc: string }[];
  return rows.map((r) => ({ name: r.name, created: r.created, scope: r.scope, ok: r.ok === 1, doc: JSON.parse(r.doc) as DrillDocument }));
}

/**
 * The objects a drill could not restore, in a temporary table of the catalog's connection (a
 * drill of `--all` may fail millions: none is held in memory). Verification skips them, so
 * each is damage once. `close` drops the table.
 */
export class DrillFailures {
  private readonly insert;
  private readonly lookup;

  constructor(private readonly catalog: Catalog) {
    const db = sqlite(catalog);
    db.exec('DROP TABLE IF EXISTS temp.drill_failed; CREATE TEMP TABLE drill_failed (bucket TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (bucket, key)) WITHOUT ROWID');
    this.insert = db.prepare('INSERT OR IGNORE INTO temp.drill_failed (bucket, key) VALUES (?, ?)');
    this.lookup = db.prepare('SELECT 1 FROM temp.drill_failed WHERE bucket = ? AND key = ?');
  }

  /** Records a failed object; false when it was recorded already. */
  add(bucket: string, key: string): boolean {
    return this.insert.run(bucket, key).changes > 0;
  }

  has(bucket: string, key: string): boolean {
    return this.lookup.get(bucket, key) !== undefined;
  }

  close(): void {
    const db = sqlite(this.catalog);
    if (db.open) db.exec('DROP TABLE IF EXISTS temp.drill_failed');
  }
}
