"""The stdout and stderr of the job that ran a task, wherever it is now.

The reducer archives a job's output when its chunk's outcome arrives, or
when the job failed for scheduler reasons (see :mod:`pypoolparty.work_dir`); until
then it is the file the scheduler writes, named in the log's ``submitted``
events. A Python map's tasks write to their job's output: all the tasks of a
chunk share one stdout and one stderr. While the job runs, its file is read
from its end (at most :data:`MAX_SHOWN_BYTES`), and the task's state in its
chunk (finished, running, waiting) is read from the outcomes and the task
records.
"""

from __future__ import annotations

import dataclasses
import os

from .. import archive, event_log, work_dir
from ..work_dir import SessionInfo
from .outcomes import finished_task, recorded_tasks_of_chunk

MAX_SHOWN_BYTES = 10 * 1024 * 1024
"""Of a live output file, at most its last this many bytes are read: a job's
output may be gigabytes, and its end is where a running task writes."""

FINISHED, RUNNING, WAITING = "finished", "running", "waiting"
"""A task's state in its chunk, while the chunk's output is a live file."""


class TaskOutOfRange(ValueError):
    """A task index the map does not have."""


class NotRecorded(LookupError):
    """What was asked for is not (or no longer, or not yet) in the work_dir."""


@dataclasses.dataclass(frozen=True)
class JobOutput:
    """The stdout or stderr of the job that ran a task, and where it came from."""

    itask: int
    ichunk: int
    source: str
    """``archive`` (the job whose result was folded), ``attempt N`` or ``live file``."""

    data: bytes
    jobid: str | None = None
    path: str | None = None
    """The live file ``data`` comes from; None for an archived output."""

    skipped: int = 0
    """Bytes of the live file before ``data``: only its end is shown."""

    task_state: str | None = None
    """For a live file: :data:`FINISHED`, :data:`RUNNING` or :data:`WAITING`, the
    task's state in its chunk as the work_dir shows it."""

    chunk_tasks: range = range(0)
    """The tasks of the chunk, which all write to this output."""


def job_output(
    session: SessionInfo, itask: int, stream: str, attempt: int | None = None
) -> JobOutput:
    """The ``stream`` (``stdout`` or ``stderr``) of the job that ran task ``itask``.

    At most the last 10 MiB of a job's output are kept; of a job that still
    runs, the end of its output file so far (at most :data:`MAX_SHOWN_BYTES`),
    with the task's state in its chunk.

    Parameters
    ----------
    session : SessionInfo
        The map, from :func:`only_session`.
    itask : int
        The task's index in the map.
    stream : str
        ``stdout`` or ``stderr``.
    attempt : int, optional
        The output of the job that failed as this attempt of the task's chunk
        (see :func:`scheduler_trouble`), instead of the chunk's last job.

    Returns
    -------
    JobOutput

    Raises
    ------
    TaskOutOfRange
        If the map has no task ``itask``.
    NotRecorded
        If the output is not in the work_dir (not written yet, or removed).
    """
    if not 0 <= itask < session.num_tasks:
        raise TaskOutOfRange(
            f"task {itask} is out of range: {session.name} has tasks 0..{session.num_tasks - 1}"
        )
    ichunk = session.chunk_of(itask)
    if attempt is not None:
        return _failed_attempt_output(session, itask, ichunk, stream, attempt)
    data = archive.read_member(session.dir.archive_path(stream), work_dir.job_output_member(ichunk))
    if data is not None:
        return JobOutput(itask, ichunk, "archive", data)
    return _live_output(session, itask, ichunk, stream)


def _failed_attempt_output(
    session: SessionInfo, itask: int, ichunk: int, stream: str, attempt: int
) -> JobOutput:
    name = work_dir.failed_attempt_member(ichunk, attempt)
    data = archive.read_member(session.dir.archive_path(stream), name)
    if data is None:
        raise NotRecorded(
            f"no {stream} of a failed attempt {attempt} of chunk {ichunk} (task {itask}) "
            f"in {session.name}; {_describe_attempts(session, ichunk, stream)}"
        )
    return JobOutput(itask, ichunk, f"attempt {attempt}", data)


def _live_output(session: SessionInfo, itask: int, ichunk: int, stream: str) -> JobOutput:
    """The chunk's output file as its worker writes it (where jobs claim
    chunks), else the output file of the chunk's last job, as the scheduler
    writes it."""
    job = _latest_job(session, ichunk)
    where = f"task {itask} (chunk {ichunk}) of {session.name}"
    attempts = _describe_attempts(session, ichunk, stream)
    if job is None:
        raise NotRecorded(
            f"{where} has not started: no job was submitted for its chunk or claimed "
            f"it yet; {attempts}"
        )
    jobid, relative_paths = job
    chunk_path = session.dir.chunk_output_path(ichunk, stream)
    if os.path.exists(chunk_path):
        path = chunk_path
    elif relative_paths is None:
        path = None  # claimed by a job that has not written anything for it yet
    else:
        path = _inside(session.path, relative_paths[0 if stream == "stdout" else 1])
    try:
        if path is None:
            raise FileNotFoundError(path)
        data, skipped = read_tail(path, MAX_SHOWN_BYTES)
    except OSError:
        raise NotRecorded(
            f"the {stream} of job {jobid}, which runs {where}, is not there: it has not "
            f"started, or its output was removed; {attempts}"
        ) from None
    return JobOutput(
        itask,
        ichunk,
        "live file",
        data,
        jobid,
        path=path,
        skipped=skipped,
        task_state=task_state_in_chunk(session, itask),
        chunk_tasks=session.tasks_of(ichunk),
    )


def read_tail(path: str, max_bytes: int) -> tuple[bytes, int]:
    """The last ``max_bytes`` of the file at ``path``, and how many bytes come before.

    Raises
    ------
    OSError
        If it cannot be opened or read.
    """
    with open(path, "rb") as file:
        size = file.seek(0, os.SEEK_END)
        skipped = max(0, size - max_bytes)
        file.seek(skipped)
        return file.read(max_bytes), skipped


def task_state_in_chunk(session: SessionInfo, itask: int) -> str:
    """Whether ``itask`` finished, runs, or waits behind another task of its running chunk.

    The worker runs a chunk's tasks in order and records each as it ends:
    the first unrecorded one is the one running (or the one its job was
    running when it stopped, until the map notices).
    """
    if finished_task(session, itask) is not None:
        return FINISHED
    ichunk = session.chunk_of(itask)
    recorded = recorded_tasks_of_chunk(session, ichunk)
    first_unfinished = next((i for i in session.tasks_of(ichunk) if i not in recorded), itask)
    return RUNNING if itask == first_unfinished else WAITING


def _latest_job(session: SessionInfo, ichunk: int) -> tuple[str, tuple[str, str] | None] | None:
    """(jobid, (stdout, stderr)) of the chunk's last job, its paths relative to the
    session; the paths are None for a job that claimed the chunk (its output of
    the chunk is the chunk's own file)."""
    latest = None
    for event in event_log.read(session.dir.log_path):
        if event["event"] == event_log.SUBMITTED:
            for jobid, job_chunk, stdout, stderr in event_log.jobs_of(event):
                if job_chunk == ichunk:
                    latest = (jobid, (stdout, stderr))
        elif event["event"] == event_log.CHUNK_CLAIMED and event.get("ichunk") == ichunk:
            latest = (str(event.get("jobid", "?")), None)
    return latest


def _inside(base: str, relative: str) -> str | None:
    """``relative`` joined to ``base``; None for a path that leads out of it."""
    root = os.path.abspath(base)
    path = os.path.abspath(os.path.join(root, relative))
    return path if os.path.commonpath([path, root]) == root else None


def _describe_attempts(session: SessionInfo, ichunk: int, stream: str) -> str:
    """Which failed attempts of the chunk have their output archived, for a message."""
    names = (member.name for member in archive.members(session.dir.archive_path(stream)))
    attempts = sorted(
        int(match.group(2))
        for match in map(work_dir.FAILED_ATTEMPT_MEMBER.match, names)
        if match and int(match.group(1)) == ichunk
    )
    if not attempts:
        return "no failed attempt of it was archived"
    listed = ", ".join(str(a) for a in attempts)
    return f"failed attempts archived: {listed} (pass --attempt N)"
