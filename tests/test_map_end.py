"""What a finished map leaves in the queue: nothing, and it waits only for jobs that wrote results.

A job whose chunk another job claimed and finished may still be starting
when the map's last outcome arrives (its claim of nothing comes later): it
has nothing to do, so the map cancels it instead of waiting for it to start,
find no work and end. A job that wrote the last outcome is let to end.
"""

from __future__ import annotations

from hand_built_sessions import new_session

import pypoolparty
from pypoolparty.scheduler import Job, JobState, JobStatus, Scheduler
from pypoolparty.session import Session

RUNNING = JobStatus(JobState.RUNNING, "RUNNING")


class RecordingScheduler(Scheduler):
    """Answers queries from a table; records what it is asked to cancel."""

    def __init__(self, statuses: dict[str, JobStatus]) -> None:
        self.statuses = statuses
        self.cancelled: list[list[str]] = []

    def submit(self, submission):
        raise AssertionError("a finished map submits nothing")

    def query(self, jobs):
        return {job.jobid: self.statuses[job.jobid] for job in jobs}

    def cancel(self, jobs):
        self.cancelled.append([job.jobid for job in jobs])
        for job in jobs:
            self.statuses[job.jobid] = JobStatus(JobState.ENDED, "CANCELLED")


def finished_session(tmp_path, scheduler, written_by):
    """A map of two chunks, both done; chunk ``i``'s outcome came from the
    job of home chunk ``written_by[i]``."""
    session_dir = new_session(tmp_path, num_tasks=4, chunksize=2)
    settings = pypoolparty.local.Pool(2, work_dir=str(tmp_path)).settings
    session = Session(
        settings, scheduler, session_dir, [(0, 2), (2, 4)], False, parallelism=2, claiming=True
    )
    for chunk in session.chunks:
        job = Job(f"7_{chunk.ichunk}", chunk.ichunk, "out", "err", "map-1")
        session.jobs.add(job)
        chunk.job = job
        chunk.done = True
        chunk.written_by = written_by[chunk.ichunk]
    return session


def test_a_job_still_starting_whose_chunk_another_job_finished_is_cancelled(tmp_path):
    scheduler = RecordingScheduler(
        {
            "7_0": JobStatus(JobState.RUNNING, "RUNNING"),
            "7_1": JobStatus(JobState.RUNNING, "RUNNING"),
        }
    )
    # Job 7_0 ran both chunks: it claimed chunk 1 before 7_1 had started.
    session = finished_session(tmp_path, scheduler, written_by=[0, 0])
    session._cancel_stragglers()
    assert scheduler.cancelled == [["7_1"]]
    assert [job.jobid for job in session.ending_jobs] == ["7_0"]


def test_jobs_that_wrote_the_last_outcomes_are_let_to_end(tmp_path):
    scheduler = RecordingScheduler(
        {
            "7_0": JobStatus(JobState.RUNNING, "RUNNING"),
            "7_1": JobStatus(JobState.RUNNING, "RUNNING"),
        }
    )
    session = finished_session(tmp_path, scheduler, written_by=[0, 1])
    session._cancel_stragglers()
    assert scheduler.cancelled == []
    assert sorted(job.jobid for job in session.ending_jobs) == ["7_0", "7_1"]
