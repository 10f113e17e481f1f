"""Turn a task's failure on a compute node into an exception raised here.

As in :mod:`multiprocessing`, the task's own exception is raised with its own
type and message, and the remote traceback is attached as ``__cause__``. The
task index and the work_dir are named in the cause (and, on Python 3.11+, in
a note on the exception).
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

from .errors import RemoteTraceback, TaskError
from .reducer import TaskFailure


def exception_for(failure: TaskFailure, num_failed_tasks: int, work_dir: str) -> BaseException:
    error = failure.error
    where = (
        f"Task {failure.itask} failed on host {failure.host}"
        + (f" ({num_failed_tasks} tasks failed in all)" if num_failed_tasks > 1 else "")
        + f". The work_dir {work_dir} keeps every task's traceback "
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


def task_values(outcome: dict, bounds: tuple[int, int], work_dir: str) -> list[tuple[bool, Any]]:
    """Each task of a chunk's ``outcome`` as ``(True, result)`` or ``(False, exception)``.

    For results handed out as chunks finish (``imap``), in task order.
    """
    host = outcome.get("host", "?")
    if outcome.get("setup_error") is not None:
        # The worker could not load the function: no task of the chunk ran.
        return [
            (False, exception_for(TaskFailure(itask, outcome["setup_error"], host), 1, work_dir))
            for itask in range(*bounds)
        ]
    values = []
    for task in outcome["tasks"]:
        if "error" in task:
            failure = TaskFailure(task["itask"], task["error"], host)
            values.append((False, exception_for(failure, 1, work_dir)))
        else:
            values.append((True, cloudpickle.loads(task["result"])))
    return values
