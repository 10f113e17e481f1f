"""Helpers shared by the HTCondor tests (dummy queue set-up, polling)."""

from __future__ import annotations

import json
import os
import subprocess

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUMMY_DIR = os.path.join(REPO_DIR, "dummy_queues", "htcondor")


def dummy_paths() -> dict:
    """Pool options that point a pool at the dummy commands."""
    return {
        f"{name}_path": os.path.join(DUMMY_DIR, name)
        for name in ("condor_submit", "condor_q", "condor_rm")
    }


def write_faults(queue_dir: str, **faults) -> None:
    with open(os.path.join(queue_dir, "faults.json"), "w") as file:
        json.dump(faults, file)


def dummy_state(queue_dir: str) -> dict:
    with open(os.path.join(queue_dir, "htcondor_state.json")) as file:
        return json.load(file)


def dummy_condor_q(env: dict | None = None) -> list[str]:
    """The job ids the dummy's condor_q lists now."""
    completed = subprocess.run(
        [os.path.join(DUMMY_DIR, "condor_q"), "-af:j", "JobStatus"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return [line.split()[0] for line in completed.stdout.splitlines() if line.strip()]


def max_concurrently_executing(event_log_path: str) -> int:
    """The most procs the event log shows between their 001 and their end."""
    from pypoolparty.htcondor import eventlog

    with open(event_log_path, "rb") as file:
        events, _ = eventlog.parse_events(file.read())
    running, most = set(), 0
    for event in events:
        key = (event.cluster, event.proc)
        if event.code == eventlog.EXECUTING:
            running.add(key)
        elif event.code in (eventlog.TERMINATED, eventlog.ABORTED, eventlog.HELD):
            running.discard(key)
        most = max(most, len(running))
    return most
