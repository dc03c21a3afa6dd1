/**
 * Watch, part 5: the HTTP push endpoint (Ceph RGW topics with `push-endpoint`, or any sender
 * of S3 event records). Every request must carry the shared token: `Authorization: Bearer
 * <token>`, or `?token=<token>` in the URL (RGW posts to the push-endpoint URL as configured,
 * so the token can ride in it; it is never logged). No token: 401; a wrong one: 403. A
 * delivery is answered 200 only once its changes are journaled on disk; a body that is no
 * event: 400; a journal that cannot be written: 503 (the sender retries).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { errorMessage } from '../errors.js';
import { boundedServer, listenOn, secretChecker, type ListenBounds, type Listening } from '../util/http-listen.js';
import { splitQuery } from '../util/query-string.js';
import { parseDelivery, warnBadKeys, type ChangeEvent } from './watch-events.js';

/** Larger than any delivery RGW or S3 sends (one record is ~1 KiB). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface PushEndpointOptions {
  host: string;
  port: number;
  /** The shared secret every push must carry. */
  token: string;
  /** Journals the changes; resolves once they are durable. */
  ingest: (changes: ChangeEvent[]) => Promise<unknown>;
  onWarning?: (message: string) => void;
  /** Tests: other bounds than listenOn's defaults. */
  bounds?: ListenBounds;
}

export type PushEndpoint = Listening;

export async function startPushEndpoint(opts: PushEndpointOptions): Promise<PushEndpoint> {
  const tokenMatches = secretChecker(opts.token);
  // Bounded (http-listen.ts): a local process cannot hold every file descriptor, or memory in 4 MiB bodies.
  const server: Server = boundedServer(opts.bounds ?? {}, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.onWarning?.(`watch: push request failed: ${errorMessage(err)}`);
      reply(res, 500, 'internal error');
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A target URL cannot hold (`//[`): its ?token= cannot be read, the header's still can.
    let url: URL | null;
    try {
      url = new URL(req.url ?? '/', 'http://watch');
    } catch {
      url = null;
    }
    const given = tokenOf(req, url);
    if (given === undefined) return reply(res, 401, 'a token is required (Authorization: Bearer, or ?token=)');
    // Compared as hashes: equal length, constant time.
    if (!tokenMatches(given)) return reply(res, 403, 'wrong token');
    if (url === null) return reply(res, 400, 'the request target is not a URL');
    if (req.method !== 'POST' && req.method !== 'PUT') return reply(res, 405, 'POST S3 event records here');
    const body = await readBody(req);
    if (body === null) return reply(res, 413, 'body too large');
    let changes: ChangeEvent[];
    try {
      const delivery = parseDelivery(JSON.parse(body.toString('utf8')) as unknown);
      changes = delivery.events;
      warnBadKeys(delivery.badKeys, 'a push', opts.onWarning);
    } catch (err) {
      return reply(res, 400, `not an S3 event notification: ${errorMessage(err)}`);
    }
    try {
      await opts.ingest(changes);
    } catch (err) {
      opts.onWarning?.(`watch: cannot journal ${changes.length} changes: ${errorMessage(err)}`);
      return reply(res, 503, 'cannot journal the changes; retry');
    }
    reply(res, 200, '');
  }
  return listenOn(server, opts.host, opts.port, '/');
}

function tokenOf(req: IncomingMessage, url: URL | null): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
  if (url === null) return undefined;
  // Not url.searchParams: it reads '+' as a space, and a base64 token in a topic's
  // push-endpoint URL arrives with its '+' as written.
  return splitQuery(url.search.slice(1)).find(([name]) => name === 'token')?.[1];
}

/**
 * The body, or null when it is too large. A body too large is still read to its end (and
 * dropped): leaving it unread would break the connection under the sender's next push on it.
 */
async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    else chunks.length = 0;
  }
  return size > MAX_BODY_BYTES ? null : Buffer.concat(chunks);
}

function reply(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
