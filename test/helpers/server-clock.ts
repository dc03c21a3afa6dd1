// An instant strictly between two writes on the real S3 server, proven by the server's own
// clock instead of fixed sleeps. The server stamps every write (LastModified in listings, ms
// precision: /work/shared/S3-SERVER-NOTES.md) with the same machine clock the tests and the
// lakeguard CLI read (lakeguard stamps synthetic delete markers and reinstatements with
// Date.now()); `restore --at T` selects the versions with valid_from <= T. A fixed sleep of
// "long enough" on either side was 2.2 s per instant; checking costs a few requests.
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

const PROBE_KEY = 'server-clock-probe';

/** The server's clock now: the LastModified (ms) it stamps on a probe write in `bucket`. */
async function serverNow(s3: S3Client, bucket: string): Promise<number> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: PROBE_KEY, Body: 'clock probe' }));
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: PROBE_KEY, MaxKeys: 1 }));
  const stamp = listed.Contents?.[0]?.LastModified;
  if (stamp === undefined) throw new Error(`probe ${bucket}/${PROBE_KEY} not listed`);
  return stamp.getTime();
}

/**
 * An ISO instant T with every write acknowledged (and every local Date.now() taken) before this
 * call stamped at or before T, and every write made after it returns stamped after T: the
 * server's clock and this machine's have both moved past T when it returns. `probeBucket`: a
 * bucket of the test's own where one more object changes no assertion (e.g. the bucket of a
 * repository that lives under a prefix); it gets the object `server-clock-probe`.
 */
export async function instantBetweenWrites(s3: S3Client, probeBucket: string): Promise<string> {
  // Earlier writes were stamped before their responses arrived, so before both of these.
  const at = Math.max(Date.now(), await serverNow(s3, probeBucket));
  while ((await serverNow(s3, probeBucket)) <= at || Date.now() <= at) {
    // A probe takes a few ms; the loop ends within the first ms tick after `at`.
  }
  return new Date(at).toISOString();
}
