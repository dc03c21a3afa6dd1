import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compileExcludes, loadPolicy } from '../../src/policy/index.js';

// Every example must stay valid; the directory is listed so that new examples are covered too.
const dir = fileURLToPath(new URL('../../examples/policies/', import.meta.url));
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.yaml') || name.endsWith('.yml'))
  .sort();

describe('examples/policies', () => {
  it('holds the documented examples', () => {
    expect(files).toEqual(expect.arrayContaining(['lake.yaml', 'local.yaml', 'minimal.yaml', 'unencrypted-sse-kms.yaml']));
  });

  it.each(files)('%s is a valid policy', (name) => {
    const policy = loadPolicy(path.join(dir, name));
    expect(policy.file).toBe(path.join(dir, name));
    expect(policy.groups.length).toBeGreaterThan(0);
    for (const source of policy.groups.flatMap((g) => g.sources)) expect(() => compileExcludes(source.exclude)).not.toThrow();
  });

  it('lake.yaml: S3 repository on a custom endpoint, two groups with excludes and retention', () => {
    const policy = loadPolicy(path.join(dir, 'lake.yaml'));
    expect(policy.repository).toMatchObject({ url: 's3://lakeguard-backup/lake', endpoint: 'http://127.0.0.1:7480', packSize: 16 * 1024 * 1024 });
    expect(policy.groups.map((g) => g.name)).toEqual(['finance', 'ml-features']);
    expect(policy.groups.every((g) => g.retention !== undefined)).toBe(true);
    const finance = policy.groups[0]!.sources[0]!;
    const excluded = compileExcludes(finance.exclude);
    expect(excluded('events/2026/01/_temporary/0/part-0000.parquet')).toBe(true);
    expect(excluded('events/2026/01/.part-0000.parquet.crc')).toBe(true);
    expect(excluded('events/2026/01/part-0000.parquet')).toBe(false);
  });

  it('local.yaml: directory repository and a path source, both inside <repo>/demo-output', () => {
    const policy = loadPolicy(path.join(dir, 'local.yaml'));
    const root = path.resolve(dir, '../..');
    expect(fileURLToPath(policy.repository.url)).toBe(path.join(root, 'demo-output', 'repository'));
    expect(policy.groups[0]!.sources[0]).toMatchObject({ kind: 'path', path: path.join(root, 'demo-output', 'lake') });
  });

  it('unencrypted-sse-kms.yaml: no encryption, no password, SSE-KMS key id passed through', () => {
    const { repository } = loadPolicy(path.join(dir, 'unencrypted-sse-kms.yaml'));
    expect(repository.encryption).toBe('none');
    expect(repository.passwordEnv).toBeUndefined();
    expect(repository.sseKmsKeyId).toMatch(/^arn:aws:kms:/);
  });
});
