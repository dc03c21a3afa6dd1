import { describe, expect, it } from 'vitest';
import { parsePolicy, PolicyError } from '../../src/policy/index.js';

function errorOf(text: string): string {
  try {
    parsePolicy(text, 'policy.yaml');
  } catch (err) {
    if (err instanceof PolicyError) return err.message;
    throw err;
  }
  throw new Error('expected the policy to be rejected');
}

/** A policy whose repository and first source carry the given `credentials:` bodies. */
function policy(repoCredentials: string, sourceCredentials: string, url = 's3://backup-bucket/lakeguard'): string {
  const indent = (text: string, n: number): string => text.trim().split('\n').map((l) => `${' '.repeat(n)}${l}`).join('\n');
  return `version: 1
repository:
  url: ${url}
${repoCredentials === '' ? '' : `  credentials:\n${indent(repoCredentials, 4)}\n`}groups:
  - name: lake
    sources:
      - bucket: raw-events
${sourceCredentials === '' ? '' : `        credentials:\n${indent(sourceCredentials, 10)}\n`}`;
}

describe('credentials: per source and per repository', () => {
  it('reads a profile, a role (with the profile it is assumed with) and a credential_process', () => {
    const p = parsePolicy(
      policy('role_arn: arn:aws:iam::123456789012:role/lakeguard-backup\nprofile: base\nexternal_id: ext-1\nsession_name: nightly\nduration_seconds: 1800', 'profile: lake-reader'),
      'policy.yaml',
    );
    expect(p.repository.credentials).toEqual({
      roleArn: 'arn:aws:iam::123456789012:role/lakeguard-backup',
      profile: 'base',
      externalId: 'ext-1',
      sessionName: 'nightly',
      durationSeconds: 1800,
    });
    const source = p.groups[0]!.sources[0]!;
    expect(source.kind === 's3' && source.credentials).toEqual({ profile: 'lake-reader' });
    const q = parsePolicy(policy('credential_process: /usr/local/bin/vault-aws lakeguard', ''), 'policy.yaml');
    expect(q.repository.credentials).toEqual({ credentialProcess: '/usr/local/bin/vault-aws lakeguard' });
    expect(q.groups[0]!.sources[0]!).not.toHaveProperty('credentials');
  });

  it('refuses conflicting, incomplete and malformed settings with file:line', () => {
    const message = errorOf(policy('profile: a\ncredential_process: get-creds', 'external_id: x'));
    expect(message).toContain('policy.yaml:6:25 repository.credentials.credential_process: set credential_process alone (profile is set too)');
    expect(message).toContain('groups[0].sources[0].credentials: expected a map with one of profile, role_arn or credential_process; leave credentials out to use the default AWS credential chain');
    expect(message).toContain('groups[0].sources[0].credentials.external_id: only applies with role_arn; add role_arn or remove it');
    expect(errorOf(policy('role_arn: arn:aws:iam::1:user/bob', ''))).toContain('invalid role ARN "arn:aws:iam::1:user/bob"');
    expect(errorOf(policy('role_arn: arn:aws:iam::1:role/r\nduration_seconds: 60', ''))).toContain('expected an integer from 900 to 43200, got 60');
    expect(errorOf(policy('profile: "two words"', ''))).toContain('invalid profile name "two words"');
    expect(errorOf(policy('profiel: x', ''))).toMatch(/repository\.credentials\.profiel: unknown key "profiel"; did you mean "profile"/);
    expect(errorOf(policy('profile: x', '', 'file:///var/backups/lake'))).toContain(
      'repository.credentials: only applies to s3:// repositories (repository.url is a file:// URL); remove it',
    );
  });

  it('still refuses secrets inside credentials, without repeating them', () => {
    const message = errorOf(policy('profile: x\naws_secret_access_key: wJalrXUtnFEMIEXAMPLEKEY', 'access_key_id: AKIAEXAMPLEEXAMPLE00'));
    expect(message).not.toMatch(/wJalr|AKIA/);
    expect(message).toContain('repository.credentials.aws_secret_access_key: secrets do not belong in the policy');
    expect(message).toContain('groups[0].sources[0].credentials.access_key_id: secrets do not belong in the policy');
  });

  it('never repeats a credential_process value given as the wrong type', () => {
    const message = errorOf(policy('credential_process: [echo, hunter2]', ''));
    expect(message).toContain('expected a command line printing credentials as JSON, got a list');
    expect(message).not.toContain('hunter2');
  });
});
