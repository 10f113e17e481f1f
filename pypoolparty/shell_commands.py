"""Shell commands as tasks: :func:`shell` and its result, :class:`ShellResult`.

``pool.map(pypoolparty.shell, commands)`` runs each command with ``bash -c``
in a job and returns, per command, its exit status, stdout and stderr. A
command that fails is a result like any other, not an exception (unless
``check=True``), so one failing command does not stop a map; ``pypoolparty
run TASKLIST`` (:mod:`pypoolparty.tasklist`) is built on it.

:func:`shell` is a plain module-level function, so it pickles by reference
(and so does a :func:`functools.partial` of it); the job imports this module,
which the worker finds through the submitter's ``sys.path``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

BASH = "/bin/bash"
NOT_STARTED = 127
"""The exit status of a command that could not start, as bash gives it."""
KILL_GRACE_PERIOD = 5.0
"""Seconds a timed-out command's process group has between SIGTERM and SIGKILL,
to write what it wants to (``trap ... TERM``), as PyTaskFarmer and GNU parallel give."""


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
    """

    command: str
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    timeout: float | None = None

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
    try:
        process = subprocess.Popen(
            [BASH, "-c", command],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **_OWN_PROCESS_GROUP,
        )
    except OSError as error:
        # No such directory on this node, no bash: the command failed, as
        # bash reports a command it cannot run (127), not the task.
        where = os.path.abspath(cwd) if cwd is not None else os.getcwd()
        message = f"pypoolparty.shell: cannot run {BASH} in {where} on this host: {error}\n"
        result = ShellResult(command, NOT_STARTED, b"", message.encode(), False, timeout)
        if check:
            result.check_returncode()
        return result
    timed_out = False
    try:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            stdout, stderr = _kill_group(process)
    except BaseException:
        # The job is being stopped (the worker's Interrupted, KeyboardInterrupt):
        # its own group is gone with it, this one must go too.
        _signal_group(process.pid, signal.SIGKILL)
        process.kill()
        process.wait()
        raise
    result = ShellResult(command, process.returncode, stdout, stderr, timed_out, timeout)
    if check:
        result.check_returncode()
    return result


_OWN_PROCESS_GROUP = (
    {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
)
"""A process group of its own, to kill the command and its children at its
timeout, but not a session of its own: whatever kills the job's session (the
local pool's cancel, a scheduler's) must reach the command too."""


def _kill_group(process: subprocess.Popen) -> tuple[bytes, bytes]:
    """SIGTERM, then SIGKILL, to the command's process group; what it wrote meanwhile."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        return process.communicate(timeout=KILL_GRACE_PERIOD)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        # A process that left the group may still hold the pipes: don't wait for it.
        process.kill()
        process.wait()
        return b"", b""


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
