"""The function every chaos scenario maps: importable by the driver, the
worker (via the submitter's ``sys.path``) and the test that computes the
expected results locally."""

from __future__ import annotations

import glob
import os
import pickle
import re
import sys
import time

IMPORTED_AT = time.time()
"""When this run of a chunk imported this module: in a worker, while it
unpickles the function, before it reads the task records of its chunk."""
RECORD_MARGIN = 0.5
"""Seconds a task's record must precede :data:`IMPORTED_AT` to count as one
its worker read: the record is appended a moment after the task's end."""
RUN_LINE = re.compile(r"^ran pid=\d+ again=(yes|no)$")
"""One run of a task in its side-effects file (see :func:`compute_noting_runs`)."""


class Refused(ValueError):
    """A task's own exception, raised on purpose by some scenarios."""


def compute(task: tuple[int, bool, float]) -> tuple[int, str]:
    """``task`` is ``(x, refuse, pause)``: wait ``pause`` seconds, then raise
    :class:`Refused` if ``refuse``, else return a value unique to ``x``."""
    x, refuse, pause = task
    if pause:
        time.sleep(pause)
    if refuse:
        raise Refused(f"task {x} refuses")
    return x * x + 7, f"r{x}"


def expected_outcome(tasks: list) -> dict:
    """What the local map gives: ``{"results": [...]}`` or the first error."""
    try:
        return {"results": [list(compute(task)) for task in tasks]}
    except Refused as error:
        return {"error": "Refused", "message": str(error)}


def record(x: int, side_effects: str) -> int:
    """Note each run of task ``x`` in directory ``side_effects``; return ``10 * x``."""
    with open(f"{side_effects}/{x}", "a") as file:
        file.write("ran\n")
    return 10 * x


def compute_noting_runs(task: tuple[int, bool, float, str]) -> tuple[int, str]:
    """:func:`compute` of ``task[:3]`` that notes each run in the directory ``task[3]``.

    At the end of each run (also when it refuses), the task appends one line,
    ``ran pid=<pid> again=<yes|no>``, to ``<directory>/<x>`` in a single
    write. ``again=yes``: before this run's worker started, its session
    directory already recorded the task as finished (a record in
    ``partial/``), so a finished task ran again.
    """
    x, refuse, pause, side_effects = task
    again = recorded_before_this_run()
    try:
        return compute((x, refuse, pause))
    finally:
        line = f"ran pid={os.getpid()} again={'yes' if again else 'no'}\n".encode()
        descriptor = os.open(f"{side_effects}/{x}", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)


def recorded_before_this_run() -> bool:
    """Whether the session directory of the worker running this task held a
    record of it that had ended well before this run of the chunk began.

    The worker names its session directory and the running task to
    :mod:`pypoolparty.checkpoint` (``RUNNING_TASK_MODULE``); outside a
    worker, False.
    """
    from pypoolparty import checkpoint, task_records

    running = sys.modules.get(checkpoint.RUNNING_TASK_MODULE)
    session_dir = getattr(running, "session_dir", None)
    itask = getattr(running, "itask", None)
    if session_dir is None or itask is None:
        return False
    for path in glob.glob(os.path.join(task_records.directory(session_dir), "*.records")):
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            continue  # removed since: its chunk's outcome was written
        for recorded, payload in task_records.decode(data):
            if recorded == itask and pickle.loads(payload)["end"] < IMPORTED_AT - RECORD_MARGIN:
                return True
    return False


def runs_of(side_effects: str, num_tasks: int) -> dict[int, str]:
    """What :func:`compute_noting_runs` left for each task: its lines, '' for none."""
    runs = {}
    for x in range(num_tasks):
        try:
            with open(os.path.join(side_effects, str(x))) as file:
                runs[x] = file.read()
        except FileNotFoundError:
            runs[x] = ""
    return runs
