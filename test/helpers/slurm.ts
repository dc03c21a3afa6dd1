// A real job scheduler for the scale-out tests: a private one-node Slurm cluster started by
// scripts/slurm.sh in a temp directory (installing slurm-wlm and munge with apt-get on a fresh
// machine). Start it once per test file (beforeAll) and ALWAYS stop it in afterAll: its daemons
// outlive the test process otherwise.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/slurm.sh', import.meta.url));
// A first start on a fresh machine apt-get installs Slurm and munge (~30 s, more on a slow mirror).
const START_TIMEOUT_MS = 5 * 60_000;

/** One array task as Slurm reports it once the job has left the queue. */
export interface SlurmTask {
  /** SLURM_ARRAY_TASK_ID. */
  index: number;
  /** COMPLETED, FAILED, CANCELLED, ... */
  state: string;
  /** The batch script's exit code (the signal's number is in `signal`). */
  exitCode: number;
  signal: number;
}

export interface SlurmCluster {
  /** The cluster's directory: slurm.conf, state, spool, logs, PID files. */
  dir: string;
  /** What every Slurm command needs in its environment to find this cluster. */
  env: { SLURM_CONF: string };
  /**
   * Submits a shell script as an array job (`sbatch --array=<array>`) with exactly `env` (plus
   * PATH and SLURM_CONF; Slurm adds its SLURM_* variables) and returns the job id. Each task's
   * stdout and stderr go to `<output dir>/task-<index>.out`.
   */
  submitArray(script: string, opts: { array: string; outputDir: string; env?: Record<string, string> }): Promise<string>;
  /** Waits until the job has left the queue, then returns its tasks sorted by index. */
  waitForJob(jobId: string, timeoutMs?: number): Promise<SlurmTask[]>;
  /** Stops the cluster's daemons (cancelling its jobs) and deletes its directory. */
  stop(): Promise<void>;
}

/** Starts a private one-node cluster in a fresh temp directory. */
export async function startSlurm(): Promise<SlurmCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'lakeguard-slurm-'));
  try {
    await run('bash', [SCRIPT, 'start', dir], { timeout: START_TIMEOUT_MS });
  } catch (err) {
    await run('bash', [SCRIPT, 'stop', dir]).catch(() => undefined);
    throw new Error(`scripts/slurm.sh start ${dir} failed: ${(err as { stderr?: string }).stderr ?? String(err)}`);
  }
  const env = { SLURM_CONF: join(dir, 'slurm.conf') };
  const slurm = (cmd: string, args: string[], extraEnv: Record<string, string> = {}) =>
    run(cmd, args, { env: { PATH: process.env.PATH, ...extraEnv, ...env }, timeout: 60_000 });

  return {
    dir,
    env,
    async submitArray(script, opts) {
      const file = join(dir, `job-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.sh`);
      writeFileSync(file, script.startsWith('#!') ? script : `#!/bin/sh\n${script}`, { mode: 0o755 });
      const { stdout } = await slurm(
        'sbatch',
        ['--parsable', `--array=${opts.array}`, '--export=ALL', `--output=${join(opts.outputDir, 'task-%a.out')}`, file],
        opts.env,
      );
      // --parsable prints "<job id>[;<cluster>]".
      return stdout.trim().split(';')[0]!;
    },
    async waitForJob(jobId, timeoutMs = 240_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { stdout } = await slurm('squeue', ['-h', '-j', jobId, '-o', '%i']).catch(() => ({ stdout: '' }));
        if (stdout.trim() === '') break;
        if (Date.now() > deadline) throw new Error(`slurm job ${jobId} still queued or running after ${timeoutMs} ms:\n${stdout}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      // Finished jobs stay known to slurmctld for MinJobAge (300 s by default).
      const { stdout } = await slurm('scontrol', ['show', 'job', jobId, '-o']);
      return stdout
        .split('\n')
        .filter((l) => l.includes('ArrayTaskId='))
        .map((line) => {
          const field = (name: string) => new RegExp(`(?:^| )${name}=(\\S*)`).exec(line)?.[1] ?? '';
          const [exitCode, signal] = field('ExitCode').split(':').map(Number);
          return { index: Number(field('ArrayTaskId')), state: field('JobState'), exitCode: exitCode ?? -1, signal: signal ?? 0 };
        })
        .sort((a, b) => a.index - b.index);
    },
    async stop() {
      try {
        await run('bash', [SCRIPT, 'stop', dir], { timeout: 60_000 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
