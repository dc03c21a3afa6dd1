import { basename } from 'node:path';
import { compileExcludes } from '../policy/glob.js';
import type { Policy, S3Source, Source } from '../policy/types.js';
import { storeCredentials, type CredentialsProvider, type CredentialsSpec } from '../storage/credentials.js';
import { FsStore } from '../storage/fs-store.js';
import { S3Store } from '../storage/s3-store.js';
import type { ObjectStore } from '../storage/types.js';

export interface OpenedSource {
  /**
   * The name objects are catalogued under: the bucket name, or for a local directory its
   * `name:` or else its base name (restores address it the same way as a bucket).
   */
  bucket: string;
  objectStore: ObjectStore;
  prefixes: string[];
  isExcluded: (key: string) => boolean;
  /** The bucket keeps versions: list every version (set at the start of each run). */
  versioned?: boolean;
  /** Where the bucket's S3 Inventory reports are (policy `inventory:`): a backup lists from the newest one. */
  inventory?: SourceInventory;
}

/** The `inventory:` of a bucket source, with the endpoint and region to read it through (the source's). */
export interface SourceInventory {
  /** `s3://bucket/prefix/`: the configuration folder holding the dated report folders. */
  url: string;
  endpoint?: string;
  region?: string;
  /** The source's credentials: its inventory reports are read as the source is. */
  credentials?: CredentialsProvider;
  profile?: string;
}

/** The S3Store credential options of a bucket source (its own, or `override`'s). */
function sourceCredentials(source: S3Source, where: { endpoint?: string; region?: string }, override: CredentialsSpec | undefined): ReturnType<typeof storeCredentials> {
  const spec = override ?? source.credentials;
  const label = override === undefined ? `source bucket ${source.bucket}` : `restore target ${source.bucket}`;
  return storeCredentials(spec, { label, ...where });
}

export function sourceName(source: Source): string {
  return source.kind === 's3' ? source.bucket : (source.name ?? basename(source.path));
}

/**
 * Opens a source. A bucket is read with its own `credentials:` (the policy's), else the default
 * chain; `writeCredentials` replaces them where a restore writes into the bucket (`--in-place`
 * with `--to-profile` or `--to-role-arn`).
 */
export function openSource(source: Source, policy: Policy, opts: { maxSockets?: number; writeCredentials?: CredentialsSpec } = {}): OpenedSource {
  let store: ObjectStore;
  let inventory = {};
  if (source.kind === 's3') {
    const where = definedOnly({ endpoint: source.endpoint ?? policy.s3.endpoint, region: source.region ?? policy.s3.region });
    const credentials = sourceCredentials(source, where, opts.writeCredentials);
    store = new S3Store({ bucket: source.bucket, ...where, ...(opts.maxSockets === undefined ? {} : { maxSockets: opts.maxSockets }), ...credentials });
    if (source.inventory !== undefined) inventory = { inventory: { url: source.inventory, ...where, ...credentials } };
  } else {
    store = new FsStore({ root: source.path, fsync: false, userFiles: true });
  }
  return { bucket: sourceName(source), objectStore: store, prefixes: outermostPrefixes(source.prefixes), isExcluded: compileExcludes(source.exclude), ...inventory };
}

/** Drops prefixes covered by another one (`a/` covers `a/b/`), so no key is scanned twice. */
export function outermostPrefixes(prefixes: readonly string[]): string[] {
  const sorted = [...new Set(prefixes)].sort((a, b) => a.length - b.length);
  const kept: string[] = [];
  for (const p of sorted) if (!kept.some((k) => p.startsWith(k))) kept.push(p);
  return kept.sort();
}

/**
 * What to list of a source for a `--prefix` option (undefined or '': all of it): the option where
 * it lies inside a policy prefix, each policy prefix inside it, none inside another (so each key
 * is listed once). Empty when the option is outside everything the policy backs up: those keys
 * were never in a backup.
 */
export function prefixesWithin(prefixes: readonly string[], prefix = ''): string[] {
  const scopes = new Set<string>();
  for (const p of outermostPrefixes(prefixes)) {
    if (prefix.startsWith(p)) scopes.add(prefix);
    else if (p.startsWith(prefix)) scopes.add(p);
  }
  return outermostPrefixes([...scopes]);
}

export function definedOnly<T extends Record<string, unknown>>(obj: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out as { [K in keyof T]?: Exclude<T[K], undefined> };
}
