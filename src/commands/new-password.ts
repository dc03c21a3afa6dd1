/**
 * The new password of `key add` and `key passwd`: from --new-password-file, else
 * $LAKEGUARD_NEW_PASSWORD, else typed twice at a terminal (not echoed). Never from the policy,
 * never logged; an empty one is refused.
 */
import { ExitCode, InterruptedError, LakeguardError, UsageError } from '../errors.js';
import { readPasswordFile } from './context.js';

export const NEW_PASSWORD_ENV = 'LAKEGUARD_NEW_PASSWORD';

/** `command`: `key add` or `key passwd`, for the example in the hint. */
export async function readNewPassword(file: string | undefined, command: 'key add' | 'key passwd'): Promise<string> {
  let password: string;
  let source: string;
  if (file !== undefined) {
    source = `the password file ${file} (--new-password-file)`;
    password = readPasswordFile(file, '--new-password-file');
  } else if (process.env[NEW_PASSWORD_ENV] !== undefined) {
    source = NEW_PASSWORD_ENV;
    password = process.env[NEW_PASSWORD_ENV];
  } else if (process.stdin.isTTY === true && process.stderr.isTTY === true) {
    source = 'the terminal';
    password = await promptHidden('new password: ');
    if ((await promptHidden('repeat the new password: ')) !== password) throw new UsageError('the two new passwords differ; nothing was changed');
  } else {
    throw new LakeguardError('no new password: give --new-password-file, set LAKEGUARD_NEW_PASSWORD, or run at a terminal', {
      exitCode: ExitCode.wrongPassword,
      hint: `e.g. \`lakeguard ${command} --new-password-file /run/secrets/new-password\``,
    });
  }
  if (password === '') {
    throw new LakeguardError(`empty new password from ${source}: a password must not be empty`, { exitCode: ExitCode.wrongPassword, hint: `put the new password in ${source}` });
  }
  return password;
}

/** Reads one line from the terminal without echoing it (raw mode); Ctrl-C interrupts. */
function promptHidden(question: string): Promise<string> {
  const input = process.stdin;
  process.stderr.write(question);
  input.setRawMode(true);
  input.setEncoding('utf8');
  input.resume();
  return new Promise((resolve, reject) => {
    let typed: string[] = [];
    const finish = (err: Error | null): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (err === null) resolve(typed.join(''));
      else reject(err);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish(null);
        if (ch === '\u0003') return finish(new InterruptedError('interrupted at the password prompt; nothing was changed'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed.push(ch);
      }
    };
    input.on('data', onData);
  });
}
