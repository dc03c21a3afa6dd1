import type { Command } from 'commander';
import { RETENTION_RULES, retentionScopes, yamlRuleName, type RetentionScope } from '../policy/retention.js';
import { action } from './action.js';
import { globalOptions, resolvePolicy, selectGroups } from './context.js';

export function register(program: Command): void {
  const policy = program.command('policy').description('inspect the policy');
  policy
    .command('show')
    .description('print the effective retention of every group, source and prefix, and where each value comes from')
    .option('--group <name>', 'only this group')
    .addHelpText(
      'after',
      `
Retention rules are inherited rule by rule: top-level retention → group → source → prefix
entry; a level overrides only the rules it sets. min_age_days is a compliance floor: a level
may raise it, never lower it. A scope with no rules keeps every run.`,
    )
    .action(
      action(async ({ cmd, reporter }) => {
        const opts = cmd.opts<{ group?: string }>();
        const p = resolvePolicy(globalOptions(cmd));
        const groups = selectGroups(p, opts.group);
        const scopes = groups.flatMap((g) => retentionScopes(p, g.name));
        reporter.summary(
          { policy: p.file, timezone: p.timezone, scopes: scopes.map(scopeJson) },
          [`policy ${p.file} (retention days cut in ${p.timezone})`, ...groups.flatMap((g) => groupLines(g.name, scopes))].join('\n'),
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

function groupLines(group: string, scopes: readonly RetentionScope[]): string[] {
  const lines = [`group ${group}`];
  for (const s of scopes.filter((x) => x.group === group)) {
    lines.push(`  ${s.prefix === '' ? `${s.bucket} (all keys)` : s.label}`);
    const set = RETENTION_RULES.filter((r) => s.rules[r] !== undefined);
    if (set.length === 0) lines.push('    no retention rules: every run is kept');
    for (const rule of set) lines.push(`    ${yamlRuleName(rule).padEnd(14)} ${String(s.rules[rule]).padEnd(6)} from ${s.origins[rule]}`);
  }
  return lines;
}
