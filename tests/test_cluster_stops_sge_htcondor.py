"""The dummy Grid Engine and HTCondor stop jobs as the real ones do.

A Grid Engine job rescheduled with ``qmod -f -rj`` and an HTCondor job
vacated with ``condor_vacate_job`` run again by themselves; a Grid Engine job
that reaches its ``h_rt`` is killed and the adapter names the limit. The
chunk's tasks (``killing_tasks.chunk_task``) leave marks that count how often
each ran; one of them checkpoints. The same events on the real schedulers:
``tests/sge/test_sge_real_cluster_stops.py``,
``tests/htcondor/test_htcondor_real_vacate.py``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from killing_tasks import (
    blocking_task,
    chunk_results,
    chunk_task,
    counts,
    open_gate,
    running_in_background,
    session_job_ids,
    where_blocked,
)
from session_logs import session_events
from waiting import wait_for

from dummy_queues import make_pool
from pypoolparty import commands
from pypoolparty.scheduler import JobState, Submission, WorkerCall
from pypoolparty.sun_grid_engine.options import checked_options
from pypoolparty.sun_grid_engine.scheduler import CommandPaths, GridEngineScheduler

NUM_TASKS = 4
SGE_SAMPLES = Path(__file__).parent / "sge" / "samples"
CHECKPOINTING = 2  # the task that checkpoints, and where the job is stopped
STEP = 1  # its step at which it blocks


def map_a_chunk(pool, marks):
    tasks = [(str(marks), x, CHECKPOINTING, 4, STEP) for x in range(NUM_TASKS)]
    return lambda: pool.starmap(chunk_task, tasks, chunksize=NUM_TASKS)


def assert_only_the_stopped_step_ran_again(marks):
    assert counts(marks, range(NUM_TASKS), "finished") == dict.fromkeys(range(NUM_TASKS), 1)
    started = {x: 2 if x == CHECKPOINTING else 1 for x in range(NUM_TASKS)}
    assert counts(marks, range(NUM_TASKS), "started") == started
    # Resumed from its checkpoint: only the step not saved yet ran twice.
    steps = [f"step{s}" for s in range(4)]
    assert counts(marks, steps, "done") == {"step0": 1, "step1": 2, "step2": 1, "step3": 1}


def pool_options(tmp_path, **options):
    return dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        missing_result_grace_period=1.0,
        keep_work_dir=True,
        **options,
    )


def test_a_grid_engine_job_rescheduled_mid_chunk_resumes_in_the_same_job(dummy_queue, tmp_path):
    dummy = dummy_queue("sge")
    marks = tmp_path / "marks"
    marks.mkdir()
    # No resubmission allowed: the rescheduled job runs again by itself.
    pool = make_pool("sge", **pool_options(tmp_path, max_num_resubmissions=0))
    with running_in_background(map_a_chunk(pool, marks), marks, [STEP]) as future:
        where_blocked(marks, STEP)
        (jobid,) = session_job_ids(tmp_path / "work")
        refused = dummy.run("qmod", "-rj", jobid)
        assert "not rerunable" in refused.stdout
        os.remove(marks / f"waiting-{STEP}")
        forced = dummy.run("qmod", "-f", "-rj", jobid)
        assert f"Forced rescheduling of job-array task {jobid}" in forced.stdout
        # The rerun blocks again at the step it lost; then it may pass.
        where_blocked(marks, STEP)
        open_gate(marks, STEP)
        results = future.result(timeout=300)
    assert results == chunk_results(NUM_TASKS, CHECKPOINTING, 4)
    assert_only_the_stopped_step_ran_again(marks)
    # One job, run twice: never cancelled nor resubmitted.
    events = [e["event"] for e in session_events(tmp_path / "work")]
    assert events.count("submitted") == 1 and "job_failed" not in events


def test_an_htcondor_job_vacated_mid_chunk_resumes_without_a_resubmission(dummy_queue, tmp_path):
    dummy = dummy_queue("htcondor")
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool("htcondor", **pool_options(tmp_path, max_num_resubmissions=0))
    with running_in_background(map_a_chunk(pool, marks), marks, [STEP]) as future:
        where_blocked(marks, STEP)
        (jobid,) = session_job_ids(tmp_path / "work")
        os.remove(marks / f"waiting-{STEP}")
        vacated = dummy.run("condor_vacate_job", jobid)
        assert vacated.stdout.strip() == f"Job {jobid} vacated"
        where_blocked(marks, STEP)
        open_gate(marks, STEP)
        results = future.result(timeout=300)
    assert results == chunk_results(NUM_TASKS, CHECKPOINTING, 4)
    assert_only_the_stopped_step_ran_again(marks)
    failed = [e for e in session_events(tmp_path / "work") if e["event"] == "job_failed"]
    assert failed == []


SLEEPER = "import time\nwhile True:\n    time.sleep(0.05)\n"


def h_rt_scheduler(tmp_path, bin_dir):
    return GridEngineScheduler(
        checked_options(resources={"h_rt": "0:0:1"}),
        commands.RetryPolicy(timeout=30),
        CommandPaths(*(str(bin_dir / name) for name in ("qsub", "qstat", "qdel"))),
    )


def job_killed_at_its_h_rt(scheduler, tmp_path):
    """Submit a job that runs until the dummy kills it at its h_rt; wait until it is gone."""
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    directory = tmp_path / "submission"
    directory.mkdir(mode=0o700)
    worker = WorkerCall(sys.executable, str(script), str(tmp_path))
    (job,) = scheduler.submit(Submission([0], "hrt-test-1", worker, str(directory)))
    seen = []

    def gone():
        status = scheduler.query([job]).get(job.jobid)
        seen.append(status.state if status else None)
        return status is None

    wait_for(gone, timeout=60)
    assert JobState.RUNNING in seen
    return job


def test_a_grid_engine_job_killed_at_its_h_rt_is_named_a_time_limit(dummy_queue, tmp_path):
    dummy = dummy_queue("sge")
    scheduler = h_rt_scheduler(tmp_path, Path(dummy.bin))
    job = job_killed_at_its_h_rt(scheduler, tmp_path)
    # The dummy keeps no accounting: qstat's start time tells the limit was reached.
    status = scheduler.how_ended([job])[job.jobid]
    assert status.state is JobState.ERROR
    assert "h_rt=0:0:1" in status.time_limit and "resources" in status.time_limit
    assert "qstat's start time" in status.reason
    # A job asked about before its h_rt could have run out is not taken for one.
    scheduler._started[job.jobid] = time.time()
    assert scheduler.how_ended([job]) == {}


def test_grid_engines_accounting_names_the_h_rt_kill_first(dummy_queue, tmp_path):
    dummy = dummy_queue("sge")
    # The dummy's commands beside a qacct that answers as the real one did
    # for a job killed at its h_rt (tests/sge/samples).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("qsub", "qstat", "qdel"):
        (bin_dir / name).symlink_to(dummy.path(name))
    qacct = bin_dir / "qacct"
    qacct.write_text(f"#!/bin/sh\ncat {SGE_SAMPLES / 'qacct_j_h_rt_killed.txt'}\n")
    qacct.chmod(0o755)
    scheduler = h_rt_scheduler(tmp_path, bin_dir)
    job = job_killed_at_its_h_rt(scheduler, tmp_path)
    status = scheduler.how_ended([job])[job.jobid]
    assert status.scheduler_state == "qacct" and "failed 37" in status.reason
    assert "h_rt=5" in status.time_limit


def test_the_dummy_warns_a_notify_job_with_sigusr2_before_its_h_rt_kill(dummy_queue, tmp_path):
    dummy = dummy_queue("sge")
    dummy.set_faults(notify_seconds=30)
    script = tmp_path / "job.sh"
    script.write_text(f"trap 'echo warned >> {tmp_path}/signals; exit 0' USR2\nsleep 60 & wait\n")
    submitted = dummy.run(
        "qsub", "-terse", "-notify", "-l", "h_rt=1", "-cwd", "-o", str(tmp_path / "out"),
        "-e", str(tmp_path / "err"), str(script),
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    wait_for(lambda: (tmp_path / "signals").exists(), timeout=60)
    assert (tmp_path / "signals").read_text() == "warned\n"
    wait_for(lambda: not dummy.queued_jobs(), timeout=60)


def test_qmod_of_a_pending_task_is_refused_as_by_grid_engine(dummy_queue, tmp_path):
    dummy = dummy_queue("sge")
    dummy.set_faults(slots=0)
    script = tmp_path / "job.sh"
    script.write_text("true\n")
    number = dummy.run("qsub", "-terse", "-cwd", str(script)).stdout.strip()
    answer = dummy.run("qmod", "-f", "-rj", number)
    assert "can not be applied" in answer.stdout and "pending/hold state" in answer.stdout


def test_a_grid_engine_chunk_killed_at_its_h_rt_goes_on_in_pieces(dummy_queue, tmp_path):
    """Grid Engine kills the job at its h_rt (SIGKILL, no warning) in task 3,
    after tasks 0..2: the rest goes on in pieces of one task, a job for each
    of the two slots and the third piece claimed by one of them, and none of
    tasks 0..2 runs again."""
    dummy_queue("sge")
    marks = tmp_path / "marks"
    marks.mkdir()
    options = pool_options(
        tmp_path,
        max_num_resubmissions=0,
        resources={"h_rt": "0:0:4"},
        num_simultaneously_running_tasks=2,
    )
    pool = make_pool("sge", **options)
    tasks = [(str(marks), x, 3) for x in range(6)]
    call = lambda: pool.starmap(blocking_task, tasks, chunksize=6)  # noqa: E731

    def events(kind):
        return [e for e in session_events(tmp_path / "work") if e["event"] == kind]

    with running_in_background(call, marks, [3]) as future:
        where_blocked(marks, 3)
        wait_for(lambda: events("chunk_split"), timeout=60)
        open_gate(marks, 3)
        results = future.result(timeout=120)
    assert results == [10 * x for x in range(6)]
    assert counts(marks, range(6), "finished") == dict.fromkeys(range(6), 1)
    assert counts(marks, range(6), "started") == {x: 2 if x == 3 else 1 for x in range(6)}
    (stop,) = events("job_interrupted")
    assert stop["cause"] == "time_limit" and "h_rt" in stop["reason"] + stop["scheduler_state"]
    (split,) = events("chunk_split")
    assert (split["tasks"], split["done"]) == ([0, 2], True)
    assert split["pieces"] == [[1, 3, 3], [2, 4, 4], [3, 5, 5]]
    # One qsub for the pieces, a job per slot; nothing else was submitted.
    first, pieces = events("submitted")
    assert sorted(row[1] for row in pieces["jobs"]) == [1, 2]
    assert {e["ichunk"] for e in events("chunk_done")} == {0, 1, 2, 3}
    assert events("job_failed") == []
