"""What went wrong in a map: tasks that raised, jobs the scheduler failed, calls stopped."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator

from . import member_names, zip_reading
from .events import jobs_of, read_events
from .outcomes import archived_chunks, failed_tasks_of, unfolded_outcomes
from .sessions import SessionInfo

STDERR_TAIL_LINES = 15
"""Lines of a failed job's stderr shown with it: the end, where the error is."""

# How pypoolparty.reducer describes a failed task in exceptions.zip.
_FAILURE_HEADER = re.compile(r"^task (\d+) \(chunk (\d+)\) on host (.*)$")
_TRACEBACK_START = "\n\nTraceback (most recent call last):"


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
    for member in zip_reading.members(path):
        match = member_names.TASK_FAILURE.match(member.name)
        if match:
            itask = int(match.group(1))
            if itask not in fresh and session.chunk_of(itask) not in succeeded:
                entries.append((itask, member))
    entries.sort(key=lambda entry: entry[0])
    texts = zip_reading.read_each(path, (member for _, member in entries))
    reports = (_parse_failure_text(itask, text) for (itask, _), text in zip(entries, texts))
    yield from _merge_by_task(fresh, reports)


def _unfolded_task_failures(session: SessionInfo) -> dict[int, TaskFailureReport]:
    fresh = {}
    for ichunk, outcome in unfolded_outcomes(session):
        first_itask = session.tasks_of(ichunk).start if ichunk < session.num_chunks else 0
        for itask, error in failed_tasks_of(outcome, first_itask):
            fresh[itask] = TaskFailureReport(
                itask=itask,
                ichunk=ichunk,
                host=str(outcome.get("host", "?")),
                type=str(error.get("type", "?")),
                message=str(error.get("message", "")),
                traceback=str(error.get("traceback", "")),
            )
    return fresh


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


def _parse_failure_text(itask: int, data: bytes | None) -> TaskFailureReport | None:
    """Parse an ``exceptions.zip`` member, as the reducer writes it."""
    if data is None:
        return None
    text = data.decode("utf-8", "replace")
    header, _, rest = text.partition("\n")
    match = _FAILURE_HEADER.match(header)
    description, found, traceback = rest.partition(_TRACEBACK_START)
    if found:
        traceback = found.lstrip("\n") + traceback
    error_type, _, message = description.strip().partition(": ")
    return TaskFailureReport(
        itask=itask,
        ichunk=int(match.group(2)) if match else -1,
        host=match.group(3) if match else "?",
        type=error_type,
        message=message,
        traceback=traceback.strip("\n"),
    )


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
    for event in read_events(session.dir.log_path):
        name = event["event"]
        if name == "job_failed":
            report = _job_failure(event, session.num_chunks)
            if report is not None:
                awaiting_resubmission[report.ichunk] = len(failures)
                failures.append(report)
        elif name == "submitted":
            for jobid, ichunk, _, _ in jobs_of(event):
                index = awaiting_resubmission.pop(ichunk, None)
                if index is not None:
                    failures[index] = dataclasses.replace(failures[index], resubmitted_as=jobid)
        elif name == "session_aborted":
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
    names = [member_names.failed_attempt(f.ichunk, f.attempt) for f in failures]
    archived = zip_reading.contents(session.dir.archive_path("stderr"), set(names).__contains__)
    tails = {member.name: _last_lines(data) for member, data in archived if data}
    return [
        dataclasses.replace(failure, stderr_tail=tails[name]) if name in tails else failure
        for failure, name in zip(failures, names)
    ]


def _last_lines(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").rstrip().splitlines()
    return "\n".join(lines[-STDERR_TAIL_LINES:])
