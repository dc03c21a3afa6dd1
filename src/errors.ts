/**
 * Error kinds decided once: every error a user can see carries an exit code and, where there
 * is one, a hint naming the next step. The CLI maps these in a single catch (src/cli.ts).
 */

export const ExitCode = {
  ok: 0,
  error: 1,
  usage: 2,
  partial: 3,
  /** The run(s) completed and at least one is suspect (anomalies found); below partial and error. */
  suspect: 4,
  /** Restore: every object not restored is in a pack archived in GLACIER or DEEP_ARCHIVE; thaw, then run again. */
  archived: 5,
  repositoryMissing: 10,
  locked: 11,
  wrongPassword: 12,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class LakeguardError extends Error {
  readonly exitCode: ExitCode;
  readonly hint?: string;

  constructor(message: string, opts: { exitCode?: ExitCode; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? ExitCode.error;
    if (opts.hint !== undefined) this.hint = opts.hint;
  }
}

/** Bad command-line usage or an invalid policy (exit 2). */
export class UsageError extends LakeguardError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, { ...opts, exitCode: ExitCode.usage });
  }
}

/** The catalog holds nothing the command was asked for (exit 2): no run, no key in the selection. */
export class NothingFoundError extends UsageError {}

export class RepositoryMissingError extends LakeguardError {
  /** `leftover`: an object of a repository found there although `config` is missing (its config was deleted). */
  constructor(location: string, opts: { cause?: unknown; leftover?: string | null } = {}) {
    const { leftover, ...rest } = opts;
    if (leftover != null) {
      super(`no config at ${location}, but ${location}${leftover} is there: the repository's config was deleted (or hidden by a delete marker)`, {
        ...rest,
        exitCode: ExitCode.repositoryMissing,
        hint: 'put config back from a copy of the repository (with versioning or Object Lock: its earlier object version); `lakeguard init` would make another repository over these objects',
      });
      return;
    }
    // A missing S3 bucket is said as such: `lakeguard init` alone would not help there (a
    // file:// repository's missing directory is what init creates).
    const noBucket = location.startsWith('s3://') && rest.cause instanceof StorageError && rest.cause.code === 'NoSuchBucket';
    super(`no lakeguard repository at ${location}${noBucket ? ': its bucket does not exist' : ''}`, {
      ...rest,
      exitCode: ExitCode.repositoryMissing,
      hint: noBucket
        ? 'check repository.url (and endpoint, region) in the policy, or create the bucket and then the repository with `lakeguard init`'
        : 'check repository.url in the policy, or create one with `lakeguard init`',
    });
  }
}

export class WrongPasswordError extends LakeguardError {
  constructor(location: string) {
    super(`wrong password for repository ${location}: no key in config or keys/ opens with it`, {
      exitCode: ExitCode.wrongPassword,
      // A wrapped key with one byte changed fails exactly like a wrong password: nothing tells them apart.
      hint: 'check LAKEGUARD_PASSWORD, --password-file or LAKEGUARD_PASSWORD_COMMAND; if this password opened it before, compare config and keys/ with a copy of the repository (an altered wrapped key fails like a wrong password)',
    });
  }
}

export class LockedError extends LakeguardError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.locked, hint: hint ?? 'wait for it to finish, or run `lakeguard unlock` if it is stale' });
  }
}

/** Data read back from the repository failed authentication, a hash check or parsing. */
export class IntegrityError extends LakeguardError {}

/** Operation aborted by SIGINT/SIGTERM. */
export class InterruptedError extends LakeguardError {
  constructor(message = 'interrupted') {
    super(message, { exitCode: ExitCode.interrupted });
  }
}

export type StorageErrorCode =
  | 'NotFound'
  | 'NoSuchBucket'
  | 'AccessDenied'
  | 'PreconditionFailed'
  | 'InvalidObjectState'
  | 'Throttled'
  | 'ServerError'
  | 'Network'
  | 'InvalidCredentials'
  | 'Other';

/** Storage failures, already translated from the S3 SDK or the filesystem. */
export class StorageError extends LakeguardError {
  readonly code: StorageErrorCode;
  /** The raw code from the backend (e.g. the S3 error code `SlowDown`), for records and logs. */
  readonly backendCode: string;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;

  constructor(
    code: StorageErrorCode,
    message: string,
    opts: { backendCode?: string; retryable?: boolean; retryAfterMs?: number; cause?: unknown; hint?: string } = {},
  ) {
    super(message, { cause: opts.cause, ...(opts.hint === undefined ? {} : { hint: opts.hint }) });
    this.code = code;
    this.backendCode = opts.backendCode ?? code;
    this.retryable = opts.retryable ?? (code === 'Throttled' || code === 'ServerError' || code === 'Network');
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof StorageError && (err.code === 'NotFound' || err.code === 'NoSuchBucket');
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
