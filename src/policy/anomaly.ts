/**
 * Effective anomaly settings (docs/anomalies.md): the `anomaly:` maps of the policy are
 * inherited field by field, exactly like `retention`: top level → group → source → prefix
 * entry, each level overriding only the fields it sets, over the built-in defaults below.
 */
import { basename } from 'node:path';
import type { Group, Policy, Source } from './types.js';

/** A share threshold as a fraction (0.25 = `25%`), or null when the rule is `off`. */
export type ShareThreshold = number | null;
/** A count threshold (the rule fires at this many objects), or null when the rule is `off`. */
export type CountThreshold = number | null;

/** Every anomaly setting, resolved (no field unset). YAML names are the snake_case spellings. */
export interface AnomalySettings {
  /** Whether the run watches this scope at all: `enabled: false` reads nothing extra and flags nothing. */
  enabled: boolean;
  /** Share of the partition's live keys overwritten with data that is not verified valid. */
  overwritten: ShareThreshold;
  /** Share of the partition's live keys deleted (compactions excepted). */
  deleted: ShareThreshold;
  /** New keys, as a share of the partition's live keys before the run (may exceed 100 %). */
  added: ShareThreshold;
  /** Share of the partition's live keys rewritten with identical content (same ETag and size). */
  identicalRewrites: ShareThreshold;
  /** Share of the partition's new and changed objects whose bytes do not match their extension's format. */
  brokenFormats: ShareThreshold;
  /** Share of the partition's new and changed objects that stopped compressing. */
  incompressible: ShareThreshold;
  /** broken_formats and incompressible fire only from this many objects on. */
  minFlaggedObjects: number;
  /** New keys named like ransom notes in one partition that make the run suspect. */
  ransomNotes: CountThreshold;
  /** Extension swaps in one partition that make the run suspect. */
  extensionSwaps: CountThreshold;
  /** Partitions with fewer live keys before the run are judged by counts only, never by shares. */
  minPartitionObjects: number;
  /** How many earlier clean (or acknowledged) runs of a partition a share is compared with. */
  historyRuns: number;
  /** A share fires only above this many times the largest share of the partition's history. */
  historyFactor: number;
  /** Globs (case-insensitive, on the key's base name) added to the built-in ransom-note names. */
  ransomNotePatterns: string[];
}

/** An `anomaly:` map as written at one level: only the fields it sets. */
export type AnomalyLevel = Partial<AnomalySettings>;

export const ANOMALY_FIELDS = [
  'enabled',
  'overwritten',
  'deleted',
  'added',
  'identicalRewrites',
  'brokenFormats',
  'incompressible',
  'minFlaggedObjects',
  'ransomNotes',
  'extensionSwaps',
  'minPartitionObjects',
  'historyRuns',
  'historyFactor',
  'ransomNotePatterns',
] as const satisfies readonly (keyof AnomalySettings)[];
export type AnomalyField = (typeof ANOMALY_FIELDS)[number];

/**
 * Defaults chosen so that an ordinary day does not fire (a few percent of partitions rewritten
 * with valid data, new partitions, a daily compaction) and the incident does (a third
 * of the Parquet files overwritten with random bytes, a tenth deleted, ransom notes). Each one's
 * reasoning is in docs/anomalies.md.
 */
export const ANOMALY_DEFAULTS: Readonly<AnomalySettings> = Object.freeze({
  enabled: true,
  overwritten: 0.25,
  deleted: 0.05,
  added: 2,
  identicalRewrites: 0.5,
  brokenFormats: 0.05,
  incompressible: 0.2,
  minFlaggedObjects: 3,
  ransomNotes: 1,
  extensionSwaps: 3,
  minPartitionObjects: 20,
  historyRuns: 10,
  historyFactor: 2,
  ransomNotePatterns: Object.freeze([]) as unknown as string[],
});

/** YAML spelling of a field, for messages and `policy show`. */
export function yamlAnomalyName(field: AnomalyField): string {
  return field.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);
}

/** The settings of one policy scope (a source's prefix), and the level each field came from. */
export interface AnomalyScope {
  group: string;
  /** Catalog name of the source: the bucket, or the directory name of a path source. */
  bucket: string;
  prefix: string;
  settings: AnomalySettings;
  /** For each field: `default`, `policy`, `group G`, `source B` or `prefix B/P`. */
  origins: Record<AnomalyField, string>;
}

function sourceBucket(source: Source): string {
  return source.kind === 's3' ? source.bucket : (source.name ?? basename(source.path));
}

function inherit(into: AnomalyScope, level: AnomalyLevel | undefined, origin: string): void {
  if (level === undefined) return;
  for (const field of ANOMALY_FIELDS) {
    if (level[field] === undefined) continue;
    (into.settings as unknown as Record<string, unknown>)[field] = level[field];
    into.origins[field] = origin;
  }
}

/**
 * The effective anomaly settings of one prefix of a source of a group. `source` may be
 * undefined (a source opened outside the policy, as tests do): then only the policy and group
 * levels apply.
 */
export function anomalyScope(policy: Policy, group: Group, source: Source | undefined, prefix: string, bucket = source === undefined ? '' : sourceBucket(source)): AnomalyScope {
  const origins = Object.fromEntries(ANOMALY_FIELDS.map((f) => [f, 'default'])) as Record<AnomalyField, string>;
  const scope: AnomalyScope = { group: group.name, bucket, prefix, settings: { ...ANOMALY_DEFAULTS }, origins };
  inherit(scope, policy.anomaly, 'policy');
  inherit(scope, group.anomaly, `group ${group.name}`);
  inherit(scope, source?.anomaly, `source ${bucket}`);
  inherit(scope, source?.prefixAnomaly?.[prefix], `prefix ${bucket}/${prefix}`);
  return scope;
}

/** The settings of `prefix` of the source catalogued as `bucket` in `group`. */
export function anomalyScopeOf(policy: Policy, group: Group, bucket: string, prefix: string): AnomalyScope {
  return anomalyScope(policy, group, group.sources.find((s) => sourceBucket(s) === bucket), prefix, bucket);
}

/** Every scope of every group (or of one group), with its effective settings and their origins. */
export function anomalyScopes(policy: Policy, group?: string): AnomalyScope[] {
  const scopes: AnomalyScope[] = [];
  for (const g of policy.groups) {
    if (group !== undefined && g.name !== group) continue;
    for (const source of g.sources) for (const prefix of source.prefixes) scopes.push(anomalyScope(policy, g, source, prefix));
  }
  return scopes;
}

/** How a setting reads in YAML: `25%`, `off`, `3`, `[a, b]`. */
export function formatAnomalyValue(field: AnomalyField, settings: AnomalySettings): string {
  const value = settings[field];
  if (value === null) return 'off';
  if (Array.isArray(value)) return value.length === 0 ? '[]' : `[${value.join(', ')}]`;
  if (SHARE_FIELDS.has(field) && typeof value === 'number') return `${formatPercent(value)}`;
  return String(value);
}

const SHARE_FIELDS = new Set<AnomalyField>(['overwritten', 'deleted', 'added', 'identicalRewrites', 'brokenFormats', 'incompressible']);

/** 0.25 → `25%`, 0.125 → `12.5%`. */
export function formatPercent(fraction: number): string {
  return `${Number((fraction * 100).toFixed(2))}%`;
}
