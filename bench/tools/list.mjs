#!/usr/bin/env node
// Baseline (d), the floor of an incremental run: a bare ListObjectsV2 loop (1,000 keys a page)
// over a bucket, keeping nothing.
//
//   node bench/tools/list.mjs --bucket B [--prefix P] [--endpoint URL]
//
// Prints one JSON line: {objects, bytes (sum of listed sizes), requests: {list}, durationMs}.
import { parseArgs } from 'node:util';
import { S3, listAll, s3Client } from '../lib/s3.mjs';

const { values: opts } = parseArgs({
  options: { bucket: { type: 'string' }, prefix: { type: 'string', default: '' }, endpoint: { type: 'string', default: S3.endpoint } },
});
const requests = { list: 0 };
const s3 = s3Client({ endpoint: opts.endpoint, sockets: 4, onRequest: () => requests.list++ });
const t0 = performance.now();
const { keys, bytes } = await listAll(s3, opts.bucket, opts.prefix);
const durationMs = performance.now() - t0;
s3.destroy();
process.stdout.write(JSON.stringify({ objects: keys, bytes, requests, durationMs }) + '\n');
