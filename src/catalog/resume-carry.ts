/**
 * The catalog's side of resuming a killed shard attempt (engine/resume.ts): the newest version
 * row of a run (what a checkpoint covers), and a temporary table of the versions an earlier
 * attempt checkpointed, looked up by (bucket, key, version id) as the listing meets them. The
 * table lives in SQLite's temp store: a shard's millions of records never sit in the heap.
 */
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';
import type { VersionRecord } from './types.js';

const TABLE = 'temp.resume_carry';

/** The newest version row run `seq` recorded (null: none). */
export function lastVersionRowOfRun(catalog: Catalog, seq: number): number | null {
  return (sqlite(catalog).prepare('SELECT max(id) FROM versions WHERE run = ?').pluck().get(seq) as number | null) ?? null;
}

/** An empty table of carryable versions (replacing one left over), and how to add to it (a newer addition of the same version replaces the older). */
export function newCarryTable(catalog: Catalog): (record: VersionRecord) => void {
  const db = sqlite(catalog);
  db.exec(`DROP TABLE IF EXISTS ${TABLE}; CREATE TABLE ${TABLE} (bucket TEXT NOT NULL, key TEXT NOT NULL, vid TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (bucket, key, vid)) WITHOUT ROWID`);
  const insert = db.prepare(`INSERT OR REPLACE INTO ${TABLE} (bucket, key, vid, record) VALUES (?, ?, ?, ?)`);
  return (r) => void insert.run(r.bucket, r.key, r.versionId ?? '', JSON.stringify(r));
}

/** A lookup in the table of carryable versions, or null when there is none. */
export function carryLookup(catalog: Catalog): ((bucket: string, key: string, versionId: string | null) => VersionRecord | undefined) | null {
  const db = sqlite(catalog);
  if (db.prepare("SELECT 1 FROM temp.sqlite_master WHERE name = 'resume_carry'").get() === undefined) return null;
  const get = db.prepare(`SELECT record FROM ${TABLE} WHERE bucket = ? AND key = ? AND vid = ?`).pluck();
  return (bucket, key, versionId) => {
    const text = get.get(bucket, key, versionId ?? '') as string | undefined;
    return text === undefined ? undefined : (JSON.parse(text) as VersionRecord);
  };
}

export function dropCarryTable(catalog: Catalog): void {
  sqlite(catalog).exec(`DROP TABLE IF EXISTS ${TABLE}`);
}
