// An interrupted command says which command was interrupted, whether SIGINT or SIGTERM came and
// whichever in-flight call saw the abort first (an AbortError says nothing more), exit 130.
import { Command } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { action, outcome } from '../../src/commands/action.js';
import { ExitCode } from '../../src/errors.js';

async function interrupted(signalName: 'SIGINT' | 'SIGTERM', failWith: (signal: AbortSignal) => Error): Promise<{ code: number; line: Record<string, unknown> }> {
  const program = new Command('lakeguard');
  const cmd = program.command('restore').option('--json');
  cmd.setOptionValue('json', true);
  const written: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
  try {
    await action(async ({ signal }) => {
      const stopped = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(failWith(signal))));
      process.emit(signalName);
      await stopped;
    })({}, cmd);
  } finally {
    spy.mockRestore();
  }
  return { code: outcome.code, line: JSON.parse(written.join('').trim().split('\n').at(-1)!) as Record<string, unknown> };
}

describe('an interrupted command', () => {
  const abortError = () => Object.assign(new Error('This operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });

  it('names the command, the same for SIGINT and SIGTERM, when an in-flight call saw the abort', async () => {
    for (const name of ['SIGINT', 'SIGTERM'] as const) {
      const { code, line } = await interrupted(name, abortError);
      expect(code, name).toBe(ExitCode.interrupted);
      expect(line.message, name).toBe('restore interrupted');
    }
  });

  it('keeps what another error said', async () => {
    const { code, line } = await interrupted('SIGTERM', () => new Error('write EPIPE'));
    expect(code).toBe(ExitCode.interrupted);
    expect(line.message).toBe('restore interrupted (write EPIPE)');
  });
});
