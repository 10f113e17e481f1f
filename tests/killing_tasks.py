"""Tasks for tests that kill a job mid-chunk, and the test side of the kill.

A task leaves marks in a directory the test owns: a line per start and per
finish (to count how often it ran), and, where the test wants to kill its
job, a ``waiting-<name>`` file with the worker's process id and job id before
it blocks until the test creates ``gate-<name>``. So a kill hits a known
task at a known point, with no sleeps in the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from waiting import wait_for

import pypoolparty.checkpoint


def mark(marks: str, name: str, what: str) -> None:
    with open(os.path.join(marks, str(name)), "a") as file:
        file.write(what + "\n")


def block(marks: str, name: str) -> None:
    """Say where this process is, then wait until the test opens ``gate-<name>``."""
    where = {
        "pid": os.getpid(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
    path = os.path.join(marks, f"waiting-{name}")
    with open(path + ".part", "w") as file:
        json.dump(where, file)
    os.replace(path + ".part", path)
    gate = os.path.join(marks, f"gate-{name}")
    while not os.path.exists(gate):
        time.sleep(0.02)


def blocking_task(marks: str, x: int, block_at) -> int:
    """Task ``x`` of a chunk; the one at ``block_at`` (an int, or a tuple of them) waits
    for its gate."""
    mark(marks, x, "started")
    if x in (block_at if isinstance(block_at, tuple) else (block_at,)):
        block(marks, x)
    mark(marks, x, "finished")
    return 10 * x


def counting_task(marks: str, num_steps: int, kill_at: tuple[int, ...]) -> int:
    """Sums the steps' squares, checkpointing after each step.

    Each step leaves a mark. At the steps in ``kill_at`` it waits for its
    gate after doing the step's work but before saving it: a kill there
    loses that step, which runs again from the checkpoint.
    """
    step, total = pypoolparty.checkpoint.load(default=(0, 0))
    while step < num_steps:
        mark(marks, f"step{step}", "done")
        total += step * step
        if step in kill_at:
            block(marks, step)
        step += 1
        pypoolparty.checkpoint.save((step, total))
    return total


def chunk_task(marks: str, x: int, slow: int, num_steps: int = 6, block_at: int = 3) -> int:
    """Task ``x`` of a chunk whose task ``slow`` is a :func:`counting_task` that
    blocks at step ``block_at``; the others just run. Marks ``started`` and
    ``finished`` per task, ``done`` per step of the slow one."""
    mark(marks, x, "started")
    value = counting_task(marks, num_steps, (block_at,)) if x == slow else 10 * x
    mark(marks, x, "finished")
    return value


def chunk_results(num_tasks: int, slow: int, num_steps: int = 6) -> list:
    """What :func:`chunk_task` returns for tasks ``0..num_tasks-1``."""
    return [sum(s * s for s in range(num_steps)) if x == slow else 10 * x for x in range(num_tasks)]


def session_job_ids(work_dir) -> list[str]:
    """The ids of the jobs a map in ``work_dir`` submitted, from its event log: this
    test's jobs, never another's."""
    from session_logs import session_events

    return [
        row[0]
        for event in session_events(work_dir)
        if event["event"] == "submitted"
        for row in event.get("jobs", ())
    ]


@contextlib.contextmanager
def running_in_background(call, marks, gates):
    """Run ``call`` in a thread; whatever the test asserts, its tasks' gates open at the end."""
    with ThreadPoolExecutor(1) as executor:
        try:
            yield executor.submit(call)
        finally:
            for name in gates:
                open_gate(marks, name)


def logged(tmp_path, kind) -> list[dict]:
    """The events of ``kind`` in the log of the one map under ``tmp_path/work``."""
    (session,) = (tmp_path / "work").glob("map-*")
    lines = (session / "log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def where_blocked(marks, name, timeout: float = 120.0) -> dict:
    """Wait until the task named ``name`` blocks; its process id and job id."""
    path = os.path.join(marks, f"waiting-{name}")
    wait_for(lambda: os.path.exists(path), timeout=timeout)
    with open(path) as file:
        return json.load(file)


def open_gate(marks, name) -> None:
    with open(os.path.join(marks, f"gate-{name}"), "w"):
        pass


def kill_blocked(marks, name, sig=signal.SIGKILL) -> dict:
    """Send ``sig`` to the worker process blocked at ``name``, then let later runs pass."""
    where = where_blocked(marks, name)
    os.remove(os.path.join(marks, f"waiting-{name}"))
    os.kill(where["pid"], sig)
    open_gate(marks, name)
    return where


def counts(marks, names, what: str) -> dict:
    """How often each of ``names`` left the mark ``what``."""
    return {name: _read(os.path.join(marks, str(name))).split().count(what) for name in names}


def _read(path: str) -> str:
    try:
        with open(path) as file:
            return file.read()
    except FileNotFoundError:
        return ""


MAP_SCRIPT = """
import importlib, sys
sys.path.insert(0, {tests_dir!r})
import killing_tasks

module = importlib.import_module({pool_module!r})
pool = module.Pool(**{options!r})
tasks = [({marks!r}, x, {block_at!r}) for x in range({num_tasks})]
print(pool.starmap(killing_tasks.blocking_task, tasks, chunksize={num_tasks}))
"""


def map_script(path, pool_module, options, marks, num_tasks, block_at) -> str:
    """Write a script that maps :func:`blocking_task` on a pool; return its path."""
    text = MAP_SCRIPT.format(
        tests_dir=os.path.dirname(os.path.abspath(__file__)),
        pool_module=pool_module,
        options=options,
        marks=str(marks),
        num_tasks=num_tasks,
        block_at=block_at,
    )
    with open(path, "w") as file:
        file.write(text)
    return str(path)
