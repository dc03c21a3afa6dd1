import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import { StoreDecorator } from './store-decorator.js';
import {
  newRequestStats,
  type GetOptions,
  type GetResult,
  type ListItem,
  type ListOptions,
  type ObjectMeta,
  type ObjectRetention,
  type ObjectStore,
  type PutOptions,
  type PutResult,
  type RequestStats,
} from './types.js';

/**
 * Counts the calls made of any store, and the bytes read and written, in its own `stats`
 * (kinds as S3Store counts its requests: tags read as a GET, versioning, lock and retention
 * reads as a HEAD, a retention write as a PUT). Inside a RetryingStore it counts every attempt.
 * A listing counts once per call: only the store itself knows its pages (S3Store, MemStore and
 * FsStore count those in their own stats).
 */
export class CountingStore extends StoreDecorator {
  private readonly counted: RequestStats = newRequestStats();

  constructor(inner: ObjectStore) {
    super(inner);
  }

  override get stats(): RequestStats {
    return this.counted;
  }

  override list(prefix: string, opts?: ListOptions): AsyncIterable<ListItem> {
    this.counted.list++;
    return this.inner.list(prefix, opts);
  }

  override async get(key: string, opts?: GetOptions): Promise<GetResult> {
    this.counted.get++;
    const got = await this.inner.get(key, opts);
    if (got.bytes !== undefined) {
      this.counted.bytesIn += got.bytes.length;
      return got;
    }
    return { ...got, body: this.countedStream(got.body, 'bytesIn') };
  }

  override head(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<ObjectMeta> {
    this.counted.head++;
    return this.inner.head(key, opts);
  }

  override put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult> {
    this.counted.put++;
    if (Buffer.isBuffer(body)) {
      this.counted.bytesOut += body.length;
      return this.inner.put(key, body, opts);
    }
    return this.inner.put(key, this.countedStream(body, 'bytesOut'), opts);
  }

  override delete(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<void> {
    this.counted.delete++;
    return this.inner.delete(key, opts);
  }

  override getTags(key: string, opts?: { versionId?: string }): Promise<Record<string, string>> {
    this.counted.get++;
    return this.inner.getTags(key, opts);
  }

  override versioningEnabled(opts?: { signal?: AbortSignal }): Promise<boolean> {
    this.counted.head++;
    return this.inner.versioningEnabled(opts);
  }

  override objectLockEnabled(opts?: { signal?: AbortSignal }): Promise<boolean> {
    this.counted.head++;
    return this.inner.objectLockEnabled(opts);
  }

  override getRetention(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<ObjectRetention | null> {
    this.counted.head++;
    return this.inner.getRetention(key, opts);
  }

  override putRetention(key: string, retention: ObjectRetention, opts?: { versionId?: string; signal?: AbortSignal }): Promise<void> {
    this.counted.put++;
    return this.inner.putRetention(key, retention, opts);
  }

  /** The stream, its bytes counted as they are read (the chunks pass through, not copied). */
  private countedStream(body: Readable, field: 'bytesIn' | 'bytesOut'): Readable {
    const counted = this.counted;
    async function* pass(): AsyncGenerator<Buffer> {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        counted[field] += chunk.length;
        yield chunk;
      }
    }
    return ReadableStream.from(pass(), { objectMode: false });
  }
}
