import type { Command } from 'commander';
import { setMaxListeners } from 'node:events';
import { catalogFileError, corruptCatalogError, isCorruptDatabase } from '../catalog/corrupt.js';
import { ExitCode, InterruptedError, errorMessage } from '../errors.js';
import { globalOptions } from './context.js';
import { writeMetricsFile } from './metrics-file.js';
import { settleLostOutput } from './output-streams.js';
import { Reporter } from './reporter.js';
import { applyRetryLockOption } from './retry-lock.js';
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
    const started = Date.now();
    try {
      applyTimeoutOption(cmd);
      applyRetryLockOption(cmd, controller.signal, reporter);
      outcome.code = (await body({ cmd, signal: controller.signal, reporter }, ...args)) ?? ExitCode.ok;
    } catch (err) {
      const interrupted = controller.signal.aborted && !(err instanceof InterruptedError);
      // SQLite meets a corrupted page only when a query reads it, in the middle of any command.
      // So does a full disk, or another process holding the file: named with the file and what to do.
      const named = isCorruptDatabase(err) ? corruptCatalogError(null, err) : (catalogFileError(err) ?? err);
      // An abort surfaces as whichever in-flight call saw it first: its "operation was aborted" says nothing more.
      const detail = err instanceof Error && err.name === 'AbortError' ? '' : ` (${errorMessage(err)})`;
      outcome.code = reporter.fatal(interrupted ? new InterruptedError(`${commandName(cmd)} interrupted${detail}`) : named);
    } finally {
      outcome.code = settleLostOutput(reporter, outcome.code);
      await writeMetrics(cmd, reporter, started);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      reporter.close();
    }
  };
}

/** The full name of a command as typed (`runs show`), for the metrics' `command` label. */
function commandName(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * `--metrics-file`: written after every command, also one that failed (its exit code is a
 * series). A file that cannot be written is a warning, not the command's failure: the
 * backup itself happened, and the metrics' own age tells monitoring the file went stale.
 */
async function writeMetrics(cmd: Command, reporter: Reporter, started: number): Promise<void> {
  const path = globalOptions(cmd).metricsFile;
  if (path === undefined) return;
  const ended = Date.now();
  reporter.metrics.command(commandName(cmd), ended, outcome.code, ended - started);
  try {
    await writeMetricsFile(path, reporter.metrics);
  } catch (err) {
    reporter.warnAlways(`cannot write the metrics file ${path}: ${errorMessage(err)}`);
  }
}
