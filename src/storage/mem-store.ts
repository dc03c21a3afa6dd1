import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { StorageError } from '../errors.js';
import { compareKeys } from '../util/key-order.js';
import { abortable, rollUp } from './common.js';
import {
  newRequestStats,
  readAll,
  type GetOptions,
  type GetResult,
  type ListItem,
  type ListOptions,
  type ObjectEntry,
  type ObjectMeta,
  type ObjectRetention,
  type ObjectStore,
  type PutOptions,
  type PutResult,
  type RequestStats,
  type StoreCapabilities,
} from './types.js';

/**
 * An in-memory ObjectStore for tests, with S3's versioning semantics: when versioning is on,
 * every put adds a version with a random id and a delete without versionId adds a delete
 * marker; objects written while versioning was off keep the version id null (as in S3, where
 * they are "null" versions). A version that is a delete marker reads as NotFound (S3 answers
 * 405 there; S3Store maps that to NotFound too).
 */
export interface MemStoreOptions {
  versioning?: boolean;
  /** Clock for lastModified; the store keeps lastModified strictly increasing regardless. */
  now?: () => Date;
  /** Keys per simulated list page, for request counting (default 1000, like S3). */
  pageSize?: number;
  /** Shown in `location` and error messages (default a random `mem://` name). */
  name?: string;
  /**
   * Simulate a bucket with S3 Object Lock enabled (implies versioning): puts may carry a
   * retention, and deleting a retained version by id fails with AccessDenied, as on S3.
   */
  objectLock?: boolean;
}

interface MemVersion {
  versionId: string | null;
  deleteMarker: boolean;
  body: Buffer;
  etag: string;
  lastModified: Date;
  contentType?: string;
  contentEncoding?: string;
  cacheControl?: string;
  contentDisposition?: string;
  metadata: Record<string, string>;
  tags: Record<string, string>;
  storageClass: string;
  retention?: ObjectRetention;
}

export class MemStore implements ObjectStore {
  readonly location: string;
  readonly stats: RequestStats = newRequestStats();
  readonly capabilities: StoreCapabilities = { tags: true, versions: true, objectLock: true, serverSideCopy: false };
  private readonly objects = new Map<string, MemVersion[]>(); // per key, newest first
  private versioning: boolean;
  private everVersioned: boolean;
  private readonly now: () => Date;
  private readonly pageSize: number;
  get listPageSize(): number {
    return this.pageSize;
  }
  private lastTime = 0;
  private readonly lockEnabled: boolean;

  constructor(opts: MemStoreOptions = {}) {
    this.lockEnabled = opts.objectLock ?? false;
    this.versioning = (opts.versioning ?? false) || this.lockEnabled;
    this.everVersioned = this.versioning;
    this.now = opts.now ?? (() => new Date());
    this.pageSize = Math.max(1, opts.pageSize ?? 1000);
    this.location = `mem://${opts.name ?? randomBytes(4).toString('hex')}/`;
  }

  /** Turn versioning on or off (off after on = S3's "Suspended"). */
  setVersioning(on: boolean): void {
    this.versioning = on;
    if (on) this.everVersioned = true;
  }

  async versioningEnabled(): Promise<boolean> {
    return this.everVersioned;
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncGenerator<ListItem> {
    const { signal } = opts;
    signal?.throwIfAborted();
    // The store already holds everything in memory; a sorted snapshot of the key names is fine.
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys);
    const self = this;
    let inPage = 0;
    function* entries(): Generator<ObjectEntry> {
      for (const key of keys) {
        const versions = self.objects.get(key);
        if (!versions || versions.length === 0) continue; // deleted while listing
        const chosen = opts.versions ? versions : versions[0]!.deleteMarker ? [] : [versions[0]!];
        for (const v of chosen) yield toEntry(key, v, v === versions[0]);
      }
    }
    this.stats.list++;
    for await (const item of rollUp(entries(), prefix, opts.delimiter, opts.startAfter)) {
      signal?.throwIfAborted();
      if (inPage === this.pageSize) {
        this.stats.list++;
        inPage = 0;
      }
      inPage++;
      yield item;
    }
  }

  async head(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<ObjectMeta> {
    this.stats.head++;
    return toMeta(this.find('HEAD', key, opts.versionId));
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    opts.signal?.throwIfAborted();
    this.stats.get++;
    const v = this.find('GET', key, opts.versionId);
    let data = v.body;
    if (opts.range) {
      const { start, end } = opts.range;
      if (start < 0 || end < start || start >= v.body.length) {
        throw new StorageError('Other', `GET ${this.where(key, opts.versionId)}: InvalidRange (416): bytes=${start}-${end} of ${v.body.length}`, {
          backendCode: 'InvalidRange',
        });
      }
      data = v.body.subarray(start, Math.min(end, v.body.length - 1) + 1);
    }
    this.stats.bytesIn += data.length;
    return { body: abortable(Readable.from([Buffer.from(data)], { objectMode: false }), opts.signal), meta: toMeta(v) };
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions = {}): Promise<PutResult> {
    this.checkKey('PUT', key);
    const data = Buffer.isBuffer(body) ? Buffer.from(body) : await readAll(body);
    opts.signal?.throwIfAborted();
    this.stats.put++;
    // Check and write with no await in between: create-only is atomic here.
    const versions = this.objects.get(key) ?? [];
    if (opts.ifNoneMatch && versions[0] && !versions[0].deleteMarker) {
      throw new StorageError('PreconditionFailed', `PUT ${this.where(key)}: PreconditionFailed (412): the key already exists`);
    }
    if (opts.objectLock && !this.lockEnabled) {
      throw new StorageError('Other', `PUT ${this.where(key)}: InvalidRequest (400): Object Lock is not enabled on this bucket`, { backendCode: 'InvalidRequest' });
    }
    const v: MemVersion = {
      versionId: this.versioning ? newVersionId() : null,
      deleteMarker: false,
      ...(opts.objectLock === undefined ? {} : { retention: { ...opts.objectLock } }),
      body: data,
      etag: createHash('md5').update(data).digest('hex'),
      lastModified: this.tick(),
      metadata: lowerKeys(opts.metadata ?? {}),
      tags: { ...(opts.tags ?? {}) },
      storageClass: 'STANDARD',
      ...(opts.contentType === undefined ? {} : { contentType: opts.contentType }),
      ...(opts.contentEncoding === undefined ? {} : { contentEncoding: opts.contentEncoding }),
      ...(opts.cacheControl === undefined ? {} : { cacheControl: opts.cacheControl }),
      ...(opts.contentDisposition === undefined ? {} : { contentDisposition: opts.contentDisposition }),
    };
    this.objects.set(key, [v, ...this.withoutNullVersion(versions)]);
    this.stats.bytesOut += data.length;
    return { etag: v.etag, versionId: v.versionId };
  }

  async delete(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<void> {
    this.checkKey('DELETE', key);
    this.stats.delete++;
    const versions = this.objects.get(key) ?? [];
    let next: MemVersion[];
    if (opts.versionId !== undefined) {
      const id = opts.versionId === 'null' ? null : opts.versionId;
      const retained = versions.find((v) => v.versionId === id)?.retention;
      if (retained !== undefined && retained.retainUntil.getTime() > this.now().getTime()) {
        throw new StorageError('AccessDenied', `DELETE ${this.where(key, opts.versionId)}: AccessDenied (403): the version is under ${retained.mode} retention`, {
          backendCode: 'AccessDenied',
        });
      }
      next = versions.filter((v) => v.versionId !== id);
    } else if (!this.everVersioned) {
      next = [];
    } else {
      const marker: MemVersion = {
        versionId: this.versioning ? newVersionId() : null,
        deleteMarker: true,
        body: Buffer.alloc(0),
        etag: '',
        lastModified: this.tick(),
        metadata: {},
        tags: {},
        storageClass: 'STANDARD',
      };
      next = [marker, ...this.withoutNullVersion(versions)];
    }
    if (next.length === 0) this.objects.delete(key);
    else this.objects.set(key, next);
  }

  async objectLockEnabled(): Promise<boolean> {
    this.stats.head++;
    return this.lockEnabled;
  }

  async getRetention(key: string, opts: { versionId?: string } = {}): Promise<ObjectRetention | null> {
    this.stats.head++;
    const r = this.find('GET retention', key, opts.versionId).retention;
    return r === undefined ? null : { ...r };
  }

  async putRetention(key: string, retention: ObjectRetention, opts: { versionId?: string } = {}): Promise<void> {
    this.stats.put++;
    const v = this.find('PUT retention', key, opts.versionId);
    if (!this.lockEnabled) throw new StorageError('Other', `PUT retention ${this.where(key)}: InvalidRequest (400): Object Lock is not enabled on this bucket`);
    const old = v.retention;
    if (old?.mode === 'COMPLIANCE' && (retention.mode !== 'COMPLIANCE' || retention.retainUntil < old.retainUntil) && old.retainUntil.getTime() > this.now().getTime()) {
      throw new StorageError('AccessDenied', `PUT retention ${this.where(key, opts.versionId)}: AccessDenied (403): a COMPLIANCE retention can only be extended`);
    }
    v.retention = { ...retention };
  }

  async copyVersion(key: string): Promise<PutResult> {
    throw new StorageError('Other', `COPY ${this.where(key)}: MemStore has no server-side copy (capabilities.serverSideCopy)`);
  }

  async getTags(key: string, opts: { versionId?: string } = {}): Promise<Record<string, string>> {
    this.stats.get++;
    return { ...this.find('GET tagging', key, opts.versionId).tags };
  }

  /** With versioning on, S3 keeps the old null version; otherwise the new write replaces it. */
  private withoutNullVersion(versions: MemVersion[]): MemVersion[] {
    return this.versioning ? versions : versions.filter((v) => v.versionId !== null);
  }

  private find(op: string, key: string, versionId: string | undefined): MemVersion {
    this.checkKey(op, key);
    const versions = this.objects.get(key) ?? [];
    const v =
      versionId === undefined ? versions[0] : versions.find((x) => x.versionId === (versionId === 'null' ? null : versionId));
    if (!v || v.deleteMarker) {
      const what = !v ? (versionId === undefined ? 'NoSuchKey (404)' : 'NoSuchVersion (404)') : 'the version is a delete marker';
      throw new StorageError('NotFound', `${op} ${this.where(key, versionId)}: ${what}`, {
        backendCode: versionId === undefined ? 'NoSuchKey' : 'NoSuchVersion',
      });
    }
    return v;
  }

  private checkKey(op: string, key: string): void {
    if (key === '') throw new StorageError('Other', `${op} ${this.location}: empty key`);
  }

  private where(key: string, versionId?: string): string {
    return `${this.location}${key}${versionId === undefined ? '' : `?versionId=${versionId}`}`;
  }

  private tick(): Date {
    this.lastTime = Math.max(this.now().getTime(), this.lastTime + 1);
    return new Date(this.lastTime);
  }
}

function toEntry(key: string, v: MemVersion, isLatest: boolean): ObjectEntry {
  return {
    kind: 'object',
    key,
    size: v.body.length,
    etag: v.etag,
    lastModified: v.lastModified,
    versionId: v.versionId,
    isLatest,
    isDeleteMarker: v.deleteMarker,
    ...(v.deleteMarker ? {} : { storageClass: v.storageClass }),
  };
}

function toMeta(v: MemVersion): ObjectMeta {
  return {
    size: v.body.length,
    etag: v.etag,
    lastModified: v.lastModified,
    versionId: v.versionId,
    metadata: { ...v.metadata },
    storageClass: v.storageClass,
    ...(v.contentType === undefined ? {} : { contentType: v.contentType }),
    ...(v.contentEncoding === undefined ? {} : { contentEncoding: v.contentEncoding }),
    ...(v.cacheControl === undefined ? {} : { cacheControl: v.cacheControl }),
    ...(v.contentDisposition === undefined ? {} : { contentDisposition: v.contentDisposition }),
    ...(Object.keys(v.tags).length === 0 ? {} : { tagCount: Object.keys(v.tags).length }),
  };
}

function lowerKeys(m: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k.toLowerCase(), v]));
}

function newVersionId(): string {
  return randomBytes(16).toString('base64url');
}
