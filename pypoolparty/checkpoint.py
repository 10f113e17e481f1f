"""Checkpoints: a long task saves its state, and gets it back when it runs again.

A job can be killed for reasons that are nobody's bug: a time limit,
preemption, an eviction, a node drained. Its finished tasks are kept (see
:mod:`pypoolparty.task_records`); the task it was running starts again in a
later job. A task that calls :func:`save` now and then resumes from the
state it saved last, and repeats only the work since::

    import pypoolparty

    def integrate(n):
        step, total = pypoolparty.checkpoint.load(default=(0, 0.0))
        while step < n:
            total += expensive(step)
            step += 1
            pypoolparty.checkpoint.save((step, total))
        return total

Each task's checkpoint is one file, ``checkpoints/<itask>.pickle`` in the
map's session directory (0600, in a 0700 directory), written whole under
another name and then renamed, so a kill while saving leaves the previous
checkpoint. The worker removes it once the task's outcome is recorded.

Outside a map -- calling the function directly, in a test, in
``multiprocessing`` -- :func:`save` does nothing and :func:`load` returns its
default, so the same function runs anywhere.

How the module knows which task runs: the worker (which never imports
pypoolparty) sets, around each task, the attributes ``session_dir`` and
``itask`` of a module it registers in :data:`sys.modules` as
:data:`RUNNING_TASK_MODULE`. This module owns that contract and the
checkpoint files; the worker repeats the file name to remove them. The
module also has the flags ``saved_checkpoint`` (set by :func:`save`) and
``made_output_dir`` (set by :func:`pypoolparty.output_dir`): the worker
removes a checkpoint or moves an output directory right after a task only
where its flag says there is one, so a map of a million tiny tasks pays no
file system call per task for them (a child process the task forks sets the
flag in its own copy; the worker finds what such a child left when the chunk
ends).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import cloudpickle

from . import work_dir

DIRECTORY = "checkpoints"
"""In the session directory."""
RUNNING_TASK_MODULE = "_pypoolparty_running_task"
"""The name under which the worker registers which task runs."""


def path_of(session_dir: str, itask: int) -> str:
    """The checkpoint file of task ``itask``."""
    return os.path.join(session_dir, DIRECTORY, f"{itask}.pickle")


def current_path() -> str | None:
    """The checkpoint file of the task running in this process; None outside a map."""
    running = sys.modules.get(RUNNING_TASK_MODULE)
    session_dir = getattr(running, "session_dir", None)
    itask = getattr(running, "itask", None)
    if session_dir is None or itask is None:
        return None
    return path_of(session_dir, itask)


def flag_running_task(flag: str) -> None:
    """Set ``flag`` of the running-task module, if a worker registered one (see the module)."""
    running = sys.modules.get(RUNNING_TASK_MODULE)
    if running is not None:
        setattr(running, flag, True)


def save(state: Any) -> None:
    """Save ``state`` as the running task's checkpoint, replacing the one before.

    Parameters
    ----------
    state : object
        Anything cloudpickle can pickle. It is pickled at once, so changing
        it afterwards does not change the checkpoint.

    Raises
    ------
    pickle.PicklingError, TypeError
        If ``state`` cannot be pickled (the previous checkpoint stays).
    OSError
        If the session directory cannot be written (a full disk, say).

    Notes
    -----
    Outside a map (no task of a pypoolparty worker runs in this process) it
    does nothing. Each call writes and renames one file: save as often as
    losing the work since the last save would hurt, not at every tiny step.
    """
    path = current_path()
    if path is None:
        return
    data = cloudpickle.dumps(state)
    flag_running_task("saved_checkpoint")
    work_dir.make_private_dir(os.path.dirname(path))
    work_dir.write_private(path, data)


def load(default: Any = None) -> Any:
    """The running task's last saved state, or ``default`` if it saved none.

    Parameters
    ----------
    default : object, optional
        Returned when the task runs for the first time, and outside a map.

    Returns
    -------
    object
        What the last :func:`save` of this task, in this or an earlier job of
        the map, was given; else ``default``.

    Raises
    ------
    Exception
        Whatever unpickling the saved state raises (a class that is not
        importable here, say).
    """
    path = current_path()
    if path is None:
        return default
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return default
    return cloudpickle.loads(data)


def saved_versions(session_dir: str) -> dict[int, tuple[int, int]]:
    """Which checkpoint of each task is there now: itask -> (inode, mtime in ns).

    One listing of the session's ``checkpoints/``. A save replaces the file by
    a rename, so a task that saved since an earlier call shows another
    version (a new inode); the session compares the two to tell whether a
    killed job got anywhere with a long task. Reads no checkpoint.

    Parameters
    ----------
    session_dir : str
        The map's session directory.

    Returns
    -------
    dict of int to tuple of int
        Empty if no task saved a checkpoint.
    """
    directory = os.path.join(session_dir, DIRECTORY)
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return {}
    versions = {}
    for entry in entries:
        stem, dot, extension = entry.name.partition(".")
        if not (dot and extension == "pickle" and stem.isdigit()):
            continue  # a save still being written, under its temporary name
        try:
            info = entry.stat()
        except FileNotFoundError:
            continue  # removed since the listing: its task finished
        versions[int(stem)] = (info.st_ino, info.st_mtime_ns)
    return versions
