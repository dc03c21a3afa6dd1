import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Catalog } from '../../src/catalog/catalog.js';
import type { Group, Policy } from '../../src/policy/types.js';
import { Repository } from '../../src/repository/repository.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import type { ObjectStore } from '../../src/storage/types.js';

/** A cheap KDF so tests do not spend their time in scrypt. */
export const TEST_KDF = { algorithm: 'scrypt', N: 1024, r: 8, p: 1, salt: Buffer.alloc(16, 7).toString('base64') } as const;

export function tempDir(name: string): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), `lakeguard-${name}-`));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Deterministic pseudo-random bytes (xorshift32), for reproducible test data. */
export function prng(seed: number): (n: number) => Buffer {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    }
    return out;
  };
}

export function writeTree(root: string, files: Record<string, Buffer | string>): void {
  for (const [key, body] of Object.entries(files)) {
    const path = join(root, key);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, body);
  }
}

/** key → sha256 of every file under root. */
export function hashTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(root, path).split('\\').join('/'), createHash('sha256').update(readFileSync(path)).digest('hex'));
    }
  };
  walk(root);
  return out;
}

export function testPolicy(repoUrl: string, groups: Group[], overrides: Partial<Policy> = {}): Policy {
  return {
    version: 1,
    file: '<test>',
    repository: { url: repoUrl, encryption: 'aes-256-gcm' },
    s3: {},
    groups,
    concurrency: { list: 4, transfer: 8 },
    timezone: 'UTC',
    ...overrides,
  };
}

export async function initRepo(
  store: ObjectStore,
  opts: { password?: string | null; packSize?: number; chunker?: { minSize: number; avgSize: number; maxSize: number } } = {},
): Promise<Repository> {
  return Repository.init(store, {
    password: opts.password === undefined ? 'test-password' : opts.password,
    kdf: { ...TEST_KDF },
    ...(opts.packSize === undefined ? {} : { packSize: opts.packSize }),
    ...(opts.chunker === undefined ? {} : { chunker: opts.chunker }),
  });
}

export function openCatalog(dir: string, repo: Repository): Catalog {
  return Catalog.open(join(dir, 'catalog.db'), repo.id);
}

/**
 * A fresh temporary directory with an encrypted repository and its catalog in it, and an empty
 * in-memory bucket named `bucket` to back up: what the restore tests of lakes written in memory
 * start from. `close` closes the catalog and removes the directory.
 */
export async function bucketLake(name: string, bucket: string): Promise<{ dir: ReturnType<typeof tempDir>; repo: Repository; catalog: Catalog; bucket: MemStore; close: () => void }> {
  const dir = tempDir(name);
  const repo = await initRepo(new FsStore({ root: join(dir.path, 'repo'), fsync: false }));
  const catalog = openCatalog(dir.path, repo);
  return {
    dir,
    repo,
    catalog,
    bucket: new MemStore({ name: bucket }),
    close: () => {
      catalog.close();
      dir.cleanup();
    },
  };
}

/** The keys under `prefix` of a store, sorted. */
export async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of store.list(prefix)) if (item.kind === 'object') keys.push(item.key);
  return keys.sort();
}
