// Uploads the generated data set to a source bucket (skipped when the bucket already holds the
// same data set: a marker object in the meta bucket names generator version, seed and scale),
// and applies / reverts the "1 % changed, 0.5 % deleted" mutation.
import { DeleteObjectsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { largeBody, mutationPlan, smallBody } from './dataset.mjs';
import { forEachLimit } from './pool.mjs';
import { ensureBucket, getJson, putJson } from './s3.mjs';

export const META_BUCKET = 'lgbench-meta';

const CONTENT_TYPES = { jsonl: 'application/x-ndjson', csv: 'text/csv', log: 'text/plain', random: 'application/zstd' };

/** Deterministic bucket name of a data set: lgbench-src-s<seed>-x<scale>. */
export function sourceBucketName(seed, scale) {
  return `lgbench-src-s${seed}-x${String(scale).replace(/[^0-9]/g, '-')}`.toLowerCase().slice(0, 63);
}

function markerKey(bucket) {
  return `${bucket}.json`;
}

async function putSmall(s3, bucket, ds, entry, version = 0) {
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: entry.key, Body: smallBody(ds, entry, version), ContentType: CONTENT_TYPES[entry.kind] }),
  );
}

/**
 * Makes sure `bucket` holds exactly the data set (uploading it when the marker is missing or
 * different, reverting a mutation left behind by an interrupted run). Returns what was done.
 */
export async function ensureDataset(s3, ds, { bucket, concurrency = 64, log }) {
  await ensureBucket(s3, META_BUCKET);
  const marker = await getJson(s3, META_BUCKET, markerKey(bucket));
  const same = marker && marker.generator === ds.version && marker.seed === ds.seed && marker.scale === ds.scale && marker.objects === ds.small.length + ds.large.length;
  if (same && marker.state === 'clean') {
    log(`data set already in bucket ${bucket} (marker from ${marker.uploadedAt}): upload skipped`);
    return { uploaded: false, seconds: 0 };
  }
  if (same && marker.state === 'mutated') {
    log(`bucket ${bucket} was left mutated by an interrupted run: reverting`);
    await revertMutation(s3, ds, { bucket, concurrency });
    return { uploaded: false, reverted: true, seconds: 0 };
  }
  await ensureBucket(s3, bucket);
  const total = ds.small.length;
  log(`uploading ${total} small objects (${(ds.smallBytes / 1e6).toFixed(0)} MB) and ${ds.large.length} large (${(ds.largeBytes / 1e6).toFixed(0)} MB) to ${bucket}, ${concurrency} in flight`);
  const t0 = performance.now();
  let done = 0;
  let lastLog = t0;
  await forEachLimit(ds.small, concurrency, async (entry) => {
    await putSmall(s3, bucket, ds, entry);
    done++;
    const now = performance.now();
    if (now - lastLog > 15_000) {
      lastLog = now;
      log(`  uploaded ${done}/${total} (${Math.round(done / ((now - t0) / 1000))} objects/s)`);
    }
  });
  for (const entry of ds.large) {
    await new Upload({
      client: s3,
      params: { Bucket: bucket, Key: entry.key, Body: largeBody(ds, entry), ContentType: 'application/octet-stream' },
      partSize: 16 * 1024 * 1024,
      queueSize: 4,
    }).done();
  }
  const seconds = (performance.now() - t0) / 1000;
  await putJson(s3, META_BUCKET, markerKey(bucket), {
    generator: ds.version,
    seed: ds.seed,
    scale: ds.scale,
    objects: ds.small.length + ds.large.length,
    bytes: ds.smallBytes + ds.largeBytes,
    state: 'clean',
    uploadedAt: new Date().toISOString(),
    uploadSeconds: Math.round(seconds),
  });
  log(`upload done in ${seconds.toFixed(0)} s`);
  return { uploaded: true, seconds };
}

async function setState(s3, bucket, state) {
  const marker = await getJson(s3, META_BUCKET, markerKey(bucket));
  if (marker) await putJson(s3, META_BUCKET, markerKey(bucket), { ...marker, state });
}

/** 1 % of the small objects get new content, 0.5 % are deleted. */
export async function applyMutation(s3, ds, { bucket, concurrency = 64 }) {
  const plan = mutationPlan(ds);
  await setState(s3, bucket, 'mutated');
  await forEachLimit(plan.changed, concurrency, (entry) => putSmall(s3, bucket, ds, entry, 1));
  for (let i = 0; i < plan.deleted.length; i += 1000) {
    const batch = plan.deleted.slice(i, i + 1000).map((e) => ({ Key: e.key }));
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
  }
  return plan;
}

/** Puts the original content of every changed or deleted object back. */
export async function revertMutation(s3, ds, { bucket, concurrency = 64 }) {
  const plan = mutationPlan(ds);
  await forEachLimit([...plan.changed, ...plan.deleted], concurrency, (entry) => putSmall(s3, bucket, ds, entry, 0));
  await setState(s3, bucket, 'clean');
}

export async function dropMarker(s3, bucket) {
  const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  await s3.send(new DeleteObjectCommand({ Bucket: META_BUCKET, Key: markerKey(bucket) }));
}
