// Child processes of the bench: every tool under test runs under `/usr/bin/time -v` (peak RSS
// from the kernel's rusage of the child), with stdout/stderr captured to files, timed from
// spawn to exit. Missing tools are installed with apt-get, as scripts/s3-server.sh does.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export function haveCommand(name) {
  return spawnSync('bash', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** Installs Debian packages (apt-get, only when a command is missing). */
export function ensureCommands(pairs, log) {
  const missing = pairs.filter(([cmd]) => !(cmd.startsWith('/') ? existsSync(cmd) : haveCommand(cmd)));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))];
  log(`installing ${pkgs.join(', ')} with apt-get (missing: ${missing.map(([c]) => c).join(', ')})`);
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const run = (args) => execFileSync(sudo[0] ?? args[0], sudo.length ? args : args.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  run(['apt-get', 'update']);
  run(['apt-get', 'install', '-y', '--no-install-recommends', ...pkgs]);
}

function parseTimeV(text) {
  const num = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : null;
  };
  return {
    peakRssKiB: num(/Maximum resident set size \(kbytes\): (\d+)/),
    userS: num(/User time \(seconds\): ([\d.]+)/),
    sysS: num(/System time \(seconds\): ([\d.]+)/),
  };
}

/**
 * CPU seconds (user + system) the S3 server's daemons (radosgw, ceph-osd, ceph-mon) have used so
 * far, from /proc; null where there is no such process. The server shares the two cores with
 * the tool under test: what it burns per request bounds every tool's throughput.
 */
export function serverCpuSeconds() {
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  let found = false;
  let pids = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      if (!/^(radosgw|ceph-osd|ceph-mon)$/.test(comm)) continue;
      const fields = stat.slice(close + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / tick; // utime, stime
      found = true;
    } catch {
      // the process ended meanwhile
    }
  }
  return found ? total : null;
}

/**
 * Runs `cmd args` under /usr/bin/time -v. Returns {code, wallMs, peakRssKiB, userS, sysS,
 * stdout, stderr}. Output goes to files under workDir (a 100k-object run can print a lot).
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv, cwd?: string, workDir: string, name: string, timeoutMs?: number }} options
 */
export async function runMeasured(cmd, args, { env, cwd, workDir, name, timeoutMs = 4 * 3600_000 }) {
  const server0 = serverCpuSeconds();
  const base = join(workDir, name.replace(/[^a-zA-Z0-9_.-]+/g, '_'));
  const outFile = `${base}.stdout`;
  const errFile = `${base}.stderr`;
  const timeFile = `${base}.time`;
  const out = openSync(outFile, 'w');
  const err = openSync(errFile, 'w');
  const t0 = performance.now();
  const code = await new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-v', '-o', timeFile, cmd, ...args], { env, cwd, stdio: ['ignore', out, err] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (c, signal) => {
      clearTimeout(timer);
      resolve(c ?? (signal ? 128 : -1));
    });
  });
  const wallMs = performance.now() - t0;
  const server1 = serverCpuSeconds();
  const serverCpuS = server0 === null || server1 === null ? null : Math.round((server1 - server0) * 100) / 100;
  closeSync(out);
  closeSync(err);
  const timeText = existsSync(timeFile) ? readFileSync(timeFile, 'utf8') : '';
  const result = { code, wallMs, serverCpuS, ...parseTimeV(timeText), stdout: readFileSync(outFile, 'utf8'), stderr: readFileSync(errFile, 'utf8') };
  for (const f of [outFile, errFile, timeFile]) rmSync(f, { force: true });
  return result;
}

/** The last JSON line of a tool's stdout (our tools print exactly one). */
export function lastJson(stdout) {
  const lines = stdout.split('\n').filter((l) => l.startsWith('{'));
  if (lines.length === 0) throw new Error(`no JSON in output:\n${stdout.slice(-2000)}`);
  return JSON.parse(lines[lines.length - 1]);
}
