"""What the three dummy schedulers share: their state, their faults, their runner.

Standard library only: the dummies stand in for foreign programs and never
import pypoolparty. Every dummy keeps its files in the directory named by
``PYPOOLPARTY_DUMMY_QUEUE_DIR``:

- ``<queue>_state.json``, changed only under an ``fcntl`` lock on
  ``<queue>_state.lock`` (:func:`locked_state`);
- ``faults.json``, the fault injection settings shared by all dummies, read
  at every use (:func:`faults`);
- ``<queue>_runner.log``, the standard output and error of the runner: one
  detached process per queue that starts the jobs (:func:`start_runner`,
  :func:`serve`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

QUEUE_DIR_VARIABLE = "PYPOOLPARTY_DUMMY_QUEUE_DIR"
FAULTS_FILE = "faults.json"
COMMAND_FAULTS = ("fail", "hang", "garbage")
"""The kinds of command fault, in the order they are taken: ``<kind>_commands`` in faults.json."""
COMMON_FAULTS = {
    "seed": 0,
    "slots": 2,
    "error_probability": 0.0,
    "vanish_probability": 0.0,
    "unknown_state_probability": 0.0,
    "fail_commands": {},
    "hang_commands": {},
    "garbage_commands": {},
}
"""faults.json's keys that mean the same to every dummy, with their defaults."""
GARBAGE = "\x1b[31m#### garbage ;; \ufffd |x <html><body>Bad Gateway</body>\x00\x7f"
"""What a command answering with garbage prints: no number, no known word."""


def queue_dir(scheduler: str) -> str:
    """The directory of the dummy's files, made if missing.

    Parameters
    ----------
    scheduler : str
        The scheduler the dummy plays (``"SLURM"``), for the error message.

    Returns
    -------
    str
        The value of ``PYPOOLPARTY_DUMMY_QUEUE_DIR``.

    Raises
    ------
    SystemExit
        With code 1 and a message on standard error, if the variable is not set.
    """
    path = os.environ.get(QUEUE_DIR_VARIABLE)
    if not path:
        sys.stderr.write(
            f"error: the dummy {scheduler} needs {QUEUE_DIR_VARIABLE} set to a directory "
            "for its state\n"
        )
        sys.exit(1)
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def locked_state(directory: str, queue: str, empty: dict) -> Iterator[dict]:
    """Yield the queue's state under an exclusive lock; write it back if it changed.

    Parameters
    ----------
    directory : str
        The dummy's directory (:func:`queue_dir`).
    queue : str
        The dummy's name (``"slurm"``, ``"sge"``, ``"htcondor"``): names the files.
    empty : dict
        The state before the first command. It should hold ``"runner_pid": None``
        and ``"faults_used": {}``.

    Raises
    ------
    OSError
        If the directory cannot be read or written.
    """
    with open(os.path.join(directory, f"{queue}_state.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = os.path.join(directory, f"{queue}_state.json")
        try:
            with open(path) as file:
                state = json.load(file)
        except FileNotFoundError:
            state = json.loads(json.dumps(empty))
        before = json.dumps(state, sort_keys=True)
        yield state
        if json.dumps(state, sort_keys=True) != before:
            # Readers that do not lock (the tests) never see half a file.
            with open(f"{path}.part", "w") as file:
                json.dump(state, file)
            os.replace(f"{path}.part", path)


def faults(directory: str, defaults: dict) -> dict:
    """The fault injection settings of ``faults.json`` over :data:`COMMON_FAULTS` and ``defaults``.

    Raises
    ------
    json.JSONDecodeError
        If faults.json is not JSON.
    """
    settings = {**COMMON_FAULTS, **defaults}
    try:
        with open(os.path.join(directory, FAULTS_FILE)) as file:
            settings.update(json.load(file))
    except FileNotFoundError:
        pass
    return settings


def generator(seed: object, *about: object) -> random.Random:
    """A random generator for one decision: the same seed and ``about`` make the same choice."""
    return random.Random(":".join(str(part) for part in (seed, *about)))


def draw(seed: object, *about: object) -> float:
    """A reproducible number in [0, 1) for one decision (see :func:`generator`)."""
    return generator(seed, *about).random()


def take_command_fault(state: dict, settings: dict, command: str) -> str | None:
    """The fault this call of ``command`` plays: ``"fail"``, ``"hang"``, ``"garbage"`` or None.

    ``fail_commands: {"qsub": 2}`` in faults.json makes the next two calls of
    qsub fail, and so on. Each fault played is counted in ``state["faults_used"]``
    (in faults.json's shape), so "the next N calls" holds across processes.
    Call with the state locked.
    """
    used = state["faults_used"]
    for kind in COMMAND_FAULTS:
        key = f"{kind}_commands"
        count = used.get(key, {}).get(command, 0)
        if count < int(settings[key].get(command, 0)):
            used.setdefault(key, {})[command] = count + 1
            return kind
    return None


def count_job_fault(state: dict, kind: str) -> None:
    """Count a fault played on a job (``error``, ``vanish``, ``unknown``) in
    ``state["faults_used"]["job_faults"]``, so that a test can tell faults did
    happen. Call with the state locked."""
    played = state["faults_used"].setdefault("job_faults", {})
    played[kind] = played.get(kind, 0) + 1


def wants_command_fault(settings: dict, command: str) -> bool:
    """Whether faults.json gives ``command`` any command fault at all.

    A command that wants none need not take the state's lock to look.
    """
    return any(settings[f"{kind}_commands"].get(command, 0) for kind in COMMAND_FAULTS)


def play_command_fault(fault: str | None, failure_message: str) -> None:
    """Act out a command fault; return only if ``fault`` is None.

    ``"fail"`` prints ``failure_message`` (the scheduler's own words for an
    unreachable server) to standard error and exits 1; ``"garbage"`` prints
    garbage and exits 0; ``"hang"`` hangs until killed.
    """
    if fault == "fail":
        sys.stderr.write(failure_message.rstrip("\n") + "\n")
        sys.exit(1)
    if fault == "garbage":
        print(GARBAGE)
        sys.exit(0)
    if fault == "hang":
        hang_until_killed()


def hang_until_killed() -> None:
    """Hang like a command whose server never answers."""
    while True:
        time.sleep(3600)


def process_is_alive(pid: int | None, command_part: str) -> bool:
    """Whether ``pid`` is a live process whose command line holds ``command_part``.

    A zombie counts as dead (PID 1 of a container may never reap it), and so
    does a process that reused the pid.
    """
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as file:
            status = file.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            command_line = file.read()
    except OSError:
        return False
    return status != "Z" and command_part.encode() in command_line


def start_runner(directory: str, queue: str, state: dict, runner_path: str) -> None:
    """Start the queue's runner, detached, unless ``state["runner_pid"]`` is alive.

    Call with the state locked. The runner outlives the command (and the
    caller's process group): it ends when its queue is idle (:func:`serve`).

    Raises
    ------
    OSError
        If the runner cannot be started.
    """
    if process_is_alive(state.get("runner_pid"), runner_path):
        return
    with open(os.path.join(directory, f"{queue}_runner.log"), "a") as log:
        process = subprocess.Popen(
            [sys.executable, runner_path],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    state["runner_pid"] = process.pid


def serve(
    locked_state: Callable[[], contextlib.AbstractContextManager[dict]],
    step: Callable[[dict], bool],
    tick: float,
    idle_seconds: float,
) -> None:
    """The runner's loop: ``step`` the locked state every ``tick`` seconds.

    ``step`` starts and reaps jobs and returns whether anything is still to
    run. The loop ends once it has been idle for ``idle_seconds``, or when
    another runner took over.
    """
    idle_since = None
    while True:
        with locked_state() as state:
            if state.get("runner_pid") != os.getpid():
                return  # another runner took over
            busy = step(state)
            now = time.monotonic()
            idle_since = None if busy else now if idle_since is None else idle_since
            if idle_since is not None and now - idle_since >= idle_seconds:
                state["runner_pid"] = None
                return
        time.sleep(tick)


class OutputError(OSError):
    """A job's standard output or error file cannot be opened; ``stream`` says which."""

    def __init__(self, stream: str, error: OSError, path: str) -> None:
        super().__init__(error.errno, error.strerror, path)
        self.stream = stream


def start_job(
    argv: list[str], cwd: str, env: dict, stdout_path: str, stderr_path: str, mode: str = "a"
) -> subprocess.Popen:
    """Start a job's process as an execution daemon would.

    The job runs in a session (and process group) of its own, which a cancel
    kills (:func:`kill_process_group`), with no standard input.

    Parameters
    ----------
    mode : str
        ``"a"`` to append to the output files, ``"w"`` to truncate them.

    Raises
    ------
    OutputError
        If an output file cannot be opened.
    OSError
        If ``argv`` cannot be started.
    """
    with contextlib.ExitStack() as files:
        outputs = []
        for stream, path in (("output", stdout_path), ("error", stderr_path)):
            try:
                outputs.append(files.enter_context(open(path, mode)))
            except OSError as error:
                raise OutputError(stream, error, path) from error
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=outputs[0],
            stderr=outputs[1],
            start_new_session=True,
        )


def kill_process_group(pgid: int | None) -> None:
    """SIGKILL a job's process group, if it is still there (the runner sees it end)."""
    if pgid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
