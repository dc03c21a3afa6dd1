// A `lakeguard serve --json` child process for integration tests: started on a free port, its
// listening message parsed, stopped by its own pid; and an S3 client signed for it.
import { S3Client } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(fileURLToPath(new URL('../..', import.meta.url)), 'bin/lakeguard');

/** Fixed serve credentials, so tests can sign without reading a generated pair. */
export const SERVE_KEYS = { LAKEGUARD_SERVE_ACCESS_KEY_ID: 'LGSERVETEST', LAKEGUARD_SERVE_SECRET_ACCESS_KEY: 'serve-test-secret-0123456789' };

/** A running `lakeguard serve --json`: its URL, its listening message and how to stop it. */
export interface Served {
  url: string;
  listening: Record<string, unknown>;
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts serve on 127.0.0.1 and a free port; resolves once it listens, rejects if it exits first. */
export function startServe(args: string[], env: Record<string, string>): Promise<Served> {
  // --expose-gc: as bin/lakeguard's shell line starts node (the heap pacer runs).
  const child = spawn(process.execPath, ['--expose-gc', BIN, 'serve', '--json', '--listen', '127.0.0.1:0', ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const line = stdout.split('\n').find((l) => l.includes('"message_type":"listening"'));
      if (line === undefined) return;
      const listening = JSON.parse(line) as Record<string, unknown>;
      resolve({
        url: listening.url as string,
        listening,
        child,
        stdout: () => stdout,
        stderr: () => stderr,
        stop: async () => {
          child.kill('SIGTERM');
          return exited;
        },
      });
    });
    void exited.then((code) => reject(new Error(`serve exited ${code} before listening:\n${stdout}\n${stderr}`)));
  });
}

/** An AWS SDK client of a serve endpoint (path style, SERVE_KEYS, no retries). */
export function serveClient(url: string): S3Client {
  return new S3Client({
    endpoint: url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: SERVE_KEYS.LAKEGUARD_SERVE_ACCESS_KEY_ID, secretAccessKey: SERVE_KEYS.LAKEGUARD_SERVE_SECRET_ACCESS_KEY },
    maxAttempts: 1,
  });
}
