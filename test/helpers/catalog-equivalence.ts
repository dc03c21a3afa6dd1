/**
 * For tests that compare a catalog changed in place (a widened prefix scope, a moved shard range)
 * with a fresh sync of the same scope: a canonical dump of what a catalog learned, a repository
 * directory that counts reads, and a lake that refuses some reads.
 */
import type { Catalog } from '../../src/catalog/catalog.js';
import { sqlite } from '../../src/catalog/connection.js';
import { catalogScope, scopeOverlapsRange, type CatalogPrefix } from '../../src/catalog/scope.js';
import type { RunManifest } from '../../src/engine/finalize.js';
import type { Repository } from '../../src/repository/repository.js';
import { StorageError } from '../../src/errors.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import type { GetOptions } from '../../src/storage/types.js';

/** The repository directory, counting reads by directory; `onPackRead` runs after each pack read. */
export class CountingFs extends FsStore {
  reads = { packs: 0, index: 0, runs: 0 };
  onPackRead: (() => void) | null = null;
  override async get(key: string, opts?: GetOptions) {
    const dir = key.split('/')[0] as keyof CountingFs['reads'];
    if (dir in this.reads) this.reads[dir]++;
    const got = await super.get(key, opts);
    if (dir === 'packs') this.onPackRead?.();
    return got;
  }
  resetReads(): void {
    this.reads = { packs: 0, index: 0, runs: 0 };
  }
}

/** A lake whose reads of the keys in `denied` fail (a backup records a failure for each). */
export class DenyingLake extends MemStore {
  denied = new Set<string>();
  override async get(key: string, opts?: GetOptions) {
    if (this.denied.has(key)) throw new StorageError('AccessDenied', `GET ${key}: Access Denied`);
    return super.get(key, opts);
  }
}

/**
 * Everything a catalog learned from the repository, without row ids (which differ between two
 * catalogs that hold the same): runs, versions with their blobs, signals and run, objects with
 * their newest version, dropped versions, failures, blob locations, packs, documents applied,
 * anomaly verdicts, the scope. `indexFile`: compare the name of the index file that lists a blob,
 * or only whether one does (a shard's own backup names the index file it wrote, where a fresh
 * scoped sync locates the blob from the records).
 */
export function catalogDump(cat: Catalog, opts: { indexFile: 'name' | 'whether' }) {
  const db = sqlite(cat);
  const all = (sql: string) => db.prepare(sql).all();
  const versionRow = `b.name AS bucket, o.key AS key, v.version_id AS versionId, v.delete_marker AS dm, v.size AS size, v.etag AS etag,
    v.last_modified AS lastModified, v.valid_from AS validFrom, v.storage_class AS storageClass, m.json AS meta, r.id AS run,
    (SELECT hex(bl.hash) FROM blobs bl WHERE bl.id = v.blob) AS blob,
    (SELECT group_concat(hex(bl.hash), ',') FROM (SELECT blob FROM version_blobs WHERE version = v.id ORDER BY seq) vb JOIN blobs bl ON bl.id = vb.blob) AS blobs,
    (SELECT signals FROM version_signals WHERE version = v.id) AS signals`;
  const from = 'FROM versions v JOIN objects o ON o.id = v.object JOIN buckets b ON b.id = o.bucket JOIN runs r ON r.seq = v.run LEFT JOIN metas m ON m.id = v.meta';
  const indexFile = opts.indexFile === 'name' ? 'f.name AS indexFile' : 'bl.index_file IS NOT NULL AS indexed';
  return {
    scope: catalogScope(cat),
    runs: all('SELECT id, grp, started, finished, status, host, counters FROM runs ORDER BY id'),
    versions: all(`SELECT ${versionRow} ${from} ORDER BY bucket, key, validFrom, versionId, run`),
    objects: all(
      `SELECT b.name AS bucket, o.key AS key, (SELECT r.id || ' ' || v.valid_from || ' ' || ifnull(v.version_id, '-') FROM versions v JOIN runs r ON r.seq = v.run WHERE v.id = o.latest) AS latest
       FROM objects o JOIN buckets b ON b.id = o.bucket ORDER BY bucket, key`,
    ),
    dropped: all('SELECT b.name AS bucket, o.key AS key, d.version_id AS versionId FROM dropped_versions d JOIN objects o ON o.id = d.object JOIN buckets b ON b.id = o.bucket ORDER BY 1, 2, 3'),
    failures: all('SELECT r.id AS run, f.bucket, f.key, f.version_id, f.code, f.message FROM failures f JOIN runs r ON r.seq = f.run ORDER BY 1, 2, 3, 4'),
    blobs: all(
      `SELECT hex(bl.hash) AS hash, p.name AS pack, bl.offset, bl.length, bl.raw_length, bl.flags, ${indexFile}
       FROM blobs bl JOIN packs p ON p.id = bl.pack LEFT JOIN blob_index_files f ON f.id = bl.index_file ORDER BY hash`,
    ),
    packs: all('SELECT name, size FROM packs ORDER BY name'),
    forgets: all('SELECT name, created FROM forgets ORDER BY name'),
    forgotten: all('SELECT id, forget FROM forgotten_runs ORDER BY id'),
    anomalies: all('SELECT r.id AS run, a.suspect, a.flagged, a.findings FROM run_anomalies a JOIN runs r ON r.seq = a.run ORDER BY run'),
    incomplete: db.prepare("SELECT value FROM catalog_info WHERE name = 'sync_incomplete'").pluck().get() ?? null,
  };
}

/** The record blobs of the repository's runs whose key range overlaps `scope`: what a sync of it reads. */
export async function recordBlobsOverlapping(repo: Repository, scope: CatalogPrefix[]): Promise<number> {
  let n = 0;
  for (const name of await repo.listNames('runs')) {
    const m = await repo.readDocument<RunManifest>('runs', name);
    n += m.recordRanges!.filter((r) => scopeOverlapsRange(scope, r.first, r.last)).length;
  }
  return n;
}
