"""Shared state of the dummy SLURM: one JSON file, guarded by an fcntl lock.

The directory is ``$PYPOOLPARTY_DUMMY_QUEUE_DIR``. It holds ``slurm_state.json``
(the jobs), ``slurm_state.lock``, ``slurm-scripts/`` (job scripts) and, written
by tests, ``faults.json`` (see ``common.py``). Standard library only.
"""

import contextlib
import os
import signal
import time

import common

ACTIVE = ("PENDING", "RUNNING", "COMPLETING")
ERROR_REASONS = {
    "NODE_FAIL": "NodeDown",
    "TIMEOUT": "TimeLimit",
    "OUT_OF_MEMORY": "OutOfMemory",
    "BOOT_FAIL": "NodeDown",
    "DEADLINE": "DeadLine",
    "PREEMPTED": "None",
    "FAILED": "NonZeroExitCode",
    "CANCELLED": "None",
}
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")
EMPTY_STATE = {"next_jobid": 1, "jobs": [], "runner_pid": None, "faults_used": {}}
FAULT_DEFAULTS = {
    "error_states": ["NODE_FAIL"],
    "min_job_age": 300,
    "max_array_size": 1001,
    "time_scale": 1.0,
    "kill_wait": 1.0,
    "requeue_delay": 120.0,
    "requeue_probability": 0.0,
    "stop_jobs": {},
}
FAILURE_MESSAGES = {
    "sbatch": "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
    "squeue": "slurm_load_jobs error: Socket timed out on send/recv operation",
    "scancel": "scancel: error: Kill job error on job id {}: "
    "Socket timed out on send/recv operation",
    "scontrol": "slurm_load_ctl_conf error: Socket timed out on send/recv operation",
    "sinfo": "slurm_load_partitions: Socket timed out on send/recv operation",
}


def queue_dir():
    directory = common.queue_dir("SLURM")
    os.makedirs(os.path.join(directory, "slurm-scripts"), exist_ok=True)
    return directory


def faults():
    """The fault settings of ``faults.json``, with defaults."""
    return common.faults(queue_dir(), FAULT_DEFAULTS)


def chance(kind, jobid):
    """A reproducible draw in [0, 1) for one decision about one job."""
    return common.draw(faults()["seed"], kind, jobid)


@contextlib.contextmanager
def locked_state():
    """Yield the state dict under an exclusive lock; write it back afterwards."""
    with common.locked_state(queue_dir(), "slurm", EMPTY_STATE) as state:
        purge_old_jobs(state)
        yield state


def purge_old_jobs(state):
    """Finished jobs leave the listing after ``min_job_age`` seconds, as with MinJobAge."""
    oldest = time.time() - faults()["min_job_age"]
    state["jobs"] = [j for j in state["jobs"] if j["state"] in ACTIVE or j["end_time"] > oldest]


def play_command_fault(command, argument="", later=False):
    """Fail, print garbage or hang here if faults.json says so for this call of ``command``.

    With ``later``, a call that must hang returns True instead, to hang after
    doing its work (like a reply lost on the way back); otherwise returns False.
    """
    settings = faults()
    if not common.wants_command_fault(settings, command):
        return False
    with locked_state() as state:
        fault = common.take_command_fault(state, settings, command)
    if later and fault == "hang":
        return True
    common.play_command_fault(fault, FAILURE_MESSAGES[command].format(argument))
    return False


def start_runner(state):
    """Start the runner unless one is alive (call with the state locked)."""
    common.start_runner(queue_dir(), "slurm", state, RUNNER)


def job_matches(job, selector):
    """Does ``selector`` (``7``, ``7_3``, ``7_[1-3,5]``) name ``job``?"""
    array_id, _, tasks = selector.partition("_")
    if str(job["array_job_id"]) != array_id:
        return False
    if not tasks:
        return True
    if job["task"] is None:
        return False
    return job["task"] in expand_indices(tasks)


def expand_indices(expression):
    """``0-3,7%2`` -> [0, 1, 2, 3, 7]."""
    indices = []
    for part in expression.split("%")[0].strip("[]").split(","):
        first, _, last = part.partition("-")
        last, _, step = last.partition(":")
        indices += range(int(first), int(last or first) + 1, int(step or 1))
    return indices


def jobid_of(job):
    return (
        f"{job['array_job_id']}_{job['task']}"
        if job["task"] is not None
        else str(job["array_job_id"])
    )


def requeue(job, kill_wait):
    """As ``scontrol requeue``: a running job gets SIGTERM and shows COMPLETING
    until its processes are gone (the runner then makes it PENDING under its id);
    SIGKILL follows ``kill_wait`` seconds after the SIGTERM, as SLURM's KillWait."""
    job.update(state="COMPLETING", requeueing=True, hard_kill_at=time.time() + kill_wait)
    if job.get("pgid"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job["pgid"], signal.SIGTERM)


def end_job(job, state, reason):
    job.update(state=state, reason=reason, end_time=time.time(), display_state=None)


def slurm_seconds(text):
    """A ``--time`` in seconds (``M``, ``M:S``, ``H:M:S``, ``D-H[:M[:S]]``); None for none."""
    if not text or str(text).upper() in ("UNLIMITED", "INFINITE"):
        return None
    days, _, rest = str(text).rpartition("-")
    parts = [int(part) for part in rest.split(":")]
    if days:
        hours, minutes, seconds = parts + [0] * (3 - len(parts))
        return ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
    if len(parts) == 1:
        return parts[0] * 60
    if len(parts) == 2:
        return parts[0] * 60 + parts[1]
    return (parts[0] * 60 + parts[1]) * 60 + parts[2]


def warning_signal(option):
    """``--signal=[B:]SIG[@SECONDS]`` -> (signal name, seconds, to the batch shell only)."""
    if not option:
        return None
    batch_only = False
    if ":" in option:
        flags, _, option = option.partition(":")
        batch_only = "B" in flags
    name, _, lead = option.partition("@")
    name = name.upper()
    if not name.isdigit() and not name.startswith("SIG"):
        name = "SIG" + name
    return name, int(lead or 60), batch_only
