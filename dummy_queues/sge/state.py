"""The dummy Grid Engine's shared state: one JSON file, changed under an fcntl lock.

Everything lives in the directory named by ``PYPOOLPARTY_DUMMY_QUEUE_DIR``:
``sge_state.json`` (jobs, next job number, the runner's pid, faults used up),
``sge_state.lock``, ``sge_spool/`` (job scripts copied at submission, as the
real qmaster does), ``sge_runner.log`` and the optional ``faults.json`` (see
``common.py``).
"""

import os

import common

QUEUE = "all.q"
PARALLEL_ENVIRONMENTS = ("smp",)
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")
EMPTY_STATE = {"next_job_number": 1, "runner_pid": None, "faults_used": {}, "jobs": {}}


def queue_dir():
    return common.queue_dir("Grid Engine")


def spool_dir(directory):
    path = os.path.join(directory, "sge_spool")
    os.makedirs(path, exist_ok=True)
    return path


def locked(directory):
    """The state under the lock, as a context manager (see ``common.locked_state``)."""
    return common.locked_state(directory, "sge", EMPTY_STATE)


def faults(directory):
    """The fault injection settings of ``faults.json`` (all off if absent)."""
    return common.faults(directory, {"error_states": ["Eqw"]})


def take_command_fault(directory, command):
    """The fault this call of ``command`` plays (see ``common.take_command_fault``)."""
    settings = faults(directory)
    if not common.wants_command_fault(settings, command):
        return None
    with locked(directory) as current:
        return common.take_command_fault(current, settings, command)


def chance(settings, probability_key, *about):
    """A reproducible coin toss: the same seed and ``about`` give the same answer."""
    probability = float(settings.get(probability_key, 0.0))
    if probability <= 0:
        return False
    return common.draw(settings["seed"], probability_key, *about) < probability


def choose(settings, options, *about):
    return common.generator(settings["seed"], "choose", *about).choice(list(options))


def ensure_runner(directory, current):
    """Start the detached runner unless one runs (call with the state locked)."""
    common.start_runner(directory, "sge", current, RUNNER)
