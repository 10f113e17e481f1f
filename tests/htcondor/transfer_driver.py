"""Run one map on the real HTCondor without a shared file system; print the outcome.

The tests run this script as root with a work_dir only root can enter (0700),
while HTCondor runs the jobs as another user: a job that opened any file of
the work_dir would fail. Usage::

    transfer_driver.py SCENARIO WORK_DIR JOB_PYTHON [JSON_POOL_OPTIONS]

It prints one JSON line: ``{"results": [...]}`` or ``{"error": "<type>",
"message": "...", "cause": "..."}``. The functions are in ``__main__``, so
they are pickled by value: the jobs need no file of this checkout.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pypoolparty
import pypoolparty.htcondor
from pypoolparty import output_dir  # travels with the task: no pypoolparty on the nodes


def square_where(x):
    """x squared, with what the job saw: its working directory, whether the
    work_dir was in reach, and a variable of the submitter's environment."""
    work_dir = os.environ["TRANSFER_TEST_WORK_DIR"]
    try:
        os.listdir(work_dir)
        reachable = True
    except OSError:
        reachable = False
    return [x * x, os.getcwd(), reachable, os.environ.get("TRANSFER_TEST_SECRET")]


def raise_on_3(x):
    if x == 3:
        raise ValueError(f"task {x} does not like {x}")
    return x * x


def slow_square(x):
    time.sleep(float(os.environ.get("TRANSFER_TEST_SLEEP", "0")))
    return x * x


def _wait_for_file(pattern, what):
    """Until a file of the markers directory starts with ``pattern``; bounded,
    so that a stuck map fails its test instead of hanging it."""
    markers = os.environ["TRANSFER_TEST_MARKERS"]
    for _ in range(1200):
        if any(name.startswith(pattern) for name in os.listdir(markers)):
            return
        time.sleep(0.1)
    raise TimeoutError(f"no {what} within 120 s")


def held_beside_running(x):
    """Each run leaves a marker ``ran-<x>-...``. Task 1 (chunk 0) dies by SIGKILL
    on its first run once task 2 (chunk 1) runs, so that its proc is held
    (``on_exit_hold`` on signals) beside a running one; task 2 waits until the
    test says the held proc was dealt with (a marker ``release``)."""
    markers = os.environ["TRANSFER_TEST_MARKERS"]
    with open(os.path.join(markers, f"ran-{x}-{os.getpid()}-{time.time_ns()}"), "w"):
        pass
    marker = os.path.join(markers, "attempted-1")
    if x == 1 and not os.path.exists(marker):
        _wait_for_file("ran-2-", "run of task 2")
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    if x == 2:
        _wait_for_file("release", "release from the test")
    return x * x


def counted_square(x):
    """x squared, slowly, in two steps, each saved as a checkpoint; each run of
    a step leaves a marker in a directory of the test's that every user may
    write, so that the test counts the runs of each task and step."""
    markers = os.environ["TRANSFER_TEST_MARKERS"]
    step = pypoolparty.checkpoint.load(default=0)
    while step < 2:
        with open(os.path.join(markers, f"ran-{x}-{step}-{os.getpid()}-{time.time_ns()}"), "w"):
            pass
        time.sleep(float(os.environ.get("TRANSFER_TEST_SLEEP", "0")) / 2)
        step += 1
        pypoolparty.checkpoint.save(step)
    return x * x


def read_input(path):
    """What the task's InputFile holds, and where the task found it."""
    with open(path) as file:
        return [file.read(), path]


def write_output(x):
    """Writes a file into its output directory; task 1 raises after that."""
    with open(os.path.join(output_dir(), f"out-{x}.txt"), "w") as file:
        file.write(f"output of task {x}")
    if x == 1:
        raise ValueError("task 1 fails after writing")
    return x


SCENARIOS = {
    "write_output": (write_output, 4, 2),
    "read_input": (read_input, 4, 2),
    "held_beside_running": (held_beside_running, 4, 2),
    "square_where": (square_where, 6, 2),
    "raise_on_3": (raise_on_3, 6, 2),
    "slow_square": (slow_square, 8, 1),
    "counted_square": (counted_square, 4, 4),
}


def main() -> None:
    scenario, work_dir, python = sys.argv[1:4]
    options = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    func, num_tasks, chunksize = SCENARIOS[scenario]
    tasks = range(num_tasks)
    if scenario == "read_input":
        inputs = os.environ["TRANSFER_TEST_INPUTS"]
        tasks = [pypoolparty.InputFile(os.path.join(inputs, f"in-{i}.txt")) for i in tasks]
    pool = pypoolparty.htcondor.Pool(
        work_dir=work_dir,
        python_path=python,
        shared_file_system=False,
        polling_interval=0.5,
        **options,
    )
    try:
        results = pool.map(func, tasks, chunksize=chunksize)
    except Exception as error:
        cause = error.__cause__
        print(
            json.dumps(
                {
                    "error": type(error).__name__,
                    "message": str(error),
                    "cause": str(cause) if cause is not None else "",
                }
            )
        )
        sys.exit(1)
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
