// More users of the test server, for least-privilege tests: created with the server's own admin
// tool (radosgw-admin, with the conf of scripts/s3-server.sh's data directory), idempotently, so
// a server started earlier without them gains them on first use.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface S3User {
  uid: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** Owns the repository bucket in the least-privilege test: the admin role (forget, prune). */
export const S3_ADMIN_USER: S3User = { uid: 'lakeguard-admin', accessKeyId: 'LAKEGUARDADMINACCESSKEY', secretAccessKey: 'lakeguard-admin-secret-key-000000000000000' };
/** The restore role: reads the repository (bucket policy), owns the restore target. */
export const S3_RESTORE_USER: S3User = { uid: 'lakeguard-restore', accessKeyId: 'LAKEGUARDRESTOREACCESSKEY', secretAccessKey: 'lakeguard-restore-secret-key-00000000000000' };

/** `arn:aws:iam:::user/<uid>`: how RGW bucket policies name a user of the default tenant. */
export function userArn(user: { uid: string }): string {
  return `arn:aws:iam:::user/${user.uid}`;
}

function admin(...args: string[]): Promise<{ stdout: string }> {
  const conf = join(process.env.LAKEGUARD_S3_DIR ?? '/tmp/lakeguard-s3', 'ceph.conf');
  return run('radosgw-admin', ['-c', conf, '-n', 'client.admin', ...args], { timeout: 60_000 });
}

/**
 * Creates a role (RGW's IAM roles, for STS AssumeRole) that `assumer` may assume, allowed every
 * S3 action on `bucket` and nothing else; returns its ARN. Remove it with removeS3Role.
 */
export async function createS3Role(roleName: string, assumer: { uid: string }, bucket: string): Promise<string> {
  const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: [userArn(assumer)] }, Action: ['sts:AssumeRole'] }] };
  await admin('role', 'create', '--role-name', roleName, '--path', '/', '--assume-role-policy-doc', JSON.stringify(trust));
  const allow = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:*'], Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`] }] };
  await admin('role-policy', 'put', '--role-name', roleName, '--policy-name', 'bucket', '--policy-doc', JSON.stringify(allow));
  return `arn:aws:iam:::role/${roleName}`;
}

/** Removes a role made by createS3Role (best effort: a leftover role holds no data). */
export async function removeS3Role(roleName: string): Promise<void> {
  await admin('role-policy', 'delete', '--role-name', roleName, '--policy-name', 'bucket').catch(() => {});
  await admin('role', 'delete', '--role-name', roleName).catch(() => {});
}

/** Creates the user on the test server unless it exists with this access key. */
export async function ensureS3User(user: S3User): Promise<void> {
  try {
    const info = await admin('user', 'info', '--uid', user.uid);
    if (info.stdout.includes(`"access_key": "${user.accessKeyId}"`)) return;
  } catch {
    // No such user yet.
  }
  await admin('user', 'create', '--uid', user.uid, '--display-name', user.uid, '--access-key', user.accessKeyId, '--secret-key', user.secretAccessKey);
}
