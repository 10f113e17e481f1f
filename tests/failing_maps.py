"""A map in a subprocess whose jobs fail or are interrupted, for every pool.

:func:`map_arguments` gives the command line of a script that runs a map of
six one-task chunks with ``missing_result_grace_period`` of an hour: a map
that waited for it would not end within :data:`HOUR_OF_GRACE_WOULD_HANG`.
Scenarios: ``gate`` (each task waits until the test removes the file
``<tmp_path>/gate``, to interrupt a map while its jobs run) and ``dies``
(task 1's worker exits with code 3 on its first attempt, without a result).
"""

from __future__ import annotations

import sys

from session_logs import session_events

SCRIPT = """
import importlib, os, sys, time

pool_module, options, work_dir, gate, scenario = sys.argv[1:6]

def wait_at_gate(x):
    # The test opens the gate (removes the file) before the map is continued.
    while os.path.exists(gate):
        time.sleep(0.05)
    return x + 100

def dies_on_first_attempt(x):
    mark = os.path.join(os.path.dirname(gate), f"ran-{x}")
    if x == 1 and not os.path.exists(mark):
        open(mark, "w").close()
        os._exit(3)  # the worker dies without a result: the job fails
    return x + 100

if __name__ == "__main__":
    module = importlib.import_module(pool_module)
    pool = module.Pool(
        work_dir=work_dir,
        missing_result_grace_period=3600,
        keep_work_dir=True,
        **{"polling_interval": 0.05, **eval(options)},
    )
    func = wait_at_gate if scenario == "gate" else dies_on_first_attempt
    print(pool.map(func, range(6), chunksize=1))
"""

HOUR_OF_GRACE_WOULD_HANG = 120
"""Seconds a subprocess may take; a map waiting the grace period takes an hour."""


def map_arguments(tmp_path, pool_module: str, options: dict, scenario: str) -> list[str]:
    """The command line of the script; its work_dir is ``tmp_path / "work"``."""
    script = tmp_path / "failing_map.py"
    script.write_text(SCRIPT)
    gate = tmp_path / "gate"
    work_dir = tmp_path / "work"
    return [
        sys.executable,
        str(script),
        pool_module,
        repr(options),
        str(work_dir),
        str(gate),
        scenario,
    ]


def running_jobs_logged(work_dir) -> bool:
    """Whether a job of the map in ``work_dir`` was seen running."""
    return any(
        e["event"] == "job_state" and e.get("state") == "running" for e in session_events(work_dir)
    )


def events_after_resume(work_dir) -> list[dict]:
    """The events of the last call, from its ``session_resumed`` on."""
    events = session_events(work_dir)
    resumed = max(i for i, e in enumerate(events) if e["event"] == "session_resumed")
    return events[resumed:]
