import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { printable } from '../util/printable.js';
import type { Credentials } from './s3-sigv4.js';

// Whether the lean transport may serve a bucket, and where its requests go. The rule: the lean
// path is used only where it sends each request exactly where the SDK would; wherever a setting
// could make the SDK resolve the endpoint differently (and the lean resolver does not model it),
// the SDK transport serves the store. test/unit/s3-endpoint.test.ts checks a table of settings
// against the endpoint the SDK resolves.

/**
 * The one switch that turns the lean path off: `LAKEGUARD_S3_TRANSPORT=sdk` (docs/s3-requests.md).
 * `LAKEGUARD_S3_SDK_GET=1`, its name before the transports were split, still means the same.
 */
export function sdkTransportForced(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.LAKEGUARD_S3_TRANSPORT;
  // A misspelt value must not quietly keep the path it was set to turn off.
  if (value !== undefined && value !== '' && value !== 'sdk' && value !== 'lean') {
    throw new UsageError(`LAKEGUARD_S3_TRANSPORT=${printable(value)} is not a transport`, {
      hint: 'set it to `sdk` (every request through the AWS SDK) or `lean`, or unset it',
    });
  }
  return value === 'sdk' || env.LAKEGUARD_S3_SDK_GET === '1';
}

/** Where the lean transport sends a bucket's requests. */
export interface LeanEndpoint {
  /** `http(s)://host[:port]`; for virtual-hosted addressing it already names the bucket. */
  origin: string;
  pathStyle: boolean;
  region: string;
}

/** The SDK-relevant settings a lean endpoint depends on (the store's own, then the environment). */
export interface EndpointSettings {
  /** The store's explicit endpoint (policy `endpoint`), trailing '/' removed. */
  endpoint: string | undefined;
  bucket: string;
  pathStyle: boolean;
}

// Settings of a profile (in ~/.aws/config or ~/.aws/credentials) that change where the SDK sends
// a request, or could: the lean path leaves a store whose profile sets any of them to the SDK.
// (A profile's `s3 =` sub-settings, addressing_style or max_concurrent_requests, are the AWS
// CLI's: the JS SDK reads none of them, and the endpoint test checks it resolves alike.)
const PROFILE_ENDPOINT_KEYS = new Set(['endpoint_url', 'use_fips_endpoint', 'use_dualstack_endpoint', 'services', 'ignore_configured_endpoint_urls', 's3_use_arn_region', 's3_disable_multiregion_access_points']);

/**
 * Why the SDK must resolve this bucket's endpoint (a setting the lean resolver does not model),
 * or null when the lean resolver gives the SDK's answer once the region is known. Decided from
 * the store's options, the environment and the selected profile of the shared config files.
 */
export function sdkEndpointReason(s: EndpointSettings, env: NodeJS.ProcessEnv = process.env): string | null {
  if (sdkTransportForced(env)) return 'LAKEGUARD_S3_TRANSPORT=sdk';
  // FIPS and dual-stack: the SDK picks other host names (and refuses them with a custom endpoint).
  for (const name of ['AWS_USE_FIPS_ENDPOINT', 'AWS_USE_DUALSTACK_ENDPOINT']) {
    const v = env[name];
    if (v !== undefined && v !== '' && v !== 'false') return `${name}=${v}`;
  }
  for (const name of ['AWS_S3_US_EAST_1_REGIONAL_ENDPOINT', 'AWS_S3_USE_ARN_REGION', 'AWS_S3_DISABLE_MULTIREGION_ACCESS_POINTS']) {
    if (env[name]) return name;
  }
  if (s.endpoint !== undefined) {
    const url = URL.canParse(s.endpoint) ? new URL(s.endpoint) : null;
    if (url === null || !/^https?:$/.test(url.protocol) || url.pathname.replace(/\/+$/, '') !== '' || url.search !== '' || url.username !== '') return 'an endpoint with a path, query or user';
    if (!s.pathStyle) return 'virtual-hosted addressing on a custom endpoint';
  } else {
    if (s.pathStyle) return 'path-style addressing on AWS';
    if (env.AWS_ENDPOINT_URL || env.AWS_ENDPOINT_URL_S3) return 'AWS_ENDPOINT_URL';
    // Names with dots do not match the TLS certificate of virtual hosts; `--x-s3` and similar
    // suffixes name S3 Express directory buckets and access points, with endpoints of their own.
    if (!/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(s.bucket) || /--(x-s3|ol-s3|op-s3)$/.test(s.bucket) || s.bucket.startsWith('xn--')) return 'a bucket name only the SDK addresses';
  }
  const profileKey = profileEndpointSetting(env);
  return profileKey === null ? null : `${profileKey} in the shared AWS config`;
}

/**
 * The lean endpoint of a bucket once its region is known (sdkEndpointReason having said null),
 * or null for a region only the SDK resolves (FIPS or global pseudo-regions, anything unusual).
 */
export function leanEndpoint(s: EndpointSettings, region: string | undefined): LeanEndpoint | null {
  if (region === undefined || region === '' || region.includes('fips')) return null;
  // A custom endpoint takes any region name: it is only signed with.
  if (s.endpoint !== undefined) return { origin: new URL(s.endpoint).origin, pathStyle: true, region };
  if (!/^[a-z]{2}(-[a-z0-9]+)+-\d+$/.test(region)) return null;
  const suffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return { origin: `https://${s.bucket}.s3.${region}.${suffix}`, pathStyle: false, region };
}

/**
 * The first endpoint setting of a profile (default: the selected one, AWS_PROFILE, else
 * `default`) in the shared config and credentials files (the SDK merges both), or of a
 * `services` section; null when there is none. A file that exists but cannot be read counts as
 * one: in doubt, the SDK decides.
 */
export function profileEndpointSetting(env: NodeJS.ProcessEnv, profile = env.AWS_PROFILE || 'default'): string | null {
  const home = env.HOME || homedir();
  const files: [string, boolean][] = [
    [env.AWS_CONFIG_FILE || join(home, '.aws', 'config'), true],
    [env.AWS_SHARED_CREDENTIALS_FILE || join(home, '.aws', 'credentials'), false],
  ];
  for (const [path, isConfig] of files) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      return `${path} (unreadable)`;
    }
    const found = endpointKeyInProfile(text, profile, isConfig);
    if (found !== null) return found;
  }
  return null;
}

/**
 * Reads an INI file as the SDK does (sections `[name]`, `[profile name]` in the config file;
 * `key = value` lines, `#`/`;` comments; indented lines continue the key above) and returns
 * the first endpoint setting of `profile`, or `services` whenever any services section exists.
 */
export function endpointKeyInProfile(text: string, profile: string, isConfig: boolean): string | null {
  let inProfile = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)[#;].*$/, '').trimEnd();
    if (line.trim() === '') continue;
    const section = /^\s*\[([^\]]*)\]\s*$/.exec(line);
    if (section !== null) {
      const name = section[1]!.trim();
      if (isConfig && /^services(\s|$)/.test(name)) return 'a [services] section';
      const bare = isConfig && name.startsWith('profile ') ? name.slice('profile '.length).trim() : name;
      inProfile = bare === profile;
      continue;
    }
    if (!inProfile || /^\s/.test(line)) continue;
    const key = line.split('=', 1)[0]!.trim().toLowerCase();
    if (PROFILE_ENDPOINT_KEYS.has(key)) return key;
  }
  return null;
}

/**
 * Credentials the lean path can use without the SDK: the store's own (static or a provider), or
 * those the SDK's default chain takes first, from the environment (it skips them when AWS_PROFILE
 * names a profile). Null: ask the SDK's chain.
 */
export function leanCredentials(given: Credentials | (() => Promise<Credentials>) | undefined, env: NodeJS.ProcessEnv = process.env): (() => Promise<Credentials>) | null {
  if (typeof given === 'function') return () => given();
  if (given !== undefined) return () => Promise.resolve(given);
  if (env.AWS_PROFILE || !env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) return null;
  const fromEnv: Credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
  if (env.AWS_SESSION_TOKEN) fromEnv.sessionToken = env.AWS_SESSION_TOKEN;
  return () => Promise.resolve(fromEnv);
}
