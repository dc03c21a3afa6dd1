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

/** Creates the user on the test server unless it exists with this access key. */
export async function ensureS3User(user: S3User): Promise<void> {
  const conf = join(process.env.LAKEGUARD_S3_DIR ?? '/tmp/lakeguard-s3', 'ceph.conf');
  const admin = (...args: string[]) => run('radosgw-admin', ['-c', conf, '-n', 'client.admin', ...args], { timeout: 60_000 });
  try {
    const info = await admin('user', 'info', '--uid', user.uid);
    if (info.stdout.includes(`"access_key": "${user.accessKeyId}"`)) return;
  } catch {
    // No such user yet.
  }
  await admin('user', 'create', '--uid', user.uid, '--display-name', user.uid, '--access-key', user.accessKeyId, '--secret-key', user.secretAccessKey);
}
