"""Before a map's first job: its session directory, prepared or found again.

A map is recognised by its fingerprint: the pickled function, the pickled
tasks, the chunking, and map versus starmap. Its session directory is
``<work_dir>/map-<fingerprint>`` (see
:func:`pypoolparty.work_dir.session_dir_name`). If that directory exists, the
map was started before and did not finish (or was kept), and the session continues
it; any other map gets a directory of its own, holding everything the worker
reads: the function, the tasks, the worker script, ``worker_config.json``
and ``environment.json``. This module is the one writer of those files.
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

from . import chunking, environment, serialization, work_dir
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
    process gets a directory of its own (``map-<fingerprint>-2``).

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
        Tasks per chunk; ``None``: see :func:`pypoolparty.chunking.default_chunksize`.
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
    pypoolparty.WorkDirError
        The work_dir cannot be created, trusted or written.
    """
    _refuse_while_a_worker_imports_main()
    code_files = serialization.CodeFiles()
    function_bytes = serialization.pickle_function(func, code_files)
    _check_commands(scheduler)
    if chunksize is None:
        parallelism = settings.num_simultaneously_running_tasks or _capacity(scheduler)
        chunksize = chunking.default_chunksize(len(tasks), parallelism)
    bounds = chunking.chunk_bounds(len(tasks), chunksize)
    base = work_dir.prepare_base(settings.work_dir)
    session_dir, resuming = _prepare_session_dir(
        settings, base, tasks, bounds, function_bytes, star, func, scheduler, code_files
    )
    try:
        yield PreparedSession(session_dir, bounds, resuming)
    finally:
        _ACTIVE_SESSIONS.release(session_dir.path)


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

    def claim_first_free(self, base_path: str) -> str:
        with self._lock:
            path, number = base_path, 1
            while path in self._paths:
                number += 1
                path = f"{base_path}-{number}"
            self._paths.add(path)
            return path

    def release(self, path: str) -> None:
        with self._lock:
            self._paths.discard(path)


_ACTIVE_SESSIONS = _ActiveSessions()


def _check_commands(scheduler: Scheduler) -> None:
    for option, command in scheduler.required_commands().items():
        if shutil.which(command) is None:
            raise BadInput(
                f"the {scheduler.name} command {command!r} ({option}) is not found or not "
                f"executable. Run the map on a host where {scheduler.name}'s commands are "
                f"installed, or pass {option}= with their path. Nothing was submitted."
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
    settings, base, tasks, bounds, function_bytes, star, func, scheduler, code_files
):
    incomplete_tasks_path = os.path.join(base, f".tasks-{uuid.uuid4().hex}.incomplete")
    session_dir = None
    try:
        identity = "|".join(
            ["starmap" if star else "map", settings.python_path, repr(settings.environment)]
        )
        fingerprint = serialization.write_tasks(
            incomplete_tasks_path, tasks, bounds, function_bytes, identity, code_files
        )
        name = work_dir.session_dir_name(fingerprint)
        path = _ACTIVE_SESSIONS.claim_first_free(os.path.join(base, name))
        session_dir = work_dir.SessionDir(path)
        if session_dir.exists():
            return session_dir, True
        session_dir.create()
        os.replace(incomplete_tasks_path, session_dir.tasks_path)
        _write_session_files(settings, session_dir, function_bytes, star, code_files)
        work_dir.SessionMetadata.of_new_map(
            fingerprint=fingerprint,
            scheduler=scheduler.name,
            function=getattr(func, "__qualname__", repr(func)),
            star=star,
            num_tasks=len(tasks),
            chunksize=bounds[0][1] - bounds[0][0],
            num_chunks=len(bounds),
            python_path=settings.python_path,
        ).write(session_dir)
        return session_dir, False
    except BaseException as error:
        if session_dir is not None:
            _ACTIVE_SESSIONS.release(session_dir.path)
        if isinstance(error, OSError):
            raise WorkDirError.from_os_error(base, error) from error
        raise
    finally:
        if os.path.exists(incomplete_tasks_path):
            os.remove(incomplete_tasks_path)


def _write_session_files(
    settings: MapSettings,
    session_dir: work_dir.SessionDir,
    function_bytes: bytes,
    star: bool,
    code_files: serialization.CodeFiles,
) -> None:
    """What the worker reads besides the tasks (see :mod:`pypoolparty.worker`)."""
    work_dir.write_private(session_dir.function_path, function_bytes)
    with open(WORKER_SCRIPT_SOURCE, "rb") as file:
        work_dir.write_private(session_dir.worker_script_path, file.read())
    work_dir.write_json(
        session_dir.worker_config_path,
        {
            "star": star,
            "sys_path": [entry or os.getcwd() for entry in sys.path],
            "working_directory": os.getcwd(),
            "max_result_size": settings.max_result_size,
            "code_files": code_files.files,
            "main": _main_module(),
        },
    )
    work_dir.write_json(
        session_dir.environment_path,
        {
            "variables": environment.export(settings.environment),
            "never_overwrite": list(environment.HOST_AND_JOB_PATTERNS),
        },
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
