"""Shell commands as tasks: :func:`shell` and its result, :class:`ShellResult`.

``pool.map(pypoolparty.shell, commands)`` runs each command with ``bash -c``
in a job and returns, per command, its exit status, stdout and stderr, and
where and when it ran. A
command that fails is a result like any other, not an exception (unless
``check=True``), so one failing command does not stop a map; ``pypoolparty
run TASKLIST`` (:mod:`pypoolparty.tasklist`) is built on it.

:func:`shell` is a plain module-level function, so it pickles by reference
(and so does a :func:`functools.partial` of it); the job imports this module,
which the worker finds through the submitter's ``sys.path``.

While a command runs in a map, its stdout and stderr go to files of its own
in the map's session directory, ``running_output/<itask>.stdout`` and
``.stderr`` (0600 in a 0700 directory; this module owns the names), so that
``pypoolparty stdout`` shows what a long task has written so far; when it
ends they are read into its :class:`ShellResult` and removed. A job killed
while its command ran leaves them, until the task runs again.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence

BASH = "/bin/bash"
NOT_STARTED = 127
"""The exit status of a command that could not start, as bash gives it."""
KILL_GRACE_PERIOD = 5.0
"""Seconds a timed-out command's process group has between SIGTERM and SIGKILL,
to write what it wants to (``trap ... TERM``), as PyTaskFarmer and GNU parallel give."""
RUNNING_OUTPUT_DIRECTORY = "running_output"
"""In the session directory: the output files of the commands running now."""
RUNNING_TASK_MODULE = "_pypoolparty_running_task"
"""The worker's running-task module (owned by :mod:`pypoolparty.checkpoint`)."""


@dataclasses.dataclass(frozen=True)
class ShellResult:
    """What running one shell command gave.

    Attributes
    ----------
    command : str
        The command, as given to ``bash -c``.
    returncode : int
        Its exit status; ``-N`` if signal N killed it (as in :mod:`subprocess`).
    stdout, stderr : bytes
        Everything it wrote to them (decode with :meth:`text`).
    timed_out : bool
        Whether ``timeout`` ran out and its process group was killed.
    timeout : float or None
        The timeout it ran with, in seconds.
    host : str or None
        The host it ran on.
    pid : int or None
        The process that ran it (the job's worker process).
    start, end : float or None
        When it started and ended, in seconds since the epoch.

    ``host``, ``pid``, ``start`` and ``end`` say where and when, for the
    timeline of ``pypoolparty run``; they take no part in comparisons.
    """

    command: str
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    timeout: float | None = None
    host: str | None = dataclasses.field(default=None, compare=False, repr=False)
    pid: int | None = dataclasses.field(default=None, compare=False, repr=False)
    start: float | None = dataclasses.field(default=None, compare=False, repr=False)
    end: float | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """Whether it exited with status 0 (and so in time)."""
        return self.returncode == 0 and not self.timed_out

    def text(self, stream: str = "stdout") -> str:
        """``stdout`` or ``stderr`` decoded as UTF-8 (undecodable bytes replaced)."""
        return getattr(self, stream).decode("utf-8", errors="replace")

    def describe(self) -> str:
        """``exit status 3``, ``killed by SIGSEGV``, ``timed out after 10 s``."""
        if self.timed_out:
            return f"timed out after {self.timeout:g} s"
        return describe_returncode(self.returncode)

    def check_returncode(self) -> None:
        """Raise as :func:`subprocess.run` with ``check=True`` would.

        Raises
        ------
        subprocess.TimeoutExpired
            If the command timed out.
        subprocess.CalledProcessError
            If its exit status is not 0.
        """
        if self.timed_out:
            raise subprocess.TimeoutExpired(self.command, self.timeout, self.stdout, self.stderr)
        if self.returncode != 0:
            raise subprocess.CalledProcessError(
                self.returncode, self.command, self.stdout, self.stderr
            )


def describe_returncode(returncode: int) -> str:
    """``exit status N``, or ``killed by SIGNAME`` for a negative one."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def shell(
    command: str,
    timeout: float | None = None,
    cwd: str | os.PathLike | None = None,
    check: bool = False,
) -> ShellResult:
    """Run ``command`` with ``bash -c`` and return its exit status and output.

    The command runs in a process group of its own (in the job's session),
    with stdin from ``/dev/null`` (many tasks at once must not compete for a
    terminal). If the job is stopped while it runs (``scancel``, a time
    limit, Ctrl-C of the map), the group is killed with it, so no command
    outlives its task.

    Parameters
    ----------
    command : str
        A bash command line: pipes, quoting, ``&&`` and variables work as in
        a terminal.
    timeout : float, optional
        Seconds the command may run. Then its whole process group gets
        SIGTERM, and SIGKILL :data:`KILL_GRACE_PERIOD` seconds later if still
        there; the result says ``timed_out``. ``None``: no limit.
    cwd : str or path-like, optional
        Where it runs. Default: the job's working directory, which the pool
        sets to the directory the map was called from when the node sees it.
    check : bool
        Raise, instead of returning, when the command fails.

    Returns
    -------
    ShellResult

    Raises
    ------
    subprocess.CalledProcessError
        With ``check=True``, if the exit status is not 0.
    subprocess.TimeoutExpired
        With ``check=True``, if ``timeout`` ran out.
    TypeError, ValueError
        If ``command`` is not a string, or ``timeout`` not a number > 0.
    """
    if not isinstance(command, str):
        raise TypeError(f"command must be a str, not {type(command).__name__}: {command!r}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0, not {timeout!r}")
    where = {"host": socket.gethostname(), "pid": os.getpid(), "start": time.time()}
    with _output_files() as (stdout_file, stderr_file):
        try:
            process = subprocess.Popen(
                [BASH, "-c", command],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=stdout_file,
                stderr=stderr_file,
                **_OWN_PROCESS_GROUP,
            )
        except OSError as error:
            # No such directory on this node, no bash: the command failed, as
            # bash reports a command it cannot run (127), not the task.
            place = os.path.abspath(cwd) if cwd is not None else os.getcwd()
            message = f"pypoolparty.shell: cannot run {BASH} in {place} on this host: {error}\n"
            result = ShellResult(
                command,
                NOT_STARTED,
                b"",
                message.encode(),
                False,
                timeout,
                **where,
                end=time.time(),
            )
            if check:
                result.check_returncode()
            return result
        timed_out = False
        try:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(process)
        except BaseException:
            # The job is being stopped (the worker's Interrupted, KeyboardInterrupt):
            # its own group is gone with it, this one must go too.
            _signal_group(process.pid, signal.SIGKILL)
            process.kill()
            process.wait()
            raise
        end = time.time()
        stdout, stderr = _read_back(stdout_file), _read_back(stderr_file)
    result = ShellResult(
        command, process.returncode, stdout, stderr, timed_out, timeout, **where, end=end
    )
    if check:
        result.check_returncode()
    return result


class _output_files:
    """The command's stdout and stderr files: in a map, named by its task; else anonymous.

    Named files are removed on the way out, whether the command ended or the
    job is being stopped: the output is then in the result, or lost with the
    task, which runs again. A second command the same task runs at the same
    time (from a thread), or a session directory it cannot write to, gets
    anonymous files: the command's output is never at stake.
    """

    _in_use: set[str] = set()
    _lock = threading.Lock()

    def __enter__(self):
        self.paths = self._claim(_running_output_paths())
        self.files = []
        if self.paths is not None:
            try:
                os.makedirs(os.path.dirname(self.paths[0]), mode=0o700, exist_ok=True)
                self.files = [_open_private(path) for path in self.paths]
            except OSError:
                self.__exit__()
                self.paths = None
        if self.paths is None:
            self.files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
        return self.files

    def __exit__(self, *exc):
        for file in self.files:
            file.close()
        for path in self.paths or ():
            try:
                os.remove(path)
            except OSError:
                pass
        with self._lock:
            self._in_use.difference_update(self.paths or ())
        return False

    @classmethod
    def _claim(cls, paths: tuple[str, str] | None) -> tuple[str, str] | None:
        if paths is None:
            return None
        with cls._lock:
            if paths[0] in cls._in_use:
                return None
            cls._in_use.update(paths)
        return paths


def _open_private(path: str):
    return os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600), "w+b")


def _read_back(file) -> bytes:
    file.seek(0)
    return file.read()


def _running_output_paths() -> tuple[str, str] | None:
    """The output files of the task running in this process, if it runs in a map."""
    running = sys.modules.get(RUNNING_TASK_MODULE)
    session_dir = getattr(running, "session_dir", None)
    itask = getattr(running, "itask", None)
    if session_dir is None or itask is None:
        return None
    return (
        running_output_path(session_dir, itask, "stdout"),
        running_output_path(session_dir, itask, "stderr"),
    )


def running_output_path(session_dir: str, itask: int, stream: str) -> str:
    """The file a running command of task ``itask`` writes its ``stream`` to.

    Parameters
    ----------
    session_dir : str
        The map's session directory.
    itask : int
        The task's index in the map.
    stream : str
        ``stdout`` or ``stderr``.

    Returns
    -------
    str
        ``<session_dir>/running_output/<itask>.<stream>``; it exists while
        the command runs (and after a job was killed while it ran).
    """
    return os.path.join(session_dir, RUNNING_OUTPUT_DIRECTORY, f"{itask}.{stream}")


_OWN_PROCESS_GROUP = (
    {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
)
"""A process group of its own, to kill the command and its children at its
timeout, but not a session of its own: whatever kills the job's session (the
local pool's cancel, a scheduler's) must reach the command too."""


def _kill_group(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, to the command's process group."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=KILL_GRACE_PERIOD)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.kill()
        process.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def run_commands(
    pool,
    commands: Sequence[str],
    timeout: float | None = None,
    cwd: str | os.PathLike | None = None,
    check: bool = False,
    chunksize: int | None = None,
) -> list[ShellResult]:
    """Run shell commands as the tasks of one map of ``pool``; see :meth:`Pool.run_commands`."""
    commands = list(commands)
    for number, command in enumerate(commands):
        if not isinstance(command, str):
            raise TypeError(
                f"command {number} must be a str, not {type(command).__name__}: {command!r}"
            )
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0, not {timeout!r}")
    where = os.path.abspath(os.fspath(cwd if cwd is not None else os.getcwd()))
    call = _Call(timeout, where, check)
    return pool.map(call, commands, chunksize=chunksize)


CALL_NAME = "pypoolparty.shell"
"""How a map of :func:`run_commands` names its function (``session.json``,
``pypoolparty status``), for people and for the task-list runner."""


@dataclasses.dataclass(frozen=True, repr=False)
class _Call:
    """:func:`shell` with fixed options: picklable by reference, with a readable repr."""

    timeout: float | None
    cwd: str | None
    check: bool

    def __repr__(self) -> str:
        return f"{CALL_NAME}(timeout={self.timeout!r}, cwd={self.cwd!r}, check={self.check!r})"

    def __call__(self, command: str) -> ShellResult:
        return shell(command, timeout=self.timeout, cwd=self.cwd, check=self.check)


# -- reading a pickled ShellResult without running code ---------------------------


def result_status(pickled: bytes) -> tuple[int, bool] | None:
    """``(returncode, timed_out)`` of a pickled :class:`ShellResult`; None if it is none.

    For an inspector of a work_dir (``pypoolparty timeline``, ``stdout``):
    it reads the pickle as plain data and never runs code from it.
    """
    fields = result_fields(pickled)
    if fields is None or not isinstance(fields.get("returncode"), int):
        return None
    return fields["returncode"], bool(fields.get("timed_out"))


def result_fields(pickled: bytes) -> dict | None:
    """The fields of a pickled :class:`ShellResult` as a dict; None if it is none."""
    try:
        loaded = _ResultUnpickler(io.BytesIO(pickled)).load()
    except Exception:  # not a ShellResult: refused, cut off or foreign
        return None
    return dict(loaded.__dict__) if isinstance(loaded, _PlainResult) else None


class _PlainResult:
    """Stands in for ShellResult: the pickle's fields land in its ``__dict__``."""


class _ResultUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) == (__name__, "ShellResult"):
            return _PlainResult
        raise pickle.UnpicklingError(f"not a ShellResult: {module}.{name}")
