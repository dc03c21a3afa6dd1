/**
 * A `/metrics` endpoint on its own listen address (`serve --metrics-listen`, and `watch`): its
 * own port, because every path of serve's S3 port is a bucket name, and Prometheus scrapers do
 * not sign requests with SigV4. Every request must carry `Authorization: Bearer <token>`;
 * nothing else is answered. Loopback by default, as every lakeguard server.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROMETHEUS_CONTENT_TYPE } from './prometheus.js';

export interface MetricsServerOptions {
  host: string;
  port: number;
  /** The bearer token every scrape must present. */
  token: string;
  /** The exposition text of this instant (prometheus.ts renders it). */
  render: () => string;
}

export interface RunningMetricsServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startMetricsServer(opts: MetricsServerOptions): Promise<RunningMetricsServer> {
  // Compared as digests: equal lengths for timingSafeEqual whatever was sent.
  const expected = digest(opts.token);
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const auth = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/i.exec(auth);
    if (m === null || !timingSafeEqual(digest(m[1]!.trim()), expected)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="lakeguard metrics"', 'content-type': 'text/plain' }).end('bearer token required\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics is served here\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end();
      return;
    }
    let text: string;
    try {
      text = opts.render();
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`cannot render metrics: ${err instanceof Error ? err.message : String(err)}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE }).end(req.method === 'HEAD' ? undefined : text);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}/metrics`,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
