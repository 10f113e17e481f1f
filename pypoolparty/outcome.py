"""A chunk's outcome, the failures in it, and the exceptions raised from them.

The worker (:mod:`pypoolparty.worker`, which imports nothing of pypoolparty
by design) writes one outcome per chunk, a pickled dict of plain data::

    format       1
    ichunk       the chunk
    host, pid    where the worker ran
    start, end   seconds since the epoch
    setup_error  None, or an error (below): the worker could not load the
                 function or its tasks, and no task ran
    tasks        one dict per task run, in task order:
                     itask       the task's index in the map
                     start, end  seconds since the epoch
                     result      the cloudpickled return value, or
                     error       an error (below)

An error is a dict::

    kind       raised, unpicklable_result or result_too_large
    type       the exception's module and qualified name
    message    str(exception)
    traceback  the remote traceback, formatted ('' for result_too_large)
    exception  the pickled exception, or None if it does not pickle

The reducer keeps each failed task as text in ``exceptions.zip``, written by
:func:`describe_failure` and read back by :func:`parse_failure`. As in
:mod:`multiprocessing`, a failed task is raised on the submit host with its
own type and message, the remote traceback attached as ``__cause__``
(:func:`exception_for`).
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import re
from typing import Any

import cloudpickle

from .errors import RemoteTraceback, TaskError

STDERR_TAIL_LINES = 15
"""Lines of a failed job's stderr shown with it: the end, where the error is."""

_FAILURE_HEADER = re.compile(r"^task (\d+) \(chunk (\d+)\) on host (.*)$")
_TRACEBACK_START = "\n\nTraceback (most recent call last):"


@dataclasses.dataclass(frozen=True)
class TaskFailure:
    """A task that raised (or whose result was unusable), with the worker's error dict."""

    itask: int
    error: dict
    host: str


def failed_tasks(outcome: dict, first_itask: int) -> list[TaskFailure]:
    """Every failed task of a chunk's ``outcome``, in task order.

    ``first_itask`` is the chunk's first task, which a setup error (the
    worker could not load the function) is reported as.
    """
    host = str(outcome.get("host", "?"))
    if outcome.get("setup_error") is not None:
        return [TaskFailure(first_itask, outcome["setup_error"], host)]
    return [
        TaskFailure(task.get("itask", first_itask), task["error"], host)
        for task in outcome.get("tasks", ())
        if "error" in task
    ]


def load_outcome(data: bytes) -> dict | None:
    """The outcome pickled in ``data`` as plain data; None if it is cut off or not an outcome.

    Results and exceptions in it stay pickled bytes: this never runs code,
    for an inspector of a work_dir.
    """
    try:
        outcome = _PlainDataUnpickler(io.BytesIO(data)).load()
    except Exception:  # a cut-off or foreign file: not an outcome
        return None
    return outcome if isinstance(outcome, dict) else None


class _PlainDataUnpickler(pickle.Unpickler):
    """Refuses every class and function: an outcome file never needs one."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"an outcome file must not refer to {module}.{name}")


# -- exceptions.zip's text ----------------------------------------------------


def describe_failure(ichunk: int, failure: TaskFailure) -> str:
    """A failed task as ``exceptions.zip`` keeps it; :func:`parse_failure` reads it back."""
    return (
        f"task {failure.itask} (chunk {ichunk}) on host {failure.host}\n"
        f"{failure.error['type']}: {failure.error['message']}\n\n{failure.error['traceback']}"
    )


def parse_failure(itask: int, text: str) -> tuple[int, TaskFailure]:
    """The chunk and failure a text of :func:`describe_failure` describes.

    Tolerant: a header it cannot parse gives chunk -1 and host ``?``. The
    error's ``type``, ``message`` and ``traceback`` are filled in.
    """
    header, _, rest = text.partition("\n")
    match = _FAILURE_HEADER.match(header)
    description, found, traceback = rest.partition(_TRACEBACK_START)
    if found:
        traceback = found.lstrip("\n") + traceback
    error_type, _, message = description.strip().partition(": ")
    error = {"type": error_type, "message": message, "traceback": traceback.strip("\n")}
    host = match.group(3) if match else "?"
    return (int(match.group(2)) if match else -1), TaskFailure(itask, error, host)


def last_lines(text: str) -> str:
    """The last :data:`STDERR_TAIL_LINES` lines of a failed job's stderr."""
    return "\n".join(text.rstrip().splitlines()[-STDERR_TAIL_LINES:])


# -- exceptions raised on the submit host -------------------------------------


def exception_for(failure: TaskFailure, num_failed_tasks: int, session_dir: str) -> BaseException:
    """The exception to raise for ``failure``: the task's own, or a :class:`TaskError`.

    Parameters
    ----------
    failure : TaskFailure
        The failed task.
    num_failed_tasks : int
        Failed tasks of the map in all, for the message.
    session_dir : str
        The map's session directory, named in the message.

    Returns
    -------
    BaseException
        With the remote traceback as ``__cause__`` (a :class:`RemoteTraceback`).
    """
    error = failure.error
    where = (
        f"Task {failure.itask} failed on host {failure.host}"
        + (f" ({num_failed_tasks} tasks failed in all)" if num_failed_tasks > 1 else "")
        + f". The work_dir {session_dir} keeps every task's traceback "
        "(exceptions.zip) and all finished results; calling the same map again with "
        "the same work_dir runs only the chunks that failed or did not finish."
    )
    exception = _rebuild(error) if error.get("kind") == "raised" else None
    if exception is None:
        exception = TaskError(
            f"task {failure.itask}: {error['type']}: {error['message']}",
            itask=failure.itask,
            remote_type=error["type"],
        )
    cause = RemoteTraceback(f"\n{error['traceback']}\n{where}" if error["traceback"] else where)
    exception.__cause__ = cause
    if hasattr(exception, "add_note"):
        exception.add_note(where)
    return exception


def _rebuild(error: dict) -> BaseException | None:
    if error.get("exception") is None:
        return None
    try:
        exception = pickle.loads(error["exception"])
    except Exception:
        return None
    return exception if isinstance(exception, BaseException) else None


def task_values(outcome: dict, bounds: tuple[int, int], session_dir: str) -> list[tuple[bool, Any]]:
    """Each task of a chunk's ``outcome`` as ``(True, result)`` or ``(False, exception)``.

    For results handed out as chunks finish (``imap``), in task order.
    ``bounds`` are the chunk's first task and the one after its last.
    """
    host = outcome.get("host", "?")
    if outcome.get("setup_error") is not None:
        # The worker could not load the function: no task of the chunk ran.
        return [
            (False, exception_for(TaskFailure(itask, outcome["setup_error"], host), 1, session_dir))
            for itask in range(*bounds)
        ]
    values = []
    for task in outcome["tasks"]:
        if "error" in task:
            failure = TaskFailure(task["itask"], task["error"], host)
            values.append((False, exception_for(failure, 1, session_dir)))
        else:
            values.append((True, cloudpickle.loads(task["result"])))
    return values
