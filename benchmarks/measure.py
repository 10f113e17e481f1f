"""Run benchmark cases in fresh processes; report wall time and peak memory.

Each case is one ``pool.map(tasks.<task>, range(num_tasks))`` in a process of
its own, so ``ru_maxrss`` is the peak resident memory of that case's
submitting process alone (workers are not counted: on a cluster they run
elsewhere). Cases run in the current directory, so run a benchmark from a
scratch directory that the jobs' user can write (the default work_dir is
``./.pypoolparty``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = [("trivial", 1000), ("sleep_half_second", 100)]


def run_case(pool_factory: str, task: str, num_tasks: int) -> dict:
    """Measure ``pool.map(tasks.<task>, range(num_tasks))`` in a new process."""
    completed = subprocess.run(
        [sys.executable, os.path.abspath(__file__), pool_factory, task, str(num_tasks)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")])),
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{pool_factory} {task} {num_tasks} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def make_pool(pool_factory: str):
    """``multiprocessing:2``, or a pypoolparty pool module with an optional
    first argument, e.g. ``local:2`` or ``slurm.array``."""
    name, _, argument = pool_factory.partition(":")
    if name in ("multiprocessing", "multiprocessing-imap"):
        import multiprocessing

        return multiprocessing.Pool(int(argument or 2))
    module = importlib.import_module(f"pypoolparty.{name}")
    return module.Pool(int(argument)) if argument else module.Pool()


def compare(pools: list[str], cases: list[tuple[str, int]] = CASES) -> None:
    """Run every case on every pool (``--repeat N`` times) and print a table."""
    parser = argparse.ArgumentParser(description="Compare pools on the same maps.")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case (median shown)")
    repeat = parser.parse_known_args()[0].repeat  # a benchmark may take options of its own
    print(f"{'pool':<22} {'task':<18} {'tasks':>6} {'wall s median (min-max)':>26} {'peak MiB':>9}")
    for task, num_tasks in cases:
        for pool_factory in pools:
            runs = [run_case(pool_factory, task, num_tasks) for _ in range(repeat)]
            walls = [run["seconds"] for run in runs]
            spread = f"{statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f})"
            peak = max(run["peak_mib"] for run in runs)
            print(f"{pool_factory:<22} {task:<18} {num_tasks:>6} {spread:>26} {peak:>9.1f}")


def _measure(pool_factory: str, task: str, num_tasks: int) -> None:
    import tasks

    function = getattr(tasks, task)
    pool = make_pool(pool_factory)
    start = time.perf_counter()
    if pool_factory.startswith("multiprocessing-imap"):
        # Balances uneven tasks as well as a pool can: one task at a time.
        results = list(pool.imap(function, range(num_tasks), chunksize=1))
    else:
        results = pool.map(function, range(num_tasks))
    seconds = time.perf_counter() - start
    if hasattr(pool, "terminate"):
        pool.terminate()
    if results != [function(x) for x in range(num_tasks)] and task == "trivial":
        raise AssertionError("wrong results")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024}))


if __name__ == "__main__":
    _measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))
