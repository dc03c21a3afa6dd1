import { StorageError, type StorageErrorCode } from '../errors.js';

/**
 * A filesystem error (other than a missing file, which the store reports as NotFound) as a
 * StorageError: permissions as AccessDenied, a key that collides with a directory, a full disk,
 * and running out of file handles or a busy file as retryable.
 */
export function classifyFsError(where: string, code: string, detail: string, root: string, err: unknown): StorageError {
  let kind: StorageErrorCode = 'Other';
  let retryable = false;
  // Node's messages already start with the code ("EACCES: permission denied, open '...'").
  let msg = detail.startsWith(`${code}:`) ? detail : `${code}: ${detail}`;
  let hint: string | undefined;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      kind = 'AccessDenied';
      hint = `check the permissions of ${root}`;
      break;
    case 'EEXIST':
    case 'ENOTDIR':
    case 'EISDIR':
      msg = `${code}: the key conflicts with an existing object or "directory" (a filesystem cannot hold both \`a\` and \`a/b\`)`;
      break;
    case 'ENOSPC':
    case 'EDQUOT':
      hint = `free space on the filesystem of ${root}`;
      break;
    case 'EMFILE':
    case 'ENFILE':
    case 'EAGAIN':
    case 'EBUSY':
      retryable = true;
      break;
  }
  return new StorageError(kind, `${where}: ${msg}`, { backendCode: code, retryable, cause: err, ...(hint ? { hint } : {}) });
}

/** The `code` of a Node system error. */
export function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}
