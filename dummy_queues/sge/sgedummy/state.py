"""The dummy Grid Engine's shared state: one JSON file, changed under an fcntl lock.

Everything lives in the directory named by ``PYPOOLPARTY_DUMMY_QUEUE_DIR``:
``sge_state.json`` (jobs, next job number, the runner's pid, faults used up),
``sge_state.lock``, ``sge_spool/`` (job scripts copied at submission, as the
real qmaster does) and the optional ``faults.json``.
"""

import contextlib
import fcntl
import json
import os
import random
import sys

ENV_DIR = "PYPOOLPARTY_DUMMY_QUEUE_DIR"
STATE_FILE = "sge_state.json"
LOCK_FILE = "sge_state.lock"
FAULTS_FILE = "faults.json"
QUEUE = "all.q"
PARALLEL_ENVIRONMENTS = ("smp",)


def queue_dir():
    path = os.environ.get(ENV_DIR)
    if not path:
        sys.stderr.write(f"error: the dummy Grid Engine needs {ENV_DIR} set to a directory\n")
        sys.exit(1)
    os.makedirs(path, exist_ok=True)
    return path


def spool_dir(directory):
    path = os.path.join(directory, "sge_spool")
    os.makedirs(path, exist_ok=True)
    return path


def empty_state():
    return {"next_job_number": 1, "runner_pid": None, "faults_used": {}, "jobs": {}}


@contextlib.contextmanager
def locked(directory):
    """Yield the state while holding the lock; write it back if no exception."""
    with open(os.path.join(directory, LOCK_FILE), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = os.path.join(directory, STATE_FILE)
        try:
            with open(path) as file:
                state = json.load(file)
        except FileNotFoundError:
            state = empty_state()
        yield state
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w") as file:
            json.dump(state, file)
        os.replace(temporary, path)


def faults(directory):
    """The fault injection settings of ``faults.json`` (all off if absent)."""
    try:
        with open(os.path.join(directory, FAULTS_FILE)) as file:
            settings = json.load(file)
    except FileNotFoundError:
        settings = {}
    settings.setdefault("seed", 0)
    settings.setdefault("slots", 2)
    settings.setdefault("error_states", ["Eqw"])
    for key in ["error_probability", "vanish_probability", "unknown_state_probability"]:
        settings.setdefault(key, 0.0)
    for key in ["fail_commands", "hang_commands", "garbage_commands"]:
        settings.setdefault(key, {})
    return settings


def take_fault(directory, kind, command):
    """Whether this call of ``command`` gets the fault ``kind`` (e.g. ``fail_commands``).

    ``faults.json`` gives how many calls get it; each one used is counted in
    the state, so "the next N calls" holds across processes.
    """
    wanted = int(faults(directory)[kind].get(command, 0))
    if wanted <= 0:
        return False
    with locked(directory) as state:
        key = f"{kind}:{command}"
        used = state["faults_used"].get(key, 0)
        if used >= wanted:
            return False
        state["faults_used"][key] = used + 1
        return True


def chance(settings, probability_key, *about):
    """A reproducible coin toss: the same seed and ``about`` give the same answer."""
    probability = float(settings.get(probability_key, 0.0))
    if probability <= 0:
        return False
    generator = random.Random(":".join(str(a) for a in (settings["seed"], probability_key) + about))
    return generator.random() < probability


def choose(settings, options, *about):
    generator = random.Random(":".join(str(a) for a in (settings["seed"], "choose") + about))
    return generator.choice(list(options))
