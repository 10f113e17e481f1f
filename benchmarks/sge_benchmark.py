"""Benchmark ``pypoolparty.sun_grid_engine.Pool()`` beside ``multiprocessing.Pool(2)``.

Run by hand on a machine with a Grid Engine cell (``local_clusters/sge/start.sh``)::

    python benchmarks/sge_benchmark.py [--repeats N]

Each case runs in a fresh Python process, which reports the wall time of the
``map`` call and its peak resident memory (and that of its largest child,
i.e. a multiprocessing worker; Grid Engine jobs are not children). The pool
uses its default settings; its work_dir goes below a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time

CASES = {
    "square x 1000": (1000, 0.0),
    "sleep 0.5 s x 100": (100, 0.5),
}
POOLS = ["multiprocessing.Pool(2)", "sun_grid_engine.Pool()"]


def square_or_sleep(task):
    x, seconds = task
    if seconds:
        time.sleep(seconds)
    return x * x


def run_case(pool_name: str, case: str) -> dict:
    """Run one case in this process; return its figures."""
    num_tasks, seconds = CASES[case]
    tasks = [(x, seconds) for x in range(num_tasks)]
    started = time.perf_counter()
    if pool_name == "multiprocessing.Pool(2)":
        with multiprocessing.Pool(2) as pool:
            results = pool.map(square_or_sleep, tasks)
    else:
        from pypoolparty import sun_grid_engine

        results = sun_grid_engine.Pool().map(square_or_sleep, tasks)
    wall = time.perf_counter() - started
    assert results == [x * x for x in range(num_tasks)]
    return {
        "wall_s": wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_child_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def measure(pool_name: str, case: str) -> dict:
    """Run one case in a fresh interpreter, in a temporary working directory."""
    with tempfile.TemporaryDirectory(prefix="sge-benchmark-") as directory:
        completed = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--one", pool_name, case],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--one", nargs=2, metavar=("POOL", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_case(*args.one)))
        return
    print(f"{'case':<20} {'pool':<26} {'wall s':>8} {'peak RSS MiB':>13} {'child MiB':>10}")
    for case in CASES:
        for pool_name in POOLS:
            for _ in range(args.repeats):
                figures = measure(pool_name, case)
                print(
                    f"{case:<20} {pool_name:<26} {figures['wall_s']:>8.2f} "
                    f"{figures['peak_rss_mib']:>13.1f} {figures['peak_child_rss_mib']:>10.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
