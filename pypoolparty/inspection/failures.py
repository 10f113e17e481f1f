"""What went wrong in a map: tasks that raised, jobs the scheduler failed, calls stopped."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from .. import archive, event_log, work_dir
from ..outcome import TaskFailure, failed_tasks, last_lines, parse_failure
from ..work_dir import SessionInfo
from .outcomes import archived_chunks, unfolded_outcomes


@dataclasses.dataclass(frozen=True)
class TaskFailureReport:
    """A task that raised, or whose result could not be used."""

    itask: int
    ichunk: int
    host: str
    type: str
    message: str
    traceback: str


@dataclasses.dataclass(frozen=True)
class JobFailureReport:
    """A job the map took as failed for scheduler reasons."""

    ichunk: int
    jobid: str
    time: float | None
    reason: str
    attempt: int
    """The chunk's submissions within the call of the map, this job's included."""
    stderr_tail: str = ""
    resubmitted_as: str | None = None


@dataclasses.dataclass(frozen=True)
class MapStop:
    """A call of the map that ended with an error other than a task's."""

    time: float | None
    error: str


@dataclasses.dataclass(frozen=True)
class SchedulerTrouble:
    """What went wrong between the map and the scheduler."""

    job_failures: list[JobFailureReport]
    map_stops: list[MapStop]


# -- tasks that raised --------------------------------------------------------


def task_failures(session: SessionInfo) -> Iterator[TaskFailureReport]:
    """Every failed task, by task index, with its exception and remote traceback.

    A chunk that failed and later ran again successfully is left out: its old
    tracebacks stay in ``exceptions.zip`` but no longer describe the map.
    Outcomes not folded yet are read directly.

    Parameters
    ----------
    session : SessionInfo
        The map, from :func:`find_sessions`.

    Yields
    ------
    TaskFailureReport
        In the order of the tasks, one archived traceback in memory at a time.
    """
    fresh = _unfolded_task_failures(session)
    succeeded, _ = archived_chunks(session)
    path = session.dir.archive_path("exceptions")
    entries = []
    for member in archive.members(path):
        match = work_dir.TASK_FAILURE_MEMBER.match(member.name)
        if match:
            itask = int(match.group(1))
            if itask not in fresh and session.chunk_of(itask) not in succeeded:
                entries.append((itask, member))
    entries.sort(key=lambda entry: entry[0])
    texts = archive.read_each(path, (member for _, member in entries))
    reports = (_archived_report(itask, text) for (itask, _), text in zip(entries, texts))
    yield from _merge_by_task(fresh, reports)


def _unfolded_task_failures(session: SessionInfo) -> dict[int, TaskFailureReport]:
    fresh = {}
    for ichunk, outcome in unfolded_outcomes(session):
        first_itask = session.tasks_of(ichunk).start if ichunk < session.num_chunks else 0
        for failure in failed_tasks(outcome, first_itask):
            fresh[failure.itask] = _report(ichunk, failure)
    return fresh


def _report(ichunk: int, failure: TaskFailure) -> TaskFailureReport:
    error = failure.error
    return TaskFailureReport(
        itask=failure.itask,
        ichunk=ichunk,
        host=failure.host,
        type=str(error.get("type", "?")),
        message=str(error.get("message", "")),
        traceback=str(error.get("traceback", "")),
    )


def _merge_by_task(
    fresh: dict[int, TaskFailureReport], archived: Iterable[TaskFailureReport | None]
) -> Iterator[TaskFailureReport]:
    """``archived`` (in task order, None for unreadable ones) and ``fresh``, in task order."""
    pending = sorted(fresh.values(), key=lambda r: r.itask)
    for report in archived:
        if report is None:
            continue
        while pending and pending[0].itask < report.itask:
            yield pending.pop(0)
        yield report
    yield from pending


def _archived_report(itask: int, data: bytes | None) -> TaskFailureReport | None:
    """The report of an ``exceptions.zip`` member; None if it was unreadable."""
    if data is None:
        return None
    return _report(*parse_failure(itask, data.decode("utf-8", "replace")))


# -- jobs the scheduler failed, calls stopped ---------------------------------


def scheduler_trouble(session: SessionInfo) -> SchedulerTrouble:
    """Jobs that failed at the scheduler, and calls of the map stopped by an error.

    The end of a failed job's stderr comes from ``stderr.zip``, where the
    reducer archived it under the attempt number the ``job_failed`` event
    gives.

    Parameters
    ----------
    session : SessionInfo
        The map, from :func:`find_sessions`.

    Returns
    -------
    SchedulerTrouble
        Both in the order they happened.
    """
    failures: list[JobFailureReport] = []
    awaiting_resubmission: dict[int, int] = {}
    stops: list[MapStop] = []
    for event in event_log.read(session.dir.log_path):
        name = event["event"]
        if name == event_log.JOB_FAILED:
            report = _job_failure(event, session.num_chunks)
            if report is not None:
                awaiting_resubmission[report.ichunk] = len(failures)
                failures.append(report)
        elif name == event_log.SUBMITTED:
            for jobid, ichunk, _, _ in event_log.jobs_of(event):
                index = awaiting_resubmission.pop(ichunk, None)
                if index is not None:
                    failures[index] = dataclasses.replace(failures[index], resubmitted_as=jobid)
        elif name == event_log.SESSION_ABORTED:
            stops.append(MapStop(time=event.get("time"), error=str(event.get("error", ""))))
    return SchedulerTrouble(_with_stderr_tails(session, failures), stops)


def _job_failure(event: dict, num_chunks: int) -> JobFailureReport | None:
    """The failure a ``job_failed`` event logs; None for a garbled one."""
    try:
        ichunk = int(event["ichunk"])
        attempt = int(event["attempt"])
    except (KeyError, TypeError, ValueError):
        return None
    if not 0 <= ichunk < num_chunks:
        return None
    return JobFailureReport(
        ichunk=ichunk,
        jobid=str(event.get("jobid", "?")),
        time=event.get("time"),
        reason=str(event.get("reason", "")),
        attempt=attempt,
    )


def _with_stderr_tails(
    session: SessionInfo, failures: list[JobFailureReport]
) -> list[JobFailureReport]:
    if not failures:
        return failures
    names = [work_dir.failed_attempt_member(f.ichunk, f.attempt) for f in failures]
    archived = archive.contents(session.dir.archive_path("stderr"), set(names).__contains__)
    tails = {member.name: _decoded_tail(data) for member, data in archived if data}
    return [
        dataclasses.replace(failure, stderr_tail=tails[name]) if name in tails else failure
        for failure, name in zip(failures, names)
    ]


def _decoded_tail(data: bytes) -> str:
    return last_lines(data.decode("utf-8", "replace"))
