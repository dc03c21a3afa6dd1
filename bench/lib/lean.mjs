// lakeguard's own S3 request path (the lean transport, dist/storage/s3-lean-transport.js of an
// engine directory; dist/storage/s3-lean-get.js of engines before the transport seam) for the
// bench's baselines, so the raw GET loop and the bare listing make the same requests as the
// engine under test.
import { existsSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { S3 } from './s3.mjs';

/** The engine's lean functions and a target for `bucket` (path-style, the test keys). */
export async function leanClient({ engineDir, endpoint, bucket, sockets }) {
  const transportFile = resolve(engineDir, 'dist/storage/s3-lean-transport.js');
  if (existsSync(transportFile)) {
    const { LeanTransport } = await import(pathToFileURL(transportFile).href);
    const agent = new HttpAgent({ keepAlive: true, maxSockets: sockets, keepAliveMsecs: 1000 });
    const transport = new LeanTransport(
      bucket,
      {
        endpoint: new URL(endpoint).origin,
        bucket,
        pathStyle: true,
        region: S3.region,
        credentials: async () => ({ accessKeyId: S3.accessKeyId, secretAccessKey: S3.secretAccessKey }),
        agents: { http: agent, https: agent },
        connectTimeoutMs: 10_000,
        socketTimeoutMs: 120_000,
        clock: { base: Date.now, offsetMs: 0 },
      },
      // The SDK transport it hands other requests to: these baselines make none.
      null,
    );
    return {
      getObject: (key) => transport.getObject(key, {}),
      putObject: (key, body, md5) => transport.putObject(key, body, { ContentMD5: md5 }),
      listPage: (opts) => transport.listObjectsV2(opts),
      destroy: () => agent.destroy(),
    };
  }
  const lean = await import(pathToFileURL(resolve(engineDir, 'dist/storage/s3-lean-get.js')).href);
  const target = {
    origin: new URL(new URL(endpoint).origin),
    pathStyle: true,
    bucket,
    region: S3.region,
    credentials: async () => ({ accessKeyId: S3.accessKeyId, secretAccessKey: S3.secretAccessKey }),
    agent: new HttpAgent({ keepAlive: true, maxSockets: sockets, keepAliveMsecs: 1000 }),
    connectTimeoutMs: 10_000,
    socketTimeoutMs: 120_000,
    // The signing clock (engines since the skew correction); older engines ignore it.
    clock: { base: Date.now, offsetMs: 0 },
  };
  return {
    getObject: (key) => lean.leanGetObject(target, key, {}),
    listPage: (opts) => lean.leanListObjectsV2(target, opts),
    destroy: () => target.agent.destroy(),
  };
}
