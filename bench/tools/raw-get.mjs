#!/usr/bin/env node
// Baseline (a), "the limit": GETs every key of a key file with a fixed number of requests in
// flight over a keep-alive agent, reads every body to the end and stores nothing.
// With --out-dir it writes each body to <dir>/<key> instead (the restic baseline's download).
// --client sdk (default) sends each GET through the AWS SDK's GetObjectCommand; --client lean
// through lakeguard's own GET path (the lean transport of --engine-dir: SigV4 and
// node:http, no SDK middleware), the same requests lakeguard's backup makes.
// With --put-bucket (lean client only) it is the lean GET+PUT copy loop, the baseline of a full
// restore to S3: each body read into memory and PUT (with its Content-MD5, as lakeguard's
// restore sends it) to <put-bucket>/<put-prefix><key>, the same requests in flight.
//
//   node bench/tools/raw-get.mjs --bucket B --keys FILE [--concurrency 32] [--endpoint URL] [--out-dir DIR] [--client sdk|lean --engine-dir DIR]
//                                [--put-bucket B2 [--put-prefix P]]
//
// Prints one JSON line: {objects, bytes, requests: {get, put}, durationMs}.
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { forEachLimit } from '../lib/pool.mjs';
import { leanClient } from '../lib/lean.mjs';
import { S3, s3Client } from '../lib/s3.mjs';

const { values: opts } = parseArgs({
  options: {
    bucket: { type: 'string' },
    keys: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    endpoint: { type: 'string', default: S3.endpoint },
    'out-dir': { type: 'string' },
    client: { type: 'string', default: 'sdk' },
    'engine-dir': { type: 'string', default: '.' },
    'put-bucket': { type: 'string' },
    'put-prefix': { type: 'string', default: '' },
  },
});
if (!['sdk', 'lean'].includes(opts.client)) throw new Error(`--client must be sdk or lean, not ${opts.client}`);
if (opts['put-bucket'] !== undefined && (opts.client !== 'lean' || opts['out-dir'] !== undefined)) throw new Error('--put-bucket needs --client lean and no --out-dir');
if (opts.keys === undefined) throw new Error('--keys is required (a file of object keys, one a line)');
const concurrency = Number(opts.concurrency);
const keys = readFileSync(opts.keys, 'utf8').split('\n').filter(Boolean);
const requests = { get: 0, put: 0 };
const s3 = s3Client({ endpoint: opts.endpoint, sockets: concurrency, onRequest: () => requests.get++ });
/**
 * The body of one object. Both clients return a Node stream: the SDK's Body on Node is the
 * HTTP response (an IncomingMessage), typed only as its cross-platform union.
 * @type {(key: string) => Promise<import('node:stream').Readable>}
 */
let get = async (key) => /** @type {import('node:stream').Readable} */ ((await s3.send(new GetObjectCommand({ Bucket: opts.bucket, Key: key }))).Body);
if (opts.client === 'lean') {
  const lean = await leanClient({ engineDir: opts['engine-dir'], endpoint: opts.endpoint, bucket: opts.bucket, sockets: concurrency });
  get = async (key) => {
    requests.get++;
    return (await lean.getObject(key)).Body;
  };
}
/** @type {((key: string, body: Buffer) => Promise<void>) | undefined} */
let put;
if (opts['put-bucket'] !== undefined) {
  const target = await leanClient({ engineDir: opts['engine-dir'], endpoint: opts.endpoint, bucket: opts['put-bucket'], sockets: concurrency });
  const putObject = target.putObject;
  if (putObject === undefined) throw new Error('--put-bucket needs an engine with the lean transport (dist/storage/s3-lean-transport.js)');
  put = async (key, body) => {
    requests.put++;
    await putObject(opts['put-prefix'] + key, body, createHash('md5').update(body).digest('base64'));
  };
}
const outDir = opts['out-dir'];
let bytes = 0;
const t0 = performance.now();
await forEachLimit(keys, concurrency, async (key) => {
  const res = { Body: await get(key) };
  if (outDir !== undefined) {
    const path = join(outDir, key);
    mkdirSync(dirname(path), { recursive: true });
    let n = 0;
    res.Body.on('data', (d) => (n += d.length));
    await pipeline(res.Body, createWriteStream(path));
    bytes += n;
  } else if (put !== undefined) {
    const chunks = [];
    for await (const chunk of res.Body) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    bytes += body.length;
    await put(key, body);
  } else {
    for await (const chunk of res.Body) bytes += chunk.length;
  }
});
const durationMs = performance.now() - t0;
s3.destroy();
process.stdout.write(JSON.stringify({ objects: keys.length, bytes, requests, durationMs }) + '\n');
