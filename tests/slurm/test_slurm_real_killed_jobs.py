"""A real SLURM kills a job mid-chunk: the finished tasks are kept, a checkpoint resumes.

The test signals its own job (``scancel --signal``, by the job id the task
reports) while the task blocks on a file the test controls; marks the tasks
leave count how often each ran.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest
from killing_tasks import (
    blocking_task,
    counting_task,
    counts,
    logged,
    map_script,
    open_gate,
    running_in_background,
    where_blocked,
)
from real_schedulers import require_scheduler
from waiting import wait_for

import pypoolparty.slurm
import pypoolparty.slurm.array

pytestmark = pytest.mark.slurm
POOLS = [pypoolparty.slurm.array.Pool, pypoolparty.slurm.Pool]


@pytest.fixture(autouse=True)
def real_slurm():
    require_scheduler("slurm")


def make_pool(pool_class, tmp_path, **options):
    defaults = dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.2,
        missing_result_grace_period=2.0,
        job_name_prefix=f"ppp{uuid.uuid4().hex[:8]}",
        keep_work_dir=True,
    )
    return pool_class(**{**defaults, **options})


def signal_job(marks, name, signal_name, *scancel_options):
    """``scancel --signal`` the job whose task blocks at ``name``; let later runs pass."""
    where = where_blocked(marks, name)
    (marks / f"waiting-{name}").unlink()
    jobid = where["slurm_job_id"]
    assert jobid, "the task did not run as a SLURM job"
    subprocess.run(["scancel", f"--signal={signal_name}", *scancel_options, jobid], check=True)
    # scancel only asks, and the controller shows the job ending before its
    # processes got the signal: the gate opens once the job has left the
    # queue, or the task could pass it first.
    wait_for(lambda: job_state(jobid) == "", timeout=120)
    open_gate(marks, name)


def job_state(jobid: str) -> str:
    """The job's state as ``squeue`` shows it; '' once it left the queue.

    A failed ``squeue`` (a busy controller) says nothing: the job counts as
    running still, so that no gate opens before the signal arrived.
    """
    shown = subprocess.run(["squeue", "-h", "-o", "%A|%T"], capture_output=True, text=True)
    if shown.returncode != 0:
        return "RUNNING"
    states = dict(line.split("|", 1) for line in shown.stdout.splitlines() if "|" in line)
    return states.get(jobid, "")


@pytest.mark.parametrize("pool_class", POOLS)
def test_a_cancelled_job_keeps_the_tasks_it_finished(pool_class, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(pool_class, tmp_path)
    tasks = [(str(marks), x, 2) for x in range(5)]
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=5)  # noqa: E731
    with running_in_background(call, marks, [2]) as future:
        signal_job(marks, 2, "KILL")
        results = future.result(timeout=600)
    assert results == [0, 10, 20, 30, 40]
    assert counts(marks, range(5), "finished") == dict.fromkeys(range(5), 1)
    assert counts(marks, range(5), "started") == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}
    # SLURM kills a job with SIGTERM, then SIGKILL after KillWait: the worker
    # stops on the first and says so, or dies of the second.
    stops = logged(tmp_path, "job_interrupted") + logged(tmp_path, "job_failed")
    assert len(stops) == 1


@pytest.mark.parametrize("pool_class", POOLS)
def test_a_job_whose_worker_is_killed_without_warning_keeps_its_finished_tasks(
    pool_class, tmp_path
):
    """As the kernel's OOM killer does: SIGKILL to the worker, nothing before."""
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(pool_class, tmp_path)
    tasks = [(str(marks), x, 2) for x in range(5)]
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=5)  # noqa: E731
    with running_in_background(call, marks, [2]) as future:
        where = where_blocked(marks, 2)
        # The job runs on this machine (the CI cluster is one node).
        os.kill(where["pid"], signal.SIGKILL)
        wait_for(lambda: job_state(where["slurm_job_id"]) == "", timeout=120)
        open_gate(marks, 2)
        results = future.result(timeout=600)
    assert results == [0, 10, 20, 30, 40]
    assert counts(marks, range(5), "finished") == dict.fromkeys(range(5), 1)
    assert counts(marks, range(5), "started") == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}
    assert len(logged(tmp_path, "job_failed")) == 1


def test_a_job_sent_sigterm_stops_and_its_chunk_resumes(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(pypoolparty.slurm.array.Pool, tmp_path, max_num_resubmissions=0)
    tasks = [(str(marks), x, 3) for x in range(6)]
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=6)  # noqa: E731
    with running_in_background(call, marks, [3]) as future:
        # --full: the batch step too, where the worker runs.
        signal_job(marks, 3, "TERM", "--full")
        results = future.result(timeout=600)
    assert results == [10 * x for x in range(6)]
    assert counts(marks, range(6), "finished") == dict.fromkeys(range(6), 1)
    assert counts(marks, range(6), "started") == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1, 5: 1}
    (interrupted,) = logged(tmp_path, "job_interrupted")
    assert interrupted["signal"] == "SIGTERM"


def test_a_checkpointing_task_killed_three_times_resumes_from_its_checkpoints(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    kill_at = (2, 5, 8)
    pool = make_pool(pypoolparty.slurm.array.Pool, tmp_path, max_num_resubmissions=3)
    call = lambda: pool.starmap(counting_task, [(str(marks), 10, kill_at)])  # noqa: E731
    with running_in_background(call, marks, kill_at) as future:
        for step in kill_at:
            signal_job(marks, step, "KILL")
        results = future.result(timeout=600)
    assert results == [sum(s * s for s in range(10))]
    expected = {f"step{s}": 2 if s in kill_at else 1 for s in range(10)}
    assert counts(marks, list(expected), "done") == expected


def test_a_map_stopped_mid_chunk_continues_at_the_first_unfinished_task(tmp_path):
    """The stopped map cancels its job; SLURM's SIGTERM makes the worker say
    ``interrupted``, and the next call continues from the records."""
    marks = tmp_path / "marks"
    marks.mkdir()
    options = dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.2,
        missing_result_grace_period=2.0,
        job_name_prefix=f"ppp{uuid.uuid4().hex[:8]}",
        keep_work_dir=True,
    )
    script = map_script(tmp_path / "map.py", "pypoolparty.slurm.array", options, marks, 5, 2)
    first = subprocess.Popen([sys.executable, script], stdout=subprocess.PIPE, text=True)
    try:
        where = where_blocked(marks, 2)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=120) != 0
        wait_for(lambda: job_state(where["slurm_job_id"]) == "", timeout=120)
    finally:
        open_gate(marks, 2)
    again = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=600, check=True
    )
    assert again.stdout.strip() == str([0, 10, 20, 30, 40])
    assert counts(marks, range(5), "finished") == dict.fromkeys(range(5), 1)
    assert counts(marks, range(5), "started") == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}
    (interrupted,) = logged(tmp_path, "job_interrupted")
    assert interrupted["signal"] == "SIGTERM"
