"""A real SLURM requeues a job and kills one at its time limit: what each map keeps.

The chunks hold a checkpointing task (``killing_tasks.chunk_task``) that
blocks on a file the test controls, so ``scontrol requeue`` and SLURM's
warning before the time limit (``--signal=B:USR1@59`` with ``time=1``: SLURM
sends it within the job's first 30 s or so) hit it at a known step; the
warned chunk's unfinished tasks go on in pieces (``pypoolparty.splitting``).
Marks the tasks leave count how often each task and step ran.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest
from killing_tasks import (
    blocking_task,
    chunk_results,
    chunk_task,
    counts,
    logged,
    open_gate,
    running_in_background,
    where_blocked,
)
from real_schedulers import require_scheduler
from waiting import wait_for

import pypoolparty
import pypoolparty.slurm.array

pytestmark = pytest.mark.slurm
FAST_WARNING = dict(time=1, time_limit_warning=59)
"""The shortest limit SLURM has, with its warning as early as it goes."""


@pytest.fixture(autouse=True)
def real_slurm():
    require_scheduler("slurm")


def make_pool(tmp_path, **options):
    defaults = dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.2,
        missing_result_grace_period=2.0,
        job_name_prefix=f"ppp{uuid.uuid4().hex[:8]}",
        keep_work_dir=True,
        # A stop is no resubmission: none is allowed.
        max_num_resubmissions=0,
    )
    return pypoolparty.slurm.array.Pool(**{**defaults, **options})


def scontrol(*args: str) -> None:
    subprocess.run(["scontrol", *args], check=True, capture_output=True, timeout=60)


def assert_resumed_once(marks, num_tasks, slow):
    """No finished task ran again; the slow task resumed from its checkpoint at step 3."""
    assert counts(marks, range(num_tasks), "finished") == dict.fromkeys(range(num_tasks), 1)
    started = counts(marks, range(num_tasks), "started")
    assert started == {x: 2 if x == slow else 1 for x in range(num_tasks)}
    steps = [f"step{s}" for s in range(6)]
    assert counts(marks, steps, "done") == {f"step{s}": 2 if s == 3 else 1 for s in range(6)}


def test_a_job_requeued_mid_chunk_keeps_its_id_and_resumes(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(tmp_path)
    tasks = [(str(marks), x, 2) for x in range(5)]
    call = lambda: pool.starmap(chunk_task, tasks, chunksize=5)  # noqa: E731
    with running_in_background(call, marks, [3]) as future:
        jobid = where_blocked(marks, 3)["slurm_job_id"]
        (marks / "waiting-3").unlink()
        scontrol("requeue", jobid)
        # SLURM keeps a requeued job pending for about two minutes: once the
        # map saw it pending again (and waits), let it start in 2 s. Not at
        # once: a start within the second of the requeue finds the job's
        # credential revoked, and SLURM fails the job (seen on 22.05).
        wait_for(lambda: logged(tmp_path, "job_interrupted"), timeout=120)
        scontrol("update", f"jobid={jobid}", "StartTime=now+2")
        assert where_blocked(marks, 3)["slurm_job_id"] == jobid
        open_gate(marks, 3)
        results = future.result(timeout=300)
    assert results == chunk_results(5, 2)
    assert_resumed_once(marks, 5, 2)
    (stop,) = logged(tmp_path, "job_interrupted")
    assert (stop["cause"], stop["scheduler_state"], stop["signal"]) == (
        "requeued",
        "PENDING",
        "SIGTERM",
    )
    # The same job ran the chunk again: one submission.
    assert len(logged(tmp_path, "submitted")) == 1


def test_a_job_warned_before_its_time_limit_goes_on_in_pieces_in_new_jobs(tmp_path):
    """The job finishes tasks 0 and 1, then the warning stops it in task 2: tasks
    2..4 go on in pieces of one task (half the two it finished), task 2 from
    its checkpoint."""
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(tmp_path, **FAST_WARNING)
    tasks = [(str(marks), x, 2) for x in range(5)]
    call = lambda: pool.starmap(chunk_task, tasks, chunksize=5)  # noqa: E731
    with running_in_background(call, marks, [3]) as future:
        # The task waits at step 3 until SLURM's warning stops its job.
        first = where_blocked(marks, 3)["slurm_job_id"]
        (marks / "waiting-3").unlink()
        assert where_blocked(marks, 3, timeout=180)["slurm_job_id"] != first
        open_gate(marks, 3)
        results = future.result(timeout=300)
    assert results == chunk_results(5, 2)
    assert_resumed_once(marks, 5, 2)
    (stop,) = logged(tmp_path, "job_interrupted")
    assert (stop["cause"], stop["signal"]) == ("time_limit", "SIGUSR1")
    assert logged(tmp_path, "job_failed") == []
    (split,) = logged(tmp_path, "chunk_split")
    assert (split["ichunk"], split["tasks"], split["done"]) == (0, [0, 1], True)
    assert split["pieces"] == [[1, 2, 2], [2, 3, 3], [3, 4, 4]]
    done = {event["ichunk"] for event in logged(tmp_path, "chunk_done")}
    assert done == {0, 1, 2, 3}
    # The pieces' jobs: at least two in one sbatch call (one per free slot).
    pieces = logged(tmp_path, "submitted")[1]
    assert len(pieces["jobs"]) >= 2 and {row[1] for row in pieces["jobs"]} <= {1, 2, 3}


def test_a_task_alone_longer_than_the_limit_ends_the_map_and_a_longer_limit_continues_it(
    tmp_path,
):
    marks = tmp_path / "marks"
    marks.mkdir()
    # The job stops in task 0, before any task finished.
    tasks = [(str(marks), x, 0) for x in range(3)]
    pool = make_pool(tmp_path, **FAST_WARNING)
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=3)  # noqa: E731
    with running_in_background(call, marks, []) as future:
        with pytest.raises(pypoolparty.TimeLimitTooShort) as raised:
            future.result(timeout=300)
    message = str(raised.value)
    assert "task 0 (chunk 0" in message and "time='1'" in message
    assert "It ran for " in message
    assert len(logged(tmp_path, "submitted")) == 1  # no job with the same limit again
    # Once the task can end (as with a longer limit), the same map continues:
    # the tasks that finished are kept.
    open_gate(marks, 0)
    again = make_pool(tmp_path, time=5)
    assert again.starmap(blocking_task, tasks, chunksize=3) == [0, 10, 20]
    assert counts(marks, range(3), "finished") == dict.fromkeys(range(3), 1)
    assert counts(marks, range(3), "started") == {0: 2, 1: 1, 2: 1}
