#!/usr/bin/env bash
# A real job scheduler for lakeguard's scale-out tests: a private one-node Slurm cluster
# (Debian's slurm-wlm, authenticated by munge) whose configuration, state, spool, logs and
# PID files all live in one directory, so a test can start and stop exactly its own.
#
# Usage: scripts/slurm.sh install | start DIR | stop DIR | status DIR
#
#   install     Installs slurm-wlm and munge with apt-get when a command is missing, and
#               creates the munge key (/etc/munge/munge.key) when absent. Idempotent.
#   start DIR   Runs `install`, makes sure munged answers (starts it as the munge user when
#               not), writes DIR/slurm.conf, starts slurmctld and slurmd with their PID files
#               in DIR and waits until `sinfo` shows the node idle. Prints
#               `export SLURM_CONF=DIR/slurm.conf` on stdout (every Slurm command finds the
#               cluster through it), progress on stderr. Idempotent: a cluster already running
#               in DIR is reused.
#   stop DIR    Cancels the cluster's jobs, then ends ITS slurmd and slurmctld (the PIDs in DIR,
#               checked against their command line naming DIR's slurm.conf). munged is left
#               running: it is the machine's authentication service, shared by every cluster on
#               it. DIR itself is the caller's; it is kept (logs for a post-mortem).
#   status DIR  Prints running/stopped; exit 0 when the node answers, 3 when not.
#
# Several clusters can run at once (each test run its own): start picks a free pair of
# ports for slurmctld and slurmd, serialised by a machine-wide lock.
#
# Needs root (slurmd starts jobs as the submitting user; munged runs as the munge user);
# runs the privileged steps through sudo when not root. Facts behind the settings:
# shared/ENGINES-NOTES.md.
set -euo pipefail

TIMEOUT="${LAKEGUARD_SLURM_TIMEOUT:-60}"
LOCK_FILE="${TMPDIR:-/tmp}/lakeguard-slurm.lock"
MUNGE_KEY=/etc/munge/munge.key
MUNGE_RUN=/run/munge

log() { printf '[slurm +%ss] %s\n' "$SECONDS" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=()
[[ "$(id -u)" == 0 ]] || SUDO=(sudo)

# True while the process exists and is not a zombie.
alive() { [[ -r "/proc/$1/stat" ]] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# True when something accepts TCP connections on the port.
port_busy() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

munge_works() { munge -n 2>/dev/null | unmunge 2>/dev/null | grep -q 'STATUS: *Success'; }

cmd_install() {
  local missing=0 cmd
  for cmd in slurmctld slurmd sbatch sinfo squeue scancel munged munge unmunge; do
    command -v "$cmd" >/dev/null || missing=1
  done
  if ((missing)); then
    log "Slurm or munge is not installed; installing slurm-wlm and munge with apt-get"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    # Without recommends: slurm-wlm's Depends (slurmctld, slurmd, slurm-client and the basic
    # plugins) are all a one-node cluster needs; the recommended plugins double the download.
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      slurm-wlm munge >&2
  fi
  if ! "${SUDO[@]}" test -s "$MUNGE_KEY"; then
    log "creating the munge key $MUNGE_KEY"
    "${SUDO[@]}" install -d -o munge -g munge -m 700 "$(dirname "$MUNGE_KEY")"
    "${SUDO[@]}" sh -c "umask 077 && dd if=/dev/urandom of='$MUNGE_KEY' bs=1024 count=1 2>/dev/null"
    "${SUDO[@]}" chown munge:munge "$MUNGE_KEY"
    "${SUDO[@]}" chmod 400 "$MUNGE_KEY"
  fi
}

ensure_munged() {
  munge_works && return
  log "starting munged as the munge user"
  "${SUDO[@]}" install -d -o munge -g munge -m 755 "$MUNGE_RUN"
  "${SUDO[@]}" su -s /bin/sh munge -c /usr/sbin/munged </dev/null >&2
  local deadline=$((SECONDS + 10))
  until munge_works; do
    ((SECONDS < deadline)) || die "munged does not answer (munge -n | unmunge); see /var/log/munge/munged.log"
    sleep 0.2
  done
}

# The cluster's files, all under DIR.
set_paths() {
  [[ -n "${1:-}" ]] || die "usage: $0 start|stop|status DIR"
  [[ "${2:-}" == create ]] && mkdir -p "$1"
  [[ -d "$1" ]] || { DIR="$1"; CONF="$1/slurm.conf"; NODE="$(hostname -s)"; return; }
  DIR="$(cd "$1" && pwd)"
  CONF="$DIR/slurm.conf"
  NODE="$(hostname -s)"
  export SLURM_CONF="$CONF"
}

# PID of one of our daemons (slurmctld, slurmd), if its PID file names a live process whose
# command line still names OUR conf (a PID could have been reused after a crash).
live_pid() {
  local f="$DIR/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(<"$f")"
  [[ -n "$pid" ]] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-f $CONF" || return 1
  echo "$pid"
}

node_state() { sinfo -h -n "$NODE" -o '%t' 2>/dev/null | head -n 1; }

# Two consecutive free ports from 6817 (Slurm's default) upward, for slurmctld and slurmd.
free_ports() {
  local p
  for ((p = 6817; p < 7017; p += 2)); do
    if ! port_busy "$p" && ! port_busy $((p + 1)); then
      echo "$p"
      return
    fi
  done
  die "no two free ports between 6817 and 7017"
}

write_conf() {
  local port="$1" cluster cpus
  # Slurm wants lower-case cluster names; one per directory, so runs never share state.
  cluster="lg$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)"
  cpus="$(nproc)"
  mkdir -p "$DIR"/{state,spool,log}
  cat >"$CONF" <<EOF
# Generated by lakeguard scripts/slurm.sh: a private one-node test cluster.
ClusterName=$cluster
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
# No cgroups in a container: track job processes through /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
# No mail server here; the default /bin/mail is missing and every start logs an error.
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# A node that went down (e.g. this machine rebooted) comes back when its slurmd registers.
ReturnToService=2
# Launch array tasks as soon as CPUs are free (the defaults delay each launch by seconds).
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=main Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

show_logs() {
  local f
  for f in "$DIR"/log/*.log; do
    [[ -s "$f" ]] || continue
    log "---- tail of $f"
    tail -n 15 "$f" >&2 || true
  done
}

cmd_start() {
  set_paths "${1:-}" create
  if live_pid slurmctld >/dev/null && live_pid slurmd >/dev/null && [[ "$(node_state)" == idle* ]]; then
    log "a cluster already runs in $DIR; reusing it"
    echo "export SLURM_CONF=$CONF"
    return
  fi
  cmd_install
  ensure_munged
  # Port choice and daemon start under one lock: two starts at once must not pick one port.
  exec 9>"$LOCK_FILE"
  flock -w 120 9 || die "timed out waiting for the lock $LOCK_FILE"
  cmd_stop_daemons
  local port
  port="$(free_ports)"
  write_conf "$port"
  log "starting slurmctld (port $port) and slurmd (port $((port + 1))) for $DIR"
  # -i: ignore state from an earlier run in DIR. Both daemonise; without fd 9 so the lock
  # is not held for their whole life.
  "${SUDO[@]}" slurmctld -f "$CONF" -i 9>&- </dev/null >>"$DIR/log/start.out" 2>&1 || { show_logs; die "slurmctld did not start"; }
  "${SUDO[@]}" slurmd -f "$CONF" 9>&- </dev/null >>"$DIR/log/start.out" 2>&1 || { show_logs; die "slurmd did not start"; }
  local deadline=$((SECONDS + TIMEOUT)) state=""
  until [[ "$state" == idle* ]]; do
    if ((SECONDS >= deadline)); then
      show_logs
      cmd_stop_daemons
      die "node $NODE not idle after ${TIMEOUT}s (state: ${state:-none})"
    fi
    sleep 0.2
    state="$(node_state)"
  done
  exec 9>&-
  log "node $NODE idle; cluster ready (SLURM_CONF=$CONF)"
  echo "export SLURM_CONF=$CONF"
}

# SIGTERM our daemons, wait for them to exit, SIGKILL after 20 s.
cmd_stop_daemons() {
  local name pid pids=()
  for name in slurmd slurmctld; do
    if pid="$(live_pid "$name")"; then
      "${SUDO[@]}" kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  local deadline=$((SECONDS + 20)) killed=0
  for pid in "${pids[@]}"; do
    while alive "$pid"; do
      if ((SECONDS >= deadline && !killed)); then
        log "pid $pid did not exit on SIGTERM within 20 s; sending SIGKILL"
        "${SUDO[@]}" kill -KILL "$pid" 2>/dev/null || true
        killed=1
      fi
      sleep 0.05
    done
  done
  rm -f "$DIR/slurmd.pid" "$DIR/slurmctld.pid"
}

cmd_stop() {
  set_paths "${1:-}"
  if ! live_pid slurmctld >/dev/null && ! live_pid slurmd >/dev/null; then
    log "no cluster runs in $DIR"
    return
  fi
  # Jobs still running would outlive slurmd (their slurmstepd is detached): cancel them
  # first and give them a moment to end.
  if live_pid slurmctld >/dev/null; then
    scancel --full --quiet --partition=main 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while [[ -n "$(squeue -h -o %i 2>/dev/null)" ]] && ((SECONDS < deadline)); do sleep 0.2; done
  fi
  cmd_stop_daemons
  log "stopped the cluster in $DIR"
}

cmd_status() {
  set_paths "${1:-}"
  if live_pid slurmctld >/dev/null && live_pid slurmd >/dev/null && [[ -n "$(node_state)" ]]; then
    echo "running: node $NODE $(node_state) (SLURM_CONF=$CONF)"
    return 0
  fi
  echo "stopped: no cluster runs in $DIR"
  return 3
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  status) cmd_status "${2:-}" ;;
  *) echo "usage: $0 install | start DIR | stop DIR | status DIR" >&2; exit 2 ;;
esac
