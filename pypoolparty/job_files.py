"""The files a job reads and writes, for pools whose jobs do not see the work_dir.

On a shared file system a job opens its session directory itself. Without
one (``pypoolparty.htcondor.Pool(shared_file_system=False)``), the scheduler
copies files into the job's scratch directory and copies the job's outputs
back; the job then runs with its scratch directory as its session directory
(``.``), so that nothing it runs names a path of the submit host. This
module says which files those are; the adapter only moves them.

Into the job go

- the files every job of the map reads (:data:`SHARED_INPUTS`): the worker
  script, ``worker_config.json``, the pickled function, and the launcher with
  its private environment and setup files -- once per job, never per task;
- the job's own chunk, staged by :func:`stage_chunks` into a directory of its
  own whose contents land in the scratch directory: a ``tasks.zip`` holding
  only that chunk (not the tasks of the whole map), copies of the task
  records earlier runs of the chunk left (so a resubmitted job skips the
  tasks they finished), the files of its tasks' :class:`pypoolparty.InputFile`
  arguments (:mod:`pypoolparty.input_files`), and the empty directories of
  :data:`OUTPUTS` the worker writes into.

Back come :data:`OUTPUTS`: ``outcomes/``, ``partial/``, the files the tasks
wrote (``outputs/``, see :mod:`pypoolparty.task_outputs`) and ``checkpoints/``,
into the session directory's directories of the same names, where the
session reads them as on a shared file system. A job that is vacated or
evicted sends them to the schedd's spool, and gets them back when it starts
again. Transferred files keep their 0600 mode.

The names are those of :class:`pypoolparty.work_dir.SessionDir` (the session
directory's layout) and :mod:`pypoolparty.launcher`; the chunk's archive is
written by :mod:`pypoolparty.serialization`, the owner of its format.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from collections.abc import Mapping, Sequence

from . import (
    checkpoint,
    input_files,
    launcher,
    serialization,
    task_outputs,
    task_records,
    work_dir,
)
from .errors import BadInput
from .scheduler import WorkerCall

logger = logging.getLogger("pypoolparty")

SCRATCH_SESSION_DIR = "."
"""The session directory of a job that got its files by transfer: its scratch directory."""

SHARED_INPUTS = (
    "worker.py",
    "worker_config.json",
    "function.pickle",
    launcher.LAUNCHER_NAME,
    launcher.ENVIRONMENT_NAME,
    launcher.SETUP_NAME,
)
"""Files of the session directory every job reads, by their names there."""

OUTPUTS = ("outcomes", task_records.DIRECTORY, task_outputs.DIRECTORY, checkpoint.DIRECTORY)
"""Directories the job writes, copied back into the session directory's own
(and kept for the job by the schedd when it is vacated or evicted)."""

TRANSFER_WARNING_BYTES = 1 << 30
"""A submission whose jobs get more than this many bytes in all (1 GiB) is
warned about before it is submitted: every byte goes through the schedd."""


def worker_call_in_scratch(worker: WorkerCall) -> WorkerCall:
    """``worker`` with the paths a job in its scratch directory uses: relative ones.

    The interpreter stays as given: it is the execute node's own.

    Raises
    ------
    ValueError
        ``worker`` runs in a container, whose binds name the submit host's
        work_dir.
    """
    if worker.container is not None:
        raise ValueError("a container needs the work_dir on a shared file system")
    session = work_dir.SessionDir(SCRATCH_SESSION_DIR)
    return dataclasses.replace(
        worker,
        script_path=os.path.basename(session.worker_script_path),
        session_dir=SCRATCH_SESSION_DIR,
        launcher_path=None if worker.launcher_path is None else launcher.LAUNCHER_NAME,
        working_dir="",
    )


def stage_chunks(session_dir: str, directories: Mapping[int, str]) -> None:
    """Write into each new directory what the job of its chunk needs of its own.

    ``directories`` maps a chunk index to its directory, whose contents are
    to be copied into the job's scratch directory: a ``tasks.zip`` of the
    chunk alone, ``outcomes/``, and ``partial/`` with copies of the chunk's
    task records as they are now. The map's archive is opened, and the
    records listed, once for all the chunks.
    """
    session = work_dir.SessionDir(session_dir)
    tasks_name = os.path.basename(session.tasks_path)
    for directory in directories.values():
        # makedirs would make the parents with the umask's mode.
        work_dir.make_private_dir(os.path.dirname(directory))
        work_dir.make_private_dir(directory)
        work_dir.make_private_dir(os.path.join(directory, "outcomes"))
        work_dir.make_private_dir(os.path.join(directory, task_records.DIRECTORY))
        work_dir.make_private_dir(os.path.join(directory, task_outputs.DIRECTORY))
        work_dir.make_private_dir(os.path.join(directory, checkpoint.DIRECTORY))
    serialization.copy_chunk_tasks(
        session.tasks_path,
        {ichunk: os.path.join(directory, tasks_name) for ichunk, directory in directories.items()},
    )
    for ichunk, paths in input_files.files_of_chunks(session_dir, list(directories)).items():
        for path in paths:
            _link_or_copy(path, os.path.join(directories[ichunk], input_files.local_path(path)))
    records = task_records.files_by_chunk(session_dir)
    for ichunk, directory in directories.items():
        for path in records.get(ichunk, []):
            try:
                with open(path, "rb") as file:
                    data = file.read()
            except FileNotFoundError:
                continue  # folded meanwhile: its tasks are in the outcome
            staged = os.path.join(directory, task_records.DIRECTORY, os.path.basename(path))
            work_dir.write_private(staged, data)


def _link_or_copy(source: str, destination: str) -> None:
    """``source`` at ``destination`` (0600): a hard link where it can be, else a copy.

    Raises
    ------
    pypoolparty.BadInput
        ``source`` is gone since the map was prepared.
    """
    work_dir.make_private_dir(os.path.dirname(os.path.dirname(destination)))
    work_dir.make_private_dir(os.path.dirname(destination))
    try:
        if os.stat(source).st_uid == os.getuid() and os.stat(source).st_mode & 0o077 == 0:
            os.link(source, destination)
            return
    except FileNotFoundError:
        raise BadInput(
            f"the InputFile {source!r} is gone since the map was prepared; put it back, "
            "or call the map with the file it should read. Nothing more was submitted."
        ) from None
    except OSError:
        pass  # another file system: copied
    descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(source, "rb") as file, os.fdopen(descriptor, "wb") as copy:
        shutil.copyfileobj(file, copy, 1 << 20)


def transfer_size(session_dir: str, staged_dirs: Sequence[str]) -> tuple[int, int]:
    """Bytes the jobs of one submission get: ``(per job, in all)``.

    Each job gets the :data:`SHARED_INPUTS` (the pickled function first of
    all, with whatever it captures) and its own staged directory.
    """
    shared = sum(
        os.path.getsize(os.path.join(session_dir, name))
        for name in SHARED_INPUTS
        if os.path.exists(os.path.join(session_dir, name))
    )
    own = sum(_tree_size(directory) for directory in staged_dirs)
    return shared, shared * len(staged_dirs) + own


def warn_if_large(session_dir: str, staged_dirs: Sequence[str]) -> str | None:
    """Warn (log) when the jobs of a submission would get more than :data:`TRANSFER_WARNING_BYTES`.

    Returns
    -------
    str or None
        The warning, if one was given.
    """
    per_job, total = transfer_size(session_dir, staged_dirs)
    if total <= TRANSFER_WARNING_BYTES:
        return None
    largest_own = max((_tree_size(directory) for directory in staged_dirs), default=0)
    message = (
        f"{len(staged_dirs)} job(s) of this map get {_size(total)} by file transfer; "
        f"each job gets up to {_size(per_job + largest_own)}: {_size(per_job)} that every "
        "job gets (the pickled function with what it captures, the worker and the "
        f"launcher) and up to {_size(largest_own)} of its own chunk (its tasks and their "
        "input files). All of it goes through the schedd and waits in its spool. Pass large data "
        "by path to storage the execute nodes reach rather than in the function or "
        "the tasks (see docs/no_shared_file_system.rst)."
    )
    logger.warning("%s", message)
    return message


def _tree_size(directory: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(directory):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total


def _size(num_bytes: float) -> str:
    if num_bytes < 1024:
        return f"{int(num_bytes)} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        num_bytes /= 1024
        if num_bytes < 1024 or unit == "GiB":
            break
    return f"{num_bytes:.1f} {unit}"
