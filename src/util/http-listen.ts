import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A server listening for lakeguard (watch's push endpoint, /metrics): where, and how to stop it. */
export interface Listening {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** The Node server (tests watch its `drop` events). */
  server: Server;
}

/** Bounds of these small servers against a flood or a slow client (a local process opening sockets). */
export interface ListenBounds {
  /** Open connections at once; more are closed as they arrive (default 64). */
  maxConnections?: number;
  /** Headers must arrive within this of a request's start, else 408 (default 20 s). */
  headersTimeoutMs?: number;
  /** The whole request, body included, within this, else 408 (default 60 s). */
  requestTimeoutMs?: number;
}

/** A request line and headers larger than this are answered 431 and the connection closed. */
const MAX_HEADER_BYTES = 16 * 1024;
/** How often Node checks connections against the headers and request timeouts (at most). */
const TIMEOUT_CHECK_MS = 2_000;

/**
 * Node server options against a slow or flooding client, for every server lakeguard starts
 * (serve's S3 endpoint, watch's push endpoint, /metrics): headers within `headersTimeout` and
 * the whole request within `requestTimeout` of its start (else 408), headers of at most
 * MAX_HEADER_BYTES (else 431), checked often enough for short timeouts too.
 */
export function slowClientBounds(headersTimeout: number, requestTimeout: number): { maxHeaderSize: number; headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } {
  return { maxHeaderSize: MAX_HEADER_BYTES, headersTimeout, requestTimeout, connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MS, Math.ceil(headersTimeout / 4)) };
}

/** An http server with `bounds`: a connection cap, headers and request timeouts (408), 16 KiB of headers (431). */
export function boundedServer(bounds: ListenBounds, handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer(slowClientBounds(bounds.headersTimeoutMs ?? 20_000, bounds.requestTimeoutMs ?? 60_000), handler);
  server.maxConnections = bounds.maxConnections ?? 64;
  return server;
}

/**
 * Starts `server` on host:port (port 0: any free one) and resolves once it listens; `path` ends
 * the URL it is told by. stop() closes it and the connections still open (keep-alive scrapers).
 */
export async function listenOn(server: Server, host: string, port: number, path: string): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${bound}${path}`,
    port: bound,
    server,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A check of a shared secret in constant time: both sides are compared as SHA-256 digests, so
 * timingSafeEqual gets equal lengths whatever a client sent.
 */
export function secretChecker(secret: string): (given: string) => boolean {
  const expected = createHash('sha256').update(secret).digest();
  return (given) => timingSafeEqual(createHash('sha256').update(given).digest(), expected);
}
