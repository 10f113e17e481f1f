"""The pools the chaos suite runs, and what their (dummy) queues hold.

Each kind of pool is named by a short word. For the dummy queues this module
knows the pool class, the options that point it at the dummy commands, and
how to read the dummy's state file to see which jobs are still in the queue.
"""

from __future__ import annotations

import json
import os
import subprocess

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUMMY_DIR = os.path.join(REPO_DIR, "dummy_queues")

POOL_KINDS = ("local", "slurm_array", "slurm_job", "sge", "htcondor")

SLURM_ACTIVE = ("PENDING", "RUNNING", "COMPLETING")
HTCONDOR_GONE = (3, 4)  # removed, completed
COMMANDS = {
    "slurm_array": ("sbatch", "squeue", "scancel"),
    "slurm_job": ("sbatch", "squeue", "scancel"),
    "sge": ("qsub", "qstat", "qdel"),
    "htcondor": ("condor_submit", "condor_q", "condor_rm"),
    "local": (),
}
"""The submit, query and cancel commands of each kind, in that order."""


def make_pool(kind: str, **options):
    """A pool of ``kind`` pointed at its dummy commands, with ``options``."""
    if kind == "local":
        import pypoolparty.local

        return pypoolparty.local.Pool(**options)
    paths = command_paths(kind)
    if kind == "slurm_array":
        import pypoolparty.slurm.array

        return pypoolparty.slurm.array.Pool(**paths, **options)
    if kind == "slurm_job":
        import pypoolparty.slurm

        return pypoolparty.slurm.Pool(**paths, **options)
    if kind == "sge":
        import pypoolparty.sun_grid_engine

        return pypoolparty.sun_grid_engine.Pool(**paths, **options)
    if kind == "htcondor":
        import pypoolparty.htcondor

        return pypoolparty.htcondor.Pool(**paths, **options)
    raise ValueError(f"unknown pool kind {kind!r}")


def command_paths(kind: str) -> dict[str, str]:
    """Pool options naming the dummy commands of ``kind``."""
    directory = os.path.join(DUMMY_DIR, dummy_name(kind))
    return {f"{name}_path": os.path.join(directory, name) for name in COMMANDS[kind]}


def dummy_name(kind: str) -> str:
    return {"slurm_array": "slurm", "slurm_job": "slurm"}.get(kind, kind)


def write_faults(queue_dir: str, faults: dict) -> None:
    """Write the dummies' fault injection file."""
    with open(os.path.join(queue_dir, "faults.json"), "w") as file:
        json.dump(faults, file)


def queued_jobs(kind: str, queue_dir: str) -> list[str]:
    """Ids of the jobs the dummy queue of ``kind`` still holds (not ended)."""
    if kind == "local":
        return []
    if dummy_name(kind) == "slurm":
        state = _read_state(queue_dir, "slurm.json", {"jobs": []})
        return [
            f"{job['array_job_id']}_{job['task']}"
            for job in state["jobs"]
            if job["state"] in SLURM_ACTIVE
        ]
    if kind == "sge":
        state = _read_state(queue_dir, "sge_state.json", {"jobs": {}})
        return [
            f"{number}.{task_id}"
            for number, job in state["jobs"].items()
            for task_id in job["tasks"]
        ]
    state = _read_state(queue_dir, "htcondor_state.json", {"jobs": {}})
    return [jobid for jobid, job in state["jobs"].items() if job["status"] not in HTCONDOR_GONE]


def cancel_everything(kind: str, queue_dir: str) -> None:
    """Empty the dummy queue, whatever a failed scenario left in it."""
    ids = queued_jobs(kind, queue_dir)
    if not ids:
        return
    env = dict(os.environ, PYPOOLPARTY_DUMMY_QUEUE_DIR=queue_dir)
    # Faults must not stop the cleaning.
    write_faults(queue_dir, {})
    cancel = command_paths(kind)[f"{COMMANDS[kind][2]}_path"]
    if kind == "htcondor":
        arguments = [cancel, "-all"]
    elif kind == "sge":
        arguments = [cancel, *sorted({i.split(".")[0] for i in ids})]
    else:
        arguments = [cancel, *sorted({i.split("_")[0] for i in ids})]
    subprocess.run(arguments, env=env, capture_output=True, timeout=60, check=False)


def _read_state(queue_dir: str, name: str, empty: dict) -> dict:
    try:
        with open(os.path.join(queue_dir, name)) as file:  # written by rename
            return json.load(file)
    except FileNotFoundError:
        return empty
