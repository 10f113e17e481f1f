"""Before a map's first job: its session directory, prepared or found again.

A map is recognised by its fingerprint: the pickled function, the pickled
tasks, the chunking, and map versus starmap. Its session directory is
``<work_dir>/map-<fingerprint>`` (see
:func:`pypoolparty.work_dir.session_dir_name`), or ``map-<fingerprint>-2``,
``-3``, ... when that one is taken. Which one a map gets:

- a directory of this map that did not finish -- interrupted, stopped by an
  error, or with tasks that raised -- is continued: the session reuses its
  finished chunks and adopts its jobs;
- a directory of this map that finished (its last call returned every
  result) serves its results only with ``reuse_results=True``, which asks
  for a cache (the newest such directory, if there are several); otherwise
  it stays as it is, for inspection, and the map runs afresh in a directory
  of its own;
- a directory of an unfinished map that another scheduler started is not
  continued: :class:`pypoolparty.WorkDirError` says so before anything is
  submitted, as this scheduler can neither see nor cancel that one's jobs.

A new directory holds everything the job reads: the function, the tasks,
the worker script, ``worker_config.json``, and the launcher with the
exported variables and the setup lines (``launcher.sh``, ``environment.sh``,
``setup.sh``, whose formats :mod:`pypoolparty.launcher` owns). This module
is the one writer of those files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing.process
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Callable

from . import (
    chunking,
    environment,
    event_log,
    input_files,
    interpreter,
    launcher,
    serialization,
    work_dir,
)
from .errors import BadInput, WorkDirError
from .scheduler import Scheduler
from .settings import MapSettings

logger = logging.getLogger("pypoolparty")

WORKER_SCRIPT_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")


@dataclasses.dataclass(frozen=True)
class PreparedSession:
    """A map's session directory, ready for the session to run in."""

    session_dir: work_dir.SessionDir
    bounds: list[tuple[int, int]]
    """``(start, stop)`` of each chunk's tasks."""

    resuming: bool
    """The directory was there already: the map continues an earlier call."""

    finished: bool = False
    """The earlier call finished; its results are reused (``reuse_results``)."""

    finished_runs: tuple[str, ...] = ()
    """Directories of finished runs of this map that a new run leaves alone."""

    parallelism: int = chunking.FALLBACK_PARALLELISM
    """Jobs the map may run at once: the slots it may use
    (``num_simultaneously_running_tasks``, else the scheduler's capacity)
    divided by ``tasks_per_job`` (at least 1), else
    :data:`pypoolparty.chunking.FALLBACK_PARALLELISM`."""

    claiming: bool = False
    """Its jobs claim work from each other (a shared file system): the map
    needs no more jobs in the queue than :attr:`parallelism`."""


@contextlib.contextmanager
def session_dir(
    settings: MapSettings,
    scheduler: Scheduler,
    func: Callable,
    tasks: list,
    chunksize: int | None,
    star: bool,
) -> Iterator[PreparedSession]:
    """Prepare (or find again) this map's session directory, and hold it.

    While the ``with`` block runs, the same map started again in this
    process gets a directory of its own (``map-<fingerprint>-2``). Which
    directory a map continues, or whose results it reuses, is described in
    this module's docstring.

    Parameters
    ----------
    settings : MapSettings
        The pool's checked options.
    scheduler : Scheduler
        The adapter the map runs on: its commands are checked first, and it
        is asked for its capacity when ``chunksize`` is ``None``.
    func : callable
        The function to map.
    tasks : list
        The tasks, not empty.
    chunksize : int or None
        Tasks per chunk; ``None``: chunks that shrink towards the end (see
        :mod:`pypoolparty.chunking`).
    star : bool
        ``starmap`` (``func(*task)``) rather than ``map``.

    Yields
    ------
    PreparedSession

    Raises
    ------
    pypoolparty.Unpicklable
        ``func`` or a task cannot be pickled.
    pypoolparty.BadInput
        A command of the scheduler is not found; nothing was submitted.
    pypoolparty.InterpreterMismatch
        ``python_path`` cannot run this process's pickles: another Python or
        cloudpickle version, or none (see :func:`pypoolparty.interpreter.check`).
    pypoolparty.WorkDirError
        The work_dir cannot be created, trusted or written, or it holds this
        map unfinished from another scheduler.
    """
    _refuse_while_a_worker_imports_main()
    code_files = serialization.CodeFiles()
    with input_files.collecting(scheduler.shares_file_system) as inputs:
        function_bytes = serialization.pickle_function(func, code_files)
    _check_commands(scheduler)
    if settings.container is None and scheduler.shares_file_system:
        # In a container, python_path names the image's interpreter, which
        # this host cannot run; without a shared file system, the execute
        # nodes' own: the worker's own check decides in the job.
        interpreter.check(settings.python_path)
    _check_tasks_per_job(settings.tasks_per_job, scheduler)
    slots = settings.num_simultaneously_running_tasks or _capacity(scheduler)
    # Each job runs tasks_per_job tasks at once: fewer jobs fill the slots,
    # and the chunks are cut for all their processes.
    parallelism = slots and max(1, slots // settings.tasks_per_job)
    if chunksize is not None:
        bounds = chunking.chunk_bounds(len(tasks), chunksize)
    elif scheduler.shares_file_system:
        processes = parallelism and parallelism * settings.tasks_per_job
        bounds = chunking.guided_bounds(len(tasks), processes)
    else:
        bounds = chunking.chunk_bounds(
            len(tasks), chunking.default_chunksize(len(tasks), parallelism)
        )
    base = work_dir.prepare_base(settings.work_dir)
    claim = _prepare_session_dir(
        settings, base, tasks, bounds, function_bytes, star, func, scheduler, code_files, inputs
    )
    session_dir = work_dir.SessionDir(claim.path)
    try:
        yield PreparedSession(
            session_dir,
            bounds,
            claim.resuming,
            claim.finished,
            () if claim.resuming else claim.finished_runs,
            parallelism=parallelism or chunking.FALLBACK_PARALLELISM,
            claiming=scheduler.shares_file_system,
        )
    finally:
        _ACTIVE_SESSIONS.release(session_dir.path)


@dataclasses.dataclass(frozen=True)
class _Claim:
    path: str
    resuming: bool
    """It exists: the map continues there."""
    finished: bool
    """Its map finished: its results are reused."""
    finished_runs: tuple[str, ...]
    """The map's directories whose map finished."""


class _ActiveSessions:
    """Session directories that a map of this process is running now.

    The same map started again while it still runs (two ``apply_async`` of
    the same call, say) gets a directory of its own, ``map-<fingerprint>-2``,
    instead of failing on the first one's lock; started again after it
    ended, it finds and continues the first one's directory.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[str] = set()

    def claim(self, base_path: str, reuse_results: bool) -> _Claim:
        """Claim the directory of the map whose first choice is ``base_path``."""
        with self._lock:
            finished, unfinished, free = _candidates(base_path, self._paths)
            if reuse_results and finished:
                # The newest run: what the map gave when it last ran.
                claim = _Claim(finished[-1], True, True, tuple(finished))
            elif unfinished:
                claim = _Claim(unfinished[0], True, False, tuple(finished))
            else:
                claim = _Claim(free, False, False, tuple(finished))
            self._paths.add(claim.path)
            return claim

    def release(self, path: str) -> None:
        with self._lock:
            self._paths.discard(path)


def _candidates(base_path: str, active: set[str]) -> tuple[list[str], list[str], str]:
    """The map's existing directories not in ``active``, finished and not, and the first free one.

    The numbered directories ``base_path-2``, ``-3``, ... are looked at up
    to the first that does not exist.
    """
    finished: list[str] = []
    unfinished: list[str] = []
    number = 1
    while True:
        path = base_path if number == 1 else f"{base_path}-{number}"
        number += 1
        if path in active:
            continue
        session_dir = work_dir.SessionDir(path)
        if not session_dir.exists():
            return finished, unfinished, path
        if event_log.map_finished(session_dir.log_path):
            finished.append(path)
        else:
            unfinished.append(path)


_ACTIVE_SESSIONS = _ActiveSessions()


def _check_commands(scheduler: Scheduler) -> None:
    for option, command in scheduler.required_commands().items():
        if shutil.which(command) is None:
            raise BadInput(
                f"the {scheduler.name} command {command!r} ({option}) is not found or not "
                f"executable. Run the map on a host where {scheduler.name}'s commands are "
                f"installed, or pass {option}= with their path. Nothing was submitted."
            )


def _check_tasks_per_job(tasks_per_job: int, scheduler: Scheduler) -> None:
    """Refuse several processes per job where they cannot share out the work.

    They claim chunks in the session directory, which a job without a
    shared file system does not see (:mod:`pypoolparty.worker`).

    Raises
    ------
    pypoolparty.BadInput
        ``tasks_per_job`` > 1 on a scheduler without a shared file system.
    """
    if tasks_per_job > 1 and not scheduler.shares_file_system:
        raise BadInput(
            f"tasks_per_job={tasks_per_job} needs a file system shared by the jobs and "
            f"this host: a job's processes claim their chunks there, and this "
            f"{scheduler.name} pool transfers the files instead (no shared file system). "
            "Use tasks_per_job=1 with more jobs, or a pool on a shared file system. "
            "Nothing was submitted."
        )


def _capacity(scheduler: Scheduler) -> int | None:
    try:
        return scheduler.capacity()
    except Exception as error:  # only a hint for the chunk size
        logger.info("could not ask %s for its capacity: %s", scheduler.name, error)
        return None


def _refuse_while_a_worker_imports_main() -> None:
    """No map from a script the worker imports as ``__mp_main__`` (its top level).

    The worker sets the flag :mod:`multiprocessing`'s spawn sets while it
    imports a child's main module, for the same reason: a script whose map
    is not under ``if __name__ == "__main__":`` would otherwise submit its
    map again from every job.
    """
    if getattr(multiprocessing.process.current_process(), "_inheriting", False):
        raise RuntimeError(
            "a pypoolparty map was started while a pypoolparty worker imported the "
            "submitting script as __mp_main__: the map would run again from every job. "
            'Put the code that starts maps under if __name__ == "__main__":, as '
            "multiprocessing requires for its spawn start method."
        )


def _prepare_session_dir(
    settings, base, tasks, bounds, function_bytes, star, func, scheduler, code_files, inputs
):
    incomplete_tasks_path = os.path.join(base, f".tasks-{uuid.uuid4().hex}.incomplete")
    session_dir = None
    try:
        identity = "|".join(
            ["starmap" if star else "map", settings.python_path, repr(settings.environment)]
            # Another image may give other results: not the same map. Absent
            # without a container, so that earlier fingerprints still hold.
            + ([settings.container.identity()] if settings.container is not None else [])
            # What the job runs before the worker; no setup keeps the fingerprints of before.
            + ([repr(settings.setup)] if settings.setup else [])
            # Jobs that get their files by transfer are given no submit-side paths.
            + ([] if scheduler.shares_file_system else ["no shared file system"])
        )
        with input_files.collecting(scheduler.shares_file_system) as task_inputs:
            fingerprint = serialization.write_tasks(
                incomplete_tasks_path, tasks, bounds, function_bytes, identity, code_files
            )
        task_inputs.files.update(inputs.files)
        task_inputs.check(bounds)
        name = work_dir.session_dir_name(fingerprint)
        claim = _ACTIVE_SESSIONS.claim(os.path.join(base, name), settings.reuse_results)
        session_dir = work_dir.SessionDir(claim.path)
        if claim.resuming:
            if not claim.finished:
                _check_same_scheduler(session_dir, scheduler)
                _set_tasks_per_job(session_dir, settings.tasks_per_job)
            return claim
        session_dir.create()
        os.replace(incomplete_tasks_path, session_dir.tasks_path)
        task_inputs.write_manifest(session_dir)
        _write_session_files(
            settings,
            session_dir,
            function_bytes,
            star,
            code_files,
            scheduler.shares_file_system,
            num_chunks=len(bounds),
        )
        work_dir.SessionMetadata.of_new_map(
            fingerprint=fingerprint,
            scheduler=scheduler.name,
            function=getattr(func, "__qualname__", repr(func)),
            star=star,
            num_tasks=len(tasks),
            chunksize=bounds[0][1] - bounds[0][0],
            num_chunks=len(bounds),
            python_path=settings.python_path,
            chunk_starts=_chunk_starts(bounds),
        ).write(session_dir)
        return claim
    except BaseException as error:
        if session_dir is not None:
            _ACTIVE_SESSIONS.release(session_dir.path)
        if isinstance(error, OSError) and not isinstance(error, WorkDirError):
            raise WorkDirError.from_os_error(base, error) from error
        raise
    finally:
        if os.path.exists(incomplete_tasks_path):
            os.remove(incomplete_tasks_path)


def _chunk_starts(bounds: list[tuple[int, int]]) -> tuple[int, ...]:
    """The chunks' first tasks where they differ in size; () where all but the last are equal."""
    sizes = {stop - start for start, stop in bounds[:-1]}
    if len(sizes) <= 1 and (not sizes or bounds[-1][1] - bounds[-1][0] <= sizes.pop()):
        return ()
    return tuple(start for start, _ in bounds)


def set_claiming_chunks(session_dir: work_dir.SessionDir, num_chunks: int) -> None:
    """Let jobs that start from now on claim chunks up to ``num_chunks`` (the
    pieces of a chunk stopped at its time limit: :mod:`pypoolparty.splitting`).

    A map whose jobs do not claim (no shared file system) is left so.
    """
    config = work_dir.read_json(session_dir.worker_config_path)
    if config.get("claiming_chunks") and config["claiming_chunks"] != num_chunks:
        config["claiming_chunks"] = num_chunks
        work_dir.write_json(session_dir.worker_config_path, config)


def _set_tasks_per_job(session_dir: work_dir.SessionDir, tasks_per_job: int) -> None:
    """A continued map's jobs run as many tasks at once as this call asks for
    (how the work is shared out, not what it is: the results do not change)."""
    config = work_dir.read_json(session_dir.worker_config_path)
    if config.get("tasks_per_job", 1) != tasks_per_job:
        config["tasks_per_job"] = tasks_per_job
        work_dir.write_json(session_dir.worker_config_path, config)


def _check_same_scheduler(session_dir: work_dir.SessionDir, scheduler: Scheduler) -> None:
    """Refuse to continue a map that another scheduler started.

    Its jobs may still be queued or running there, and this scheduler can
    neither see nor cancel them: continuing would run its chunks twice.
    """
    started_on = work_dir.SessionMetadata.read(session_dir).scheduler
    if started_on in (scheduler.name, "?"):
        return
    raise WorkDirError(
        f"the session directory {session_dir.path!r} holds this map unfinished, started on "
        f"{started_on}; this pool runs on {scheduler.name}, which can neither see nor cancel "
        f"{started_on}'s jobs, so it does not continue the map. Continue it with a "
        f"{started_on} pool, or start it afresh on {scheduler.name} with another work_dir "
        f"(or remove that directory first: pypoolparty clean --unfinished "
        f"{os.path.dirname(session_dir.path)}). Nothing was submitted."
    )


def _write_session_files(
    settings: MapSettings,
    session_dir: work_dir.SessionDir,
    function_bytes: bytes,
    star: bool,
    code_files: serialization.CodeFiles,
    shared_file_system: bool = True,
    num_chunks: int = 0,
) -> None:
    """What the job reads besides the tasks (see :mod:`pypoolparty.launcher`,
    :mod:`pypoolparty.worker`).

    Without a shared file system the job gets no path of the submit host:
    neither its ``sys.path`` nor its working directory nor the submitting
    script (the job's interpreter brings its own packages; see
    :mod:`pypoolparty.job_files`).
    """
    work_dir.write_private(session_dir.function_path, function_bytes)
    with open(WORKER_SCRIPT_SOURCE, "rb") as file:
        work_dir.write_private(session_dir.worker_script_path, file.read())
    main = _main_module()
    if not shared_file_system:
        main["path"] = None
    work_dir.write_json(
        session_dir.worker_config_path,
        {
            "star": star,
            "interpreter": interpreter.submitter_versions(),
            "sys_path": interpreter.submitter_sys_path() if shared_file_system else [],
            "working_directory": os.getcwd() if shared_file_system else None,
            "max_result_size": settings.max_result_size,
            "code_files": code_files.files,
            "main": main,
            # Jobs claim work only where they see the session directory.
            "claiming_chunks": num_chunks if shared_file_system else 0,
            "tasks_per_job": settings.tasks_per_job,
        },
    )
    left_out = launcher.write_files(
        session_dir, environment.export(settings.environment), settings.setup
    )
    if left_out:
        logger.warning(
            "environment variables no shell can set are not exported to the jobs: %s",
            ", ".join(left_out),
        )


def _main_module() -> dict:
    """The submitting script, as :mod:`multiprocessing`'s spawn finds it for its children.

    ``path`` is the script's file, ``name`` the module's name when it was
    started as ``python -m NAME``; both None in an interactive session, a
    notebook or ``python -c``, which have no file to import. ``argv`` is
    ``sys.argv``, which the worker sets as spawn does (the file is private).
    """
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    path = getattr(main, "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py") or not os.path.isfile(path):
        path = None
    return {
        "path": os.path.abspath(path) if path else None,
        "name": name if name and name != "__main__" else None,
        # As spawn gives its children the parent's sys.argv: a script may read
        # it at its top level.
        "argv": list(sys.argv),
    }
