"""What the worker costs per task: one chunk of trivial tasks through ``worker.py``.

Issue 12's 1,000,000-task row is bound by this cost: at a few microseconds
of a task's own work, everything the worker does around a task (its record
for a killed job, its result's pickle, checkpoints and output directories)
is the map's time. This runs the real worker script, in a process of its
own, on one chunk of ``--tasks`` tasks of ``tasks.trivial`` and on one chunk
of one task, in a session directory made as the map makes it; the
difference over the extra tasks is the cost per task, the interpreter's
start and the worker's setup taken out. The median of ``--repeat`` runs.

Run by hand from any directory::

    PYTHONPATH=<checkout> python <checkout>/benchmarks/worker_benchmark.py [--tasks N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import tasks

from pypoolparty import chunking, serialization, worker

HERE = os.path.dirname(os.path.abspath(__file__))


def prepare(session_dir: str, num_tasks: int) -> None:
    """A session directory with one chunk of ``num_tasks`` tasks, as a map writes it."""
    os.makedirs(os.path.join(session_dir, "outcomes"))
    function_bytes = serialization.pickle_function(tasks.trivial)
    with open(os.path.join(session_dir, "function.pickle"), "wb") as file:
        file.write(function_bytes)
    bounds = chunking.chunk_bounds(num_tasks, num_tasks)
    serialization.write_tasks(
        os.path.join(session_dir, "tasks.zip"),
        list(range(num_tasks)),
        bounds,
        function_bytes,
        identity="worker benchmark",
    )
    with open(os.path.join(session_dir, "worker_config.json"), "w") as file:
        json.dump({"star": False, "sys_path": [HERE, *sys.path]}, file)


def seconds_of_one_chunk(num_tasks: int) -> float:
    """Wall time of ``worker.py`` running a chunk of ``num_tasks`` trivial tasks."""
    with tempfile.TemporaryDirectory() as session_dir:
        prepare(session_dir, num_tasks)
        command = [sys.executable, worker.__file__, session_dir, "--ichunk", "0"]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        return time.perf_counter() - start


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    many = [seconds_of_one_chunk(args.tasks) for _ in range(args.repeat)]
    one = [seconds_of_one_chunk(1) for _ in range(args.repeat)]
    per_task = (statistics.median(many) - statistics.median(one)) / (args.tasks - 1)
    print(
        f"worker, one chunk of {args.tasks:,} trivial tasks: {statistics.median(many):.2f} s; "
        f"of 1 task: {statistics.median(one):.2f} s; "
        f"{per_task * 1e6:.1f} us per task (median of {args.repeat})"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
