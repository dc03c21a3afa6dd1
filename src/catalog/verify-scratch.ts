import type BetterSqlite3 from 'better-sqlite3';
import type { Catalog } from './catalog.js';
import { sqlite } from './connection.js';
import { blobHashIs, blobReferencedSql } from './schema.js';

/** An index file's pack as verify reads it: [blob id hex, type, offset, stored length, raw length, compressed]. */
export interface IndexedPack {
  id: string;
  size: number;
  blobs: readonly (readonly [string, number, number, number, number, number])[];
}

export interface AffectedVersion {
  bucket: string;
  key: string;
  versionId: string | null;
  run: string;
}

/** What a piece of damage takes away: runs (their records or their versions) and object versions (listed up to a limit). */
export interface Affected {
  runs: string[];
  versions: AffectedVersion[];
  versionCount: number;
}

/** A blob a pack must hold, according to an index file or the catalog. */
export interface ExpectedBlob {
  hash: Buffer;
  offset: number;
  length: number;
}

type Row = Record<string, unknown>;

/**
 * What `verify` learns from the repository (the pack listing, every index file's entries,
 * every manifest's record blobs), held in temporary tables of the catalog's connection so
 * that a repository of millions of blobs is compared with the catalog in SQL, not in memory.
 * `close` drops the tables. All of verify's SQL is here.
 */
export class VerifyScratch {
  private readonly db: BetterSqlite3.Database;
  /** Whether vfy_entries has its indexes yet (made by the first comparison that reads it: entriesIndexed). */
  private indexed = false;
  /** vfy_names ids of the pack and index file names entries refer to (one per pack: far fewer than blobs). */
  private readonly nameIds = new Map<string, number>();

  constructor(private readonly catalog: Catalog) {
    this.db = sqlite(catalog);
    this.db.exec(`
      DROP TABLE IF EXISTS temp.vfy_present; DROP TABLE IF EXISTS temp.vfy_index_files; DROP TABLE IF EXISTS temp.vfy_index_packs;
      DROP TABLE IF EXISTS temp.vfy_entries; DROP TABLE IF EXISTS temp.vfy_manifests; DROP TABLE IF EXISTS temp.vfy_records; DROP TABLE IF EXISTS temp.vfy_names;
      CREATE TEMP TABLE vfy_present (name TEXT PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TEMP TABLE vfy_index_files (name TEXT PRIMARY KEY, readable INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TEMP TABLE vfy_index_packs (file TEXT NOT NULL, pack TEXT NOT NULL, size INTEGER NOT NULL);
      CREATE INDEX temp.vfy_index_packs_by_pack ON vfy_index_packs (pack);
      CREATE TEMP TABLE vfy_names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
      CREATE TEMP TABLE vfy_entries (hash BLOB NOT NULL, pack INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL, file INTEGER NOT NULL);
      CREATE TEMP TABLE vfy_manifests (run TEXT PRIMARY KEY, readable INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TEMP TABLE vfy_records (run TEXT NOT NULL, hash BLOB NOT NULL);
      CREATE INDEX temp.vfy_records_by_hash ON vfy_records (hash);
    `);
  }

  close(): void {
    if (!this.db.open) return;
    this.db.exec(`
      DROP TABLE IF EXISTS temp.vfy_present; DROP TABLE IF EXISTS temp.vfy_index_files; DROP TABLE IF EXISTS temp.vfy_index_packs;
      DROP TABLE IF EXISTS temp.vfy_entries; DROP TABLE IF EXISTS temp.vfy_manifests; DROP TABLE IF EXISTS temp.vfy_records; DROP TABLE IF EXISTS temp.vfy_names;
      DROP TABLE IF EXISTS temp.vfy_bad; DROP TABLE IF EXISTS temp.vfy_bad_runs;
    `);
  }

  // ---- what the repository holds ------------------------------------------------------

  addPresentPacks(packs: readonly { id: string; size: number }[]): void {
    const put = this.db.prepare('INSERT OR REPLACE INTO vfy_present (name, size) VALUES (?, ?)');
    this.catalog.transaction(() => packs.forEach((p) => put.run(p.id, p.size)));
  }

  /** An index file that was read (its packs and entries), or could not be (`packs` null). */
  addIndexFile(file: string, packs: readonly IndexedPack[] | null): void {
    const fileRow = this.db.prepare('INSERT OR REPLACE INTO vfy_index_files (name, readable) VALUES (?, ?)');
    const packRow = this.db.prepare('INSERT INTO vfy_index_packs (file, pack, size) VALUES (?, ?, ?)');
    const entry = this.db.prepare('INSERT INTO vfy_entries (hash, pack, offset, length, file) VALUES (?, ?, ?, ?, ?)');
    this.catalog.transaction(() => {
      fileRow.run(file, packs === null ? 0 : 1);
      const fileId = packs === null || packs.length === 0 ? 0 : this.nameId(file);
      for (const p of packs ?? []) {
        packRow.run(file, p.id, p.size);
        const packId = this.nameId(p.id);
        for (const b of p.blobs) entry.run(Buffer.from(b[0], 'hex'), packId, b[2], b[3], fileId);
      }
    });
  }

  /** A run manifest that was read (its record blobs), or could not be (`records` null). */
  addManifest(run: string, records: readonly string[] | null): void {
    const manifest = this.db.prepare('INSERT OR REPLACE INTO vfy_manifests (run, readable) VALUES (?, ?)');
    const record = this.db.prepare('INSERT INTO vfy_records (run, hash) VALUES (?, ?)');
    this.catalog.transaction(() => {
      manifest.run(run, records === null ? 0 : 1);
      for (const hex of records ?? []) record.run(run, Buffer.from(hex, 'hex'));
    });
  }

  /**
   * The vfy_names id of a pack or index file name. Entries refer to their pack and index file by
   * it: a row of vfy_entries is ~50 bytes instead of ~180 with both 64-character names, so the
   * table and its indexes stay in SQLite's page cache three times longer.
   */
  private nameId(name: string): number {
    let id = this.nameIds.get(name);
    if (id === undefined) {
      this.db.prepare('INSERT OR IGNORE INTO vfy_names (name) VALUES (?)').run(name);
      id = this.db.prepare('SELECT id FROM vfy_names WHERE name = ?').pluck().get(name) as number;
      this.nameIds.set(name, id);
    }
    return id;
  }

  /**
   * Indexes vfy_entries (every index file's entries, one row per blob of the repository) once it
   * is loaded, before the first comparison reads it. Built while loading, the index by blob id
   * took one random insert per entry: past SQLite's page cache (16 MB, about 200,000 entries)
   * each went to the temp file, and verify's time per blob grew with the repository (200,000
   * blobs: 7.5x the time of 50,000). CREATE INDEX after the load sorts instead. Entries added
   * later (none in verify's order) are indexed as they come.
   */
  private entriesIndexed(): void {
    if (this.indexed) return;
    this.db.exec('CREATE INDEX IF NOT EXISTS temp.vfy_entries_by_hash ON vfy_entries (hash); CREATE INDEX IF NOT EXISTS temp.vfy_entries_by_pack ON vfy_entries (pack)');
    this.indexed = true;
  }

  // ---- comparisons ----------------------------------------------------------------------

  /** Packs an index file or a catalogued version refers to that the listing does not have. */
  missingPacks(): { pack: string; listedBy: string[]; inCatalog: boolean }[] {
    this.entriesIndexed();
    const rows = this.db
      .prepare(
        `SELECT r.pack AS pack, (SELECT group_concat(file, ' ') FROM (SELECT DISTINCT file FROM vfy_index_packs ip WHERE ip.pack = r.pack ORDER BY file)) AS listedBy,
                EXISTS (SELECT 1 FROM packs p WHERE p.name = r.pack) AS inCatalog
         FROM (SELECT pack FROM vfy_index_packs UNION SELECT name FROM (${referencedPacksSql()})) r
         WHERE NOT EXISTS (SELECT 1 FROM vfy_present pr WHERE pr.name = r.pack) ORDER BY r.pack`,
      )
      .all() as Row[];
    return rows.map((r) => ({ pack: r.pack as string, listedBy: r.listedBy === null ? [] : (r.listedBy as string).split(' '), inCatalog: r.inCatalog === 1 }));
  }

  /**
   * Packs whose listed size differs from what an index file (`indexFile`) or the catalog
   * (`indexFile` null) recorded; per pack, index files by name, then the catalog.
   */
  sizeMismatches(): { pack: string; size: number; expected: number; indexFile: string | null }[] {
    this.entriesIndexed();
    return this.db
      .prepare(
        `SELECT ip.pack AS pack, pr.size AS size, ip.size AS expected, ip.file AS indexFile, 0 AS byCatalog
           FROM vfy_index_packs ip JOIN vfy_present pr ON pr.name = ip.pack WHERE pr.size != ip.size
         UNION ALL
         SELECT rp.name, pr.size, rp.size, NULL, 1 FROM (${referencedPacksSql()}) rp JOIN vfy_present pr ON pr.name = rp.name WHERE pr.size != rp.size
         ORDER BY 1, 5, 4`,
      )
      .all() as { pack: string; size: number; expected: number; indexFile: string | null }[];
  }

  /** Index entries that do not lie within their (existing) pack's blob area: per index file and pack. */
  entriesOutOfBounds(): { file: string; pack: string; count: number }[] {
    this.entriesIndexed();
    return this.db
      .prepare(
        `SELECT f.name AS file, p.name AS pack, count(*) AS count
         FROM vfy_entries e JOIN vfy_names p ON p.id = e.pack JOIN vfy_present pr ON pr.name = p.name JOIN vfy_names f ON f.id = e.file
         WHERE e.offset + e.length > pr.size - 4 GROUP BY e.file, e.pack ORDER BY f.name, p.name`,
      )
      .all() as { file: string; pack: string; count: number }[];
  }

  /**
   * Blobs catalogued versions need that no readable index file lists (a rebuild from the
   * repository would lose those versions), grouped by the index file the catalog says listed
   * them (null: none yet). Blobs listed in a missing pack are missingPacks' business.
   */
  unindexedCatalogBlobs(): { indexFile: string | null; hashes: Buffer[] }[] {
    this.entriesIndexed();
    const rows = this.db
      .prepare(
        `SELECT f.name AS file, b.hash AS hash FROM blobs b LEFT JOIN blob_index_files f ON f.id = b.index_file
         WHERE ${blobReferencedSql('b')}
           AND NOT EXISTS (SELECT 1 FROM vfy_entries e WHERE e.hash = b.hash)
         ORDER BY f.name`,
      )
      .all() as { file: string | null; hash: Buffer }[];
    const groups = new Map<string | null, Buffer[]>();
    for (const r of rows) {
      const list = groups.get(r.file) ?? [];
      list.push(r.hash);
      groups.set(r.file, list);
    }
    return [...groups].map(([indexFile, hashes]) => ({ indexFile, hashes }));
  }

  /**
   * Of these blobs, those the catalog locates in a pack the repository has: a new index file can
   * list them again (Catalog.markUnindexed makes the next backup or prune write one).
   */
  reindexable(hashes: readonly Buffer[]): Buffer[] {
    const present = this.db.prepare(
      `SELECT 1 FROM blobs b JOIN packs pk ON pk.id = b.pack JOIN vfy_present p ON p.name = pk.name WHERE ${blobHashIs('b', '@hash')}`,
    );
    return hashes.filter((hash) => present.get({ hash }) !== undefined);
  }

  /** Index files the catalog read that the repository no longer has. */
  catalogIndexFilesGone(): string[] {
    return this.db
      .prepare('SELECT name FROM index_files i WHERE NOT EXISTS (SELECT 1 FROM vfy_index_files v WHERE v.name = i.name) ORDER BY name')
      .pluck()
      .all() as string[];
  }

  /** Record blobs of readable manifests that no index file locates in an existing pack. */
  unreachableRecords(): { run: string; hash: Buffer; pack: string | null }[] {
    this.entriesIndexed();
    return this.db
      .prepare(
        `SELECT r.run AS run, r.hash AS hash, (SELECT n.name FROM vfy_entries e JOIN vfy_names n ON n.id = e.pack WHERE e.hash = r.hash LIMIT 1) AS pack FROM vfy_records r
         WHERE NOT EXISTS (SELECT 1 FROM vfy_entries e JOIN vfy_names n ON n.id = e.pack JOIN vfy_present pr ON pr.name = n.name WHERE e.hash = r.hash)
         ORDER BY r.run`,
      )
      .all() as { run: string; hash: Buffer; pack: string | null }[];
  }

  /** Runs the catalog knows as finished whose manifest is not in the repository. */
  runsWithoutManifest(): string[] {
    return this.db
      .prepare("SELECT id FROM runs WHERE status != 'running' AND NOT EXISTS (SELECT 1 FROM vfy_manifests m WHERE m.run = runs.id) ORDER BY seq")
      .pluck()
      .all() as string[];
  }

  /** Forgotten runs whose manifests their forget kept (forgotten_runs.manifest_kept) that the repository lacks. */
  keptManifestsMissing(): { run: string; forget: string }[] {
    return this.db
      .prepare('SELECT id AS run, forget FROM forgotten_runs f WHERE manifest_kept = 1 AND NOT EXISTS (SELECT 1 FROM vfy_manifests m WHERE m.run = f.id) ORDER BY id')
      .all() as { run: string; forget: string }[];
  }

  /** Packs nothing refers to (no index file, no catalog row): garbage of a killed writer, for prune. */
  unreferencedPacks(limit: number): { count: number; bytes: number; listed: { id: string; size: number }[] } {
    const where = `NOT EXISTS (SELECT 1 FROM vfy_index_packs ip WHERE ip.pack = pr.name) AND NOT EXISTS (SELECT 1 FROM packs p WHERE p.name = pr.name)`;
    const total = this.db.prepare(`SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes FROM vfy_present pr WHERE ${where}`).get() as { count: number; bytes: number };
    const listed = this.db.prepare(`SELECT name AS id, size FROM vfy_present pr WHERE ${where} ORDER BY name LIMIT ?`).all(limit) as { id: string; size: number }[];
    return { ...total, listed };
  }

  /** Existing packs that an index file or the catalog refers to: the ones read with --read-data. */
  packsToRead(): { name: string; size: number }[] {
    return this.db
      .prepare(
        `SELECT pr.name AS name, pr.size AS size FROM vfy_present pr
         WHERE EXISTS (SELECT 1 FROM vfy_index_packs ip WHERE ip.pack = pr.name) OR EXISTS (SELECT 1 FROM packs p WHERE p.name = pr.name)
         ORDER BY pr.name`,
      )
      .all() as { name: string; size: number }[];
  }

  /** Every blob index files or the catalog place in this pack. */
  expectedBlobs(pack: string): ExpectedBlob[] {
    this.entriesIndexed();
    return this.db
      .prepare(
        `SELECT hash, offset, length FROM vfy_entries WHERE pack = (SELECT id FROM vfy_names WHERE name = @pack)
         UNION SELECT b.hash, b.offset, b.length FROM blobs b JOIN packs p ON p.id = b.pack WHERE p.name = @pack
         ORDER BY 2`,
      )
      .all({ pack }) as ExpectedBlob[];
  }

  /**
   * What losing these blobs (and these runs' manifests) takes away: the runs whose manifests
   * list them as record blobs, the object versions whose content needs them, and the versions
   * the affected runs recorded (a rebuild loses them with the records).
   */
  affected(hashes: readonly Buffer[], runs: readonly string[], limit: number): Affected {
    const db = this.db;
    db.exec(`DROP TABLE IF EXISTS temp.vfy_bad; CREATE TEMP TABLE vfy_bad (hash BLOB PRIMARY KEY) WITHOUT ROWID;
             DROP TABLE IF EXISTS temp.vfy_bad_runs; CREATE TEMP TABLE vfy_bad_runs (run TEXT PRIMARY KEY) WITHOUT ROWID`);
    const putHash = db.prepare('INSERT OR IGNORE INTO vfy_bad (hash) VALUES (?)');
    const putRun = db.prepare('INSERT OR IGNORE INTO vfy_bad_runs (run) VALUES (?)');
    this.catalog.transaction(() => {
      hashes.forEach((h) => putHash.run(h));
      runs.forEach((r) => putRun.run(r));
      db.prepare('INSERT OR IGNORE INTO vfy_bad_runs (run) SELECT r.run FROM vfy_records r JOIN vfy_bad x ON x.hash = r.hash').run();
    });
    // CROSS JOIN keeps `vfy_bad` outside: one blobs_by_hash seek per bad id, not a scan of blobs.
    const versionIds = `
      SELECT v.id FROM vfy_bad x CROSS JOIN blobs bl ON ${blobHashIs('bl', 'x.hash')}
        JOIN versions v ON v.id IN (SELECT id FROM versions WHERE blob = bl.id UNION ALL SELECT version FROM version_blobs WHERE blob = bl.id)
      UNION SELECT v.id FROM vfy_bad_runs br JOIN runs r ON r.id = br.run JOIN versions v ON v.run = r.seq`;
    const versionCount = db.prepare(`SELECT count(*) FROM (${versionIds})`).pluck().get() as number;
    const versions = db
      .prepare(
        `SELECT bk.name AS bucket, o.key AS key, v.version_id AS versionId, r.id AS run
         FROM (${versionIds}) x JOIN versions v ON v.id = x.id JOIN objects o ON o.id = v.object JOIN buckets bk ON bk.id = o.bucket JOIN runs r ON r.seq = v.run
         ORDER BY bk.name, o.key, v.valid_from LIMIT ?`,
      )
      .all(limit) as AffectedVersion[];
    const allRuns = db
      .prepare(
        `SELECT run FROM vfy_bad_runs UNION
         SELECT DISTINCT r.id FROM (${versionIds}) x JOIN versions v ON v.id = x.id JOIN runs r ON r.seq = v.run ORDER BY 1`,
      )
      .pluck()
      .all() as string[];
    return { runs: allRuns, versions, versionCount };
  }
}

/** SQL: the catalog's packs that hold a blob a catalogued version needs (name, size). */
function referencedPacksSql(): string {
  return `SELECT p.name AS name, p.size AS size FROM packs p WHERE EXISTS (SELECT 1 FROM blobs b WHERE b.pack = p.id AND ${blobReferencedSql('b')})`;
}
