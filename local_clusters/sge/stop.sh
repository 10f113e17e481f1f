#!/bin/bash
# Stop the one-node Grid Engine cell started by start.sh.
#
#   sudo bash local_clusters/sge/stop.sh           stop the daemons (jobs are killed);
#                                                  start.sh brings the cell back
#   sudo bash local_clusters/sge/stop.sh --purge   also remove the packages and the
#                                                  cell, so the next start is fresh
#
# Only Grid Engine's own daemons are signalled, found by their executable.
# --purge never removes shared libraries such as libmunge2 or libhwloc15:
# SLURM on the same machine needs them.
set -uo pipefail

export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
export PATH=/usr/lib/gridengine:$PATH

daemon_pids() {
  find /proc -mindepth 2 -maxdepth 2 -name exe -lname "/usr/lib/gridengine/sge_$1*" 2>/dev/null \
    | cut -d/ -f3
}
stop_daemon() { # name seconds
  local pids pid tries alive
  pids=$(daemon_pids "$1")
  [ -n "$pids" ] || return 0
  echo "stopping sge_$1 ($pids)"
  kill $pids 2>/dev/null
  for tries in $(seq $(($2 * 10))); do
    alive=0
    for pid in $pids; do readlink "/proc/$pid/exe" >/dev/null 2>&1 && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  echo "sge_$1 did not stop, killing it"
  kill -9 $pids 2>/dev/null
}

stop_daemon execd 20
stop_daemon qmaster 40 # it takes ~10 s to exit

if [ "${1:-}" = --purge ]; then
  echo "removing the gridengine packages and the cell"
  DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 purge \
    gridengine-master gridengine-exec gridengine-client gridengine-common >/dev/null
  rm -rf /var/lib/gridengine /var/spool/gridengine
fi
echo "Grid Engine is stopped"
