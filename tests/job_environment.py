"""What the job environment tests share, on the dummies and the real schedulers:
a shared library found only through ``LD_LIBRARY_PATH``, a ``sitecustomize``
found only through ``PYTHONPATH``, a command found only through ``PATH``,
and a task that reports what it saw (issue 16, items 1 and 2)."""

from __future__ import annotations

import ctypes
import glob
import os
import shutil
import subprocess
import uuid

SITECUSTOMIZE_VARIABLE = "PPP_TEST_SITECUSTOMIZE"
SETUP_VARIABLE = "PPP_TEST_FROM_SETUP"
TOOL_OUTPUT = "ppp-tool was found on PATH"


def make_job_directories(base: str) -> dict:
    """Build the library, the ``sitecustomize`` and the command under ``base``.

    Returns what a map needs: ``library`` (name, symbol) for the task, and
    ``LD_LIBRARY_PATH``, ``PYTHONPATH`` and ``PATH`` directories to put
    ahead of the submitter's own, and ``setup`` lines that use the command.
    """
    lib_dir = os.path.join(base, "lib")
    site_dir = os.path.join(base, "site")
    bin_dir = os.path.join(base, "bin")
    for path in (lib_dir, site_dir, bin_dir):
        os.makedirs(path)
    name = f"libppp{uuid.uuid4().hex[:8]}.so"
    symbol = _shared_library(os.path.join(lib_dir, name), base)
    with open(os.path.join(site_dir, "sitecustomize.py"), "w") as file:
        # Run only by an interpreter that finds it on sys.path when it starts.
        file.write(f"import os\nos.environ[{SITECUSTOMIZE_VARIABLE!r}] = 'ran at start'\n")
    tool = os.path.join(bin_dir, "ppp-tool")
    with open(tool, "w") as file:
        file.write(f"#!/bin/sh\necho '{TOOL_OUTPUT}'\n")
    os.chmod(tool, 0o755)
    return {
        "library": (name, symbol),
        "LD_LIBRARY_PATH": lib_dir,
        "PYTHONPATH": site_dir,
        "PATH": bin_dir,
        "setup": [f'export {SETUP_VARIABLE}="$(ppp-tool)"'],
    }


def _shared_library(path: str, base: str) -> str:
    """A library at ``path``, built with a C compiler if there is one, else a
    copy of the system's libm; return a symbol it defines."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler:
        source = os.path.join(base, "answer.c")
        with open(source, "w") as file:
            file.write("int ppp_answer(void) { return 42; }\n")
        subprocess.run([compiler, "-shared", "-fPIC", "-o", path, source], check=True)
        return "ppp_answer"
    (libm,) = sorted(glob.glob("/lib*/**/libm.so.6", recursive=True))[:1]
    shutil.copy(libm, path)
    return "cos"


def environment_with(directories: dict, environ: dict) -> dict:
    """``environ`` with the directories ahead of its own search paths."""
    changed = dict(environ)
    for variable in ("LD_LIBRARY_PATH", "PYTHONPATH", "PATH"):
        changed[variable] = os.pathsep.join(
            p for p in (directories[variable], environ.get(variable)) if p
        )
    return changed


def what_the_job_sees(library):
    """Load the library by name, as a task using CUDA or MKL does, and report."""
    name, symbol = library
    return {
        "library": hasattr(ctypes.CDLL(name), symbol),
        "sitecustomize": os.environ.get(SITECUSTOMIZE_VARIABLE),
        "setup": os.environ.get(SETUP_VARIABLE),
    }


EXPECTED = {"library": True, "sitecustomize": "ran at start", "setup": TOOL_OUTPUT}

FAILING_SETUP = ["true", "echo about to fail >&2; false"]


def assert_the_setup_failure_is_reported(message: str) -> None:
    """The line, its exit status and the job's stderr, and no advice to retry."""
    assert "setup line 2 ('echo about to fail >&2; false') failed with exit status 1" in message
    assert "about to fail" in message.split("stderr (last lines):")[1]
    assert "A resubmission would fail the same way" in message
