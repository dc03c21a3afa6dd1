// vitest globalSetup of the `integration` project: make sure the real S3 server answers.
// An already running server (a developer's `npm run s3:start`, or CI's) is reused and left
// running; otherwise scripts/s3-server.sh boots one (and installs Ceph on a fresh machine),
// and the teardown stops it again, unless another test run still uses it (see leases
// below). LAKEGUARD_S3_KEEP_RUNNING=1 keeps a server we started (saves the ~7 s boot when
// re-running tests).
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/s3-server.sh', import.meta.url));
// A first run on a fresh machine apt-get installs Ceph (~30 s, more on a slow mirror).
const START_TIMEOUT_MS = 5 * 60_000;

/** True when anything answers HTTP at the endpoint (RGW answers `GET /` anonymously). */
function answers(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(endpoint, { method: 'GET', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function runScript(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // stdout carries only the `export ...` lines, which we don't need; progress and errors
    // (with log tails) come on stderr and go straight to the terminal.
    const child = spawn('bash', [SCRIPT, ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`bash ${SCRIPT} ${args.join(' ')} failed (${signal ?? `exit ${code}`})`));
    });
  });
}

/**
 * Leases: one empty file per test run (named by its pid) using the server, beside the
 * server's data directory (which `stop` deletes). Several test runs on one machine share
 * one server; the run that started it must not stop it under another run's feet.
 */
function leaseDir(env: NodeJS.ProcessEnv): string {
  return `${(env.LAKEGUARD_S3_DIR ?? '/tmp/lakeguard-s3').replace(/\/+$/, '')}.clients`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** PIDs of other live test runs holding a lease; stale leases are removed. */
function otherLeaseHolders(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync(dir)) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    if (isAlive(pid)) pids.push(pid);
    else rmSync(join(dir, name), { force: true });
  }
  return pids;
}

export default async function setup(): Promise<() => Promise<void>> {
  const env = process.env;
  const endpoint = env.LAKEGUARD_S3_ENDPOINT ?? `http://127.0.0.1:${env.LAKEGUARD_S3_PORT ?? '7480'}`;
  // Test workers are forked after global setup and inherit process.env: this is how they
  // learn the endpoint when it is not the default (test/helpers/s3-env.ts reads these).
  env.LAKEGUARD_S3_ENDPOINT = endpoint;

  const leases = leaseDir(env);
  const myLease = join(leases, String(process.pid));
  mkdirSync(leases, { recursive: true });
  writeFileSync(myLease, '');
  const release = () => rmSync(myLease, { force: true });

  if (await answers(endpoint)) return async () => release();

  const url = new URL(endpoint);
  if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') {
    throw new Error(`S3 endpoint ${endpoint} does not answer, and only a local one can be started`);
  }
  const port = url.port || '80';
  // If another run is booting it right now, the script waits for that and reuses it.
  await runScript(['start'], { ...env, LAKEGUARD_S3_PORT: port }, START_TIMEOUT_MS);
  return async () => {
    release();
    if (env.LAKEGUARD_S3_KEEP_RUNNING === '1') return;
    const others = otherLeaseHolders(leases);
    if (others.length > 0) {
      console.error(`[s3-global-setup] leaving the S3 server running: in use by pid ${others.join(', ')}`);
      return;
    }
    await runScript(['stop'], { ...env, LAKEGUARD_S3_PORT: port }, 60_000);
  };
}
