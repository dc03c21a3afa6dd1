import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/lakeguard', import.meta.url));
const CRASH_CLI = fileURLToPath(new URL('./crash-cli.mjs', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as line-delimited JSON (with --json). */
  messages: Record<string, unknown>[];
}

/** Runs the real CLI as a user would, with only the environment given (plus PATH/HOME). */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, opts: RunOptions = {}): Promise<CliResult> {
  return runNode([BIN, ...args], env, opts);
}

/**
 * Runs the CLI through test/helpers/crash-cli.mjs, which SIGKILLs it just before its `n`-th
 * write (PUT or DELETE) to the repository; `code` is -1 when it was killed.
 */
export function runCliKilledBeforeWrite(n: number, args: string[], env: Record<string, string | undefined> = {}, opts: { timeoutMs?: number } = {}): Promise<CliResult> {
  return runNode([CRASH_CLI, String(n), ...args], env, opts);
}

/**
 * Runs the CLI through test/helpers/crash-cli.mjs, which SIGKILLs it as soon as its first pack
 * is in the repository (the PUT answered), before any index or manifest; `code` is -1 when it
 * was killed (it runs to its end when it writes no pack).
 */
export function runCliKilledAfterFirstPack(args: string[], env: Record<string, string | undefined> = {}, opts: { timeoutMs?: number } = {}): Promise<CliResult> {
  return runNode([CRASH_CLI, 'after-first-pack', ...args], env, opts);
}

interface RunOptions {
  timeoutMs?: number;
  cwd?: string;
  /** Called with everything written to stderr so far, on each write (to act when a line appears). */
  onStderr?: (stderr: string) => void;
}

/** Starts node as bin/lakeguard's shell line does (--expose-gc: the heap pacer runs). */
function runNode(nodeArgs: string[], env: Record<string, string | undefined>, opts: RunOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', ...nodeArgs], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      opts.onStderr?.(stderr);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 240_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const messages = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code: code ?? -1, stdout, stderr, messages });
    });
  });
}

export function summaryOf(result: CliResult): Record<string, any> {
  const summary = result.messages.findLast((m) => m.message_type === 'summary');
  if (summary === undefined) throw new Error(`no summary in output (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  return summary;
}

/** The --json messages of one type (e.g. the `run` lines of `runs --json`). */
export function messagesOf(result: CliResult, type: string): Record<string, any>[] {
  return result.messages.filter((m) => m.message_type === type);
}
