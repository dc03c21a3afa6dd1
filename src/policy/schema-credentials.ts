/**
 * The `credentials:` section of a bucket source and of the repository: which AWS identity
 * reads or writes that bucket. It names where credentials come from (a profile of the shared
 * config files, a role to assume, a credential_process command), never the credentials.
 */
import { ROLE_ARN } from '../storage/credentials.js';
import type { CredentialsPolicy } from './types.js';
import { read, withoutUndefined, type Checker, type Field } from './yaml-check.js';

export const CREDENTIALS_KEYS = ['profile', 'role_arn', 'external_id', 'session_name', 'duration_seconds', 'credential_process'] as const;

/** AssumeRole accepts 15 minutes to 12 hours (the role's own maximum may be lower). */
const MIN_DURATION = 900;
const MAX_DURATION = 43_200;

const EXPECTED = 'a map with one of profile, role_arn or credential_process';

/** Checks a `credentials:` map; undefined (with problems reported) when it is not valid. */
export function checkCredentials(c: Checker, f: Field): CredentialsPolicy | undefined {
  const m = c.map(f, CREDENTIALS_KEYS, EXPECTED);
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const profile = read(m, 'profile', (x) => checkProfileName(c, x));
  const roleArn = read(m, 'role_arn', (x) => checkRoleArn(c, x));
  const externalId = read(m, 'external_id', (x) => c.string(x, 'the external id the role trust policy requires'));
  const sessionName = read(m, 'session_name', (x) => checkSessionName(c, x));
  const durationSeconds = read(m, 'duration_seconds', (x) => c.integer(x, MIN_DURATION, MAX_DURATION));
  const credentialProcess = read(m, 'credential_process', (x) => c.string(x, 'a command line printing credentials as JSON', { secret: true }));

  // A profile may go with role_arn: it then holds the credentials the role is assumed with.
  const kinds = (['profile', 'role_arn', 'credential_process'] as const).filter((k) => m.has(k));
  if (kinds.length === 0) c.reportAt(f.offset, f.path, `expected ${EXPECTED}; leave credentials out to use the default AWS credential chain`);
  if (m.has('credential_process') && kinds.length > 1) {
    c.report(m.get('credential_process')!, `set credential_process alone (${kinds.filter((k) => k !== 'credential_process').join(' and ')} is set too)`);
  }
  if (!m.has('role_arn')) {
    for (const key of ['external_id', 'session_name', 'duration_seconds'] as const) {
      if (m.has(key)) c.report(m.get(key)!, 'only applies with role_arn; add role_arn or remove it');
    }
  }
  if (c.problems.length > before) return undefined;
  return withoutUndefined({ profile, roleArn, externalId, sessionName, durationSeconds, credentialProcess });
}

function checkProfileName(c: Checker, f: Field): string | undefined {
  const name = c.string(f, 'the name of a profile in the AWS config or credentials file');
  if (name === undefined) return undefined;
  if (/^[\w.@+-]+$/.test(name)) return name;
  c.report(f, `invalid profile name ${JSON.stringify(name)}: use letters, digits and . _ - + @`);
  return undefined;
}

function checkRoleArn(c: Checker, f: Field): string | undefined {
  const arn = c.string(f, 'a role ARN such as arn:aws:iam::123456789012:role/lakeguard-backup');
  if (arn === undefined) return undefined;
  if (ROLE_ARN.test(arn)) return arn;
  c.report(f, `invalid role ARN ${JSON.stringify(arn)}: expected arn:aws:iam::<account>:role/<name>`);
  return undefined;
}

function checkSessionName(c: Checker, f: Field): string | undefined {
  const name = c.string(f, 'a session name');
  if (name === undefined) return undefined;
  if (/^[\w+=,.@-]{2,64}$/.test(name)) return name;
  c.report(f, `invalid session name ${JSON.stringify(name)}: 2 to 64 letters, digits and + = , . @ - _`);
  return undefined;
}
