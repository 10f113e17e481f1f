"""Jobs whose Python process a task crashed: a fatal signal of the job's own.

A task that segfaults (a bug in an extension module, ``ctypes.string_at(0)``)
kills the worker and the job with it, so no task record nor outcome tells
what happened: the scheduler only reports a job that failed. Such a job may
have met a bad node once, so one resubmission is fine; but when the next job
of the chunk dies of the same signal in the same task, the task did it, and
every further resubmission would only crash again. The session then ends the
map with :class:`pypoolparty.errors.TaskCrashed` (see
:meth:`pypoolparty.session.Session._resubmit`).

The signal is read, for every pool alike, from the words the adapters use
for a job that died of a signal (SLURM ``ExitCode 0:11``, SGE
``exit_status 139``, HTCondor ``signal 11``, the local pool's ``killed by
signal SIGSEGV``) and from the job's stderr, where the worker's
:mod:`faulthandler` writes ``Fatal Python error: Segmentation fault`` and
the task's traceback.
"""

from __future__ import annotations

import re
import signal

CRASH_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGABRT", "SIGILL")
"""The signals :mod:`faulthandler` reports: a process crashing by itself,
never a scheduler's kill (SIGTERM, SIGKILL, SIGUSR1, ...)."""

_NUMBERS = {int(getattr(signal, name)): name for name in CRASH_SIGNALS}

# faulthandler's first line, by signal.
_FAULTHANDLER = {
    "Segmentation fault": "SIGSEGV",
    "Bus error": "SIGBUS",
    "Floating-point exception": "SIGFPE",
    "Floating point exception": "SIGFPE",
    "Aborted": "SIGABRT",
    "Illegal instruction": "SIGILL",
}
_FATAL = re.compile(r"Fatal Python error: (" + "|".join(map(re.escape, _FAULTHANDLER)) + r")")
_NAME = re.compile(r"\b(" + "|".join(CRASH_SIGNALS) + r")\b")
# "signal 11" (HTCondor, local), "ExitCode=0:11" (SLURM exit:signal),
# "exit_status 139" (SGE, and shells: 128 + the signal).
_NUMBER = re.compile(r"\bsignal (\d+)\b")
_SLURM = re.compile(r"\bExitCode[=: ]*\d+:(\d+)\b", re.IGNORECASE)
_STATUS = re.compile(r"\bexit[_ ]status[= ]+(\d+)\b", re.IGNORECASE)


def crash_signal(reason: str, stderr: str = "") -> str:
    """The fatal signal a job died of by itself, or '' if it did not.

    Parameters
    ----------
    reason : str
        Why the scheduler says the job failed (its state, reason and
        explanation, as the session joined them).
    stderr : str
        The job's standard error (the chunk's and the job's own).

    Returns
    -------
    str
        One of :data:`CRASH_SIGNALS`, e.g. ``"SIGSEGV"``, or ``""``.
    """
    found = _FATAL.search(stderr)
    if found:
        return _FAULTHANDLER[found.group(1)]
    found = _NAME.search(reason)
    if found:
        return found.group(1)
    for match in _NUMBER.finditer(reason):
        if int(match.group(1)) in _NUMBERS:
            return _NUMBERS[int(match.group(1))]
    for match in _SLURM.finditer(reason):
        if int(match.group(1)) in _NUMBERS:
            return _NUMBERS[int(match.group(1))]
    for match in _STATUS.finditer(reason):
        if int(match.group(1)) - 128 in _NUMBERS:
            return _NUMBERS[int(match.group(1)) - 128]
    return ""


MAX_TRACEBACK_LINES = 40
"""Lines of faulthandler's report a :class:`pypoolparty.errors.TaskCrashed` shows."""


def where_it_crashed(stderr: str, tail: str) -> str:
    """What of a crashed job's stderr to show: faulthandler's report, else ``tail``.

    faulthandler lists the most recent call first, and Python 3.12 adds the
    extension modules after the traceback: the last lines of stderr may miss
    the task's own frame, so the report is shown from its first line.
    """
    found = _FATAL.search(stderr)
    if not found:
        return tail
    lines = stderr[found.start() :].rstrip().splitlines()
    if len(lines) > MAX_TRACEBACK_LINES:
        lines = lines[:MAX_TRACEBACK_LINES] + ["..."]
    return "\n".join(lines)


def crashed_message(
    itask: int,
    ichunk: int,
    bounds: tuple[int, int],
    jobid: str,
    signal_name: str,
    attempts: int,
    reason: str,
    stderr_tail: str,
) -> str:
    """The message of :class:`pypoolparty.errors.TaskCrashed`.

    Parameters
    ----------
    itask, ichunk, bounds, jobid
        The task that was running, its chunk and the chunk's tasks
        ``(start, stop)``, the last job.
    signal_name : str
        The signal (:func:`crash_signal`).
    attempts : int
        How many jobs of the chunk died of it in that task.
    reason : str
        The scheduler's words for the last job.
    stderr_tail : str
        What to show of the last job's stderr (:func:`where_it_crashed`).
    """
    start, stop = bounds
    lines = [
        f"task {itask} (chunk {ichunk}, tasks {start}..{stop - 1}, job {jobid}) crashed the "
        f"Python process with {signal_name} in {attempts} jobs in a row: the task did it "
        "(a bug in compiled code it calls, e.g. an extension module or ctypes), not a "
        "scheduler failure, so no further job was submitted.",
        f"  the scheduler says: {reason}",
    ]
    if stderr_tail:
        lines += ["  stderr of the job (faulthandler's traceback shows where):"] + [
            f"    {line}" for line in stderr_tail.splitlines()
        ]
    lines.append(
        f"Fix task {itask} (or what it calls) so that it does not crash: calling the same map "
        "unchanged would crash again."
    )
    return "\n".join(lines)
