"""End-to-end wall time and peak memory of ``pypoolparty.slurm.array.Pool()`` on a real SLURM.

Run by hand (never a test), on the local cluster of local_clusters/slurm/start.sh:

    python benchmarks/slurm_benchmark.py [--repeat 3]

Each case runs in a fresh Python process, beside ``multiprocessing.Pool(2)``
for the same tasks. Peak memory is the maximum resident set size of that
process (for multiprocessing including its worker processes).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time

CASES = {"trivial": 1000, "sleep_half": 100}
METHODS = ("slurm_array", "multiprocessing")


def square(x):
    return x * x


def sleep_half(x):
    time.sleep(0.5)
    return x


def run_once(case: str, method: str) -> dict:
    func = square if case == "trivial" else sleep_half
    tasks = list(range(CASES[case]))
    started = time.monotonic()
    if method == "multiprocessing":
        with multiprocessing.Pool(2) as pool:
            results = pool.map(func, tasks)
    else:
        import pypoolparty.slurm.array

        results = pypoolparty.slurm.array.Pool().map(func, tasks)
    wall = time.monotonic() - started
    assert results == [func(x) if case == "trivial" else x for x in tasks]
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {"wall_s": wall, "peak_mb": peak_kb / 1024}


def measure(case: str, method: str) -> dict:
    """Run one case in a fresh interpreter, from a fresh directory for the work_dir."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--one", case, method],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("CASE", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_once(*args.one)))
        return
    print(f"{'case':<12}{'tasks':>6}  {'method':<16}{'wall s (median, min-max)':<28}{'peak MB':>8}")
    for case, num_tasks in CASES.items():
        for method in METHODS:
            runs = [measure(case, method) for _ in range(args.repeat)]
            walls = [run["wall_s"] for run in runs]
            spread = f"{statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f})"
            peak = statistics.median(run["peak_mb"] for run in runs)
            print(f"{case:<12}{num_tasks:>6}  {method:<16}{spread:<28}{peak:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
