"""pypoolparty.htcondor.Pool() beside multiprocessing.Pool(2), by hand.

Run on the local HTCondor of ``local_clusters/htcondor/start.sh`` as the user
jobs run as (HTCondor never runs root's jobs), with an interpreter that has
cloudpickle and pypoolparty, e.g.::

    runuser -u condoruser -- /var/tmp/pypoolparty-htcondor-venv/bin/python \\
        benchmarks/htcondor_benchmark.py

Each case runs in a fresh child process, so that its peak memory (the
maximum resident set size of the process, and of its largest child) is its
own. Aims: 1,000 trivial tasks in under 15 s; 100 tasks sleeping 0.5 s
within 1.3 times multiprocessing's wall time.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time

CASES = {
    "trivial": (1000, 0.0),
    "sleep": (100, 0.5),
}


def task(seconds: float) -> float:
    if seconds:
        time.sleep(seconds)
    return seconds


def run_case(pool_kind: str, case: str) -> dict:
    num_tasks, seconds = CASES[case]
    tasks = [seconds] * num_tasks
    started = time.monotonic()
    if pool_kind == "htcondor":
        import pypoolparty.htcondor

        with tempfile.TemporaryDirectory(prefix="ppp-benchmark-") as work_dir:
            results = pypoolparty.htcondor.Pool(work_dir=work_dir).map(task, tasks)
    else:
        with multiprocessing.Pool(2) as pool:
            results = pool.map(task, tasks)
    wall = time.monotonic() - started
    assert results == tasks
    return {
        "wall_s": wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_child_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def measure(pool_kind: str, case: str) -> dict:
    completed = subprocess.run(
        [sys.executable, os.path.abspath(__file__), pool_kind, case],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout.splitlines()[-1])


def main() -> None:
    if len(sys.argv) == 3:
        print(json.dumps(run_case(sys.argv[1], sys.argv[2])))
        return
    print(f"{'case':<28} {'pool':<22} {'wall [s]':>9} {'peak RSS [MB]':>14} {'child [MB]':>11}")
    for case, (num_tasks, seconds) in CASES.items():
        label = f"{num_tasks} tasks x {seconds} s"
        walls = {}
        for pool_kind, name in (
            ("htcondor", "htcondor.Pool()"),
            ("multiprocessing", "multiprocessing.Pool(2)"),
        ):
            figures = measure(pool_kind, case)
            walls[pool_kind] = figures["wall_s"]
            print(
                f"{label:<28} {name:<22} {figures['wall_s']:>9.2f} "
                f"{figures['peak_rss_mb']:>14.1f} {figures['peak_child_rss_mb']:>11.1f}"
            )
        ratio = walls["htcondor"] / walls["multiprocessing"]
        print(f"{'':<28} {'ratio htcondor/mp':<22} {ratio:>9.2f}")


if __name__ == "__main__":
    main()
