"""Session directories built by hand, as a map prepares them, for tests that read them."""

from __future__ import annotations

import os

import cloudpickle

from pypoolparty import work_dir, worker
from pypoolparty.shell_commands import CALL_NAME
from pypoolparty.tasklist.state import CurrentMap, RunDir

FINGERPRINT = "00112233445566778899aabbccddeeff" * 2


def new_session(
    base, num_tasks=6, chunksize=2, function="square", scheduler="local", star=False
) -> work_dir.SessionDir:
    """A session directory with its ``session.json``, in ``base``."""
    session_dir = work_dir.SessionDir(os.path.join(base, work_dir.session_dir_name(FINGERPRINT)))
    session_dir.create()
    work_dir.SessionMetadata.of_new_map(
        fingerprint=FINGERPRINT,
        scheduler=scheduler,
        function=function,
        star=star,
        num_tasks=num_tasks,
        chunksize=chunksize,
        num_chunks=-(-num_tasks // chunksize),
        python_path="/usr/bin/python3",
    ).write(session_dir)
    return session_dir


def task_record(itask, start, end, failing=False, value=None) -> dict:
    """A task's entry of an outcome, as the worker writes it: it raised
    ``ValueError`` if ``failing``, else it returned ``value``."""
    record = {"itask": itask, "start": start, "end": end}
    if failing:
        try:
            raise ValueError(f"bad task {itask}")
        except ValueError as error:
            record["error"] = worker.describe_exception(error)
    else:
        record["result"] = cloudpickle.dumps(value)
    return record


def task_list_map(base):
    """A task-list run of 3 lines whose map (lines 2, 5, 9 as tasks 0, 1, 2) is in progress.

    Returns ``(run_dir, session_dir)``.
    """
    os.makedirs(base, mode=0o700)
    run_dir = RunDir(base)
    run_dir.start_or_check("/lists/tasks.txt", "print", 3, "/data")
    run_dir.begin_map(CurrentMap(lines=[2, 5, 9], timeout=None, chunksize=3))
    session_dir = new_session(
        base, num_tasks=3, chunksize=3, function=f"{CALL_NAME}(...)", scheduler="slurm"
    )
    return run_dir, session_dir
