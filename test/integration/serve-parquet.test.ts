// A query engine reads a Parquet table straight from `lakeguard serve --at T`: files written by a
// real writer (hyparquet-writer) into a bucket on the real S3 server, backed up, then rewritten
// (rows changed, a file deleted, one added) and backed up again; hyparquet, reading through an
// AsyncBuffer that does ranged S3 GETs (AWS SDK, signed with the serve credentials), gets the
// rows the table had at T, and a column projection reads a fraction of the file's bytes.
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { parquetReadObjects, type AsyncBuffer } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { prng, tempDir } from '../helpers/fixtures.js';
import { rowsDigest } from '../helpers/parquet-lake.js';
import { createTestBucket, emptyAndDeleteBucket, testEnv, testS3Client, writeS3Policy } from '../helpers/s3-env.js';
import { instantBetweenWrites } from '../helpers/server-clock.js';
import { SERVE_KEYS, serveClient, startServe, type Served } from '../helpers/serve-process.js';

const TABLE = 'warehouse/orders/';

/** An orders file: `rows` rows from `firstId`, values from `seed`; several row groups. */
function ordersFile(firstId: number, rows: number, seed: number): Buffer {
  const random = prng(seed);
  const words = random(rows * 2);
  return Buffer.from(
    parquetWriteBuffer({
      rowGroupSize: 10_000,
      columnData: [
        { name: 'order_id', type: 'INT64', data: Array.from({ length: rows }, (_, i) => BigInt(firstId + i)) },
        { name: 'amount', type: 'DOUBLE', data: Array.from({ length: rows }, (_, i) => (words.readUInt16LE((i * 2) % (words.length - 1)) * 7919) / 100) },
        { name: 'sku', type: 'STRING', data: Array.from({ length: rows }, () => `SKU-${random(6).toString('hex')}`) },
      ],
    }),
  );
}

/** What hyparquet reads through: ranged GETs of one object, counted. */
function s3File(s3: S3Client, bucket: string, key: string, size: number, reads: { requests: number; bytes: number }): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end = size): Promise<ArrayBuffer> {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end - 1}` }));
      expect(got.ContentRange).toBe(`bytes ${start}-${end - 1}/${size}`);
      const bytes = await got.Body!.transformToByteArray();
      reads.requests++;
      reads.bytes += bytes.length;
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    },
  };
}

describe('a query engine reads a Parquet table from serve --at T', () => {
  let dir: ReturnType<typeof tempDir>;
  let source: string;
  let repoBucket: string;
  let served: Served;
  let s3: S3Client;
  /** The table at T: key -> digest of its rows. */
  const atT = new Map<string, { rows: number; digest: string }>();
  const later = new Map<string, { rows: number; digest: string }>();

  beforeAll(async () => {
    dir = tempDir('it-serve-parquet');
    [source, repoBucket] = await Promise.all([createTestBucket('lg-serve-pq', { versioning: true }), createTestBucket('lg-serve-pq-repo')]);
    const policyFile = writeS3Policy(join(dir.path, 'policy.yaml'), { repo: `${repoBucket}/r`, buckets: [source] });
    const env = { ...testEnv(), LAKEGUARD_PASSWORD: 'serve', LAKEGUARD_CACHE_DIR: join(dir.path, 'cache') };
    const cli = (...args: string[]) => runCli(['--policy', policyFile, ...args], env);
    expect((await cli('init')).code).toBe(0);
    const src = testS3Client();
    const put = async (key: string, body: Buffer, into: Map<string, { rows: number; digest: string }>) => {
      await src.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body, ContentType: 'application/vnd.apache.parquet' }));
      const rows = await parquetReadObjects({ file: body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer });
      into.set(key, { rows: rows.length, digest: rowsDigest(rows) });
    };
    // A large file (several chunks of the repository's content-defined chunker) and two small ones.
    await put(`${TABLE}part-00000.parquet`, ordersFile(0, 90_000, 1), atT);
    await put(`${TABLE}part-00001.parquet`, ordersFile(200_000, 5_000, 2), atT);
    await put(`${TABLE}part-00002.parquet`, ordersFile(300_000, 5_000, 3), atT);
    const first = await cli('backup');
    expect(first.code, first.stderr).toBe(0);
    const at = await instantBetweenWrites(src, repoBucket);
    // Later: a GDPR rewrite of the large file, a compaction deleting one file, a new file.
    for (const [key, v] of atT) later.set(key, v);
    await put(`${TABLE}part-00000.parquet`, ordersFile(0, 89_000, 4), later);
    await src.send(new DeleteObjectCommand({ Bucket: source, Key: `${TABLE}part-00001.parquet` }));
    later.delete(`${TABLE}part-00001.parquet`);
    await put(`${TABLE}part-00003.parquet`, ordersFile(400_000, 5_000, 5), later);
    const second = await cli('backup');
    expect(second.code, second.stderr).toBe(0);
    served = await startServe(['--policy', policyFile, '--at', at], { ...env, ...SERVE_KEYS });
    s3 = serveClient(served.url);
  });

  afterAll(async () => {
    s3?.destroy();
    if (served !== undefined && served.child.exitCode === null) await served.stop();
    await Promise.all([source, repoBucket].filter(Boolean).map((b) => emptyAndDeleteBucket(b)));
    dir?.cleanup();
  });

  it('lists the table as it was at T and reads every row of it with ranged GETs', async () => {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: source, Prefix: TABLE }));
    const files = (listed.Contents ?? []).map((c) => ({ key: c.Key!, size: c.Size! }));
    expect(files.map((f) => f.key)).toEqual([...atT.keys()]);
    for (const { key, size } of files) {
      const reads = { requests: 0, bytes: 0 };
      const rows = await parquetReadObjects({ file: s3File(s3, source, key, size, reads) });
      expect({ rows: rows.length, digest: rowsDigest(rows) }, key).toEqual(atT.get(key));
      expect(reads.requests).toBeGreaterThanOrEqual(1);
    }
    // Not the newer table: the large file was rewritten after T.
    const large = `${TABLE}part-00000.parquet`;
    expect(later.get(large)!.digest).not.toBe(atT.get(large)!.digest);
  });

  it('a column projection reads only part of a large file, across several ranged GETs', async () => {
    const key = `${TABLE}part-00000.parquet`;
    const head = await s3.send(new HeadObjectCommand({ Bucket: source, Key: key }));
    const size = head.ContentLength!;
    expect(size).toBeGreaterThan(2 * 1024 * 1024); // more than one chunk of the default chunker (256 KiB - 4 MiB, 1 MiB average)
    const reads = { requests: 0, bytes: 0 };
    const ids = await parquetReadObjects({ file: s3File(s3, source, key, size, reads), columns: ['order_id'] });
    expect(ids).toHaveLength(atT.get(key)!.rows);
    expect(ids.at(-1)).toEqual({ order_id: BigInt(atT.get(key)!.rows - 1) });
    expect(reads.requests).toBeGreaterThan(1);
    expect(reads.bytes).toBeLessThan(size / 2);
  });

  it('the same table as the second backup recorded it, through the same server (x-lakeguard-at)', async () => {
    const client = serveClient(served.url);
    client.middlewareStack.add(
      (next) => async (args) => {
        (args.request as { headers: Record<string, string> }).headers['x-lakeguard-at'] = served.listening.synced_at as string;
        return next(args);
      },
      { step: 'build', name: 'lakeguardAt' },
    );
    try {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: source, Prefix: TABLE }));
      const files = (listed.Contents ?? []).map((c) => ({ key: c.Key!, size: c.Size! }));
      expect(files.map((f) => f.key)).toEqual([...later.keys()].sort());
      for (const { key, size } of files) {
        const rows = await parquetReadObjects({ file: s3File(client, source, key, size, { requests: 0, bytes: 0 }) });
        expect({ rows: rows.length, digest: rowsDigest(rows) }, key).toEqual(later.get(key));
      }
    } finally {
      client.destroy();
    }
  });
});
