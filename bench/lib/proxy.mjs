// A counting HTTP reverse proxy on 127.0.0.1 between a baseline tool (rclone, restic) and the
// S3 server: it forwards every request unchanged (Host header included, so SigV4 signatures
// stay valid) over keep-alive sockets and counts requests by S3 operation class, and the body
// bytes that went up and down per bucket and class (what moved through the client).
import { Agent, createServer, request } from 'node:http';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer', 'expect']);
const LIST_QUERY = ['list-type', 'prefix', 'delimiter', 'marker', 'max-keys', 'continuation-token', 'start-after', 'versions', 'uploads', 'encoding-type'];

/**
 * S3 operation class of a path-style request: list, get, head, put, copy (a PUT with
 * x-amz-copy-source: CopyObject or UploadPartCopy, no body), post, delete or other.
 * @param {string} method
 * @param {string} url
 * @param {import('node:http').IncomingHttpHeaders} [headers]
 */
export function classify(method, url, headers = {}) {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  const hasKey = path.replace(/^\/+/, '').includes('/') && !/^\/[^/]+\/$/.test(path);
  switch (method) {
    case 'GET':
      if (hasKey) return 'get';
      if ([...params.keys()].length === 0 || LIST_QUERY.some((k) => params.has(k))) return 'list';
      return 'other';
    case 'HEAD':
      return 'head';
    case 'PUT':
      return headers['x-amz-copy-source'] === undefined ? 'put' : 'copy';
    case 'POST':
      return params.has('delete') ? 'delete' : 'post';
    case 'DELETE':
      return 'delete';
    default:
      return 'other';
  }
}

export function emptyCounts() {
  return {
    list: 0,
    get: 0,
    head: 0,
    put: 0,
    copy: 0,
    post: 0,
    delete: 0,
    other: 0,
    errors: 0,
    bytesUp: 0,
    bytesDown: 0,
    byPrefix: {},
    /** @type {Record<string, { up: number, down: number }>} "<class> <prefix>" -> body bytes each way (with byPrefixDepth) */
    bytesByPrefix: {},
    /** @type {Record<string, { requests: number, up: number, down: number }>} "<class> <bucket>" -> requests and body bytes each way */
    byBucket: {},
  };
}

/** The bucket of a path-style request. */
function bucketOf(url) {
  return decodeURIComponent(url.replace(/^\/+/, '').split(/[/?]/)[0] ?? '');
}

/** `bucket/a/b` of a path-style request path, `depth` segments below the bucket. */
function pathPrefix(url, depth) {
  const q = url.indexOf('?');
  const parts = decodeURIComponent(q < 0 ? url : url.slice(0, q))
    .replace(/^\/+/, '')
    .split('/');
  return parts.slice(0, Math.min(parts.length - 1, depth + 1)).join('/') + '/';
}

/**
 * `byPrefixDepth`: also count requests per operation class and key prefix of that many path
 * segments below the bucket (e.g. 2: `repo-bucket/lakeguard/packs/`).
 */
export async function startProxy({ upstream, port = 0, byPrefixDepth = 0 }) {
  const target = new URL(upstream);
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 10_000 });
  let counts = emptyCounts();
  const server = createServer((req, res) => {
    const c = counts;
    const op = classify(req.method ?? 'GET', req.url ?? '/', req.headers);
    c[op]++;
    const perBucket = (c.byBucket[`${op} ${bucketOf(req.url)}`] ??= { requests: 0, up: 0, down: 0 });
    perBucket.requests++;
    /** @type {{ up: number, down: number }[]} */
    const tallies = [perBucket];
    if (byPrefixDepth > 0) {
      const k = `${op} ${pathPrefix(req.url, byPrefixDepth)}`;
      c.byPrefix[k] = (c.byPrefix[k] ?? 0) + 1;
      tallies.push((c.bytesByPrefix[k] ??= { up: 0, down: 0 }));
    }
    const headers = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i];
      if (HOP_BY_HOP.has(name.toLowerCase())) continue;
      const prev = headers[name];
      headers[name] = prev === undefined ? req.rawHeaders[i + 1] : `${prev}, ${req.rawHeaders[i + 1]}`;
    }
    const up = request(
      { host: target.hostname, port: target.port || 80, method: req.method, path: req.url, headers, agent, setHost: false },
      (upRes) => {
        // Always set on a response to a client request (only server-side messages lack it).
        const statusCode = /** @type {number} */ (upRes.statusCode);
        if (statusCode >= 500) c.errors++;
        const out = [];
        for (let i = 0; i < upRes.rawHeaders.length; i += 2) {
          if (!HOP_BY_HOP.has(upRes.rawHeaders[i].toLowerCase())) out.push(upRes.rawHeaders[i], upRes.rawHeaders[i + 1]);
        }
        res.writeHead(statusCode, upRes.statusMessage, out);
        upRes.on('data', (d) => {
          c.bytesDown += d.length;
          for (const t of tallies) t.down += d.length;
        });
        upRes.pipe(res);
        upRes.on('error', () => res.destroy());
      },
    );
    up.on('error', (err) => {
      c.errors++;
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`proxy: ${err.message}`);
      } else res.destroy();
    });
    req.on('data', (d) => {
      c.bytesUp += d.length;
      for (const t of tallies) t.up += d.length;
    });
    req.pipe(up);
  });
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 120_000;
  server.requestTimeout = 0;
  await /** @type {Promise<void>} */ (
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    })
  );
  const address = server.address();
  // A server listening on a host and port has an AddressInfo (a string is a pipe's path).
  if (address === null || typeof address === 'string') throw new Error(`proxy: not listening on a TCP port: ${address}`);
  const actualPort = address.port;
  return {
    port: actualPort,
    endpoint: `http://127.0.0.1:${actualPort}`,
    /** Returns the counts since the last reset and starts new ones. */
    take() {
      const c = counts;
      counts = emptyCounts();
      return c;
    },
    /** @returns {Promise<void>} */
    close() {
      agent.destroy();
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
