"""Why jobs wait: reasons filled in, blocked jobs warned about once, the pending_timeout."""

from __future__ import annotations

import logging

import pytest

import pypoolparty
from pypoolparty import pending
from pypoolparty.errors import BadInput, PendingTimeout
from pypoolparty.progress import Counts, format_line
from pypoolparty.scheduler import Job, JobState, JobStatus, Scheduler


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class AskedScheduler(Scheduler):
    """Tells why jobs wait only when asked, as Grid Engine and HTCondor do."""

    def __init__(self, told: dict[str, JobStatus]) -> None:
        self.told = told
        self.asked: list[list[str]] = []

    def submit(self, submission):
        raise NotImplementedError

    def query(self, jobs):
        raise NotImplementedError

    def cancel(self, jobs):
        raise NotImplementedError

    def pending_reasons(self, jobs):
        self.asked.append([job.jobid for job in jobs])
        return {job.jobid: self.told[job.jobid] for job in jobs if job.jobid in self.told}


def jobs(*jobids: str) -> list[Job]:
    return [Job(jobid, i, "out", "err", "sub") for i, jobid in enumerate(jobids)]


PENDING = JobStatus(JobState.PENDING, "PENDING", "None")
BLOCKED = JobStatus(JobState.PENDING, "PENDING", "PartitionDown", blocked=True)
PRIORITY = JobStatus(JobState.PENDING, "PENDING", "Priority")


def pypoolparty_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_blocked_jobs_are_warned_about_once_after_pending_warning_after(caplog):
    clock = Clock()
    watch = pending.PendingWatch(AskedScheduler({}), 600.0, None, clock)
    queued = jobs("7_0", "7_1", "7_2", "8")
    statuses = {"7_0": BLOCKED, "7_1": BLOCKED, "7_2": BLOCKED, "8": PRIORITY}
    for _ in range(10):  # polls within the first 10 minutes
        watch.refine(queued, statuses)
        watch.check()
        clock.now += 59
    assert pypoolparty_warnings(caplog) == []
    for _ in range(10):
        clock.now += 60
        watch.refine(queued, statuses)
        watch.check()
    [warning] = pypoolparty_warnings(caplog)
    assert "3 job(s) have waited" in warning
    assert "PartitionDown: 3 job(s), 7_[0-2]" in warning
    assert "Priority" not in warning
    assert "My jobs stay pending" in warning
    assert "pending_timeout=None" in warning


def test_waiting_for_resources_or_a_start_time_never_warns_nor_times_out(caplog):
    clock = Clock()
    watch = pending.PendingWatch(AskedScheduler({}), 0.0, 0.0, clock)
    begin = JobStatus(JobState.PENDING, "PENDING", "BeginTime")
    for _ in range(5):
        watch.refine(jobs("1", "2"), {"1": PRIORITY, "2": begin})
        watch.check()
        clock.now += 3600
    assert pypoolparty_warnings(caplog) == []


def test_pending_timeout_raises_with_the_reasons_and_the_jobs():
    clock = Clock()
    watch = pending.PendingWatch(AskedScheduler({}), 600.0, 1800.0, clock)
    queued = jobs("7_0", "7_1")
    watch.refine(queued, {"7_0": BLOCKED, "7_1": BLOCKED})
    clock.now += 1799
    watch.refine(queued, {"7_0": BLOCKED, "7_1": BLOCKED})
    watch.check()
    clock.now += 1
    watch.refine(queued, {"7_0": BLOCKED, "7_1": BLOCKED})
    with pytest.raises(PendingTimeout) as raised:
        watch.check()
    message = str(raised.value)
    assert "PartitionDown: 2 job(s), 7_[0-1]" in message
    assert "pending_timeout=1800 s" in message
    assert "administrators" in message
    assert isinstance(raised.value, pypoolparty.PoolError)


def test_a_job_that_stops_being_blocked_starts_its_clock_again():
    clock = Clock()
    watch = pending.PendingWatch(AskedScheduler({}), 600.0, 1000.0, clock)
    watch.refine(jobs("5"), {"5": BLOCKED})
    clock.now += 900
    watch.refine(jobs("5"), {"5": PRIORITY})
    watch.check()
    clock.now += 10
    watch.refine(jobs("5"), {"5": BLOCKED})
    clock.now += 900
    watch.refine(jobs("5"), {"5": BLOCKED})
    watch.check()  # 900 s blocked this time: no timeout yet
    clock.now += 100
    with pytest.raises(PendingTimeout):
        watch.check()


def test_reasons_the_poll_lacks_are_asked_for_in_one_call_at_most_once_a_minute():
    clock = Clock()
    told = JobStatus(JobState.PENDING, "qw", "execution time not reached")
    scheduler = AskedScheduler({"9.1": told, "9.2": told, "9.3": told})
    watch = pending.PendingWatch(scheduler, 600.0, None, clock)
    queued = jobs("9.1", "9.2", "9.3")
    polled = {jobid: JobStatus(JobState.PENDING, "qw") for jobid in ("9.1", "9.2", "9.3")}
    refined = {}
    for _ in range(30):  # a poll every 5 s for 150 s
        refined = watch.refine(queued, polled)
        clock.now += 5
    assert scheduler.asked == [["9.1", "9.2", "9.3"], ["9.1", "9.2", "9.3"]]
    assert {status.reason for status in refined.values()} == {"execution time not reached"}


def test_a_job_told_blocked_late_counts_as_blocked_since_it_began_to_wait(caplog):
    clock = Clock()
    never = JobStatus(JobState.PENDING, "1 (Idle)", "no slot matches", blocked=True)
    scheduler = AskedScheduler({"12.0": never})
    watch = pending.PendingWatch(scheduler, 120.0, 300.0, clock)
    idle = {"12.0": JobStatus(JobState.PENDING, "1 (Idle)")}
    watch.refine(jobs("12.0"), idle)
    clock.now += 60
    watch.refine(jobs("12.0"), idle)  # asked now: blocked since it began to wait
    clock.now += 60
    watch.refine(jobs("12.0"), idle)
    watch.check()
    [warning] = pypoolparty_warnings(caplog)
    assert "2m00s" in warning and "no slot matches: 1 job(s), 12.0" in warning
    clock.now += 180
    with pytest.raises(PendingTimeout):
        watch.check()


def test_a_failing_question_is_no_error(caplog):
    class Broken(AskedScheduler):
        def pending_reasons(self, jobs):
            raise OSError("qstat is gone")

    watch = pending.PendingWatch(Broken({}), 0.0, None, Clock())
    refined = watch.refine(jobs("3.1"), {"3.1": JobStatus(JobState.PENDING, "qw")})
    assert refined == {"3.1": JobStatus(JobState.PENDING, "qw")}


@pytest.mark.parametrize(
    "jobids, expected",
    [
        (["1234_0", "1234_1", "1234_2", "1234_7"], "1234_[0-2,7]"),
        (["1234_5"], "1234_5"),
        (["77.1", "77.2", "77.3", "78.1"], "77.[1-3], 78.1"),
        (["601", "602", "603", "610"], "601-603, 610"),
        (["9_0", "10_0", "10_1"], "9_0, 10_[0-1]"),
    ],
)
def test_job_ids_are_compact(jobids, expected):
    assert pending.compact_job_ids(jobids) == expected


def test_many_single_job_ids_are_cut_with_their_number():
    text = pending.compact_job_ids([str(n) for n in range(1000, 3000, 2)])
    assert len(text) < pending.MAX_JOB_IDS_LENGTH + 40
    assert text.endswith("... (1000 jobs in all)")


def test_the_progress_line_counts_pending_tasks_by_reason():
    reasons = (("Priority", 50), ("BeginTime", 20), ("Resources", 5), ("Dependency", 5))
    line = format_line(Counts(0, 0, 90, 0, 0, 0, 0, reasons), 100, None, 1.0, False)
    assert line.endswith("| 90 pending (50 Priority, 20 BeginTime, 5 Resources, 5 other)")


@pytest.mark.parametrize(
    "options",
    [{"pending_timeout": -1}, {"pending_timeout": "1h"}, {"pending_warning_after": -5}],
)
def test_bad_pending_options_are_refused_before_anything_runs(options, tmp_path):
    with pytest.raises(BadInput, match=next(iter(options))):
        pypoolparty.local.Pool(work_dir=str(tmp_path / "work"), **options)
