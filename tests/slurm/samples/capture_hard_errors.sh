#!/usr/bin/env bash
# Capture TIMEOUT and NODE_FAIL lines (takes ~90 s; briefly sets the node DOWN,
# so run it only on the private test cluster): bash capture_hard_errors.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
node=$(hostname -s)
timeout_job=$(sbatch --parsable --job-name=cap-hard --output=/dev/null --time=0:01 --wrap 'sleep 300')
nodefail_job=$(sbatch --parsable --no-requeue --job-name=cap-hard --output=/dev/null --wrap 'sleep 300')
for _ in $(seq 1 100); do
  [ "$(squeue -h -j "$timeout_job,$nodefail_job" -t R -o %i | wc -l)" = 2 ] && break; sleep 0.1
done
scontrol update nodename="$node" state=down reason=capture
for _ in $(seq 1 100); do squeue -h -t all -j "$nodefail_job" -o %T | grep -q NODE_FAIL && break; sleep 0.1; done
sleep 1
scontrol update nodename="$node" state=resume 2>/dev/null
timeout_job=$(sbatch --parsable --no-requeue --job-name=cap-hard --output=/dev/null --time=0:01 --wrap 'sleep 300')
for _ in $(seq 1 1500); do squeue -h -t all -j "$timeout_job" -o %T | grep -q TIMEOUT && break; sleep 0.1; done
squeue -h --array -t all -n cap-hard -o '%i|%F|%K|%T|%r' >"$here/squeue_hard_errors.txt"
