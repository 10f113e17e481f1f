"""A kept work_dir is no cache on a real SLURM either (issue 17, item 3)."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from real_schedulers import require_scheduler

import pypoolparty
import pypoolparty.slurm.array

pytestmark = pytest.mark.slurm


@pytest.fixture(autouse=True)
def real_slurm():
    require_scheduler("slurm")


def jobs_named(prefix: str) -> list[str]:
    """Ids of every job (array tasks included) whose name starts with ``prefix``."""
    out = subprocess.run(
        ["squeue", "-h", "--array", "-t", "all", "-o", "%i|%j"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        line.split("|")[0] for line in out.splitlines() if line.split("|")[1].startswith(prefix)
    ]


def mark_and_add(x, marks):
    open(os.path.join(marks, f"{x}-{uuid.uuid4().hex}"), "w").close()
    return x + 100


def test_a_map_finished_on_local_runs_afresh_on_slurm_unless_results_are_reused(tmp_path, capfd):
    prefix = f"ppp{uuid.uuid4().hex[:8]}"
    marks = tmp_path / "marks"
    marks.mkdir()
    work_dir = str(tmp_path / "work")
    tasks = [(x, str(marks)) for x in range(3)]
    local = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    assert local.starmap(mark_and_add, tasks, chunksize=1) == [100, 101, 102]
    options = dict(work_dir=work_dir, polling_interval=0.2, job_name_prefix=prefix)
    slurm = pypoolparty.slurm.array.Pool(keep_work_dir=True, **options)
    assert slurm.starmap(mark_and_add, tasks, chunksize=1) == [100, 101, 102]
    assert len(os.listdir(marks)) == 6
    submitted = jobs_named(prefix)
    assert len(submitted) == 2  # a job per slot: they claim the third chunk
    capfd.readouterr()
    cached = pypoolparty.slurm.array.Pool(reuse_results=True, **options)
    assert cached.starmap(mark_and_add, tasks, chunksize=1) == [100, 101, 102]
    assert len(os.listdir(marks)) == 6
    assert set(jobs_named(prefix)) <= set(submitted)  # nothing new; old records may age out
    (line,) = [line for line in capfd.readouterr().err.splitlines() if "reusing" in line]
    assert "reusing the stored results of 3 of 3 tasks" in line and "finished on slurm" in line
