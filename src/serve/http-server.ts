/**
 * The HTTP side of `lakeguard serve`: a read-only S3 endpoint over a ServeView. Every request
 * is authenticated (SigV4), routed (path-style or virtual-host style, a bucket alias or the
 * x-lakeguard-at header for its instant), answered from the view, and logged (one access entry
 * per request, never its signature). Writes are refused with AccessDenied, reads this server
 * does not implement with NotImplemented.
 */
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { errorMessage } from '../errors.js';
import { slowClientBounds } from '../util/http-listen.js';
import type { Credentials } from '../storage/s3-sigv4.js';
import { answerObject, headerValue } from './http-object.js';
import { OWNER_ID, listObjectsV1, listObjectsV2, listVersions } from './http-lists.js';
import { AT_HEADER, routeOf, type Route } from './http-route.js';
import { S3Error, errorXml, listBucketsXml, locationXml, taggingXml } from './s3-responses.js';
import { verifySigV4 } from './sigv4-verify.js';
import { ViewInputError, type ServeView, type ViewCut } from './view-types.js';

/** The response header naming the instant a request was answered as of. */
export const VIEW_HEADER = 'x-lakeguard-view';

/** One line of the access log. */
export interface AccessEntry {
  time: string;
  request_id: string;
  remote: string;
  method: string;
  /** The S3 operation (GetObject, ListObjectsV2, ...), when the request got that far. */
  operation?: string;
  bucket?: string;
  key?: string;
  /** A listing's prefix. */
  prefix?: string;
  status: number;
  /** Body bytes sent. */
  bytes: number;
  ms: number;
  /** The instant's label, when the request got that far. */
  view?: string;
  /** The S3 error code answered (or the cause of a body cut short). */
  error?: string;
}

export interface S3HandlerOptions {
  view: ServeView;
  credentials: Credentials;
  /** When the server started: ListBuckets' CreationDate. */
  startedAt: number;
  /** Every request, once its response is done. */
  onAccess?: (entry: AccessEntry) => void;
  /** A failure an operator must see even without an access log (a pack that cannot be read). */
  onWarning?: (message: string) => void;
  /** The clock the signatures are checked against (tests). */
  now?: () => number;
  /**
   * For a catalog that holds only some prefixes (scoped): why the keys of `bucket` starting
   * with `prefix` cannot be answered here, or undefined when they can. Asked with '' for a
   * bucket not served too (a 404 only when it answers undefined). Absent: a whole catalog.
   */
  outsideScope?: (bucket: string, prefix: string) => string | undefined;
  /** Requests answered at once; more are refused with 503 SlowDown (default DEFAULT_MAX_REQUESTS). */
  maxRequests?: number;
}

/**
 * Requests in flight at once. Each holds at most one run of blobs (2 MiB stored, and what it
 * decodes to) while its client reads: 128 of them stay within a few hundred MB, and no more
 * connections than that are needed by a client that reads one object per connection at a time.
 */
export const DEFAULT_MAX_REQUESTS = 128;
/** Open connections at once; more are closed as they arrive (keep-alive clients hold idle ones). */
export const DEFAULT_MAX_CONNECTIONS = 256;
/** The whole header section must arrive within this of a request's (or a new connection's) start: a slow sender is answered 408. */
export const HEADERS_TIMEOUT_MS = 20_000;
/** The whole request (there is no body to read) must arrive within this. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** Warns of refusals at the 1st, 10th, 100th... one: an operator learns of a flood without a line per refused request. */
function refusalWarner(warn: ((message: string) => void) | undefined, what: (n: number) => string): () => void {
  let refused = 0;
  let next = 1;
  return () => {
    refused++;
    if (refused < next) return;
    next *= 10;
    warn?.(what(refused));
  };
}

/** Query parameters that select no subresource (listing parameters, presign and SDK additions). */
const BUCKET_READ_PARAMS = new Set(['prefix', 'delimiter', 'max-keys', 'marker', 'encoding-type', 'continuation-token', 'start-after', 'fetch-owner', 'list-type', 'key-marker', 'version-id-marker', 'versions', 'location', 'x-id']);
const OBJECT_READ_PARAMS = new Set(['versionId', 'tagging', 'x-id']);

/** Query parameters a signature or an SDK adds: they select nothing. */
function isNeutral(name: string): boolean {
  return name.startsWith('X-Amz-') || name.startsWith('response-');
}

/** What the request is, after routing: the label and operation for the log. */
interface RequestState {
  route?: Route;
  operation?: string;
  cut?: ViewCut;
  bytes: number;
  error?: string;
}

/** The request handler of the S3 endpoint (also what tests mount on a server of their own). */
export function s3Handler(opts: S3HandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const buckets = new Set(opts.view.buckets());
  const now = opts.now ?? Date.now;
  const maxRequests = opts.maxRequests ?? DEFAULT_MAX_REQUESTS;
  let inFlight = 0;
  const refused = refusalWarner(opts.onWarning, (n) => `${n} requests refused with 503 SlowDown so far: ${maxRequests} were in flight (--max-requests)`);
  return (req, res) => {
    const started = performance.now();
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    // Read now: once the connection is closed (a body cut short, a client gone, the stop) the
    // socket no longer knows its peer, and those are the requests whose log line matters most.
    const remote = req.socket.remoteAddress ?? '';
    const state: RequestState = { bytes: 0 };
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('server', 'lakeguard');
    // Over the cap: refused at once, before anything is read or looked up, as S3 refuses a
    // client that asks too fast (the SDKs back off and retry). The connection closes after
    // the answer, which also ends a flood of requests pipelined on it.
    const over = inFlight >= maxRequests;
    if (!over) {
      inFlight++;
      // Before the access log's listener: a request logged as done no longer counts.
      res.once('close', () => inFlight--);
    }
    res.on('close', () => {
      const route = state.route;
      opts.onAccess?.({
        time: new Date().toISOString(),
        request_id: requestId,
        remote,
        method: req.method ?? '',
        ...(state.operation === undefined ? {} : { operation: state.operation }),
        ...(route?.bucket === undefined ? {} : { bucket: route.bucket }),
        ...(route?.key === undefined || route.key === '' ? {} : { key: route.key }),
        ...(state.operation?.startsWith('List') && route?.query.has('prefix') ? { prefix: route.query.get('prefix')! } : {}),
        status: res.statusCode,
        bytes: state.bytes,
        ms: Math.round(performance.now() - started),
        ...(state.cut === undefined ? {} : { view: state.cut.label }),
        ...(state.error === undefined ? {} : { error: state.error }),
      });
    });
    // A request body is never read (nothing here accepts one): the connection closes after the answer.
    if (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') res.shouldKeepAlive = false;
    if (req.headers['transfer-encoding'] !== undefined) res.shouldKeepAlive = false;
    if (over) {
      refused();
      res.shouldKeepAlive = false;
      sendError(req, res, state, new S3Error('SlowDown', 503, `Please reduce your request rate: ${maxRequests} requests are in flight`), requestId);
      return;
    }
    handle(req, res, state, opts, buckets, now).catch((err: unknown) => sendError(req, res, state, toS3Error(err, state, opts), requestId));
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, state: RequestState, opts: S3HandlerOptions, buckets: ReadonlySet<string>, now: () => number): Promise<void> {
  const url = req.url ?? '/';
  const atHeader = req.headers[AT_HEADER];
  // A request that cannot be routed is still authenticated first: its error (a malformed path,
  // an alias and a header that disagree) would tell an anonymous client which buckets are served.
  let route: Route | undefined;
  let unroutable: unknown;
  try {
    route = routeOf(url, req.headers.host, Array.isArray(atHeader) ? atHeader[0] : atHeader, buckets);
    state.route = route;
  } catch (err) {
    unroutable = err;
  }
  const q = url.indexOf('?');
  const failure = verifySigV4({ method: req.method ?? '', rawPath: q < 0 ? url : url.slice(0, q), rawQuery: q < 0 ? '' : url.slice(q + 1), headers: req.headers }, opts.credentials, now(), [AT_HEADER]);
  if (failure !== null) throw new S3Error(failure.code, failure.status, failure.message);
  if (route === undefined) throw unroutable;
  const method = req.method ?? '';
  if (method !== 'GET' && method !== 'HEAD') {
    throw new S3Error('AccessDenied', 403, `lakeguard serve is read-only: ${method} is not allowed (restore with \`lakeguard restore\` to write data somewhere)`);
  }
  const view = opts.view;
  state.cut = route.at === undefined ? view.defaultCut : view.resolveAt(route.at);
  res.setHeader(VIEW_HEADER, headerValue(state.cut.label));
  if (route.bucket === undefined) {
    state.operation = 'ListBuckets';
    return sendXml(req, res, state, 200, listBucketsXml([...buckets], opts.startedAt, OWNER_ID));
  }
  if (!buckets.has(route.bucket)) {
    // A scoped catalog knows only its scope's buckets: another one may be in the repository.
    refuseOutsideScope(opts, route.bucket, '');
    throw new S3Error('NoSuchBucket', 404, 'The specified bucket does not exist', { fields: { BucketName: route.bucket } });
  }
  if (route.key === undefined || route.key === '') {
    const listed = route.query.get('prefix') ?? '';
    // Only listings select keys; HeadBucket and GetBucketLocation answer for a scoped catalog too.
    if (req.method === 'GET' && !route.query.has('location')) refuseOutsideScope(opts, route.bucket, listed);
    return bucketRequest(req, res, state, view, route.bucket, route.query);
  }
  refuseOutsideScope(opts, route.bucket, route.key);
  return objectRequest(req, res, state, view, { bucket: route.bucket, key: route.key, query: route.query }, opts.onWarning ?? (() => {}));
}

/**
 * A scoped catalog answers only inside its scope, exactly as a whole one would; elsewhere it
 * would answer from partial knowledge (a listing missing keys, a 404 for a key it never saw).
 */
function refuseOutsideScope(opts: S3HandlerOptions, bucket: string, prefix: string): void {
  const why = opts.outsideScope?.(bucket, prefix);
  if (why !== undefined) throw new S3Error('AccessDenied', 403, why);
}

function unsupported(query: ReadonlyMap<string, string>, allowed: ReadonlySet<string>): string | undefined {
  for (const name of query.keys()) if (!allowed.has(name) && !isNeutral(name)) return name;
  return undefined;
}

function notImplemented(what: string): S3Error {
  return new S3Error('NotImplemented', 501, `lakeguard serve does not implement ${what}; it answers ListBuckets, HeadBucket, GetBucketLocation, ListObjects(V2), ListObjectVersions, GetObject, HeadObject and GetObjectTagging`);
}

function bucketRequest(req: IncomingMessage, res: ServerResponse, state: RequestState, view: ServeView, bucket: string, query: ReadonlyMap<string, string>): void {
  const extra = unsupported(query, BUCKET_READ_PARAMS);
  if (extra !== undefined) throw notImplemented(`the bucket subresource ?${extra}`);
  const cut = state.cut!;
  if (req.method === 'HEAD') {
    state.operation = 'HeadBucket';
    res.setHeader('x-amz-bucket-region', 'us-east-1');
    res.writeHead(200).end();
    return;
  }
  if (query.has('location')) {
    state.operation = 'GetBucketLocation';
    return sendXml(req, res, state, 200, locationXml());
  }
  if (query.has('versions')) {
    state.operation = 'ListObjectVersions';
    return sendXml(req, res, state, 200, listVersions(view, bucket, cut, query));
  }
  if (query.get('list-type') === '2') {
    state.operation = 'ListObjectsV2';
    return sendXml(req, res, state, 200, listObjectsV2(view, bucket, cut, query));
  }
  if (query.has('list-type')) throw new S3Error('InvalidArgument', 400, 'Invalid list-type: expected 2', { fields: { ArgumentName: 'list-type', ArgumentValue: query.get('list-type')! } });
  state.operation = 'ListObjects';
  return sendXml(req, res, state, 200, listObjectsV1(view, bucket, cut, query));
}

async function objectRequest(
  req: IncomingMessage,
  res: ServerResponse,
  state: RequestState,
  view: ServeView,
  target: { bucket: string; key: string; query: ReadonlyMap<string, string> },
  warn: (message: string) => void,
): Promise<void> {
  const { bucket, key, query } = target;
  const extra = unsupported(query, OBJECT_READ_PARAMS);
  if (extra !== undefined) throw notImplemented(`the object subresource ?${extra}`);
  const isGet = req.method === 'GET';
  state.operation = query.has('tagging') ? 'GetObjectTagging' : isGet ? 'GetObject' : 'HeadObject';
  if (query.has('tagging') && !isGet) throw notImplemented('HEAD of ?tagging');
  const versionId = query.get('versionId');
  const found = view.lookup({ bucket, key, at: state.cut!, ...(versionId === undefined || versionId === '' ? {} : { versionId }) });
  if (found.kind === 'missing') {
    if (versionId !== undefined && versionId !== '') throw new S3Error('NoSuchVersion', 404, 'The specified version does not exist.', { fields: { Key: key, VersionId: versionId } });
    throw new S3Error('NoSuchKey', 404, 'The specified key does not exist.', { fields: { Key: key } });
  }
  if (found.kind === 'deleted') {
    const headers: Record<string, string> = { 'x-amz-delete-marker': 'true', ...(found.versionId === null ? {} : { 'x-amz-version-id': found.versionId }) };
    // S3: a delete marker asked for by its version id is 405; the current state a delete marker is 404.
    if (versionId !== undefined && versionId !== '') throw new S3Error('MethodNotAllowed', 405, 'The specified method is not allowed against this resource.', { fields: { Method: req.method ?? '', ResourceType: 'DeleteMarker' }, headers: { ...headers, allow: 'DELETE' } });
    throw new S3Error('NoSuchKey', 404, 'The specified key does not exist.', { fields: { Key: key }, headers });
  }
  const head = found.head;
  if (query.has('tagging')) {
    if (head.versionId !== null) res.setHeader('x-amz-version-id', head.versionId);
    return sendXml(req, res, state, 200, taggingXml(head.tags));
  }
  const answer = answerObject(req.headers, query, head, isGet);
  res.writeHead(answer.status, answer.headers);
  if (!isGet || answer.status === 304 || head.size === 0) {
    res.end();
    return;
  }
  const aborted = new AbortController();
  res.on('close', () => aborted.abort());
  const body = view.open(head, answer.range, aborted.signal);
  let readFailure: unknown;
  // An error after the client went away is the abort's echo, not a failure of the content.
  body.once('error', (err) => {
    if (!aborted.signal.aborted) readFailure = err;
  });
  body.on('data', (chunk: Buffer) => {
    state.bytes += chunk.length;
  });
  try {
    await pipeline(body, res);
  } catch (err) {
    // Headers are sent: the client sees a body shorter than its Content-Length, never wrong bytes.
    // A client that went away is routine; content the view could not read is the operator's to know.
    if (readFailure !== undefined) {
      state.error = `body cut short: ${errorMessage(readFailure)}`;
      warn(`GET ${bucket}/${key} (${state.cut!.label}) was cut short: ${errorMessage(readFailure)}`);
    } else {
      state.error = `client went away (${errorMessage(err)})`;
    }
    res.destroy();
  }
}

function sendXml(req: IncomingMessage, res: ServerResponse, state: RequestState, status: number, xml: string): void {
  const body = Buffer.from(xml, 'utf8');
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': String(body.length) });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  state.bytes += body.length;
  res.end(body);
}

function toS3Error(err: unknown, state: RequestState, opts: S3HandlerOptions): S3Error {
  if (err instanceof S3Error) return err;
  if (err instanceof ViewInputError) return new S3Error('InvalidArgument', 400, err.message, { fields: { ArgumentName: AT_HEADER } });
  const where = state.route?.bucket === undefined ? '' : ` ${state.route.bucket}/${state.route.key ?? ''}`;
  opts.onWarning?.(`${state.operation ?? 'request'}${where} failed: ${errorMessage(err)}`);
  return new S3Error('InternalError', 500, `lakeguard serve could not answer: ${errorMessage(err)}`);
}

function sendError(req: IncomingMessage, res: ServerResponse, state: RequestState, err: S3Error, requestId: string): void {
  state.error = err.code;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const resource = (req.url ?? '/').split('?')[0]!;
  const body = Buffer.from(errorXml(err, resource, requestId), 'utf8');
  res.writeHead(err.status, { ...err.extra.headers, 'content-type': 'application/xml', 'content-length': String(body.length) });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  state.bytes += body.length;
  res.end(body);
}

/** Where and how to listen; TLS (PEM) makes it https. */
export interface ListenOptions {
  host: string;
  port: number;
  tls?: { cert: Buffer; key: Buffer };
  /** Open connections at once (default DEFAULT_MAX_CONNECTIONS); more are closed as they arrive. */
  maxConnections?: number;
  /** Tests: shorter headers and request timeouts than HEADERS_TIMEOUT_MS and REQUEST_TIMEOUT_MS. */
  timeouts?: { headersMs: number; requestMs: number };
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:9000 (the port the system picked for port 0). */
  url: string;
  port: number;
  /** Stops accepting, lets requests in flight finish for up to `graceMs` (or until `hurry` aborts), then closes what is left. */
  stop(graceMs: number, hurry?: AbortSignal): Promise<void>;
  /** The Node server (tests watch its `connection` and `drop` events). */
  server: Server;
}

/** Starts the endpoint; rejects when the address cannot be bound (in use, not local). */
export async function startS3Server(handler: S3HandlerOptions, listen: ListenOptions): Promise<RunningServer> {
  const handle = s3Handler(handler);
  // Bounds against a slow or flooding client (a slowloris, a local process opening sockets):
  // headers size, headers and request time, and open connections.
  const headersTimeout = listen.timeouts?.headersMs ?? HEADERS_TIMEOUT_MS;
  const requestTimeout = listen.timeouts?.requestMs ?? REQUEST_TIMEOUT_MS;
  const options = slowClientBounds(headersTimeout, requestTimeout);
  const server: Server = listen.tls === undefined ? createHttpServer(options, handle) : createHttpsServer({ ...options, cert: listen.tls.cert, key: listen.tls.key }, handle);
  // Clients (the AWS SDKs, boto3, the AWS CLI) keep idle connections and reuse them without
  // knowing this server's idle limit. Node's default of 5 s closes one just as a client sends on
  // it often enough to matter ("socket hang up" between a query engine's reads); a minute is
  // longer than the pauses between requests of one client. (An idle kept-alive connection is
  // not subject to headersTimeout: that counts from the first byte of the next request.)
  server.keepAliveTimeout = 65_000;
  const maxConnections = listen.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  server.maxConnections = maxConnections;
  const dropped = refusalWarner(handler.onWarning, (n) => `${n} connections refused so far: ${maxConnections} were open (--max-connections)`);
  server.on('drop', dropped);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return {
    url: `${listen.tls === undefined ? 'http' : 'https'}://${host}:${port}`,
    port,
    stop: (graceMs, hurry) => stopServer(server, graceMs, hurry),
    server,
  };
}

async function stopServer(server: Server, graceMs: number, hurry?: AbortSignal): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive connections with no request in flight would hold close() open.
  server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  let cut: (() => void) | undefined;
  const late = new Promise<void>((resolve) => {
    cut = () => {
      server.closeAllConnections();
      resolve();
    };
    timer = setTimeout(cut, graceMs);
    hurry?.addEventListener('abort', cut, { once: true });
    if (hurry?.aborted === true) cut();
  });
  await Promise.race([closed, late]);
  clearTimeout(timer);
  if (cut !== undefined) hurry?.removeEventListener('abort', cut);
  await closed;
}
