import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { backoffDelay, sleep, withRetry } from '../../src/util/retry.js';

/** A fake sleep that records the delays it was asked for and returns at once. */
function fakeSleep(): { sleep: (ms: number) => Promise<void>; delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    sleep: async (ms: number) => {
      delays.push(ms);
    },
  };
}

/** fn that fails with the given errors in turn, then returns 'ok'. */
function failing(errors: unknown[]): { fn: (attempt: number) => Promise<string>; attempts: number[] } {
  const attempts: number[] = [];
  return {
    attempts,
    fn: async (attempt: number) => {
      attempts.push(attempt);
      const err = errors[attempts.length - 1];
      if (err !== undefined) throw err;
      return 'ok';
    },
  };
}

const throttled = (retryAfterMs?: number): StorageError =>
  new StorageError('Throttled', 'GET s3://b/k: SlowDown (503)', retryAfterMs === undefined ? {} : { retryAfterMs });

describe('withRetry', () => {
  it('stopRetrying: a retryable failure is thrown as it is, without another attempt, once it says stop', async () => {
    const s = fakeSleep();
    const errors = [throttled(), throttled(), throttled()];
    const f = failing(errors);
    let stop = false;
    const onRetry = (): void => {
      stop = true;
    };
    await expect(withRetry(f.fn, { sleep: s.sleep, onRetry, stopRetrying: () => stop })).rejects.toBe(errors[1]);
    expect(f.attempts).toEqual([1, 2]);
    expect(s.delays).toHaveLength(1);
  });

  it.each([
    { label: 'Throttled', err: new StorageError('Throttled', 'slow down') },
    { label: 'ServerError', err: new StorageError('ServerError', 'internal error') },
    { label: 'Network', err: new StorageError('Network', 'ECONNRESET') },
    { label: 'Other marked retryable', err: new StorageError('Other', 'EMFILE', { retryable: true }) },
  ])('retries $label and succeeds', async ({ err }) => {
    const s = fakeSleep();
    const f = failing([err, err]);
    await expect(withRetry(f.fn, { sleep: s.sleep })).resolves.toBe('ok');
    expect(f.attempts).toEqual([1, 2, 3]);
    expect(s.delays).toHaveLength(2);
  });

  it.each([
    { label: 'NotFound', err: new StorageError('NotFound', 'missing') },
    { label: 'AccessDenied', err: new StorageError('AccessDenied', 'denied') },
    { label: 'PreconditionFailed', err: new StorageError('PreconditionFailed', 'exists') },
    { label: 'InvalidCredentials', err: new StorageError('InvalidCredentials', 'bad key') },
    { label: 'Throttled marked not retryable', err: new StorageError('Throttled', 'x', { retryable: false }) },
    { label: 'a plain Error', err: new Error('bug') },
    { label: 'a string', err: 'boom' },
  ])('fails at once on $label', async ({ err }) => {
    const s = fakeSleep();
    const f = failing([err]);
    await expect(withRetry(f.fn, { sleep: s.sleep })).rejects.toBe(err);
    expect(f.attempts).toEqual([1]);
    expect(s.delays).toEqual([]);
  });

  it.each([1, 3, 8])('gives up after maxAttempts=%i with the last error', async (maxAttempts) => {
    const s = fakeSleep();
    const errs = Array.from({ length: 20 }, (_, i) => new StorageError('ServerError', `error ${i + 1}`));
    const f = failing(errs);
    await expect(withRetry(f.fn, { maxAttempts, sleep: s.sleep })).rejects.toBe(errs[maxAttempts - 1]);
    expect(f.attempts).toHaveLength(maxAttempts);
    expect(s.delays).toHaveLength(maxAttempts - 1);
  });

  it('defaults to 8 attempts', async () => {
    const s = fakeSleep();
    const f = failing(Array.from({ length: 20 }, () => throttled()));
    await expect(withRetry(f.fn, { sleep: s.sleep })).rejects.toBeInstanceOf(StorageError);
    expect(f.attempts).toHaveLength(8);
  });

  it('backs off exponentially with full jitter, capped', async () => {
    const s = fakeSleep();
    const f = failing(Array.from({ length: 10 }, () => throttled()));
    // random() just below 1: each delay is (almost) its ceiling.
    await withRetry(f.fn, { maxAttempts: 11, baseDelayMs: 100, maxDelayMs: 5000, sleep: s.sleep, random: () => 0.999999 });
    expect(s.delays).toEqual([99, 199, 399, 799, 1599, 3199, 4999, 4999, 4999, 4999]);
    const z = fakeSleep();
    await withRetry(failing([throttled(), throttled()]).fn, { sleep: z.sleep, random: () => 0 });
    expect(z.delays).toEqual([0, 0]);
  });

  it('draws jittered delays within [0, ceiling)', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(20_000, 100 * 2 ** (attempt - 1));
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(attempt, 100, 20_000);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(ceiling);
      }
    }
  });

  it('waits at least Retry-After', async () => {
    const s = fakeSleep();
    const f = failing([throttled(7000), throttled(10)]);
    await withRetry(f.fn, { sleep: s.sleep, random: () => 0.5, baseDelayMs: 100 });
    expect(s.delays).toEqual([7000, 100]);
  });

  it('reports each retry to onRetry', async () => {
    const s = fakeSleep();
    const seen: [string, number, number][] = [];
    const errs = [throttled(), new StorageError('Network', 'reset')];
    await withRetry(failing(errs).fn, {
      sleep: s.sleep,
      random: () => 0,
      onRetry: (err, attempt, delayMs) => seen.push([err.code, attempt, delayMs]),
    });
    expect(seen).toEqual([
      ['Throttled', 1, 0],
      ['Network', 2, 0],
    ]);
  });

  it('does not start when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    const f = failing([]);
    await expect(withRetry(f.fn, { signal: ac.signal })).rejects.toThrow('stop');
    expect(f.attempts).toEqual([]);
  });

  it('stops retrying when the signal aborts during an attempt', async () => {
    const ac = new AbortController();
    const s = fakeSleep();
    const attempts: number[] = [];
    const p = withRetry(
      async (attempt) => {
        attempts.push(attempt);
        ac.abort(new Error('interrupted'));
        throw throttled();
      },
      { signal: ac.signal, sleep: s.sleep },
    );
    await expect(p).rejects.toThrow('interrupted');
    expect(attempts).toEqual([1]);
    expect(s.delays).toEqual([]);
  });

  it('stops waiting when the signal aborts during the backoff (real sleep)', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    const p = withRetry(
      async () => {
        throw throttled(60_000);
      },
      { signal: ac.signal },
    );
    setTimeout(() => ac.abort(new Error('interrupted')), 20);
    await expect(p).rejects.toThrow('interrupted');
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('sleep', () => {
  it('resolves after the delay', async () => {
    const t0 = Date.now();
    await sleep(20);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
  });

  it('rejects at once with the abort reason', async () => {
    const ac = new AbortController();
    const p = sleep(10_000, ac.signal);
    ac.abort(new Error('bye'));
    await expect(p).rejects.toThrow('bye');
  });
});
