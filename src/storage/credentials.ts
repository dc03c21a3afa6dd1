/**
 * Credentials per role: the provider a store signs its requests with, from a `credentials:`
 * section of the policy (a source, the repository) or a restore option. Each kind comes from
 * the AWS SDK's own providers, so profiles, role chaining and credential_process read the
 * shared config files exactly as the AWS CLI does; what this module adds is one cache that
 * refreshes temporary credentials before they expire, and errors that name the role.
 */
import { execFile } from 'node:child_process';
import type * as CredentialProviders from '@aws-sdk/credential-providers';
import { StorageError, UsageError } from '../errors.js';
import { requireCjs } from '../util/cjs.js';
import { profileEndpointSetting } from './s3-endpoint.js';
import type { Credentials } from './s3-sigv4.js';

/**
 * Where a store's AWS credentials come from: the policy's `credentials:` of a bucket source or
 * the repository, or a restore target's options. Absent: the default AWS credential chain. Exactly one
 * of `profile`, `roleArn`, `credentialProcess`, except that `profile` may go with `roleArn` as
 * the identity the role is assumed with.
 */
export interface CredentialsSpec {
  /** A profile of the shared AWS config/credentials files. */
  profile?: string;
  /** STS AssumeRole, refreshed before the session expires. */
  roleArn?: string;
  externalId?: string;
  sessionName?: string;
  /** 900..43200. */
  durationSeconds?: number;
  /** A command printing the credential_process JSON (Version 1) on stdout. */
  credentialProcess?: string;
}

/** What a role ARN looks like (AssumeRole's own check is the server's). */
export const ROLE_ARN = /^arn:[\w-]+:(iam|sts)::[\w-]*:role\/\S+$/;

/** Credentials with the time they stop working, when temporary. */
export interface ExpiringCredentials extends Credentials {
  expiration?: Date | undefined;
}

export type CredentialsProvider = () => Promise<ExpiringCredentials>;

/** Where a provider's temporary credentials come from when the store is not on AWS (its STS is at the S3 endpoint). */
export interface CredentialsContext {
  /** Custom S3 endpoint: the STS requests of `role_arn` go there too (Ceph RGW, MinIO serve both). */
  endpoint?: string;
  region?: string;
  /** What the credentials are for, in errors: `source bucket raw-events`, `the repository`. */
  label: string;
}

/** Refresh temporary credentials this long before they expire (requests in flight still sign in time). */
export const REFRESH_BEFORE_MS = 5 * 60_000;
/** AssumeRole sessions last one hour unless the policy says otherwise. */
const DEFAULT_SESSION_SECONDS = 3600;
/** A credential_process that hangs must not hang the backup. */
const PROCESS_TIMEOUT_MS = 60_000;

// Loaded on first use: a command that uses the default chain never pays for it.
let providers: typeof CredentialProviders | undefined;
function sdkProviders(): typeof CredentialProviders {
  return (providers ??= requireCjs('@aws-sdk/credential-providers') as typeof CredentialProviders);
}

/**
 * The provider for a `credentials:` section, or undefined for the default chain (the store's
 * transport then asks the SDK, as before). Nothing is fetched until the first request signs.
 */
export function credentialsProvider(spec: CredentialsSpec | undefined, ctx: CredentialsContext): CredentialsProvider | undefined {
  if (spec === undefined) return undefined;
  if (spec.credentialProcess !== undefined) return cached(() => runCredentialProcess(spec.credentialProcess!, ctx.label), ctx.label);
  if (spec.roleArn !== undefined) return cached(assumeRole(spec, ctx), ctx.label);
  if (spec.profile !== undefined) return cached(sdkProviders().fromIni({ profile: spec.profile }), ctx.label);
  return undefined;
}

/** The default AWS credential chain (environment, profile, instance or task role), cached. */
export function defaultChainProvider(label: string): CredentialsProvider {
  return cached(sdkProviders().fromNodeProviderChain(), label);
}

/** The profile whose shared-config settings (region, endpoint_url) the store's SDK client reads. */
export function settingsProfile(spec: CredentialsSpec | undefined): string | undefined {
  return spec?.profile;
}

function assumeRole(spec: CredentialsSpec, ctx: CredentialsContext): () => Promise<ExpiringCredentials> {
  const { fromTemporaryCredentials, fromIni, fromNodeProviderChain } = sdkProviders();
  return fromTemporaryCredentials({
    params: {
      RoleArn: spec.roleArn!,
      RoleSessionName: spec.sessionName ?? `lakeguard-${process.pid}`,
      DurationSeconds: spec.durationSeconds ?? DEFAULT_SESSION_SECONDS,
      ...(spec.externalId === undefined ? {} : { ExternalId: spec.externalId }),
    },
    // The identity the role is assumed with: the profile given alongside, else the default chain.
    masterCredentials: spec.profile === undefined ? fromNodeProviderChain() : fromIni({ profile: spec.profile }),
    clientConfig: {
      region: ctx.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      ...(ctx.endpoint === undefined ? {} : { endpoint: ctx.endpoint }),
      ...(spec.profile === undefined ? {} : { profile: spec.profile }),
    },
  });
}

/**
 * One fetch at a time, kept until REFRESH_BEFORE_MS before it expires (forever when it does
 * not). A failed fetch is not kept: the next request asks again. Errors become StorageErrors
 * naming what the credentials were for.
 */
export function cached(fetch: () => Promise<ExpiringCredentials>, label: string, now: () => number = Date.now): CredentialsProvider {
  let current: ExpiringCredentials | undefined;
  let pending: Promise<ExpiringCredentials> | undefined;
  return async () => {
    if (current !== undefined && (current.expiration === undefined || current.expiration.getTime() - REFRESH_BEFORE_MS > now())) return current;
    pending ??= fetch().then(
      (got) => {
        current = got;
        pending = undefined;
        return got;
      },
      (err: unknown) => {
        pending = undefined;
        throw credentialsError(err, label);
      },
    );
    return pending;
  };
}

function credentialsError(err: unknown, label: string): StorageError {
  if (err instanceof StorageError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StorageError('InvalidCredentials', `no AWS credentials for ${label}: ${message}`, {
    cause: err,
    hint: 'check the credentials section of the policy (profile, role_arn or credential_process) and docs/permissions.md',
  });
}

/**
 * Runs a credential_process command (through /bin/sh, so a command line works as written) and
 * reads its JSON: `{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken"?, "Expiration"?}`.
 * Its stderr goes to ours (it may prompt or explain); its stdout is never printed (it holds secrets).
 */
export function runCredentialProcess(command: string, label: string): Promise<ExpiringCredentials> {
  return new Promise((resolve, reject) => {
    const child = execFile('/bin/sh', ['-c', command], { timeout: PROCESS_TIMEOUT_MS, maxBuffer: 1024 * 1024, encoding: 'utf8' }, (err, stdout) => {
      if (err !== null) {
        const why = err.killed ? `timed out after ${PROCESS_TIMEOUT_MS / 1000} s` : `failed (${err.code === undefined ? err.message : `exit code ${String(err.code)}`})`;
        reject(new StorageError('InvalidCredentials', `the credential_process for ${label} ${why}`, { hint: 'run the command by hand to see why' }));
        return;
      }
      try {
        resolve(parseProcessOutput(stdout));
      } catch (parseErr) {
        reject(new StorageError('InvalidCredentials', `the credential_process for ${label} printed no usable credentials: ${(parseErr as Error).message}`, {
          hint: 'it must print {"Version": 1, "AccessKeyId": ..., "SecretAccessKey": ...} on stdout',
        }));
      }
    });
    child.stderr?.pipe(process.stderr);
  });
}

/** The credential_process JSON, checked; messages never repeat a value (they are secrets). */
export function parseProcessOutput(stdout: string): ExpiringCredentials {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new Error('not JSON');
  }
  if (typeof doc !== 'object' || doc === null) throw new Error('not a JSON object');
  const o = doc as Record<string, unknown>;
  if (o.Version !== 1) throw new Error('Version is not 1');
  if (typeof o.AccessKeyId !== 'string' || o.AccessKeyId === '') throw new Error('AccessKeyId is missing');
  if (typeof o.SecretAccessKey !== 'string' || o.SecretAccessKey === '') throw new Error('SecretAccessKey is missing');
  const out: ExpiringCredentials = { accessKeyId: o.AccessKeyId, secretAccessKey: o.SecretAccessKey };
  if (o.SessionToken !== undefined) {
    if (typeof o.SessionToken !== 'string') throw new Error('SessionToken is not a string');
    out.sessionToken = o.SessionToken;
  }
  if (o.Expiration !== undefined) {
    const at = typeof o.Expiration === 'string' ? new Date(o.Expiration) : new Date(NaN);
    if (Number.isNaN(at.getTime())) throw new Error('Expiration is not an ISO 8601 time');
    out.expiration = at;
  }
  return out;
}

/**
 * The S3Store options for a store with these credentials: the provider, and the profile its
 * SDK client reads settings from. Empty for the default chain.
 */
export function storeCredentials(spec: CredentialsSpec | undefined, ctx: CredentialsContext, env: NodeJS.ProcessEnv = process.env): { credentials?: CredentialsProvider; profile?: string } {
  const profile = settingsProfile(spec);
  const endpointKey = profile === undefined ? null : profileEndpointSetting(env, profile);
  if (endpointKey !== null) {
    throw new UsageError(`the AWS profile ${profile!} (credentials of ${ctx.label}) sets ${endpointKey}: a per-role profile gives credentials and region only`, {
      hint: 'set the endpoint in the policy (endpoint: on the source or repository, or s3.endpoint) and remove it from the profile',
    });
  }
  const credentials = credentialsProvider(spec, ctx);
  return { ...(credentials === undefined ? {} : { credentials }), ...(profile === undefined ? {} : { profile }) };
}
