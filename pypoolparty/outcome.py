"""A chunk's outcome, the failures in it, and the exceptions raised from them.

The worker (:mod:`pypoolparty.worker`, which imports nothing of pypoolparty
by design) writes one outcome per chunk, a pickled dict of plain data::

    format       1
    ichunk       the chunk
    host, pid    where the worker ran
    home_chunk   the chunk the worker's job was submitted for: another one
                 when the job claimed this chunk (see
                 :mod:`pypoolparty.claims`); absent in outcomes of
                 versions before claiming
    start, end   seconds since the epoch
    setup_error  None, or an error (below): the worker could not load the
                 function or its tasks, and no task ran
    tasks        one dict per task run, in task order:
                     itask       the task's index in the map
                     start, end  seconds since the epoch
                     result      the cloudpickled return value, or
                     error       an error (below)
    interpreter_mismatch
                 only where the worker's Python or cloudpickle version is
                 not the submitter's, and it unpickled nothing (no task
                 ran, ``tasks`` is empty): ``expected`` (the submitter's
                 ``python`` and ``cloudpickle`` versions, from
                 worker_config.json) and ``found`` (the worker's, with
                 ``cloudpickle`` None where it has none that imports,
                 ``cloudpickle_error`` and ``executable``). Not a chunk
                 that finished: see :func:`interpreter_mismatch`.
    reused_tasks how many of ``tasks`` an earlier, killed run of the chunk
                 had finished and recorded (see :mod:`pypoolparty.task_records`);
                 0 if absent
    interrupted  None, or the chunk did not finish because the job was told
                 to stop (:func:`interruption`): a dict with ``signal``
                 (e.g. ``SIGTERM``) and ``unfinished_tasks``; ``tasks`` then
                 holds the tasks finished so far, which the next run of the
                 chunk reads from their records

An error is a dict::

    kind       raised, unpicklable_result, result_too_large, or
               unloadable_result: the submit host could not unpickle the
               result (set by the reducer, :func:`mark_unloadable_results`)
    type       the exception's module and qualified name
    message    str(exception)
    traceback  the remote traceback, formatted ('' for result_too_large;
               the submit host's for unloadable_result)
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
import traceback as traceback_module
from typing import Any

import cloudpickle

from .errors import RemoteTraceback, TaskError, also_of_type

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


def interpreter_mismatch(outcome: dict) -> dict | None:
    """The ``expected`` and ``found`` versions of a worker that ran no task for them; else None.

    Such a chunk is not done: its job could not run it, nor could any job
    on that interpreter (:class:`pypoolparty.InterpreterMismatch`).
    """
    mismatch = outcome.get("interpreter_mismatch")
    return mismatch if isinstance(mismatch, dict) else None


def interruption(outcome: dict) -> dict | None:
    """Why ``outcome``'s chunk stopped before its end, or None if it ran to its end.

    An interrupted outcome (the job got SIGTERM, SIGUSR1 or SIGUSR2 from its
    scheduler) is no result of the chunk: the chunk runs again, from its
    first unfinished task.
    """
    interrupted = outcome.get("interrupted")
    return interrupted if isinstance(interrupted, dict) else None


def assembled(ichunk: int, tasks: list[dict], host: str) -> dict:
    """The outcome of a chunk cut down to tasks that stopped jobs finished.

    For a chunk a time limit stopped, continued in pieces
    (:mod:`pypoolparty.splitting`): ``tasks`` are the entries its jobs
    recorded (:mod:`pypoolparty.task_records`), in task order; ``host`` is
    where the last job ran. All of them are reused, as a worker would count
    them.
    """
    return {
        "format": 1,
        "ichunk": ichunk,
        "host": host,
        "pid": None,
        "start": min((t.get("start", 0.0) for t in tasks), default=0.0),
        "end": max((t.get("end", 0.0) for t in tasks), default=0.0),
        "setup_error": None,
        "tasks": tasks,
        "reused_tasks": len(tasks),
        "interrupted": None,
    }


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


def mark_unloadable_results(outcome: dict) -> int:
    """Turn each result of ``outcome`` this process cannot unpickle into an error of its task.

    The job could import what the result is made of; this process may not
    (a class from a module only the compute nodes have). Such a task fails
    like any task, with a message that says why and what to do, instead of
    the whole map failing on a bare ``ModuleNotFoundError`` when the results
    are read. Each result is unpickled once and dropped, so memory does not
    grow.

    Returns
    -------
    int
        How many results were turned into errors (``outcome`` is changed in place).
    """
    if outcome.get("setup_error") is not None:
        return 0
    count = 0
    for task in outcome.get("tasks", ()):
        if "result" not in task or not _may_import(task["result"]):
            continue
        try:
            cloudpickle.loads(task["result"])
        except Exception as error:
            del task["result"]
            task["error"] = _unloadable_result(error, str(outcome.get("host", "?")))
            count += 1
    return count


_IMPORTING_OPCODES = re.compile(rb"[cio\x82-\x84\x93]")
"""The bytes of pickle's opcodes that look up a global (GLOBAL, INST, OBJ,
EXT1-4, STACK_GLOBAL; see CPython's ``pickletools``): only those can fail to
import in this process. The bytes may also occur inside data."""


def _may_import(data: bytes) -> bool:
    """Whether unpickling ``data`` may look up a global; False only when it surely does not.

    A number's or a string's pickle, the result of most tiny tasks, has no
    such opcode: it cannot fail to load here, and is not unpickled twice.
    """
    return _IMPORTING_OPCODES.search(data) is not None


def _unloadable_result(error: Exception, host: str) -> dict:
    if isinstance(error, ImportError) and error.name:
        cause = (
            f"the result refers to the module {error.name!r}, which the job on host {host} "
            "imported but this process cannot"
        )
        fix = (
            f"Make {error.name!r} importable here too (install it, or add its directory to "
            "sys.path or PYTHONPATH before the map), or return plain Python types (numbers, "
            "strings, lists, dicts, numpy arrays) instead"
        )
    else:
        cause = f"the result, pickled by the job on host {host}, cannot be unpickled here"
        fix = (
            "Return objects this process can rebuild (plain Python types, or classes of "
            "modules importable here)"
        )
    try:
        pickled = pickle.dumps(error)
        pickle.loads(pickled)
    except Exception:
        pickled = None
    return {
        "kind": "unloadable_result",
        "type": f"{type(error).__module__}.{type(error).__qualname__}",
        "message": f"{cause}: {error}. {fix}.",
        "traceback": "".join(
            traceback_module.format_exception(type(error), error, error.__traceback__)
        ),
        "exception": pickled,
    }


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
    original = _rebuild(error)
    exception = original if error.get("kind") == "raised" else None
    if exception is None:
        message = f"task {failure.itask}: {error['type']}: {error['message']}"
        attributes = {"itask": failure.itask, "remote_type": error["type"]}
        if original is None:
            exception = TaskError(message, **attributes)
        else:
            # A result that could not be pickled or unpickled: also of the
            # type of what failed, as multiprocessing would raise it.
            exception = also_of_type(TaskError, original, message, **attributes)
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


def results_of(outcome: dict) -> list:
    """The unpickled results of a chunk's ``outcome`` whose tasks all succeeded, in task order.

    Raises
    ------
    KeyError
        If a task of ``outcome`` has no result (it failed).
    Exception
        Whatever unpickling a result raises.
    """
    return [pickle.loads(task["result"]) for task in outcome["tasks"]]


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
        error = task.get("error")
        if error is None:
            try:
                values.append((True, cloudpickle.loads(task["result"])))
                continue
            except Exception as unloadable:  # archived by an earlier call, unloadable since
                error = _unloadable_result(unloadable, str(host))
        failure = TaskFailure(task["itask"], error, host)
        values.append((False, exception_for(failure, 1, session_dir)))
    return values
