"""Exceptions a user of pypoolparty may see."""

from __future__ import annotations


class PoolError(Exception):
    """Base class of pypoolparty's own errors."""


class BadInput(PoolError, ValueError):
    """The function, a task or an option cannot be used; nothing was submitted."""


class Unpicklable(TypeError, BadInput):
    """The function or a task cannot be pickled; nothing was submitted.

    Also a :class:`TypeError`, which is what :mod:`multiprocessing` raises
    for objects such as locks and open files.
    """


class WorkDirError(PoolError, OSError):
    """The work_dir cannot be created, written, or trusted."""


class RemoteTraceback(Exception):
    """The traceback of a task's exception as it happened on the compute node.

    Attached as ``__cause__`` of the exception re-raised locally, so that
    Python prints both, as :mod:`multiprocessing` does.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


class TaskError(PoolError):
    """A task failed and its own exception cannot be rebuilt here.

    Raised instead of the task's exception when that exception could not be
    pickled on the worker or unpickled here, or when a result could not be
    pickled or was too large.
    """

    def __init__(self, message: str, itask: int, remote_type: str) -> None:
        super().__init__(message)
        self.itask = itask
        self.remote_type = remote_type


class ResubmissionsExhausted(PoolError):
    """Jobs kept failing for scheduler reasons after every resubmission."""


class SchedulerUnavailable(PoolError):
    """A scheduler command kept failing for longer than ``outage_timeout``."""


class Terminated(BaseException):
    """The submitting process received SIGTERM during a map.

    Like :class:`KeyboardInterrupt`, it derives from :class:`BaseException` so
    that ``except Exception`` does not swallow it.
    """


class Cancelled(PoolError):
    """The pool was terminated (``terminate()`` or leaving its ``with`` block)
    while this map ran: its jobs were cancelled and its work_dir kept, so
    calling the same map again continues it."""
