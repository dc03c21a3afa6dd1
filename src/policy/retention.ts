/**
 * Effective retention: rules are inherited rule by rule, top-level `retention` → group →
 * source → prefix entry, each level overriding only the rules it sets. `min_age_days` is a
 * compliance floor: the loader already refuses a level that lowers it.
 */
import { basename } from 'node:path';
import type { Policy, Retention, Source } from './types.js';

export const RETENTION_RULES = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly', 'keepWithin', 'minAgeDays'] as const;
export type RetentionRule = (typeof RETENTION_RULES)[number];

/** YAML spelling of a rule, for messages and `policy show`. */
export function yamlRuleName(rule: RetentionRule): string {
  return rule.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);
}

/** One place in a group whose keys share rules: a source's prefix ('' = the whole source). */
export interface RetentionScope {
  group: string;
  /** Catalog name of the source: the bucket, or the directory name of a path source. */
  bucket: string;
  prefix: string;
  /** Human label, e.g. `raw-events/events/`. */
  label: string;
  rules: Retention;
  /** For each rule in `rules`: the level that set it, e.g. `policy`, `group finance`, `source raw-events`. */
  origins: Partial<Record<RetentionRule, string>>;
}

export function hasRules(rules: Retention): boolean {
  return RETENTION_RULES.some((r) => rules[r] !== undefined);
}

function sourceBucket(source: Source): string {
  return source.kind === 's3' ? source.bucket : basename(source.path);
}

function inherit(into: RetentionScope, level: Retention | undefined, origin: string): void {
  if (level === undefined) return;
  for (const rule of RETENTION_RULES) {
    const value = level[rule];
    if (value === undefined) continue;
    (into.rules as Record<string, unknown>)[rule] = value;
    into.origins[rule] = origin;
  }
}

/** Every scope of every group (or of one group), with its effective rules and their origins. */
export function retentionScopes(policy: Policy, group?: string): RetentionScope[] {
  const scopes: RetentionScope[] = [];
  for (const g of policy.groups) {
    if (group !== undefined && g.name !== group) continue;
    for (const source of g.sources) {
      const bucket = sourceBucket(source);
      for (const prefix of source.prefixes) {
        const scope: RetentionScope = { group: g.name, bucket, prefix, label: `${bucket}/${prefix}`, rules: {}, origins: {} };
        inherit(scope, policy.retention, 'policy');
        inherit(scope, g.retention, `group ${g.name}`);
        inherit(scope, source.retention, `source ${bucket}`);
        inherit(scope, source.prefixRetention?.[prefix], `prefix ${bucket}/${prefix}`);
        scopes.push(scope);
      }
    }
  }
  return scopes;
}

/**
 * The scope that governs a key: the one with the longest matching prefix in its bucket
 * (`events/2026/` wins over `events/` and over the whole bucket). Undefined when no scope of
 * the policy covers it (a source since removed from the policy).
 */
export function scopeOf(scopes: readonly RetentionScope[], bucket: string, key: string): RetentionScope | undefined {
  let best: RetentionScope | undefined;
  for (const s of scopes) {
    if (s.bucket !== bucket || !key.startsWith(s.prefix)) continue;
    if (best === undefined || s.prefix.length > best.prefix.length) best = s;
  }
  return best;
}
