// What bench/shard-range.mjs and bench/shard-nights.mjs share: an in-memory lake backed up into a
// `file://` repository by in-process engine calls (as `lakeguard backup --shards I/N` makes them),
// Spark-like part-file names, and a store that counts GETs and bytes per repository directory.
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A UUID-shaped, deterministic name part for part file i (Spark writes one per file). */
export function uuid(i) {
  const h = createHash('sha256').update(`uuid-${i}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The DirCounter class over the engine's StoreDecorator: GETs and bytes read by repository directory. */
export function dirCounterClass(StoreDecorator, { sizes = false } = {}) {
  return class DirCounter extends StoreDecorator {
    constructor(inner) {
      super(inner);
      this.dirs = {};
    }
    /** Every GET counts, a missing object's too (a shard looks for the run set's plan); bytes as the store serves them. */
    async get(key, opts) {
      const d = (this.dirs[key.slice(0, key.indexOf('/'))] ??= sizes ? { gets: 0, bytes: 0, sizes: [] } : { gets: 0, bytes: 0 });
      d.gets++;
      const r = await this.inner.get(key, opts);
      const size = r.meta.size;
      const bytes = opts?.range === undefined ? size : Math.max(0, Math.min(opts.range.end, size - 1) - opts.range.start + 1);
      d.bytes += bytes;
      if (sizes) d.sizes.push(bytes);
      return r;
    }
    /** What was read since the last take, and starts counting afresh. */
    take() {
      const out = this.dirs;
      this.dirs = {};
      return out;
    }
  };
}

/**
 * A fresh bench directory with a repository (`<dir>/repository`, scrypt made cheap) and an
 * in-memory lake (bucket `lake`) that one group backs up under `prefixes`. `engine(path)` imports
 * a module of the lakeguard under measurement (its dist/).
 */
export async function shardLake({ engine, dir, password, prefixes, file }) {
  const { Repository } = await engine('repository/repository.js');
  const { FsStore } = await engine('storage/fs-store.js');
  const { MemStore } = await engine('storage/mem-store.js');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const repoDir = join(dir, 'repository');
  const kdf = { algorithm: 'scrypt', N: 1024, r: 8, p: 1, salt: Buffer.alloc(16, 7).toString('base64') };
  const repo = await Repository.init(new FsStore({ root: repoDir, fsync: false }), { password, kdf });
  const lake = new MemStore({ name: 'lake' });
  const group = { name: 'lake', sources: [{ kind: 'path', path: '/lake', prefixes, exclude: [] }], retention: {} };
  const policy = {
    version: 1,
    file,
    repository: { url: pathToFileURL(repoDir).href, encryption: 'aes-256-gcm' },
    s3: {},
    groups: [group],
    concurrency: { list: 16, transfer: 32 },
    timezone: 'UTC',
  };
  const source = () => ({ bucket: 'lake', objectStore: lake, prefixes, isExcluded: () => false });
  // What planning lists of the source (the policy names a path; the lake is in memory): its LIST, weight 1 a key.
  async function* lakeKeys(segment, signal, after) {
    for await (const item of lake.list(segment.prefix, after === undefined ? {} : { startAfter: after })) if (item.kind === 'object') yield { key: item.key, weight: 1 };
  }
  return { repo, repoDir, lake, group, policy, source, lakeKeys };
}
