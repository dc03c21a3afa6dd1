import type { Command } from 'commander';
import { ANOMALY_FIELDS, anomalyScopes, formatAnomalyValue, yamlAnomalyName, type AnomalyScope } from '../policy/anomaly.js';
import { RETENTION_RULES, retentionScopes, yamlRuleName, type RetentionScope } from '../policy/retention.js';
import type { Policy } from '../policy/types.js';
import { action } from './action.js';
import { globalOptions, resolvePolicy, selectGroups } from './context.js';

export function register(program: Command): void {
  const policy = program.command('policy').description('inspect the policy');
  policy
    .command('show')
    .description('print the effective retention and anomaly settings of every group, source and prefix, and where each value comes from')
    .option('--group <name>', 'only this group')
    .addHelpText(
      'after',
      `
Retention rules are inherited rule by rule: top-level retention → group → source → prefix
entry; a level overrides only the rules it sets. min_age_days is a compliance floor: a level
may raise it, never lower it. A scope with no rules keeps every run.
Anomaly settings are inherited field by field the same way, over built-in defaults; the text
output lists the fields set somewhere in the policy, --json every field (docs/anomalies.md).`,
    )
    .action(
      action(async ({ cmd, reporter }) => {
        const opts = cmd.opts<{ group?: string }>();
        const p = resolvePolicy(globalOptions(cmd));
        const groups = selectGroups(p, opts.group);
        const scopes = groups.flatMap((g) => retentionScopes(p, g.name));
        const anomalies = groups.flatMap((g) => anomalyScopes(p, g.name));
        reporter.answer(
          {
            policy: p.file,
            timezone: p.timezone,
            scopes: scopes.map((s, i) => ({ ...scopeJson(s), ...inventoryJson(p, s), anomaly: anomalyJson(anomalies[i]!) })),
          },
          [`policy ${p.file} (retention days cut in ${p.timezone})`, ...groups.flatMap((g) => groupLines(p, g.name, scopes, anomalies))].join('\n'),
        );
      }),
    );
}

function scopeJson(s: RetentionScope): Record<string, unknown> {
  const rules: Record<string, { value: number | string; from: string }> = {};
  for (const rule of RETENTION_RULES) {
    const value = s.rules[rule];
    if (value !== undefined) rules[yamlRuleName(rule)] = { value, from: s.origins[rule]! };
  }
  return { group: s.group, bucket: s.bucket, prefix: s.prefix, rules };
}

/** The `inventory:` of the bucket source a scope belongs to (path sources have none). */
function inventoryOf(policy: Policy, scope: RetentionScope): string | undefined {
  const sources = policy.groups.find((g) => g.name === scope.group)?.sources ?? [];
  for (const source of sources) if (source.kind === 's3' && source.bucket === scope.bucket) return source.inventory;
  return undefined;
}

function inventoryJson(policy: Policy, scope: RetentionScope): { inventory?: string } {
  const inventory = inventoryOf(policy, scope);
  return inventory === undefined ? {} : { inventory };
}

/** Every anomaly field with its effective value (as YAML spells it) and the level it came from. */
function anomalyJson(s: AnomalyScope): Record<string, { value: boolean | number | string | string[] | null; from: string }> {
  return Object.fromEntries(ANOMALY_FIELDS.map((f) => [yamlAnomalyName(f), { value: s.settings[f], from: s.origins[f] }]));
}

/** Retention and anomaly scopes are built by the same walk of the policy: index i is the same scope in both. */
function groupLines(policy: Policy, group: string, scopes: readonly RetentionScope[], anomalies: readonly AnomalyScope[]): string[] {
  const lines = [`group ${group}`];
  scopes.forEach((s, i) => {
    if (s.group !== group) return;
    lines.push(`  ${s.prefix === '' ? `${s.bucket} (all keys)` : s.label}`);
    const inventory = inventoryOf(policy, s);
    if (inventory !== undefined) lines.push(`    listed from the newest S3 Inventory report at ${inventory}`);
    const set = RETENTION_RULES.filter((r) => s.rules[r] !== undefined);
    if (set.length === 0) lines.push('    no retention rules: every run is kept');
    for (const rule of set) lines.push(`    ${yamlRuleName(rule).padEnd(14)} ${String(s.rules[rule]).padEnd(6)} from ${s.origins[rule]}`);
    lines.push(...anomalyLines(anomalies[i]!));
  });
  return lines;
}

function anomalyLines(a: AnomalyScope): string[] {
  if (!a.settings.enabled) return [`    anomaly detection off (enabled: false from ${a.origins.enabled})`];
  const set = ANOMALY_FIELDS.filter((f) => a.origins[f] !== 'default');
  if (set.length === 0) return ['    anomaly detection on, default thresholds'];
  return [
    '    anomaly detection on; set in the policy (other fields default):',
    ...set.map((f) => `      ${yamlAnomalyName(f).padEnd(22)} ${formatAnomalyValue(f, a.settings).padEnd(6)} from ${a.origins[f]}`),
  ];
}
