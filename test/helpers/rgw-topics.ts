// Bucket notifications on the test server (Ceph RGW): a topic whose push-endpoint is an HTTP
// URL, created through RGW's SNS-compatible API (signed here with lakeguard's own SigV4), and
// the bucket's notification configuration pointing at it.
import { PutBucketNotificationConfigurationCommand } from '@aws-sdk/client-s3';
import { createServer, type Server } from 'node:http';
import { EMPTY_SHA256, amzDate, signV4 } from '../../src/storage/s3-sigv4.js';
import { S3_TEST, testS3Client } from './s3-env.js';

async function sns(params: Record<string, string>): Promise<string> {
  const url = new URL(S3_TEST.endpoint);
  const body = new URLSearchParams(params).toString();
  const headers: Record<string, string> = { host: url.host, 'content-type': 'application/x-www-form-urlencoded', 'x-amz-date': amzDate(new Date()) };
  const { createHash } = await import('node:crypto');
  const payloadHash = createHash('sha256').update(body).digest('hex');
  headers.authorization = signV4({ method: 'POST', path: '/', query: '', headers, region: S3_TEST.region, service: 'sns', credentials: S3_TEST, payloadHash });
  const res = await fetch(`${S3_TEST.endpoint}/`, { method: 'POST', headers, body });
  const text = await res.text();
  if (!res.ok) throw new Error(`SNS ${params.Action}: HTTP ${res.status}: ${text}`);
  return text;
}

/** Creates topic `name` pushing to `pushEndpoint` and sends the bucket's creations and removals to it; returns the topic ARN. */
export async function notifyBucket(bucket: string, name: string, pushEndpoint: string): Promise<string> {
  const xml = await sns({
    Action: 'CreateTopic',
    Name: name,
    'Attributes.entry.1.key': 'push-endpoint',
    'Attributes.entry.1.value': pushEndpoint,
  });
  const arn = /<TopicArn>([^<]+)<\/TopicArn>/.exec(xml)?.[1];
  if (arn === undefined) throw new Error(`CreateTopic answered no TopicArn: ${xml}`);
  await testS3Client().send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      NotificationConfiguration: { TopicConfigurations: [{ Id: name, TopicArn: arn, Events: ['s3:ObjectCreated:*', 's3:ObjectRemoved:*'] }] },
    }),
  );
  return arn;
}

export async function deleteTopic(arn: string): Promise<void> {
  await sns({ Action: 'DeleteTopic', TopicArn: arn }).catch((err: unknown) => console.warn(`cleanup of topic ${arn}: ${String(err)}`));
}

/**
 * Removes every notification of the bucket (RGW's `DELETE /<bucket>?notification`). Call it
 * BEFORE the push endpoint goes away: radosgw 16.2 aborts (the whole gateway) when a
 * synchronous push finds its endpoint refusing connections (seen here, twice:
 * RGWPubSubHTTPEndpoint::send_to_completion_async).
 */
export async function stopNotifications(bucket: string): Promise<void> {
  const url = new URL(S3_TEST.endpoint);
  const headers: Record<string, string> = { host: url.host, 'x-amz-date': amzDate(new Date()), 'x-amz-content-sha256': EMPTY_SHA256 };
  headers.authorization = signV4({ method: 'DELETE', path: `/${bucket}`, query: 'notification=', headers, region: S3_TEST.region, service: 's3', credentials: S3_TEST });
  const res = await fetch(`${S3_TEST.endpoint}/${bucket}?notification=`, { method: 'DELETE', headers });
  if (!res.ok) console.warn(`cleanup of notifications of ${bucket}: HTTP ${res.status} ${await res.text()}`);
}

/**
 * Answers 200 to every push on `port` (the endpoint a topic points at) until closed: while no
 * watch listens there, writes to the bucket must still find a live endpoint (see above).
 */
export function pushSink(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end());
    });
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
