"""``pypoolparty run TASKLIST`` beside ``xargs -P 2`` and GNU parallel, in the same run.

A task list of 1,000 ``sleep 0.05`` lines runs with each tool, one after the
other, and the table gives each wall time and its ratio to ``xargs -P 2``
(the floor: 1,000 x 0.05 s over 2 slots is 25 s). pypoolparty runs it on
the local pool with 2 slots and, where SLURM is up, on ``slurm.array``.

Run by hand from a scratch directory that the jobs' user can write, on a
machine nobody else is measuring on:
``python <checkout>/benchmarks/tasklist_benchmark.py [--lines N] [--no-slurm]``.
GNU parallel is measured when ``parallel`` is on PATH (Debian: ``apt-get
install parallel``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def timed(command: list[str], cwd: str) -> float:
    # xargs reads the list on its stdin; the others ignore it.
    with open(os.path.join(cwd, "tasks.txt")) as tasks:
        start = time.monotonic()
        completed = subprocess.run(command, cwd=cwd, stdin=tasks, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}")
    return elapsed


def slurm_is_up() -> bool:
    if shutil.which("sbatch") is None:
        return False
    return subprocess.run(["scontrol", "ping"], capture_output=True).returncode == 0


def contenders(num_lines: int, with_slurm: bool) -> list[tuple[str, list[str]]]:
    pypoolparty = [sys.executable, "-m", "pypoolparty", "run", "tasks.txt"]
    chunksize = str(max(1, num_lines // 8))
    found = [("xargs -P 2", ["xargs", "-P", "2", "-d", "\n", "-n", "1", "bash", "-c"])]
    if shutil.which("parallel"):
        found.append(("GNU parallel -j 2", ["parallel", "-j", "2", "-a", "tasks.txt"]))
    found.append(
        (
            "pypoolparty local -j 2",
            [*pypoolparty, "--pool", "local", "-j", "2", "--work-dir", "work-local"],
        )
    )
    if with_slurm:
        found.append(
            (
                f"pypoolparty slurm.array (chunksize {chunksize})",
                [
                    *pypoolparty,
                    *("--pool", "slurm.array", "--chunksize", chunksize),
                    *("--work-dir", "work-slurm", "--polling-interval", "0.5"),
                ],
            )
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000, help="sleep 0.05 lines (1000)")
    parser.add_argument("--no-slurm", action="store_true", help="skip real SLURM")
    args = parser.parse_args()
    with_slurm = not args.no_slurm and slurm_is_up()
    directory = tempfile.mkdtemp(prefix="tasklist-benchmark-", dir=os.getcwd())
    with open(os.path.join(directory, "tasks.txt"), "w") as file:
        file.write("sleep 0.05\n" * args.lines)
    results = []
    for name, command in contenders(args.lines, with_slurm):
        results.append((name, timed(command, directory)))
    floor = args.lines * 0.05 / 2
    baseline = results[0][1]
    print(f"{args.lines} x 'sleep 0.05'; 2 slots cannot beat {floor:.1f} s")
    print(f"{'tool':<40} {'wall s':>8} {'/ xargs':>8}")
    for name, elapsed in results:
        print(f"{name:<40} {elapsed:>8.1f} {elapsed / baseline:>8.2f}")
    if not with_slurm:
        print("(real SLURM not measured: --no-slurm, or 'scontrol ping' fails here)")
    shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
