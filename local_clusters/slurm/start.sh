#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (Debian 12, as root, no systemd).
#
#   sudo bash local_clusters/slurm/start.sh
#
# Used by CI for the integration tests (pytest -m slurm). Safe to run again:
# a second run only checks the daemons, restarts what is down, and runs one
# test job. Knobs (environment):
#   PPP_SLURM_PARTITION  partition name (default: debug)
#   PPP_SLURM_MINJOBAGE  seconds a finished job stays in squeue (default: 300)
set -euo pipefail

started_at=$(date +%s.%N)
seconds_since_start() { awk -v a="$started_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "[slurm/start.sh $(seconds_since_start) s] $*"; }
fail() { say "ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run me as root"

partition=${PPP_SLURM_PARTITION:-debug}
min_job_age=${PPP_SLURM_MINJOBAGE:-300}
node=$(hostname -s)
apt_log=$(mktemp /tmp/ppp-slurm-apt.XXXXXX)

# Succeeds when the pid file names a live process with the expected name.
daemon_alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# Poll "$@" every 0.1 s for up to $1 tenths of a second.
wait_for() {
  local tenths=$1; shift
  for _ in $(seq 1 "$tenths"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# ---- packages: only the four we need; recommends would pull ~40 more.
needed=""
for package in munge slurmctld slurmd slurm-client; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
    || needed="$needed $package"
done
if [ -n "$needed" ]; then
  say "installing$needed"
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get -q -y -o DPkg::Lock::Timeout=600 install --no-install-recommends $needed; }
  # The package lists may be stale or missing on a fresh machine: update only then.
  if ! apt_install >"$apt_log" 2>&1; then
    apt-get -q -o DPkg::Lock::Timeout=600 update >>"$apt_log" 2>&1 || true
    apt_install >>"$apt_log" 2>&1 || { tail -n 30 "$apt_log"; fail "apt-get install failed"; }
  fi
fi
rm -f "$apt_log"
say "slurm $(dpkg-query -W -f='${Version}' slurmctld) installed"

# ---- munge: authenticates slurmctld <-> slurmd <-> clients.
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge   # /run is empty without systemd
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key --force
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
munge_works() { munge -n | unmunge; }
if ! munge_works >/dev/null 2>&1; then
  say "starting munged"
  # --force: a munged killed earlier may have left its socket behind.
  runuser -u munge -- /usr/sbin/munged --force
  wait_for 50 munge_works || fail "munged does not answer, see /var/log/munge/munged.log"
fi

# ---- slurm.conf: this machine is the controller and the only node.
hardware=$(slurmd -C | head -n 1 | sed -E 's/^NodeName=[^ ]+ //')
case "$hardware" in *CPUs=*) ;; *) fail "'slurmd -C' did not describe this machine" ;; esac
install -d -o slurm -g slurm -m 0755 /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
conf=$(mktemp)
cat >"$conf" <<CONF
# Written by pypoolparty's local_clusters/slurm/start.sh: one node, no accounting.
ClusterName=pypoolparty
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# Containers have no usable cgroups: track processes by pid, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
# Start pending jobs on every pass of the 1 s scheduler loop, not every 3 s.
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
# One job per core; memory is not consumed, so --mem never blocks a job here.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=${min_job_age}
MaxJobCount=200000
MaxArraySize=100001
KillWait=5
InactiveLimit=0
Waittime=0
NodeName=${node} NodeAddr=127.0.0.1 ${hardware} State=UNKNOWN
PartitionName=${partition} Nodes=${node} Default=YES MaxTime=INFINITE State=UP
CONF
config_changed=0
if ! cmp -s "$conf" /etc/slurm/slurm.conf 2>/dev/null; then
  install -D -m 0644 "$conf" /etc/slurm/slurm.conf
  config_changed=1
  say "wrote /etc/slurm/slurm.conf"
fi
rm -f "$conf"

stop_daemon() { # pid_file name
  daemon_alive "$1" "$2" || return 0
  local pid; pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  wait_for 100 test ! -d "/proc/$pid" || kill -9 "$pid" 2>/dev/null || true
}
if [ "$config_changed" = 1 ]; then
  stop_daemon /run/slurmd.pid slurmd
  stop_daemon /run/slurmctld.pid slurmctld
fi

# ---- daemons
controller_up() { scontrol ping | grep -q "is UP"; }
if ! daemon_alive /run/slurmctld.pid slurmctld; then
  say "starting slurmctld"
  /usr/sbin/slurmctld
fi
wait_for 100 controller_up || { tail -n 20 /var/log/slurm/slurmctld.log; fail "slurmctld is not up"; }
if ! daemon_alive /run/slurmd.pid slurmd; then
  say "starting slurmd"
  /usr/sbin/slurmd -N "$node"
fi

node_state() { sinfo -h -N -n "$node" -o %T 2>/dev/null | head -n 1; }
node_usable() { case "$(node_state)" in idle | mixed | allocated | completing) return 0 ;; esac; return 1; }
if ! wait_for 30 node_usable; then
  # A node that was down or drained before a restart stays so: resume it.
  scontrol update nodename="$node" state=resume 2>/dev/null || true
  wait_for 270 node_usable || { tail -n 20 /var/log/slurm/slurmd.log; fail "node $node is '$(node_state)'"; }
fi
say "node $node is $(node_state)"

# ---- one job through the whole chain
output=$(mktemp /tmp/ppp-slurm-smoke.XXXXXX)
job=$(sbatch --parsable --job-name=ppp-smoke --output="$output" --chdir=/tmp --wrap hostname)
job_finished() { squeue -h -t all -j "$job" -o %T | grep -Eq '^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL)$'; }
wait_for 300 job_finished || fail "test job $job did not finish in 30 s"
state=$(squeue -h -t all -j "$job" -o %T)
[ "$state" = COMPLETED ] && [ "$(cat "$output")" = "$(hostname)" ] \
  || fail "test job $job ended $state with output '$(cat "$output")'"
rm -f "$output"
say "SLURM is up (test job $job COMPLETED). Took $(seconds_since_start) s."
