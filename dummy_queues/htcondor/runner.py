"""The dummy HTCondor's execute side: one detached process that starts idle
procs on free slots, waits for them and logs their events. condor_submit
starts it when none is running; it exits when nothing is left to run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
import common  # noqa: E402
import events  # noqa: E402
import jobs  # noqa: E402
import state as htcondor_state  # noqa: E402

POLL_SECONDS = 0.05


def start_job(job: dict, slot: int) -> subprocess.Popen | None:
    """Start a proc as HTCondor's starter would; hold it if that fails."""
    ad = job["ad"]
    env = dict(os.environ) if job["getenv"] else {"PATH": os.defpath}
    env.update(_CONDOR_SCRATCH_DIR=ad["Iwd"], _CONDOR_SLOT=f"slot1_{slot}")
    stdout, stderr = ad["Out"] or os.devnull, ad["Err"] or os.devnull
    try:
        return common.start_job(job["argv"], ad["Iwd"], env, stdout, stderr, mode="w")
    except common.OutputError as error:
        reason = f"Failed to open '{error.filename}' as standard {error.stream}: {error.strerror}"
        jobs.hold(job, f"Error from slot1_{slot}@dummy: {reason}", 7, error.errno)
    except OSError as error:
        reason = f"Failed to execute '{job['argv'][0]}': (errno={error.errno}: '{error.strerror}')"
        jobs.hold(job, f"Error from slot1_{slot}@dummy: {reason}", 6, error.errno)
    return None


def reap(state: dict, processes: dict) -> None:
    for jobid, process in list(processes.items()):
        returncode = process.poll()
        if returncode is None:
            continue
        del processes[jobid]
        job = state["jobs"].get(jobid)
        if job is None or job["status"] != jobs.RUNNING:
            continue  # removed by condor_rm, or vacated, meanwhile
        events.terminated(job["ad"]["UserLog"], job["cluster"], job["proc"], returncode)
        del state["jobs"][jobid]


def vacate_due(state: dict) -> None:
    """Evict the running procs that faults.json's vacate_probability picked."""
    for job in state["jobs"].values():
        due = job.get("vacate_at")
        if job["status"] == jobs.RUNNING and due is not None and time.time() >= due:
            jobs.vacate(job)


def kill_vacated(state: dict, processes: dict) -> None:
    """SIGKILL the processes of vacated procs that outlived their SIGTERM."""
    patience = float(htcondor_state.faults().get("vacate_kill_seconds", 5))
    for jobid, process in processes.items():
        job = state["jobs"].get(jobid)
        vacated_at = (job or {}).get("vacated_at")
        if vacated_at is not None and job["status"] != jobs.RUNNING:
            if time.time() - vacated_at >= patience:
                common.kill_process_group(process.pid)


def start_idle(state: dict, processes: dict) -> None:
    slots = int(htcondor_state.faults().get("slots", 2))
    idle = sorted(
        (job for job in state["jobs"].values() if job["status"] == jobs.IDLE),
        key=lambda job: (job["cluster"], job["proc"]),
    )
    for job in idle:
        if len(processes) >= slots:
            return
        if not job["startable"]:
            continue  # e.g. request_memory = lots: never matches, as in HTCondor
        jobid = htcondor_state.job_id(job["cluster"], job["proc"])
        if jobid in processes:
            continue  # vacated: starts again once its processes have ended
        fault = jobs.fault_at_start(job)
        if fault is not None:
            common.count_job_fault(state, fault)
        if fault == "vanish":
            del state["jobs"][jobid]  # gone without a trace, as after a lost schedd
            continue
        if fault == "error":
            error = jobs.error_state_for(job)
            jobs.hold(job, error["HoldReason"], error["HoldReasonCode"], error["HoldReasonSubCode"])
            continue
        slot = len(processes) + 1
        process = start_job(job, slot)
        if process is None:
            continue
        processes[jobid] = process
        job.update(status=jobs.RUNNING, pid=process.pid, vacated_at=None)
        job["vacate_at"] = jobs.vacate_at_start(job)
        job["unknown"] = jobs.looks_unknown(job)
        events.executing(job["ad"]["UserLog"], job["cluster"], job["proc"], slot)


def nothing_left(state: dict, processes: dict) -> bool:
    waiting = any(job["status"] == jobs.IDLE and job["startable"] for job in state["jobs"].values())
    return not processes and not waiting


def main() -> None:
    processes: dict[str, subprocess.Popen] = {}

    def step(state: dict) -> bool:
        reap(state, processes)
        vacate_due(state)
        kill_vacated(state, processes)
        for cluster in list(state["clusters"]):
            jobs.materialize(state, int(cluster))
        start_idle(state, processes)
        jobs.retire_finished_clusters(state)
        return not nothing_left(state, processes)

    common.serve(htcondor_state.locked_state, step, POLL_SECONDS, idle_seconds=0.0)


if __name__ == "__main__":
    main()
