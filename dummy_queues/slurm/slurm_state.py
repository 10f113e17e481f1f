"""Shared state of the dummy SLURM: one JSON file, guarded by an fcntl lock.

The directory is ``$PYPOOLPARTY_DUMMY_QUEUE_DIR``. It holds ``slurm.json``
(the jobs), ``slurm.lock``, ``slurm-scripts/`` (job scripts) and, written by
tests, ``faults.json``. Standard library only.
"""

import contextlib
import fcntl
import json
import os
import random
import sys
import time

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
FAILURE_MESSAGES = {
    "sbatch": "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
    "squeue": "slurm_load_jobs error: Socket timed out on send/recv operation",
    "scancel": "scancel: error: Kill job error on job id {}: "
    "Socket timed out on send/recv operation",
    "scontrol": "slurm_load_ctl_conf error: Socket timed out on send/recv operation",
    "sinfo": "slurm_load_partitions: Socket timed out on send/recv operation",
}


def queue_dir():
    path = os.environ.get("PYPOOLPARTY_DUMMY_QUEUE_DIR")
    if not path:
        sys.exit("dummy slurm: set PYPOOLPARTY_DUMMY_QUEUE_DIR to a directory for its state")
    os.makedirs(os.path.join(path, "slurm-scripts"), exist_ok=True)
    return path


def faults():
    """The fault settings of ``faults.json``, with defaults."""
    settings = {"seed": 0, "slots": 2, "error_probability": 0.0, "error_states": ["NODE_FAIL"]}
    settings.update(vanish_probability=0.0, unknown_state_probability=0.0, min_job_age=300)
    settings.update(fail_commands={}, hang_commands={}, garbage_commands={}, max_array_size=1001)
    path = os.path.join(queue_dir(), "faults.json")
    if os.path.exists(path):
        with open(path) as file:
            settings.update(json.load(file))
    return settings


def chance(kind, jobid):
    """A reproducible draw in [0, 1) for one decision about one job."""
    return random.Random(f"{faults()['seed']}:{kind}:{jobid}").random()


@contextlib.contextmanager
def locked_state():
    """Yield the state dict under an exclusive lock; write it back afterwards."""
    directory = queue_dir()
    with open(os.path.join(directory, "slurm.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = os.path.join(directory, "slurm.json")
        state = {"next_jobid": 1, "jobs": [], "runner_pid": None, "faults_used": {}}
        if os.path.exists(path):
            with open(path) as file:
                state = json.load(file)
        before = json.dumps(state, sort_keys=True)
        purge_old_jobs(state)
        yield state
        if json.dumps(state, sort_keys=True) != before:
            with open(path + ".part", "w") as file:
                json.dump(state, file)
            os.replace(path + ".part", path)


def purge_old_jobs(state):
    """Finished jobs leave the listing after ``min_job_age`` seconds, as with MinJobAge."""
    oldest = time.time() - faults()["min_job_age"]
    state["jobs"] = [j for j in state["jobs"] if j["state"] in ACTIVE or j["end_time"] > oldest]


def take_fault(command, argument=""):
    """Act on ``fail_commands``/``hang_commands``/``garbage_commands`` for ``command``.

    Returns "hang" for a call that must hang (after doing its work, like a
    reply lost on the way back); fails or prints garbage here and exits.
    """
    settings = faults()
    with locked_state() as state:
        kind = None
        for name in ("fail_commands", "hang_commands", "garbage_commands"):
            used = state["faults_used"].setdefault(name, {})
            if used.get(command, 0) < settings[name].get(command, 0):
                used[command] = used.get(command, 0) + 1
                kind = name
                break
    if kind == "fail_commands":
        print(FAILURE_MESSAGES[command].format(argument), file=sys.stderr)
        sys.exit(1)
    if kind == "garbage_commands":
        print("\x1b[31m#### garbage ;; \ufffd 12|x")
        sys.exit(0)
    return "hang" if kind == "hang_commands" else None


def hang():
    while True:
        time.sleep(60)


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


def kill_job(job):
    """Kill a running job's process group (the runner sees it end)."""
    if job.get("pgid"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job["pgid"], 9)


def end_job(job, state, reason):
    job.update(state=state, reason=reason, end_time=time.time(), display_state=None)
