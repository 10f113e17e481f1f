#!/bin/bash
# Start a one-node Son of Grid Engine cell on this machine, for pypoolparty's
# integration tests and benchmarks (Debian 12 packages, run as root).
#
#   sudo bash local_clusters/sge/start.sh
#
# Idempotent: on a fresh machine it installs gridengine-master, -exec and
# -client and configures the cell; when the cell already runs it only checks
# it. It ends with a test job and prints how long it took.
#
# Knobs (environment): SGE_QUEUE (all.q), SGE_SLOTS (number of CPUs),
# SGE_SKIP_TEST=1 (no test job).
#
# Root may own jobs here (min_uid/min_gid 0), so tests can run as root.
set -euo pipefail

STARTED=$EPOCHREALTIME
elapsed() { awk -v now="$EPOCHREALTIME" -v start="$STARTED" 'BEGIN {printf "%.1f", now - start}'; }
log() { printf '[sge start %5ss] %s\n' "$(elapsed)" "$*"; }

export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
# The /usr/bin/q* wrappers run util/arch on every call (~60 ms); call the
# binaries directly (~7 ms), they need SGE_ROOT and SGE_CELL.
export PATH=/usr/lib/gridengine:$PATH
export DEBIAN_FRONTEND=noninteractive
QUEUE=${SGE_QUEUE:-all.q}
SLOTS=${SGE_SLOTS:-$(nproc)}
HOST=$(hostname)
COMMON=$SGE_ROOT/$SGE_CELL/common
SPOOL=/var/spool/gridengine
PACKAGES=(gridengine-common gridengine-client gridengine-master gridengine-exec)
APT=(apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
APT_LOG=$(mktemp /tmp/sge-start-apt.XXXXXX.log)
WORK=$(mktemp -d /tmp/sge-start.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# --- host names --------------------------------------------------------------
# Grid Engine compares the host name a client claims with the reverse lookup
# of its address. Where 127.0.0.1 maps back to "localhost" but the host is
# called e.g. "vm", every client call is refused ("access denied"). SGE's own
# host_aliases file makes both names one host without touching /etc/hosts
# for the other schedulers on this machine.
getent hosts "$HOST" >/dev/null || echo "127.0.1.1 $HOST" >>/etc/hosts
address=$(getent hosts "$HOST" | awk '{print $1; exit}')
reverse=$(getent hosts "$address" | awk '{print $2; exit}')
mkdir -p "$COMMON"
names_changed=0
if [ -n "$reverse" ] && [ "$reverse" != "$HOST" ] \
    && [ "$(cat "$COMMON/host_aliases" 2>/dev/null)" != "$HOST $reverse" ]; then
  echo "$HOST $reverse" >"$COMMON/host_aliases"
  names_changed=1
fi
if [ "$(cat "$COMMON/act_qmaster" 2>/dev/null)" != "$HOST" ]; then
  echo "$HOST" >"$COMMON/act_qmaster"
  names_changed=1
fi

# --- packages ----------------------------------------------------------------
all_installed() {
  local package
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || return 1
  done
}
apt_install() { "${APT[@]}" install --no-install-recommends "$@" >>"$APT_LOG" 2>&1; }
if ! all_installed; then
  log "installing ${PACKAGES[*]}"
  # Answers to the packages' questions (the templates are shared by all four).
  debconf-set-selections <<EOF
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string $SGE_CELL
gridengine-common shared/gridenginemaster string $HOST
dma dma/mailname string $HOST
dma dma/relayhost string
EOF
  # gridengine-common needs a mailx, which needs a mail transport agent;
  # dma is a tiny one without a daemon (exim4 would be the default).
  mta=(dma)
  dpkg-query -W -f='${Status} ${Provides}\n' 2>/dev/null \
    | grep '^install ok installed' | grep -qw mail-transport-agent && mta=()
  if ! apt_install "${mta[@]}" "${PACKAGES[@]}"; then
    log "apt-get install failed; updating the package lists and trying again"
    "${APT[@]}" update >>"$APT_LOG" 2>&1
    apt_install "${mta[@]}" "${PACKAGES[@]}" || { tail -30 "$APT_LOG"; exit 1; }
  fi
  log "packages installed"
fi

# The master's postinst creates the spool database only on a first install
# with automatic configuration; create it if it is missing.
if [ ! -e "$SPOOL/spooldb/sge" ]; then
  log "creating the cluster spool"
  for dir in "$SPOOL/qmaster/job_scripts" "$SPOOL/spooldb" "$SPOOL/execd"; do
    mkdir -p "$dir"
  done
  [ -e "$COMMON/bootstrap" ] || cp /usr/share/gridengine/default-bootstrap "$COMMON/bootstrap"
  chown -R sgeadmin:sgeadmin "$SPOOL" "$SGE_ROOT"
  su -s /bin/sh sgeadmin -c \
    "/usr/share/gridengine/scripts/init_cluster $SGE_ROOT $SGE_CELL $SPOOL/spooldb sgeadmin"
fi
chown sgeadmin:sgeadmin "$COMMON/act_qmaster"

# --- daemons -----------------------------------------------------------------
# Daemons are found by their executable, not by pid files. One whose binary
# shows "(deleted)" was left behind by a package removal and must be replaced.
daemon_pids() {
  find /proc -mindepth 2 -maxdepth 2 -name exe -lname "/usr/lib/gridengine/sge_$1*" 2>/dev/null \
    | cut -d/ -f3
}
is_stale() {
  local pid
  for pid in $(daemon_pids "$1"); do
    readlink "/proc/$pid/exe" | grep -q deleted && return 0
  done
  return 1
}
stop_daemon() {
  local pids pid tries alive
  pids=$(daemon_pids "$1")
  [ -n "$pids" ] || return 0
  kill $pids 2>/dev/null || true
  for tries in $(seq 400); do # the qmaster takes ~10 s to exit
    alive=0
    for pid in $pids; do readlink "/proc/$pid/exe" >/dev/null 2>&1 && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  kill -9 $pids 2>/dev/null || true
}
# Every job inherits sge_execd's environment: start the daemons with a clean one.
start_daemon() {
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    SGE_ROOT="$SGE_ROOT" SGE_CELL="$SGE_CELL" "/usr/sbin/sge_$1"
}
wait_for() { # seconds command...
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

if [ -n "$(daemon_pids qmaster)" ] && { [ "$names_changed" = 1 ] || is_stale qmaster; }; then
  log "restarting sge_qmaster (host names changed or binary replaced; takes ~10 s)"
  stop_daemon qmaster
  echo "$HOST" >"$COMMON/act_qmaster"
fi
if [ -z "$(daemon_pids qmaster)" ]; then
  log "starting sge_qmaster"
  start_daemon qmaster
fi
wait_for 30 qconf -sh || {
  echo "sge_qmaster did not answer"
  tail -20 "$SPOOL/qmaster/messages"
  exit 1
}
log "sge_qmaster is up"

# --- configuration -------------------------------------------------------------
quiet_qconf() { # qconf reports success on stderr; show it only on failure
  local out
  out=$(qconf "$@" 2>&1) || { echo "qconf $*: $out" >&2; return 1; }
}
# Global configuration: root may own jobs; job shells are not login shells
# (a login shell would reset PATH from /etc/profile).
qconf -sconf global >"$WORK/global.before"
sed -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' \
  -e 's/^login_shells .*/login_shells none/' "$WORK/global.before" >"$WORK/global"
config_changed=0
if ! cmp -s <(tr -s ' ' <"$WORK/global.before") <(tr -s ' ' <"$WORK/global"); then
  (cd "$WORK" && quiet_qconf -Mconf global) # the file must be named after the config
  config_changed=1
  log "global configuration updated"
fi
# Scheduler: run every second instead of every 15 s, and also on each
# submission and job end.
qconf -ssconf >"$WORK/scheduler.before"
sed -e 's/^schedule_interval .*/schedule_interval 0:0:1/' \
  -e 's/^flush_submit_sec .*/flush_submit_sec 1/' \
  -e 's/^flush_finish_sec .*/flush_finish_sec 1/' "$WORK/scheduler.before" >"$WORK/scheduler"
if ! cmp -s <(tr -s ' ' <"$WORK/scheduler.before") <(tr -s ' ' <"$WORK/scheduler"); then
  quiet_qconf -Msconf "$WORK/scheduler"
  log "scheduler configuration updated"
fi
qconf -ss 2>/dev/null | grep -qx "$HOST" || quiet_qconf -as "$HOST"
if ! qconf -sel 2>/dev/null | grep -qx "$HOST"; then
  printf 'hostname %s\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\n' "$HOST" >"$WORK/exechost"
  printf 'xuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\n' >>"$WORK/exechost"
  printf 'report_variables NONE\n' >>"$WORK/exechost"
  quiet_qconf -Ae "$WORK/exechost"
fi
qconf -spl 2>/dev/null | grep -qx smp || quiet_qconf -Ap /usr/share/gridengine/util/resources/pe/smp
# The queue: no load thresholds (a busy shared machine would otherwise put it
# in alarm state and stop dispatching), the smp parallel environment, /bin/sh.
if qconf -sql 2>/dev/null | grep -qx "$QUEUE"; then
  qconf -sq "$QUEUE" >"$WORK/queue.before"
else
  qconf -sq >"$WORK/queue.before" # the template
fi
sed -e "s/^qname .*/qname $QUEUE/" -e "s/^hostlist .*/hostlist $HOST/" \
  -e "s/^slots .*/slots $SLOTS/" -e 's/^load_thresholds .*/load_thresholds NONE/' \
  -e 's/^pe_list .*/pe_list smp/' -e 's|^shell .*|shell /bin/sh|' \
  -e 's/^shell_start_mode .*/shell_start_mode posix_compliant/' \
  "$WORK/queue.before" >"$WORK/queue"
if ! qconf -sql 2>/dev/null | grep -qx "$QUEUE"; then
  quiet_qconf -Aq "$WORK/queue"
  log "queue $QUEUE created with $SLOTS slots"
elif ! cmp -s <(tr -s ' ' <"$WORK/queue.before") <(tr -s ' ' <"$WORK/queue"); then
  quiet_qconf -Mq "$WORK/queue"
  log "queue $QUEUE updated"
fi

# --- execution daemon ----------------------------------------------------------
# A running execd learns a new global configuration only seconds later; a job
# started meanwhile fails (e.g. "uid of user root (0) less than minimum").
if [ -n "$(daemon_pids execd)" ] && { [ "$config_changed" = 1 ] || is_stale execd; }; then
  log "restarting sge_execd (configuration changed or binary replaced)"
  stop_daemon execd
fi
if [ -z "$(daemon_pids execd)" ]; then
  log "starting sge_execd"
  start_daemon execd
fi
queue_is_ok() { # the queue instance exists and its state column is empty
  qstat -f -q "$QUEUE@$HOST" | awk -v q="$QUEUE@$HOST" '$1 == q && $6 == "" {ok = 1} END {exit !ok}'
}
wait_for 60 queue_is_ok || {
  echo "queue $QUEUE@$HOST is not usable"
  qstat -f
  exit 1
}
log "sge_execd is up, $QUEUE@$HOST has $SLOTS slots"

# --- test job ------------------------------------------------------------------
if [ "${SGE_SKIP_TEST:-0}" != 1 ]; then
  (cd "$WORK" && timeout 120 qsub -sync y -b y -cwd -N start_check hostname >"$WORK/qsub.out" 2>&1) || {
    cat "$WORK/qsub.out"
    echo "the test job failed"
    exit 1
  }
  [ "$(cat "$WORK"/start_check.o*)" = "$HOST" ] || { echo "the test job wrote no output"; exit 1; }
  log "test job ran"
fi
log "Grid Engine is up (took $(elapsed) s)." \
  "Its commands need SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL (set by the /usr/bin wrappers)."
