"""Interpreters for the tests of the interpreter check: another Python version, no cloudpickle.

The fakes are the real interpreter started with a ``sitecustomize`` of their
own (through ``PYTHONPATH``, which jobs get from the exported environment):
one reports another Python version in ``sys.version_info``, the other has no
cloudpickle on any path (importing it raises ``ModuleNotFoundError``). Both
the submitter's check and the worker's read exactly these, as they would of
a real interpreter of that kind. :func:`real_other_python` finds a real
interpreter of another version, where the machine has one.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import subprocess
import sys

import pypoolparty.interpreter

OTHER_MINOR = sys.version_info[1] + 1
OTHER_VERSION = f"{sys.version_info[0]}.{OTHER_MINOR}"

_OTHER_VERSION_SITECUSTOMIZE = f"""
import collections
import sys

_VersionInfo = collections.namedtuple("version_info", "major minor micro releaselevel serial")
sys.version_info = _VersionInfo({sys.version_info[0]}, {OTHER_MINOR}, 0, "final", 0)
"""

_NO_CLOUDPICKLE_SITECUSTOMIZE = """
import os
import sys

_HIDDEN_WHILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "not-installed")


class _NoCloudpickle:
    def find_spec(self, name, path=None, target=None):
        if name == "cloudpickle" or name.startswith("cloudpickle."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if os.path.exists(_HIDDEN_WHILE):
    sys.meta_path.insert(0, _NoCloudpickle())
"""


def other_version_python(directory) -> str:
    """A ``python3.N`` that is this interpreter reporting Python 3.(minor + 1)."""
    return _fake(directory, f"python{OTHER_VERSION}", _OTHER_VERSION_SITECUSTOMIZE)


def python_without_cloudpickle(directory) -> str:
    """A ``python3`` of this Python version that cannot import cloudpickle from any path.

    Until :func:`install_cloudpickle`, which leaves its file as it is.
    """
    path = _fake(directory, "python3", _NO_CLOUDPICKLE_SITECUSTOMIZE)
    open(os.path.join(f"{path}-site", "not-installed"), "w").close()
    return path


def install_cloudpickle(python_path: str) -> None:
    """Let the interpreter of :func:`python_without_cloudpickle` import cloudpickle."""
    os.remove(os.path.join(f"{python_path}-site", "not-installed"))


def _fake(directory, name: str, sitecustomize: str) -> str:
    site = os.path.join(str(directory), f"{name}-site")
    os.makedirs(site, exist_ok=True)
    with open(os.path.join(site, "sitecustomize.py"), "w") as file:
        file.write(sitecustomize)
    path = os.path.join(str(directory), name)
    with open(path, "w") as file:
        file.write(
            f'#!/bin/sh\nPYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}" '
            f'exec "{sys.executable}" "$@"\n'
        )
    os.chmod(path, 0o755)
    return path


_TOO_OLD_FOR_THE_WORKER = r"""
import re, sys
path = sys.argv[1]
with open(path) as file:
    lines = file.read().splitlines()
number = next(n for n, line in enumerate(lines, 1) if re.search(r"\bf\x22", line))
line = lines[number - 1].strip()
sys.stderr.write(
    "  File \x22%s\x22, line %d\n    %s\n    %s^\nSyntaxError: invalid syntax\n"
    % (path, number, line, " " * (len(line) - 1))
)
sys.exit(1)
"""


def python_too_old_to_read_the_worker(directory) -> str:
    """A ``python3.5`` that fails on a script as a Python older than 3.6 fails on the worker's.

    Given a script, it writes the ``SyntaxError`` CPython 3.5 writes at the
    script's first f-string, and exits with status 1; its ``-c`` (the
    submitter's check, which the tests skip) runs as this interpreter.
    """
    path = os.path.join(str(directory), "python3.5")
    with open(path, "w") as file:
        file.write(
            f'#!/bin/sh\ncase "$1" in -c) exec "{sys.executable}" "$@";; esac\n'
            f'exec "{sys.executable}" -c {shlex.quote(_TOO_OLD_FOR_THE_WORKER)} "$1"\n'
        )
    os.chmod(path, 0o755)
    return path


def real_other_python() -> str | None:
    """A real interpreter of another Python 3 version than this one, if the machine has one.

    Looked for as ``python3.N`` on PATH and among pyenv's versions.
    """
    this = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [shutil.which(f"python3.{minor}") for minor in range(6, 20)]
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        candidates += sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3")))
    for candidate in filter(None, candidates):
        completed = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if completed.returncode == 0 and completed.stdout.strip() not in ("", this):
            return candidate
    return None


def skip_the_submitters_check(monkeypatch) -> None:
    """Let every ``python_path`` pass the check on the submit host, in this process only.

    As if the submit host's interpreter at that path were right and the
    nodes' were not: what is left is the worker's own check on the node.
    """
    monkeypatch.setattr(pypoolparty.interpreter, "check", lambda python_path: None)
