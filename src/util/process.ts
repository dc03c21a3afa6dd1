import { readFileSync, readlinkSync } from 'node:fs';

/** Whether a process of this host exists (a permission error still means it exists). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * The kernel's random id of this boot (Linux), or null where there is none: a process named in
 * a lock written during another boot is gone, whatever now runs under its pid.
 */
export function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/**
 * When a process started, in clock ticks since boot (Linux: field 22 of /proc/<pid>/stat), or
 * null when unknown: with the boot id it tells a process from a later one that reuses its pid.
 */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

let ownMachineId: string | null | undefined;

/**
 * This machine's id (systemd's /etc/machine-id, or D-Bus's copy), or null where there is none:
 * two machines given one hostname (cloned images, generic names) are still two machines, and a
 * pid or boot id of one says nothing about the other.
 */
export function machineId(): string | null {
  if (ownMachineId === undefined) {
    ownMachineId = null;
    for (const file of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
      try {
        const id = readFileSync(file, 'utf8').trim();
        if (/^[0-9a-f]{32}$/.test(id)) {
          ownMachineId = id;
          break;
        }
      } catch {
        // not there: try the next one
      }
    }
  }
  return ownMachineId;
}

let ownPidNamespace: string | null | undefined;

/**
 * This process's PID namespace (Linux: `pid:[4026531836]`), or null where unknown. Containers on
 * one host with host networking (AWS Batch on EC2 or EKS, `hostNetwork` pods) share the hostname
 * and boot id but each has pids of its own: a pid read from another namespace names nothing here.
 */
export function pidNamespace(): string | null {
  if (ownPidNamespace === undefined) {
    try {
      ownPidNamespace = readlinkSync('/proc/self/ns/pid');
    } catch {
      ownPidNamespace = null;
    }
  }
  return ownPidNamespace;
}

/**
 * Calls `hurry` on the next SIGINT or SIGTERM, once; returns what removes the listeners. For a
 * long-running command's stop: its grace (requests in flight, a run finishing) is cut short by a
 * second signal, and the command still ends its own way (locks released, exit 130). Without a
 * listener, Node's default would end the process at once, leaving its repository lock behind.
 */
export function onNextStopSignal(hurry: () => void): () => void {
  const once = (): void => {
    off();
    hurry();
  };
  const off = (): void => {
    process.off('SIGINT', once);
    process.off('SIGTERM', once);
  };
  process.on('SIGINT', once);
  process.on('SIGTERM', once);
  return off;
}
