#!/usr/bin/env node
// Baseline of the rollback scenario (issue 19), "a copy of everything": puts every key of a
// versioned bucket back to its version at an instant without comparing anything, as a script
// or a copy-based point-in-time tool does. Lists every version (ListObjectVersions), picks per
// key the newest version written at or before --at, then for every key either
//   --mode get-put  GETs that version and PUTs its bytes (every byte through the client), or
//   --mode copy     CopyObject of that version id onto the key (server-side, as s3-pit-restore).
// Keys created after --at are left alone (the lakes of the bench have none).
//
//   node bench/tools/copy-all.mjs --bucket B --at ISO --mode get-put|copy [--concurrency 32] [--endpoint URL]
//
// Prints one JSON line: {objects, bytes, requests: {list, get, put, copy}, durationMs}.
import { parseArgs } from 'node:util';
import { CopyObjectCommand, GetObjectCommand, ListObjectVersionsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { forEachLimit } from '../lib/pool.mjs';
import { S3, s3Client } from '../lib/s3.mjs';

const { values: opts } = parseArgs({
  options: {
    bucket: { type: 'string' },
    at: { type: 'string' },
    mode: { type: 'string', default: 'get-put' },
    concurrency: { type: 'string', default: '32' },
    endpoint: { type: 'string', default: S3.endpoint },
  },
});
if (!opts.bucket || !opts.at) throw new Error('--bucket and --at are required');
if (!['get-put', 'copy'].includes(opts.mode)) throw new Error(`--mode must be get-put or copy, not ${opts.mode}`);
const at = Date.parse(opts.at);
if (Number.isNaN(at)) throw new Error(`--at ${opts.at} is no ISO 8601 time`);
const bucket = opts.bucket;
const concurrency = Number(opts.concurrency);
const s3 = s3Client({ endpoint: opts.endpoint, sockets: concurrency });
const requests = { list: 0, get: 0, put: 0, copy: 0 };
const t0 = performance.now();

/** key -> the version id to put back (the newest one at or before --at that is no delete marker). */
const wanted = new Map();
/** key -> LastModified of the chosen version (versions of a key come newest first, but be sure). */
const chosenAt = new Map();
for (let keyMarker, versionMarker; ; ) {
  const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
  requests.list++;
  for (const v of page.Versions ?? []) {
    const t = v.LastModified?.getTime() ?? 0;
    if (t <= at && t >= (chosenAt.get(v.Key) ?? -1)) {
      wanted.set(v.Key, v.VersionId);
      chosenAt.set(v.Key, t);
    }
  }
  if (!page.IsTruncated) break;
  keyMarker = page.NextKeyMarker;
  versionMarker = page.NextVersionIdMarker;
}

let bytes = 0;
await forEachLimit([...wanted], concurrency, async ([Key, VersionId]) => {
  if (opts.mode === 'copy') {
    await s3.send(new CopyObjectCommand({ Bucket: bucket, Key, CopySource: `${bucket}/${encodeURIComponent(Key)}?versionId=${encodeURIComponent(VersionId)}`, MetadataDirective: 'COPY' }));
    requests.copy++;
    return;
  }
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key, VersionId }));
  requests.get++;
  if (!got.Body) throw new Error(`GET ${Key}?versionId=${VersionId}: no body`);
  const body = Buffer.from(await got.Body.transformToByteArray());
  bytes += body.length;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: body, ContentType: got.ContentType, Metadata: got.Metadata }));
  requests.put++;
});

process.stdout.write(JSON.stringify({ objects: wanted.size, bytes, requests, durationMs: Math.round(performance.now() - t0) }) + '\n');
