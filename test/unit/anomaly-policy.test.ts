import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ANOMALY_DEFAULTS, anomalyScopes } from '../../src/policy/anomaly.js';
import { parsePolicy, PolicyError } from '../../src/policy/index.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';

const text = `version: 1
anomaly: { deleted: 10%, history_runs: 5 }
repository:
  url: s3://backup-bucket/lakeguard
groups:
  - name: finance
    anomaly: { overwritten: 40%, ransom_note_patterns: ["*_RECOVERY_*.txt"] }
    sources:
      - bucket: raw-events
        anomaly: { deleted: 20%, added: off }
        prefixes:
          - events/
          - prefix: scratch/
            anomaly: { enabled: false }
      - bucket: other
`;

describe('anomaly settings', () => {
  it('inherit field by field: defaults, policy, group, source, prefix, naming where each came from', () => {
    const scopes = anomalyScopes(parsePolicy(text, 'policy.yaml'));
    const [events, scratch, other] = scopes;
    expect(events!.settings).toEqual({ ...ANOMALY_DEFAULTS, deleted: 0.2, added: null, overwritten: 0.4, historyRuns: 5, ransomNotePatterns: ['*_RECOVERY_*.txt'] });
    expect(events!.origins.deleted).toBe('source raw-events');
    expect(events!.origins.historyRuns).toBe('policy');
    expect(events!.origins.overwritten).toBe('group finance');
    expect(events!.origins.brokenFormats).toBe('default');
    expect(scratch!.settings.enabled).toBe(false);
    expect(scratch!.origins.enabled).toBe('prefix raw-events/scratch/');
    expect(other!.settings.deleted).toBe(0.1);
    expect(other!.origins.deleted).toBe('policy');
  });

  it('refuses bad values with file:line and what is allowed', () => {
    const bad = text
      .replace('deleted: 10%, history_runs: 5', 'deleted: 0.1, history_runs: -1, colour: red')
      .replace('overwritten: 40%', 'overwritten: 140%, history_factor: 0.5')
      .replace('added: off', 'ransom_notes: 0, ransom_note_patterns: ["a/b*"]')
      .replace('enabled: false', 'enabled: maybe');
    let message = '';
    try {
      parsePolicy(bad, 'policy.yaml');
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      message = err.message;
    }
    expect(message).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 8 problems
        policy.yaml:2:21 anomaly.deleted: expected a percentage above 0% and up to 100% such as "25%", or off, got 0.1 (write it as a percentage, e.g. "10%")
        policy.yaml:2:40 anomaly.history_runs: expected an integer from 0 to 1000, got -1
        policy.yaml:2:44 anomaly.colour: unknown key "colour"; allowed here: enabled, overwritten, deleted, added, identical_rewrites, broken_formats, incompressible, min_flagged_objects, ransom_notes, extension_swaps, min_partition_objects, history_runs, history_factor, ransom_note_patterns
        policy.yaml:7:29 groups[0].anomaly.overwritten: expected a percentage above 0% and up to 100% such as "25%", or off, got "140%"
        policy.yaml:7:51 groups[0].anomaly.history_factor: expected a number from 1 to 100 such as 2 (a share fires only above this many times the partition's largest recent share), got 0.5
        policy.yaml:10:48 groups[0].sources[0].anomaly.ransom_notes: expected a positive integer (the rule fires at that many objects), or off, got 0
        policy.yaml:10:74 groups[0].sources[0].anomaly.ransom_note_patterns[0]: ransom note patterns match a key's base name; remove the "/" from "a/b*"
        policy.yaml:14:33 groups[0].sources[0].prefixes[1].anomaly.enabled: expected true or false, got "maybe""
    `);
  });

  it('sends a misplaced anomaly field to its home', () => {
    expect(() => parsePolicy(text.replace('anomaly: { deleted: 10%, history_runs: 5 }', 'history_factor: 3'), 'p.yaml')).toThrow(
      /history_factor: "history_factor" does not belong here; it goes under anomaly/,
    );
  });
});

describe('policy show', () => {
  it('prints the anomaly fields set in the policy, per scope, with where each comes from', async () => {
    const dir = tempDir('anomaly-show');
    try {
      const file = join(dir.path, 'policy.yaml');
      writeFileSync(file, text.replace('s3://backup-bucket/lakeguard', `file://${dir.path}/repo`));
      const r = await runCli(['--policy', file, 'policy', 'show']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(
        [
          '  raw-events/events/',
          '    no retention rules: every run is kept',
          '    anomaly detection on; set in the policy (other fields default):',
          '      overwritten            40%    from group finance',
          '      deleted                20%    from source raw-events',
          '      added                  off    from source raw-events',
          '      history_runs           5      from policy',
          '      ransom_note_patterns   [*_RECOVERY_*.txt] from group finance',
          '  raw-events/scratch/',
          '    no retention rules: every run is kept',
          '    anomaly detection off (enabled: false from prefix raw-events/scratch/)',
        ].join('\n'),
      );
    } finally {
      dir.cleanup();
    }
  });
});
