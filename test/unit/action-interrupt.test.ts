// An interrupted command says which command was interrupted, whether SIGINT or SIGTERM came and
// whichever in-flight call saw the abort first (an AbortError says nothing more), exit 130.
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { action, outcome } from '../../src/commands/action.js';
import { ExitCode } from '../../src/errors.js';
import { capturingStderr } from '../helpers/stderr.js';

async function interrupted(signalName: 'SIGINT' | 'SIGTERM', failWith: (signal: AbortSignal) => Error): Promise<{ code: number; line: Record<string, unknown> }> {
  const program = new Command('lakeguard');
  const cmd = program.command('restore').option('--json');
  cmd.setOptionValue('json', true);
  const stderr = await capturingStderr(() =>
    action(async ({ signal }) => {
      const stopped = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(failWith(signal))));
      process.emit(signalName);
      await stopped;
    })({}, cmd),
  );
  return { code: outcome.code, line: JSON.parse(stderr.trim().split('\n').at(-1)!) as Record<string, unknown> };
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
