import type CliProgress from 'cli-progress';
import { LakeguardError, ExitCode } from '../errors.js';
import type { EngineEvent } from '../engine/events.js';
import { MetricsCollector } from '../report/metrics.js';
import { requireCjs } from '../util/cjs.js';
import { formatBytes } from '../util/format.js';
import { printable, printableLines } from '../util/printable.js';

type Mode = 'json' | 'quiet' | 'tty' | 'plain';

/** One line of --json output: every line names its kind. */
export type JsonMessage = { message_type: string } & Record<string, unknown>;

/** Loaded on the first progress bar: cron and --json runs never draw one (saves ~12 ms of start). */
function loadCliProgress(): typeof CliProgress {
  return requireCjs('cli-progress') as typeof CliProgress;
}

/**
 * The one place that decides how a command talks: a progress bar on a TTY (stderr),
 * line-delimited JSON with a `message_type` (`--json`: status/summary on stdout, error and
 * exit_error on stderr, as restic does), or nothing but errors (`--quiet`, for cron).
 * Text for people is printable() here (keys may hold terminal escapes); JSON stays raw.
 */
export class Reporter {
  readonly mode: Mode;
  private bar: CliProgress.SingleBar | null = null;
  private barPhase = '';
  /** Text failure lines in a row with one code: after REPEATS_SHOWN of them, the rest are counted (flushRepeats prints the count). */
  private repeats = { code: '', shown: 0, hidden: 0 };
  /** What the command tells Prometheus (`--metrics-file`; action() writes it when the command ends). */
  readonly metrics = new MetricsCollector();

  constructor(opts: { json?: boolean; quiet?: boolean }) {
    this.mode = opts.json ? 'json' : opts.quiet ? 'quiet' : process.stderr.isTTY ? 'tty' : 'plain';
  }

  get json(): boolean {
    return this.mode === 'json';
  }

  get quiet(): boolean {
    return this.mode === 'quiet';
  }

  event = (e: EngineEvent): void => {
    if (e.type === 'action') return this.action(e);
    if (e.type === 'rollback-action') {
      // A rollback's plan per key is for machines (--json); people get its counts in the summary.
      if (this.mode === 'json') this.line(process.stdout, { message_type: 'rollback_action', ...omitType(e) });
      return;
    }
    if (e.type === 'failure' && this.mode !== 'json' && this.repeated(e.code)) return;
    if (e.type === 'failure' || e.type === 'warning') this.flushRepeats(e.type === 'failure' ? e.code : undefined);
    switch (this.mode) {
      case 'json':
        if (e.type === 'progress') this.line(process.stdout, { message_type: 'status', ...omitType(e) });
        else if (e.type === 'failure') this.line(process.stderr, { message_type: 'error', ...omitType(e) });
        else if (e.type === 'warning') this.line(process.stderr, { message_type: 'warning', message: e.message });
        else if (e.type === 'would-back-up') this.line(process.stdout, { message_type: 'would_back_up', ...omitType(e) });
        else this.line(process.stdout, { message_type: 'status', phase: e.phase, ...(e.detail === undefined ? {} : { detail: e.detail }) });
        return;
      case 'tty':
        if (e.type === 'progress') this.progress(e);
        else if (e.type === 'failure') this.above(failureLine(e));
        else if (e.type === 'warning') this.above(`warning: ${printable(e.message)}`);
        return;
      case 'plain':
        if (e.type === 'failure') process.stderr.write(`${failureLine(e)}\n`);
        else if (e.type === 'warning') process.stderr.write(`warning: ${printable(e.message)}\n`);
        return;
      case 'quiet':
        // Errors, and warnings that qualify the answer: never a stale or partial answer unsaid.
        if (e.type === 'failure') process.stderr.write(`${failureLine(e)}\n`);
        else if (e.type === 'warning' && e.qualifies === true) process.stderr.write(`warning: ${printable(e.message)}\n`);
        return;
    }
  };

  /** Whether this failure line is one too many of a run of failures with the same code (then only counted). */
  private repeated(code: string): boolean {
    if (code !== this.repeats.code) return false;
    if (this.repeats.shown < REPEATS_SHOWN) {
      this.repeats.shown++;
      return false;
    }
    this.repeats.hidden++;
    return true;
  }

  /** Ends a run of failures with one code: says how many were not shown; `next` starts the next run. */
  private flushRepeats(next?: string): void {
    const { code, hidden } = this.repeats;
    if (next !== undefined && next === code) return;
    if (hidden > 0) {
      const text = `  … and ${hidden} more failures with ${printable(code)} (not shown; --json lists each one)`;
      if (this.mode === 'tty') this.above(text);
      else process.stderr.write(`${text}\n`);
    }
    this.repeats = { code: next ?? '', shown: next === undefined ? 0 : 1, hidden: 0 };
  }

  /** A planned action of a dry run: one `restore_action` line with --json, else one text line per key. */
  private action(e: Extract<EngineEvent, { type: 'action' }>): void {
    if (this.mode === 'json') this.line(process.stdout, { message_type: 'restore_action', ...omitType(e) });
    else if (this.mode !== 'quiet') this.info(`would ${(e.replaces === true ? 'replace' : e.action).padEnd(14)} ${printable(`${e.bucket}/${e.key}`)} (${formatBytes(e.size)})`);
  }

  /**
   * A warning that --quiet prints too: about what a cron job relies on beside the command's own
   * work (the metrics file), which nobody would notice otherwise.
   */
  warnAlways(message: string): void {
    if (this.mode === 'quiet') process.stderr.write(`warning: ${printable(message)}\n`);
    else this.event({ type: 'warning', message });
  }

  /** Human text for people (not printed with --json or --quiet). */
  info(text: string): void {
    this.flushRepeats();
    this.stopBar();
    if (this.mode === 'tty' || this.mode === 'plain') process.stdout.write(lineOf(text));
  }

  /** The final result: a JSON summary line, or the human text. */
  summary(data: Record<string, unknown>, text: string): void {
    this.flushRepeats();
    this.stopBar();
    if (this.mode === 'json') this.line(process.stdout, { message_type: 'summary', ...data });
    else if (this.mode !== 'quiet') process.stdout.write(lineOf(text));
  }

  /**
   * The answer of a command that is asked something (`key list`, `policy show`, `cost`, `catalog
   * info`): a JSON summary line, or the human text, also under --quiet (a cron job that asks
   * wants the answer, as `runs --quiet` prints its table).
   */
  answer(data: Record<string, unknown>, text: string): void {
    if (this.mode === 'quiet') this.data(null, text);
    else this.summary(data, text);
  }

  /** Machine-readable data (`--json`) or a table for people (already printable: table() or calendar colours). */
  data(message: JsonMessage | null, text: string): void {
    this.flushRepeats();
    this.stopBar();
    if (this.mode === 'json') {
      // Every --json line is a message with a type (README); text-only output has none.
      if (message !== null) this.line(process.stdout, message);
    }
    else process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }

  /** Prints a fatal error in one line (plus a hint) and returns its exit code. */
  fatal(err: unknown): number {
    this.flushRepeats();
    this.stopBar();
    const code = err instanceof LakeguardError ? err.exitCode : ExitCode.error;
    const message = err instanceof Error ? err.message : String(err);
    const hint = err instanceof LakeguardError ? err.hint : undefined;
    if (this.mode === 'json') {
      this.line(process.stderr, { message_type: 'exit_error', code, message, ...(hint === undefined ? {} : { hint }) });
    } else {
      process.stderr.write(`lakeguard: ${printableLines(message)}\n${hint === undefined ? '' : `  hint: ${printable(hint)}\n`}`);
      if (!(err instanceof LakeguardError) && err instanceof Error && process.env.LAKEGUARD_DEBUG) process.stderr.write(`${err.stack}\n`);
    }
    return code;
  }

  close(): void {
    this.flushRepeats();
    this.stopBar();
  }

  private line(stream: NodeJS.WriteStream, value: unknown): void {
    stream.write(JSON.stringify(value) + '\n');
  }

  private progress(e: Extract<EngineEvent, { type: 'progress' }>): void {
    if (this.bar === null || this.barPhase !== e.phase) {
      this.stopBar();
      this.barPhase = e.phase;
      const cliProgress = loadCliProgress();
      this.bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: e.total === undefined ? `${e.phase} {value} objects | {size} | {failed} failed` : `${e.phase} [{bar}] {value}/{total} | {size} | {failed} failed`,
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(e.total ?? 0, 0, { size: '0 B', failed: 0 });
    }
    if (e.total !== undefined) this.bar.setTotal(e.total);
    this.bar.update(e.done, { size: formatBytes(e.bytes), failed: e.failed });
  }

  private above(text: string): void {
    if (this.bar !== null) {
      process.stderr.write('\r\x1b[K');
    }
    process.stderr.write(text + '\n');
  }

  private stopBar(): void {
    if (this.bar !== null) {
      this.bar.stop();
      this.bar = null;
    }
  }
}

/** Failure lines in a row with one error code printed before the rest are counted in one line (text output; --json lists each). */
export const REPEATS_SHOWN = 10;

function failureLine(e: Extract<EngineEvent, { type: 'failure' }>): string {
  return `failed: ${printable(`${e.bucket}/${e.key}`)}: ${printable(e.message)}`;
}

/** Human text as printed: printable, ending in one newline. */
function lineOf(text: string): string {
  const safe = printableLines(text);
  return safe.endsWith('\n') ? safe : safe + '\n';
}

function omitType<T extends { type: string }>(e: T): Omit<T, 'type'> {
  const { type: _type, ...rest } = e;
  return rest;
}
