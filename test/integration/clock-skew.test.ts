// SigV4 signs the request time; the real server (Ceph RGW, like AWS) refuses a signature more
// than 15 minutes off with 403 RequestTimeTooSkewed. lakeguard then adopts the server's time
// from the answer's Date, as the AWS SDK does: one more attempt, and later requests signed right.
// The store's clock is made wrong in-process (S3StoreOptions.clock), on the lean path and the SDK's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { getBytes } from '../../src/storage/types.js';
import { createTestBucket, emptyAndDeleteBucket, testS3Store } from '../helpers/s3-env.js';

const MINUTE = 60_000;

describe('clock skew against the real server', () => {
  let bucket: string;
  const stores: S3Store[] = [];
  const store = (skewMs: number, extra: { retry?: { maxAttempts: number } } = {}): S3Store => {
    const s = testS3Store(bucket, 'skew', { clock: () => Date.now() + skewMs, ...extra });
    stores.push(s);
    return s;
  };
  beforeAll(async () => {
    bucket = await createTestBucket('lg-skew');
  });
  afterAll(async () => {
    for (const s of stores) s.destroy();
    await emptyAndDeleteBucket(bucket);
  });

  it('the server refuses a request signed 20 minutes off (RequestTimeTooSkewed) when nothing corrects it', async () => {
    const err = await store(-20 * MINUTE, { retry: { maxAttempts: 1 } }).put('refused', Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).backendCode).toBe('RequestTimeTooSkewed');
    expect((err as StorageError).message).toMatch(/^PUT s3:\/\/.*\/skew\/refused: RequestTimeTooSkewed \(403\)/);
  });

  it('lean path, clock 20 minutes slow: the first PUT is refused once and sent again; later requests are signed right', async () => {
    const s = store(-20 * MINUTE);
    await s.put('lean', Buffer.from('lean body'));
    expect(s.stats.put).toBe(2);
    expect((await getBytes(s, 'lean')).toString()).toBe('lean body');
    await s.put('lean-2', Buffer.from('second'));
    const names: string[] = [];
    for await (const e of s.list('')) if (e.kind === 'object') names.push(e.key);
    expect(names).toEqual(['lean', 'lean-2']);
    expect({ put: s.stats.put, get: s.stats.get, list: s.stats.list }).toEqual({ put: 3, get: 1, list: 1 });
  });

  // HEAD went through the SDK until the lean path learnt it (a restore's target check): both
  // paths read the server's time from a 403 that has no body.
  for (const transport of ['lean', 'sdk'] as const) {
    it(`${transport} path, clock 20 minutes fast: the first HEAD (a 403 without a body) is corrected from Date too`, async () => {
      const before = process.env.LAKEGUARD_S3_TRANSPORT;
      process.env.LAKEGUARD_S3_TRANSPORT = transport;
      let s: S3Store;
      try {
        s = store(20 * MINUTE);
      } finally {
        if (before === undefined) delete process.env.LAKEGUARD_S3_TRANSPORT;
        else process.env.LAKEGUARD_S3_TRANSPORT = before;
      }
      expect(s.transport.kind).toBe(transport);
      const meta = await s.head('lean');
      expect(meta.size).toBe(9);
      expect(s.stats.head).toBe(2);
      await s.head('lean-2');
      expect(s.stats.head).toBe(3);
    });
  }
});
