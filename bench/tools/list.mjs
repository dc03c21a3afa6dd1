#!/usr/bin/env node
// Baseline (d), the floor of an incremental run: a bare ListObjectsV2 loop (1,000 keys a page)
// over a bucket, keeping nothing. --client lean (default) lists through lakeguard's own request
// path (the lean transport of --engine-dir: SigV4, node:http, a small XML reader), the
// requests lakeguard's incremental backups make; --client sdk through the AWS SDK.
//
//   node bench/tools/list.mjs --bucket B [--prefix P] [--endpoint URL] [--client lean|sdk --engine-dir DIR]
//
// Prints one JSON line: {objects, bytes (sum of listed sizes), requests: {list}, durationMs}.
import { parseArgs } from 'node:util';
import { leanClient } from '../lib/lean.mjs';
import { S3, listAll, s3Client } from '../lib/s3.mjs';

const { values: opts } = parseArgs({
  options: {
    bucket: { type: 'string' },
    prefix: { type: 'string', default: '' },
    endpoint: { type: 'string', default: S3.endpoint },
    client: { type: 'string', default: 'lean' },
    'engine-dir': { type: 'string', default: '.' },
  },
});
if (!['sdk', 'lean'].includes(opts.client)) throw new Error(`--client must be sdk or lean, not ${opts.client}`);
const requests = { list: 0 };
let keys = 0;
let bytes = 0;
const t0 = performance.now();
if (opts.client === 'lean') {
  const lean = await leanClient({ engineDir: opts['engine-dir'], endpoint: opts.endpoint, bucket: opts.bucket, sockets: 4 });
  let token;
  do {
    requests.list++;
    const page = await lean.listPage({ prefix: opts.prefix, maxKeys: 1000, ...(token === undefined ? {} : { continuationToken: token }) });
    keys += page.Contents.length;
    for (const c of page.Contents) bytes += c.Size;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  lean.destroy();
} else {
  const s3 = s3Client({ endpoint: opts.endpoint, sockets: 4, onRequest: () => requests.list++ });
  ({ keys, bytes } = await listAll(s3, opts.bucket, opts.prefix));
  s3.destroy();
}
const durationMs = performance.now() - t0;
process.stdout.write(JSON.stringify({ objects: keys, bytes, requests, durationMs }) + '\n');
