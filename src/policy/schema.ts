/**
 * The lakeguard policy schema, top level: which keys exist where (and where a misplaced one
 * belongs), the keys that must never be in a policy (secrets), and the `version`, `repository`,
 * `s3`, `concurrency`, `retention`, `anomaly` (schema-anomaly.ts), `continuous` (schema-continuous.ts), `timezone` and `pricing` sections. The `groups` section is in
 * schema-groups.ts, single values in values.ts; walking the YAML is yaml-check.ts's job.
 */
import { isScalar } from 'yaml';
import { checkPricing } from './pricing.js';
import { checkCredentials } from './schema-credentials.js';
import { checkDrillSchedule, checkNotify } from './schema-operations.js';
import { ANOMALY_KEYS, checkAnomaly } from './schema-anomaly.js';
import { CONTINUOUS_KEYS, checkContinuous } from './schema-continuous.js';
import { checkGroups, checkRetention, floorOf, RETENTION_KEYS, type Context } from './schema-groups.js';
import { POLICY_DEFAULTS, type Policy, type RepositoryPolicy } from './types.js';
import { checkEncryption, checkEndpoint, checkEnvName, checkLocalPath, checkPackSize, checkPackStorageClass, checkRegion, checkTimeZone, normalizeRepositoryUrl } from './values.js';
import { describe, read, snakeCase, withoutUndefined, type Checker, type Field, type YamlCheckOptions } from './yaml-check.js';

const ROOT_KEYS = ['version', 'repository', 's3', 'groups', 'concurrency', 'retention', 'anomaly', 'continuous', 'timezone', 'pricing', 'notify', 'drill'] as const;
const REPOSITORY_KEYS = [
  'url',
  'endpoint',
  'region',
  'password_env',
  'password_file',
  'password_command',
  'encryption',
  'sse_kms_key_id',
  'storage_class',
  'encryption_kms_key_id',
  'pack_size',
  'compression_level',
  'credentials',
] as const;
const S3_KEYS = ['endpoint', 'region'] as const;
const CONCURRENCY_KEYS = ['list', 'transfer'] as const;
const PASSWORD_KEYS = ['password_env', 'password_file', 'password_command'] as const;

/** Where a key that has only one home goes, for keys written at the wrong level. */
const KEY_HOMES = new Map<string, string>([
  ...RETENTION_KEYS.map((k) => [k, 'groups[].retention'] as const),
  ...ANOMALY_KEYS.filter((k) => k !== 'deleted' && k !== 'added').map((k) => [k, 'anomaly'] as const),
  ...CONCURRENCY_KEYS.map((k) => [k, 'concurrency'] as const),
  ...CONTINUOUS_KEYS.map((k) => [k, 'continuous'] as const),
  ...REPOSITORY_KEYS.filter((k) => k !== 'endpoint' && k !== 'region' && k !== 'credentials').map((k) => [k, 'repository'] as const),
  ...(['bucket', 'path', 'prefixes', 'exclude', 'events'] as const).map((k) => [k, 'groups[].sources[]'] as const),
  ...(['name', 'sources'] as const).map((k) => [k, 'groups[]'] as const),
]);

const MAX_CONCURRENCY = 1024;

/** Names people carry over from kopia/restic or from the TypeScript types. */
const KEY_ALIASES: Record<string, string> = {
  keep_latest: 'keep_last',
  keep_annual: 'keep_yearly',
  keep_within_duration: 'keep_within',
  prefix: 'prefixes',
  excludes: 'exclude',
  buckets: 'bucket',
};

/** How the checker treats the keys of a policy. */
export const POLICY_YAML: YamlCheckOptions = {
  documentName: 'policy',
  // Secret-looking keys are reported once, by checkPolicy's scan, wherever they are.
  skipKey: (key) => secretKind(key) !== undefined,
  keyAliases: KEY_ALIASES,
  keyHomes: KEY_HOMES,
};

// ---- secrets -------------------------------------------------------------------------------

type SecretKind = 'aws' | 'password' | 'generic';

/** The keys that name where a secret comes from, which are exactly what we want people to use. */
const SECRET_SOURCES = new Set(['password_env', 'password_file', 'password_command', 'credentials', 'credential_process']);

function secretKind(key: string): SecretKind | undefined {
  const k = snakeCase(key);
  if (SECRET_SOURCES.has(k)) return undefined;
  if (/(^|_)(access_key|access_key_id|secret_key|secret_access_key|session_token|security_token|credentials?)(_|$)/.test(k)) return 'aws';
  if (/(^|_)(password|passwd|pwd|passphrase|master_key|encryption_key)(_|$)/.test(k)) return 'password';
  if (/(^|_)(secrets?|tokens?|api_key|private_key)(_|$)/.test(k)) return 'generic';
  return undefined;
}

const SECRET_MESSAGES: Record<SecretKind, string> = {
  aws:
    'secrets do not belong in the policy; remove this key: S3 credentials come from the AWS credential chain ' +
    '(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE with ~/.aws/credentials, or an instance/task role), ' +
    'or from a `credentials:` section naming a profile, role_arn or credential_process (docs/permissions.md)',
  password:
    'secrets do not belong in the policy; remove this key and give the repository password with ' +
    'password_env (an environment variable name, default LAKEGUARD_PASSWORD), password_file or password_command',
  generic:
    'secrets do not belong in the policy; remove this key: the repository password comes from ' +
    'password_env, password_file or password_command, S3 credentials from the AWS credential chain or `credentials:`',
};

function secretMessage(key: string): string | undefined {
  const kind = secretKind(key);
  return kind === undefined ? undefined : SECRET_MESSAGES[kind];
}

// ---- sections ------------------------------------------------------------------------------

/**
 * Checks a parsed policy (`contents` is its root node) and builds the Policy, or reports every
 * problem to `c` and returns undefined. Secret-looking keys are reported first, anywhere in the
 * tree, and their values never walked.
 */
export function checkPolicy(c: Checker, contents: unknown, ctx: Context): Policy | undefined {
  c.scanKeys(contents, '', secretMessage);
  if (contents === null || contents === undefined) {
    c.reportAt(0, '', 'the policy is empty; expected a map with version, repository and groups');
    return undefined;
  }
  const root = c.field(contents, '', 0);
  const m = root && c.map(root, ROOT_KEYS, 'a map with version, repository and groups');
  if (root === undefined || m === undefined) return undefined;

  const version = m.get('version');
  if (version === undefined) c.missing(root, 'version', '"version: 1"');
  else checkVersion(c, version);

  const repoField = m.get('repository');
  if (repoField === undefined) c.missing(root, 'repository', '"repository: { url: s3://backup-bucket/lakeguard }"');
  const repository = repoField && checkRepository(c, repoField, ctx);

  const s3Field = m.get('s3');
  const s3 = s3Field === undefined ? {} : checkS3Defaults(c, s3Field);

  const groupsField = m.get('groups');
  if (groupsField === undefined) c.missing(root, 'groups', 'a list like "groups: [{ name: lake, sources: [{ bucket: raw-events }] }]"');
  // Groups are checked even when `s3` is invalid, so that their problems are reported too.
  const globalRetention = m.get('retention');
  const inherited = globalRetention === undefined ? undefined : floorOf(c, globalRetention);
  if (repository !== undefined) ctx.repository = { url: repository.url, endpoint: repository.endpoint };
  const groups = groupsField && checkGroups(c, groupsField, ctx, s3 ?? {}, inherited);

  const concurrencyField = m.get('concurrency');
  const concurrency = concurrencyField === undefined ? { ...POLICY_DEFAULTS.concurrency } : checkConcurrency(c, concurrencyField);

  const retention = read(m, 'retention', (x) => checkRetention(c, x, undefined));
  const anomaly = read(m, 'anomaly', (x) => checkAnomaly(c, x));
  const continuous = read(m, 'continuous', (x) => checkContinuous(c, x));
  const timezone = read(m, 'timezone', (x) => checkTimeZone(c, x)) ?? 'UTC';
  // Optional price table for `lakeguard cost` (src/policy/pricing.ts).
  const pricing = read(m, 'pricing', (x) => checkPricing(c, x, repository?.storageClass));
  const notify = read(m, 'notify', (x) => checkNotify(c, x, ctx));
  const drill = read(m, 'drill', (x) => checkDrillSchedule(c, x, ctx));

  if (repository === undefined || s3 === undefined || groups === undefined || concurrency === undefined) return undefined;
  return withoutUndefined({ version: 1 as const, file: ctx.file, repository, s3, groups, concurrency, retention, anomaly, continuous, timezone, pricing, notify, drill });
}

function checkVersion(c: Checker, f: Field): void {
  const value = isScalar(f.node) ? f.node.value : undefined;
  if (value === 1) return;
  if (typeof value === 'number') c.report(f, `unsupported policy version ${value}; this lakeguard reads version 1`);
  else c.report(f, `expected 1, got ${describe(f.node)}`);
}

function checkRepository(c: Checker, f: Field, ctx: Context): RepositoryPolicy | undefined {
  const m = c.map(f, REPOSITORY_KEYS, 'a map with url and optional endpoint, region, password_env, encryption, ...');
  if (m === undefined) return undefined;
  const before = c.problems.length;

  let url: string | undefined;
  let kind: 's3' | 'file' | undefined;
  const urlField = m.get('url');
  if (urlField === undefined) {
    c.missing(f, 'url', 'url: s3://backup-bucket/lakeguard or url: file:///var/backups/lake');
  } else {
    const raw = c.string(urlField, 'an s3:// or file:// URL');
    const parsed = raw === undefined ? undefined : normalizeRepositoryUrl(raw, ctx.baseDir);
    if (parsed !== undefined && 'error' in parsed) c.report(urlField, parsed.error);
    else if (parsed !== undefined) ({ url, kind } = parsed);
  }

  const endpoint = read(m, 'endpoint', (x) => checkEndpoint(c, x));
  const region = read(m, 'region', (x) => checkRegion(c, x));
  const sseKmsKeyId = read(m, 'sse_kms_key_id', (x) => c.string(x, 'a KMS key id, ARN or alias'));
  const credentials = read(m, 'credentials', (x) => checkCredentials(c, x));
  const storageClass = read(m, 'storage_class', (x) => checkPackStorageClass(c, x));
  const encryptionKmsKeyId = read(m, 'encryption_kms_key_id', (x) => c.string(x, 'a KMS key id, ARN or alias (arn:aws:kms:<region>:<account>:key/<id>)'));
  if (kind === 'file') {
    for (const key of ['endpoint', 'region', 'sse_kms_key_id', 'credentials', 'storage_class'] as const) {
      const x = m.get(key);
      if (x !== undefined) c.report(x, 'only applies to s3:// repositories (repository.url is a file:// URL); remove it');
    }
  }

  const encryptionField = m.get('encryption');
  const encryption = encryptionField === undefined ? POLICY_DEFAULTS.encryption : checkEncryption(c, encryptionField);
  const passwordEnv = read(m, 'password_env', (x) => checkEnvName(c, x));
  const passwordFile = read(m, 'password_file', (x) => checkLocalPath(c, x, ctx, 'a file path'));
  const passwordCommand = read(m, 'password_command', (x) => c.string(x, 'a command line', { secret: true }));
  const passwordKeys = PASSWORD_KEYS.filter((k) => m.has(k));
  passwordKeys.slice(1).forEach((k) => {
    c.report(m.get(k)!, `set only one of password_env, password_file and password_command (${passwordKeys[0]} is set too)`);
  });
  if (encryption === 'none') {
    for (const k of [...passwordKeys, ...(m.has('encryption_kms_key_id') ? (['encryption_kms_key_id'] as const) : [])]) {
      c.report(m.get(k)!, 'has no effect with encryption: none; remove it, or remove "encryption: none" to encrypt the repository');
    }
  }

  const packSize = read(m, 'pack_size', (x) => checkPackSize(c, x));
  const compressionLevel = read(m, 'compression_level', (x) => c.integer(x, 1, 19));

  if (c.problems.length > before || url === undefined || encryption === undefined) return undefined;
  const defaultEnv = encryption !== 'none' && passwordKeys.length === 0 ? POLICY_DEFAULTS.passwordEnv : undefined;
  return withoutUndefined({
    url,
    endpoint,
    region,
    passwordEnv: passwordEnv ?? defaultEnv,
    passwordFile,
    passwordCommand,
    encryption,
    sseKmsKeyId,
    storageClass,
    encryptionKmsKeyId,
    packSize,
    compressionLevel,
    credentials,
  });
}

function checkS3Defaults(c: Checker, f: Field): Policy['s3'] | undefined {
  const m = c.map(f, S3_KEYS, 'a map with endpoint and/or region');
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const endpoint = read(m, 'endpoint', (x) => checkEndpoint(c, x));
  const region = read(m, 'region', (x) => checkRegion(c, x));
  return c.problems.length > before ? undefined : withoutUndefined({ endpoint, region });
}

function checkConcurrency(c: Checker, f: Field): Policy['concurrency'] | undefined {
  const m = c.map(f, CONCURRENCY_KEYS, 'a map with list and/or transfer');
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const list = read(m, 'list', (x) => c.integer(x, 1, MAX_CONCURRENCY)) ?? POLICY_DEFAULTS.concurrency.list;
  const transfer = read(m, 'transfer', (x) => c.integer(x, 1, MAX_CONCURRENCY)) ?? POLICY_DEFAULTS.concurrency.transfer;
  return c.problems.length > before ? undefined : { list, transfer };
}
