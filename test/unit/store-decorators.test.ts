// The decorators that work around any store: RetryingStore (util/retry.ts's backoff, the error's
// own `retryable`) and CountingStore, on MemStore and FsStore. S3Store retries inside, per
// request; its retries are tested in s3-store.test.ts and against the real server.
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { CountingStore } from '../../src/storage/counting-store.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { RetryingStore } from '../../src/storage/retrying-store.js';
import { StoreDecorator } from '../../src/storage/store-decorator.js';
import { getBytes, readAll, type ListItem, type ListOptions, type ObjectStore } from '../../src/storage/types.js';
import { runStoreContract } from '../storage/contract.js';
import { FaultyStore } from '../helpers/faulty-store.js';
import { tempDir } from '../helpers/fixtures.js';

const fast = { baseDelayMs: 1, maxDelayMs: 2, sleep: async () => {} };

/** A store whose listings break off (retryably) after `after` entries, `times` times. */
class BreakingList extends StoreDecorator {
  breaks = 0;
  constructor(
    inner: ObjectStore,
    private readonly after: number,
    private times: number,
  ) {
    super(inner);
  }
  override async *list(prefix: string, opts?: ListOptions): AsyncGenerator<ListItem> {
    let n = 0;
    for await (const item of this.inner.list(prefix, opts)) {
      if (n++ === this.after && this.times > 0) {
        this.times--;
        this.breaks++;
        throw new StorageError('Network', `LIST ${this.location}${prefix}: connection reset [test]`, { backendCode: 'ECONNRESET' });
      }
      yield item;
    }
  }
}

async function keysOf(items: AsyncIterable<ListItem>): Promise<string[]> {
  const out: string[] = [];
  for await (const it of items) out.push(it.kind === 'object' ? `${it.key}${it.versionId ? `@${it.versionId}` : ''}` : `[${it.prefix}]`);
  return out;
}

describe('RetryingStore', () => {
  it('retries throttling, 5xx and resets of every call, counting every attempt beneath it', async () => {
    const mem = new MemStore();
    const faulty = new FaultyStore(mem, { rate: 0.5, faults: ['throttle', 'server', 'reset'], ops: ['GET', 'HEAD', 'PUT', 'DELETE', 'LIST'], seed: 7 });
    const counting = new CountingStore(faulty);
    const retries: string[] = [];
    const store = new RetryingStore(counting, { ...fast, maxAttempts: 20, onRetry: (e) => retries.push(e.code) });
    for (let i = 0; i < 20; i++) await store.put(`k/${i}`, Buffer.from(`v${i}`));
    for (let i = 0; i < 20; i++) expect((await getBytes(store, `k/${i}`)).toString()).toBe(`v${i}`);
    for (let i = 0; i < 20; i++) expect((await store.head(`k/${i}`)).size).toBe(`v${i}`.length);
    expect(await keysOf(store.list('k/'))).toHaveLength(20);
    for (let i = 0; i < 20; i++) await store.delete(`k/${i}`);
    expect(await keysOf(mem.list(''))).toEqual([]);
    const injected = Object.values(faulty.injected).reduce((a, b) => a + b, 0);
    expect(injected).toBeGreaterThan(10);
    expect(retries).toHaveLength(injected);
    expect(new Set(retries)).toEqual(new Set(['Throttled', 'ServerError', 'Network']));
    // The counting store beneath sees every attempt: 20 of each call, plus one per injected fault.
    const s = counting.stats;
    expect(s.put + s.get + s.head + s.list + s.delete).toBe(20 * 4 + 1 + injected);
  });

  it('does not retry what is not retryable, nor a streamed PUT', async () => {
    const mem = new MemStore();
    const counting = new CountingStore(mem);
    const store = new RetryingStore(counting, fast);
    await expect(store.get('missing')).rejects.toMatchObject({ code: 'NotFound' });
    expect(counting.stats.get).toBe(1);
    const faulty = new RetryingStore(new FaultyStore(mem, { rate: 1, faults: ['server'], ops: ['PUT'] }), { ...fast, maxAttempts: 3 });
    const { Readable } = await import('node:stream');
    await expect(faulty.put('s', Readable.from([Buffer.from('x')]))).resolves.toMatchObject({ versionId: null });
    await expect(faulty.put('b', Buffer.from('x'))).rejects.toMatchObject({ code: 'ServerError' });
  });

  it('resumes a broken listing after the last entry it yielded: every key once, in order', async () => {
    const mem = new MemStore({ pageSize: 3 });
    for (const k of ['a/1', 'a/2', 'b/1', 'c', 'd/x/1', 'd/y', 'e']) await mem.put(k, Buffer.from(k));
    const breaking = new BreakingList(mem, 2, 2);
    const store = new RetryingStore(breaking, fast);
    expect(await keysOf(store.list(''))).toEqual(['a/1', 'a/2', 'b/1', 'c', 'd/x/1', 'd/y', 'e']);
    expect(breaking.breaks).toBe(2);
    // With a delimiter, a common prefix is resumed after as a whole.
    const rolled = new RetryingStore(new BreakingList(mem, 1, 1), fast);
    expect(await keysOf(rolled.list('', { delimiter: '/' }))).toEqual(['[a/]', '[b/]', 'c', '[d/]', 'e']);
  });

  it('retries a version listing only before its first entry (a key\'s versions cannot be resumed halfway)', async () => {
    const mem = new MemStore({ versioning: true });
    for (const v of ['1', '2', '3']) await mem.put('k', Buffer.from(v));
    const early = new RetryingStore(new BreakingList(mem, 0, 1), fast);
    expect(await keysOf(early.list('', { versions: true }))).toHaveLength(3);
    const late = new RetryingStore(new BreakingList(mem, 1, 1), fast);
    await expect(keysOf(late.list('', { versions: true }))).rejects.toMatchObject({ code: 'Network', retryable: false });
  });

  it('retries a retryable FsStore error (EMFILE)', async () => {
    const dir = tempDir('retrying-fs');
    const fs = new FsStore({ root: dir.path });
    await fs.put('a', Buffer.from('x'));
    let emfile = 2;
    const flaky = new (class extends StoreDecorator {
      override head(key: string) {
        if (emfile-- > 0) return Promise.reject(new StorageError('Other', `HEAD ${key}: EMFILE: too many open files`, { backendCode: 'EMFILE', retryable: true }));
        return this.inner.head(key);
      }
    })(fs);
    const store = new RetryingStore(flaky, fast);
    expect((await store.head('a')).size).toBe(1);
    expect(emfile).toBe(-1);
    dir.cleanup();
  });
});

describe('CountingStore', () => {
  it('counts calls and bytes of any store, a stream as it is read', async () => {
    const store = new CountingStore(new MemStore());
    const { Readable } = await import('node:stream');
    await store.put('a', Buffer.from('12345'));
    await store.put('b', Readable.from([Buffer.from('123'), Buffer.from('4')]));
    expect(await readAll((await store.get('a')).body)).toEqual(Buffer.from('12345'));
    await store.head('b');
    await keysOf(store.list(''));
    await store.getTags('a');
    await store.versioningEnabled();
    await store.delete('a');
    expect(store.stats).toEqual({ list: 1, get: 2, head: 2, put: 2, delete: 1, bytesIn: 5, bytesOut: 9 });
    expect(store.capabilities).toEqual(new MemStore().capabilities);
  });
});

// The conformance suite holds through both decorators.
runStoreContract('MemStore (retrying, counting)', async () => ({ store: new RetryingStore(new CountingStore(new MemStore({ pageSize: 7 }))), cleanup: async () => {} }), {
  metadata: true,
  tags: true,
  stableEtag: true,
  manyKeys: 50,
  pagedList: false,
  largeBody: 3 * 1024 * 1024,
  atomicCreate: true,
});
