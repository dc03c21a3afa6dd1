/**
 * The one reading of `s3://bucket[/prefix]` and of S3 bucket names, shared by the policy (which
 * validates repository URLs and source buckets) and by openStore (which opens any URL handed to
 * it, e.g. `restore --to`). Callers word their own errors; this module only says what is wrong.
 *
 * Bucket names follow the S3 naming rules for general purpose buckets: 3 to 63 lowercase
 * letters, digits, dots and hyphens, starting and ending with a letter or digit, no two dots in
 * a row, not shaped like an IP address. Legacy names (upper case, underscores) are refused
 * everywhere: AWS has not created them since 2018, most S3-compatible servers refuse them by
 * default, and a name the policy refuses must not get through another door. The reserved prefixes and
 * suffixes (`xn--`, `-s3alias`, ...) are not checked: they only restrict creating a bucket, and an
 * access point alias ending in `-s3alias` is a valid bucket argument.
 */

/** Why a bucket name breaks the S3 naming rules, or undefined when it is fine. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.startsWith('s3://')) return 'write the bucket name without "s3://"';
  if (name.includes('/')) return 'a bucket name cannot contain "/"; put the rest of the path in prefixes';
  if (name.length < 3 || name.length > 63) return `must be 3 to 63 characters long, not ${name.length}`;
  const bad = /[^a-z0-9.-]/.exec(name);
  if (bad !== null) return `may contain only lowercase letters, digits, dots and hyphens, not ${JSON.stringify(bad[0])}`;
  if (!/^[a-z0-9].*[a-z0-9]$/.test(name)) return 'must start and end with a lowercase letter or digit';
  if (name.includes('..')) return 'must not contain two dots in a row';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return 'must not look like an IP address';
  return undefined;
}

/** An `s3://` URL taken apart: `prefix` is '' or has no slash at either end (`a/b`). */
export interface S3Url {
  bucket: string;
  prefix: string;
}

/** What is wrong with an `s3://` URL: its bucket name, or an empty path segment (`//`). */
export type S3UrlProblem = { problem: 'bucket'; bucket: string; reason: string } | { problem: 'empty-segment' };

/**
 * Splits a URL that starts with `s3://`. Trailing slashes are dropped (`s3://b/p/` is `s3://b/p`);
 * any other empty path segment (`s3://b//p`, `s3://b/a//c`) is refused rather than guessed at,
 * since object keys may start with "/" and the two readings name different objects.
 */
export function splitS3Url(url: string): S3Url | S3UrlProblem {
  const rest = url.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  const reason = bucketNameProblem(bucket);
  if (reason !== undefined) return { problem: 'bucket', bucket, reason };
  if (prefix.startsWith('/') || prefix.includes('//')) return { problem: 'empty-segment' };
  return { bucket, prefix };
}

/**
 * Whether two endpoint settings name one server (no setting: AWS). One bucket name on two
 * servers is two buckets; on one server (or both AWS) it is one.
 */
export function sameEndpoint(a: string | undefined, b: string | undefined): boolean {
  const normal = (e: string | undefined): string => (e ?? '').trim().toLowerCase().replace(/\/+$/, '');
  return normal(a) === normal(b);
}
