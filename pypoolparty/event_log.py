"""The session's JSON-lines event log, ``log.jsonl``: its events, written and read.

One JSON object per line: ``{"time": ..., "event": ..., ...}``, ``time`` in
seconds since the epoch. It says what happened to every job (submitted,
state seen, resubmitted, cancelled, done) so a kept work_dir can be
inspected, and resumed, without the process that wrote it. It never holds
environment values or task data.

The events and their fields besides ``time`` and ``event``:

``session_started``    ``resuming`` (bool), ``pid``: a call of the map begins.
``session_resumed``    ``done`` (chunks already done), ``adopted_jobs``,
                       ``reused_results`` (bool: the earlier call finished and
                       its results are served, ``reuse_results``): the call
                       continues an earlier one.
``submitting``         ``submission`` (its job name), ``chunks``: the chunks
                       about to be submitted, as inclusive runs ``[[first,
                       last], ...]`` (see :func:`consecutive_runs`). Logged
                       before submitting, so a kill in between leaves a
                       submission to recover.
``submission_rejected`` ``submission``: the scheduler refused it; nothing
                       found under its name is adopted or cancelled.
``submitted``          ``submission``, ``jobs``: one row ``[jobid, ichunk,
                       stdout, stderr]`` per job (see :func:`job_row`), the
                       paths relative to the session directory.
``job_state``          ``jobid``, ``ichunk``, ``state`` (a
                       :class:`pypoolparty.scheduler.JobState` value, or
                       ``gone`` when the job left the queue),
                       ``scheduler_state``, ``reason``: a change seen in a
                       job's state (or in why it is pending), and
                       ``blocked`` (true, only when it is) for a job pending
                       for a reason that does not clear by itself (see
                       :mod:`pypoolparty.pending`).
``job_failed``         ``jobid``, ``ichunk``, ``attempt`` (the chunk's
                       submissions in this call, this one included),
                       ``reason``: a job failed for scheduler reasons;
                       with ``fix`` (what the user must change) when no
                       resubmission can cure it and the map ended there.
``job_interrupted``    ``jobid``, ``ichunk``, ``cause``, ``signal``,
                       ``scheduler_state``, ``reason``, ``interruptions`` (of
                       the chunk in this call), and where known
                       ``unfinished_tasks`` and ``got_something_done`` (a
                       task finished or saved a checkpoint in that job): the
                       job stopped before its chunk's end -- its worker on a
                       signal (``signal``, else ``""``), or killed -- and
                       its finished tasks are kept. ``cause``: ``cluster``
                       (preempted, a node failure, a signal: the chunk is
                       submitted again at once) or ``time_limit`` (the same,
                       unless the job got nothing done, which ends the map),
                       neither counted as a resubmission; ``requeued`` (the
                       scheduler requeued the job under its id: the map
                       waits for it); ``held`` (a hold stopped the job,
                       e.g. the user's ``condor_hold``: the map waits until
                       it is released, when it goes on from its first
                       unfinished task); ``cancelled`` (``jobid`` ``""``: the
                       job of an earlier call, which cancelled it as it
                       stopped; the chunk is submitted). See
                       docs/time_limits.rst.
``chunk_claimed``      ``ichunk``, ``jobid``, ``home`` (the chunk the job was
                       submitted for): a job that finished its own work
                       claimed this chunk and runs it (see
                       :mod:`pypoolparty.claims`); the chunk's state is that
                       job's from then on.
``chunk_split``        ``ichunk``, ``tasks`` (``[first, last]`` it keeps),
                       ``done`` (bool: they all finished, and its outcome
                       is written), ``pieces`` (``[ichunk, first, last]``
                       each): a time limit stopped the chunk's job after it
                       got something done, and its unfinished tasks go on
                       in these new chunks, sized to fit the limit (see
                       :mod:`pypoolparty.splitting`).
``jobs_cancelled``     ``jobids``: jobs still waiting in the queue when every
                       chunk was claimed, cancelled as no work was left for
                       them.
``chunk_done``         ``ichunk``, ``failed_tasks``: a chunk's outcome was
                       archived.
``chunks_withdrawn``   ``chunks`` (runs, as in ``submitting``),
                       ``cancelled_jobs`` (job ids): the caller took these
                       chunks back before their jobs started (an Executor's
                       ``Future.cancel()``).
``session_finished``   ``num_chunks``: every task succeeded.
``session_failed``     ``reason``, ``itask`` (the first failed task).
``session_aborted``    ``error`` (``"<exception type name>: <message>"``),
                       ``cancelled_jobs``, optional ``cancelled_submission``:
                       the call stopped on an error or an interruption
                       (:func:`is_interruption`). ``cancelled_jobs`` counts
                       the jobs it cancelled: when it is above 0, that is
                       every job of every unfinished chunk, and the jobs
                       found under ``cancelled_submission``, the job name of
                       a submission the stop cut short. A later call
                       submits those chunks again at once.

Readers must expect a last line cut off by a kill or still being written,
and tolerate garbled fields: :func:`read` and the ``*_of`` helpers do.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator

import json_lines

SESSION_STARTED = "session_started"
SESSION_RESUMED = "session_resumed"
SUBMITTING = "submitting"
SUBMITTED = "submitted"
SUBMISSION_REJECTED = "submission_rejected"
JOB_STATE = "job_state"
JOB_FAILED = "job_failed"
JOB_INTERRUPTED = "job_interrupted"
CHUNK_CLAIMED = "chunk_claimed"
CHUNK_SPLIT = "chunk_split"
JOBS_CANCELLED = "jobs_cancelled"
CHUNK_DONE = "chunk_done"
CHUNKS_WITHDRAWN = "chunks_withdrawn"
SESSION_FINISHED = "session_finished"
SESSION_FAILED = "session_failed"
SESSION_ABORTED = "session_aborted"


class EventLog:
    """Append events to ``path``; each line is flushed as it is written."""

    def __init__(self, path: str) -> None:
        self.path = path
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(descriptor, "a", encoding="utf-8")
        # A line torn by a killed process must not glue onto the next one.
        if self._file.tell() > 0 and not _ends_with_newline(path):
            self._file.write("\n")

    def write(self, event: str, **fields) -> None:
        """Append ``event`` (one of this module's constants) with its ``fields``.

        Raises
        ------
        OSError
            If the line cannot be written (a full disk, say).
        """
        record = {"time": round(time.time(), 3), "event": event, **fields}
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read(path: str) -> Iterator[dict]:
    """Stream the events of the log at ``path``, one at a time; none if it does not exist.

    A line that is not a whole JSON object with an ``event`` is skipped: the
    last line of a running map may be half written, and a killed one may
    have left a torn line in the middle. Memory does not grow with the log.
    """
    try:
        # A character cut at the end of a line being written decodes to a
        # replacement character; that line is then skipped as not JSON.
        file = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with file:
        for event in json_lines.reader(file, broken=True):
            if isinstance(event, dict) and isinstance(event.get("event"), str):
                yield event


def first_event_time(path: str) -> float | None:
    """The time of the first event of the log at ``path`` that has one; reads no further."""
    events = read(path)
    try:
        for event in events:
            if isinstance(event.get("time"), (int, float)):
                return float(event["time"])
        return None
    finally:
        events.close()


LAST_EVENT_MAX_BYTES = 64 * 1024
"""How far from its end :func:`last_event` reads a log: more than any one line."""


def last_event(path: str) -> dict | None:
    """The last whole event of the log at ``path``; ``None`` if it has none.

    Reads only the log's end, so that asking is as quick for a map of
    100,000 tasks as for one of ten. A last line that is cut off (a kill, a
    line being written) does not count: it is not a whole event.
    """
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - LAST_EVENT_MAX_BYTES))
            tail = file.read()
    except FileNotFoundError:
        return None
    for line in reversed(tail.splitlines()):
        try:
            event = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            return event
    return None


def map_finished(path: str) -> bool:
    """Whether the last call of the map logged at ``path`` returned every result.

    Such a map's last event is ``session_finished``: nothing is written after
    it. A map that a task's exception, an error or an interruption stopped,
    or that is running now, is not finished.
    """
    event = last_event(path)
    return event is not None and event["event"] == SESSION_FINISHED


def job_row(jobid: str, ichunk: int, stdout: str, stderr: str) -> list:
    """One job of a ``submitted`` event; :func:`jobs_of` reads it back."""
    return [jobid, ichunk, stdout, stderr]


def jobs_of(event: dict) -> Iterator[tuple[str, int, str, str]]:
    """(jobid, ichunk, stdout, stderr) of each job of a ``submitted`` event.

    Garbled rows are skipped.
    """
    for entry in event.get("jobs", ()):
        try:
            jobid, ichunk, stdout, stderr = entry
            yield str(jobid), int(ichunk), str(stdout), str(stderr)
        except (TypeError, ValueError):
            continue


def chunks_of_submitting(event: dict) -> list[int]:
    """The chunks a ``submitting`` event names; none if they are garbled."""
    try:
        return expand_runs(event.get("chunks", ()))
    except (TypeError, ValueError):
        return []


def consecutive_runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted ``numbers`` as inclusive runs: ``[1, 2, 3, 5]`` becomes ``[(1, 3), (5, 5)]``.

    >>> consecutive_runs([1, 2, 3, 5])
    [(1, 3), (5, 5)]
    """
    runs: list[tuple[int, int]] = []
    for number in numbers:
        if runs and runs[-1][1] == number - 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


def expand_runs(runs) -> list[int]:
    """The inverse of :func:`consecutive_runs`.

    >>> expand_runs([[1, 3], [5, 5]])
    [1, 2, 3, 5]
    """
    return [number for first, last in runs for number in range(first, last + 1)]


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


class _TornLinesAreExpected(logging.Filter):
    """Drop json_lines' warning for each line it skips.

    A torn line is expected here (a killed writer, or a line being written
    while an inspector reads), and an inspector's standard error is for its
    own messages.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Error: JSON line can't be decoded")


logging.getLogger("json_lines").addFilter(_TornLinesAreExpected())


INTERRUPTIONS = ("KeyboardInterrupt", "Terminated", "Cancelled")
"""Exception type names of a call stopped by its user, not by an error."""


def is_interruption(error: str) -> bool:
    """Whether a ``session_aborted`` event's ``error`` is an interruption.

    Parameters
    ----------
    error : str
        The event's ``error`` field, which starts with the exception's type name.

    Returns
    -------
    bool
        True for Ctrl-C (:class:`KeyboardInterrupt`), a signal
        (:class:`pypoolparty.Terminated`) or ``terminate``
        (:class:`pypoolparty.Cancelled`).
    """
    return error.split(":", 1)[0].strip() in INTERRUPTIONS
