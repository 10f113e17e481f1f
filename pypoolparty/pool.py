"""The scheduler-agnostic pool, with the interface of :class:`multiprocessing.pool.Pool`.

A scheduler's Pool subclasses :class:`Pool`, validates its own options in
``__init__`` and builds its adapter in :meth:`Pool._make_scheduler`. Everything
else -- chunking, the work_dir, babysitting, resubmission, reduction -- is the
same for every scheduler and lives in :mod:`pypoolparty.session`, which sees
only the pool's checked common options (:class:`pypoolparty.settings.MapSettings`)
and the adapter.
"""

from __future__ import annotations

import abc
import functools
import os
import re
import sys
import warnings
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, Callable

from . import checks, launcher, session
from . import container as container_module
from .async_result import AsyncResult
from .background import Background
from .commands import RetryPolicy
from .container import Container
from .environment import Selection
from .errors import BadInput, InterpreterMismatch
from .imap import DEFAULT_READ_AHEAD, IMapIterator
from .scheduler import Scheduler
from .settings import MapSettings

RUNNING, CLOSED, TERMINATED = "running", "closed", "terminated"
JOB_NAME_PREFIX_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")


class Pool(abc.ABC):
    """Run ``func`` over many tasks as jobs of a batch scheduler.

    Parameters
    ----------
    num_simultaneously_running_tasks : int, optional
        At most this many jobs of one map run at once. ``None``: no limit of
        our own (the scheduler's fair share decides).
    python_path : str, optional
        The Python interpreter that runs the worker on the compute nodes, by
        the same absolute path there and on this host. It must be the Python
        version (major.minor) of this process and import the same cloudpickle
        version, and whatever ``func`` imports: from its own environment
        first, then from the directories of this process's ``sys.path`` that
        the node sees (offered only when the Python versions match). Checked
        on this host once per process before the first map submits anything,
        and again by each job on its node
        (:class:`pypoolparty.InterpreterMismatch`). Default: the interpreter
        running this process (``sys.executable``).
    polling_interval : float
        Seconds between two looks at the scheduler and the result files.
    work_dir : str, optional
        Directory for everything that crosses to the compute nodes; it must
        be on a file system the nodes reach. Each map gets its own session
        directory inside it, named after the function and the tasks, so a map
        that was interrupted continues when called again with the same
        ``work_dir``. Default: ``./.pypoolparty`` in the current directory.
    keep_work_dir : bool
        Keep the session directory after a successful map, to look at its
        logs and outputs (``pypoolparty status``, ``errors``, ``stdout``). It is
        always kept when something went wrong, and the error names it. A kept
        directory of a finished map is not a cache: calling the same map again
        runs it afresh in a directory of its own (see ``reuse_results``).
    reuse_results : bool
        Use the work_dir as a cache: a map that already finished in it (same
        function, tasks, chunking, ``python_path``, ``environment``,
        ``setup`` and ``container``) returns its stored
        results without running anything, whatever scheduler ran it. Only the
        pickled function and tasks are compared: files the function reads,
        random numbers and the time are not, so ask for it only where the same
        call must give the same results. Implies ``keep_work_dir``. Continuing
        an unfinished map (interrupted, stopped by an error, or with tasks that
        raised) needs no option. Either way, one line on standard error says
        how many tasks were reused and from which directory.
    verbose : bool
        Show each map's progress on standard error -- tasks done, running,
        pending, in error, held, resubmissions, rate and ETA -- as one live
        line on a terminal and as a plain line a minute otherwise (batch
        logs) -- and log what happens (submissions, resubmissions, errors).
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
        Seconds to wait for the result file of a job that left the queue
        without the scheduler saying it failed, for shared file systems that
        show files late. A job the scheduler reports failed is handled at once.
    environment : str or list of str
        Which environment variables of this process the jobs get:
        ``"default"`` (all but those that belong to this host or job, such as
        ``SLURM_*``, ``HOSTNAME``, ``TMPDIR``), ``"all"``, ``"none"``, or a
        list of names. They are set before the worker's interpreter starts
        (so ``LD_LIBRARY_PATH``, ``PATH`` and ``PYTHONPATH`` act on it), from
        a private file in the work_dir, never from a script, a command line
        or a log. See docs/job_environment.rst.
    setup : list of str
        Shell lines each job runs in order before the worker, e.g.
        ``["module load gcc/12", "source ~/venv/bin/activate"]``: under
        ``/bin/bash``, in the shell that then starts the worker (so what they
        export or activate is in force), after the exported environment, with
        ``set -e``. A line that fails ends the map with
        :class:`pypoolparty.JobCannotRun` naming the line and showing the
        job's stderr; it is not resubmitted. The lines are stored in the
        work_dir (``setup.sh``): put secrets in the environment, not here.
        See docs/job_environment.rst.
    job_name_prefix : str
        Start of the scheduler's job names, to recognise them in the queue.
    max_result_size : int, optional
        Largest pickled result of one task, in bytes. A larger one is an error
        of its task (it would fill the work_dir and this process's memory).
        ``None``: no limit.
    pending_warning_after : float
        Seconds a job may wait for a reason that does not clear by itself --
        nodes down or drained, a partition down, a request beyond a
        partition's or an account's limits, no queue or machine that
        matches -- before the map says so on standard error, once, verbose or
        not, with the scheduler's reasons and the job ids. Waiting for free
        resources, a start time or another job never counts. See "My jobs
        stay pending" in the README.
    pending_timeout : float, optional
        Seconds a job may wait for such a reason before the map ends with
        :class:`pypoolparty.PendingTimeout`, cancelling its jobs and keeping
        its finished work. ``None``: wait until someone fixes the cause.
    container : pypoolparty.Container, optional
        Run each job's worker inside this image, with the runtime it names
        (Apptainer/Singularity ``exec``, Podman/Docker ``run``, Charliecloud
        ``ch-run``): the work_dir (which holds the session directory) and this
        process's working directory are mounted at the same paths, and the job starts in that
        working directory. ``python_path`` then names the image's
        interpreter (absolute, with cloudpickle), which need not exist on
        this machine. ``multiprocessing`` has no equivalent. See
        "Containers" in the docs. ``None``: the worker runs on the node
        itself.
    tasks_per_job : int
        How many tasks each job runs at once, in as many processes, each
        claiming chunks of its own (like PyTaskFarmer's ``--proc``): so that
        one job fills a node's cores. Results, errors, task records,
        checkpoints and each chunk's output are as with one process.
        Request the cores yourself (SLURM ``cpus_per_task``, Grid Engine
        ``parallel_environment="smp", slots=N``, HTCondor ``request_cpus``);
        ``num_simultaneously_running_tasks`` counts tasks, so the map runs
        ``num_simultaneously_running_tasks // tasks_per_job`` jobs at once
        (at least one). Needs a shared file system (the
        processes claim their work there): HTCondor without one refuses
        more than 1. See "Several tasks per job" in docs/pools.rst.
        Default 1.

    Raises
    ------
    pypoolparty.BadInput
        An option has a value it cannot take (a ``ValueError``).

    Attributes
    ----------
    settings : pypoolparty.settings.MapSettings
        The checked common options, all a map's session reads of the pool.
    retry_policy : pypoolparty.commands.RetryPolicy
        ``command_timeout`` and ``outage_timeout``, for the scheduler adapter.
    """

    default_polling_interval: float = 1.0

    _warn_if_unclosed: bool = True
    """Whether garbage-collecting this pool while running warns; a copy the
    package made for itself (``call_group.derived_pool``) does not."""

    def __init__(
        self,
        num_simultaneously_running_tasks: int | None = None,
        *,
        python_path: str | None = None,
        polling_interval: float | None = None,
        work_dir: str | os.PathLike | None = None,
        keep_work_dir: bool = False,
        reuse_results: bool = False,
        verbose: bool = False,
        max_num_resubmissions: int = 5,
        command_timeout: float = 60.0,
        outage_timeout: float = 3600.0,
        missing_result_grace_period: float = 30.0,
        environment: str | list[str] = "default",
        setup: Sequence[str] = (),
        job_name_prefix: str = "ppp",
        max_result_size: int | None = None,
        pending_warning_after: float = 600.0,
        pending_timeout: float | None = None,
        container: Container | None = None,
        tasks_per_job: int = 1,
    ) -> None:
        if polling_interval is None:
            polling_interval = self.default_polling_interval
        container = _valid_container(container, work_dir)
        self.settings = MapSettings(
            num_simultaneously_running_tasks=checks.optional_whole_number(
                "num_simultaneously_running_tasks", num_simultaneously_running_tasks, 1
            ),
            python_path=_valid_python_path(python_path, in_image=container is not None),
            polling_interval=checks.positive_number("polling_interval", polling_interval),
            work_dir=None if work_dir is None else os.path.abspath(os.fspath(work_dir)),
            keep_work_dir=bool(keep_work_dir) or bool(reuse_results),
            reuse_results=bool(reuse_results),
            verbose=bool(verbose),
            max_num_resubmissions=checks.whole_number(
                "max_num_resubmissions", max_num_resubmissions, 0
            ),
            missing_result_grace_period=checks.non_negative_number(
                "missing_result_grace_period", missing_result_grace_period
            ),
            environment=Selection.parse(environment),
            job_name_prefix=_valid_job_name_prefix(job_name_prefix),
            max_result_size=checks.optional_whole_number("max_result_size", max_result_size, 1),
            pending_warning_after=checks.non_negative_number(
                "pending_warning_after", pending_warning_after
            ),
            pending_timeout=None
            if pending_timeout is None
            else checks.non_negative_number("pending_timeout", pending_timeout),
            container=container,
            setup=launcher.checked_setup(setup),
            tasks_per_job=checks.whole_number("tasks_per_job", tasks_per_job, 1),
        )
        self.retry_policy = RetryPolicy(
            timeout=checks.positive_number("command_timeout", command_timeout),
            max_outage=checks.non_negative_number("outage_timeout", outage_timeout),
            first_backoff=min(1.0, max(command_timeout, 0.01)),
        )
        self._state = RUNNING
        self._background = Background()
        # Maps still running when the interpreter exits would leave their
        # jobs in the queue; multiprocessing terminates its pools, too.
        weakref.finalize(self, self._background.terminate)

    @property
    def num_simultaneously_running_tasks(self) -> int | None:
        """At most this many jobs of one map run at once (``None``: no limit)."""
        return self.settings.num_simultaneously_running_tasks

    @abc.abstractmethod
    def _make_scheduler(self) -> Scheduler:
        """Build this pool's scheduler adapter (called once per map)."""

    # -- blocking calls -------------------------------------------------------

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
            Tasks per chunk, the piece of work a job runs or claims at once.
            Default: chunks that shrink towards the map's end, so that the
            slots finish together (see :mod:`pypoolparty.chunking`).
        """
        func, tasks, chunksize = self._checked(func, iterable, chunksize, star=False)
        return self._run(func, tasks, chunksize, star=False)

    def starmap(self, func: Callable, iterable: Iterable, chunksize: int | None = None) -> list:
        """Like :meth:`map`, but each task is a tuple of arguments: ``func(*task)``."""
        func, tasks, chunksize = self._checked(func, iterable, chunksize, star=True)
        return self._run(func, tasks, chunksize, star=True)

    def apply(self, func: Callable, args: Iterable = (), kwds: dict | None = None) -> Any:
        """Call ``func(*args, **kwds)`` as one job and return its result."""
        return self.apply_async(func, args, kwds).get()

    # -- calls that return at once -------------------------------------------

    def map_async(
        self,
        func: Callable,
        iterable: Iterable,
        chunksize: int | None = None,
        callback: Callable[[list], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult:
        """Like :meth:`map`, but return an :class:`~pypoolparty.async_result.AsyncResult` at once.

        The input is read and checked before this returns; the map runs in a
        background thread, which also calls ``callback`` with the list of
        results or ``error_callback`` with the exception.
        """
        func, tasks, chunksize = self._checked(func, iterable, chunksize, star=False)
        return self._start(func, tasks, chunksize, False, callback, error_callback)

    def starmap_async(
        self,
        func: Callable,
        iterable: Iterable,
        chunksize: int | None = None,
        callback: Callable[[list], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult:
        """Like :meth:`starmap`, but return an :class:`~pypoolparty.async_result.AsyncResult`."""
        func, tasks, chunksize = self._checked(func, iterable, chunksize, star=True)
        return self._start(func, tasks, chunksize, True, callback, error_callback)

    def apply_async(
        self,
        func: Callable,
        args: Iterable = (),
        kwds: dict | None = None,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult:
        """Like :meth:`apply`, but return an :class:`~pypoolparty.async_result.AsyncResult`."""
        if not callable(func):
            raise TypeError(f"func must be callable, not {type(func).__name__}")
        call = functools.partial(func, **kwds) if kwds else func
        result = AsyncResult(callback, error_callback)
        self._check_running()
        self._background.start(
            lambda: _deliver(result, lambda: self._run(call, [tuple(args)], 1, star=True)[0])
        )
        return result

    def imap(
        self,
        func: Callable,
        iterable: Iterable,
        chunksize: int | None = None,
        *,
        read_ahead: int = DEFAULT_READ_AHEAD,
        batch_window: float | None = None,
    ) -> IMapIterator:
        """Like :meth:`map`, but return an iterator over the results, in order,
        each as soon as its chunk is done.

        The input is read lazily, in a thread of its own, a chunk at a time
        (``chunksize`` tasks, or one), and sent in windows, each run as a map
        of its own, with at most two windows of tasks waiting to be consumed.
        A task that raised raises when the iteration reaches it; the
        iteration can go on. If the input raises, the results of the whole
        chunks read before come first, then its exception (as in
        :mod:`multiprocessing`, the chunk it interrupted is dropped).
        ``next(timeout)`` raises :class:`multiprocessing.TimeoutError` when
        no result comes in time. :meth:`terminate` does not wait for an input
        that blocks.

        Parameters
        ----------
        read_ahead : int
            Tasks per window: a window is sent once it holds this many.
        batch_window : float, optional
            Longest time in seconds a task read waits for its window to fill
            before the tasks read so far are sent, so that a slow or blocking
            input still has its first tasks run. Default: the pool's
            ``polling_interval``.

        Raises
        ------
        pypoolparty.BadInput
            If ``chunksize`` or ``read_ahead`` is not a whole number >= 1, or
            ``batch_window`` not a number >= 0 (a ``ValueError``).
        """
        return self._imap(func, iterable, chunksize, read_ahead, batch_window, ordered=True)

    def imap_unordered(
        self,
        func: Callable,
        iterable: Iterable,
        chunksize: int | None = None,
        *,
        read_ahead: int = DEFAULT_READ_AHEAD,
        batch_window: float | None = None,
    ) -> IMapIterator:
        """Like :meth:`imap`, but yield results as chunks finish, in any order.

        An exception of the input comes after the results of every task read
        before it.
        """
        return self._imap(func, iterable, chunksize, read_ahead, batch_window, ordered=False)

    def run_commands(
        self,
        commands: Iterable[str],
        *,
        timeout: float | None = None,
        cwd: str | os.PathLike | None = None,
        check: bool = False,
        chunksize: int | None = None,
    ) -> list:
        """Run shell commands as one map; per command, its exit status and output.

        Each command runs with ``bash -c`` (:func:`pypoolparty.shell`) in
        ``cwd``. A failing command is a result, not an exception: the others
        go on, and the list holds a :class:`pypoolparty.ShellResult` per
        command, in order (``returncode``, ``stdout``, ``stderr``,
        ``timed_out``).

        Parameters
        ----------
        commands : iterable of str
            Bash command lines.
        timeout : float, optional
            Seconds each command may run before its process group is killed.
        cwd : str or path-like, optional
            Where the commands run; default: this process's working directory
            (which the compute nodes must see).
        check : bool
            Raise the first failure instead (``subprocess.CalledProcessError``
            or ``subprocess.TimeoutExpired``, with its task index), as
            :meth:`map` does for a task that raises.
        chunksize : int, optional
            As in :meth:`map`.

        Raises
        ------
        TypeError, ValueError
            Before anything is submitted, for a command that is not a string
            or a ``timeout`` that is not a number > 0.
        """
        from .shell_commands import run_commands

        return run_commands(self, commands, timeout, cwd, check, chunksize)

    def executor(self, *, batch_window: float | None = None):
        """A :class:`concurrent.futures.Executor` whose calls run as this pool's jobs.

        See :class:`pypoolparty.executor.Executor`.
        """
        from .executor import Executor

        return Executor(self, batch_window=batch_window)

    # -- the pool's life ---------------------------------------------------

    def close(self) -> None:
        """Accept no more work; maps already started go on (see :meth:`join`)."""
        if self._state == RUNNING:
            self._state = CLOSED

    def terminate(self) -> None:
        """Cancel the jobs of every map of this pool still running, and wait
        until they are cancelled. Their work_dirs are kept: calling the same
        map again continues it. Maps waiting in another thread raise
        :class:`pypoolparty.Cancelled`."""
        self._state = TERMINATED
        self._background.terminate()

    def join(self) -> None:
        """Wait for every map of this pool to end; call :meth:`close` or
        :meth:`terminate` first."""
        if self._state == RUNNING:
            raise ValueError("Pool is still running; call close() or terminate() first")
        self._background.join()

    def __del__(self, _warn=warnings.warn) -> None:
        # As multiprocessing.Pool: a pool dropped while running is a leak the
        # user should see (the finalizer of ``__init__`` still cancels its maps).
        # ``_warn`` is bound now: at interpreter exit, module globals may be gone.
        if getattr(self, "_state", None) == RUNNING and self._warn_if_unclosed:
            _warn(f"unclosed running pypoolparty pool {self!r}", ResourceWarning, source=self)

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        # As multiprocessing.Pool: leaving the block terminates, so nothing
        # this pool submitted stays in the queue.
        self.terminate()

    # -- helpers -----------------------------------------------------------

    def _check_running(self) -> None:
        if self._state != RUNNING:
            raise ValueError("Pool not running")

    def _checked(self, func, iterable, chunksize, star: bool) -> tuple[Callable, list, int | None]:
        """Check the call and read the input, before anything is submitted."""
        self._check_running()
        if not callable(func):
            raise TypeError(f"func must be callable, not {type(func).__name__}")
        chunksize = checks.optional_whole_number("chunksize", chunksize, 1)
        tasks = list(iterable)
        if star:
            _check_star_tasks(tasks)
        return func, tasks, chunksize

    def _run(self, func: Callable, tasks: list, chunksize: int | None, star: bool, **hooks) -> Any:
        if not tasks:
            return []
        return session.run_map(
            self.settings,
            self._make_scheduler(),
            func,
            tasks,
            chunksize,
            star,
            stop=self._background.stop,
            **hooks,
        )

    def _start(self, func, tasks, chunksize, star, callback, error_callback) -> AsyncResult:
        result = AsyncResult(callback, error_callback)
        self._background.start(
            lambda: _deliver(result, lambda: self._run(func, tasks, chunksize, star))
        )
        return result

    def _imap(
        self, func, iterable, chunksize, read_ahead, batch_window, ordered: bool
    ) -> IMapIterator:
        self._check_running()
        if not callable(func):
            raise TypeError(f"func must be callable, not {type(func).__name__}")
        chunksize = checks.optional_whole_number("chunksize", chunksize, 1)
        read_ahead = checks.whole_number("read_ahead", read_ahead, 1)
        if batch_window is None:
            batch_window = self.settings.polling_interval
        batch_window = checks.non_negative_number("batch_window", batch_window)

        def run_window(tasks: list, on_chunk_done) -> None:
            self._run(func, tasks, chunksize, star=False, on_chunk_done=on_chunk_done)

        return IMapIterator(
            run_window,
            iterable,
            ordered,
            read_ahead,
            self._background,
            chunksize=chunksize,
            batch_window=batch_window,
        )

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}()"


def _deliver(result: AsyncResult, compute: Callable[[], Any]) -> None:
    try:
        value = compute()
    except BaseException as error:
        result._set(error=error)
    else:
        result._set(value)


def _check_star_tasks(tasks: list) -> None:
    for itask, task in enumerate(tasks):
        if not isinstance(task, Iterable):
            raise TypeError(
                f"starmap needs each task to be an iterable of arguments; "
                f"task {itask} is a {type(task).__name__}"
            )


def _valid_job_name_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str) or not JOB_NAME_PREFIX_PATTERN.match(prefix):
        raise BadInput(
            "job_name_prefix must start with a letter and hold at most 32 letters, "
            f"digits, '_', '.' or '-', not {prefix!r}"
        )
    return prefix


def _valid_container(value: object, work_dir: str | os.PathLike | None) -> Container | None:
    """The ``container`` option, checked before anything is submitted: also
    that the runtime can mount the work_dir and the working directory."""
    container = container_module.for_pool(value)
    if container is not None:
        base = os.path.abspath(os.fspath(work_dir) if work_dir is not None else ".pypoolparty")
        container_module.command(container, ["true"], [base], os.getcwd())
    return container


def _valid_python_path(python_path: str | None, in_image: bool = False) -> str:
    if python_path is None:
        if not sys.executable:
            raise BadInput(
                "cannot tell which Python runs this process; pass python_path, the "
                "interpreter the compute nodes should use"
            )
        return sys.executable
    python_path = os.fspath(python_path)
    if not os.path.isabs(python_path):
        raise BadInput(
            f"python_path must be an absolute path (the compute nodes' PATH may differ), "
            f"not {python_path!r}"
        )
    if in_image:
        # The image's interpreter: it need not exist on this machine.
        return python_path
    if not os.path.isfile(python_path) or not os.access(python_path, os.X_OK):
        raise InterpreterMismatch(
            f"python_path {python_path!r} does not exist or is not executable on this host. "
            "Pass the interpreter the compute nodes should use: on a cluster the same path "
            f"holds it here and on the nodes, with Python {sys.version_info[0]}."
            f"{sys.version_info[1]} and the cloudpickle of this process (the map checks both "
            "before it submits anything)"
        )
    return python_path
