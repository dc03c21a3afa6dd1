// An HTTP proxy on 127.0.0.1 between lakeguard and the real S3 server that injects faults at
// a seeded, configurable rate: 503 SlowDown, 500 InternalError, connection resets, stalls,
// truncated response bodies and bodies with one flipped byte. Requests are forwarded with
// their headers unchanged (the SigV4 signature covers the Host header, so it must stay).
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = 'slowdown' | 'internal' | 'reset' | 'stall' | 'truncate' | 'flip';

export interface FaultProxyOptions {
  /** Upstream S3 endpoint, e.g. http://127.0.0.1:7480. */
  target: string;
  /** Share of requests that get a fault (0..1). */
  rate: number;
  faults: Fault[];
  seed?: number;
  /** Only requests for which this returns true may get a fault (default: all). */
  eligible?: (req: IncomingMessage) => boolean;
  stallMs?: number;
}

export interface FaultProxy {
  endpoint: string;
  counts: Record<Fault | 'forwarded', number>;
  close(): Promise<void>;
}

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(opts.target);
  let x = (opts.seed ?? 1) >>> 0 || 1;
  const random = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
  const counts = { slowdown: 0, internal: 0, reset: 0, stall: 0, truncate: 0, flip: 0, forwarded: 0 };

  const forward = (req: IncomingMessage, res: ServerResponse, damage: 'truncate' | 'flip' | null): void => {
    const up = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (damage === null || (upRes.statusCode ?? 0) >= 300) {
          upRes.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          const body = Buffer.concat(chunks);
          if (damage === 'flip' && body.length > 0) {
            body[Math.floor(body.length / 2)]! ^= 0x40;
            res.end(body);
          } else {
            // Headers promised the full length; send half and hang up.
            res.write(body.subarray(0, Math.floor(body.length / 2)));
            res.socket?.destroy();
          }
        });
      },
    );
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  };

  const server: Server = createServer((req, res) => {
    const fault = (opts.eligible?.(req) ?? true) && random() < opts.rate ? opts.faults[Math.floor(random() * opts.faults.length)]! : null;
    if (fault === null) {
      counts.forwarded++;
      forward(req, res, null);
      return;
    }
    counts[fault]++;
    switch (fault) {
      case 'slowdown':
      case 'internal': {
        req.resume();
        const [status, code] = fault === 'slowdown' ? [503, 'SlowDown'] : [500, 'InternalError'];
        res.writeHead(status, { 'content-type': 'application/xml', ...(fault === 'slowdown' ? { 'retry-after': '0' } : {}) });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`);
        return;
      }
      case 'reset':
        req.socket.destroy();
        return;
      case 'stall':
        setTimeout(() => forward(req, res, null), opts.stallMs ?? 1500);
        return;
      case 'truncate':
      case 'flip':
        // Only GET responses carry bodies worth damaging; other requests are forwarded as they are.
        forward(req, res, req.method === 'GET' ? fault : null);
        return;
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
