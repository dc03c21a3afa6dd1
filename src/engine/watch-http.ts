/**
 * Watch, part 5: the HTTP push endpoint (Ceph RGW topics with `push-endpoint`, or any sender
 * of S3 event records). Every request must carry the shared token: `Authorization: Bearer
 * <token>`, or `?token=<token>` in the URL (RGW posts to the push-endpoint URL as configured,
 * so the token can ride in it; it is never logged). No token: 401; a wrong one: 403. A
 * delivery is answered 200 only once its changes are journaled on disk; a body that is no
 * event: 400; a journal that cannot be written: 503 (the sender retries).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { errorMessage } from '../errors.js';
import { listenOn, secretChecker, type Listening } from '../util/http-listen.js';
import { parseDelivery, type ChangeEvent } from './watch-events.js';

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
}

export type PushEndpoint = Listening;

export async function startPushEndpoint(opts: PushEndpointOptions): Promise<PushEndpoint> {
  const tokenMatches = secretChecker(opts.token);
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.onWarning?.(`watch: push request failed: ${errorMessage(err)}`);
      reply(res, 500, 'internal error');
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://watch');
    const given = tokenOf(req, url);
    if (given === undefined) return reply(res, 401, 'a token is required (Authorization: Bearer, or ?token=)');
    // Compared as hashes: equal length, constant time.
    if (!tokenMatches(given)) return reply(res, 403, 'wrong token');
    if (req.method !== 'POST' && req.method !== 'PUT') return reply(res, 405, 'POST S3 event records here');
    const body = await readBody(req);
    if (body === null) return reply(res, 413, 'body too large');
    let changes: ChangeEvent[];
    try {
      changes = parseDelivery(JSON.parse(body.toString('utf8')) as unknown).events;
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

function tokenOf(req: IncomingMessage, url: URL): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
  return url.searchParams.get('token') ?? undefined;
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
