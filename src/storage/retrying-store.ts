import type { Readable } from 'node:stream';
import { StorageError } from '../errors.js';
import { withRetry, type RetryOptions } from '../util/retry.js';
import { StoreDecorator } from './store-decorator.js';
import type { GetOptions, GetResult, ListItem, ListOptions, ObjectMeta, ObjectRetention, ObjectStore, PutOptions, PutResult } from './types.js';

/**
 * Retries the calls of any store that fail with a retryable StorageError (throttling, 5xx,
 * resets; for a directory, EMFILE/EAGAIN/EBUSY), with util/retry.ts's backoff: the one retry
 * mechanism, whose classification is the error's own `retryable` (set where the error is made:
 * s3-errors.ts for S3, fs-store.ts for files). Calls are retried whole; a GET up to its result
 * (a body that breaks off later is the reader's to handle), a PUT only of a Buffer (a stream
 * cannot be sent twice), a listing from after the last entry it yielded (a version listing only
 * before its first entry: a key's versions cannot be resumed halfway).
 *
 * S3Store needs none: it retries each request inside (a list page, a GET up to its headers)
 * with the same mechanism, counting every attempt. Wrap stores that do not retry (FsStore).
 */
export class RetryingStore extends StoreDecorator {
  constructor(
    inner: ObjectStore,
    private readonly retry: Omit<RetryOptions, 'signal'> = {},
  ) {
    super(inner);
  }

  private run<T>(signal: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
    return withRetry(call, { ...this.retry, ...(signal === undefined ? {} : { signal }) });
  }

  override async *list(prefix: string, opts: ListOptions = {}): AsyncGenerator<ListItem> {
    let after = opts.startAfter;
    let yielded = false;
    let iterator: AsyncIterator<ListItem> | null = null;
    for (;;) {
      const next = await this.run(opts.signal, async () => {
        iterator ??= this.inner.list(prefix, after === undefined ? opts : { ...opts, startAfter: after })[Symbol.asyncIterator]();
        try {
          return await iterator.next();
        } catch (err) {
          iterator = null;
          // Resuming after a key would skip the rest of its versions.
          if (opts.versions && yielded && err instanceof StorageError && err.retryable) throw notRetried(err);
          throw err;
        }
      });
      if (next.done === true) return;
      const item = next.value;
      after = item.kind === 'object' ? item.key : item.prefix;
      yielded = true;
      yield item;
    }
  }

  override get(key: string, opts?: GetOptions): Promise<GetResult> {
    return this.run(opts?.signal, () => this.inner.get(key, opts));
  }

  override head(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<ObjectMeta> {
    return this.run(opts?.signal, () => this.inner.head(key, opts));
  }

  override put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult> {
    if (!Buffer.isBuffer(body)) return this.inner.put(key, body, opts);
    return this.run(opts?.signal, () => this.inner.put(key, body, opts));
  }

  override delete(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<void> {
    return this.run(opts?.signal, () => this.inner.delete(key, opts));
  }

  override getTags(key: string, opts?: { versionId?: string }): Promise<Record<string, string>> {
    return this.run(undefined, () => this.inner.getTags(key, opts));
  }

  override versioningEnabled(opts?: { signal?: AbortSignal }): Promise<boolean> {
    return this.run(opts?.signal, () => this.inner.versioningEnabled(opts));
  }

  override objectLockEnabled(opts?: { signal?: AbortSignal }): Promise<boolean> {
    return this.run(opts?.signal, () => this.inner.objectLockEnabled(opts));
  }

  override getRetention(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<ObjectRetention | null> {
    return this.run(opts?.signal, () => this.inner.getRetention(key, opts));
  }

  override putRetention(key: string, retention: ObjectRetention, opts?: { versionId?: string; signal?: AbortSignal }): Promise<void> {
    return this.run(opts?.signal, () => this.inner.putRetention(key, retention, opts));
  }
}

/** The same error, not to be retried. */
function notRetried(err: StorageError): StorageError {
  return new StorageError(err.code, err.message, {
    backendCode: err.backendCode,
    retryable: false,
    cause: err.cause,
    ...(err.hint === undefined ? {} : { hint: err.hint }),
  });
}
