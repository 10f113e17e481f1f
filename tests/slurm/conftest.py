"""Fixtures of the SLURM tests: a private dummy SLURM and a tiny stand-in worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pypoolparty.commands import RetryPolicy
from pypoolparty.scheduler import WorkerCall

# Stands in for pypoolparty's worker in adapter tests: writes chunk_<i> into
# the work_dir, holding the environment variables the job saw.
STAND_IN_WORKER = """
import json, os, sys
work_dir, how, value = sys.argv[1:4]
ichunk = int(value if how == "--ichunk" else os.environ[value])
if "--chunk-list" in sys.argv:
    with open(sys.argv[sys.argv.index("--chunk-list") + 1]) as file:
        ichunk = int(file.read().split()[ichunk - 1])
with open(os.path.join(work_dir, f"chunk_{ichunk}"), "w") as file:
    json.dump(dict(os.environ), file)
"""


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

    def cancel_everything(self) -> None:
        ids = {str(job["array_job_id"]) for job in self.jobs()}
        if ids:
            self.run("scancel", *sorted(ids))


@pytest.fixture
def dummy_slurm(dummy_queues_dir, tmp_path, monkeypatch):
    state_dir = tmp_path / "dummy-queue"
    state_dir.mkdir()
    monkeypatch.setenv("PYPOOLPARTY_DUMMY_QUEUE_DIR", str(state_dir))
    slurm = DummySlurm(dummy_queues_dir, str(state_dir))
    yield slurm
    slurm.set_faults()  # a test's hanging scancel must not hang the cleanup
    slurm.cancel_everything()  # so that its runner goes idle and exits


@pytest.fixture
def stand_in_worker(tmp_path) -> WorkerCall:
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    script = tmp_path / "stand_in_worker.py"
    script.write_text(STAND_IN_WORKER)
    return WorkerCall(python_path=sys.executable, script_path=str(script), work_dir=str(work_dir))


@pytest.fixture
def fast_retries() -> RetryPolicy:
    return RetryPolicy(timeout=5.0, max_outage=60.0, first_backoff=0.05, max_backoff=0.5)
