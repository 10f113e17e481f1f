"""The repository's dummy SLURM, with its state in a test's own directory.

Shared by the SLURM tests and the command-line tests through the
``dummy_slurm`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

import json
import os
import subprocess


class DummySlurm:
    """The dummy SLURM of ``dummy_queues/slurm`` with its state in a test's own directory."""

    def __init__(self, dummy_queues_dir: str, state_dir: str):
        self.bin = os.path.join(dummy_queues_dir, "slurm")
        self.state_dir = state_dir
        # scontrol and sinfo are found beside sbatch.
        self.paths = {
            f"{name}_path": os.path.join(self.bin, name) for name in ("sbatch", "squeue", "scancel")
        }

    def set_faults(self, **faults) -> None:
        with open(os.path.join(self.state_dir, "faults.json"), "w") as file:
            json.dump(faults, file)

    def jobs(self) -> list[dict]:
        path = os.path.join(self.state_dir, "slurm.json")
        if not os.path.exists(path):
            return []
        with open(path) as file:  # written by rename: never half a file
            return json.load(file)["jobs"]

    def run(self, command: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [os.path.join(self.bin, command), *args], capture_output=True, text=True, timeout=60
        )

    def release_everything(self) -> None:
        for job in self.jobs():
            task = "" if job["task"] is None else f"_{job['task']}"
            self.run("scontrol", "release", f"{job['array_job_id']}{task}")

    def cancel_everything(self) -> None:
        ids = {str(job["array_job_id"]) for job in self.jobs()}
        if ids:
            self.run("scancel", *sorted(ids))
