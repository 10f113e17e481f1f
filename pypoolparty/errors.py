"""Exceptions a user of pypoolparty may see.

Every error a map raises of its own is a :class:`PoolError`, so
``except pypoolparty.PoolError`` catches all of them. Not wrapped: a task's
own exception (re-raised with its own type, see :class:`RemoteTraceback`),
and the interruptions :class:`KeyboardInterrupt` and :class:`Terminated`.
"""

from __future__ import annotations

import errno
import functools
import multiprocessing.pool


class PoolError(Exception):
    """Base class of pypoolparty's own errors."""


class BadInput(PoolError, ValueError):
    """The function, a task or an option cannot be used; nothing was submitted."""


class Unpicklable(TypeError, BadInput):
    """The function or a task cannot be pickled; nothing was submitted.

    Also a :class:`TypeError`, which is what :mod:`multiprocessing` raises
    for objects such as locks and open files. Where pickling failed with
    another exception (a ``__reduce__`` raising ``RuntimeError``, say), the
    error raised is also an instance of that exception's type, as
    :mod:`multiprocessing` would raise it: see :func:`also_of_type`.
    """


class UnknownOption(TypeError, BadInput):
    """A Pool was given an option it does not have; nothing was made or submitted.

    Also a :class:`TypeError`, which is what Python raises for an unexpected
    keyword argument. The message suggests the near misses, or, for a name
    another tool uses (see :data:`pypoolparty.signatures.GUESSES`), what to
    write here.
    """


class InterpreterMismatch(BadInput):
    """``python_path`` cannot run this map's pickled code.

    Pickled code is portable only between equal Python versions (major.minor)
    and equal cloudpickle versions. Raised when ``python_path`` does not
    exist or cannot run, is another Python version than the submitting
    process, or imports another cloudpickle version or none:

    - before anything is submitted, by the check that runs ``python_path`` on
      the submit host once per process (see :mod:`pypoolparty.interpreter`);
    - or when a job's worker found the same on its compute node (the job then
      ran no task): the map's other jobs are cancelled, nothing is
      resubmitted, and finished work is kept.

    The message names both versions and what to change. Never a task's
    error, and never cured by calling the map again unchanged.
    """


class WorkDirError(PoolError, OSError):
    """The work_dir cannot be created, written, or trusted.

    Raised before anything is submitted when the work_dir is not private or
    not writable, and during a map when a write into it fails (a full disk).
    """

    @classmethod
    def from_os_error(cls, path: str, error: OSError) -> WorkDirError:
        """The error to raise when writing into ``path`` failed with ``error``.

        Parameters
        ----------
        path : str
            The directory that could not be written: the work_dir or a
            session directory inside it.
        error : OSError
            What the write raised.

        Returns
        -------
        WorkDirError
            Its message names ``path`` and what to do: free space for a full
            file system or quota, else pass another work_dir.
        """
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            advice = (
                "The file system is full: free space (finished results are kept) and call again."
            )
        else:
            advice = "Pass a work_dir you can write that the compute nodes also reach."
        return cls(f"cannot write the work_dir {path}: {error.strerror or error}. {advice}")


#: The traceback of a task's exception as it happened on the compute node:
#: :class:`multiprocessing.pool.RemoteTraceback` itself, so that code written
#: for :mod:`multiprocessing` that checks a re-raised exception's
#: ``__cause__`` works unchanged. Attached as ``__cause__`` of the exception
#: re-raised locally, so that Python prints both; its ``str`` (and its
#: ``tb`` attribute) is the remote traceback's text, followed by which task
#: failed where and what the work_dir keeps.
RemoteTraceback = multiprocessing.pool.RemoteTraceback


class TaskError(PoolError):
    """A task failed and its own exception cannot be rebuilt here.

    Raised instead of the task's exception when that exception could not be
    pickled on the worker or unpickled here, when a result could not be
    pickled on the worker or unpickled on the submit host, or when it was too
    large. Where the failure was an exception of its own (the
    ``ModuleNotFoundError`` of a result whose class this process cannot
    import, say), the error is also an instance of that exception's type
    (:func:`also_of_type`).
    """

    def __init__(self, message: str, itask: int, remote_type: str) -> None:
        super().__init__(message)
        self.itask = itask
        self.remote_type = remote_type


class ResubmissionsExhausted(PoolError):
    """Jobs kept failing for scheduler reasons after every resubmission.

    Raised when a chunk's job failed (node failure, eviction, time limit, a
    job that vanished without a result) more than ``max_num_resubmissions``
    times. The message names the chunks, the scheduler's reasons and the
    last lines of their standard error.
    """


class TaskCrashed(PoolError):
    """A task crashed the Python process of its job, twice in a row.

    Raised when two jobs of a chunk died of the same fatal signal of their
    own (SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL) while running the same
    task: one resubmission allows for a bad node, a second crash is the
    task's. Not a scheduler failure, and never cured by calling the map
    again unchanged. The message names the task, its chunk, the job, the
    signal and the end of the job's stderr, where the worker's
    :mod:`faulthandler` wrote the task's traceback; the finished tasks are
    kept in the session directory. Attributes: ``itask``, ``ichunk``,
    ``jobid``, ``signal``.
    """

    def __init__(self, message: str, itask: int, ichunk: int, jobid: str, signal: str) -> None:
        super().__init__(message)
        self.itask = itask
        self.ichunk = ichunk
        self.jobid = jobid
        self.signal = signal


class PendingTimeout(PoolError):
    """Jobs waited ``pending_timeout`` seconds for a reason that does not clear by itself.

    Such a job can start only once someone acts: nodes down, drained or
    reserved, a partition down, a request beyond a partition's or an
    account's limits, no queue or machine that matches it (see
    :mod:`pypoolparty.pending`). The map's jobs are cancelled and its
    finished work kept; the message names the scheduler's reasons and the
    jobs. Once the cause is fixed, calling the same map with the same
    work_dir continues it. Raised only if ``pending_timeout`` is set.
    """


class SchedulerError(PoolError):
    """A scheduler command failed in a way the map cannot get past.

    Raised as such when a scheduler command answered with an error that
    retrying cannot fix (for example a cancel the scheduler refused, or an
    answer that contradicts the request), or when a command that was there
    when the map started cannot be executed any more. The base class of the
    scheduler's other errors below.
    """


class SchedulerUnavailable(SchedulerError):
    """A scheduler command kept failing for longer than ``outage_timeout``.

    Timeouts, errors and output that cannot be read are retried with backoff
    until then. Finished results are kept: calling the same map again, once
    the scheduler answers, continues it.
    """


class SubmissionRejected(SchedulerError):
    """The scheduler refused the submission for a reason retrying won't fix
    (an unknown partition, a bad resource request, an interpreter that does
    not exist). The message holds the scheduler's own words; the option
    behind them must change before the map can run."""


class JobCannotRun(SchedulerError):
    """The scheduler failed a job in a way no resubmission can cure.

    For example HTCondor held it because the job cannot enter its initial
    working directory (HoldReasonCode 14, a permission or path problem),
    or cannot start its executable; SLURM says its request can never be
    met (``BadConstraints``, ``InvalidAccount``). Raised at the first such
    job, instead of resubmitting it: the map's other jobs are cancelled and
    its finished work is kept. The message holds the scheduler's reason and
    what to change; calling the map again only helps after that change.
    """


class TimeLimitTooShort(JobCannotRun):
    """A task alone needs more time than the jobs' time limit allows.

    Raised when a job was killed at its time limit (or stopped on the
    scheduler's warning before it) without finishing any task, nor saving a
    checkpoint (:mod:`pypoolparty.checkpoint`): a job with the same limit
    would stop at the same task again. The message names the task, the
    limit and the option that sets it, and how long the task ran. The map's
    other jobs are cancelled and its finished tasks kept: calling the same
    map with a longer limit (and the same work_dir) continues it.
    """


class Terminated(BaseException):
    """The submitting process received SIGTERM during a map.

    Like :class:`KeyboardInterrupt`, it derives from :class:`BaseException` so
    that ``except Exception`` does not swallow it.
    """


class Cancelled(PoolError):
    """The pool was terminated (``terminate()`` or leaving its ``with`` block)
    while this map ran: its jobs were cancelled and its work_dir kept, so
    calling the same map again continues it."""


def also_of_type(error_class: type, original: BaseException, *args, **attributes) -> BaseException:
    """An ``error_class(*args)`` that is also an instance of ``type(original)``.

    So ``except RuntimeError`` still catches a pickling failure that
    :mod:`multiprocessing` would have raised as the ``RuntimeError`` itself,
    while the message says what failed and what to do. The combined class is
    made once per pair of classes; its ``str`` is the message in ``args``.

    Parameters
    ----------
    error_class : type
        A pypoolparty error, e.g. :class:`Unpicklable` or :class:`TaskError`.
    original : BaseException
        The exception that caused it.
    *args
        The arguments of ``error_class``.
    **attributes
        Set on the error (``itask``, ``remote_type`` of :class:`TaskError`).

    Returns
    -------
    BaseException
        An instance of both classes; of ``error_class`` alone where
        ``type(original)`` cannot be combined with it (a layout conflict, a
        class that forbids subclasses, an ``__init__`` that needs other
        arguments).
    """
    combined = _combined_class(error_class, type(original))
    if combined is not None:
        try:
            error = combined(*args)
            for name, value in attributes.items():
                setattr(error, name, value)
            return error
        except Exception:  # an __init__ or __setattr__ of the original type refused
            pass
    error = error_class.__new__(error_class, *args)
    BaseException.__init__(error, *args)
    for name, value in attributes.items():
        setattr(error, name, value)
    return error


@functools.lru_cache(maxsize=256)
def _combined_class(error_class: type, original_class: type) -> type | None:
    if issubclass(error_class, original_class):
        return None
    try:
        return type(
            error_class.__name__,
            (error_class, original_class),
            {
                "__module__": error_class.__module__,
                "__qualname__": error_class.__qualname__,
                "__doc__": error_class.__doc__,
                # The message, not the original type's formatting (KeyError quotes it).
                "__str__": BaseException.__str__,
                "__init__": _init_as_base_exception,
                "__reduce__": _reduce_combined,
                "_pypoolparty_classes": (error_class, original_class),
            },
        )
    except TypeError:  # a layout conflict, or a class that cannot be subclassed
        return None


def _init_as_base_exception(self, *args) -> None:
    # The original type's __init__ may want other arguments (UnicodeError's
    # five): the message is all this error holds.
    BaseException.__init__(self, *args)


def _reduce_combined(self):
    return _rebuild_combined, (*self._pypoolparty_classes, self.args, dict(vars(self)))


def _rebuild_combined(
    error_class: type, original_class: type, args: tuple, attributes: dict
) -> BaseException:
    combined = _combined_class(error_class, original_class)
    error = (combined or error_class)(*args)
    vars(error).update(attributes)
    return error
