import { vi } from 'vitest';

/** Runs `fn` with process.stderr captured (a command's one-line errors and warnings); returns what was written. */
export async function capturingStderr(fn: () => Promise<void>): Promise<string> {
  const written: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
  try {
    await fn();
  } finally {
    spy.mockRestore();
  }
  return written.join('');
}
