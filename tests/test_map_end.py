"""What a finished map leaves in the queue: nothing, and it waits only for jobs that wrote results.

A job whose chunk another job claimed and finished may still be starting
when the map's last outcome arrives: it has nothing to do, so the map
cancels it instead of waiting for it to start, find no chunk left to claim,
and end. A job that wrote the last outcome is let to end.
"""

from __future__ import annotations

import pytest
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


@pytest.mark.parametrize(
    "written_by, cancelled, ending",
    [
        # Job 7_0 ran both chunks: it claimed chunk 1 before 7_1 had started.
        ([0, 0], [["7_1"]], ["7_0"]),
        # Each job wrote its own chunk's outcome: both are let to end.
        ([0, 1], [], ["7_0", "7_1"]),
    ],
    ids=["a-starting-job-with-nothing-to-do-is-cancelled", "the-writers-are-let-to-end"],
)
def test_at_the_end_only_the_jobs_that_wrote_outcomes_are_waited_for(
    tmp_path, written_by, cancelled, ending
):
    scheduler = RecordingScheduler(dict.fromkeys(["7_0", "7_1"], RUNNING))
    session = finished_session(tmp_path, scheduler, written_by)
    session._cancel_stragglers()
    assert scheduler.cancelled == cancelled
    assert sorted(job.jobid for job in session.ending_jobs) == ending
