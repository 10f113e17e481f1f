#!/usr/bin/env bash
# Capture what SLURM shows for a time limit, its warning signal and a requeue
# (takes ~2 min on an idle node): bash capture_time_limits.sh
# - an array task requeued with `scontrol requeue` while it runs: PENDING/BeginTime
#   under its id, and `scontrol show job` of it (Restarts=1);
# - a job warned with --signal=B:USR1@59 whose batch shell (the exec'd worker)
#   exits 0 on the signal: COMPLETED, never TIMEOUT;
# - an array task killed at its time limit: TIMEOUT, and `scontrol show job` of it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
cat >"$work/stop_on_usr1.sh" <<'SCRIPT'
trap 'exit 0' USR1
while true; do sleep 1; done
SCRIPT
wait_state() {  # job state-pattern tries
  for _ in $(seq 1 "$3"); do squeue -h -t all -j "$1" -o %T | grep -Eq "$2" && return; sleep 0.1; done
}
requeued_job=$(sbatch --parsable --chdir=/tmp --array=0 --job-name=cap-limits --output=/dev/null --wrap 'sleep 300')
wait_state "${requeued_job}_0" RUNNING 1200
scontrol requeue "${requeued_job}_0"
wait_state "${requeued_job}_0" PENDING 100
scontrol show job "${requeued_job}_0" >"$here/scontrol_show_job_requeued.txt"
warned_job=$(sbatch --parsable --chdir=/tmp --job-name=cap-limits --output=/dev/null --time=0:01 --signal=B:USR1@59 --wrap "exec bash $work/stop_on_usr1.sh")
timeout_job=$(sbatch --parsable --chdir=/tmp --array=0 --job-name=cap-limits --output=/dev/null --time=0:01 --wrap 'sleep 300')
wait_state "$warned_job" 'COMPLETED|FAILED|TIMEOUT' 1500
wait_state "${timeout_job}_0" TIMEOUT 1500
squeue -h --array -t all -n cap-limits -o '%i|%F|%K|%T|%r' >"$here/squeue_time_limits.txt"
scontrol show job "${timeout_job}_0" >"$here/scontrol_show_job_timeout.txt"
scancel "$requeued_job"
rm -r "$work"
