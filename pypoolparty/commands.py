"""Run scheduler commands: one place for subprocess, timeouts and retries.

Every scheduler call goes through :func:`run`. A call that hangs is killed
(its whole process group) after ``timeout`` seconds. :func:`call` retries
transient failures -- a timeout, a non-zero exit, output the parser does not
understand -- with exponential backoff until an outage budget is spent, so a
scheduler that is down for minutes does not end a map that runs for days.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import Callable, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Completed:
    """What a finished command returned."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        text = (self.stderr.strip() or self.stdout.strip())[-2000:]
        return f"exit code {self.returncode}: {text}" if text else f"exit code {self.returncode}"


class CommandTimedOut(Exception):
    """The command did not end within its timeout and was killed."""


class CommandNotFound(Exception):
    """The executable does not exist or is not executable."""


class TransientError(Exception):
    """Raised by a parser or checker to ask for a retry."""


class PermanentError(Exception):
    """Raised by a parser or checker when retrying cannot help."""


class CommandFailed(Exception):
    """A scheduler command kept failing until the outage budget was spent."""

    def __init__(self, command: Sequence[str], last_error: str, attempts: int, seconds: float):
        self.command = list(command)
        self.last_error = last_error
        self.attempts = attempts
        self.seconds = seconds
        super().__init__(
            f"The scheduler command '{' '.join(self.command[:3])}"
            f"{' ...' if len(self.command) > 3 else ''}' failed {attempts} time(s) over "
            f"{seconds:.0f} s. Last error: {last_error}"
        )


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying a failing scheduler command."""

    timeout: float = 60.0
    """Seconds one call may take before it is killed."""

    max_outage: float = 3600.0
    """Seconds of consecutive failures after which we give up."""

    first_backoff: float = 1.0
    max_backoff: float = 60.0

    def backoffs(self):
        delay = self.first_backoff
        while True:
            yield delay
            delay = min(delay * 2, self.max_backoff)


def run(
    args: Sequence[str],
    timeout: float,
    input: str | None = None,
    env: dict | None = None,
    cwd: str | None = None,
) -> Completed:
    """Run ``args`` once; kill its process group if it exceeds ``timeout``."""
    try:
        process = subprocess.Popen(
            list(args),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
            start_new_session=True,
            # What a scheduler makes for us is private: sbatch passes its
            # umask on to the job, which creates its output files with it.
            umask=0o077,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as error:
        raise CommandNotFound(f"cannot execute '{args[0]}': {error}") from error
    try:
        stdout, stderr = process.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise CommandTimedOut(
            f"'{' '.join(args[:3])}' did not answer within {timeout:g} s"
        ) from None
    except BaseException:
        _kill_group(process)
        process.wait()
        raise
    return Completed(tuple(args), process.returncode, stdout, stderr)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def call(
    args: Sequence[str],
    parse: Callable[[Completed], T],
    policy: RetryPolicy,
    input: str | None = None,
    env: dict | None = None,
    before_retry: Callable[[], T | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``args`` and return ``parse(completed)``, retrying transient failures.

    ``parse`` turns the completed command into a value. It raises
    :class:`PermanentError` to stop at once (e.g. sbatch rejected a partition),
    or :class:`TransientError` (or ``ValueError``) to retry. A timeout is
    transient. A missing executable is permanent.

    ``before_retry`` is called before each retry; if it returns something
    other than ``None``, that is returned instead of calling again. Submitting
    adapters use it to look for jobs a timed-out submission did create.
    """
    started = time.monotonic()
    attempts = 0
    backoffs = policy.backoffs()
    while True:
        attempts += 1
        try:
            completed = run(args, timeout=policy.timeout, input=input, env=env)
            return parse(completed)
        except (CommandTimedOut, TransientError, ValueError) as error:
            last_error = str(error)
        elapsed = time.monotonic() - started
        if elapsed >= policy.max_outage:
            raise CommandFailed(args, last_error, attempts, elapsed)
        delay = min(next(backoffs), max(policy.max_outage - elapsed, 0.0))
        logger.warning("retrying '%s' in %.1f s: %s", " ".join(args[:2]), delay, last_error)
        sleep(delay)
        if before_retry is not None:
            found = before_retry()
            if found is not None:
                return found


def ask(args: Sequence[str], parse: Callable[[Completed], T], timeout: float) -> T | None:
    """Run ``args`` once and return ``parse(completed)``, or ``None`` if no answer came.

    For best-effort questions whose answer is only a hint -- how many CPUs the
    cluster has, why a job failed -- and not worth a retry: a missing
    command, a timeout, and output ``parse`` rejects (with
    :class:`TransientError`, :class:`PermanentError` or ``ValueError``) all
    give ``None``, logged at info level.

    Parameters
    ----------
    args : sequence of str
        The command and its arguments.
    parse : callable
        Turns the completed command into the answer; see :func:`call`.
    timeout : float
        Seconds the command may take before it is killed.

    Returns
    -------
    The answer of ``parse``, or ``None``.
    """
    try:
        return parse(run(args, timeout=timeout))
    except (CommandNotFound, CommandTimedOut, TransientError, PermanentError, ValueError) as error:
        logger.info("no answer from '%s': %s", " ".join(args[:3]), error)
        return None


def expect_success(completed: Completed) -> Completed:
    """A parser for commands whose output does not matter: non-zero is transient."""
    if completed.returncode != 0:
        raise TransientError(completed.describe())
    return completed
