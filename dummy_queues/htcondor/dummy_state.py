"""Shared state of the dummy HTCondor: one JSON file under an fcntl lock.

Every dummy command and the runner open the state with :func:`locked_state`,
change it, and write it back before the lock is released. The state lives in
the directory named by ``PYPOOLPARTY_DUMMY_QUEUE_DIR``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import sys
import time

STATE_NAME = "htcondor_state.json"
LOCK_NAME = "htcondor_state.lock"
FAULTS_NAME = "faults.json"
HOST = "<127.0.0.1:9618?addrs=127.0.0.1-9618&alias=dummy&noUDP&sock=schedd_dummy>"


def queue_dir() -> str:
    path = os.environ.get("PYPOOLPARTY_DUMMY_QUEUE_DIR")
    if not path:
        sys.stderr.write(
            "ERROR: the dummy HTCondor needs PYPOOLPARTY_DUMMY_QUEUE_DIR (a directory for "
            "its state)\n"
        )
        sys.exit(1)
    os.makedirs(path, exist_ok=True)
    return path


def empty_state() -> dict:
    return {"next_cluster": 1, "runner_pid": None, "clusters": {}, "jobs": {}, "fault_uses": {}}


@contextlib.contextmanager
def locked_state():
    """Yield the state dict; write it back when the block ends without error."""
    directory = queue_dir()
    with open(os.path.join(directory, LOCK_NAME), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = os.path.join(directory, STATE_NAME)
        try:
            with open(path) as file:
                state = json.load(file)
        except FileNotFoundError:
            state = empty_state()
        yield state
        temporary = path + ".part"
        with open(temporary, "w") as file:
            json.dump(state, file)
        os.replace(temporary, path)


def faults() -> dict:
    """The fault injection settings of ``faults.json``; {} if there is none."""
    try:
        with open(os.path.join(queue_dir(), FAULTS_NAME)) as file:
            return json.load(file)
    except FileNotFoundError:
        return {}


def chance(kind: str, key: str) -> float:
    """A reproducible random number in [0, 1) for ``kind`` of fault and ``key``."""
    return random.Random(f"{faults().get('seed', 0)}:{kind}:{key}").random()


def take_command_fault(state: dict, command: str) -> str | None:
    """``fail``, ``hang``, ``garbage`` or None for this call of ``command``.

    ``fail_commands: {"condor_q": 2}`` makes the next two calls fail, and so on.
    """
    settings = faults()
    for kind in ("fail", "hang", "garbage"):
        budget = settings.get(f"{kind}_commands", {}).get(command, 0)
        key = f"{kind}:{command}"
        used = state["fault_uses"].get(key, 0)
        if used < budget:
            state["fault_uses"][key] = used + 1
            return kind
    return None


def hang_until_killed() -> None:
    while True:
        time.sleep(3600)


def job_id(cluster: int, proc: int) -> str:
    return f"{cluster}.{proc}"


def owner() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return "nobody"
