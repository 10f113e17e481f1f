"""Whether ``python_path`` can run a map's pickled code: checked before anything is submitted.

Pickled code is portable only between equal Python versions (major.minor)
and equal cloudpickle versions: a job of another Python crashes, or fails
as if the task had raised (``code() takes at most 16 arguments``), or works
by luck. So before a map's first job, :func:`check` runs ``python_path`` on
the submit host with the worker's own check
(:func:`pypoolparty.worker.interpreter_versions`) and compares what it finds
with this process's versions (:func:`submitter_versions`). On a shared
cluster the same path holds the same interpreter on the submit host and on
the nodes, which is what this check relies on; the worker checks again on
its node, before it unpickles anything, for the nodes where it does not.

The check runs ``python_path`` with this process's environment (its
``PYTHONPATH`` included) and appends this process's ``sys.path`` only when
the Python versions match, as the worker does: cloudpickle may come from the
interpreter's own environment or, failing that, from a directory of this
process's ``sys.path``.

It runs once per process for each ``python_path`` (a pool's maps share it):
a passed check is remembered until the interpreter's file changes. A failed
one is not remembered, so fixing the interpreter is seen by the next map.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import subprocess
import sys
import threading

import cloudpickle

from .errors import InterpreterMismatch

logger = logging.getLogger("pypoolparty")

WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")

CHECK_TIMEOUT = 120.0
"""Seconds ``python_path`` may take to answer (an interpreter on a slow
shared file system starts slowly)."""

_MARKER = "pypoolparty-interpreter-check: "

# Runs under python_path, whatever its version: the syntax of Python 2.7 and
# 3.0 on. The worker's own check is used where that Python can read the
# worker; one too old to read it is reported by its version alone.
_SNIPPET = """
import json, sys
del sys.path[0]  # the current directory: a job's worker does not see it first
request = json.loads(sys.stdin.read())
try:
    import runpy
    worker = runpy.run_path(request["worker"], run_name="pypoolparty_worker_check")
    found = worker["interpreter_versions"](request["expected"], request["sys_path"])
except SyntaxError:
    found = {"python": "%d.%d" % tuple(sys.version_info[:2]), "cloudpickle": None,
             "executable": sys.executable}
sys.stdout.write("\\n" + MARKER + json.dumps(found) + "\\n")
""".replace("MARKER", repr(_MARKER))

_passed: set[tuple] = set()
_lock = threading.Lock()


def submitter_versions() -> dict[str, str]:
    """This process's Python version (major.minor) and cloudpickle version.

    What the worker must find on its node; written into
    ``worker_config.json`` as ``interpreter``.
    """
    return {
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "cloudpickle": str(cloudpickle.__version__),
    }


def submitter_sys_path() -> list[str]:
    """This process's ``sys.path``, as the worker may append it (``''``: the current directory)."""
    return [entry or os.getcwd() for entry in sys.path]


def check(python_path: str) -> None:
    """Make sure ``python_path`` runs this process's Python and cloudpickle versions.

    Runs ``python_path`` on this host, once per process until its file
    changes (see the module's docstring). An interpreter this host cannot
    execute at all (a binary for the nodes' other architecture) is left to
    the worker's own check on the node.

    Parameters
    ----------
    python_path : str
        The absolute path of the interpreter the jobs run the worker with.

    Raises
    ------
    pypoolparty.InterpreterMismatch
        ``python_path`` does not exist or cannot run, or has another Python
        version (major.minor), or imports another cloudpickle version or
        none. Nothing was submitted.
    """
    expected = submitter_versions()
    sys_path = submitter_sys_path()
    key = _cache_key(python_path, expected, sys_path)
    with _lock:
        if key in _passed:
            return
        found = _run_check(python_path, expected, sys_path)
        if found is None:
            return
        if not same_versions(expected, found):
            raise InterpreterMismatch(
                mismatch_message(python_path, expected, found, "on this host")
                + "\nNothing was submitted."
            )
        _passed.add(key)


def same_versions(expected: dict, found: dict) -> bool:
    """Whether ``found`` has the Python and cloudpickle versions of ``expected``."""
    return all(expected.get(key) == found.get(key) for key in ("python", "cloudpickle"))


def mismatch_message(python_path: str, expected: dict, found: dict, where: str) -> str:
    """What differs between the submitter's versions and those ``python_path`` has, and the fix.

    Parameters
    ----------
    python_path : str
        The pool's ``python_path``.
    expected : dict
        The submitter's ``python`` and ``cloudpickle`` versions.
    found : dict
        What :func:`pypoolparty.worker.interpreter_versions` found: ``python``,
        ``cloudpickle`` (None: none that imports), ``cloudpickle_error``.
    where : str
        Where it was found: "on this host", "in job 12 (chunk 3) on host n7".

    Returns
    -------
    str
        Names both versions and what to change.
    """
    wanted = f"Python {expected['python']} with cloudpickle {expected['cloudpickle']}"
    install = f"{python_path} -m pip install cloudpickle=={expected['cloudpickle']}"
    if found.get("python") != expected["python"]:
        other = str(found.get("python"))
        return (
            f"python_path {python_path!r} is Python {other} {where}, but this process is "
            f"Python {expected['python']}: pickled code runs only on the Python version "
            f"(major.minor) that pickled it. Pass python_path= an interpreter of {wanted} (by "
            f"default, the one running this process: {sys.executable})"
            + (f", or run the map from a Python {other}." if other.startswith("3.") else ".")
        )
    if found.get("cloudpickle") is None:
        error = found.get("cloudpickle_error")
        return (
            f"python_path {python_path!r} (Python {found['python']}) {where} cannot import "
            f"cloudpickle{f' ({error})' if error else ''}, neither from its own environment "
            f"nor from this process's sys.path; this process uses cloudpickle "
            f"{expected['cloudpickle']}. Install it there: {install}"
        )
    return (
        f"python_path {python_path!r} (Python {found['python']}) {where} imports cloudpickle "
        f"{found['cloudpickle']}, but this process uses cloudpickle {expected['cloudpickle']}: "
        "what one version pickles the other may not load. Install the same version in both, "
        f"e.g. {install}"
    )


OLDEST_READING_THE_WORKER = "3.6"
"""The oldest Python that can read the worker script (its syntax)."""

_WORKER_SYNTAX_ERROR = re.compile(
    r'^\s*File "(?:[^"\n]*[/\\])?worker\.py", line \d+\n(?:.*\n){0,3}?\s*SyntaxError: ',
    re.MULTILINE,
)


def cannot_read_the_worker(stderr: str) -> bool:
    """Whether a failed job's stderr says its Python could not compile the worker script.

    A Python older than :data:`OLDEST_READING_THE_WORKER` stops at the
    worker's syntax, before the worker's own check can write what it found:
    the job only fails, with Python's ``SyntaxError`` on its stderr. The
    worker script is pypoolparty's own, so such an error means the
    interpreter, never the user's code (a task's ``SyntaxError`` is the
    task's result, written by a worker that runs).

    Parameters
    ----------
    stderr : str
        The end of the failed job's stderr.
    """
    return _WORKER_SYNTAX_ERROR.search(stderr) is not None


def too_old_message(python_path: str, expected: dict, where: str) -> str:
    """:func:`mismatch_message` for a job whose Python could not read the worker."""
    found = {"python": f"older than {OLDEST_READING_THE_WORKER}", "cloudpickle": None}
    return (
        mismatch_message(python_path, expected, found, where)
        + " It could not even read pypoolparty's worker script (the SyntaxError below)."
    )


def _cache_key(python_path: str, expected: dict, sys_path: list[str]) -> tuple:
    try:
        stat = os.stat(python_path)
        changed = (stat.st_ino, stat.st_mtime_ns)
    except OSError:
        changed = None
    environment = os.environ.get("PYTHONPATH"), os.environ.get("PYTHONHOME")
    return python_path, changed, tuple(sorted(expected.items())), tuple(sys_path), environment


def _run_check(python_path: str, expected: dict, sys_path: list[str]) -> dict | None:
    """What ``python_path`` finds (see :func:`pypoolparty.worker.interpreter_versions`).

    None where this host cannot execute it at all (another architecture).
    """
    request = json.dumps({"worker": WORKER_SCRIPT, "expected": expected, "sys_path": sys_path})
    try:
        completed = subprocess.run(
            [python_path, "-c", _SNIPPET],
            input=request,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
        )
    except OSError as error:
        if error.errno == errno.ENOEXEC:
            logger.info(
                "python_path %s cannot be executed on this host (%s); the jobs check it on "
                "their nodes",
                python_path,
                error.strerror,
            )
            return None
        reason = error.strerror or str(error)
        raise InterpreterMismatch(_cannot_run(python_path, expected, reason)) from None
    except subprocess.TimeoutExpired:
        raise InterpreterMismatch(
            _cannot_run(python_path, expected, f"it did not answer within {CHECK_TIMEOUT:.0f} s")
        ) from None
    answers = [line for line in completed.stdout.splitlines() if line.startswith(_MARKER)]
    if not answers:
        output = (completed.stderr.strip() or completed.stdout.strip())[-2000:] or "(none)"
        return_code = completed.returncode
        reason = f"it ended with exit status {return_code} without answering"
        raise InterpreterMismatch(
            _cannot_run(python_path, expected, f"{reason}; its output:\n{output}")
        )
    return json.loads(answers[-1][len(_MARKER) :])


def _cannot_run(python_path: str, expected: dict, reason: str) -> str:
    return (
        f"python_path {python_path!r} cannot be run on this host to check its Python and "
        f"cloudpickle versions: {reason}\nPass python_path= the path of an interpreter of "
        f"Python {expected['python']} with cloudpickle {expected['cloudpickle']}; on a "
        "cluster the same path must hold it on this host and on the compute nodes. Nothing "
        "was submitted."
    )
