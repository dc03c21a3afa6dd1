// Preload (`node --require`) that writes, when the process exits, the CPU seconds of its main
// thread (from /proc/self/task/PID/stat, Linux) and of the whole process (process.cpuUsage) to the
// file named by LG_THREAD_CPU_OUT, as one JSON line. bench/tools/seed-dir.mjs passes it through
// LAKEGUARD_NODE_FLAGS: a seed's main-thread CPU is the bound of its encode threads' gain.
const { isMainThread } = require('node:worker_threads');
const { appendFileSync, readFileSync, readdirSync } = require('node:fs');

/** A thread's name and CPU seconds (utime + stime) from its /proc stat line. */
function threadCpu(tid) {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { name, s: (Number(f[11]) + Number(f[12])) / 100 }; // USER_HZ: 100 on Linux
}
const out = process.env.LG_THREAD_CPU_OUT;
if (isMainThread && out) {
  process.on('exit', () => {
    try {
      const mainS = threadCpu(process.pid).s;
      // The threads still alive at exit, CPU summed by name (encode threads that ended are gone).
      const byName = {};
      for (const tid of readdirSync('/proc/self/task')) {
        if (Number(tid) === process.pid) continue;
        const t = threadCpu(tid);
        byName[t.name] = Math.round(((byName[t.name] ?? 0) + t.s) * 100) / 100;
        if (process.env.LG_THREAD_CPU_EACH) byName[`${t.name}:${tid}`] = t.s;
      }
      const u = process.cpuUsage();
      appendFileSync(out, JSON.stringify({ mainS, processS: (u.user + u.system) / 1e6, otherThreads: byName }) + '\n');
    } catch {
      // not Linux, or /proc unreadable: no sample
    }
  });
}
