import { main } from '../../src/cli.js';
import type { CliResult } from './cli.js';

/**
 * The CLI through cli.ts's main() in this process (argument parsing, action wrapper, reporter and
 * exit code as bin/lakeguard runs them), without starting node: for tests that run dozens of
 * commands. `env` is added to the environment for the call.
 */
export async function inProcessCli(argv: string[], env: Record<string, string>): Promise<CliResult> {
  const saved = { env: { ...process.env }, out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
  let stdout = '';
  let stderr = '';
  Object.assign(process.env, env);
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  try {
    const code = await main(['node', 'lakeguard', ...argv]);
    return { code, stdout, stderr, messages: stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>) };
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    process.env = saved.env;
  }
}
