import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { StorageError } from '../../src/errors.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import type { GetOptions, GetResult, ListItem, ListOptions, ObjectMeta, ObjectStore, PutOptions, PutResult } from '../../src/storage/types.js';

export type StoreFault = 'throttle' | 'server' | 'reset' | 'truncate';

export interface FaultyStoreOptions {
  /** Share of calls that fail (0..1). */
  rate: number;
  faults: StoreFault[];
  /**
   * Seed of the faults. Whether the n-th call of one operation on one key fails is a function
   * of (seed, operation, key, n) alone, not of the order in which concurrent calls arrive: a
   * test sees the same faults however its requests interleave on a loaded machine.
   */
  seed?: number;
  /**
   * Operations that may fail (default: GET only). S3Store retries every request itself, so
   * what reaches the layers above is mostly a GET body that breaks off after the headers.
   */
  ops?: ('LIST' | 'GET' | 'HEAD' | 'PUT' | 'DELETE')[];
}

/**
 * A decorator that makes any store misbehave like a busy S3 endpoint: throttling (503 with
 * Retry-After), 500s, connection resets, and GET bodies cut off mid-stream. It sits where the
 * S3 client's own retries do not reach, to test the layers above (for the HTTP level, the
 * tests put a proxy between lakeguard and the real server). Test code: it lives in test/helpers,
 * outside every shipped path.
 */
export class FaultyStore extends StoreDecorator {
  readonly injected: Record<StoreFault, number> = { throttle: 0, server: 0, reset: 0, truncate: 0 };
  /** Calls so far per operation and key (the n of the draw). */
  private readonly calls = new Map<string, number>();

  constructor(
    inner: ObjectStore,
    private readonly opts: FaultyStoreOptions,
  ) {
    super(inner);
  }

  override async *list(prefix: string, opts?: ListOptions): AsyncGenerator<ListItem> {
    this.maybeFail('LIST', prefix, false);
    yield* this.inner.list(prefix, opts);
  }

  override async get(key: string, opts?: GetOptions): Promise<GetResult> {
    const fault = this.maybeFail('GET', key, true);
    const result = await this.inner.get(key, opts);
    if (fault !== 'truncate') return result;
    return { ...result, body: Readable.from(cutOff(result.body, Math.floor(result.meta.size / 2), `GET ${this.location}${key}`)) };
  }

  override head(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<ObjectMeta> {
    this.maybeFail('HEAD', key, false);
    return this.inner.head(key, opts);
  }

  override put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<PutResult> {
    // A stream cannot be sent twice, so only buffered puts fail (as S3Store retries only those).
    if (Buffer.isBuffer(body)) this.maybeFail('PUT', key, false);
    return this.inner.put(key, body, opts);
  }

  override delete(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<void> {
    this.maybeFail('DELETE', key, false);
    return this.inner.delete(key, opts);
  }

  // Tags, versioning and Object Lock pass through untouched (no faults injected), so a lock repository can be wrapped.

  /** Throws an injected error, or returns 'truncate' for a GET whose body is to be cut off. */
  private maybeFail(op: string, key: string, canTruncate: boolean): 'truncate' | null {
    if (!(this.opts.ops ?? ['GET']).includes(op as 'GET')) return null;
    const [fails, pick] = this.draw(op, key);
    if (fails >= this.opts.rate) return null;
    const choices = this.opts.faults.filter((f) => canTruncate || f !== 'truncate');
    if (choices.length === 0) return null;
    const fault = choices[Math.floor(pick * choices.length)]!;
    this.injected[fault]++;
    const where = `${op} ${this.location}${key}`;
    switch (fault) {
      case 'throttle':
        throw new StorageError('Throttled', `${where}: SlowDown (503) [injected]`, { backendCode: 'SlowDown', retryAfterMs: 1 });
      case 'server':
        throw new StorageError('ServerError', `${where}: InternalError (500) [injected]`, { backendCode: 'InternalError' });
      case 'reset':
        throw new StorageError('Network', `${where}: connection reset [injected]`, { backendCode: 'ECONNRESET' });
      case 'truncate':
        return 'truncate';
    }
  }

  /** Two numbers in [0, 1) for the next call of `op` on `key`. */
  private draw(op: string, key: string): [number, number] {
    const id = `${op} ${key}`;
    const n = this.calls.get(id) ?? 0;
    this.calls.set(id, n + 1);
    const digest = createHash('sha256').update(`${this.opts.seed ?? 1}\0${id}\0${n}`).digest();
    return [digest.readUInt32LE(0) / 2 ** 32, digest.readUInt32LE(4) / 2 ** 32];
  }
}

/** Passes `limit` bytes of a body through, then fails as a reset connection would. */
async function* cutOff(body: Readable, limit: number, where: string): AsyncGenerator<Buffer> {
  let sent = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (sent + chunk.length > limit) {
      if (limit > sent) yield chunk.subarray(0, limit - sent);
      body.destroy();
      throw new StorageError('Network', `${where}: connection reset after ${limit} bytes [injected]`, { backendCode: 'ECONNRESET' });
    }
    sent += chunk.length;
    yield chunk;
  }
}
