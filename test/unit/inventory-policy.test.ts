// `inventory:` on a bucket source: validated like every other field, shown by `policy show`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePolicy, PolicyError } from '../../src/policy/index.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';

function policyWith(sourceLines: string, repo = 's3://backup-bucket/lakeguard'): string {
  return `version: 1
repository:
  url: ${repo}
groups:
  - name: lake
    sources:
${sourceLines}
`;
}

function errorOf(text: string): string {
  try {
    parsePolicy(text, 'policy.yaml');
  } catch (err) {
    if (err instanceof PolicyError) return err.message;
    throw err;
  }
  throw new Error('expected the policy to be rejected');
}

describe('policy field inventory', () => {
  it('is normalized to s3://bucket/prefix/ with one trailing slash', () => {
    const p = parsePolicy(policyWith('      - bucket: raw-events\n        inventory: s3://inv-bucket/reports/raw-events/daily'), 'policy.yaml');
    const source = p.groups[0]!.sources[0]!;
    expect(source.kind === 's3' && source.inventory).toBe('s3://inv-bucket/reports/raw-events/daily/');
    const top = parsePolicy(policyWith('      - bucket: raw-events\n        inventory: s3://inv-bucket'), 'policy.yaml');
    const s2 = top.groups[0]!.sources[0]!;
    expect(s2.kind === 's3' && s2.inventory).toBe('s3://inv-bucket/');
  });

  it('refuses what is not an S3 URL, bad bucket names, and path sources, at file:line', () => {
    const text = policyWith(
      [
        '      - bucket: a-bucket',
        '        inventory: https://inv-bucket/x/',
        '      - bucket: b-bucket',
        '        inventory: s3://Inv_Bucket/x/',
        '      - bucket: c-bucket',
        '        inventory: s3://inv-bucket/a//b/',
        '      - path: /data/lake',
        '        inventory: s3://inv-bucket/x/',
        '      - bucket: d-bucket',
        '        inventory: [s3://inv-bucket/x/]',
      ].join('\n'),
    );
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 5 problems
        policy.yaml:8:20 groups[0].sources[0].inventory: expected an S3 URL such as s3://inventory-bucket/<destination prefix>/<source bucket>/<configuration id>/, got "https://inv-bucket/x/"
        policy.yaml:10:20 groups[0].sources[1].inventory: invalid bucket name "Inv_Bucket" in "s3://Inv_Bucket/x/": may contain only lowercase letters, digits, dots and hyphens, not "I"
        policy.yaml:12:20 groups[0].sources[2].inventory: "s3://inv-bucket/a//b/" has an empty path segment ("//")
        policy.yaml:14:20 groups[0].sources[3].inventory: only applies to bucket sources; remove it
        policy.yaml:16:20 groups[0].sources[4].inventory: expected an S3 URL such as s3://inventory-bucket/<destination prefix>/<source bucket>/<configuration id>/, got a list"
    `);
  });

  it('is printed by policy show, text and --json', async () => {
    const dir = tempDir('inventory-show');
    try {
      const file = join(dir.path, 'policy.yaml');
      writeFileSync(file, policyWith('      - bucket: raw-events\n        inventory: s3://inv-bucket/reports/raw-events/daily/\n      - bucket: clicks', `file://${dir.path}/repo`));
      const r = await runCli(['--policy', file, 'policy', 'show']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('  raw-events (all keys)\n    listed from the newest S3 Inventory report at s3://inv-bucket/reports/raw-events/daily/\n');
      expect(r.stdout).not.toMatch(/clicks \(all keys\)\n {4}listed/);
      const j = await runCli(['--policy', file, '--json', 'policy', 'show']);
      const summary = JSON.parse(j.stdout.trim().split('\n').at(-1)!) as { scopes: { bucket: string; inventory?: string }[] };
      expect(summary.scopes.map((s) => [s.bucket, s.inventory ?? null])).toEqual([
        ['raw-events', 's3://inv-bucket/reports/raw-events/daily/'],
        ['clicks', null],
      ]);
    } finally {
      dir.cleanup();
    }
  });
});
