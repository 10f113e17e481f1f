"""Run Python as the ordinary user HTCondor runs our jobs as.

HTCondor never runs a job as root, so the real-HTCondor tests submit as an
ordinary user (``PYPOOLPARTY_HTCONDOR_USER``, default ``condoruser``, the
user ``local_clusters/htcondor/start.sh`` creates) with an interpreter that
user can execute: a venv made from Debian's ``/usr/bin/python3`` in a
world-readable place (``PYPOOLPARTY_HTCONDOR_VENV``), holding pypoolparty's
requirements and a ``.pth`` file that points at this checkout.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile

import pytest
from real_schedulers import REPO_DIR, in_ci, require_scheduler

DEFAULT_USER = "condoruser"
DEFAULT_VENV = "/var/tmp/pypoolparty-htcondor-venv"
BASE_PYTHON = "/usr/bin/python3"


def user_name() -> str:
    return os.environ.get("PYPOOLPARTY_HTCONDOR_USER", DEFAULT_USER)


def user_entry() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(user_name())
    except KeyError:
        return None


def require_job_user() -> pwd.struct_passwd:
    """The job user's entry, once the real HTCondor is up; else skip (in CI: fail)."""
    require_scheduler("htcondor")
    entry = user_entry()
    if entry is None:
        message = (
            f"the job user {user_name()!r} does not exist; "
            "'sudo bash local_clusters/htcondor/start.sh' creates it"
        )
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return entry


def requirements() -> list[str]:
    """pypoolparty's install_requires, read from setup.py."""
    with open(os.path.join(REPO_DIR, "setup.py")) as file:
        text = file.read()
    block = re.search(r"install_requires\s*=\s*\[(.*?)\]", text, re.DOTALL)
    return re.findall(r"[\"']([^\"']+)[\"']", block.group(1)) if block else []


def ensure_venv() -> str:
    """The venv's python, made on first use; every user may run it."""
    venv = os.environ.get("PYPOOLPARTY_HTCONDOR_VENV", DEFAULT_VENV)
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([BASE_PYTHON, "-m", "venv", venv], check=True)
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", *requirements()],
            check=True,
        )
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with open(os.path.join(site, "pypoolparty-checkout.pth"), "w") as file:
        file.write(REPO_DIR + "\n")
    return python


def environment(entry: pwd.struct_passwd) -> dict:
    """A login-like environment of the user, without root's variables."""
    return {
        "HOME": entry.pw_dir,
        "USER": entry.pw_name,
        "LOGNAME": entry.pw_name,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
    }


def popen(entry: pwd.struct_passwd, args: list[str], **kwargs) -> subprocess.Popen:
    """Start ``args`` as the user (the returned pid is the command itself, so
    that signals reach it directly)."""
    if os.getuid() != entry.pw_uid:
        kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
    return subprocess.Popen(
        args,
        env=environment(entry),
        cwd=entry.pw_dir if os.path.isdir(entry.pw_dir) else "/",
        **kwargs,
    )


def make_shared_dir(entry: pwd.struct_passwd) -> str:
    """A directory the user owns, outside pytest's private (0700) tmp_path."""
    path = tempfile.mkdtemp(prefix="pypoolparty-htcondor-test-", dir="/var/tmp")
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def remove_shared_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
