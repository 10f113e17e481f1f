"""How a job starts: the launcher that prepares the environment, then execs the worker.

Every pool starts its jobs the same way (:func:`job_command`)::

    /bin/bash SESSION_DIR/launcher.sh PYTHON WORKER SESSION_DIR --ichunk N ...

The launcher (:data:`LAUNCHER_SCRIPT`, copied into the session directory)

1. exports the submitter's variables from ``environment.sh``, the private
   (0600) file :func:`environment_script` writes: so ``LD_LIBRARY_PATH``,
   ``PATH``, ``PYTHONPATH`` and the like are in force when the interpreter
   starts, as under :mod:`multiprocessing`, while their values stay out of
   every job script, command line and scheduler log;
2. runs the ``setup`` lines from ``setup.sh`` (:func:`setup_script`) in
   order, in its own shell (so ``source venv/bin/activate``, ``module
   load`` and ``conda activate`` act on the worker), with ``set -e``;
3. ``exec``\\ s ``PYTHON WORKER SESSION_DIR ...``: the worker is the job's
   process from then on.

Why bash: the lines users bring from their job scripts are bash --
``source``, the ``module`` function of Lmod and Environment Modules (which
bash alone imports from the environment, as ``BASH_FUNC_module%%``),
``conda activate``, venv's ``activate``. ``/bin/bash`` is on every cluster
node and in every common image; it is started by absolute path, as
HTCondor's ``executable`` needs, and the launcher is read by it rather than
executed, so a work_dir on a ``noexec`` file system works.

A ``cd`` in a setup line lasts for the setup lines only: the launcher goes
back to where the job started before it execs the worker (or records a
failed line), since the worker's paths may be relative to it.

A setup line that fails (or exits) ends the job before the worker starts:
the launcher says so on the job's stderr, writes
``outcomes/<ichunk>.setup-failed`` (read by :func:`read_setup_failure`) and
exits with :data:`SETUP_FAILED_EXIT_STATUS`. The session ends the map at
once with :class:`pypoolparty.JobCannotRun` naming the line and showing the
job's stderr: resubmitting would fail the same way. A job the scheduler
stops during setup (SIGTERM, SIGINT, SIGHUP) writes nothing: it is the
cluster's failure, handled as any other.

This module owns the formats of ``launcher.sh``, ``environment.sh``,
``setup.sh`` and ``outcomes/<ichunk>.setup-failed``; :mod:`pypoolparty.prepare`
writes the first three, the launcher the last.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from typing import Any

from . import environment, work_dir
from .errors import BadInput

LAUNCHER_SHELL = "/bin/bash"
"""The shell that runs the launcher and the setup lines, on the compute node
(or inside the container)."""

LAUNCHER_NAME = "launcher.sh"
ENVIRONMENT_NAME = "environment.sh"
SETUP_NAME = "setup.sh"
SETUP_FAILED_SUFFIX = ".setup-failed"
SETUP_FAILED_MEMBER = re.compile(r"^(\d+)\.setup-failed$")
"""A chunk's setup failure in ``outcomes/``."""

SETUP_FAILED_EXIT_STATUS = 3
"""The job's exit status when a setup line failed: not the line's own, so
that a line's 127 (command not found) is not read by an adapter as "the
interpreter cannot be run"; never 99 or 100, which Grid Engine reads as
"reschedule" and "error"."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXPORTED_FUNCTION = re.compile(r"^BASH_FUNC_([A-Za-z_][A-Za-z0-9_.:-]*)(%%|\(\))$")
BASH_OWN = frozenset({"BASHOPTS", "BASH_VERSINFO", "EUID", "PPID", "SHELLOPTS", "UID", "IFS"})
"""Variables of bash itself (read-only ones, the word separators): the job's
bash has its own, and none of them means anything to Python."""

LAUNCHER_SCRIPT = f"""\
# pypoolparty's job launcher, run as: {LAUNCHER_SHELL} {LAUNCHER_NAME} PYTHON WORKER SESSION_DIR ...
# Exports the submitter's variables ({ENVIRONMENT_NAME}), runs the setup lines
# ({SETUP_NAME}) with set -e, then execs PYTHON WORKER SESSION_DIR ... (the worker).
# Written by pypoolparty (launcher.py owns this file's format).
pypoolparty_args=("$@")
pypoolparty_session_dir=$3
# Where the job started: the worker's paths may be relative to it (a job
# without a shared file system runs in its scratch directory).
pypoolparty_start_dir=$PWD
pypoolparty_line=0
pypoolparty_setup=()
# The scheduler made this job's output files with its own umask (Grid Engine
# 0644, whatever qsub's): private, as every file of the session directory,
# before anything is written to them. Only files of the session directory.
pypoolparty_private_output() {{
    local path session
    session=$(readlink -f -- "$pypoolparty_session_dir" 2>/dev/null) || return 0
    for path in /proc/$$/fd/1 /proc/$$/fd/2; do
        [ -f "$path" ] && [ -O "$path" ] || continue
        path=$(readlink -f -- "$path" 2>/dev/null) || continue
        case $path in "$session"/*) chmod 600 -- "$path" 2>/dev/null ;; esac
    done
}}
pypoolparty_private_output
. "$pypoolparty_session_dir/{ENVIRONMENT_NAME}"
. "$pypoolparty_session_dir/{SETUP_NAME}"

pypoolparty_chunk() {{
    local ichunk='' variable='' list='' lines
    set -- "${{pypoolparty_args[@]:3}}"
    while [ $# -gt 0 ]; do
        case $1 in
            --ichunk) ichunk=$2; shift ;;
            --ichunk-from-env) variable=$2; shift ;;
            --chunk-list) list=$2; shift ;;
        esac
        shift
    done
    if [ -n "$variable" ]; then
        ichunk=${{!variable-}}
        if [ -n "$list" ] && [[ $ichunk =~ ^[0-9]+$ ]] && [ "$ichunk" -ge 1 ]; then
            mapfile -t -s "$((ichunk - 1))" -n 1 lines < "$list"
            ichunk=${{lines[0]-}}
        fi
    fi
    [[ $ichunk =~ ^[0-9]+$ ]] && printf '%s' "$ichunk"
}}

pypoolparty_on_exit() {{
    local status=$1 ichunk outcomes temporary
    set +e
    [ "$pypoolparty_line" -gt 0 ] || return
    trap - EXIT
    builtin cd -- "$pypoolparty_start_dir"
    printf 'pypoolparty: setup line %s of %s ended the job with exit status %s; ' \\
        "$pypoolparty_line" "${{#pypoolparty_setup[@]}}" "$status" >&2
    printf 'the worker was not started.\\n' >&2
    ichunk=$(pypoolparty_chunk)
    if [ -n "$ichunk" ]; then
        outcomes=$pypoolparty_session_dir/outcomes
        temporary=$outcomes/.$ichunk.setup.${{HOSTNAME-}}.$$.incomplete
        (umask 077 && printf 'line %s\\nstatus %s\\nhost %s\\n' \\
            "$pypoolparty_line" "$status" "${{HOSTNAME-}}" > "$temporary") &&
            mv -f "$temporary" "$outcomes/$ichunk{SETUP_FAILED_SUFFIX}"
    fi
    exit {SETUP_FAILED_EXIT_STATUS}
}}

# Stopped by the scheduler (a time limit, a cancel): not a failing line.
trap 'pypoolparty_line=0; exit 143' TERM
trap 'pypoolparty_line=0; exit 130' INT
trap 'pypoolparty_line=0; exit 129' HUP
trap 'pypoolparty_on_exit "$?"' EXIT
set -e
pypoolparty_index=0
while [ "$pypoolparty_index" -lt "${{#pypoolparty_setup[@]}}" ]; do
    pypoolparty_line=$((pypoolparty_index + 1))
    # set -e acts inside eval as in a script, line by line; the ":" after
    # the line keeps it from acting again on eval's own status, which is that
    # of a list it forgave ("[ -f x ] && source x" with no x). The blank line
    # keeps a trailing backslash from joining the line to the ":".
    eval "${{pypoolparty_setup[pypoolparty_index]}}"$'\\n\\n:'
    pypoolparty_index=$pypoolparty_line
done
pypoolparty_line=0
set +e
trap - EXIT TERM INT HUP
# A cd in a setup line lasts for the setup lines only.
builtin cd -- "$pypoolparty_start_dir"
exec "$@"
"""
"""The launcher's text: the same for every map (the lines it runs are in ``setup.sh``)."""


def job_command(launcher_path: str | None, worker: Sequence[str]) -> list[str]:
    """The whole command a scheduler runs for one job.

    This is the one place that makes a job's command line from the worker's
    (:meth:`pypoolparty.scheduler.WorkerCall.arguments` calls it).

    Parameters
    ----------
    launcher_path : str or None
        The session directory's ``launcher.sh``; ``None`` starts the worker
        directly (adapter tests with a stand-in worker).
    worker : sequence of str
        ``PYTHON WORKER SESSION_DIR`` and the worker's options.

    Returns
    -------
    list of str
        ``/bin/bash launcher.sh PYTHON WORKER SESSION_DIR ...``.
    """
    if launcher_path is None:
        return list(worker)
    command = [LAUNCHER_SHELL, launcher_path, *worker]
    # WorkerCall.arguments wraps this command in the container, if any, so
    # that the launcher -- the environment, the setup lines -- runs inside it.
    return command


# -- the files prepare.py writes ------------------------------------------------


def write_files(
    session_dir: work_dir.SessionDir, variables: dict[str, str], setup: Sequence[str]
) -> list[str]:
    """Write ``launcher.sh``, ``environment.sh`` and ``setup.sh`` (each 0600).

    Parameters
    ----------
    session_dir : SessionDir
        The new map's directory.
    variables : dict of str to str
        The exported variables (:func:`pypoolparty.environment.export`).
    setup : sequence of str
        The checked setup lines (:func:`checked_setup`).

    Returns
    -------
    list of str
        The names of variables left out because bash cannot set them.
    """
    work_dir.write_private(launcher_path(session_dir), LAUNCHER_SCRIPT.encode())
    text, left_out = environment_script(variables)
    work_dir.write_private(session_dir.join(ENVIRONMENT_NAME), text.encode())
    work_dir.write_private(session_dir.join(SETUP_NAME), setup_script(setup).encode())
    return left_out


def launcher_path(session_dir: work_dir.SessionDir) -> str:
    return session_dir.join(LAUNCHER_NAME)


def environment_script(variables: dict[str, str]) -> tuple[str, list[str]]:
    """``environment.sh``: one ``export NAME='value'`` per variable, for bash to source.

    Variables of the host or the job (:mod:`pypoolparty.environment`) are
    left out: the job keeps its own. A bash function the submitter exported
    (``BASH_FUNC_module%%``, how Lmod's ``module`` reaches child shells) is
    defined and exported again, so that setup lines can call it. Variables
    bash cannot or must not set (names that are no shell names,
    :data:`BASH_OWN`) are left out.

    Returns
    -------
    tuple of (str, list of str)
        The file's text, and the names left out because bash cannot set them.
    """
    lines = ["# The submitter's variables, exported by pypoolparty's launcher (private).\n"]
    left_out = []
    for name, value in sorted(variables.items()):
        if environment.belongs_to_host_or_job(name):
            continue
        function = _EXPORTED_FUNCTION.match(name)
        if function and value.startswith("() {"):
            fname = function.group(1)
            lines.append(f"eval {shlex.quote(fname + ' ' + value)} && export -f {fname}\n")
        elif _NAME.match(name) and name not in BASH_OWN:
            lines.append(f"export {name}={shlex.quote(value)}\n")
        else:
            left_out.append(name)
    return "".join(lines), left_out


def setup_script(setup: Sequence[str]) -> str:
    """``setup.sh``: the setup lines as a bash array, which the launcher runs one by one."""
    items = "".join(f"    {shlex.quote(line)}\n" for line in setup)
    header = "# The setup lines, run in order by pypoolparty's launcher.\n"
    return f"{header}pypoolparty_setup=(\n{items})\n"


# -- the setup option ---------------------------------------------------------------


def checked_setup(setup: Any) -> tuple[str, ...]:
    """The ``setup`` option, checked before anything is prepared or submitted.

    Each line must be a string without a line break or NUL, and complete
    shell syntax on its own (``bash -n``, where this host has bash): the
    launcher runs each line on its own, so that a failure names its line.

    Raises
    ------
    pypoolparty.BadInput
        ``setup`` is a single string, holds something else than strings, a
        line with a line break or NUL, or a line bash cannot parse.
    """
    if isinstance(setup, (str, bytes)):
        raise BadInput(
            f"setup must be a list of shell lines, not one string: write setup=[{setup!r}]"
        )
    try:
        lines = tuple(setup)
    except TypeError:
        raise BadInput(f"setup must be a list of shell lines, not {setup!r}") from None
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, str):
            raise BadInput(f"setup line {number} must be a string, not {line!r}")
        if "\n" in line or "\r" in line or "\0" in line:
            raise BadInput(
                f"setup line {number} holds a line break or NUL: {line!r}. Give each "
                "shell line as an item of its own."
            )
    _check_syntax(lines)
    return lines


def _check_syntax(lines: Iterable[str]) -> None:
    if not shutil.which(LAUNCHER_SHELL):
        return  # checked on the node, where the job says which line failed
    for number, line in enumerate(lines, start=1):
        completed = subprocess.run(
            [LAUNCHER_SHELL, "-n", "-c", line], capture_output=True, text=True, timeout=30
        )
        if completed.returncode != 0:
            message = completed.stderr.strip().replace(f"{LAUNCHER_SHELL}: -c: ", "")
            raise BadInput(
                f"setup line {number} is not complete bash syntax: {line!r} ({message}). "
                "Each line runs on its own, as by eval: put a whole if ...; fi or "
                "for ...; done on one line."
            )


# -- what a failed setup leaves ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SetupFailure:
    """A job's setup line failed: which one, how, and where."""

    line: int
    """1-based number of the line in the ``setup`` option."""

    status: int
    """The line's exit status."""

    host: str


def read_setup_failure(session_dir: work_dir.SessionDir, ichunk: int) -> SetupFailure | None:
    """The setup failure the launcher of chunk ``ichunk``'s job wrote, if any."""
    try:
        with open(_setup_failure_path(session_dir, ichunk), encoding="utf-8") as file:
            text = file.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return parse_setup_failure(text)


def parse_setup_failure(text: str) -> SetupFailure:
    """Read the ``key value`` lines of a ``.setup-failed`` file (unknown ones ignored)."""
    fields = dict(line.partition(" ")[::2] for line in text.splitlines() if line)
    return SetupFailure(
        line=_number(fields.get("line")),
        status=_number(fields.get("status")),
        host=fields.get("host", "") or "?",
    )


def remove_setup_failures(session_dir: work_dir.SessionDir, chunks: Iterable[int]) -> None:
    """Remove what earlier jobs of ``chunks`` left (one directory listing)."""
    wanted = set(chunks)
    try:
        names = os.listdir(session_dir.outcomes_dir)
    except FileNotFoundError:
        return
    for name in names:
        match = SETUP_FAILED_MEMBER.match(name)
        if match and int(match.group(1)) in wanted:
            _remove(os.path.join(session_dir.outcomes_dir, name))


def forget_setup_failure(session_dir: work_dir.SessionDir, ichunk: int) -> None:
    _remove(_setup_failure_path(session_dir, ichunk))


def _setup_failure_path(session_dir: work_dir.SessionDir, ichunk: int) -> str:
    return os.path.join(session_dir.outcomes_dir, f"{ichunk}{SETUP_FAILED_SUFFIX}")


def _number(text: str | None) -> int:
    try:
        return int(text or "")
    except ValueError:
        return -1


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
