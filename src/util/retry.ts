import { StorageError } from '../errors.js';

export interface RetryOptions {
  /** Total attempts including the first (default 8). */
  maxAttempts?: number;
  /** Backoff cap of the first retry (default 100 ms); doubles per attempt. */
  baseDelayMs?: number;
  /** Upper bound of one backoff (default 20 s). A server's Retry-After may ask for longer. */
  maxDelayMs?: number;
  /** Stops waiting and retrying; the abort reason is thrown. */
  signal?: AbortSignal;
  /** Asked after a retryable failure: true stops retrying and throws that failure (unlike `signal`, the caller handles it). */
  stopRetrying?(): boolean;
  /** Called before each backoff sleep, e.g. to log or count retries. */
  onRetry?(err: StorageError, attempt: number, delayMs: number): void;
  /** Injectable for tests. Must reject when `signal` aborts. */
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
  /** Injectable for tests: uniform random in [0, 1). */
  random?(): number;
}

export const RETRY_DEFAULTS = { maxAttempts: 8, baseDelayMs: 100, maxDelayMs: 20_000 } as const;

export function isRetryable(err: unknown): err is StorageError {
  return err instanceof StorageError && err.retryable;
}

/** Full-jitter delay before retry number `attempt` (1 = the first retry). */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.floor(random() * ceiling);
}

/**
 * Retry with exponential backoff and full jitter (the AWS architecture blog's "full jitter":
 * sleep a uniformly random time in [0, min(cap, base * 2^(attempt-1))]). Only errors that say
 * they are worth retrying are retried: `StorageError`s with `retryable` set (throttling, 5xx,
 * connection resets). Everything else fails at once, with the original error.
 *
 * `fn` must be safe to call again: callers wrap one request each (a list page, a HEAD, a GET up
 * to its response headers, a PUT of a Buffer), never a half-consumed stream.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const maxAttempts = Math.max(1, opts.maxAttempts ?? RETRY_DEFAULTS.maxAttempts);
  const base = opts.baseDelayMs ?? RETRY_DEFAULTS.baseDelayMs;
  const cap = opts.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs;
  const sleepFn = opts.sleep ?? sleep;
  const { signal } = opts;

  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      // An abort surfaces as whatever the backend threw; report the abort itself.
      signal?.throwIfAborted();
      if (!isRetryable(err) || attempt >= maxAttempts || opts.stopRetrying?.() === true) throw err;
      const delayMs = Math.max(backoffDelay(attempt, base, cap, opts.random), err.retryAfterMs ?? 0);
      opts.onRetry?.(err, attempt, delayMs);
      await sleepFn(delayMs, signal);
    }
  }
}

/** setTimeout as a promise that rejects with the abort reason when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
