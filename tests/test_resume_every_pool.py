"""Every pool: the submitting process is killed (SIGKILL) at a chosen moment,
the same map is called again, and no task that finished runs a second time.

The cluster pools run against the dummy queues, whose jobs outlive the killed
process as real jobs would; each task leaves a "finished" mark to count runs.
"""

import os
import signal
import subprocess
import sys

import pytest
from session_logs import session_events

from dummy_queues import POOL_KINDS, POOLS, make_pool, pool_paths
from pypoolparty import crash_points

SCRIPT = """
import importlib, os, sys, time

pool_module, paths, work_dir, marks = sys.argv[1], eval(sys.argv[2]), sys.argv[3], sys.argv[4]

def record(x):
    time.sleep(0.1)
    with open(os.path.join(marks, str(x)), "a") as file:
        file.write("finished\\n")
    return x + 100

if __name__ == "__main__":
    module = importlib.import_module(pool_module)
    pool = module.Pool(
        work_dir=work_dir, polling_interval=0.05, missing_result_grace_period=1.0, **paths
    )
    print(pool.map(record, range(10), chunksize=1))
"""


@pytest.fixture
def dummy(pool_kind, dummy_queue):
    """The dummy the pool runs on (None for the local pool)."""
    return dummy_queue(pool_kind)


@pytest.mark.parametrize("crash_at", crash_points.POINTS)
@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_a_killed_map_continues_without_running_finished_tasks_again(
    pool_kind, crash_at, dummy, tmp_path
):
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    arguments = [
        sys.executable,
        str(script),
        POOLS[pool_kind][0],
        repr(pool_paths(pool_kind)),
        str(tmp_path / "work"),
        str(marks),
    ]
    env = {k: v for k, v in os.environ.items() if k != crash_points.VARIABLE}

    killed = subprocess.run(
        arguments,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, crash_points.VARIABLE: crash_at},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = subprocess.run(arguments, capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str([x + 100 for x in range(10)])
    runs = {path.name: path.read_text().count("finished") for path in marks.iterdir()}
    assert runs == {str(x): 1 for x in range(10)}


@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_recovering_a_submission_the_scheduler_never_took_finds_no_job(pool_kind, dummy, tmp_path):
    from pypoolparty.scheduler import Submission, WorkerCall

    pool = make_pool(pool_kind)
    directory = tmp_path / "submission"
    directory.mkdir()
    submission = Submission(
        chunks=[0, 1, 2],
        job_name="ppp-never-1",
        worker=WorkerCall(sys.executable, "worker.py", str(tmp_path)),
        directory=str(directory),
    )
    assert pool._make_scheduler().recover(submission) == []


def fails_on_two(x):
    if x == 2:
        raise ValueError("two")
    return x


@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_calling_a_map_again_after_a_task_failed_submits_its_chunk_at_once(
    pool_kind, dummy, tmp_path
):
    """The job of a chunk with a failed task has ended and its outcome was
    read: the next call must not adopt it and wait for a result it already
    gave (missing_result_grace_period), but submit the chunk again at once."""
    pool = make_pool(pool_kind, work_dir=str(tmp_path / "work"), polling_interval=0.05)
    for _ in range(2):
        with pytest.raises(ValueError, match="two"):
            pool.map(fails_on_two, range(4), chunksize=1)
    events = session_events(tmp_path / "work")
    assert [e for e in events if e["event"] == "job_failed"] == []
    resumed = [e for e in events if e["event"] == "session_resumed"]
    assert [e["adopted_jobs"] for e in resumed] == [0]
    second_call = events[max(i for i, e in enumerate(events) if e["event"] == "session_started") :]
    submitted_again = [
        row[1] for e in second_call if e["event"] == "submitted" for row in e.get("jobs", ())
    ]
    assert submitted_again == [2]  # the chunk with the failed task, and only it


A_MAP_THAT_WAITED_THE_GRACE_PERIOD_WOULD_NOT_END = 60
"""Seconds the second call may take; it would wait an hour of grace."""


@pytest.mark.parametrize("pool_kind", ["local", "sge"])
def test_calling_a_failed_map_again_does_not_wait_for_the_earlier_calls_jobs(
    pool_kind, dummy, tmp_path
):
    """Issue 17, items 17 and 21, with claiming: one job ran every chunk, and
    the slot is the map's only one. A scheduler that forgets a finished job
    (local processes, Grid Engine's qstat) lists it no more: the next call
    must take it as gone, not wait missing_result_grace_period for it to be
    listed before the failed chunk gets the slot."""
    pool = make_pool(
        pool_kind,
        1,
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        missing_result_grace_period=3600,
    )
    try:
        with pytest.raises(ValueError, match="two"):
            pool.map(fails_on_two, range(4), chunksize=1)
        again = pool.map_async(fails_on_two, range(4), chunksize=1)
        with pytest.raises(ValueError, match="two"):
            again.get(timeout=A_MAP_THAT_WAITED_THE_GRACE_PERIOD_WOULD_NOT_END)
    finally:
        pool.terminate()
    events = session_events(tmp_path / "work")
    first_call = events[: max(i for i, e in enumerate(events) if e["event"] == "session_started")]
    assert [e["chunks"] for e in first_call if e["event"] == "submitting"] == [[[0, 0]]]
    second_call = events[len(first_call) :]
    submitted_again = [
        row[1] for e in second_call if e["event"] == "submitted" for row in e.get("jobs", ())
    ]
    assert submitted_again == [2]
