"""Shared state of the dummy HTCondor: one JSON file under an fcntl lock.

Every dummy command and the runner open the state with :func:`locked_state`,
change it, and write it back before the lock is released. The state
(``htcondor_state.json``) lives in the directory named by
``PYPOOLPARTY_DUMMY_QUEUE_DIR``, beside ``faults.json`` (see ``common.py``).
"""

from __future__ import annotations

import os

import common

HOST = "<127.0.0.1:9618?addrs=127.0.0.1-9618&alias=dummy&noUDP&sock=schedd_dummy>"
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")
EMPTY_STATE = {"next_cluster": 1, "runner_pid": None, "clusters": {}, "jobs": {}, "faults_used": {}}
UNREACHABLE_SCHEDD = "ERROR: Can't find address of local schedd"


def queue_dir() -> str:
    return common.queue_dir("HTCondor")


def locked_state():
    """The state under the lock, as a context manager (see ``common.locked_state``)."""
    return common.locked_state(queue_dir(), "htcondor", EMPTY_STATE)


def faults() -> dict:
    """The fault injection settings of ``faults.json``."""
    return common.faults(queue_dir(), {"error_states": []})


def chance(kind: str, key: str) -> float:
    """A reproducible random number in [0, 1) for ``kind`` of fault and ``key``."""
    return common.draw(faults()["seed"], kind, key)


def take_command_fault(state: dict, command: str) -> str | None:
    """``fail``, ``hang``, ``garbage`` or None for this call of ``command`` (state locked)."""
    return common.take_command_fault(state, faults(), command)


def start_runner(state: dict) -> None:
    """Start the runner unless one is alive (call with the state locked)."""
    common.start_runner(queue_dir(), "htcondor", state, RUNNER)


def job_id(cluster: int, proc: int) -> str:
    return f"{cluster}.{proc}"


def owner() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return "nobody"
