/**
 * Where a request to `lakeguard serve` points: the bucket (path-style `/bucket/key` or
 * virtual-host style `bucket.host/key`), the key, the query parameters, and the instant the
 * request asked for (header `x-lakeguard-at`, or a bucket alias `<bucket>--at--<instant or run>`).
 */
import { S3Error } from './s3-responses.js';
import { splitQuery } from '../util/query-string.js';

/** The request header that names the instant (an instant or a run id) a request is answered as of. */
export const AT_HEADER = 'x-lakeguard-at';
/** Between a bucket's name and an instant in a bucket alias: `lake--at--20261201t100000z`. */
export const ALIAS_SEPARATOR = '--at--';

/** A request's target, decoded. */
export interface Route {
  /** undefined: the service (ListBuckets). */
  bucket?: string;
  /** undefined or '': the bucket itself. */
  key?: string;
  /** The instant text this request asked for (header or alias), to resolve against the view. */
  at?: string;
  /** Query parameters by name (the first value of a repeated one). */
  query: Map<string, string>;
}

/** `20261201t100000z`, `20261201t1000z`, `20261201z`, with milliseconds `20261201t100000.250z`: a UTC instant, any case. */
const COMPACT_INSTANT = /^(\d{4})(\d{2})(\d{2})(?:t(\d{2})(\d{2})(\d{2})?(?:\.(\d{1,3}))?)?z$/i;

/**
 * The instant text of a bucket alias as `--at` reads it: a compact UTC instant becomes ISO 8601
 * (`2026-12-01T10:00:00Z`); anything else (a run or run set id, `now`) is kept as it is.
 */
export function aliasInstant(text: string): string {
  const m = COMPACT_INSTANT.exec(text);
  // A run id (`20261123T101500Z-3fa2c1`) arrives lower-cased through a virtual-host Host header.
  if (m === null) return text.replace(/^(\d{8})t(\d+)(z?)/i, (_all, day: string, time: string, z: string) => `${day}T${time}${z.toUpperCase()}`);
  const [, y, mo, d, h, mi, s, ms] = m;
  if (h === undefined) return `${y}-${mo}-${d}T00:00:00Z`;
  return `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${ms === undefined ? '' : `.${ms}`}Z`;
}

/**
 * A bucket name as a client gave it: an exposed bucket, or an alias `<bucket>--at--<instant>`
 * of one (an exposed bucket whose own name holds `--at--` is taken as it is). Null when it names
 * no exposed bucket.
 */
export function parseBucketName(name: string, buckets: ReadonlySet<string>): { bucket: string; at?: string } | null {
  if (buckets.has(name)) return { bucket: name };
  const i = name.indexOf(ALIAS_SEPARATOR);
  if (i <= 0) return null;
  const bucket = name.slice(0, i);
  const at = name.slice(i + ALIAS_SEPARATOR.length);
  if (!buckets.has(bucket) || at === '') return null;
  return { bucket, at: aliasInstant(at) };
}

function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new S3Error('InvalidURI', 400, 'Couldn\'t parse the specified URI.');
  }
}

/**
 * The route of a request. Virtual-host style when the Host header starts with an exposed
 * bucket (or an alias of one) followed by a dot, else path-style. A bucket name that is
 * neither exposed nor an alias is kept as given (the caller answers NoSuchBucket).
 */
export function routeOf(rawUrl: string, host: string | undefined, atHeader: string | undefined, buckets: ReadonlySet<string>): Route {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = new Map<string, string>();
  for (const [name, value] of splitQuery(q < 0 ? '' : rawUrl.slice(q + 1))) if (!query.has(name)) query.set(name, value);
  if (!rawPath.startsWith('/')) throw new S3Error('InvalidURI', 400, 'Couldn\'t parse the specified URI.');
  let named: string | undefined;
  let key: string | undefined;
  const hostname = (host ?? '').replace(/:\d+$/, '').toLowerCase();
  const virtual = virtualHostBucket(hostname, buckets);
  if (virtual !== undefined) {
    named = virtual;
    key = decodePath(rawPath.slice(1));
  } else {
    const slash = rawPath.indexOf('/', 1);
    const first = slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash);
    if (first !== '') named = decodePath(first);
    if (slash >= 0) key = decodePath(rawPath.slice(slash + 1));
  }
  const header = atHeader?.trim();
  const route: Route = { query, ...(header === undefined || header === '' ? {} : { at: header }) };
  if (named === undefined) return route;
  const parsed = parseBucketName(named, buckets);
  if (parsed === null) return { ...route, bucket: named, ...(key === undefined ? {} : { key }) };
  if (parsed.at !== undefined && route.at !== undefined && parsed.at !== route.at) {
    throw new S3Error('InvalidArgument', 400, `the bucket alias ${named} and the ${AT_HEADER} header ${JSON.stringify(route.at)} name different instants: give one`);
  }
  return { ...route, bucket: parsed.bucket, ...(key === undefined ? {} : { key }), ...(parsed.at === undefined ? {} : { at: parsed.at }) };
}

/**
 * The bucket (or alias) a virtual-host style Host names: the longest served bucket the host
 * starts with (bucket names may hold dots), else an alias, whose instant ends at the next dot
 * (so the compact instant with milliseconds is for path-style only).
 */
function virtualHostBucket(hostname: string, buckets: ReadonlySet<string>): string | undefined {
  if (/^[\d.]+$/.test(hostname) || hostname.startsWith('[')) return undefined;
  for (let dot = hostname.lastIndexOf('.'); dot > 0; dot = hostname.lastIndexOf('.', dot - 1)) {
    if (buckets.has(hostname.slice(0, dot))) return hostname.slice(0, dot);
  }
  const separator = hostname.indexOf(ALIAS_SEPARATOR);
  const end = separator < 0 ? -1 : hostname.indexOf('.', separator);
  if (end < 0) return undefined;
  const alias = hostname.slice(0, end);
  return parseBucketName(alias, buckets) === null ? undefined : alias;
}
