"""Issue 12's table of goals: every row on every pool, in one run.

Rows (``--rows``; ``--pools`` selects the pools, multiprocessing always runs):

- ``skewed``: 10 tasks of 3 s then 90 of 0.2 s on multiprocessing's
  ``imap(chunksize=1)``, local, slurm.array, slurm, sge and htcondor; goal
  <= 1.10 x the ideal ``max(total work / slots, longest task)``.
- ``trivial-1k``: 1,000 trivial tasks on slurm.array and sge; goal <= 2.5 s.
- ``half-second``: 100 tasks of 0.5 s on multiprocessing's ``map`` and on
  local, slurm.array, slurm, sge and htcondor; goal <= 1.05 x multiprocessing
  in the same run.
- ``trivial-100k``: 100,000 trivial tasks on slurm.array; goal <= 10 s and
  <= 100 MiB peak RSS of the submitting process.
- ``trivial-1m``: 1,000,000 trivial tasks on local; goal <= 5.9 s and
  <= 206 MiB peak RSS (the figures before issue 12: do not regress).

Every pool runs with default options (``local`` and multiprocessing with
``--slots`` processes, 2 by default: the slots of the one-node clusters of
``local_clusters/``). Each measurement is a fresh process (``measure.py``):
the wall time of its ``map`` and its own peak RSS (``ru_maxrss`` of
``getrusage(RUSAGE_SELF)``, read by the submitting process when the map
returned; workers are not counted). With ``--repeat N`` every case runs N
times, round after round so that a change in the machine's load falls on all
of them alike; the table shows the medians and the spread of the seconds. A
pool whose scheduler is not up is skipped with the reason; a case that fails
or runs longer than ``--timeout`` is reported as an error and the others go on.

Run by hand, with the clusters of ``local_clusters/*/start.sh`` up, from a
scratch directory (not the checkout; the maps' work_dirs land there) that
every job user can read, e.g.::

    mkdir -m 755 /tmp/bench && cd /tmp/bench
    PYTHONPATH=<checkout> python <checkout>/benchmarks/balance_benchmark.py [--repeat 3]

``--quick`` runs every row at a small size (about two minutes) to check that
the benchmark works; its goals are not the issue's. Run as root, the
``htcondor`` cases run as HTCondor's job user, as ``measure.py`` says. At the
end the table is printed with the command line, the commit, and the load
averages before and after, ready to paste into a note.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass

from measure import HERE, CaseFailed, run_case, summarize
from tasks import skewed_ideal_seconds

CHECKOUT = os.path.dirname(HERE)
POOLS = {
    "local": "local:{slots}",
    "slurm.array": "slurm.array",
    "slurm": "slurm",
    "sge": "sun_grid_engine",
    "htcondor": "htcondor",
}
"""The pools ``--pools`` names, and their factories in ``measure.py``."""
REFERENCES = {
    "multiprocessing": "multiprocessing:{slots}",
    "multiprocessing-imap": "multiprocessing-imap:{slots}",
}
"""Pools a row measures whatever ``--pools`` says, to compare the others with."""
PROBES = {
    "slurm.array": ["scontrol", "ping"],
    "slurm": ["scontrol", "ping"],
    "sge": ["qstat", "-g", "c"],
    "htcondor": ["condor_q", "-totals"],
}
"""Per pool, a command that exits 0 when its scheduler is up."""


@dataclass(frozen=True)
class Row:
    name: str
    task: str
    num_tasks: int
    quick_task: str
    quick_num_tasks: int
    pools: tuple[str, ...]
    reference: str
    """``ideal`` (of the skewed task), ``multiprocessing`` (its case in this
    row), or ``seconds`` (``limit`` is then in seconds)."""
    limit: float
    peak_mib: float | None = None


ROWS = [
    Row(
        "skewed",
        "skewed",
        100,
        "skewed_quick",
        20,
        ("multiprocessing-imap", "local", "slurm.array", "slurm", "sge", "htcondor"),
        "ideal",
        1.10,
    ),
    Row("trivial-1k", "trivial", 1000, "trivial", 100, ("slurm.array", "sge"), "seconds", 2.5),
    Row(
        "half-second",
        "sleep_half_second",
        100,
        "sleep_half_second",
        8,
        ("multiprocessing", "local", "slurm.array", "slurm", "sge", "htcondor"),
        "multiprocessing",
        1.05,
    ),
    Row("trivial-100k", "trivial", 100_000, "trivial", 2000, ("slurm.array",), "seconds", 10, 100),
    Row("trivial-1m", "trivial", 1_000_000, "trivial", 20_000, ("local",), "seconds", 5.9, 206),
]


@dataclass(frozen=True)
class Case:
    row: Row
    pool: str
    factory: str
    task: str
    num_tasks: int
    slots: int


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(row.name for row in ROWS), help="%(default)s")
    parser.add_argument("--pools", default=",".join(POOLS), help="%(default)s")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case (median shown)")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it works")
    parser.add_argument(
        "--slots", type=int, default=2, help="processes of local and multiprocessing"
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds a case may take")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.slots < 1:
        parser.error("--repeat and --slots take a whole number from 1 up")
    for option, known in (("rows", [row.name for row in ROWS]), ("pools", list(POOLS))):
        unknown = set(getattr(args, option).split(",")) - set(known)
        if unknown:
            parser.error(f"--{option}: unknown {', '.join(sorted(unknown))}; known: {known}")
    return args


def select_cases(args: argparse.Namespace) -> list[Case]:
    cases = []
    for row in ROWS:
        if row.name not in args.rows.split(","):
            continue
        task, num_tasks = (row.task, row.num_tasks)
        if args.quick:
            task, num_tasks = (row.quick_task, row.quick_num_tasks)
        for pool in row.pools:
            if pool in REFERENCES or pool in args.pools.split(","):
                factory = {**POOLS, **REFERENCES}[pool].format(slots=args.slots)
                cases.append(Case(row, pool, factory, task, num_tasks, args.slots))
    return cases


def scheduler_down(pool: str) -> str | None:
    """Why ``pool``'s scheduler cannot be measured here, or None."""
    if pool not in PROBES:
        return None
    try:
        completed = subprocess.run(PROBES[pool], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{' '.join(PROBES[pool])}: {error}"
    if completed.returncode != 0:
        return f"{' '.join(PROBES[pool])} exits {completed.returncode}: {completed.stderr.strip()}"
    return None


def measure_all(cases: list[Case], repeat: int, timeout: float) -> tuple[dict, dict, dict]:
    """Runs per case, load average per case, error per case (failed or skipped)."""
    runs = {case: [] for case in cases}
    loads, errors = {}, {}
    for pool in {case.pool for case in cases}:
        reason = scheduler_down(pool)
        for case in cases:
            if reason and case.pool == pool:
                errors[case] = f"skipped: {reason}"
    for round_number in range(1, repeat + 1):
        for case in cases:
            if case in errors:
                continue
            label = f"[{round_number}/{repeat}] {case.row.name} {case.factory}"
            print(f"{label} ...", file=sys.stderr, flush=True)
            try:
                runs[case].append(run_case(case.factory, case.task, case.num_tasks, timeout))
            except CaseFailed as error:
                errors[case] = f"error: {error}"
                print(f"{label}: {error}", file=sys.stderr, flush=True)
                continue
            loads[case] = os.getloadavg()[0]
            print(f"{label}: {runs[case][-1]}", file=sys.stderr, flush=True)
    return runs, loads, errors


def judge(case: Case, median: dict, reference: float | None, quick: bool) -> tuple[str, str, str]:
    """The goal, the ratio to it and the verdict of one measured case."""
    row = case.row
    if row.reference == "multiprocessing" and case.pool == "multiprocessing":
        return "reference", "1.00", "-"
    if reference is None:
        return f"<= {row.limit:.2f}x {row.reference} (not measured)", "-", "-"
    if row.reference == "seconds" and quick:
        return "n/a (--quick)", "-", "-"
    ratio = median["seconds"] / reference
    if row.reference == "seconds":
        goal = f"<= {row.limit:g} s"
        passed = ratio <= 1
    else:
        goal = f"<= {row.limit:.2f}x {row.reference} {reference:.1f} s"
        passed = ratio <= row.limit
    if row.peak_mib is not None:
        goal += f", <= {row.peak_mib:g} MiB"
        passed = passed and median["peak_mib"] <= row.peak_mib
    return goal, f"{ratio:.2f}", "pass" if passed else "FAIL"


def reference_seconds(case: Case, medians: dict) -> float | None:
    row = case.row
    if row.reference == "ideal":
        return skewed_ideal_seconds(case.num_tasks, case.slots, case.task)
    if row.reference == "seconds":
        return float(row.limit)
    found = [m for c, m in medians.items() if c.row == row and c.pool == "multiprocessing"]
    return found[0]["seconds"] if found else None


def table(cases: list[Case], runs: dict, loads: dict, errors: dict, quick: bool) -> list[str]:
    medians = {case: summarize(runs[case]) for case in cases if runs[case]}
    header = (
        f"{'row':<13} {'pool':<24} {'tasks':>9} {'wall s':>8} {'(min-max)':>15} "
        f"{'peak MiB':>9} {'load1':>6}  {'goal':<38} {'ratio':>6}  verdict"
    )
    lines = [header, "-" * len(header)]
    for case in cases:
        start = f"{case.row.name:<13} {case.factory:<24} {case.num_tasks:>9,}"
        if case not in medians:
            lines.append(f"{start} {errors[case].splitlines()[0][:120]}")
            continue
        median = medians[case]
        goal, ratio, verdict = judge(case, median, reference_seconds(case, medians), quick)
        spread = f"({median['min']:.2f}-{median['max']:.2f})"
        lines.append(
            f"{start} {median['seconds']:>8.2f} {spread:>15} {median['peak_mib']:>9.1f} "
            f"{loads[case]:>6.2f}  {goal:<38} {ratio:>6}  {verdict}"
        )
    return lines


def describe_checkout() -> str:
    def git(*args: str) -> str:
        completed = subprocess.run(["git", "-C", CHECKOUT, *args], capture_output=True, text=True)
        return completed.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = (
        " (with uncommitted changes)"
        if git("status", "--porcelain", "--untracked-files=no")
        else ""
    )
    return f"{commit} on {git('rev-parse', '--abbrev-ref', 'HEAD') or '?'}{dirty}"


def command_line() -> str:
    python_path = os.environ.get("PYTHONPATH", "")
    script = os.path.abspath(sys.argv[0])
    return (
        f"cd {shlex.quote(os.getcwd())} && PYTHONPATH={shlex.quote(python_path)} "
        f"{shlex.join([sys.executable, script, *sys.argv[1:]])}"
    )


def main(argv: list[str]) -> None:
    args = parse_arguments(argv)
    cwd = os.path.realpath(os.getcwd())
    if os.path.commonpath([cwd, os.path.realpath(CHECKOUT)]) == os.path.realpath(CHECKOUT):
        sys.exit(
            f"run from a scratch directory outside the checkout {CHECKOUT}: the maps' "
            "work_dirs (./.pypoolparty) would be made inside it"
        )
    load_before = " ".join(f"{load:.2f}" for load in os.getloadavg())
    started = datetime.datetime.now(datetime.timezone.utc)
    cases = select_cases(args)
    runs, loads, errors = measure_all(cases, args.repeat, args.timeout)
    load_after = " ".join(f"{load:.2f}" for load in os.getloadavg())
    minutes = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds() / 60
    print(
        f"Issue 12 balance benchmark, {started:%Y-%m-%d %H:%M} UTC, {minutes:.0f} min, "
        f"checkout {describe_checkout()}, {os.cpu_count()} CPUs, slots {args.slots}"
    )
    print(f"command: {command_line()}")
    print(f"load average (1, 5, 15 min) before: {load_before}; after: {load_after}")
    print(
        f"wall s: median of {args.repeat} run(s) of the map; peak MiB: median ru_maxrss of "
        "the submitting process (RUSAGE_SELF), a fresh process per run; load1: 1-min load "
        "average when the case ended; ratio: wall s over the ideal, over multiprocessing's "
        "wall s in this run, or over the goal's seconds"
    )
    if args.quick:
        print("--quick: small sizes; the verdicts are not the issue's goals")
    print("\n".join(table(cases, runs, loads, errors, args.quick)))
    for case, error in errors.items():
        if error.startswith("error"):
            print(f"\n{case.row.name} {case.factory}: {error}")


if __name__ == "__main__":
    main(sys.argv[1:])
