"""A real Grid Engine job loses its worker mid-chunk: the finished tasks are kept.

The test kills the worker process (SIGKILL, as Grid Engine's ``qdel`` or an
``h_rt`` kill without ``-notify`` does; the CI cluster is this one machine)
while a task blocks on a file the test controls; marks the tasks leave count
how often each ran.
"""

from __future__ import annotations

import signal
import uuid

import pytest
from killing_tasks import (
    blocking_task,
    counting_task,
    counts,
    kill_blocked,
    running_in_background,
)
from real_schedulers import require_scheduler

from pypoolparty import sun_grid_engine

pytestmark = pytest.mark.sge


@pytest.fixture(autouse=True)
def real_sge():
    require_scheduler("sge")


def make_pool(tmp_path, **options):
    defaults = dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.5,
        missing_result_grace_period=2.0,
        job_name_prefix=f"ppp{uuid.uuid4().hex[:8]}",
    )
    return sun_grid_engine.Pool(**{**defaults, **options})


def test_a_job_whose_worker_is_killed_keeps_the_tasks_it_finished(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(tmp_path)
    tasks = [(str(marks), x, 2) for x in range(5)]
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=5)  # noqa: E731
    with running_in_background(call, marks, [2]) as future:
        kill_blocked(marks, 2, signal.SIGKILL)
        results = future.result(timeout=600)
    assert results == [0, 10, 20, 30, 40]
    assert counts(marks, range(5), "finished") == dict.fromkeys(range(5), 1)
    assert counts(marks, range(5), "started") == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}


def test_a_checkpointing_task_killed_three_times_resumes_from_its_checkpoints(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    kill_at = (2, 5, 8)
    pool = make_pool(tmp_path, max_num_resubmissions=3)
    call = lambda: pool.starmap(counting_task, [(str(marks), 10, kill_at)])  # noqa: E731
    with running_in_background(call, marks, kill_at) as future:
        for step in kill_at:
            kill_blocked(marks, step, signal.SIGKILL)
        results = future.result(timeout=600)
    assert results == [sum(s * s for s in range(10))]
    expected = {f"step{s}": 2 if s in kill_at else 1 for s in range(10)}
    assert counts(marks, list(expected), "done") == expected
