/**
 * What a restore reads from the catalog: the state of some scopes at a cut, materialized in
 * connection-local temp tables (temp.sel, then temp.plan in pack order) and read back page by
 * page, and the inventory of what the restore target already holds (temp.target), so neither
 * the selection nor a target of millions of keys is held in memory.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Catalog, Scope, StateCut, TargetKey } from './catalog.js';
import { etagSql, lastModifiedSql } from './codec.js';
import { cutParams, runCutSql } from './diff-queries.js';
import { sqlite } from './connection.js';
import type { BlobLocation, RestoreItem, RunRow, StoredMeta } from './types.js';

type Row = Record<string, unknown>;

/** Statements prepared against a catalog's current temp tables (recreated by each selection or inventory). */
interface TempLookups {
  /** Against temp.sel, by their SQL (selectionStatement). */
  selection: Map<string, BetterSqlite3.Statement>;
  target?: BetterSqlite3.Statement;
}

const tempLookups = new WeakMap<Catalog, TempLookups>();

function lookupsOf(catalog: Catalog): TempLookups {
  let lookups = tempLookups.get(catalog);
  if (lookups === undefined) tempLookups.set(catalog, (lookups = { selection: new Map() }));
  return lookups;
}

/**
 * A statement over the current selection (temp.sel), prepared once per selection: lookups made
 * for every key (restore's and rollback's) would otherwise compile the same SQL each time.
 */
export function selectionStatement(catalog: Catalog, sql: string, pluck = false): BetterSqlite3.Statement {
  const cache = lookupsOf(catalog).selection;
  const id = `${pluck ? 'pluck:' : ''}${sql}`;
  let stmt = cache.get(id);
  if (stmt === undefined) {
    stmt = sqlite(catalog).prepare(sql);
    if (pluck) stmt.pluck();
    cache.set(id, stmt);
  }
  return stmt;
}

/**
 * Materializes the versions that make up the state of `scopes` at `cut` into a temp table,
 * ordered so that objects stored in the same pack are adjacent (one coalesced read per pack).
 * Returns the number of objects selected. Resolution happens in SQL, never in JS.
 */
export function selectState(catalog: Catalog, scopes: readonly Scope[], cut: StateCut): number {
  const db = sqlite(catalog);
  db.exec('DROP TABLE IF EXISTS temp.sel; DROP TABLE IF EXISTS temp.plan');
  db.exec('CREATE TEMP TABLE sel (version INTEGER PRIMARY KEY, bucket TEXT, key TEXT); CREATE INDEX temp.sel_by_key ON sel (bucket, key)');
  lookupsOf(catalog).selection.clear(); // prepared against the table just replaced
  const cutSql = 'runSeq' in cut ? runCutSql('run', cut, 'cut') : 'valid_from <= @cut';
  const cutBinding = cutParams(cut, 'cut');
  const selectSql = (bounded: boolean): string =>
    `INSERT OR IGNORE INTO sel (version, bucket, key)
     SELECT v.id, b.name, o.key FROM objects o JOIN buckets b ON b.id = o.bucket
     JOIN versions v ON v.id = (SELECT id FROM versions WHERE object = o.id AND ${cutSql} ORDER BY valid_from DESC, id DESC LIMIT 1)
     WHERE b.name = @bucket AND o.key >= @lo ${bounded ? 'AND o.key < @hi' : ''} AND v.delete_marker = 0`;
  const bounded = db.prepare(selectSql(true));
  const open = db.prepare(selectSql(false));
  const exact = db.prepare(
    `INSERT OR IGNORE INTO sel (version, bucket, key)
     SELECT v.id, b.name, o.key FROM objects o JOIN buckets b ON b.id = o.bucket JOIN versions v ON v.object = o.id
     WHERE b.name = @bucket AND o.key = @key AND v.version_id IS @versionId AND v.delete_marker = 0
     ORDER BY v.valid_from DESC, v.id DESC LIMIT 1`, // a reinstated version has several records of the same content
  );
  catalog.transaction(() => {
    for (const s of scopes) {
      if (s.versionId !== undefined && s.key !== undefined) {
        // S3's "null" version (written while versioning was off or suspended) is catalogued as NULL: its newest record.
        exact.run({ bucket: s.bucket, key: s.key, versionId: s.versionId === 'null' ? null : s.versionId });
        continue;
      }
      const lo = s.key ?? s.prefix ?? '';
      const hi = s.key !== undefined ? s.key + '\u0000' : s.prefix ? s.prefix + '\u{10FFFF}' : null;
      if (hi === null) open.run({ bucket: s.bucket, lo, ...cutBinding });
      else bounded.run({ bucket: s.bucket, lo, hi, ...cutBinding });
    }
  });
  db.exec(
    `CREATE TEMP TABLE plan AS
     SELECT sel.version AS version, sel.bucket AS bucket, sel.key AS key, v.blob IS NULL AND vb0.blob IS NOT NULL AS multi,
            bl.pack AS pack, bl.offset AS offset
     FROM sel JOIN versions v ON v.id = sel.version LEFT JOIN version_blobs vb0 ON vb0.version = sel.version AND vb0.seq = 0
     LEFT JOIN blobs bl ON bl.id = coalesce(v.blob, vb0.blob)
     ORDER BY multi, bl.pack, bl.offset`,
  );
  return db.prepare('SELECT count(*) FROM plan').pluck().get() as number;
}

/** Whether the selected state holds this key (for --delete-extra). */
export function selectedHas(catalog: Catalog, bucket: string, key: string): boolean {
  // Prepared once: --keys-from may ask this for every one of many keys.
  return selectionStatement(catalog, 'SELECT 1 FROM temp.sel WHERE bucket = ? AND key = ?').get(bucket, key) !== undefined;
}

/** A key of the selected state below `key` as a directory (`key/…`), if any: a directory target holds `key` or those, not both. */
export function selectedKeyBelow(catalog: Catalog, bucket: string, key: string): string | undefined {
  return selectionStatement(catalog, 'SELECT key FROM temp.sel WHERE bucket = ? AND key >= ? AND key < ? ORDER BY key LIMIT 1', true).get(bucket, `${key}/`, `${key}0`) as string | undefined;
}

/**
 * Up to `n` objects of the selected state (selectState), chosen at random by SQLite: a restore
 * drill's sample. Only the sample is held in memory (a drill's --sample is bounded).
 */
export function sampleSelection(catalog: Catalog, n: number): { bucket: string; key: string }[] {
  return sqlite(catalog).prepare('SELECT bucket, key FROM sel ORDER BY random() LIMIT ?').all(n) as { bucket: string; key: string }[];
}

/** A page of the selected state, in plan order (rowid). */
export function statePage(catalog: Catalog, afterRowid: number, limit: number): { rowid: number; items: RestoreItem[] } {
  const db = sqlite(catalog);
  const rows = db
    .prepare(
      `SELECT plan.rowid AS rowid, plan.version AS versionRow, plan.bucket AS bucket, plan.key AS key, v.version_id AS versionId,
              v.size AS size, ${etagSql('v.etag')} AS etag, ${lastModifiedSql('v')} AS lastModified, m.json AS meta
       FROM plan JOIN versions v ON v.id = plan.version LEFT JOIN metas m ON m.id = v.meta
       WHERE plan.rowid > ? ORDER BY plan.rowid LIMIT ?`,
    )
    .all(afterRowid, limit) as Row[];
  if (rows.length === 0) return { rowid: afterRowid, items: [] };
  const blobs = db
    .prepare(
      `SELECT x.version AS version, bl.hash AS hash, p.name AS pack, bl.offset AS offset, bl.length AS length,
              bl.raw_length AS rawLength, bl.flags AS flags
       FROM (SELECT v.id AS version, 0 AS seq, v.blob AS blob FROM plan JOIN versions v ON v.id = plan.version
               WHERE plan.rowid > @after AND plan.rowid <= @last AND v.blob IS NOT NULL
             UNION ALL
             SELECT vb.version, vb.seq, vb.blob FROM plan JOIN version_blobs vb ON vb.version = plan.version
               WHERE plan.rowid > @after AND plan.rowid <= @last) x
       JOIN blobs bl ON bl.id = x.blob JOIN packs p ON p.id = bl.pack
       ORDER BY x.version, x.seq`,
    )
    .all({ after: afterRowid, last: rows.at(-1)!.rowid }) as Row[];
  const byVersion = new Map<number, BlobLocation[]>();
  for (const b of blobs) {
    const list = byVersion.get(b.version as number) ?? [];
    list.push(blobLocationOf(b));
    byVersion.set(b.version as number, list);
  }
  const items = rows.map((r) => ({
    versionRow: r.versionRow as number,
    bucket: r.bucket as string,
    key: r.key as string,
    versionId: r.versionId as string | null,
    size: r.size as number,
    etag: r.etag as string | null,
    lastModified: r.lastModified as number,
    meta: r.meta === null ? {} : (JSON.parse(r.meta as string) as StoredMeta),
    blobs: byVersion.get(r.versionRow as number) ?? [],
  }));
  return { rowid: rows.at(-1)!.rowid as number, items };
}

// ---- restore target inventory ------------------------------------------------------------

/**
 * Starts an empty inventory of what a restore target already holds (a temp table, so a
 * target of millions of keys is never held in memory): overwrite decisions and
 * --delete-extra read it.
 */
export function beginTargetInventory(catalog: Catalog): void {
  const db = sqlite(catalog);
  db.exec(
    'DROP TABLE IF EXISTS temp.target; CREATE TEMP TABLE target (bucket TEXT, key TEXT, target_key TEXT, size INTEGER, etag TEXT, last_modified INTEGER, PRIMARY KEY (bucket, key))',
  );
  lookupsOf(catalog).target = db.prepare('SELECT bucket, key, target_key AS targetKey, size, etag, last_modified AS lastModified FROM temp.target WHERE bucket = ? AND key = ?');
}

/** Adds keys the target holds to the inventory. */
export function addTargetKeys(catalog: Catalog, rows: readonly TargetKey[]): void {
  const add = sqlite(catalog).prepare('INSERT OR REPLACE INTO temp.target (bucket, key, target_key, size, etag, last_modified) VALUES (?, ?, ?, ?, ?, ?)');
  catalog.transaction(() => rows.forEach((r) => add.run(r.bucket, r.key, r.targetKey, r.size, r.etag, r.lastModified ?? null)));
}

/** What the target holds at a selected key (from the inventory), or undefined. */
export function targetKeyOf(catalog: Catalog, bucket: string, key: string): TargetKey | undefined {
  const target = lookupsOf(catalog).target;
  if (target === undefined) throw new Error('targetKeyOf before beginTargetInventory');
  return target.get(bucket, key) as TargetKey | undefined;
}

/** A page of inventoried target keys that the selected state does not hold (--delete-extra), in rowid order. */
export function extraTargetKeys(catalog: Catalog, afterRowid: number, limit: number): (TargetKey & { rowid: number })[] {
  return sqlite(catalog)
    .prepare(
      `SELECT t.rowid AS rowid, t.bucket AS bucket, t.key AS key, t.target_key AS targetKey, t.size AS size, t.etag AS etag, t.last_modified AS lastModified FROM temp.target t
       WHERE t.rowid > ? AND NOT EXISTS (SELECT 1 FROM temp.sel s WHERE s.bucket = t.bucket AND s.key = t.key) ORDER BY t.rowid LIMIT ?`,
    )
    .all(afterRowid, limit) as (TargetKey & { rowid: number })[];
}

/**
 * For a selection that came out empty: the newest run at or before the cut and the oldest
 * after it that recorded a live (not deleted) version in the scopes, so the error can name
 * where data is. Null when none did; `ever` says whether the scopes ever held a key.
 */
export function dataRunsAround(catalog: Catalog, scopes: readonly Scope[], cut: StateCut): { before: RunRow | null; after: RunRow | null; ever: boolean } {
  const inCut = 'runSeq' in cut ? runCutSql('v.run', cut, 'cut') : 'v.valid_from <= @cut';
  const sql = (side: '<=' | '>', order: 'DESC' | 'ASC'): string =>
    `SELECT v.run FROM objects o JOIN versions v ON v.object = o.id
     WHERE o.bucket = (SELECT id FROM buckets WHERE name = @bucket) AND o.key >= @lo AND o.key < @hi
       AND v.delete_marker = 0 AND ${side === '<=' ? inCut : `NOT ${inCut}`} ORDER BY v.run ${order} LIMIT 1`;
  const db = sqlite(catalog);
  const beforeStmt = db.prepare(sql('<=', 'DESC')).pluck();
  const afterStmt = db.prepare(sql('>', 'ASC')).pluck();
  const anyStmt = db.prepare('SELECT 1 FROM objects o WHERE o.bucket = (SELECT id FROM buckets WHERE name = @bucket) AND o.key >= @lo AND o.key < @hi LIMIT 1');
  let before: number | null = null;
  let after: number | null = null;
  let ever = false;
  for (const s of scopes) {
    const lo = s.key ?? s.prefix ?? '';
    const params = { bucket: s.bucket, lo, hi: s.key !== undefined ? s.key + '\u0000' : lo + '\u{10FFFF}', ...cutParams(cut, 'cut') };
    ever ||= anyStmt.get(params) !== undefined;
    const b = beforeStmt.get(params) as number | undefined;
    const a = afterStmt.get(params) as number | undefined;
    if (b !== undefined && (before === null || b > before)) before = b;
    if (a !== undefined && (after === null || a < after)) after = a;
  }
  const runs = before === null && after === null ? [] : catalog.listRuns();
  return { before: runs.find((r) => r.seq === before) ?? null, after: runs.find((r) => r.seq === after) ?? null, ever };
}

/** A blob's location from a row of `hash, pack (name), offset, length, rawLength, flags`. */
export function blobLocationOf(r: Row): BlobLocation {
  return {
    hash: r.hash as Buffer,
    pack: r.pack as string,
    offset: r.offset as number,
    length: r.length as number,
    rawLength: r.rawLength as number,
    compressed: ((r.flags as number) & 1) === 1,
  };
}
