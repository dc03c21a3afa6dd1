/**
 * The validated, fully defaulted policy. YAML keys are snake_case; these types are camelCase.
 * Every value here has already passed validation, and `loadPolicy`/`parsePolicy` deep-freeze
 * the result, so consumers never re-check or mutate it.
 */
import type { AnomalyLevel } from './anomaly.js';
import type { CredentialsSpec } from '../storage/credentials.js';
import type { PriceTable } from './pricing.js';
import type { ContinuousLevel } from './continuous.js';
import type { EventsSpec } from './schema-continuous.js';

export interface Policy {
  version: 1;
  /** Absolute path of the file it came from ('<inline>' for strings). */
  file: string;
  repository: RepositoryPolicy;
  /** Defaults for S3 sources: endpoint/region when not on AWS (e.g. a local S3-compatible server). */
  s3: { endpoint?: string; region?: string };
  groups: Group[];
  concurrency: { list: number; transfer: number };
  /** Top-level `retention`: defaults that groups, sources and prefixes inherit rule by rule. */
  retention?: Retention;
  /** Top-level `anomaly`: settings that groups, sources and prefixes inherit field by field (anomaly.ts). */
  anomaly?: AnomalyLevel;
  /** Top-level `continuous`: watch's batching thresholds, inherited field by field (continuous.ts). */
  continuous?: ContinuousLevel;
  /** IANA time zone in which retention buckets (hours, days, weeks, ...) are cut; default UTC. */
  timezone: string;
  /** The `pricing:` section with defaults filled in; absent when the policy has none (use DEFAULT_PRICES). */
  pricing?: PriceTable;
  /** `notify:`: webhooks and pings told about runs and drills (src/commands/notify.ts). */
  notify?: NotifyPolicy;
  /** `drill:`: the restore-drill schedule `watch` runs (docs/drill.md). */
  drill?: DrillSchedule;
}

/** What a webhook can be told about (`events:` of a webhook; all of them by default). */
export const NOTIFY_EVENTS = ['start', 'success', 'partial', 'failure', 'anomaly', 'drill'] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** A webhook or ping URL: given in the policy, or read from an environment variable or a file when used. */
export interface NotifyTarget {
  url?: string;
  urlEnv?: string;
  /** Absolute path. */
  urlFile?: string;
  /** Webhooks only: the events it gets; absent means all. */
  events?: NotifyEvent[];
}

export interface NotifyPolicy {
  webhooks: NotifyTarget[];
  /** Healthchecks-style: `<url>/start` when a run starts, `<url>` on success, `<url>/fail` otherwise. */
  pings: NotifyTarget[];
}

export interface DrillSchedule {
  everyMs: number;
  sample: number;
  to?: string;
  /** Absolute path. */
  toDir?: string;
  /** Groups to drill (default: every group of the policy). */
  groups?: string[];
}

export interface RepositoryPolicy {
  /**
   * Normalized: `s3://bucket` or `s3://bucket/prefix` (no trailing slash), or an absolute
   * `file:///dir` URL as produced by `pathToFileURL` (read it back with `fileURLToPath`).
   * Relative `file://./dir` URLs in the YAML are resolved against the policy file's directory.
   */
  url: string;
  /** http(s) URL of an S3-compatible server (s3:// repositories only). */
  endpoint?: string;
  region?: string;
  /** Name of the environment variable holding the password; defaults to LAKEGUARD_PASSWORD when encrypted and no other source is set. */
  passwordEnv?: string;
  /** Absolute path (resolved against the policy file's directory). */
  passwordFile?: string;
  passwordCommand?: string;
  encryption: Encryption;
  /** YAML `sse_kms_key_id`: passed through on every PUT (s3:// repositories only). */
  sseKmsKeyId?: string;
  /** YAML `storage_class`: the S3 storage class of packs (s3:// only); unset means STANDARD. */
  storageClass?: PackStorageClass;
  /**
   * YAML `encryption_kms_key_id`: at `init`, wrap every password with this KMS key too
   * (docs/keys.md, "KMS"). Opening uses the key recorded in the repository's config.
   */
  encryptionKmsKeyId?: string;
  /** YAML `pack_size`, in bytes (1 MiB..1 GiB). */
  packSize?: number;
  /** YAML `compression_level`, zstd 1..19. */
  compressionLevel?: number;
  /** YAML `credentials`: the identity that reads and writes the repository (s3:// only). */
  credentials?: CredentialsPolicy;
}

/** YAML `credentials:` of a bucket source or the repository (the shape is storage's: credentials.ts). */
export type CredentialsPolicy = CredentialsSpec;

export const ENCRYPTIONS = ['aes-256-gcm', 'none'] as const;
export type Encryption = (typeof ENCRYPTIONS)[number];
export function isEncryption(value: unknown): value is Encryption {
  return (ENCRYPTIONS as readonly unknown[]).includes(value);
}

/**
 * The S3 storage classes packs may be written in. GLACIER and DEEP_ARCHIVE are archive
 * classes: their packs must be thawed (RestoreObject) before a restore can read them.
 */
export const PACK_STORAGE_CLASSES = ['STANDARD', 'STANDARD_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'] as const;
export type PackStorageClass = (typeof PACK_STORAGE_CLASSES)[number];
export function isPackStorageClass(value: unknown): value is PackStorageClass {
  return (PACK_STORAGE_CLASSES as readonly unknown[]).includes(value);
}

export interface Group {
  name: string;
  sources: Source[];
  retention?: Retention;
  anomaly?: AnomalyLevel;
  continuous?: ContinuousLevel;
}

/** Retention set on a source (`sources[].retention`) and on single prefixes (`prefixes: [{prefix, retention}]`). */
export interface SourceRetention {
  retention?: Retention;
  /** Prefix → retention set on that prefix entry. */
  prefixRetention?: Record<string, Retention>;
  /** `anomaly` set on the source (`sources[].anomaly`). */
  anomaly?: AnomalyLevel;
  /** Prefix → anomaly settings set on that prefix entry. */
  prefixAnomaly?: Record<string, AnomalyLevel>;
  /** `continuous` set on the source (watch's thresholds, docs/watch.md). */
  continuous?: ContinuousLevel;
}

/**
 * Where data comes from. `prefixes` defaults to `['']` (everything); `exclude` holds the raw
 * globs (compile them with `compileExcludes`). For S3 sources, `endpoint`/`region` are already
 * filled from the policy-level `s3` defaults when the source does not set its own.
 */
export type Source = S3Source | PathSource;
export interface S3Source extends SourceRetention {
  kind: 's3';
  bucket: string;
  prefixes: string[];
  exclude: string[];
  endpoint?: string;
  region?: string;
  /**
   * YAML `inventory`: `s3://bucket/prefix/` (one trailing slash), where the bucket's S3 Inventory
   * reports are delivered; backups list from the newest report instead of LIST (docs/scale-out.md).
   */
  inventory?: string;
  /** YAML `credentials`: the identity that reads this bucket (and its inventory). */
  credentials?: CredentialsPolicy;
  /** YAML `events`: where `lakeguard watch` hears of this bucket's changes (docs/watch.md). */
  events?: EventsSpec;
}
/** A local directory (absolute path), used by the demo and tests. */
export interface PathSource extends SourceRetention {
  kind: 'path';
  path: string;
  /**
   * YAML `name`: the name its files are catalogued (and restored) under, in place of the
   * directory's base name; needed when two path sources share a base name.
   */
  name?: string;
  prefixes: string[];
  exclude: string[];
}

/**
 * Validated now, applied by the retention feature. An unset rule differs from 0: unset means
 * "this rule does not apply", 0 means "this rule keeps nothing".
 */
export interface Retention {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  /** Duration such as `30d`, `12h`, `2w`, `6m` (months, as in restic) or `1y6m`. */
  keepWithin?: string;
  minAgeDays?: number;
}

/** One validation problem, located in the YAML source (see yaml-check.ts). */
export type { YamlProblem as Problem } from './yaml-check.js';

export const POLICY_DEFAULTS = {
  encryption: 'aes-256-gcm',
  passwordEnv: 'LAKEGUARD_PASSWORD',
  concurrency: { list: 16, transfer: 32 },
} as const;

/** The `file` of a policy that was not read from a file. */
export const INLINE_POLICY_FILE = '<inline>';
