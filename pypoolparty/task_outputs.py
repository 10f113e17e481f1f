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
with the job's outcome (:mod:`pypoolparty.job_files`). A task that failed
in one call of the map and returned in a later one has both, until the map
succeeds. When a map that succeeded removes its session directory, the
finished tasks' outputs are kept: moved to
``<work_dir>/outputs/map-<fingerprint>/done/`` (``map-<fingerprint>-2``,
``-3``, ... for later runs of the same map: one directory per finished run),
and a line on standard error names it (:func:`keep`). The failed runs'
outputs go with the session directory.

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
import re
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
        ``outputs/failed/<itask>/`` when the task ends; once the map
        succeeds, the finished tasks' directories are kept in
        ``<work_dir>/outputs/map-<fingerprint>[-<n>]/done/``, one directory
        per finished run (:func:`keep`). Outside a map, a new temporary
        directory.

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


_NUMBERED_SESSION = re.compile(r"^(map-[^-]+)-[0-9]+$")
"""``map-<fingerprint>-<n>``: a fingerprint is hex without a dash, and may
be all digits, so only a second dash starts a number."""


def kept_path(session_dir: str, run: int = 1) -> str:
    """Where the outputs of ``session_dir``'s tasks are kept once the directory is removed.

    Parameters
    ----------
    session_dir : str
        The map's session directory (``map-<fingerprint>`` or
        ``map-<fingerprint>-<n>``).
    run : int
        Which finished run of the map: 1 for
        ``<work_dir>/outputs/map-<fingerprint>``, ``n`` > 1 for
        ``<work_dir>/outputs/map-<fingerprint>-<n>``.
    """
    session_dir = os.path.abspath(session_dir)
    # A session directory numbered because another of the map ran at the
    # same time is the same map: its runs are numbered with the others.
    name = os.path.basename(session_dir)
    numbered = _NUMBERED_SESSION.match(name)
    if numbered:
        name = numbered.group(1)
    if run > 1:
        name = f"{name}-{run}"
    return os.path.join(os.path.dirname(session_dir), DIRECTORY, name)


def keep(session_dir: str) -> str | None:
    """Move the finished tasks' outputs out of ``session_dir``, whose map succeeded.

    Each finished run of a map gets a directory of its own, the first of
    ``<work_dir>/outputs/map-<fingerprint>``, ``...-2``, ``...-3``, ... that
    does not exist (made atomically, so two runs finishing at once never
    share one): a later run never overwrites nor mixes with an earlier run's
    files. Only ``done/`` is kept: in a map that succeeded every task
    returned, so whatever is in ``failed/`` is from an earlier call's failed
    run of a task that returned later, and goes with the session directory
    (as the traceback of that failure does).

    Returns
    -------
    str or None
        Where they are now (:func:`kept_path`); ``None`` if there were none.

    Raises
    ------
    OSError
        The directory cannot be made or the files cannot be moved (a full
        disk, say); the session directory then keeps them.
    """
    done = os.path.join(session_dir, DIRECTORY, DONE)
    if not os.path.isdir(done) or not os.listdir(done):
        return None
    os.makedirs(os.path.dirname(kept_path(session_dir)), mode=0o700, exist_ok=True)
    os.chmod(os.path.dirname(kept_path(session_dir)), 0o700)
    run = 1
    while True:
        destination = kept_path(session_dir, run)
        try:
            os.mkdir(destination, mode=0o700)
            break
        except FileExistsError:
            run += 1
    os.chmod(destination, 0o700)
    os.replace(done, os.path.join(destination, DONE))
    return destination


# A task's reference to output_dir travels by value: the nodes need no pypoolparty.
cloudpickle.register_pickle_by_value(sys.modules[__name__])
