"""Helpers for the Grid Engine tests: the dummy Grid Engine, polling, the session log."""

from __future__ import annotations

import json
import os
import subprocess

from waiting import wait_for


class DummySge:
    """One dummy Grid Engine: its state directory and its commands."""

    def __init__(self, dummy_queues_dir: str, state_dir: str) -> None:
        self.commands_dir = os.path.join(dummy_queues_dir, "sge")
        self.state_dir = state_dir

    def path(self, command: str) -> str:
        return os.path.join(self.commands_dir, command)

    def pool_paths(self) -> dict:
        return {f"{c}_path": self.path(c) for c in ("qsub", "qstat", "qdel")}

    def set_faults(self, **faults) -> None:
        with open(os.path.join(self.state_dir, "faults.json"), "w") as file:
            json.dump(faults, file)

    def run(self, command: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.path(command), *args], capture_output=True, text=True, timeout=60
        )

    def state(self) -> dict:
        try:
            with open(os.path.join(self.state_dir, "sge_state.json")) as file:
                return json.load(file)
        except FileNotFoundError:
            return {"jobs": {}, "runner_pid": None}

    def jobs(self) -> dict:
        return self.state()["jobs"]

    def task_states(self) -> list[str]:
        return [t["state"] for job in self.jobs().values() for t in job["tasks"].values()]

    def clear(self) -> None:
        """Delete every job and wait for the runner to go."""
        numbers = list(self.jobs())
        if numbers:
            self.run("qdel", *numbers)
        wait_for(lambda: not self.jobs() and not self.state().get("runner_pid"), 30)


def session_events(work_dir) -> list[dict]:
    """The events of every session log (``log.jsonl``) below ``work_dir``."""
    found = []
    for root, _, files in os.walk(work_dir):
        if "log.jsonl" in files:
            with open(os.path.join(root, "log.jsonl")) as file:
                found += [json.loads(line) for line in file if line.strip()]
    return found
