import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode, UsageError } from '../../src/errors.js';
import { defaultPolicyForRepository, loadPolicy, parsePolicy, PolicyError } from '../../src/policy/index.js';
import { retentionScopes, scopeOf } from '../../src/policy/retention.js';

/** The user-facing message of an invalid policy (fails the test if it is valid). */
function errorOf(text: string, file = 'policy.yaml'): string {
  try {
    parsePolicy(text, file);
  } catch (err) {
    if (err instanceof PolicyError) return err.message;
    throw err;
  }
  throw new Error('expected the policy to be rejected');
}

/** A valid policy around the given list of sources (`extra` follows the group), for tests about one field. */
function withSources(sourcesYaml: string, extra = ''): string {
  return `version: 1
repository:
  url: s3://backup-bucket/lakeguard
groups:
  - name: lake
    sources:
${sourcesYaml.trim().split('\n').map((line) => `      ${line}`).join('\n')}
${extra}`;
}

describe('problems are collected, located and explained', () => {
  it('reports every problem at once, sorted by line', () => {
    const text = `version: 1
repository:
  endpoint: http://127.0.0.1:7480
groups:
  - name: finance
    sources:
      - bucket: Raw_Events
        prefixs: [events/]
concurrency:
  list: sixteen
  transfer: 4096
`;
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 5 problems
        policy.yaml:2:1 repository.url: required, e.g. url: s3://backup-bucket/lakeguard or url: file:///var/backups/lake
        policy.yaml:7:17 groups[0].sources[0].bucket: invalid bucket name "Raw_Events": may contain only lowercase letters, digits, dots and hyphens, not "R"
        policy.yaml:8:9 groups[0].sources[0].prefixs: unknown key "prefixs"; did you mean "prefixes"?
        policy.yaml:10:9 concurrency.list: expected an integer from 1 to 1024, got "sixteen"
        policy.yaml:11:13 concurrency.transfer: expected an integer from 1 to 1024, got 4096"
    `);
  });

  it('exposes the problems as data with the same ordering', () => {
    try {
      parsePolicy('version: 2\nrepository: {}\n', 'p.yaml');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PolicyError);
      expect(err).toBeInstanceOf(UsageError);
      expect((err as PolicyError).exitCode).toBe(ExitCode.usage);
      expect((err as PolicyError).problems).toEqual([
        { file: 'p.yaml', line: 1, column: 1, path: 'groups', message: expect.stringMatching(/^required/) },
        { file: 'p.yaml', line: 1, column: 10, path: 'version', message: 'unsupported policy version 2; this lakeguard reads version 1' },
        { file: 'p.yaml', line: 2, column: 1, path: 'repository.url', message: expect.stringMatching(/^required/) },
      ]);
    }
  });

  it('says "1 problem" for one', () => {
    expect(errorOf(withSources('- bucket: raw-events\n  prefixes: [/events/]'))).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:8:20 groups[0].sources[0].prefixes[0]: prefix "/events/" must not start with "/" (object keys have no leading slash); write "events/""
    `);
  });

  it('reports malformed YAML with the parser position and no dump', () => {
    const text = `version: 1
repository:
  url: "s3://backup-bucket
groups: []
`;
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:5:1 invalid YAML: Missing closing "quote"
    `);
    expect(errorOf('version: 1\n  repository: x\n')).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:1:10 invalid YAML: a map cannot start here; check the indentation, or quote a value that contains ": ""
    `);
    // The parser would quote the stray scalar; it could be a secret.
    const stray = errorOf('- version: 1\nrepository: hunter2\n');
    expect(stray).not.toContain('hunter2');
    expect(stray).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:2:1 invalid YAML: Unexpected scalar at node end"
    `);
    expect(errorOf('version: 1\n---\nversion: 1\n')).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:2:1 invalid YAML: the policy must be a single YAML document (remove the second "---")"
    `);
  });

  it('reports an empty policy and a policy that is not a map', () => {
    expect(errorOf('# nothing yet\n')).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:1:1 the policy is empty; expected a map with version, repository and groups"
    `);
    expect(errorOf('- version: 1\n')).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:1:1 expected a map with version, repository and groups, got a list"
    `);
  });

  it('suggests the nearest key (camelCase, kopia spellings) or where a misplaced key goes', () => {
    const text = withSources(
      '- bucket: raw-events\n  excludes: ["*.crc"]',
      `    retention: { keep_latest: 3, keepDaily: 7, keep_yearyl: 1 }
    keep_daily: 7
concurency: { list: 4 }
colour: blue
`,
    );
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 7 problems
        policy.yaml:8:9 groups[0].sources[0].excludes: unknown key "excludes"; did you mean "exclude"?
        policy.yaml:9:18 groups[0].retention.keep_latest: unknown key "keep_latest"; did you mean "keep_last"?
        policy.yaml:9:34 groups[0].retention.keepDaily: unknown key "keepDaily"; did you mean "keep_daily"?
        policy.yaml:9:48 groups[0].retention.keep_yearyl: unknown key "keep_yearyl"; did you mean "keep_yearly"?
        policy.yaml:10:5 groups[0].keep_daily: "keep_daily" does not belong here; it goes under groups[].retention (allowed here: name, sources, retention, anomaly, continuous)
        policy.yaml:11:1 concurency: unknown key "concurency"; did you mean "concurrency"?
        policy.yaml:12:1 colour: unknown key "colour"; allowed here: version, repository, s3, groups, concurrency, retention, anomaly, continuous, timezone, pricing, notify, drill"
    `);
  });

  it('reports duplicate keys', () => {
    const text = `version: 1
repository:
  url: s3://backup-bucket/a
  url: s3://backup-bucket/b
groups:
  - name: lake
    sources: [{ bucket: raw-events }]
`;
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:4:3 repository.url: duplicate key "url" (first set on line 3); keep one"
    `);
  });

  it('reports duplicate group names', () => {
    const text = `version: 1
repository: { url: s3://backup-bucket }
groups:
  - name: finance
    sources: [{ bucket: raw-events }]
  - name: marketing
    sources: [{ bucket: clicks }]
  - name: finance
    sources: [{ bucket: invoices }]
  - name: "bad name!"
    sources: [{ bucket: other }]
`;
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 2 problems
        policy.yaml:8:11 groups[2].name: duplicate group name "finance" (already used by groups[0] on line 4)
        policy.yaml:10:11 groups[3].name: invalid group name "bad name!": use 1-63 letters, digits, dots, underscores and hyphens, starting with a letter or digit"
    `);
  });

  it('reports a source listed twice in a group', () => {
    const text = withSources('- bucket: raw-events\n  prefixes: [events/, invoices/]\n- bucket: raw-events\n  prefixes: [invoices/]\n- bucket: clicks\n- bucket: clicks');
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 2 problems
        policy.yaml:10:20 groups[0].sources[1].prefixes[0]: bucket "raw-events" prefix "invoices/" is already listed at groups[0].sources[0].prefixes[1]
        policy.yaml:12:9 groups[0].sources[3]: bucket "clicks" (all of it) is already listed at groups[0].sources[2]"
    `);
  });

  it('requires exactly one of bucket and path', () => {
    const text = withSources('- bucket: raw-events\n  path: /data\n- prefixes: [a/]\n- path: /data\n  region: us-east-1');
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 3 problems
        policy.yaml:8:15 groups[0].sources[0].path: set either bucket (an S3 bucket) or path (a local directory), not both
        policy.yaml:9:9 groups[0].sources[1]: each source needs bucket (an S3 bucket) or path (a local directory)
        policy.yaml:11:17 groups[0].sources[2].region: only applies to bucket sources; remove it"
    `);
  });

  it('refuses two path sources catalogued under one name, naming both paths and lines', () => {
    // Both would be catalogued as "lake": each run would record the other's files as deleted.
    const policy = `version: 1
repository:
  url: s3://backup-bucket/lakeguard
groups:
  - name: a
    sources:
      - path: /data/a/lake
  - name: b
    sources:
      - path: /data/b/lake
      - bucket: lake
      - path: /data/c/raw
        name: lake
`;
    expect(errorOf(policy)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 3 problems
        policy.yaml:10:15 groups[1].sources[0].path: path "/data/b/lake" would be catalogued as "lake", the name of path "/data/a/lake" (groups[0].sources[0].path, line 7): each run would record the files of one as deleted from the other; give each path source a distinct name, e.g. "name: lake-2"
        policy.yaml:11:17 groups[1].sources[1].bucket: bucket "lake" would be catalogued as "lake", the name of path "/data/a/lake" (groups[0].sources[0].path, line 7): each run would record the files of one as deleted from the other; give each path source a distinct name, e.g. "name: lake-2"
        policy.yaml:13:15 groups[1].sources[2].name: path "/data/c/raw" would be catalogued as "lake", the name of path "/data/a/lake" (groups[0].sources[0].path, line 7): each run would record the files of one as deleted from the other; give each path source a distinct name, e.g. "name: lake-2""
    `);
    try {
      parsePolicy(policy, 'policy.yaml');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).exitCode).toBe(ExitCode.usage);
    }
  });

  it('gives a path source its own catalog name with name:', () => {
    const text = withSources('- path: /data/a/lake\n  name: lake-a\n- path: /data/b/lake\n  name: lake-b\n- path: /data/c/lake');
    expect(parsePolicy(text, 'policy.yaml').groups[0]!.sources).toEqual([
      { kind: 'path', path: '/data/a/lake', name: 'lake-a', prefixes: [''], exclude: [] },
      { kind: 'path', path: '/data/b/lake', name: 'lake-b', prefixes: [''], exclude: [] },
      { kind: 'path', path: '/data/c/lake', prefixes: [''], exclude: [] },
    ]);
    // The same directory in two groups is one source, as the same bucket is.
    const twice = `version: 1
repository: { url: s3://backup-bucket }
groups:
  - { name: a, sources: [{ path: /data/lake, prefixes: [x/] }] }
  - { name: b, sources: [{ path: /data/lake, prefixes: [y/] }] }
`;
    expect(parsePolicy(twice, 'p.yaml').groups).toHaveLength(2);
    expect(errorOf(withSources('- path: /data/a\n  name: "../x"\n- bucket: raw-events\n  name: raw'))).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 2 problems
        policy.yaml:8:15 groups[0].sources[0].name: invalid source name "../x": use 1-63 letters, digits, dots, underscores and hyphens, starting with a letter or digit
        policy.yaml:10:15 groups[0].sources[1].name: only applies to path sources (a bucket is catalogued under its own name); remove it"
    `);
  });

  it('validates bucket names by the S3 rules', () => {
    const names = ['ab', 'a'.repeat(64), 'Raw-Events', 'raw_events', '-raw', 'raw..events', '192.168.1.1', 's3://raw-events', 'raw-events/events'];
    const text = withSources(names.map((n) => `- bucket: "${n}"`).join('\n'));
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 9 problems
        policy.yaml:7:17 groups[0].sources[0].bucket: invalid bucket name "ab": must be 3 to 63 characters long, not 2
        policy.yaml:8:17 groups[0].sources[1].bucket: invalid bucket name "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": must be 3 to 63 characters long, not 64
        policy.yaml:9:17 groups[0].sources[2].bucket: invalid bucket name "Raw-Events": may contain only lowercase letters, digits, dots and hyphens, not "R"
        policy.yaml:10:17 groups[0].sources[3].bucket: invalid bucket name "raw_events": may contain only lowercase letters, digits, dots and hyphens, not "_"
        policy.yaml:11:17 groups[0].sources[4].bucket: invalid bucket name "-raw": must start and end with a lowercase letter or digit
        policy.yaml:12:17 groups[0].sources[5].bucket: invalid bucket name "raw..events": must not contain two dots in a row
        policy.yaml:13:17 groups[0].sources[6].bucket: invalid bucket name "192.168.1.1": must not look like an IP address
        policy.yaml:14:17 groups[0].sources[7].bucket: invalid bucket name "s3://raw-events": write the bucket name without "s3://"
        policy.yaml:15:17 groups[0].sources[8].bucket: invalid bucket name "raw-events/events": a bucket name cannot contain "/"; put the rest of the path in prefixes"
    `);
  });

  it('rejects wrong types with the bad value and what is allowed', () => {
    const text = `version: "1"
repository:
  url: s3://backup-bucket
  encryption: aes
  pack_size: 16MB
  compression_level: 22
  endpoint: ftp://example.com
  region: us east
groups:
  - name: lake
    sources:
      - bucket: raw-events
        prefixes: events/
        exclude: ["a[bc", 42]
      - bucket: clicks
        prefixes: [2026, ""]
    retention: { keep_last: -1, keep_within: 30 days, min_age_days: 1.5 }
`;
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 13 problems
        policy.yaml:1:10 version: expected 1, got "1"
        policy.yaml:4:15 repository.encryption: expected "aes-256-gcm" or "none", got "aes"
        policy.yaml:5:14 repository.pack_size: expected a size from 1MiB to 1GiB such as 16MiB or 16777216, got "16MB" (sizes are binary: write MiB, or M)
        policy.yaml:6:22 repository.compression_level: expected an integer from 1 to 19, got 22
        policy.yaml:7:13 repository.endpoint: expected an http:// or https:// URL such as http://127.0.0.1:7480, got "ftp://example.com"
        policy.yaml:8:11 repository.region: expected a region name such as us-east-1, got "us east"
        policy.yaml:13:19 groups[0].sources[0].prefixes: expected a list of key prefixes such as [events/, invoices/], got "events/"
        policy.yaml:14:19 groups[0].sources[0].exclude[0]: invalid glob "a[bc": unclosed "[" at position 2 (write \\[ for a literal bracket)
        policy.yaml:14:27 groups[0].sources[0].exclude[1]: expected a glob such as "*.crc", got 42
        policy.yaml:16:20 groups[0].sources[1].prefixes[0]: expected a key prefix (quote it if it looks like a number), got 2026
        policy.yaml:17:29 groups[0].retention.keep_last: expected a non-negative integer, got -1
        policy.yaml:17:46 groups[0].retention.keep_within: expected a duration such as 30d, 12h, 2w, 6m (months) or 1y6m, got "30 days"
        policy.yaml:17:69 groups[0].retention.min_age_days: expected a non-negative integer, got 1.5"
    `);
  });

  it('reports an unknown anchor and follows known ones', () => {
    const ok = parsePolicy(
      withSources('- bucket: raw-events\n  exclude: &common ["*.crc", "**/_temporary/**"]\n- bucket: clicks\n  exclude: *common'),
      'p.yaml',
    );
    expect(ok.groups[0]!.sources[1]!.exclude).toEqual(['*.crc', '**/_temporary/**']);
    expect(errorOf(withSources('- bucket: raw-events\n  exclude: *nope'))).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:8:18 groups[0].sources[0].exclude: unknown anchor: *nope has no matching &nope before it"
    `);
  });
});

describe('YAML aliases', () => {
  /** `depth` lists of nine aliases of the list before: 9^depth values from a few hundred bytes. */
  const laughs = (depth: number, where: 'exclude' | 'unknown'): string => {
    const levels = [`l0: &l0 ["*.tmp", "*.crc", "*.bak", "*.log", "*.old", "*.swp", "*.part", "*.lock", "*.x"]`];
    for (let i = 1; i <= depth; i++) levels.push(`l${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(', ')}]`);
    const top = `version: 1\nrepository:\n  url: s3://backup-bucket/lakeguard\n`;
    if (where === 'unknown') return `${top}${levels.join('\n')}\ngroups: [{ name: lake, sources: [{ bucket: raw }] }]\n`;
    // The bomb where the checker walks it: every source's exclude list.
    return `${top}x:\n${levels.map((l) => `  ${l}`).join('\n')}\ngroups: [{ name: lake, sources: [{ bucket: raw, exclude: *l${depth} }] }]\n`;
  };

  it('refuses a billion laughs before walking it: one line naming the file and the alias, exit 2', () => {
    for (const where of ['unknown', 'exclude'] as const) {
      let error: unknown;
      try {
        parsePolicy(laughs(9, where), 'bomb.yaml');
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(UsageError);
      const e = error as UsageError;
      expect(e.exitCode).toBe(ExitCode.usage);
      expect(e.message).not.toContain('\n');
      expect(e.message).toMatch(/^invalid policy bomb\.yaml:\d+:\d+: the alias \*l\d makes the aliases expand to more than 10000 values/);
    }
    // An alias inside the value it names.
    expect(() => parsePolicy(withSources('- bucket: raw\n  exclude: &loop ["*.tmp", *loop]'), 'loop.yaml')).toThrow(/loop\.yaml:8:\d+: the alias \*loop refers to a value that contains it/);
    // Shared lists well within the bound are fine.
    const sources = Array.from({ length: 200 }, (_, i) => `- bucket: bucket-${i}\n  exclude: *common`).join('\n');
    const p = parsePolicy(withSources(`- bucket: first\n  exclude: &common ["*.crc", "**/_temporary/**", "*.tmp"]\n${sources}`), 'p.yaml');
    expect(p.groups[0]!.sources).toHaveLength(201);
    expect(p.groups[0]!.sources[200]!.exclude).toEqual(['*.crc', '**/_temporary/**', '*.tmp']);
  });
});

describe('secrets never belong in the policy', () => {
  it('rejects a password without repeating its value', () => {
    const text = `version: 1
repository:
  url: s3://backup-bucket
  password: hunter2-very-secret
groups:
  - name: lake
    sources: [{ bucket: raw-events }]
`;
    const message = errorOf(text);
    expect(message).not.toContain('hunter2');
    expect(message).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:4:3 repository.password: secrets do not belong in the policy; remove this key and give the repository password with password_env (an environment variable name, default LAKEGUARD_PASSWORD), password_file or password_command"
    `);
  });

  it('rejects AWS keys anywhere, in any spelling, without descending into them', () => {
    const text = `version: 1
repository:
  url: s3://backup-bucket
  access_key: AKIAEXAMPLEEXAMPLE00
s3:
  aws_secret_access_key: wJalrXUtnFEMIEXAMPLEKEY
groups:
  - name: lake
    sources:
      - bucket: raw-events
        secretAccessKey: wJalrXUtnFEMIEXAMPLEKEY
    credentials:
      secret: nested-value
      token: more
`;
    const message = errorOf(text);
    expect(message).not.toMatch(/AKIA|wJalr|nested-value|more/);
    expect(message).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 6 problems
        policy.yaml:4:3 repository.access_key: secrets do not belong in the policy; remove this key: S3 credentials come from the AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE with ~/.aws/credentials, or an instance/task role), or from a \`credentials:\` section naming a profile, role_arn or credential_process (docs/permissions.md)
        policy.yaml:6:3 s3.aws_secret_access_key: secrets do not belong in the policy; remove this key: S3 credentials come from the AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE with ~/.aws/credentials, or an instance/task role), or from a \`credentials:\` section naming a profile, role_arn or credential_process (docs/permissions.md)
        policy.yaml:11:9 groups[0].sources[0].secretAccessKey: secrets do not belong in the policy; remove this key: S3 credentials come from the AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE with ~/.aws/credentials, or an instance/task role), or from a \`credentials:\` section naming a profile, role_arn or credential_process (docs/permissions.md)
        policy.yaml:12:5 groups[0].credentials: unknown key "credentials"; allowed here: name, sources, retention, anomaly, continuous
        policy.yaml:13:7 groups[0].credentials.secret: secrets do not belong in the policy; remove this key: the repository password comes from password_env, password_file or password_command, S3 credentials from the AWS credential chain or \`credentials:\`
        policy.yaml:14:7 groups[0].credentials.token: secrets do not belong in the policy; remove this key: the repository password comes from password_env, password_file or password_command, S3 credentials from the AWS credential chain or \`credentials:\`"
    `);
  });

  it('never repeats a value given where a secret source belongs', () => {
    const text = `version: 1
repository:
  url: https://AKIAEXAMPLE:hunter2@example.com/bucket
  endpoint: http://AKIAEXAMPLE:hunter2@127.0.0.1:7480
  password_env: "hunter2 with spaces"
groups:
  - name: lake
    sources: [{ bucket: raw-events }]
`;
    const message = errorOf(text);
    expect(message).not.toMatch(/hunter2|AKIA/);
    expect(message).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 3 problems
        policy.yaml:3:8 repository.url: the URL must not contain credentials; S3 credentials come from the AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance/task role)
        policy.yaml:4:13 repository.endpoint: must not contain credentials; S3 credentials come from the AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance/task role)
        policy.yaml:5:17 repository.password_env: expected the name of an environment variable (letters, digits and "_") such as LAKEGUARD_PASSWORD, got something else (not shown in case it is the password)"
    `);
    expect(errorOf(withSources('- bucket: raw-events').replace('lakeguard\n', 'lakeguard\n  password_command: 123456\n'))).not.toContain('123456');
  });

  it('accepts the secret sources themselves', () => {
    const policy = parsePolicy(
      withSources('- bucket: raw-events').replace('lakeguard\n', 'lakeguard\n  password_command: pass show lakeguard\n'),
      '/etc/lakeguard/policy.yaml',
    );
    expect(policy.repository.passwordCommand).toBe('pass show lakeguard');
    expect(policy.repository.passwordEnv).toBeUndefined();
  });
});

describe('repository', () => {
  const repo = (lines: string) => `version: 1
repository:
  ${lines.trim().split('\n').join('\n  ')}
groups:
  - name: lake
    sources: [{ bucket: raw-events }]
`;

  it('normalizes s3:// URLs', () => {
    expect(parsePolicy(repo('url: s3://backup-bucket/lake/'), 'p.yaml').repository.url).toBe('s3://backup-bucket/lake');
    expect(parsePolicy(repo('url: s3://backup-bucket'), 'p.yaml').repository.url).toBe('s3://backup-bucket');
  });

  it('resolves relative file:// URLs and password_file against the policy directory', () => {
    const policy = parsePolicy(repo('url: file://./backups/repo\npassword_file: ../secrets/lakeguard.pw'), '/etc/lakeguard/policy.yaml');
    expect(policy.file).toBe('/etc/lakeguard/policy.yaml');
    expect(policy.repository.url).toBe('file:///etc/lakeguard/backups/repo');
    expect(policy.repository.passwordFile).toBe('/etc/secrets/lakeguard.pw');
    expect(policy.repository.passwordEnv).toBeUndefined();
    expect(parsePolicy(repo('url: file://../repo'), '/etc/lakeguard/policy.yaml').repository.url).toBe('file:///etc/repo');
    expect(parsePolicy(repo('url: file:///var/backups/my%20lake/'), '/etc/p.yaml').repository.url).toBe('file:///var/backups/my%20lake');
    expect(parsePolicy(repo('url: file:///data/50%off'), '/etc/p.yaml').repository.url).toBe('file:///data/50%25off');
  });

  it('resolves an inline policy against the working directory', () => {
    const policy = parsePolicy(repo('url: file://./repo'), '<inline>');
    expect(policy.file).toBe('<inline>');
    expect(policy.repository.url).toBe(`file://${process.cwd()}/repo`);
  });

  it('parses pack sizes with binary suffixes', () => {
    const size = (v: string) => parsePolicy(repo(`url: s3://backup-bucket\npack_size: ${v}`), 'p.yaml').repository.packSize;
    expect(size('16777216')).toBe(16 * 1024 * 1024);
    expect(size('16MiB')).toBe(16 * 1024 * 1024);
    expect(size('16M')).toBe(16 * 1024 * 1024);
    expect(size('1GiB')).toBe(1024 * 1024 * 1024);
    expect(size('1024KiB')).toBe(1024 * 1024);
    expect(size('1.5MiB')).toBe(1.5 * 1024 * 1024);
  });

  it('takes the storage class of packs from a closed list, for s3:// repositories only', () => {
    expect(parsePolicy(repo('url: s3://backup-bucket\nstorage_class: DEEP_ARCHIVE'), 'p.yaml').repository.storageClass).toBe('DEEP_ARCHIVE');
    expect(parsePolicy(repo('url: s3://backup-bucket'), 'p.yaml').repository.storageClass).toBeUndefined();
    expect(errorOf(repo('url: s3://backup-bucket\nstorage_class: glacier'))).toContain(
      'repository.storage_class: expected one of STANDARD, STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE, got "glacier"',
    );
    expect(errorOf(repo('url: file:///var/backups/lake\nstorage_class: STANDARD_IA'))).toContain(
      'repository.storage_class: only applies to s3:// repositories (repository.url is a file:// URL); remove it',
    );
  });

  it('rejects contradictory settings', () => {
    const text = repo(`url: file:///var/backups/lake
endpoint: http://127.0.0.1:7480
sse_kms_key_id: alias/lake
encryption: none
password_env: MY_PASSWORD
password_file: /etc/pw
pack_size: 512KiB`);
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 6 problems
        policy.yaml:4:13 repository.endpoint: only applies to s3:// repositories (repository.url is a file:// URL); remove it
        policy.yaml:5:19 repository.sse_kms_key_id: only applies to s3:// repositories (repository.url is a file:// URL); remove it
        policy.yaml:7:17 repository.password_env: has no effect with encryption: none; remove it, or remove "encryption: none" to encrypt the repository
        policy.yaml:8:18 repository.password_file: set only one of password_env, password_file and password_command (password_env is set too)
        policy.yaml:8:18 repository.password_file: has no effect with encryption: none; remove it, or remove "encryption: none" to encrypt the repository
        policy.yaml:9:14 repository.pack_size: expected a size from 1MiB to 1GiB such as 16MiB or 16777216, got "512KiB""
    `);
  });

  it('reads encryption_kms_key_id, and refuses it with encryption: none', () => {
    const arn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    expect(parsePolicy(repo(`url: s3://backup-bucket\nencryption_kms_key_id: ${arn}`), 'p.yaml').repository.encryptionKmsKeyId).toBe(arn);
    expect(errorOf(repo(`url: s3://backup-bucket\nencryption: none\nencryption_kms_key_id: ${arn}`))).toContain(
      'repository.encryption_kms_key_id: has no effect with encryption: none',
    );
  });

  it('rejects URLs it cannot use', () => {
    expect(errorOf(repo('url: https://example.com/bucket'))).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:3:8 repository.url: expected s3://bucket[/prefix], file:///absolute/dir or file://./relative/dir, got "https://example.com/bucket""
    `);
    expect(errorOf(repo('url: file://backups'))).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:3:8 repository.url: expected s3://bucket[/prefix], file:///absolute/dir or file://./relative/dir, got "file://backups""
    `);
    expect(errorOf(repo('url: s3://Backup_Bucket/x'))).toMatchInlineSnapshot(`
      "invalid policy policy.yaml: 1 problem
        policy.yaml:3:8 repository.url: invalid bucket name "Backup_Bucket" in "s3://Backup_Bucket/x": may contain only lowercase letters, digits, dots and hyphens, not "B""
    `);
  });
});

describe('the result', () => {
  it('applies every default', () => {
    const policy = parsePolicy(withSources('- bucket: raw-events'), '/etc/lakeguard/policy.yaml');
    expect(policy).toEqual({
      version: 1,
      file: '/etc/lakeguard/policy.yaml',
      repository: { url: 's3://backup-bucket/lakeguard', encryption: 'aes-256-gcm', passwordEnv: 'LAKEGUARD_PASSWORD' },
      s3: {},
      groups: [{ name: 'lake', sources: [{ kind: 's3', bucket: 'raw-events', prefixes: [''], exclude: [] }] }],
      concurrency: { list: 16, transfer: 32 },
      timezone: 'UTC',
    });
  });

  it('gives bucket sources the policy-level s3 endpoint and region unless they set their own', () => {
    const text = withSources(
      '- bucket: raw-events\n- bucket: clicks\n  region: eu-west-1',
      's3: { endpoint: "http://127.0.0.1:7480", region: us-east-1 }\nconcurrency: { transfer: 8 }\n',
    );
    const policy = parsePolicy(text, 'p.yaml');
    expect(policy.s3).toEqual({ endpoint: 'http://127.0.0.1:7480', region: 'us-east-1' });
    expect(policy.groups[0]!.sources).toEqual([
      { kind: 's3', bucket: 'raw-events', prefixes: [''], exclude: [], endpoint: 'http://127.0.0.1:7480', region: 'us-east-1' },
      { kind: 's3', bucket: 'clicks', prefixes: [''], exclude: [], endpoint: 'http://127.0.0.1:7480', region: 'eu-west-1' },
    ]);
    expect(policy.concurrency).toEqual({ list: 16, transfer: 8 });
  });

  it('keeps unset retention rules apart from 0', () => {
    const text = withSources('- bucket: raw-events', '    retention: { keep_last: 0, keep_daily: 30, keep_within: 1y6m }\n');
    expect(parsePolicy(text, 'p.yaml').groups[0]!.retention).toEqual({ keepLast: 0, keepDaily: 30, keepWithin: '1y6m' });
  });

  it('resolves path sources against the policy directory', () => {
    const policy = parsePolicy(withSources('- path: ./lake\n  prefixes: [tables/]'), '/srv/demo/policy.yaml');
    expect(policy.groups[0]!.sources[0]).toEqual({ kind: 'path', path: '/srv/demo/lake', prefixes: ['tables/'], exclude: [] });
  });

  it('is deeply frozen', () => {
    const policy = parsePolicy(withSources('- bucket: raw-events', '    retention: { keep_last: 1 }\n'), 'p.yaml');
    const source = policy.groups[0]!.sources[0]!;
    for (const value of [policy, policy.repository, policy.s3, policy.groups, policy.groups[0], source, source.prefixes, source.exclude, policy.concurrency, policy.groups[0]!.retention]) {
      expect(Object.isFrozen(value)).toBe(true);
    }
    expect(() => {
      (policy.concurrency as { list: number }).list = 1;
    }).toThrow(TypeError);
    expect(() => source.prefixes.push('x/')).toThrow(TypeError);
  });
});

describe('loadPolicy', () => {
  it('reads a file and records its absolute path', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lakeguard-policy-'));
    const file = path.join(dir, 'policy.yaml');
    writeFileSync(file, withSources('- bucket: raw-events').replace('s3://backup-bucket/lakeguard', 'file://./repo'));
    const policy = loadPolicy(file);
    expect(policy.file).toBe(file);
    expect(policy.repository.url).toBe(`file://${dir}/repo`);
  });

  it('names a missing file', () => {
    expect(() => loadPolicy('/nonexistent/lakeguard.yaml')).toThrow(UsageError);
    expect(() => loadPolicy('/nonexistent/lakeguard.yaml')).toThrowErrorMatchingInlineSnapshot(`[UsageError: cannot read policy file /nonexistent/lakeguard.yaml: no such file]`);
    expect(() => loadPolicy(tmpdir())).toThrow(/it is a directory/);
  });
});

describe('defaultPolicyForRepository', () => {
  it('builds a policy with no groups', () => {
    expect(defaultPolicyForRepository('s3://backup-bucket/lake/')).toEqual({
      version: 1,
      file: '<inline>',
      repository: { url: 's3://backup-bucket/lake', encryption: 'aes-256-gcm', passwordEnv: 'LAKEGUARD_PASSWORD' },
      s3: {},
      groups: [],
      concurrency: { list: 16, transfer: 32 },
      timezone: 'UTC',
    });
    expect(defaultPolicyForRepository('file://./repo').repository.url).toBe(`file://${process.cwd()}/repo`);
    expect(Object.isFrozen(defaultPolicyForRepository('s3://backup-bucket').repository)).toBe(true);
  });

  it('rejects a bad URL as a usage error', () => {
    expect(() => defaultPolicyForRepository('backups')).toThrowErrorMatchingInlineSnapshot(`[UsageError: invalid repository URL: expected s3://bucket[/prefix], file:///absolute/dir or file://./relative/dir, got "backups"]`);
    expect(() => defaultPolicyForRepository('s3://key:secret@bucket')).toThrow(UsageError);
    expect(() => defaultPolicyForRepository('s3://key:secret@bucket')).not.toThrow(/secret@/);
  });
});

describe('retention inheritance', () => {
  const text = `version: 1
timezone: Europe/Berlin
retention: { keep_daily: 7, min_age_days: 30 }
repository:
  url: s3://backup-bucket/lakeguard
groups:
  - name: finance
    retention: { keep_monthly: 12 }
    sources:
      - bucket: raw-events
        retention: { keep_daily: 14, min_age_days: 60 }
        prefixes:
          - events/
          - prefix: invoices/
            retention: { keep_yearly: 10, keep_daily: 0 }
      - bucket: other
`;

  it('resolves rule by rule, naming where each value came from', () => {
    const policy = parsePolicy(text, 'policy.yaml');
    expect(policy.timezone).toBe('Europe/Berlin');
    const scopes = retentionScopes(policy).map((s) => ({ label: s.label, rules: s.rules, origins: s.origins }));
    expect(scopes).toEqual([
      {
        label: 'raw-events/events/',
        rules: { keepDaily: 14, minAgeDays: 60, keepMonthly: 12 },
        origins: { keepDaily: 'source raw-events', minAgeDays: 'source raw-events', keepMonthly: 'group finance' },
      },
      {
        label: 'raw-events/invoices/',
        rules: { keepDaily: 0, minAgeDays: 60, keepMonthly: 12, keepYearly: 10 },
        origins: { keepDaily: 'prefix raw-events/invoices/', minAgeDays: 'source raw-events', keepMonthly: 'group finance', keepYearly: 'prefix raw-events/invoices/' },
      },
      { label: 'other/', rules: { keepDaily: 7, minAgeDays: 30, keepMonthly: 12 }, origins: { keepDaily: 'policy', minAgeDays: 'policy', keepMonthly: 'group finance' } },
    ]);
    expect(scopeOf(retentionScopes(policy), 'raw-events', 'invoices/2026/x.json')?.label).toBe('raw-events/invoices/');
    expect(scopeOf(retentionScopes(policy), 'raw-events', 'elsewhere/x')).toBeUndefined();
  });

  it('refuses a level that lowers the compliance floor, and an unknown time zone', () => {
    const lowered = text.replace('keep_yearly: 10, keep_daily: 0', 'keep_yearly: 10, min_age_days: 7').replace('timezone: Europe/Berlin', 'timezone: Mars/Olympus');
    expect(() => parsePolicy(lowered, 'policy.yaml')).toThrowErrorMatchingInlineSnapshot(`
      [PolicyError: invalid policy policy.yaml: 2 problems
        policy.yaml:2:11 timezone: unknown time zone "Mars/Olympus": use an IANA name such as UTC, Europe/Berlin or America/New_York
        policy.yaml:15:57 groups[0].sources[0].prefixes[1].retention.min_age_days: min_age_days 7 is below the 60 set by groups[0].sources[0].retention.min_age_days on line 11; a compliance floor is inherited and can only be raised]
    `);
  });
});
