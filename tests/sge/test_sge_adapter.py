"""The Grid Engine adapter alone (submit, query, cancel, explain) against the dummy Grid Engine."""

from __future__ import annotations

import os
import sys

import pytest
from waiting import wait_for

from pypoolparty.commands import (
    CommandFailed,
    Completed,
    PermanentError,
    RetryPolicy,
    TransientError,
)
from pypoolparty.scheduler import JobState, Submission, SubmissionRejected, WorkerCall
from pypoolparty.sun_grid_engine.options import checked_options
from pypoolparty.sun_grid_engine.parsing import parse_qsub
from pypoolparty.sun_grid_engine.scheduler import CommandPaths, GridEngineScheduler, task_ranges

# Stands in for pypoolparty's worker: finds its chunk like the real one and
# leaves a file behind.
FAKE_WORKER = """\
import os, sys, time
work_dir, _, variable, _, chunk_list = sys.argv[1:6]
ichunk = int(open(chunk_list).read().split()[int(os.environ[variable]) - 1])
time.sleep(float(os.environ.get("FAKE_WORKER_SECONDS", "0")))
open(os.path.join(work_dir, f"done.{ichunk}"), "w").close()
print(f"chunk {ichunk} ran")
"""

FAST = RetryPolicy(timeout=5.0, max_outage=20.0, first_backoff=0.05, max_backoff=0.2)


@pytest.fixture
def work_dir(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    (path / "fake_worker.py").write_text(FAKE_WORKER)
    return str(path)


def make_scheduler(dummy_sge, policy=FAST, **options):
    paths = CommandPaths(**{c: dummy_sge.path(c) for c in ("qsub", "qstat", "qdel")})
    return GridEngineScheduler(checked_options(**options), policy, paths)


def make_submission(work_dir, chunks, name="ppp-test-1", running=None):
    directory = os.path.join(work_dir, name)
    os.makedirs(directory)
    worker = WorkerCall(sys.executable, os.path.join(work_dir, "fake_worker.py"), work_dir)
    return Submission(chunks, name, worker, directory, running)


def wait_until_gone(scheduler, jobs, timeout=30):
    wait_for(lambda: scheduler.query(jobs) == {}, timeout)


def test_each_chunk_runs_once_as_an_array_task(dummy_sge, work_dir):
    scheduler = make_scheduler(dummy_sge)
    jobs = scheduler.submit(make_submission(work_dir, [3, 8, 11]))
    job_number = jobs[0].jobid.split(".")[0]
    assert [j.jobid for j in jobs] == [f"{job_number}.{t}" for t in (1, 2, 3)]
    assert [j.ichunk for j in jobs] == [3, 8, 11]
    wait_until_gone(scheduler, jobs)
    assert sorted(n for n in os.listdir(work_dir) if n.startswith("done.")) == [
        "done.11",
        "done.3",
        "done.8",
    ]
    for job in jobs:
        with open(job.stdout_path) as file:
            assert file.read() == f"chunk {job.ichunk} ran\n"


def test_the_throttle_limits_running_tasks(dummy_sge, work_dir):
    dummy_sge.set_faults(slots=4)
    scheduler = make_scheduler(dummy_sge, qsub_arguments=["-v", "FAKE_WORKER_SECONDS=0.3"])
    jobs = scheduler.submit(make_submission(work_dir, [0, 1, 2, 3], running=1))
    most_running = 0
    while True:
        statuses = scheduler.query(jobs)
        if not statuses:
            break
        running = [s for s in statuses.values() if s.state == JobState.RUNNING]
        most_running = max(most_running, len(running))
    assert most_running == 1
    assert len([n for n in os.listdir(work_dir) if n.startswith("done.")]) == 4


def test_a_refused_submission_raises_with_qsubs_reason(dummy_sge, work_dir):
    scheduler = make_scheduler(dummy_sge, queue_name="nosuch.q")
    with pytest.raises(SubmissionRejected, match='unknown queue "nosuch.q"'):
        scheduler.submit(make_submission(work_dir, [0]))
    assert dummy_sge.jobs() == {}


@pytest.mark.parametrize("fault", ["fail_commands", "hang_commands", "garbage_commands"])
def test_a_failing_qsub_is_retried_without_submitting_twice(dummy_sge, work_dir, fault):
    dummy_sge.set_faults(**{fault: {"qsub": 1}})
    policy = RetryPolicy(timeout=2.0, max_outage=20.0, first_backoff=0.05, max_backoff=0.2)
    scheduler = make_scheduler(dummy_sge, policy=policy)
    jobs = scheduler.submit(make_submission(work_dir, [0, 1]))
    assert dummy_sge.state()["next_job_number"] == 2  # one job was ever created
    assert {j.jobid.split(".")[0] for j in jobs} == {"1"}
    wait_until_gone(scheduler, jobs)
    assert sorted(n for n in os.listdir(work_dir) if n.startswith("done.")) == ["done.0", "done.1"]


@pytest.mark.parametrize("fault", ["fail_commands", "hang_commands", "garbage_commands"])
def test_a_failing_qstat_is_retried(dummy_sge, work_dir, fault):
    dummy_sge.set_faults(**{fault: {"qstat": 2}})
    policy = RetryPolicy(timeout=2.0, max_outage=20.0, first_backoff=0.05, max_backoff=0.2)
    scheduler = make_scheduler(dummy_sge, policy=policy, qsub_arguments=["-h"])
    jobs = scheduler.submit(make_submission(work_dir, [0]))
    statuses = scheduler.query(jobs)
    assert statuses[jobs[0].jobid].state == JobState.HELD


def test_a_qstat_that_keeps_failing_ends_in_command_failed(dummy_sge, work_dir):
    dummy_sge.set_faults(fail_commands={"qstat": 1000})
    policy = RetryPolicy(timeout=2.0, max_outage=0.5, first_backoff=0.05, max_backoff=0.1)
    scheduler = make_scheduler(dummy_sge, policy=policy)
    with pytest.raises(CommandFailed, match="unable to send message to qmaster"):
        scheduler.query([])


def test_cancel_empties_the_queue_and_may_be_repeated(dummy_sge, work_dir):
    scheduler = make_scheduler(dummy_sge, qsub_arguments=["-v", "FAKE_WORKER_SECONDS=60"])
    jobs = scheduler.submit(make_submission(work_dir, list(range(5))))
    wait_for(lambda: JobState.RUNNING in {s.state for s in scheduler.query(jobs).values()}, 10)
    scheduler.cancel(jobs)
    wait_until_gone(scheduler, jobs)
    scheduler.cancel(jobs)  # all gone: "does not exist" is fine
    assert dummy_sge.jobs() == {}
    assert not [n for n in os.listdir(work_dir) if n.startswith("done.")]


def test_an_error_state_is_an_error_and_explained(dummy_sge, work_dir):
    dummy_sge.set_faults(error_probability=1.0)
    scheduler = make_scheduler(dummy_sge)
    jobs = scheduler.submit(make_submission(work_dir, [4, 5]))
    statuses = wait_for(
        lambda: (
            scheduler.query(jobs)
            if len(scheduler.query(jobs)) == 2
            and all(s.state == JobState.ERROR for s in scheduler.query(jobs).values())
            else None
        ),
        10,
    )
    assert {s.scheduler_state for s in statuses.values()} == {"Eqw"}
    # The error reason of qstat -j comes with the status, and decides whether
    # a resubmission may cure it: a stale NFS handle may pass.
    reason = statuses[jobs[1].jobid].reason
    assert "Stale file handle" in reason
    assert f"{os.path.basename(jobs[1].stdout_path)}" in reason
    assert statuses[jobs[1].jobid].curable
    assert scheduler.explain(jobs[1]) == ""  # nothing more to say


def test_an_unknown_state_is_reported_as_unknown(dummy_sge, work_dir):
    dummy_sge.set_faults(unknown_state_probability=1.0)
    scheduler = make_scheduler(dummy_sge)
    jobs = scheduler.submit(make_submission(work_dir, [0]))
    status = wait_for(lambda: scheduler.query(jobs).get(jobs[0].jobid), 10)
    seen = wait_for(
        lambda: [
            s
            for s in [scheduler.query(jobs).get(jobs[0].jobid)]
            if s and s.state == JobState.UNKNOWN
        ],
        10,
        0.01,
    )
    assert status is not None and seen[0].scheduler_state == "P"
    wait_until_gone(scheduler, jobs)
    assert os.path.exists(os.path.join(work_dir, "done.0"))


def test_capacity_is_the_queues_slots_divided_by_slots_per_job(dummy_sge):
    dummy_sge.set_faults(slots=6)
    assert make_scheduler(dummy_sge).capacity() == 6
    assert make_scheduler(dummy_sge, parallel_environment="smp", slots=2).capacity() == 3


def test_resources_and_options_reach_qsub(dummy_sge, work_dir):
    scheduler = make_scheduler(
        dummy_sge,
        queue_name="all.q",
        parallel_environment="smp",
        slots=2,
        resources={"h_vmem": "2G", "h_rt": "1:00:00"},
        qsub_arguments=["-h"],
    )
    jobs = scheduler.submit(make_submission(work_dir, [0]))
    (job,) = dummy_sge.jobs().values()
    assert job["resources"] == {"h_vmem": "2G", "h_rt": "1:00:00"}
    assert (job["parallel_environment"], job["slots"]) == ("smp", 2)
    assert scheduler.query(jobs)[jobs[0].jobid].state == JobState.HELD


def test_task_ranges_compress_task_ids_per_job():
    ids = ["7.1", "7.2", "7.3", "7.5", "8.1", "7.6"]
    assert task_ranges(ids) == ["7.1-3", "7.5-6", "8.1"]


def qsub_completed(returncode, stdout="", stderr=""):
    return Completed(("qsub",), returncode, stdout, stderr)


def test_qsub_answers_are_a_job_number_a_retry_or_a_refusal():
    assert parse_qsub(qsub_completed(0, "42.1-8:1\n")) == "42"
    with pytest.raises(ValueError):
        parse_qsub(qsub_completed(0, "<html>"))
    unreachable = "error: commlib error: got select error (Connection refused)\n"
    with pytest.raises(TransientError):
        parse_qsub(qsub_completed(1, stderr=unreachable))
    with pytest.raises(TransientError):
        parse_qsub(qsub_completed(-9))
    refused = 'Unable to run job: unknown resource "h_vmemx"\nExiting.\n'
    with pytest.raises(PermanentError, match='^unknown resource "h_vmemx"$'):
        parse_qsub(qsub_completed(1, stdout=refused))


def test_a_job_that_left_the_queue_is_found_by_its_output_files(dummy_sge, work_dir):
    # qsub timed out after creating job 17, whose tasks then ran and ended
    # before the retry looked at qstat: its output files name it.
    scheduler = make_scheduler(dummy_sge)
    submission = make_submission(work_dir, [0, 1])
    assert scheduler.find_job_number(submission) is None
    open(os.path.join(submission.directory, "ppp-test-1.17.2.err"), "w").close()
    assert scheduler.find_job_number(submission) == "17"
