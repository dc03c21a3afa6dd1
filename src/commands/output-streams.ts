/**
 * What a command does when it cannot write its output: the reader of stdout went away (`|
 * head`), or stdout cannot take the bytes (a log file on a full disk: ENOSPC, EIO, EFBIG). Node
 * reports either as an 'error' event on process.stdout which, unhandled, killed the command
 * wherever it was, with a stack trace and without releasing its repository lock.
 *
 * - A reader that went away: nobody wants the rest. Queries end at once, exit 0 (as `ls | head`
 *   does); every other command drops its output and finishes as it would have.
 * - Output that could not be written: what the command printed is incomplete, and a script
 *   reading it (`lakeguard runs --json > runs.json`) must not take it as the answer. Queries end
 *   at once; other commands finish their work (a backup never stops half-way for its log) and
 *   then exit 1 instead of 0, naming the error (as coreutils do on a write error).
 * - stderr: what cannot be written there cannot be reported anywhere; it is dropped and the
 *   command exits with its own code.
 */
import { ExitCode, LakeguardError } from '../errors.js';
import type { Reporter } from './reporter.js';

let watching = false;
/** The first error writing stdout other than its reader going away. */
let lost: NodeJS.ErrnoException | null = null;
/** Set by a query: how it ends when stdout fails (with its reporter, for the error's format). */
let endQuery: Reporter | null = null;

function readerGone(err: NodeJS.ErrnoException): boolean {
  return err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED';
}

/** Called by every main() (src/cli.ts) before any output: a command starts with nothing lost. */
export function watchOutputStreams(): void {
  lost = null;
  endQuery = null;
  if (watching) return;
  watching = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (!readerGone(err)) lost ??= err;
    if (endQuery === null) return;
    if (lost === null) process.exit(ExitCode.ok);
    process.exit(endQuery.fatal(lostOutputError(lost)));
  });
  process.stderr.on('error', () => {});
}

/**
 * A query (read-only: `runs`, `runs show`, the lists of ListPrinter) ends as soon as stdout
 * fails: exit 0 when its reader went away, else 1 with the error.
 */
export function endQueryWhenStdoutFails(reporter: Reporter): void {
  endQuery = reporter;
}

/**
 * The exit code a command ends with once its output is accounted for: `code`, or 1 (with the
 * error printed) when stdout could not take what it printed and `code` said success. A failure
 * of its own keeps its code, with a warning that its output is incomplete.
 */
export function settleLostOutput(reporter: Reporter, code: number): number {
  // The command has ended: an 'error' event still to come must not end it a second time.
  endQuery = null;
  // A file stream records its error at once; the 'error' event follows on the next tick.
  const errored = (process.stdout as { errored?: NodeJS.ErrnoException | null }).errored ?? null;
  if (lost === null && errored !== null && !readerGone(errored)) lost = errored;
  if (lost === null) return code;
  const err = lostOutputError(lost);
  if (code !== ExitCode.ok) {
    reporter.warnAlways(err.message);
    return code;
  }
  return reporter.fatal(err);
}

function lostOutputError(err: NodeJS.ErrnoException): LakeguardError {
  return new LakeguardError(`cannot write to stdout (${err.message}): what the command printed there is incomplete`, {
    hint: 'make room where stdout goes, or send it elsewhere',
  });
}
