"""Files a task writes: ``pypoolparty.output_dir()``, a directory of the running task's own.

A task writes its output files into the directory :func:`output_dir`
returns; they come back with the task's outcome, per task, finished apart
from failed::

    def simulate(seed):
        path = os.path.join(pypoolparty.output_dir(), "trajectory.h5")
        write_trajectory(path, seed)
        return summary

In the map's session directory (0700; the files keep the mode the task gives
them):

- ``outputs/running/<itask>/``: while the task runs (on a shared file system;
  without one, the same path in the job's scratch directory);
- ``outputs/done/<itask>/``: a task that returned;
- ``outputs/failed/<itask>/``: a task that raised, its last failed run.

The worker moves a task's directory from ``running`` to ``done`` or
``failed`` as soon as the task ends, before it records the task (its own
copy of these names); without a shared file system ``outputs/`` comes back
with the job's outcome (:mod:`pypoolparty.job_files`). When a map that
succeeded removes its session directory, the outputs are kept: moved to
``<work_dir>/outputs/<session directory's name>/`` (:func:`keep`), and a
line on standard error says where.

Outside a map (calling the function directly, in a test, in
``multiprocessing``), :func:`output_dir` returns a new temporary directory,
so the same function runs anywhere.

The functions of this module are pickled by value (``cloudpickle``):
a task that calls ``output_dir`` imported as ``from pypoolparty import
output_dir`` runs on nodes without pypoolparty (one that calls
``pypoolparty.output_dir()`` needs the package there, as the module
``pypoolparty`` itself travels by reference). :func:`output_dir` therefore
uses nothing but the standard library and this module's constants.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import cloudpickle

DIRECTORY = "outputs"
"""In the session directory, and in a job's scratch directory."""
RUNNING = "running"
DONE = "done"
FAILED = "failed"
RUNNING_TASK_MODULE = "_pypoolparty_running_task"
"""The worker's running-task module (owned by :mod:`pypoolparty.checkpoint`)."""


def output_dir() -> str:
    """The directory for the output files of the task that runs in this process.

    Returns
    -------
    str
        ``outputs/running/<itask>/`` of the map's session directory (or of
        the job's scratch directory without a shared file system), made
        0700 on the first call; it moves to ``outputs/done/<itask>/`` or
        ``outputs/failed/<itask>/`` when the task ends. Outside a map, a new
        temporary directory.

    Raises
    ------
    OSError
        The directory cannot be made (a full disk, say).
    """
    running = sys.modules.get(RUNNING_TASK_MODULE)
    session_dir = getattr(running, "session_dir", None)
    itask = getattr(running, "itask", None)
    if session_dir is None or itask is None:
        return tempfile.mkdtemp(prefix="pypoolparty-output-")
    path = os.path.join(session_dir, DIRECTORY, RUNNING, str(itask))
    # Tells the worker to move the directory when the task ends (the
    # running-task contract of pypoolparty/checkpoint.py; not imported, as
    # this module travels by value).
    running.made_output_dir = True
    for directory in (os.path.dirname(os.path.dirname(path)), os.path.dirname(path), path):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    return path


def kept_path(session_dir: str) -> str:
    """Where the outputs of ``session_dir``'s tasks are kept once the directory is removed."""
    session_dir = os.path.abspath(session_dir)
    return os.path.join(os.path.dirname(session_dir), DIRECTORY, os.path.basename(session_dir))


def keep(session_dir: str) -> str | None:
    """Move the finished and failed tasks' outputs out of ``session_dir``, which is to go.

    Returns
    -------
    str or None
        Where they are now (:func:`kept_path`); ``None`` if there were none.
    """
    found = [
        name
        for name in (DONE, FAILED)
        if os.path.isdir(os.path.join(session_dir, DIRECTORY, name))
        and os.listdir(os.path.join(session_dir, DIRECTORY, name))
    ]
    if not found:
        return None
    destination = kept_path(session_dir)
    for path in (os.path.dirname(destination), destination):
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    for name in found:
        target = os.path.join(destination, name)
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(os.path.join(session_dir, DIRECTORY, name), target)
    return destination


# A task's reference to output_dir travels by value: the nodes need no pypoolparty.
cloudpickle.register_pickle_by_value(sys.modules[__name__])
