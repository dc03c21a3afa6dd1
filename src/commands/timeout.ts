import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { setRequestTimeout } from '../storage/s3-store.js';

/**
 * `--timeout <seconds>` (or $LAKEGUARD_TIMEOUT): how long one S3 request may go without an
 * answer before the attempt fails. Applied to every store the command opens.
 */
export function applyTimeoutOption(cmd: Command): void {
  const flag = cmd.optsWithGlobals<{ timeout?: string }>().timeout;
  const [value, where] = flag !== undefined ? [flag, '--timeout'] : [process.env.LAKEGUARD_TIMEOUT, 'LAKEGUARD_TIMEOUT'];
  if (value === undefined || value === '') return;
  const seconds = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : NaN;
  if (!(seconds > 0) || seconds > 3600) {
    throw new UsageError(`${where} ${JSON.stringify(value)}: expected a number of seconds above 0, at most 3600`, { hint: 'e.g. --timeout 120' });
  }
  setRequestTimeout(Math.round(seconds * 1000));
}
