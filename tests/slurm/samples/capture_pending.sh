#!/usr/bin/env bash
# Capture squeue_pending_reasons.txt from a real SLURM (22.05, one node "vm",
# EnforcePartLimits=NO). Run as root: it adds three partitions of its own for
# the jobs to wait in, and removes them and its jobs at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scontrol create PartitionName=ppptestdown Nodes=ALL State=DOWN
scontrol create PartitionName=ppptestshort Nodes=ALL MaxTime=1 MaxNodes=1 MaxCPUsPerNode=1
o="--output=/dev/null --job-name=ppp-pendcap"
sbatch --parsable $o --begin=now+1hour --wrap true                 # BeginTime
sbatch --parsable $o --array=0-3 --begin=now+1hour --wrap true     # BeginTime
sbatch --parsable $o --nodes=2 --wrap true                         # PartitionNodeLimit
failed=$(sbatch --parsable $o --wrap false); sleep 3
sbatch --parsable $o --dependency=afterok:"$failed" --wrap true    # DependencyNeverSatisfied
held=$(sbatch --parsable $o --hold --wrap true)                    # JobHeldUser
sbatch --parsable $o --dependency=afterok:"$held" --wrap true      # Dependency
sbatch --parsable $o -p ppptestdown --array=0-2 --wrap true        # PartitionDown
sbatch --parsable $o -p ppptestshort --time=10 --wrap true         # PartitionTimeLimit
sbatch --parsable $o -p ppptestshort -c 2 --wrap true              # PartitionConfig
sleep 3
squeue -h --array -t PD -n ppp-pendcap -o '%i|%F|%K|%T|%r' >"$here/squeue_pending_reasons.txt"
scancel -n ppp-pendcap
scontrol delete PartitionName=ppptestdown
scontrol delete PartitionName=ppptestshort
