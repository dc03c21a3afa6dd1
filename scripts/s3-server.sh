#!/usr/bin/env bash
# A real S3 server for lakeguard's integration tests: a throw-away one-node Ceph cluster
# (1 monitor, 1 bluestore OSD on a sparse file, the RADOS Gateway) on 127.0.0.1.
#
# Usage: scripts/s3-server.sh start | stop [--keep] | status
#
#   start   Installs the Ceph packages if they are missing, boots a fresh cluster, creates
#           the two test users, warms the gateway up, and prints `export NAME=value` lines
#           (endpoint + fixed TEST keys) on stdout, so `eval "$(scripts/s3-server.sh start)"`
#           works; progress goes to stderr. Idempotent: if S3 already answers on the port it
#           only prints the lines. A stale data directory (daemons dead) is cleaned first.
#   stop    Ends only the daemons this script started (PIDs recorded in the data directory,
#           plus any process running one of our daemon command lines with THIS directory's
#           conf), waits for them to exit, then deletes the data directory. `--keep` keeps it (logs
#           for a post-mortem); the next `start` still wipes it: every start is a fresh,
#           empty cluster, which is simpler and more reproducible than restarting old data.
#   status  Prints running/stopped and the endpoint; exit 0 when running, 3 when not.
#
# start and stop of one data directory are serialised with flock on "<dir>.lock", so two
# test runs starting at once share one cluster instead of booting two into one directory.
#
# Environment (defaults in brackets):
#   LAKEGUARD_S3_DIR [/tmp/lakeguard-s3]   everything lives here: conf, keyring, run dir,
#                                          admin sockets, logs, PIDs, the OSD's block file
#   LAKEGUARD_S3_PORT [7480]               S3 (radosgw beast frontend)
#   LAKEGUARD_S3_MON_PORT [7481]           Ceph monitor (msgr v2 only)
#   LAKEGUARD_S3_ACCESS_KEY / LAKEGUARD_S3_SECRET_KEY        user `lakeguard-test`
#   LAKEGUARD_S3_OTHER_ACCESS_KEY / LAKEGUARD_S3_OTHER_SECRET_KEY  user `lakeguard-other`
#   LAKEGUARD_S3_BLOCK_SIZE [20G]          size of the sparse OSD block file
#   LAKEGUARD_S3_TIMEOUT [180]             seconds to wait for the cluster to answer
#
# Facts and pitfalls behind the settings: shared/S3-SERVER-NOTES.md.
set -euo pipefail

DIR="${LAKEGUARD_S3_DIR:-/tmp/lakeguard-s3}"
PORT="${LAKEGUARD_S3_PORT:-7480}"
MON_PORT="${LAKEGUARD_S3_MON_PORT:-7481}"
ACCESS_KEY="${LAKEGUARD_S3_ACCESS_KEY:-LAKEGUARDTESTACCESSKEY}"
SECRET_KEY="${LAKEGUARD_S3_SECRET_KEY:-lakeguard-test-secret-key-0000000000000000}"
OTHER_ACCESS_KEY="${LAKEGUARD_S3_OTHER_ACCESS_KEY:-LAKEGUARDOTHERACCESSKEY}"
OTHER_SECRET_KEY="${LAKEGUARD_S3_OTHER_SECRET_KEY:-lakeguard-other-secret-key-000000000000000}"
BLOCK_SIZE="${LAKEGUARD_S3_BLOCK_SIZE:-20G}"
TIMEOUT="${LAKEGUARD_S3_TIMEOUT:-180}"
ENDPOINT="http://127.0.0.1:${PORT}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONF="$DIR/ceph.conf"
# Marks a directory as ours, so `stop` never deletes a directory it did not create.
MARKER="$DIR/.lakeguard-s3-server"
# Every ceph tool finds the cluster through this, never through /etc/ceph.
export CEPH_CONF="$CONF"

# Microseconds since the epoch, for sub-second timings (bash 5's EPOCHREALTIME).
now_us() { local t="${EPOCHREALTIME/[.,]/}"; echo "$t"; }
T0_US="$(now_us)"
# Seconds since the script started, one decimal.
elapsed() { local d=$((($(now_us) - T0_US) / 100000)); printf '%d.%d' $((d / 10)) $((d % 10)); }
log() { printf '[s3-server +%ss] %s\n' "$(elapsed)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# True when anything answers HTTP on the S3 port. Plain bash (/dev/tcp), because neither
# curl nor the repo's node_modules can be assumed on a fresh machine.
s3_answers() {
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
    head -c 12 <&3' _ "$PORT" 2>/dev/null | grep -q '^HTTP/1\.[01] '
}

print_env() {
  cat <<EOF
export LAKEGUARD_S3_ENDPOINT=$ENDPOINT
export LAKEGUARD_S3_ACCESS_KEY=$ACCESS_KEY
export LAKEGUARD_S3_SECRET_KEY=$SECRET_KEY
export LAKEGUARD_S3_OTHER_ACCESS_KEY=$OTHER_ACCESS_KEY
export LAKEGUARD_S3_OTHER_SECRET_KEY=$OTHER_SECRET_KEY
EOF
}

# PID of a daemon we recorded, if that process is still alive and still ours: the PID could
# have been reused by an unrelated process after a crash or reboot, so check its command line
# names our conf file.
live_pid() {
  local f="$DIR/pids/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(<"$f")"
  [[ -n "$pid" ]] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CONF" || return 1
  echo "$pid"
}

# True while the process exists and is not a zombie (kill -0 succeeds on zombies, and our
# daemons are reparented once the starting script exits, so they may linger unreaped).
alive() { [[ -r "/proc/$1/stat" ]] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# PIDs of one of our daemons (mon, osd, radosgw): the recorded one, plus any process that
# runs exactly that daemon's command line with OUR conf file, as spawned below. The
# latter covers a PID file lost or overwritten (e.g. by a start that crashed half-way),
# which would otherwise leave a daemon holding our ports forever. Nothing else matches.
daemon_pids() {
  local name="$1" bin f pid args
  case "$name" in mon) bin=ceph-mon ;; osd) bin=ceph-osd ;; *) bin=radosgw ;; esac
  live_pid "$name" || true
  for f in /proc/[0-9]*/cmdline; do
    pid="${f#/proc/}"
    pid="${pid%/cmdline}"
    args="$({ tr '\0' ' ' <"$f"; } 2>/dev/null)" || continue # it may just have exited
    [[ "$args" == "$bin "*" -f -c $CONF " ]] && echo "$pid"
  done | sort -u
}

# Send a signal to our daemons named in $2.. and wait for them to exit (not our children,
# so `wait` can't be used); SIGKILL whatever is still there after 20 s.
signal_and_wait() {
  local sig="$1" name pid pids=()
  shift
  for name in "$@"; do
    for pid in $(daemon_pids "$name"); do
      kill "-$sig" "$pid" 2>/dev/null || true
      pids+=("$pid")
    done
  done
  local deadline=$((SECONDS + 20)) killed=0
  for pid in "${pids[@]}"; do
    while alive "$pid"; do
      if ((SECONDS >= deadline && !killed)); then
        log "pid $pid did not exit on SIG$sig within 20 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        killed=1
      fi
      sleep 0.05
    done
  done
}

# Stop the daemons. When the data is about to be deleted anyway, SIGKILL: instant, and
# nothing we keep is lost. Otherwise shut down cleanly, one at a time from the top
# (measured: radosgw hangs on SIGTERM once the OSD is gone, and an OSD that outlives its
# monitor waits 5 s to report its shutdown), ~5 s in all.
kill_daemons() {
  if [[ "${1:-}" == graceful ]]; then
    signal_and_wait TERM radosgw
    signal_and_wait TERM osd
    signal_and_wait TERM mon
  else
    signal_and_wait KILL radosgw osd mon
  fi
  rm -f "$DIR"/pids/*.pid 2>/dev/null || true
}

wipe_dir() {
  if [[ -e "$DIR" ]]; then
    [[ -f "$MARKER" ]] || die "$DIR exists but was not created by this script; refusing to delete it"
    rm -rf "$DIR"
  fi
}

show_logs() {
  local f
  for f in "$DIR"/log/*; do
    [[ -s "$f" ]] || continue
    log "---- tail of $f"
    tail -n 15 "$f" >&2 || true
  done
}

# EXIT trap while `start` runs: on failure show the logs and end the daemons already
# started, keeping the directory for a post-mortem (the next start wipes it).
start_failed() {
  local rc=$?
  ((rc == 0)) && return
  show_logs
  kill_daemons
  log "start FAILED (exit $rc); logs kept in $DIR/log"
}

# True when something accepts TCP connections on the port.
port_busy() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

ensure_packages() {
  if command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null \
     && command -v radosgw-admin >/dev/null && command -v monmaptool >/dev/null; then
    return
  fi
  log "Ceph is not installed; installing it with apt-get (about 30 s, ~315 MiB)"
  local sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    radosgw ceph-mon ceph-osd ceph-common >&2
}

write_conf() {
  local fsid="$1"
  cat >"$CONF" <<EOF
# Generated by lakeguard scripts/s3-server.sh: a throw-away one-node test cluster.
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
# msgr v2 only: one port, and nothing listens on the legacy 6789.
ms bind msgr1 = false
ms bind msgr2 = true
# A test cluster on loopback needs no cephx.
auth cluster required = none
auth service required = none
auth client required = none
keyring = $DIR/keyring
# Everything under the data directory, nothing in /var or /etc.
run dir = $DIR/run
# Admin sockets for the daemons only: short-lived CLI clients would all fight over
# client.admin.asok ("File exists" noise).
admin socket =
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
crash dir = $DIR/crash
# One OSD: pools of size 1, replicas chosen per OSD not per host, few PGs, no autoscaler
# (there is no mgr to run it anyway).
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
# CI disks can be fuller than a mon likes by default; this cluster holds test data only.
mon data avail crit = 1
mon data avail warn = 2
# Without cephx there is no global_id to reclaim; silence the resulting health warning.
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false

[mon]
admin socket = $DIR/run/\$name.asok
mon data = $DIR/mon/\$cluster-\$id
mon allow pool delete = true
# The mon batches map changes for up to 1 s by default; each pool the gateway creates and
# the OSD's boot wait on such a commit, so a short interval makes boot several seconds faster.
paxos propose interval = 0.1
paxos min wait = 0.01

[osd]
admin socket = $DIR/run/\$name.asok
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = bluestore
# bluestore on a sparse file: only written data takes disk space.
bluestore block path = $DIR/osd/block
bluestore block create = true
bluestore block size = $BLOCK_SIZE
# Cap the cache (the default autotunes towards a 4 GiB memory target).
bluestore cache autotune = false
bluestore cache size = 268435456
osd memory target = 1073741824

[client]
# Clients prefer the "secure" mode towards the mon (default "secure crc"), which needs
# cephx session keys; without cephx radosgw then loops on
# "get_initial_auth_request returned -13". Prefer crc.
ms mon client mode = crc secure

[client.rgw.lakeguard]
admin socket = $DIR/run/\$name.asok
# tcp_nodelay: without it, Nagle's algorithm meets delayed ACKs and every GET of an object
# under ~64 KiB takes ~45 ms instead of ~2.5 ms (measured here) - AWS S3 has no such stall.
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw data = $DIR/rgw
rgw enable ops log = false
# Server-side encryption over plain http is fine for tests. SSE-KMS (aws:kms) works with
# the fixed test key id "lakeguard-test-kms-key" through the built-in "testing" backend
# (a static key table; never for real data).
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = lakeguard-test-kms-key=bGFrZWd1YXJkLXRlc3Qta21zLWtleS0zMi1ieXRlcyE=
EOF
}

# Start a daemon in the foreground (-f), in the background of this script; stdin from
# /dev/null and output to a file so it never holds the caller's pipes open (a test runner
# that ran `start` would otherwise wait for EOF forever), and without the lock's fd 9 (or
# the daemon would hold the lock for its whole life).
spawn() {
  local name="$1"; shift
  "$@" -f -c "$CONF" </dev/null >>"$DIR/log/$name.out" 2>&1 9>&- &
  echo $! >"$DIR/pids/$name.pid"
  # Not a job of this shell any more: no "Killed" notices when a failed start ends it.
  disown
}

# Retry a check until it succeeds; give up after $TIMEOUT s since the script began, or as
# soon as one of our daemons has died (the EXIT trap then shows the logs).
wait_for() {
  local what="$1"; shift
  until "$@" >/dev/null 2>&1; do
    if ((($(now_us) - T0_US) / 1000000 >= TIMEOUT)); then
      log "timed out after ${TIMEOUT}s waiting for $what"
      exit 1
    fi
    local name
    for name in mon osd radosgw; do
      if [[ -f "$DIR/pids/$name.pid" ]] && ! live_pid "$name" >/dev/null; then
        log "$name exited while waiting for $what"
        exit 1
      fi
    done
    sleep 0.3
  done
}

osd_up() { ceph --connect-timeout 5 osd stat 2>/dev/null | grep -q ' 1 up'; }

# Idempotent and retried: a user that already exists with our access key counts as
# created (so a retry after a half-failed attempt, e.g. a RADOS timeout while the new
# pools peer, does not fail on "user exists").
create_user() {
  local uid="$1" ak="$2" sk="$3" try
  for try in 1 2 3 4 5; do
    radosgw-admin user create --uid "$uid" --display-name "$uid" --access-key "$ak" \
      --secret-key "$sk" --max-buckets 100000 >/dev/null 2>>"$DIR/log/radosgw-admin.out" && return 0
    radosgw-admin user info --uid "$uid" 2>>"$DIR/log/radosgw-admin.out" \
      | grep -qF "\"access_key\": \"$ak\"" && return 0
    log "creating user $uid failed (attempt $try); retrying"
    sleep 1
  done
  die "could not create user $uid (see $DIR/log/radosgw-admin.out)"
}

# Storage classes besides STANDARD, so a PUT with x-amz-storage-class (lakeguard's
# repository.storage_class) is accepted and recorded (HEAD answers it). All share the one data
# pool: RGW has no archive tier, the class is only a label here. Idempotent. The gateway reads
# its zone at start: a running one needs a restart to see classes added later.
STORAGE_CLASSES=(STANDARD_IA INTELLIGENT_TIERING GLACIER_IR GLACIER DEEP_ARCHIVE)
add_storage_classes() {
  local known sc
  known="$(timeout 60 radosgw-admin zonegroup placement list 2>>"$DIR/log/radosgw-admin.out")" || return 1
  for sc in "${STORAGE_CLASSES[@]}"; do
    grep -qF "\"$sc\"" <<<"$known" && continue
    radosgw-admin zonegroup placement add --rgw-zonegroup default --placement-id default-placement \
      --storage-class "$sc" >/dev/null 2>>"$DIR/log/radosgw-admin.out" \
      && radosgw-admin zone placement add --rgw-zone default --placement-id default-placement \
        --storage-class "$sc" --data-pool default.rgw.buckets.data >/dev/null 2>>"$DIR/log/radosgw-admin.out" \
      || return 1
    ADDED_STORAGE_CLASSES+=("$sc")
  done
}
ADDED_STORAGE_CLASSES=()

# The gateway creates its data pools lazily on the first CreateBucket / PutObject (~2 s
# each): pay that here once, not in the first test. Uses the repo's AWS SDK when installed.
warm_up() {
  if [[ ! -d "$REPO_ROOT/node_modules/@aws-sdk/client-s3" ]] || ! command -v node >/dev/null; then
    log "warm-up skipped (no node_modules/@aws-sdk/client-s3): the first bucket will be slow"
    return
  fi
  (cd "$REPO_ROOT" && ENDPOINT="$ENDPOINT" AK="$ACCESS_KEY" SK="$SECRET_KEY" \
    node --no-warnings --input-type=module -e '
      import { S3Client, CreateBucketCommand, PutObjectCommand, DeleteObjectCommand,
        DeleteBucketCommand } from "@aws-sdk/client-s3";
      const s3 = new S3Client({ endpoint: process.env.ENDPOINT, region: "us-east-1",
        forcePathStyle: true,
        credentials: { accessKeyId: process.env.AK, secretAccessKey: process.env.SK } });
      const Bucket = `lakeguard-warmup-${Date.now().toString(36)}`;
      await s3.send(new CreateBucketCommand({ Bucket }));
      await s3.send(new PutObjectCommand({ Bucket, Key: "warm-up", Body: "warm-up" }));
      await s3.send(new DeleteObjectCommand({ Bucket, Key: "warm-up" }));
      await s3.send(new DeleteBucketCommand({ Bucket }));
    ') >&2 || { log "warm-up failed"; exit 1; }
}

# Serialise start/stop of the same data directory: two test runs started at once (several
# developers, or parallel vitest invocations, on one machine) would otherwise both boot a
# cluster into the same directory and ports. The lock file sits beside the directory
# because the directory itself is deleted by `stop`.
lock() {
  exec 9>"${DIR%/}.lock"
  if ! flock -n 9; then
    log "waiting for another start/stop of $DIR to finish"
    flock -w 600 9 || die "timed out waiting for the lock ${DIR%/}.lock"
  fi
}

cmd_start() {
  lock
  if s3_answers; then
    log "S3 already answers at $ENDPOINT (data dir $DIR); nothing to do"
    # A server started by an older version of this script: add what it lacks, if it is ours.
    # Never fatal here: the server that answers may not be this data directory's cluster.
    if [[ -f "$CONF" ]]; then
      if ! add_storage_classes; then
        log "could not add the storage classes (see $DIR/log/radosgw-admin.out); tests of repository.storage_class will fail"
      elif ((${#ADDED_STORAGE_CLASSES[@]} > 0)); then
        log "added storage classes ${ADDED_STORAGE_CLASSES[*]}: restart the server (stop, then start) for its gateway to accept them"
      fi
    fi
    print_env
    return 0
  fi
  ensure_packages
  local t_boot
  t_boot="$(elapsed)"

  # A previous run that crashed or was stopped with --keep: clear it for a fresh cluster.
  if [[ -e "$DIR" ]]; then
    log "clearing stale data directory $DIR"
    kill_daemons
    wipe_dir
  fi
  local port
  for port in "$PORT" "$MON_PORT"; do
    ! port_busy "$port" || die "port $port is in use by another program (set LAKEGUARD_S3_PORT / LAKEGUARD_S3_MON_PORT)"
  done
  mkdir -p "$DIR"/{run,log,pids,mon,osd/ceph-0,rgw,crash}
  touch "$MARKER"
  trap start_failed EXIT

  local fsid osd_uuid
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  write_conf "$fsid"

  log "booting Ceph monitor on v2:127.0.0.1:$MON_PORT"
  # mkfs wants a mon. key even with auth none.
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
  ceph-mon -f -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" \
    >>"$DIR/log/mon.out" 2>&1 || die "ceph-mon --mkfs failed"
  spawn mon ceph-mon -i a

  log "creating the OSD (bluestore on a sparse $BLOCK_SIZE file)"
  wait_for "the monitor" ceph --connect-timeout 5 osd new "$osd_uuid" 0
  # -f: mkfs in this process (without it ceph-osd forks a child for the work).
  ceph-osd -f -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$DIR/log/osd.out" 2>&1 \
    || die "ceph-osd --mkfs failed"
  spawn osd ceph-osd -i 0
  log "OSD created; waiting for it to come up"
  wait_for "the OSD to come up" osd_up

  log "creating the test users"
  create_user lakeguard-test "$ACCESS_KEY" "$SECRET_KEY"
  create_user lakeguard-other "$OTHER_ACCESS_KEY" "$OTHER_SECRET_KEY"
  log "adding storage classes ${STORAGE_CLASSES[*]}"
  add_storage_classes || die "could not add the storage classes (see $DIR/log/radosgw-admin.out)"

  log "starting radosgw on $ENDPOINT"
  spawn radosgw radosgw -n client.rgw.lakeguard
  wait_for "S3 to answer at $ENDPOINT" s3_answers
  local t_answer
  t_answer="$(elapsed)"
  warm_up
  log "S3 answered after ${t_answer}s, warmed up after $(elapsed)s (package install took ${t_boot}s)"
  trap - EXIT
  print_env
}

cmd_stop() {
  lock
  local keep=0
  [[ "${1:-}" == "--keep" ]] && keep=1
  if [[ ! -e "$DIR" ]]; then
    log "not running (no $DIR)"
    return 0
  fi
  if ((keep)); then
    kill_daemons graceful
    log "stopped; kept $DIR"
  else
    kill_daemons
    wipe_dir
    log "stopped; removed $DIR"
  fi
}

cmd_status() {
  if s3_answers; then
    echo "running: $ENDPOINT (data dir $DIR)"
    return 0
  fi
  echo "stopped: nothing answers at $ENDPOINT"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  *) echo "usage: $0 start | stop [--keep] | status" >&2; exit 2 ;;
esac
