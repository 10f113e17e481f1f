"""The SLURM adapters on their own, against the dummy SLURM (no session, a stand-in worker)."""

from __future__ import annotations

import dataclasses
import os
import pwd

import pytest
from waiting import wait_for

from pypoolparty.scheduler import JobState, Submission, SubmissionRejected
from pypoolparty.slurm.options import checked_options
from pypoolparty.slurm.scheduler import ArrayScheduler, CommandPaths, JobScheduler


def make(kind, dummy_slurm, policy, **options):
    names = ("sbatch", "squeue", "scancel", "scontrol", "sinfo")
    paths = CommandPaths(**{name: os.path.join(dummy_slurm.bin, name) for name in names})
    max_array_size = options.pop("max_array_size", None)
    if kind is ArrayScheduler:
        return ArrayScheduler(
            checked_options(**options), policy, paths, max_array_size=max_array_size
        )
    return JobScheduler(checked_options(**options), policy, paths)


def submission(worker, tmp_path, chunks, name="ppp-test-1", throttle=None) -> Submission:
    directory = tmp_path / name
    directory.mkdir(mode=0o700)
    return Submission(chunks, name, worker, str(directory), throttle)


def chunks_done(worker) -> set[int]:
    names = os.listdir(worker.session_dir)
    return {int(name.split("_")[1]) for name in names if name.startswith("chunk_")}


def all_ended(scheduler, jobs):
    statuses = scheduler.query(jobs)
    return all(statuses[j.jobid].state == JobState.ENDED for j in jobs) and statuses


def test_an_array_runs_each_chunk_as_the_task_of_its_index(
    dummy_slurm, stand_in_worker, tmp_path, fast_retries
):
    scheduler = make(ArrayScheduler, dummy_slurm, fast_retries)
    jobs = scheduler.submit(submission(stand_in_worker, tmp_path, [0, 1, 2, 3, 4], throttle=2))
    array_id = jobs[0].jobid.split("_")[0]
    assert [job.jobid for job in jobs] == [f"{array_id}_{i}" for i in range(5)]
    assert [job.ichunk for job in jobs] == [0, 1, 2, 3, 4]
    assert {job["options"]["array"] for job in dummy_slurm.jobs()} == {"0-4%2"}
    statuses = wait_for(lambda: all_ended(scheduler, jobs))
    assert {status.scheduler_state for status in statuses.values()} == {"COMPLETED"}
    assert chunks_done(stand_in_worker) == {0, 1, 2, 3, 4}
    assert all(os.path.exists(job.stdout_path) for job in jobs)


def test_a_resubmission_is_one_array_of_the_failed_indices(
    dummy_slurm, stand_in_worker, tmp_path, fast_retries
):
    scheduler = make(ArrayScheduler, dummy_slurm, fast_retries)
    jobs = scheduler.submit(submission(stand_in_worker, tmp_path, [1, 3, 4, 9]))
    assert {job["options"]["array"] for job in dummy_slurm.jobs()} == {"1,3-4,9"}
    wait_for(lambda: all_ended(scheduler, jobs))
    assert chunks_done(stand_in_worker) == {1, 3, 4, 9}


def test_chunks_beyond_max_array_size_go_into_further_arrays(
    dummy_slurm, stand_in_worker, tmp_path, fast_retries
):
    dummy_slurm.set_faults(max_array_size=3)  # what the dummy's scontrol reports
    scheduler = make(ArrayScheduler, dummy_slurm, fast_retries)
    jobs = scheduler.submit(submission(stand_in_worker, tmp_path, list(range(7))))
    arrays = {job["options"]["array"] for job in dummy_slurm.jobs()}
    assert arrays == {"0-2", "1-2"}  # 0-2 direct, then two chunk lists of two
    assert len({job["array_job_id"] for job in dummy_slurm.jobs()}) == 3
    assert [job.ichunk for job in jobs] == list(range(7))
    wait_for(lambda: all_ended(scheduler, jobs))
    assert chunks_done(stand_in_worker) == set(range(7))


def test_arrays_beyond_max_array_size_are_found_by_the_submission_name(
    dummy_slurm, stand_in_worker, tmp_path, fast_retries
):
    # A continued map knows its jobs from the event log, which names each
    # job's submission: every array of the submission must answer to it.
    dummy_slurm.set_faults(max_array_size=3, slots=0)
    scheduler = make(ArrayScheduler, dummy_slurm, fast_retries)
    chunks = submission(stand_in_worker, tmp_path, list(range(7)))
    jobs = scheduler.submit(chunks)
    assert {job.submission for job in jobs} == {"ppp-test-1"}
    assert set(scheduler.query(jobs)) == {job.jobid for job in jobs}
    recovered = make(ArrayScheduler, dummy_slurm, fast_retries).recover(chunks)
    assert sorted(recovered, key=lambda job: job.ichunk) == jobs
    scheduler.cancel(jobs)


def test_single_jobs_keep_the_throttle_with_dependencies(
    dummy_slurm, stand_in_worker, tmp_path, fast_retries
):
    scheduler = make(JobScheduler, dummy_slurm, fast_retries)
    jobs = scheduler.submit(submission(stand_in_worker, tmp_path, [0, 1, 2, 3, 4], throttle=2))
    assert [job.ichunk for job in jobs] == [0, 1, 2, 3, 4]
    after = [job.get("after") for job in dummy_slurm.jobs()]
    assert after == [None, None, jobs[0].jobid, jobs[1].jobid, jobs[2].jobid]
    wait_for(lambda: all_ended(scheduler, jobs))
    assert chunks_done(stand_in_worker) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("kind", [ArrayScheduler, JobScheduler])
def test_a_submission_whose_answer_was_lost_is_not_submitted_twice(
    kind, dummy_slurm, stand_in_worker, tmp_path, fast_retries
):
    dummy_slurm.set_faults(hang_commands={"sbatch": 1})  # queues the job, then hangs
    policy = type(fast_retries)(timeout=1.0, max_outage=60, first_backoff=0.05)
    scheduler = make(kind, dummy_slurm, policy)
    jobs = scheduler.submit(submission(stand_in_worker, tmp_path, [0, 1]))
    assert len(dummy_slurm.jobs()) == 2
    assert {job.jobid for job in jobs} == {
        f"{j['array_job_id']}_{j['task']}" if j["task"] is not None else str(j["array_job_id"])
        for j in dummy_slurm.jobs()
    }
    wait_for(lambda: all_ended(scheduler, jobs))


@pytest.mark.parametrize("kind", [ArrayScheduler, JobScheduler])
def test_a_rejected_submission_says_what_sbatch_said(
    kind, dummy_slurm, stand_in_worker, tmp_path, fast_retries
):
    scheduler = make(kind, dummy_slurm, fast_retries, partition="nosuchpartition")
    with pytest.raises(SubmissionRejected, match="Invalid partition name specified"):
        scheduler.submit(submission(stand_in_worker, tmp_path, [0]))
    assert dummy_slurm.jobs() == []


@pytest.mark.parametrize("kind", [ArrayScheduler, JobScheduler])
def test_held_jobs_are_held_then_cancelled_idempotently(
    kind, dummy_slurm, stand_in_worker, tmp_path, fast_retries
):
    scheduler = make(kind, dummy_slurm, fast_retries, sbatch_arguments=["--hold"])
    jobs = scheduler.submit(submission(stand_in_worker, tmp_path, [0, 1, 2]))
    statuses = scheduler.query(jobs)
    assert {s.state for s in statuses.values()} == {JobState.HELD}
    assert {s.reason for s in statuses.values()} == {"JobHeldUser"}
    scheduler.cancel(jobs)
    scheduler.cancel(jobs)
    assert all(job["state"] == "CANCELLED" or job["task"] is not None for job in dummy_slurm.jobs())
    remaining = scheduler.query(jobs)
    assert all(status.state == JobState.ENDED for status in remaining.values())
    assert chunks_done(stand_in_worker) == set()


def test_query_asks_squeue_once_for_jobs_of_several_submissions(
    dummy_slurm, stand_in_worker, tmp_path, fast_retries
):
    calls = tmp_path / "squeue-calls"
    counting = tmp_path / "squeue"
    counting.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {dummy_slurm.bin}/squeue "$@"\n')
    counting.chmod(0o755)
    scheduler = make(ArrayScheduler, dummy_slurm, fast_retries)
    first = scheduler.submit(submission(stand_in_worker, tmp_path, [0, 1], name="ppp-a-1"))
    second = scheduler.submit(submission(stand_in_worker, tmp_path, [1], name="ppp-a-2"))
    scheduler.paths = dataclasses.replace(scheduler.paths, squeue=str(counting))
    wait_for(lambda: all_ended(scheduler, first + second))
    calls.write_text("")
    statuses = scheduler.query(first + second)
    assert set(statuses) == {job.jobid for job in first + second}
    # One call, by name, restricted to this user's jobs: a name never reaches another user's.
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert calls.read_text().splitlines() == [
        f"-h --array -t all -u {me} -n ppp-a-1,ppp-a-2 -o %i|%F|%K|%T|%r"
    ]


def test_the_job_sees_its_task_id_but_not_the_submitters_environment(
    dummy_slurm, stand_in_worker, tmp_path, fast_retries, monkeypatch
):
    monkeypatch.setenv("PPP_TEST_SECRET", "do-not-leak")
    scheduler = make(ArrayScheduler, dummy_slurm, fast_retries)
    jobs = scheduler.submit(submission(stand_in_worker, tmp_path, [4]))
    wait_for(lambda: all_ended(scheduler, jobs))
    with open(os.path.join(stand_in_worker.session_dir, "chunk_4")) as file:
        environment = file.read()
    assert '"SLURM_ARRAY_TASK_ID": "4"' in environment
    assert "do-not-leak" not in environment


def test_capacity_is_the_number_of_cpus_sinfo_reports(dummy_slurm, fast_retries):
    dummy_slurm.set_faults(slots=3)
    assert make(ArrayScheduler, dummy_slurm, fast_retries).capacity() == 3
    assert make(JobScheduler, dummy_slurm, fast_retries, partition="other").capacity() is None


def test_capacity_is_unknown_without_sinfo(fast_retries):
    paths = CommandPaths(sinfo="/nonexistent/sinfo")
    assert ArrayScheduler(checked_options(), fast_retries, paths).capacity() is None
