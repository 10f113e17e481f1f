"""Run benchmark cases in fresh processes; report wall time and peak memory.

Each case is one ``pool.map(tasks.<task>, range(num_tasks))`` in a process of
its own, so its peak resident memory is that of the submitting process alone:
``resource.getrusage(RUSAGE_SELF).ru_maxrss``, read by the case's process
itself as soon as the map returns (before its results are checked). Workers
are not counted: on a cluster they run elsewhere, and the local pool's and
multiprocessing's workers are processes of their own. Cases run in the
current directory, so run a benchmark from a scratch directory that the jobs'
user can write (the default work_dir is ``./.pypoolparty``).

HTCondor never runs jobs as root: run as root, an ``htcondor`` case runs as
the job user (``PYPOOLPARTY_HTCONDOR_USER``, default ``condoruser``) with the
venv the real-HTCondor tests make (``PYPOOLPARTY_HTCONDOR_VENV``, default
``/var/tmp/pypoolparty-htcondor-venv``), in a directory of its own below the
current one; the checkout and the current directory must be readable by that
user.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pwd
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = [("trivial", 1000), ("sleep_half_second", 100)]
GRACE_SECONDS = 60
"""After a timeout, how long a case has to cancel its jobs on SIGINT (as on Ctrl-C)."""


class CaseFailed(RuntimeError):
    """A case exited with an error or ran out of time."""


def run_case(pool_factory: str, task: str, num_tasks: int, timeout: float | None = None) -> dict:
    """Measure ``pool.map(tasks.<task>, range(num_tasks))`` in a new process.

    Returns ``{"seconds": wall time of the map, "peak_mib": peak RSS of the
    submitting process}``. Raises :class:`CaseFailed` with the case's stderr
    when it fails, or after ``timeout`` seconds (it is then interrupted as by
    Ctrl-C, so that it cancels its jobs).
    """
    command = [sys.executable, os.path.abspath(__file__), pool_factory, task, str(num_tasks)]
    python_path = os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")])
    options = {"env": dict(os.environ, PYTHONPATH=python_path)}
    if pool_factory.partition(":")[0] == "htcondor" and os.getuid() == 0:
        command[0], options = _as_job_user(python_path)
    stdout = _communicate(command, options, f"{pool_factory} {task} {num_tasks}", timeout)
    if "cwd" in options:  # the job user's directory; kept when the case failed
        shutil.rmtree(options["cwd"], ignore_errors=True)
    return json.loads(stdout.strip().splitlines()[-1])


def _communicate(command: list[str], options: dict, case: str, timeout: float | None) -> str:
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        raise CaseFailed(f"{case}: no end after {timeout} s\n{stderr}") from None
    if process.returncode != 0:
        raise CaseFailed(f"{case} failed:\n{stderr}")
    return stdout


def _as_job_user(python_path: str) -> tuple[str, dict]:
    """The interpreter and Popen options that run a case as HTCondor's job user."""
    user = pwd.getpwnam(os.environ.get("PYPOOLPARTY_HTCONDOR_USER", "condoruser"))
    venv = os.environ.get("PYPOOLPARTY_HTCONDOR_VENV", "/var/tmp/pypoolparty-htcondor-venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        raise CaseFailed(
            f"no interpreter for HTCondor's job user {user.pw_name} at {python}: run the "
            "real-HTCondor tests once (they make it) or set PYPOOLPARTY_HTCONDOR_VENV"
        )
    # The user's own directory below the scratch directory, for its work_dir.
    cwd = tempfile.mkdtemp(prefix="htcondor-", dir=os.getcwd())
    os.chown(cwd, user.pw_uid, user.pw_gid)
    env = {
        "HOME": user.pw_dir,
        "USER": user.pw_name,
        "LOGNAME": user.pw_name,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": python_path,
    }
    options = {"env": env, "cwd": cwd, "user": user.pw_uid, "group": user.pw_gid}
    return python, dict(options, extra_groups=[])


def summarize(runs: list[dict]) -> dict:
    """The median of :func:`run_case` results, with the spread of their seconds."""
    walls = [run["seconds"] for run in runs]
    return {
        "seconds": statistics.median(walls),
        "min": min(walls),
        "max": max(walls),
        "peak_mib": statistics.median(run["peak_mib"] for run in runs),
    }


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
            run = summarize([run_case(pool_factory, task, num_tasks) for _ in range(repeat)])
            spread = f"{run['seconds']:.2f} ({run['min']:.2f}-{run['max']:.2f})"
            print(
                f"{pool_factory:<22} {task:<18} {num_tasks:>6} {spread:>26} {run['peak_mib']:>9.1f}"
            )


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
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    if hasattr(pool, "terminate"):
        pool.terminate()
    # Checked one by one, without running the tasks again or a second list.
    if len(results) != num_tasks or any(
        result != tasks.expected_result(task, x) for x, result in enumerate(results)
    ):
        raise AssertionError(f"wrong results of {task} on {pool_factory}")
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024}))


if __name__ == "__main__":
    _measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))
