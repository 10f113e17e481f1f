"""Both SLURM pools on the dummy SLURM: time limits, preemption and requeues.

The dummy enforces ``--time`` and sends ``--signal`` as SLURM does, on a
clock ``time_scale`` times SLURM's (faults.json), so a 1-minute limit lasts
seconds. The tasks block on gates the test opens (``killing_tasks.py``), so
the warning signal, a preemption or a requeue hits a known task; marks the
tasks leave count how often each ran.
"""

from __future__ import annotations

import subprocess
import sys

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
from waiting import wait_for

import pypoolparty.slurm
import pypoolparty.slurm.array
from pypoolparty.errors import JobCannotRun, TimeLimitTooShort

POOLS = [pypoolparty.slurm.array.Pool, pypoolparty.slurm.Pool]
SCALE = 0.1
"""A dummy second lasts 0.1 s: ``time=1`` kills a job after 6 s, its default
warning (half the limit) comes after 3 s."""


def make_pool(pool_class, dummy_slurm, tmp_path, **options):
    defaults = dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        missing_result_grace_period=1.0,
        keep_work_dir=True,
        # A stop is no resubmission: none is allowed.
        max_num_resubmissions=0,
    )
    return pool_class(**{**defaults, **dummy_slurm.paths, **options})


def blocked_again(marks, name) -> None:
    """Wait until the task at ``name`` blocks, forget that, and wait until it blocks again."""
    where_blocked(marks, name)
    (marks / f"waiting-{name}").unlink()
    where_blocked(marks, name)


def running_job(dummy_slurm) -> str:
    """The id of the one job that runs, as scontrol and faults.json name it."""
    running = wait_for(lambda: [j for j in dummy_slurm.jobs() if j["state"] == "RUNNING"])
    (job,) = running
    return (
        f"{job['array_job_id']}_{job['task']}"
        if job["task"] is not None
        else str(job["array_job_id"])
    )


def sbatch_calls(dummy_slurm) -> int:
    return dummy_slurm.state()["next_jobid"] - 1


@pytest.mark.parametrize("pool_class", POOLS)
def test_the_time_limit_warning_stops_the_job_and_its_unfinished_tasks_run_again(
    pool_class, dummy_slurm, tmp_path
):
    dummy_slurm.set_faults(time_scale=SCALE)
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(pool_class, dummy_slurm, tmp_path, time=1)
    tasks = [(str(marks), x, 2) for x in range(5)]
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=5)  # noqa: E731
    with running_in_background(call, marks, [2]) as future:
        # The first job is told to stop while task 2 blocks; the next one
        # starts at task 2.
        blocked_again(marks, 2)
        open_gate(marks, 2)
        results = future.result(timeout=120)
    assert results == [10 * x for x in range(5)]
    assert counts(marks, range(5), "finished") == dict.fromkeys(range(5), 1)
    assert counts(marks, range(5), "started") == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}
    first = dummy_slurm.jobs()[0]
    assert (first["options"]["signal"], first["state"]) == ("B:USR1@30", "COMPLETED")
    (stop,) = logged(tmp_path, "job_interrupted")
    assert (stop["cause"], stop["signal"], stop["unfinished_tasks"]) == ("time_limit", "SIGUSR1", 3)
    assert logged(tmp_path, "job_failed") == []


def test_a_job_killed_at_its_time_limit_without_warning_resumes_too(dummy_slurm, tmp_path):
    dummy_slurm.set_faults(time_scale=SCALE)
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(
        pypoolparty.slurm.array.Pool, dummy_slurm, tmp_path, time=1, time_limit_warning=0
    )
    tasks = [(str(marks), x, 1) for x in range(3)]
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=3)  # noqa: E731
    with running_in_background(call, marks, [1]) as future:
        blocked_again(marks, 1)
        open_gate(marks, 1)
        results = future.result(timeout=120)
    assert results == [0, 10, 20]
    assert counts(marks, range(3), "started") == {0: 1, 1: 2, 2: 1}
    assert "signal" not in dummy_slurm.jobs()[0]["options"]
    assert dummy_slurm.jobs()[0]["state"] == "TIMEOUT"
    (stop,) = logged(tmp_path, "job_interrupted")
    assert (stop["cause"], stop["scheduler_state"], stop["signal"]) == (
        "time_limit",
        "TIMEOUT",
        "SIGTERM",
    )


def test_a_task_alone_longer_than_the_limit_ends_the_map_at_once(dummy_slurm, tmp_path):
    dummy_slurm.set_faults(time_scale=SCALE)
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(pypoolparty.slurm.array.Pool, dummy_slurm, tmp_path, time=1)
    # Chunks 0 and 1; task 3, first of chunk 1, never ends within a job.
    tasks = [(str(marks), x, 3) for x in range(6)]
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=3)  # noqa: E731
    with running_in_background(call, marks, [3]) as future:
        with pytest.raises(TimeLimitTooShort) as raised:
            future.result(timeout=120)
    message = str(raised.value)
    assert isinstance(raised.value, JobCannotRun)
    assert "task 3 (chunk 1, job 1_1)" in message
    assert "time='1'" in message and "'time' option" in message
    assert "It ran for " in message
    assert "call the same map with work_dir" not in message  # no plain retry
    # Nothing was submitted again: one job per chunk.
    assert sbatch_calls(dummy_slurm) == 1 and len(dummy_slurm.jobs()) == 2
    (failed,) = logged(tmp_path, "job_failed")
    assert failed["ichunk"] == 1 and "time" in failed["fix"]


def test_a_checkpointing_task_longer_than_the_limit_goes_on_in_the_next_job(dummy_slurm, tmp_path):
    """A saved checkpoint is progress: the task resumes from it instead of ending the map."""
    dummy_slurm.set_faults(time_scale=SCALE)
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(pypoolparty.slurm.array.Pool, dummy_slurm, tmp_path, time=1)
    call = lambda: pool.starmap(counting_task, [(str(marks), 6, (3,))])  # noqa: E731
    with running_in_background(call, marks, [3]) as future:
        blocked_again(marks, 3)
        open_gate(marks, 3)
        results = future.result(timeout=120)
    assert results == [sum(s * s for s in range(6))]
    steps = [f"step{s}" for s in range(6)]
    # Steps 0 to 2 were saved before the warning; step 3 was not and ran again.
    assert counts(marks, steps, "done") == {f"step{s}": 2 if s == 3 else 1 for s in range(6)}
    (stop,) = logged(tmp_path, "job_interrupted")
    assert (stop["cause"], stop["got_something_done"]) == ("time_limit", True)


@pytest.mark.parametrize("pool_class", POOLS)
def test_a_preempted_job_runs_its_unfinished_tasks_again_without_counting(
    pool_class, dummy_slurm, tmp_path
):
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(pool_class, dummy_slurm, tmp_path)
    tasks = [(str(marks), x, 2) for x in range(4)]
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=4)  # noqa: E731
    with running_in_background(call, marks, [2]) as future:
        where_blocked(marks, 2)
        (marks / "waiting-2").unlink()
        dummy_slurm.set_faults(stop_jobs={running_job(dummy_slurm): "PREEMPTED"})
        where_blocked(marks, 2)
        open_gate(marks, 2)
        results = future.result(timeout=120)
    assert results == [0, 10, 20, 30]
    assert counts(marks, range(4), "started") == {0: 1, 1: 1, 2: 2, 3: 1}
    assert dummy_slurm.jobs()[0]["state"] == "PREEMPTED"
    (stop,) = logged(tmp_path, "job_interrupted")
    assert (stop["cause"], stop["scheduler_state"]) == ("cluster", "PREEMPTED")
    assert logged(tmp_path, "job_failed") == []


@pytest.mark.parametrize("pool_class", POOLS)
def test_a_requeued_job_keeps_its_id_and_continues_the_chunk(pool_class, dummy_slurm, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(pool_class, dummy_slurm, tmp_path)
    tasks = [(str(marks), x, 2) for x in range(4)]
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=4)  # noqa: E731
    with running_in_background(call, marks, [2]) as future:
        where_blocked(marks, 2)
        (marks / "waiting-2").unlink()
        jobid = running_job(dummy_slurm)
        completed = dummy_slurm.run("scontrol", "requeue", jobid)
        assert completed.returncode == 0, completed.stderr
        # Pending again, as in SLURM for two minutes: the map waits for it.
        wait_for(lambda: logged(tmp_path, "job_interrupted"), timeout=60)
        assert dummy_slurm.jobs()[0]["state"] == "PENDING"
        dummy_slurm.run("scontrol", "update", f"jobid={jobid}", "StartTime=now")
        where_blocked(marks, 2)
        open_gate(marks, 2)
        results = future.result(timeout=120)
    assert results == [0, 10, 20, 30]
    assert counts(marks, range(4), "started") == {0: 1, 1: 1, 2: 2, 3: 1}
    # The same job ran twice; nothing else was submitted.
    assert sbatch_calls(dummy_slurm) == 1
    (job,) = dummy_slurm.jobs()
    assert (job["state"], job["restarts"]) == ("COMPLETED", 1)
    (stop,) = logged(tmp_path, "job_interrupted")
    assert (stop["cause"], stop["signal"]) == ("requeued", "SIGTERM")


MAPS = {
    "starmap": lambda pool, tasks: pool.starmap(blocking_task, tasks, chunksize=8),
    # Results handed out as chunks finish, pieces included.
    "imap": lambda pool, tasks: list(pool.imap(lambda t: blocking_task(*t), tasks, chunksize=8)),
}


@pytest.mark.parametrize("how", sorted(MAPS))
def test_a_time_limited_chunk_goes_on_in_pieces_that_fit_and_keeps_its_finished_tasks(
    how, dummy_slurm, tmp_path
):
    """The job finishes tasks 0..3 before the warning stops it in task 4: its
    other tasks go on in pieces of 4 // 2 tasks, submitted together; none of
    tasks 0..3 runs again, and ``pypoolparty status`` reads the split map."""
    dummy_slurm.set_faults(time_scale=SCALE)
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(pypoolparty.slurm.array.Pool, dummy_slurm, tmp_path, time=1)
    tasks = [(str(marks), x, 4) for x in range(8)]
    call = lambda: MAPS[how](pool, tasks)  # noqa: E731
    with running_in_background(call, marks, [4]) as future:
        where_blocked(marks, 4)
        wait_for(lambda: logged(tmp_path, "chunk_split"), timeout=60)
        open_gate(marks, 4)
        results = future.result(timeout=120)
    assert results == [10 * x for x in range(8)]
    assert counts(marks, range(8), "finished") == dict.fromkeys(range(8), 1)
    assert counts(marks, range(8), "started") == {x: 2 if x == 4 else 1 for x in range(8)}
    (split,) = logged(tmp_path, "chunk_split")
    assert (split["ichunk"], split["tasks"], split["done"]) == (0, [0, 3], True)
    assert split["pieces"] == [[1, 4, 5], [2, 6, 7]]
    # The pieces in one sbatch call, a job each.
    first, pieces = logged(tmp_path, "submitted")
    assert sorted(row[1] for row in pieces["jobs"]) == [1, 2]
    assert sbatch_calls(dummy_slurm) == 2 and len(dummy_slurm.jobs()) == 3
    (stop,) = logged(tmp_path, "job_interrupted")
    assert (stop["cause"], stop["unfinished_tasks"]) == ("time_limit", 4)
    assert logged(tmp_path, "job_failed") == []
    (session,) = (tmp_path / "work").glob("map-*")
    shown = command_line("status", session)
    assert "8 tasks in 3 chunks" in shown.stdout and "2 of them pieces" in shown.stdout
    assert "tasks:    8 done" in shown.stdout and "0 resubmissions" in shown.stdout
    traced = command_line("timeline", session, "-o", tmp_path / "trace.json")
    assert "8 task(s) in 3 chunk run(s)" in traced.stderr


def command_line(*args) -> subprocess.CompletedProcess:
    """``pypoolparty ARGS``, which must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "pypoolparty", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_a_map_killed_after_splitting_a_chunk_continues_with_its_pieces(dummy_slurm, tmp_path):
    """The submitter is killed (SIGKILL) once the pieces run; the same map called
    again finds the chunks as they were cut, adopts the pieces' jobs and
    returns every result in order, with no finished task run again."""
    dummy_slurm.set_faults(time_scale=SCALE)
    marks = tmp_path / "marks"
    marks.mkdir()
    options = dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        missing_result_grace_period=1.0,
        max_num_resubmissions=0,
        keep_work_dir=True,
        time=1,
        **dummy_slurm.paths,
    )
    script = map_script(tmp_path / "map.py", "pypoolparty.slurm.array", options, marks, 8, 4)
    first = subprocess.Popen([sys.executable, script], stdout=subprocess.PIPE, text=True)
    try:
        # Task 4 blocks in the chunk's job, then again in its piece's job.
        blocked_again(marks, 4)
        first.kill()
        first.wait(timeout=60)
    finally:
        open_gate(marks, 4)
    again = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=300, check=True
    )
    assert again.stdout.strip() == str([10 * x for x in range(8)])
    assert counts(marks, range(8), "finished") == dict.fromkeys(range(8), 1)
    assert counts(marks, range(8), "started") == {x: 2 if x == 4 else 1 for x in range(8)}
    (split,) = logged(tmp_path, "chunk_split")
    assert split["pieces"] == [[1, 4, 5], [2, 6, 7]]
    # The pieces' jobs were adopted: nothing was submitted after the kill.
    assert len(logged(tmp_path, "submitted")) == 2 and sbatch_calls(dummy_slurm) == 2
    # Chunk 0 and the pieces done before the kill are reused, the others' jobs adopted.
    (resumed,) = logged(tmp_path, "session_resumed")
    assert resumed["done"] + resumed["adopted_jobs"] == 3 and resumed["adopted_jobs"] >= 1
