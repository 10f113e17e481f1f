"""A Charliecloud image the tests build locally, without a registry.

A directory is an image to ``ch-run``. The one built here holds only empty
mount points and a marker file; the host's ``/usr``, ``/lib``, ``/lib64`` and
the interpreter's prefix are mounted in (:func:`system_binds`), so the
image's Python is the test's own and its ``/etc`` is the image's, where the
marker tells a task that it runs inside.
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest
from real_schedulers import in_ci

MARKER = "/etc/pypoolparty-test-image"
MARKER_TEXT = "inside the pypoolparty test image"
# ch-run's mandatory mounts and the usual top-level directories.
TOP_LEVEL = ("bin", "dev", "etc", "home", "lib", "lib64", "mnt", "proc", "run", "sys", "tmp")


def require_ch_run() -> str:
    """ch-run's path; skip (fail in CI) where Charliecloud is not installed."""
    path = shutil.which("ch-run")
    if path is None:
        message = (
            "Charliecloud's ch-run is not installed here; install it with "
            "'apt-get install -y --no-install-recommends charliecloud-runtime'"
        )
        if in_ci():
            pytest.fail(f"CI needs {message}", pytrace=False)
        pytest.skip(message)
    return path


def system_binds(prefixes: list[str]) -> list[str]:
    """The host directories that give the image a working ``prefixes``' Python."""
    binds = [p for p in ("/usr", "/lib", "/lib64") if os.path.isdir(p) and not os.path.islink(p)]
    return binds + [p for p in dict.fromkeys(prefixes) if not p.startswith("/usr/")]


def make_image(root: str, mount_points: list[str]) -> str:
    """Build a directory image at ``root`` with a mount point for each path.

    A read-only image needs each bind's destination to exist in it
    (ch-run(1), ``--bind``); paths under ``/tmp``, which ch-run shares with
    the host, need none but get one all the same.
    """
    os.makedirs(root)
    for name in (*TOP_LEVEL, "usr", "var"):
        host, guest = "/" + name, os.path.join(root, name)
        if os.path.islink(host):
            # Merged /usr (Debian 12): /lib -> usr/lib; the image does the same,
            # so the mounted /usr gives it the dynamic loader too.
            os.symlink(os.readlink(host), guest)
        else:
            os.makedirs(guest, exist_ok=True)
    for name in ("passwd", "group", "hosts", "resolv.conf"):
        open(os.path.join(root, "etc", name), "a").close()
    with open(root + MARKER, "w") as file:
        file.write(MARKER_TEXT)
    for path in mount_points:
        os.makedirs(root + path, exist_ok=True)
    return root


def python_prefixes() -> list[str]:
    """The test interpreter's installation (a pyenv Python lives outside /usr)."""
    return [sys.base_prefix, sys.prefix]
