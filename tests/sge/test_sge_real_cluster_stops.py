"""A real Grid Engine stops a job mid-chunk: rescheduled (``qmod -rj``), or killed at its ``h_rt``.

Either way the chunk resumes at its first unfinished task, and the task that
checkpoints resumes from its checkpoint: marks the tasks leave count how
often each ran (``killing_tasks.chunk_task``). The tests touch only the jobs
their own map submitted, found in its work_dir's event log.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from killing_tasks import (
    chunk_results,
    chunk_task,
    counts,
    open_gate,
    session_job_ids,
    where_blocked,
)
from real_schedulers import require_scheduler
from session_logs import session_events
from waiting import wait_for

from pypoolparty import sun_grid_engine

pytestmark = pytest.mark.sge

NUM_TASKS = 4
CHECKPOINTING = 2
STEP = 1
# A rescheduled job waits until its execd reported the end of the killed run
# (about a load report interval, 40 s by default) before it runs again.
RERUN_TIMEOUT = 300


@pytest.fixture(autouse=True)
def real_sge():
    require_scheduler("sge")


def make_pool(tmp_path, **options):
    defaults = dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.5,
        missing_result_grace_period=5.0,
        keep_work_dir=True,
        job_name_prefix=f"ppp{uuid.uuid4().hex[:8]}",
    )
    return sun_grid_engine.Pool(**{**defaults, **options})


@contextlib.contextmanager
def map_in_background(pool, marks):
    tasks = [(str(marks), x, CHECKPOINTING, 4, STEP) for x in range(NUM_TASKS)]
    with ThreadPoolExecutor(1) as executor:
        try:
            yield executor.submit(pool.starmap, chunk_task, tasks, chunksize=NUM_TASKS)
        finally:
            open_gate(marks, STEP)


def assert_only_the_stopped_step_ran_again(marks):
    assert counts(marks, range(NUM_TASKS), "finished") == dict.fromkeys(range(NUM_TASKS), 1)
    started = {x: 2 if x == CHECKPOINTING else 1 for x in range(NUM_TASKS)}
    assert counts(marks, range(NUM_TASKS), "started") == started
    steps = [f"step{s}" for s in range(4)]
    assert counts(marks, steps, "done") == {"step0": 1, "step1": 2, "step2": 1, "step3": 1}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_job_rescheduled_with_qmod_rj_resumes_in_the_same_job(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    # -r y: rerunnable, as qmod -rj wants of a job on a queue with "rerun FALSE".
    pool = make_pool(tmp_path, qsub_arguments=["-r", "y"], max_num_resubmissions=0)
    with map_in_background(pool, marks) as future:
        first = where_blocked(marks, STEP)
        (jobid,) = session_job_ids(tmp_path / "work")
        os.remove(marks / f"waiting-{STEP}")
        rescheduled = subprocess.run(["qmod", "-rj", jobid], capture_output=True, text=True)
        assert "escheduling" in rescheduled.stdout + rescheduled.stderr, rescheduled
        wait_for(lambda: not alive(first["pid"]), timeout=60)
        # Run again by Grid Engine, in the same job: it blocks at the lost step.
        again = where_blocked(marks, STEP, timeout=RERUN_TIMEOUT)
        assert again["pid"] != first["pid"]
        open_gate(marks, STEP)
        results = future.result(timeout=RERUN_TIMEOUT)
    assert results == chunk_results(NUM_TASKS, CHECKPOINTING, 4)
    assert_only_the_stopped_step_ran_again(marks)
    events = [e["event"] for e in session_events(tmp_path / "work")]
    assert events.count("submitted") == 1 and "job_failed" not in events


def test_a_job_killed_at_its_h_rt_resumes_and_the_limit_is_named(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(tmp_path, resources={"h_rt": "0:0:10"})
    with map_in_background(pool, marks) as future:
        first = where_blocked(marks, STEP)
        os.remove(marks / f"waiting-{STEP}")
        # Grid Engine kills the job at its h_rt (SIGKILL: no -notify).
        wait_for(lambda: not alive(first["pid"]), timeout=120)
        open_gate(marks, STEP)
        results = future.result(timeout=300)
    assert results == chunk_results(NUM_TASKS, CHECKPOINTING, 4)
    assert_only_the_stopped_step_ran_again(marks)
    # What the map logged of the killed job names the limit (qacct's failed 37).
    told = [
        e for e in session_events(tmp_path / "work") if e["event"] not in ("submitting", "started")
    ]
    assert any("h_rt" in json.dumps(event) for event in told), told
    # Tasks 0 and 1 finished before the kill: tasks 2 and 3 went on in pieces of one.
    (split,) = [e for e in told if e["event"] == "chunk_split"]
    assert (split["tasks"], split["done"]) == ([0, 1], True)
    assert split["pieces"] == [[1, 2, 2], [2, 3, 3]]
