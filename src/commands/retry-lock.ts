import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { parseWatchDuration } from '../policy/schema-continuous.js';
import { setLockRetry } from '../repository/locks.js';
import type { Reporter } from './reporter.js';

/** Long enough for any prune; short enough for a timer. */
const MAX_RETRY_LOCK_MS = 24 * 3_600_000;

/**
 * `--retry-lock <duration>` (or $LAKEGUARD_RETRY_LOCK): how long a command waits for a
 * conflicting repository lock to go before it exits 11. A shard of a Kubernetes Indexed Job
 * that meets a prune would otherwise use up its retries within a minute.
 */
export function applyRetryLockOption(cmd: Command, signal: AbortSignal, reporter: Reporter): void {
  const flag = cmd.optsWithGlobals<{ retryLock?: string }>().retryLock;
  const [value, where] = flag !== undefined ? [flag, '--retry-lock'] : [process.env.LAKEGUARD_RETRY_LOCK, 'LAKEGUARD_RETRY_LOCK'];
  if (value === undefined || value === '') {
    setLockRetry({ forMs: 0 });
    return;
  }
  const ms = parseWatchDuration(value);
  if (ms === undefined || ms > MAX_RETRY_LOCK_MS) {
    throw new UsageError(`${where} ${JSON.stringify(value)}: expected a duration up to 24h such as 30m, 2h or 90s (m = minutes)`, { hint: 'e.g. --retry-lock 2h' });
  }
  setLockRetry({ forMs: ms, signal, onWait: (message) => reporter.event({ type: 'warning', message }) });
}
