import type { Readable } from 'node:stream';
import type {
  CopySource,
  GetOptions,
  GetResult,
  ListItem,
  ListOptions,
  ObjectMeta,
  ObjectRetention,
  ObjectStore,
  PutOptions,
  PutResult,
  RequestStats,
  StoreCapabilities,
  ThawOptions,
  ThawState,
} from './types.js';
import { StorageError } from '../errors.js';

/**
 * A store that passes every call to the store it wraps: the base of decorators (request
 * counting, fault injection in tests, a test's gate), which override only what they change.
 * Location, counters and capabilities are the inner store's.
 */
export class StoreDecorator implements ObjectStore {
  /**
   * The inner store's, and absent as it is: restore takes a store without one for a store that
   * can hold any key (a bucket), and applies a directory's rules only to one that has it.
   */
  readonly putRefusal?: (key: string, size: number) => Promise<StorageError | null>;

  constructor(protected readonly inner: ObjectStore) {
    if (inner.putRefusal !== undefined) this.putRefusal = (key, size) => inner.putRefusal!(key, size);
  }

  get location(): string {
    return this.inner.location;
  }

  get stats(): RequestStats {
    return this.inner.stats;
  }

  get capabilities(): StoreCapabilities {
    return this.inner.capabilities;
  }

  list(prefix: string, opts?: ListOptions): AsyncIterable<ListItem> {
    return this.inner.list(prefix, opts);
  }

  get(key: string, opts?: GetOptions): Promise<GetResult> {
    return this.inner.get(key, opts);
  }

  head(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<ObjectMeta> {
    return this.inner.head(key, opts);
  }

  put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult> {
    return this.inner.put(key, body, opts);
  }

  delete(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<void> {
    return this.inner.delete(key, opts);
  }

  getTags(key: string, opts?: { versionId?: string }): Promise<Record<string, string>> {
    return this.inner.getTags(key, opts);
  }

  versioningEnabled(opts?: { signal?: AbortSignal }): Promise<boolean> {
    return this.inner.versioningEnabled(opts);
  }

  objectLockEnabled(opts?: { signal?: AbortSignal }): Promise<boolean> {
    return this.inner.objectLockEnabled(opts);
  }

  getRetention(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<ObjectRetention | null> {
    return this.inner.getRetention(key, opts);
  }

  putRetention(key: string, retention: ObjectRetention, opts?: { versionId?: string; signal?: AbortSignal }): Promise<void> {
    return this.inner.putRetention(key, retention, opts);
  }

  copyVersion(key: string, from: CopySource, opts?: { signal?: AbortSignal }): Promise<PutResult> {
    return this.inner.copyVersion(key, from, opts);
  }

  thaw(key: string, opts: ThawOptions): Promise<ThawState> {
    if (this.inner.thaw === undefined) return Promise.reject(new StorageError('Other', `${this.location}: this store keeps no archived objects to thaw`));
    return this.inner.thaw(key, opts);
  }
}
