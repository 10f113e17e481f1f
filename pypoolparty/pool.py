"""The scheduler-agnostic pool: ``map`` and ``starmap`` as in multiprocessing.

A scheduler's Pool subclasses :class:`Pool`, validates its own options in
``__init__`` and builds its adapter in :meth:`Pool._make_scheduler`. Everything
else -- chunking, the work_dir, babysitting, resubmission, reduction -- is the
same for every scheduler and lives in :mod:`pypoolparty.session`.
"""

from __future__ import annotations

import abc
import os
import re
import sys
from collections.abc import Iterable
from typing import Any, Callable

from . import session
from .commands import RetryPolicy
from .environment import Selection
from .scheduler import Scheduler

JOB_NAME_PREFIX_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")


class Pool(abc.ABC):
    """Run ``func`` over many tasks as jobs of a batch scheduler.

    Parameters
    ----------
    num_simultaneously_running_tasks : int, optional
        At most this many jobs of one map run at once. ``None``: no limit of
        our own (the scheduler's fair share decides).
    python_path : str, optional
        The Python interpreter that runs the worker on the compute nodes. It
        needs cloudpickle and whatever ``func`` imports. Default: the
        interpreter running this process (``sys.executable``).
    polling_interval : float
        Seconds between two looks at the scheduler and the result files.
    work_dir : str, optional
        Directory for everything that crosses to the compute nodes; it must
        be on a file system the nodes reach. Each map gets its own session
        directory inside it, named after the function and the tasks, so a map
        that was interrupted continues when called again with the same
        ``work_dir``. Default: a new directory below ``./.pypoolparty``.
    keep_work_dir : bool
        Keep the session directory after a successful map. It is always kept
        when something went wrong, and the error names it.
    verbose : bool
        Log the progress of each map to standard error.
    max_num_resubmissions : int
        How often a chunk whose job failed for scheduler reasons (node
        failure, eviction, time limit, ...) is resubmitted before the map gives
        up. A task that raises is never resubmitted.
    command_timeout : float
        Seconds a single scheduler command may take before it is killed and
        retried.
    outage_timeout : float
        Seconds a scheduler may keep failing (timeouts, errors, garbage
        output) before the map gives up. Finished results are kept.
    missing_result_grace_period : float
        Seconds to wait for the result file of a job that left the queue,
        for shared file systems that show files late.
    environment : str or list of str
        Which environment variables of this process the worker sets:
        ``"default"`` (all but those that belong to this host or job, such as
        ``SLURM_*``, ``HOSTNAME``, ``TMPDIR``), ``"all"``, ``"none"``, or a
        list of names. The values are kept in a private file in the work_dir,
        never in a script or a log.
    job_name_prefix : str
        Start of the scheduler's job names, to recognise them in the queue.
    max_result_size : int, optional
        Largest pickled result of one task, in bytes. A larger one is an error
        of its task (it would fill the work_dir and this process's memory).
        ``None``: no limit.
    """

    default_polling_interval: float = 1.0

    def __init__(
        self,
        num_simultaneously_running_tasks: int | None = None,
        *,
        python_path: str | None = None,
        polling_interval: float | None = None,
        work_dir: str | os.PathLike | None = None,
        keep_work_dir: bool = False,
        verbose: bool = False,
        max_num_resubmissions: int = 5,
        command_timeout: float = 60.0,
        outage_timeout: float = 3600.0,
        missing_result_grace_period: float = 30.0,
        environment: str | list[str] = "default",
        job_name_prefix: str = "ppp",
        max_result_size: int | None = None,
    ) -> None:
        if polling_interval is None:
            polling_interval = self.default_polling_interval
        self.num_simultaneously_running_tasks = _optional_positive_int(
            "num_simultaneously_running_tasks", num_simultaneously_running_tasks
        )
        self.python_path = _valid_python_path(python_path)
        self.polling_interval = _positive_number("polling_interval", polling_interval)
        self.work_dir = None if work_dir is None else os.path.abspath(os.fspath(work_dir))
        self.keep_work_dir = bool(keep_work_dir)
        self.verbose = bool(verbose)
        if not isinstance(max_num_resubmissions, int) or max_num_resubmissions < 0:
            raise ValueError(
                f"max_num_resubmissions must be a whole number >= 0, not {max_num_resubmissions!r}"
            )
        self.max_num_resubmissions = max_num_resubmissions
        self.retry_policy = RetryPolicy(
            timeout=_positive_number("command_timeout", command_timeout),
            max_outage=_non_negative_number("outage_timeout", outage_timeout),
            first_backoff=min(1.0, max(command_timeout, 0.01)),
        )
        self.missing_result_grace_period = _non_negative_number(
            "missing_result_grace_period", missing_result_grace_period
        )
        self.environment = Selection.parse(environment)
        if not isinstance(job_name_prefix, str) or not JOB_NAME_PREFIX_PATTERN.match(
            job_name_prefix
        ):
            raise ValueError(
                "job_name_prefix must start with a letter and hold at most 32 letters, "
                f"digits, '_', '.' or '-', not {job_name_prefix!r}"
            )
        self.job_name_prefix = job_name_prefix
        self.max_result_size = _optional_positive_int("max_result_size", max_result_size)

    @abc.abstractmethod
    def _make_scheduler(self) -> Scheduler:
        """Build this pool's scheduler adapter (called once per map)."""

    def map(self, func: Callable, iterable: Iterable, chunksize: int | None = None) -> list:
        """Apply ``func`` to each element of ``iterable``; return the results in order.

        Like :meth:`multiprocessing.pool.Pool.map`: blocks until every task
        is done. If a task raises, the other jobs are let finish (their
        results stay in the work_dir for a later call) and the exception of
        the first failed task is raised, with the remote traceback as its
        ``__cause__``.

        Parameters
        ----------
        func : callable
            Anything cloudpickle can pickle: module functions, lambdas,
            closures, ``functools.partial``, bound methods.
        iterable : iterable
            The tasks; consumed at once (generators are fine).
        chunksize : int, optional
            Tasks per job. Default: see :func:`pypoolparty.chunking.default_chunksize`.
        """
        return self._run(func, iterable, chunksize, star=False)

    def starmap(self, func: Callable, iterable: Iterable, chunksize: int | None = None) -> list:
        """Like :meth:`map`, but each task is a tuple of arguments: ``func(*task)``."""
        return self._run(func, iterable, chunksize, star=True)

    def _run(self, func: Callable, iterable: Iterable, chunksize: int | None, star: bool) -> list:
        if not callable(func):
            raise TypeError(f"func must be callable, not {type(func).__name__}")
        if chunksize is not None:
            chunksize = _optional_positive_int("chunksize", chunksize)
        tasks = list(iterable)
        if star:
            for itask, task in enumerate(tasks):
                if not isinstance(task, Iterable):
                    raise TypeError(
                        f"starmap needs each task to be an iterable of arguments; "
                        f"task {itask} is a {type(task).__name__}"
                    )
        if not tasks:
            return []
        return session.run_map(pool=self, func=func, tasks=tasks, chunksize=chunksize, star=star)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        # Every map waits for its jobs and cancels them on errors, so there is
        # nothing left to clean up here.
        return None

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}()"


def _positive_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, not {value!r}")
    return float(value)


def _non_negative_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, not {value!r}")
    return float(value)


def _optional_positive_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
    return value


def _valid_python_path(python_path: str | None) -> str:
    if python_path is None:
        if not sys.executable:
            raise ValueError(
                "cannot tell which Python runs this process; pass python_path, the "
                "interpreter the compute nodes should use"
            )
        return sys.executable
    python_path = os.fspath(python_path)
    if not os.path.isabs(python_path):
        raise ValueError(
            f"python_path must be an absolute path (the compute nodes' PATH may differ), "
            f"not {python_path!r}"
        )
    if not os.path.isfile(python_path) or not os.access(python_path, os.X_OK):
        raise ValueError(
            f"python_path {python_path!r} does not exist or is not executable; "
            "pass the interpreter the compute nodes should use"
        )
    return python_path
