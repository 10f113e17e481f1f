"""Run one benchmark case in a fresh process; report wall time and peak memory.

Each case runs in a process of its own, so ``ru_maxrss`` is the peak resident
memory of that case's submitting process alone (worker processes are not
counted: on a cluster they run elsewhere).
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_case(pool_factory: str, task: str, num_tasks: int) -> dict:
    """Measure ``pool.map(tasks.<task>, range(num_tasks))`` in a new process."""
    completed = subprocess.run(
        [sys.executable, os.path.abspath(__file__), pool_factory, task, str(num_tasks)],
        capture_output=True,
        text=True,
        cwd=HERE,
        env=dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", "")),
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{pool_factory} {task} {num_tasks} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def make_pool(pool_factory: str):
    """``multiprocessing:2`` or a dotted pypoolparty pool with options, e.g. ``local:2``."""
    name, _, argument = pool_factory.partition(":")
    if name == "multiprocessing":
        import multiprocessing

        return multiprocessing.Pool(int(argument or 2))
    module = importlib.import_module(f"pypoolparty.{name}")
    return module.Pool(int(argument)) if argument else module.Pool()


def _measure(pool_factory: str, task: str, num_tasks: int) -> None:
    import tasks

    function = getattr(tasks, task)
    pool = make_pool(pool_factory)
    start = time.perf_counter()
    results = pool.map(function, range(num_tasks))
    seconds = time.perf_counter() - start
    if hasattr(pool, "terminate"):
        pool.terminate()
    if results != [function(x) for x in range(num_tasks)] and task == "trivial":
        raise AssertionError("wrong results")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024}))


def print_table(rows: list[tuple[str, str, int, dict]]) -> None:
    print(f"{'pool':<28} {'task':<18} {'tasks':>7} {'wall s':>8} {'peak MiB':>9}")
    for pool_factory, task, num_tasks, result in rows:
        print(
            f"{pool_factory:<28} {task:<18} {num_tasks:>7} "
            f"{result['seconds']:>8.2f} {result['peak_mib']:>9.1f}"
        )


if __name__ == "__main__":
    _measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))
