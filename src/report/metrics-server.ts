/**
 * A `/metrics` endpoint on its own listen address (`serve --metrics-listen`, and `watch`): its
 * own port, because every path of serve's S3 port is a bucket name, and Prometheus scrapers do
 * not sign requests with SigV4. Every request must carry `Authorization: Bearer <token>`;
 * nothing else is answered. Loopback by default, as every lakeguard server.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { boundedServer, listenOn, secretChecker, type Listening } from '../util/http-listen.js';
import { PROMETHEUS_CONTENT_TYPE } from './prometheus.js';

export interface MetricsServerOptions {
  host: string;
  port: number;
  /** The bearer token every scrape must present. */
  token: string;
  /** The exposition text of this instant (prometheus.ts renders it). */
  render: () => string;
}

export type RunningMetricsServer = Listening;

export async function startMetricsServer(opts: MetricsServerOptions): Promise<RunningMetricsServer> {
  const tokenMatches = secretChecker(opts.token);
  const server: Server = boundedServer({}, (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const auth = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/i.exec(auth);
    if (m === null || !tokenMatches(m[1]!.trim())) {
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
  return listenOn(server, opts.host, opts.port, '/metrics');
}
