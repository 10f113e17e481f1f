"""The dummy HTCondor's execute side: one detached process that starts idle
procs on free slots, waits for them and logs their events. condor_submit
starts it when none is running; it exits when nothing is left to run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import dummy_events
import dummy_queue
import dummy_state

POLL_SECONDS = 0.05


def runner_alive(state: dict) -> bool:
    pid = state.get("runner_pid")
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_runner_if_needed(state: dict) -> None:
    """Called by condor_submit while it holds the state lock."""
    if runner_alive(state):
        return
    with open(os.devnull, "r+b") as devnull:
        process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)],
            stdin=devnull,
            stdout=devnull,
            stderr=devnull,
            start_new_session=True,
            close_fds=True,
        )
    state["runner_pid"] = process.pid


def start_job(job: dict, slot: int) -> subprocess.Popen | None:
    """Start a proc as HTCondor's starter would; hold it if that fails."""
    ad = job["ad"]
    env = dict(os.environ) if job["getenv"] else {"PATH": os.defpath}
    env.update(_CONDOR_SCRATCH_DIR=ad["Iwd"], _CONDOR_SLOT=f"slot1_{slot}")
    try:
        stdout = open(ad["Out"] or os.devnull, "w")
    except OSError as error:
        reason = f"Failed to open '{ad['Out']}' as standard output: {error.strerror}"
        dummy_queue.hold(job, f"Error from slot1_{slot}@dummy: {reason}", 7, error.errno)
        return None
    try:
        with stdout, open(ad["Err"] or os.devnull, "w") as stderr:
            return subprocess.Popen(
                job["argv"],
                cwd=ad["Iwd"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
    except OSError as error:
        reason = f"Failed to execute '{job['argv'][0]}': (errno={error.errno}: '{error.strerror}')"
        dummy_queue.hold(job, f"Error from slot1_{slot}@dummy: {reason}", 6, error.errno)
        return None


def reap(state: dict, processes: dict) -> None:
    for jobid, process in list(processes.items()):
        returncode = process.poll()
        if returncode is None:
            continue
        del processes[jobid]
        job = state["jobs"].get(jobid)
        if job is None or job["status"] != dummy_queue.RUNNING:
            continue  # removed by condor_rm meanwhile
        dummy_events.terminated(job["ad"]["UserLog"], job["cluster"], job["proc"], returncode)
        del state["jobs"][jobid]


def start_idle(state: dict, processes: dict) -> None:
    slots = int(dummy_state.faults().get("slots", 2))
    idle = sorted(
        (job for job in state["jobs"].values() if job["status"] == dummy_queue.IDLE),
        key=lambda job: (job["cluster"], job["proc"]),
    )
    for job in idle:
        if len(processes) >= slots:
            return
        if not job["startable"]:
            continue  # e.g. request_memory = lots: never matches, as in HTCondor
        jobid = dummy_state.job_id(job["cluster"], job["proc"])
        fault = dummy_queue.fault_at_start(job)
        if fault == "vanish":
            del state["jobs"][jobid]  # gone without a trace, as after a lost schedd
            continue
        if fault == "error":
            error = dummy_queue.error_state_for(job)
            dummy_queue.hold(
                job, error["HoldReason"], error["HoldReasonCode"], error["HoldReasonSubCode"]
            )
            continue
        slot = len(processes) + 1
        process = start_job(job, slot)
        if process is None:
            continue
        processes[jobid] = process
        job.update(status=dummy_queue.RUNNING, pid=process.pid)
        job["unknown"] = dummy_queue.looks_unknown(job)
        dummy_events.executing(job["ad"]["UserLog"], job["cluster"], job["proc"], slot)


def nothing_left(state: dict, processes: dict) -> bool:
    waiting = any(
        job["status"] == dummy_queue.IDLE and job["startable"] for job in state["jobs"].values()
    )
    return not processes and not waiting


def main() -> None:
    processes: dict[str, subprocess.Popen] = {}
    while True:
        with dummy_state.locked_state() as state:
            if state.get("runner_pid") != os.getpid():
                return  # another runner took over
            reap(state, processes)
            for cluster in list(state["clusters"]):
                dummy_queue.materialize(state, int(cluster))
            start_idle(state, processes)
            dummy_queue.retire_finished_clusters(state)
            if nothing_left(state, processes):
                state["runner_pid"] = None
                return
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    main()
