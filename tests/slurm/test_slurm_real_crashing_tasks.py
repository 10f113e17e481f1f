"""A real SLURM: a task that segfaults twice ends the map with TaskCrashed.

SLURM reports such a job as FAILED with the signal in its ExitCode (or a
non-zero exit code, as the batch shell saw it); faulthandler's report in the
job's stderr shows the task's frame.
"""

from __future__ import annotations

import uuid

import pytest
from crashing_tasks import crash_at_one
from killing_tasks import counts, logged
from real_schedulers import require_scheduler

import pypoolparty
import pypoolparty.slurm.array

pytestmark = pytest.mark.slurm


def test_a_task_that_segfaults_on_slurm_ends_the_map_after_one_resubmission(tmp_path):
    require_scheduler("slurm")
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = pypoolparty.slurm.array.Pool(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.2,
        missing_result_grace_period=2.0,
        job_name_prefix=f"ppp{uuid.uuid4().hex[:8]}",
        max_num_resubmissions=5,
    )
    with pytest.raises(pypoolparty.TaskCrashed) as info:
        pool.starmap(crash_at_one, [(str(marks), x) for x in range(3)], chunksize=3)
    error = info.value
    message = str(error)
    assert (error.itask, error.ichunk, error.signal) == (1, 0, "SIGSEGV")
    assert f"job {error.jobid}" in message and "not a scheduler failure" in message
    assert "Fatal Python error: Segmentation fault" in message and "crash_at_one" in message
    assert "continue it" not in message
    assert len(logged(tmp_path, "job_failed")) == 2
    assert counts(marks, range(3), "started") == {0: 1, 1: 2, 2: 0}
