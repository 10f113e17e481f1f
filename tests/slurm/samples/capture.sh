#!/usr/bin/env bash
# Capture the outputs the parser tests read, from the real SLURM of
# local_clusters/slurm/start.sh. Run as root from anywhere:
#   bash tests/slurm/samples/capture.sh
# It submits a few small jobs, waits for them and writes *.txt next to itself.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d /tmp/ppp-capture.XXXXXX)
cd "$scratch"
q() { squeue -h --array -t all -o '%i|%F|%K|%T|%r' "$@"; }
until_gone() { # wait until no job of name $1 is pending or running
  for _ in $(seq 1 600); do [ -z "$(squeue -h -n "$1" -t PD,R,CG -o %i)" ] && return; sleep 0.1; done
}

sbatch --parsable --job-name=cap-ok --output=/dev/null --wrap true >"$here/sbatch_parsable.txt"
sbatch --job-name=cap-ok --output=/dev/null --wrap true >"$here/sbatch_plain.txt"
sbatch --parsable -p nosuchpartition --wrap true 2>"$here/sbatch_rejected_partition.txt"
sbatch --parsable --mem=100000G --wrap true 2>"$here/sbatch_rejected_memory.txt"
sbatch --parsable --cpus-per-task=-2 --wrap true 2>"$here/sbatch_rejected_cpus.txt"

# A throttled array while it runs: RUNNING, PENDING/JobArrayTaskLimit.
array=$(sbatch --parsable --array=0-5%2 --job-name=cap-arr --output=/dev/null --wrap 'sleep 3')
for _ in $(seq 1 100); do squeue -h -j "$array" -t R -o %i | grep -q . && break; sleep 0.1; done
q -n cap-arr >"$here/squeue_array_running.txt"
squeue -h -t all -o '%i|%F|%K|%T|%r' -n cap-arr >"$here/squeue_array_running_collapsed.txt"
scancel "$array"

# Errors and holds.
sbatch --parsable --job-name=cap-err --output=/dev/null --wrap 'exit 3' >/dev/null
sbatch --parsable --job-name=cap-err --output=/dev/null --time=0:01 --deadline=now+30 --wrap true >/dev/null
sbatch --parsable --job-name=cap-err --output=/dev/null --hold --wrap true >/dev/null
admin=$(sbatch --parsable --job-name=cap-err --output=/dev/null --begin=now+600 --wrap true)
scontrol hold "$admin"
running=$(sbatch --parsable --job-name=cap-err --output=/dev/null --wrap 'sleep 60')
for _ in $(seq 1 100); do squeue -h -j "$running" -t R -o %i | grep -q . && break; sleep 0.1; done
scancel "$running"
held_array=$(sbatch --parsable --hold --array=0-2 --job-name=cap-err --output=/dev/null --wrap true)
sbatch --parsable --array=0-2 --job-name=cap-err --output=/dev/null --wrap true >/dev/null
sleep 2
scancel "${held_array}_1"
until_gone cap-arr
q -n cap-err,cap-ok,cap-arr >"$here/squeue_states.txt"
scancel -n cap-err
until_gone cap-err
q -n cap-err >"$here/squeue_after_cancel.txt"

# The arrays of one submission, told apart by their comments; a held task.
first=$(sbatch --parsable --hold --array=0-2 --job-name=cap-pieces --comment="pypoolparty array 0" --output=/dev/null --wrap true)
second=$(sbatch --parsable --hold --array=1-2 --job-name=cap-pieces --comment="pypoolparty array 1" --output=/dev/null --wrap true)
squeue -h --array -t all -n cap-pieces -o '%F|%k' >"$here/squeue_array_comments.txt"
scontrol show job "${first}_1" >"$here/scontrol_show_job_held.txt"
scancel "$first" "$second"

scontrol show config >"$here/scontrol_show_config.txt"
sinfo -h -o "%P|%C" >"$here/sinfo_partitions_cpus.txt"
cd / && rm -rf "$scratch"
