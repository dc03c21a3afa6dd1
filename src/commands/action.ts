import type { Command } from 'commander';
import { setMaxListeners } from 'node:events';
import { corruptCatalogError, isCorruptDatabase } from '../catalog/corrupt.js';
import { ExitCode, InterruptedError, errorMessage } from '../errors.js';
import { globalOptions } from './context.js';
import { Reporter } from './reporter.js';
import { applyTimeoutOption } from './timeout.js';

/** Exit code a command finished with; cli.ts returns it from main(). */
export const outcome = { code: ExitCode.ok as number };

/**
 * Wraps a command body: errors are printed once, as one line plus a hint, and mapped to the
 * documented exit codes; SIGINT/SIGTERM abort the signal the body gets (exit 130).
 */
export function action<A extends unknown[]>(
  body: (ctx: { cmd: Command; signal: AbortSignal; reporter: Reporter }, ...args: A) => Promise<number | void>,
): (...args: [...A, unknown, Command]) => Promise<void> {
  return async (...all) => {
    const cmd = all[all.length - 1] as Command;
    const args = all.slice(0, -2) as unknown as A;
    const reporter = new Reporter(globalOptions(cmd));
    const controller = new AbortController();
    // Every in-flight request listens on the signal: hundreds at once are expected.
    setMaxListeners(0, controller.signal);
    const onSignal = (): void => controller.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      applyTimeoutOption(cmd);
      outcome.code = (await body({ cmd, signal: controller.signal, reporter }, ...args)) ?? ExitCode.ok;
    } catch (err) {
      const interrupted = controller.signal.aborted && !(err instanceof InterruptedError);
      // SQLite meets a corrupted page only when a query reads it, in the middle of any command.
      const named = isCorruptDatabase(err) ? corruptCatalogError(null, err) : err;
      outcome.code = reporter.fatal(interrupted ? new InterruptedError(`interrupted (${errorMessage(err)})`) : named);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      reporter.close();
    }
  };
}
