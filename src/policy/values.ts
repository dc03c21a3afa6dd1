/**
 * Value parsers of the policy: one YAML value → a checked lakeguard value (sizes, durations,
 * time zones, endpoints, regions, environment variable names, local paths, repository URLs),
 * each reporting what is allowed when the value is not. Secrets are never repeated.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isScalar } from 'yaml';
import { splitS3Url } from '../storage/s3-url.js';
import { compileGlob, GlobError } from './glob.js';
import { ENCRYPTIONS, PACK_STORAGE_CLASSES, isEncryption, isPackStorageClass, type PackStorageClass, type RepositoryPolicy } from './types.js';
import { describe, type Checker, type Field } from './yaml-check.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

export function checkEncryption(c: Checker, f: Field): RepositoryPolicy['encryption'] | undefined {
  const value = isScalar(f.node) ? f.node.value : undefined;
  if (isEncryption(value)) return value;
  c.report(f, `expected ${ENCRYPTIONS.map((e) => `"${e}"`).join(' or ')}, got ${describe(f.node)}`);
  return undefined;
}

export function checkPackStorageClass(c: Checker, f: Field): PackStorageClass | undefined {
  const value = isScalar(f.node) ? f.node.value : undefined;
  if (isPackStorageClass(value)) return value;
  c.report(f, `expected one of ${PACK_STORAGE_CLASSES.join(', ')}, got ${describe(f.node)}`);
  return undefined;
}

export function checkEnvName(c: Checker, f: Field): string | undefined {
  const name = c.string(f, 'the name of an environment variable such as LAKEGUARD_PASSWORD', { secret: true });
  if (name === undefined || /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return name;
  // Not echoed: a value that is not a variable name may well be the password itself.
  c.report(f, 'expected the name of an environment variable (letters, digits and "_") such as LAKEGUARD_PASSWORD, got something else (not shown in case it is the password)');
  return undefined;
}

export function checkLocalPath(c: Checker, f: Field, ctx: { baseDir: string }, what: string): string | undefined {
  const raw = c.string(f, what);
  if (raw === undefined) return undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    c.report(f, `expected ${what}, not a URL, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  if (raw.startsWith('~')) {
    c.report(f, `"~" is not expanded in ${JSON.stringify(raw)}; write an absolute path or one relative to the policy file`);
    return undefined;
  }
  return path.resolve(ctx.baseDir, raw);
}

const ENDPOINT_EXPECTED = 'an http:// or https:// URL such as http://127.0.0.1:7480';

/** What is wrong with an S3 endpoint URL (the policy's `endpoint:` or `--endpoint`), or undefined. */
export function endpointProblem(raw: string): string | undefined {
  if (hasUserInfo(raw)) return `must not contain credentials; ${CREDENTIAL_CHAIN}`;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return `expected ${ENDPOINT_EXPECTED}, got ${JSON.stringify(raw)}`;
  return undefined;
}

export function checkEndpoint(c: Checker, f: Field): string | undefined {
  if (isScalar(f.node) && typeof f.node.value === 'string' && hasUserInfo(f.node.value)) {
    c.report(f, `must not contain credentials; ${CREDENTIAL_CHAIN}`);
    return undefined;
  }
  const raw = c.string(f, ENDPOINT_EXPECTED);
  if (raw === undefined) return undefined;
  const problem = endpointProblem(raw);
  if (problem !== undefined) {
    c.report(f, problem);
    return undefined;
  }
  return raw;
}

export function checkRegion(c: Checker, f: Field): string | undefined {
  const raw = c.string(f, 'a region name such as us-east-1');
  if (raw === undefined || /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(raw)) return raw;
  c.report(f, `expected a region name such as us-east-1, got ${JSON.stringify(raw)}`);
  return undefined;
}

export function checkPackSize(c: Checker, f: Field): number | undefined {
  const expected = 'a size from 1MiB to 1GiB such as 16MiB or 16777216';
  const value = isScalar(f.node) ? f.node.value : undefined;
  const bytes = typeof value === 'number' ? value : typeof value === 'string' ? parseSize(value) : undefined;
  if (bytes !== undefined && Number.isInteger(bytes) && bytes >= MIB && bytes <= GIB) return bytes;
  const decimal = typeof value === 'string' && /^\s*[\d.]+\s*[kmgt]b\s*$/i.test(value);
  c.report(f, `expected ${expected}, got ${describe(f.node)}${decimal ? ' (sizes are binary: write MiB, or M)' : ''}`);
  return undefined;
}

/** `16777216`, `16MiB`, `16M`, `1.5GiB`, `512KiB`: binary units, case-insensitive. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(?:i?b)?|b)?\s*$/i.exec(text);
  if (m === null) return undefined;
  if (/^\s*[\d.]+\s*[kmg]b\s*$/i.test(text)) return undefined; // "16MB" is ambiguous (decimal?); refuse it
  const unit = { k: 1024, m: MIB, g: GIB }[(m[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 1;
  return Math.floor(Number(m[1]) * unit);
}

const DURATION = /^(\d+[ymwdh])+$/;

export function checkTimeZone(c: Checker, f: Field): string | undefined {
  const raw = c.string(f, 'an IANA time zone such as UTC or Europe/Berlin');
  if (raw === undefined) return undefined;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: raw });
    return raw;
  } catch {
    c.report(f, `unknown time zone ${JSON.stringify(raw)}: use an IANA name such as UTC, Europe/Berlin or America/New_York`);
    return undefined;
  }
}

export function checkDuration(c: Checker, f: Field): string | undefined {
  const expected = 'a duration such as 30d, 12h, 2w, 6m (months) or 1y6m';
  const raw = c.string(f, expected);
  if (raw === undefined || DURATION.test(raw)) return raw;
  c.report(f, `expected ${expected}, got ${JSON.stringify(raw)}`);
  return undefined;
}

const CREDENTIAL_CHAIN =
  'S3 credentials come from the AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance/task role)';

function hasUserInfo(url: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(url);
}

/**
 * `s3://bucket[/prefix]` → normalized without a trailing slash; `file:///abs` or relative
 * `file://./dir` → canonical absolute file URL. Errors never repeat a URL with credentials in it.
 */
export function normalizeRepositoryUrl(raw: string, baseDir: string): { url: string; kind: 's3' | 'file' } | { error: string } {
  const expected = 'expected s3://bucket[/prefix], file:///absolute/dir or file://./relative/dir';
  if (hasUserInfo(raw)) return { error: `the URL must not contain credentials; ${CREDENTIAL_CHAIN}` };
  if (raw.startsWith('s3://')) {
    const parsed = splitS3Url(raw);
    if ('problem' in parsed && parsed.problem === 'bucket') {
      return { error: `invalid bucket name ${JSON.stringify(parsed.bucket)} in ${JSON.stringify(raw)}: ${parsed.reason}` };
    }
    if ('problem' in parsed) return { error: `${JSON.stringify(raw)} has an empty path segment ("//")` };
    return { url: parsed.prefix === '' ? `s3://${parsed.bucket}` : `s3://${parsed.bucket}/${parsed.prefix}`, kind: 's3' };
  }
  if (raw.startsWith('file://')) {
    const rest = raw.slice('file://'.length);
    if (!(rest.startsWith('/') || rest === '.' || rest === '..' || rest.startsWith('./') || rest.startsWith('../'))) {
      return { error: `${expected}, got ${JSON.stringify(raw)}` };
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(rest);
    } catch {
      // Not valid %-escapes, so not meant as escapes: a path such as /data/50%off written as is.
      decoded = rest;
    }
    return { url: pathToFileURL(path.resolve(baseDir, decoded)).href, kind: 'file' };
  }
  return { error: `${expected}, got ${JSON.stringify(raw)}` };
}

/**
 * A list of globs, each compiled to check it (`exclude`, the anomaly block's
 * `ransom_note_patterns`); `refuse` names what a field does not allow in a glob, or returns
 * undefined. Undefined (with every problem reported) when any glob is wrong.
 */
export function checkGlobList(c: Checker, f: Field, examples: { list: string; item: string }, refuse: (glob: string) => string | undefined = () => undefined): string[] | undefined {
  const items = c.list(f, examples.list);
  if (items === undefined) return undefined;
  const before = c.problems.length;
  const out: string[] = [];
  for (const item of items) {
    const glob = c.string(item, examples.item);
    if (glob === undefined) continue;
    const refused = refuse(glob);
    if (refused !== undefined) {
      c.report(item, refused);
      continue;
    }
    try {
      compileGlob(glob);
      out.push(glob);
    } catch (err) {
      if (!(err instanceof GlobError)) throw err;
      c.report(item, err.message);
    }
  }
  return c.problems.length > before ? undefined : out;
}
