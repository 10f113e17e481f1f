#!/usr/bin/env bash
# Stop the one-node SLURM cluster of start.sh: cancel its jobs, stop the daemons.
#
#   sudo bash local_clusters/slurm/stop.sh [--forget]
#
# --forget also deletes SLURM's saved state and logs (job ids restart at 1).
# Packages stay installed. Never purge them: a purge also removes libmunge2
# and libhwloc15, which Sun Grid Engine on the same machine needs.
set -uo pipefail

started_at=$(date +%s.%N)
say() { echo "[slurm/stop.sh $(awk -v a="$started_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s] $*"; }

[ "$(id -u)" = 0 ] || { echo "run me as root" >&2; exit 1; }
forget=0
case "${1:-}" in
  "") ;;
  --forget) forget=1 ;;
  *) echo "usage: $0 [--forget]" >&2; exit 2 ;;
esac

stop_daemon() { # pid_file name
  local pid
  pid=$(cat "$1" 2>/dev/null) || { say "$2 not running"; return 0; }
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]; then
    say "stopping $2 (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    [ -d "/proc/$pid" ] && kill -9 "$pid"
  fi
  rm -f "$1"
}

if command -v scancel >/dev/null && scontrol ping 2>/dev/null | grep -q "is UP"; then
  # Cancel every job so no job process outlives slurmd.
  jobs=$(squeue -h -o %A | sort -u)
  if [ -n "$jobs" ]; then
    say "cancelling $(echo "$jobs" | wc -l) job(s)"
    # shellcheck disable=SC2086
    scancel $jobs
    for _ in $(seq 1 100); do [ -z "$(squeue -h -t R,CG -o %A)" ] && break; sleep 0.1; done
  fi
fi
stop_daemon /run/slurmd.pid slurmd
stop_daemon /run/slurmctld.pid slurmctld
stop_daemon /run/munge/munged.pid munged
if [ "$forget" = 1 ]; then
  rm -rf /var/lib/slurm/slurmctld/* /var/lib/slurm/slurmd/* /var/log/slurm/*
  say "forgot SLURM's state and logs"
fi
say "stopped"
