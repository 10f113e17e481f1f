"""The dummy SLURM's runner: starts pending jobs on free slots, reaps them, exits when idle.

Started (detached) by the dummy sbatch. Each job runs as ``bash SCRIPT`` in
its own process group, with its output files as SLURM names them. Faults
from ``faults.json`` are drawn here, when a job would start.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
import common  # noqa: E402
import state as slurm_state  # noqa: E402

TICK = 0.05
IDLE_SECONDS = 2.0
UNKNOWN_STATE = "UNHEARD_OF"  # what squeue shows for a job given an unknown state


def main():
    processes = {}  # jobid -> Popen

    def step(state):
        reap(state, processes)
        start_pending(state, processes)
        return bool(processes) or any(j["state"] in slurm_state.ACTIVE for j in state["jobs"])

    common.serve(slurm_state.locked_state, step, TICK, IDLE_SECONDS)


def reap(state, processes):
    jobs = {slurm_state.jobid_of(j): j for j in state["jobs"]}
    settings = slurm_state.faults()
    for jobid, process in list(processes.items()):
        job = jobs.get(jobid)
        if job is not None:
            enforce_time_limit(job, process, settings)
            stop_by_fault(job, jobid, settings)
            requeue_when_due(job, settings)
        if (
            job is not None
            and job["state"] == "RUNNING"
            and job.get("kill_at", 1e300) < time.time()
        ):
            common.kill_process_group(job.get("pgid"))
            slurm_state.end_job(
                job, job["error_state"], slurm_state.ERROR_REASONS[job["error_state"]]
            )
        if process.poll() is None:
            continue
        del processes[jobid]
        if job is not None and job.get("requeueing"):
            # scontrol requeue: back to pending under the same id, once its
            # processes are gone (as SLURM shows COMPLETING until then).
            begin = time.time() + float(settings["requeue_delay"])
            job.update(state="PENDING", reason="BeginTime", begin=begin, requeueing=False)
            # Its next run must not get this run's SIGKILL, or its requeue.
            job.update(hard_kill_at=1e300, requeue_at=None)
            job["restarts"] = job.get("restarts", 0) + 1
            continue
        if job is None or job["state"] != "RUNNING":
            continue  # cancelled or vanished meanwhile
        if process.returncode == 0:
            slurm_state.end_job(job, "COMPLETED", "None")
        else:
            slurm_state.end_job(job, "FAILED", "NonZeroExitCode")


def enforce_time_limit(job, process, settings):
    """``--signal`` before ``--time``, then SIGTERM and TIMEOUT at it, SIGKILL after kill_wait.

    Times are SLURM's seconds times ``time_scale``.
    """
    now = time.time()
    if job["state"] == "RUNNING" and job.get("signal_at", 1e300) <= now:
        name, _, batch_only = job["warning"]
        job["signal_at"] = 1e300
        send(process.pid if batch_only else job.get("pgid"), name, batch_only)
    if job["state"] == "RUNNING" and job.get("limit_at", 1e300) <= now:
        send(job.get("pgid"), "SIGTERM", False)
        slurm_state.end_job(job, "TIMEOUT", "TimeLimit")
        job["hard_kill_at"] = now + float(settings["kill_wait"])
    if job.get("hard_kill_at", 1e300) <= now:
        job["hard_kill_at"] = 1e300
        common.kill_process_group(job.get("pgid"))


def stop_by_fault(job, jobid, settings):
    """``stop_jobs`` of faults.json, e.g. ``{"3_0": "PREEMPTED"}``: as SLURM stops a
    running job for the cluster's reasons -- SIGTERM, the state at once, SIGKILL after
    kill_wait. Once per job."""
    stopped = settings["stop_jobs"].get(jobid)
    if stopped and job["state"] == "RUNNING" and not job.get("stopped_by_fault"):
        job["stopped_by_fault"] = True
        send(job.get("pgid"), "SIGTERM", False)
        slurm_state.end_job(job, stopped, slurm_state.ERROR_REASONS.get(stopped, "None"))
        job["hard_kill_at"] = time.time() + float(settings["kill_wait"])


def requeue_when_due(job, settings):
    """The requeue drawn for this run (``requeue_probability``), as ``scontrol requeue``."""
    due = job.get("requeue_at")
    if job["state"] == "RUNNING" and due is not None and due <= time.time():
        job["requeue_at"] = None
        slurm_state.requeue(job, float(settings["kill_wait"]))


def draw_requeue(job, jobid, settings):
    """Whether this run of the job is requeued, and when: 0.1 to 1.1 s after it
    started. Drawn anew for each run (``restarts`` tells the runs apart)."""
    run = job.get("restarts", 0)
    if slurm_state.chance(f"requeue-{run}", jobid) < float(settings["requeue_probability"]):
        delay = 0.1 + slurm_state.chance(f"requeue_delay-{run}", jobid)
        job["requeue_at"] = job["start_time"] + delay


def send(target, name, to_process):
    """Signal ``name`` to a process (the batch shell) or a process group, if still there."""
    if not target:
        return
    number = int(name) if name.isdigit() else getattr(signal, name)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if to_process:
            os.kill(target, number)
        else:
            os.killpg(target, number)


NEVER_STARTED_REASONS = ("JobHeldUser", "JobHeldAdmin", "PartitionNodeLimit")
"""Reasons of a pending job that the runner never clears by itself."""


def start_pending(state, processes):
    settings = slurm_state.faults()
    finished = {
        slurm_state.jobid_of(j) for j in state["jobs"] if j["state"] not in ("PENDING", "RUNNING")
    }
    running = [j for j in state["jobs"] if j["state"] == "RUNNING"]
    for job in list(state["jobs"]):  # start() may remove a job
        if len(running) >= settings["slots"]:
            return
        if job["state"] != "PENDING" or job["reason"] in NEVER_STARTED_REASONS:
            continue
        if job.get("begin", 0.0) > time.time():
            job["reason"] = "BeginTime"
            continue
        if job["after"] and job["after"] not in finished and job["after"] in all_ids(state):
            job["reason"] = "Dependency"
            continue
        siblings = [j for j in running if j["array_job_id"] == job["array_job_id"]]
        if job["throttle"] and len(siblings) >= job["throttle"]:
            job["reason"] = "JobArrayTaskLimit"
            continue
        if start(state, job, settings, processes):
            running.append(job)


def all_ids(state):
    return {slurm_state.jobid_of(j) for j in state["jobs"]}


def start(state, job, settings, processes):
    """Start ``job`` or play a fault on it; True if it now holds a slot."""
    jobid = slurm_state.jobid_of(job)
    if slurm_state.chance("vanish", jobid) < settings["vanish_probability"]:
        common.count_job_fault(state, "vanish")
        state["jobs"].remove(job)
        return False
    if slurm_state.chance("unknown", jobid) < settings["unknown_state_probability"]:
        common.count_job_fault(state, "unknown")
        job["display_state"] = UNKNOWN_STATE
    if slurm_state.chance("error", jobid) < settings["error_probability"]:
        common.count_job_fault(state, "error")
        states = settings["error_states"]
        job["error_state"] = states[int(slurm_state.chance("which", jobid) * len(states))]
        if slurm_state.chance("when", jobid) < 0.5:  # instead of running
            slurm_state.end_job(
                job, job["error_state"], slurm_state.ERROR_REASONS[job["error_state"]]
            )
            return False
        # Killed while running: it shows RUNNING for a moment, its script
        # never gets to the end (a stand-in process holds the slot).
        job["kill_at"] = time.time() + 0.1 + 0.4 * slurm_state.chance("delay", jobid)
        processes[jobid] = subprocess.Popen(["sleep", "60"], start_new_session=True)
    else:
        try:
            processes[jobid] = launch(job)
        except OSError:
            # As slurmd: a job whose output file cannot be opened fails.
            slurm_state.end_job(job, "FAILED", "NonZeroExitCode")
            return False
    job.update(state="RUNNING", reason="None", pgid=processes[jobid].pid, start_time=time.time())
    set_time_limit(job, settings)
    if "kill_at" not in job:  # a job killed into an error state is not requeued as well
        draw_requeue(job, jobid, settings)
    return True


def set_time_limit(job, settings):
    """When the job's ``--time`` ends, and when its ``--signal`` comes, if it has them."""
    scale = float(settings["time_scale"])
    limit = slurm_state.slurm_seconds(job["options"].get("time"))
    if limit is None:
        return
    job["limit_at"] = job["start_time"] + limit * scale
    warning = slurm_state.warning_signal(job["options"].get("signal"))
    if warning is not None:
        job["warning"] = warning
        job["signal_at"] = job["limit_at"] - warning[1] * scale


def expand_pattern(pattern, job, task, jobid):
    """sbatch's filename pattern: %A, %a, %j, %x and %% in one pass, as slurmd
    does; a pattern with a backslash is taken as it is (sbatch(1))."""
    if "\\" in pattern:
        return pattern.replace("\\", "")
    values = {
        "%": "%",
        "A": str(job["array_job_id"]),
        "a": task,
        "j": jobid.split("_")[0],
        "x": job["name"],
    }
    return re.sub(r"%([%Aajx])", lambda match: values[match.group(1)], pattern)


def launch(job):
    def path(pattern):
        task = "4294967294" if job["task"] is None else str(job["task"])
        jobid = slurm_state.jobid_of(job)
        return os.path.join(job["chdir"], expand_pattern(pattern, job, task, jobid))

    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")}
    if job["export"] != "NONE":
        env = dict(os.environ)
    env.update(SLURM_JOB_ID=str(job["array_job_id"]), SLURM_JOB_NAME=job["name"])
    if job.get("restarts"):
        env.update(SLURM_RESTART_COUNT=str(job["restarts"]))
    if job["task"] is not None:
        env.update(
            SLURM_ARRAY_JOB_ID=str(job["array_job_id"]), SLURM_ARRAY_TASK_ID=str(job["task"])
        )
    return common.start_job(
        ["bash", job["script"]], job["chdir"], env, path(job["output"]), path(job["error"])
    )


if __name__ == "__main__":
    sys.exit(main())
