"""Pure functions that read what ``/proc`` tells about this host's worker processes.

The local "scheduler" has no commands to parse; what it reads is the
command line and environment of running processes (to adopt the workers of
an earlier process continuing the same map) and the exit status of its own.
"""

from __future__ import annotations

import signal

from ..scheduler import JobStatus, failed, incurable

JOB_NAME_VARIABLE = "PYPOOLPARTY_JOB_NAME"
"""Set in each worker's environment to its submission's job name."""


def worker_chunk(cmdline: bytes) -> int | None:
    """The chunk a worker runs, from its ``/proc/<pid>/cmdline``; ``None`` if not a worker.

    A worker's command line ends with ``--ichunk <chunk>``.
    """
    arguments = cmdline.decode(errors="replace").split("\0")
    if "--ichunk" not in arguments:
        return None
    try:
        return int(arguments[arguments.index("--ichunk") + 1])
    except (IndexError, ValueError):
        return None


def job_name(environ: bytes) -> str | None:
    """The job name in a process's ``/proc/<pid>/environ``; ``None`` if it has none."""
    prefix = f"{JOB_NAME_VARIABLE}=".encode()
    for variable in environ.split(b"\0"):
        if variable.startswith(prefix):
            return variable[len(prefix) :].decode(errors="replace")
    return None


def session_id(stat: bytes) -> int | None:
    """The session of a process, from its ``/proc/<pid>/stat``; ``None`` if unreadable.

    The command name (in parentheses) may hold blanks and ``)``: the fields
    after it are counted from its last ``)``.
    """
    try:
        return int(stat.rsplit(b")", 1)[1].split()[3])
    except (IndexError, ValueError):
        return None


def process_group(stat: bytes) -> int | None:
    """The process group of a process, from its ``/proc/<pid>/stat``; ``None`` if unreadable."""
    try:
        return int(stat.rsplit(b")", 1)[1].split()[2])
    except (IndexError, ValueError):
        return None


def describe_exit(code: int) -> str:
    """A worker's exit status in words, as :attr:`subprocess.Popen.returncode` gives it."""
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


INTERPRETER_FIX = (
    "The job's launcher could not run the interpreter (exit code 127: not found, "
    "126: not executable): pass a python_path that exists and is executable; the "
    "job's standard error names the path."
)


def failed_status(code: int, reason: str) -> JobStatus:
    """A worker that ended with exit status ``code`` (not 0), in words ``reason``.

    The launcher ``exec``\\ s the interpreter, so its 127 (not found) or 126
    (not executable) means the ``python_path`` cannot be run: no resubmission
    cures that, as on SLURM and Grid Engine. Any other code may be cured.
    """
    if code in (126, 127):
        return incurable("failed", reason, INTERPRETER_FIX)
    return failed("failed", reason)
