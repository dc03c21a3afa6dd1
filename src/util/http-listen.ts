import { createHash, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A server listening for lakeguard (watch's push endpoint, /metrics): where, and how to stop it. */
export interface Listening {
  url: string;
  port: number;
  stop(): Promise<void>;
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
