import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { S3Store, type S3StoreOptions } from '../../src/storage/s3-store.js';
import { openStore } from '../../src/storage/open.js';
import { getBytes, readAll } from '../../src/storage/types.js';
import {
  createTestBucket,
  emptyAndDeleteBucket,
  S3_OTHER_USER,
  S3_TEST,
  S3_TEST_KMS_KEY_ID,
} from '../helpers/s3-env.js';
import { collect, runStoreContract, runVersioningContract } from './contract.js';

type Transport = S3Store['transport']['kind'];

/** A store on the test server; `transport` 'sdk' as LAKEGUARD_S3_TRANSPORT=sdk chooses it. */
function s3Store(bucket: string, extra: Partial<S3StoreOptions> = {}, transport: Transport = 'lean'): S3Store {
  const switched = process.env.LAKEGUARD_S3_TRANSPORT;
  if (transport === 'sdk') process.env.LAKEGUARD_S3_TRANSPORT = 'sdk';
  else delete process.env.LAKEGUARD_S3_TRANSPORT;
  let store: S3Store;
  try {
    store = new S3Store({
      bucket,
      endpoint: S3_TEST.endpoint,
      region: S3_TEST.region,
      credentials: { accessKeyId: S3_TEST.accessKeyId, secretAccessKey: S3_TEST.secretAccessKey },
      ...extra,
    });
  } finally {
    if (switched === undefined) delete process.env.LAKEGUARD_S3_TRANSPORT;
    else process.env.LAKEGUARD_S3_TRANSPORT = switched;
  }
  if (store.transport.kind !== transport) throw new Error(`expected the ${transport} transport, got ${store.transport.kind}`);
  return store;
}

async function bucketFixture(name: string, opts: { versioning?: boolean; objectLock?: boolean } = {}, extra: Partial<S3StoreOptions> = {}, transport: Transport = 'lean') {
  const bucket = await createTestBucket(name, opts);
  const store = s3Store(bucket, extra, transport);
  return {
    bucket,
    store,
    cleanup: async () => {
      store.destroy();
      await emptyAndDeleteBucket(bucket);
    },
  };
}

// The conformance suite over both transports. The lean one (the default) with S3's real page
// size; the SDK's with smaller pages and a smaller multipart body, to keep the run short while
// still paging and going multipart.
runStoreContract('S3Store (lean transport)', () => bucketFixture('lg-contract', {}, { prefix: 'store/root' }), {
  metadata: true,
  tags: true,
  stableEtag: true,
  manyKeys: 1060, // + 44 neighbours = 1,104 keys: two list pages
  pagedList: true,
  largeBody: 40 * 1024 * 1024, // 5 parts of 8 MiB
  atomicCreate: true,
  concurrency: 32,
});

runStoreContract('S3Store (SDK transport)', () => bucketFixture('lg-contract-sdk', {}, { prefix: 'store/root', listPageSize: 100 }, 'sdk'), {
  metadata: true,
  tags: true,
  stableEtag: true,
  manyKeys: 160, // + 44 neighbours = 204 keys: three list pages of 100
  pagedList: true,
  largeBody: 12 * 1024 * 1024, // 2 parts of 8 MiB
  atomicCreate: true,
  concurrency: 32,
});

runVersioningContract('S3Store (versioned bucket, lean transport)', () => bucketFixture('lg-versioned', { versioning: true }));
runVersioningContract('S3Store (versioned bucket, SDK transport)', () => bucketFixture('lg-versioned-sdk', { versioning: true }, {}, 'sdk'));

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('S3Store on the real server', () => {
  let fx: Awaited<ReturnType<typeof bucketFixture>>;
  let vfx: Awaited<ReturnType<typeof bucketFixture>>;
  beforeAll(async () => {
    fx = await bucketFixture('lg-s3store');
    vfx = await bucketFixture('lg-s3store-ver', { versioning: true });
  });
  afterAll(async () => {
    await fx?.cleanup();
    await vfx?.cleanup();
  });

  it('maps keys under the store prefix and back', async () => {
    const scoped = s3Store(fx.bucket, { prefix: '/tenant/a' });
    expect(scoped.location).toBe(`s3://${fx.bucket}/tenant/a/`);
    await scoped.put('x/y', Buffer.from('scoped'));
    expect((await getBytes(fx.store, 'tenant/a/x/y')).toString()).toBe('scoped');
    expect((await collect(scoped.list(''))).map((i) => (i.kind === 'object' ? i.key : i.prefix))).toEqual(['x/y']);
    expect(await collect(scoped.list('', { delimiter: '/' }))).toEqual([{ kind: 'prefix', prefix: 'x/' }]);
    scoped.destroy();
  });

  it('pages listings and version listings across awkward keys (url-encoded responses)', async () => {
    const keys = ['pg/a b', 'pg/a+b', 'pg/a%2Bb', 'pg/a%b', 'pg/ü', 'pg/日本', 'pg/😀', 'pg/\uE000', 'pg/tab\tx', 'pg/q?x=1&y', 'pg/z'];
    const small = s3Store(vfx.bucket, { listPageSize: 3 });
    for (const k of keys) {
      await small.put(k, Buffer.from('1'));
      await small.put(k, Buffer.from('22'));
    }
    const before = small.stats.list;
    const listed = (await collect(small.list('pg/'))).map((i) => (i.kind === 'object' ? i.key : i.prefix));
    expect(new Set(listed)).toEqual(new Set(keys));
    expect(listed).toHaveLength(keys.length);
    expect(small.stats.list - before).toBe(Math.ceil(keys.length / 3));
    const versions = await collect(small.list('pg/', { versions: true }));
    expect(versions).toHaveLength(keys.length * 2);
    const byKey = new Map<string, number>();
    for (const v of versions) if (v.kind === 'object') byKey.set(v.key, (byKey.get(v.key) ?? 0) + 1);
    expect([...byKey.values()].every((n) => n === 2)).toBe(true);
    expect(new Set(byKey.keys())).toEqual(new Set(keys));
    // Per key, the latest first.
    for (let i = 0; i < versions.length; i += 2) {
      expect(versions[i]).toMatchObject({ isLatest: true, size: 2 });
      expect(versions[i + 1]).toMatchObject({ isLatest: false, size: 1 });
    }
    small.destroy();
  });

  it('sends a Buffer above the threshold as multipart, with a HEAD-consistent etag', async () => {
    const store = s3Store(fx.bucket, { multipartThreshold: 6 * MiB, partSize: 5 * MiB });
    const data = randomBytes(12 * MiB);
    const put = await store.put('mp/buffer', data, { contentType: 'application/x-test', metadata: { a: '1' }, tags: { t: 'v' } });
    expect(put.etag).toMatch(/-3$/);
    // create + 3 parts + complete + tagging (Ceph ignores x-amz-tagging on multipart create)
    expect(store.stats.put).toBe(6);
    const head = await store.head('mp/buffer');
    expect(head).toMatchObject({ size: data.length, etag: put.etag, contentType: 'application/x-test', metadata: { a: '1' } });
    expect(await store.getTags('mp/buffer')).toEqual({ t: 'v' });
    expect(sha(await getBytes(store, 'mp/buffer'))).toBe(sha(data));
    store.destroy();
  });

  it('create-only multipart upload refuses an existing key', async () => {
    const store = s3Store(fx.bucket, { multipartThreshold: 6 * MiB, partSize: 5 * MiB });
    await store.put('mp/once', Buffer.from('first'));
    const err = await store.put('mp/once', randomBytes(12 * MiB), { ifNoneMatch: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('PreconditionFailed');
    expect((await getBytes(store, 'mp/once')).toString()).toBe('first');
    store.destroy();
  });

  it('returns versionIds from put and reads versions of multipart objects', async () => {
    const store = s3Store(vfx.bucket, { multipartThreshold: 6 * MiB, partSize: 5 * MiB });
    const a = randomBytes(11 * MiB);
    const b = Buffer.from('small');
    const pa = await store.put('mpv/k', Readable.from([a], { objectMode: false }));
    const pb = await store.put('mpv/k', b);
    expect(pa.versionId).toBeTruthy();
    expect(pb.versionId).toBeTruthy();
    expect(sha(await getBytes(store, 'mpv/k', { versionId: pa.versionId! }))).toBe(sha(a));
    expect((await store.head('mpv/k', { versionId: pa.versionId! })).etag).toBe(pa.etag);
    store.destroy();
  });

  it('puts with SSE-KMS (single and multipart) and reads back', async () => {
    const data = randomBytes(1000);
    await fx.store.put('kms/obj', data, { sseKmsKeyId: S3_TEST_KMS_KEY_ID });
    expect(await getBytes(fx.store, 'kms/obj')).toEqual(data);
    const store = s3Store(fx.bucket, { multipartThreshold: 6 * MiB, partSize: 5 * MiB });
    const big = randomBytes(11 * MiB);
    await store.put('kms/big', Readable.from([big], { objectMode: false }), { sseKmsKeyId: S3_TEST_KMS_KEY_ID });
    expect(sha(await getBytes(store, 'kms/big'))).toBe(sha(big));
    store.destroy();
  });

  it('puts with an Object Lock retention that refuses deletes of the version', async () => {
    const lock = await bucketFixture('lg-lock', { objectLock: true }, { multipartThreshold: 6 * MiB, partSize: 5 * MiB });
    try {
      const retainUntil = new Date(Date.now() + 24 * 3600_000);
      const small = await lock.store.put('locked/small', Buffer.from('keep me'), { objectLock: { mode: 'GOVERNANCE', retainUntil } });
      const big = await lock.store.put('locked/big', Readable.from([randomBytes(11 * MiB)], { objectMode: false }), {
        objectLock: { mode: 'GOVERNANCE', retainUntil },
      });
      for (const [key, put] of [
        ['locked/small', small],
        ['locked/big', big],
      ] as const) {
        expect(put.versionId).toBeTruthy();
        const err = await lock.store.delete(key, { versionId: put.versionId! }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StorageError);
        expect((err as StorageError).code).toBe('AccessDenied');
        expect((err as StorageError).message).toContain(`DELETE s3://${lock.bucket}/${key}?versionId=${put.versionId}`);
      }
    } finally {
      await lock.cleanup();
    }
  });

  // Both transports raise the same typed errors, classified the same way.
  it.each(['lean', 'sdk'] as const)('names bucket, key and S3 code in errors (%s transport)', async (transport) => {
    const missing = s3Store(`lg-no-such-bucket-${Date.now()}`, {}, transport);
    const e1 = await collect(missing.list('')).catch((e: unknown) => e);
    expect(e1).toMatchObject({ code: 'NoSuchBucket' });
    expect((e1 as Error).message).toMatch(/^LIST s3:\/\/lg-no-such-bucket-\d+\/: NoSuchBucket \(404\)/);
    await expect(missing.get('k')).rejects.toMatchObject({ code: 'NoSuchBucket' });
    missing.destroy();

    const store = s3Store(fx.bucket, {}, transport);
    const e2 = await store.get('nope/missing.json').catch((e: unknown) => e);
    expect((e2 as Error).message).toBe(`GET s3://${fx.bucket}/nope/missing.json: NoSuchKey (404)`);
    const e3 = await store.head('nope/missing.json', { versionId: 'abc' }).catch((e: unknown) => e);
    expect(e3).toBeInstanceOf(StorageError);
    expect((e3 as Error).message).toContain(`HEAD s3://${fx.bucket}/nope/missing.json?versionId=abc`);
    store.destroy();
  });

  it.each(['lean', 'sdk'] as const)('maps a foreign user to AccessDenied (%s transport)', async (transport) => {
    await fx.store.put('private/a.json', Buffer.from('{}'));
    const other = s3Store(fx.bucket, { credentials: S3_OTHER_USER }, transport);
    const err = await other.get('private/a.json').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AccessDenied', retryable: false });
    expect((err as Error).message).toBe(`GET s3://${fx.bucket}/private/a.json: AccessDenied (403)`);
    expect((err as StorageError).hint).toContain('s3:GetObject');
    await expect(collect(other.list(''))).rejects.toMatchObject({ code: 'AccessDenied' });
    other.destroy();
  });

  it.each(['lean', 'sdk'] as const)('maps a wrong secret to InvalidCredentials with a hint (%s transport)', async (transport) => {
    const bad = s3Store(fx.bucket, { credentials: { accessKeyId: S3_TEST.accessKeyId, secretAccessKey: 'wrong' } }, transport);
    // (A HEAD answer has no body, so a bad signature there is just 403: use a GET.)
    const err = await bad.get('x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'InvalidCredentials', backendCode: 'SignatureDoesNotMatch' });
    expect((err as StorageError).hint).toContain('check AWS credentials');
    const unknown = s3Store(fx.bucket, { credentials: { accessKeyId: 'NOSUCHKEY', secretAccessKey: 'x' } }, transport);
    const err2 = await collect(unknown.list('')).catch((e: unknown) => e);
    expect(err2).toMatchObject({ code: 'InvalidCredentials', backendCode: 'InvalidAccessKeyId' });
    bad.destroy();
    unknown.destroy();
  });

  it.each(['lean', 'sdk'] as const)('reports a refused connection as Network, naming the endpoint, after bounded retries (%s transport)', async (transport) => {
    const retries: number[] = [];
    const dead = s3Store('b', {
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      retry: { maxAttempts: 3, baseDelayMs: 1, onRetry: (_e, attempt) => retries.push(attempt) },
    }, transport);
    const err = await dead.get('k').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'Network', backendCode: 'ECONNREFUSED', retryable: true });
    expect((err as Error).message).toBe('GET s3://b/k: http://127.0.0.1:9 is not reachable: connection refused (ECONNREFUSED)');
    expect(retries).toEqual([1, 2]);
    expect(dead.stats.get).toBe(3);
    dead.destroy();
  });

  it('aborts a GET body read and a multipart upload', async () => {
    const ac = new AbortController();
    const big = randomBytes(20 * MiB);
    const store = s3Store(fx.bucket, { multipartThreshold: 6 * MiB, partSize: 5 * MiB });
    async function* slow(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 4; i++) {
        yield big.subarray(i * 5 * MiB, (i + 1) * 5 * MiB);
        if (i === 1) ac.abort(new Error('user interrupt'));
      }
    }
    await expect(store.put('abort/k', Readable.from(slow(), { objectMode: false }), { signal: ac.signal })).rejects.toThrow(
      'user interrupt',
    );
    await expect(store.head('abort/k')).rejects.toMatchObject({ code: 'NotFound' });
    store.destroy();
  });

  it('opens s3:// URLs with an endpoint', async () => {
    const store = openStore(`s3://${fx.bucket}/opened`, {
      endpoint: S3_TEST.endpoint,
      region: S3_TEST.region,
      credentials: { accessKeyId: S3_TEST.accessKeyId, secretAccessKey: S3_TEST.secretAccessKey },
    });
    expect(store.location).toBe(`s3://${fx.bucket}/opened/`);
    await store.put('k', Buffer.from('v'));
    expect((await getBytes(fx.store, 'opened/k')).toString()).toBe('v');
    (store as S3Store).destroy();
  });

  it('measures small-object latency', async () => {
    const n = 100;
    const lat = { put: [] as number[], head: [] as number[], get: [] as number[] };
    for (let i = 0; i < n; i++) {
      let t = performance.now();
      await fx.store.put(`lat/${i}`, randomBytes(4096));
      lat.put.push(performance.now() - t);
      t = performance.now();
      await fx.store.head(`lat/${i}`);
      lat.head.push(performance.now() - t);
      t = performance.now();
      await readAll((await fx.store.get(`lat/${i}`)).body);
      lat.get.push(performance.now() - t);
    }
    const p = (xs: number[], q: number): string => [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!.toFixed(1);
    for (const [op, xs] of Object.entries(lat)) console.log(`[S3Store] 4 KiB ${op}: p50 ${p(xs, 0.5)} ms, p95 ${p(xs, 0.95)} ms (n=${n}, sequential)`);
  });
});
