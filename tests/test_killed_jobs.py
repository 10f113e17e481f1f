"""Every pool: a job killed mid-chunk loses at most the task it was running.

The tasks (``killing_tasks.py``) block on a file the test controls, and the
test kills the worker process of the job at that point: with SIGKILL (the
job dies without a word: its chunk is resubmitted, and resumes at its first
unfinished task) or with SIGTERM (what schedulers send before a kill: the
worker stops the chunk and says so, and the chunk is submitted again without
counting as a resubmission). Marks the tasks leave count how often each ran.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

import pytest
from killing_tasks import (
    blocking_task,
    counting_task,
    counts,
    kill_blocked,
    logged,
    map_script,
    open_gate,
    running_in_background,
    where_blocked,
)

from dummy_queues import POOL_KINDS, POOLS, make_pool, pool_paths
from pypoolparty import checkpoint
from pypoolparty.inspection.sessions import only_session
from pypoolparty.inspection.status import session_status


@pytest.fixture
def dummy(pool_kind, dummy_queue):
    """The dummy the pool runs on (None for the local pool)."""
    return dummy_queue(pool_kind)


def pool_for(pool_kind, tmp_path, **options):
    defaults = dict(
        work_dir=str(tmp_path / "work"), polling_interval=0.05, missing_result_grace_period=1.0
    )
    return make_pool(pool_kind, **{**defaults, **options})


def session_files(tmp_path, directory):
    (session,) = (tmp_path / "work").glob("map-*")
    return sorted(p.name for p in (session / directory).glob("*"))


@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_a_job_killed_mid_chunk_keeps_the_tasks_it_finished(pool_kind, dummy, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = pool_for(pool_kind, tmp_path, keep_work_dir=True)
    tasks = [(str(marks), x, 2) for x in range(5)]
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=5)  # noqa: E731
    with running_in_background(call, marks, [2]) as future:
        where_blocked(marks, 2)
        status = session_status(only_session(str(tmp_path / "work")))
        # The chunk runs; its two finished tasks count as done already.
        assert (status.tasks_by_state["done"], status.num_tasks_left) == (2, 3)
        kill_blocked(marks, 2, signal.SIGKILL)
        results = future.result(timeout=300)
    assert results == [0, 10, 20, 30, 40]
    assert counts(marks, range(5), "finished") == dict.fromkeys(range(5), 1)
    # Only the task the kill hit ran again.
    assert counts(marks, range(5), "started") == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}
    assert len(logged(tmp_path, "job_failed")) == 1
    # Folded into the chunk's outcome: no records are left behind.
    assert session_files(tmp_path, "partial") == []


@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_a_job_told_to_stop_resumes_without_counting_as_a_resubmission(pool_kind, dummy, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    # No resubmission allowed: an interruption must not need one.
    pool = pool_for(pool_kind, tmp_path, keep_work_dir=True, max_num_resubmissions=0)
    tasks = [(str(marks), x, 3) for x in range(6)]
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=6)  # noqa: E731
    with running_in_background(call, marks, [3]) as future:
        kill_blocked(marks, 3, signal.SIGTERM)
        results = future.result(timeout=300)
    assert results == [10 * x for x in range(6)]
    assert counts(marks, range(6), "finished") == dict.fromkeys(range(6), 1)
    assert counts(marks, range(6), "started") == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1, 5: 1}
    (interrupted,) = logged(tmp_path, "job_interrupted")
    assert (interrupted["signal"], interrupted["unfinished_tasks"]) == ("SIGTERM", 3)
    assert logged(tmp_path, "job_failed") == []


@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_a_checkpointing_task_killed_three_times_repeats_only_unsaved_steps(
    pool_kind, dummy, tmp_path
):
    marks = tmp_path / "marks"
    marks.mkdir()
    kill_at = (2, 5, 8)
    pool = pool_for(pool_kind, tmp_path, keep_work_dir=True, max_num_resubmissions=3)
    call = lambda: pool.starmap(counting_task, [(str(marks), 10, kill_at)])  # noqa: E731
    with running_in_background(call, marks, kill_at) as future:
        for step in kill_at:
            where_blocked(marks, step)
            if step == kill_at[0]:
                (saved,) = session_files(tmp_path, "checkpoints")
                mode = (tmp_path / "work").glob(f"map-*/checkpoints/{saved}").__next__().stat()
                assert stat.S_IMODE(mode.st_mode) == 0o600
            kill_blocked(marks, step, signal.SIGKILL)
        results = future.result(timeout=300)
    assert results == [sum(s * s for s in range(10))]
    steps = [f"step{s}" for s in range(10)]
    # Each kill lost the one step not yet saved; every other step ran once.
    expected = {f"step{s}": 2 if s in kill_at else 1 for s in range(10)}
    assert counts(marks, steps, "done") == expected
    assert session_files(tmp_path, "checkpoints") == []


def save_or_list_checkpoints(x):
    if x == 0:
        checkpoint.save("state of task 0")
        return []
    return sorted(os.listdir(os.path.dirname(checkpoint.current_path())))


def test_a_finished_tasks_checkpoint_is_gone_before_the_next_task_starts(tmp_path):
    pool = pool_for("local", tmp_path)
    assert pool.map(save_or_list_checkpoints, [0, 1], chunksize=2) == [[], []]


def test_checkpoints_do_nothing_outside_a_map(tmp_path):
    checkpoint.save({"step": 3})
    assert checkpoint.load(default="nothing saved") == "nothing saved"
    assert checkpoint.load() is None
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_a_map_stopped_mid_chunk_continues_at_the_first_unfinished_task(pool_kind, dummy, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    options = dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        missing_result_grace_period=1.0,
        **pool_paths(pool_kind),
    )
    script = map_script(tmp_path / "map.py", POOLS[pool_kind][0], options, marks, 5, 2)
    first = subprocess.Popen([sys.executable, script], stdout=subprocess.PIPE, text=True)
    try:
        where_blocked(marks, 2)
        # The map's process stops (SIGTERM): it cancels its jobs and keeps its work_dir.
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=120) != 0
        status = session_status(only_session(str(tmp_path / "work")))
        assert (status.tasks_by_state["done"], status.num_tasks_left) == (2, 3)
    finally:
        open_gate(marks, 2)
    again = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=300, check=True
    )
    assert again.stdout.strip() == str([0, 10, 20, 30, 40])
    assert counts(marks, range(5), "finished") == dict.fromkeys(range(5), 1)
    assert counts(marks, range(5), "started") == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}
