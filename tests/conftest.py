"""Fixtures shared by all tests.

Tests that need a real scheduler call :func:`require_scheduler`. Where the
scheduler is absent they are skipped with the reason, except in CI
(``CI=true``), where a missing scheduler is a failure: CI must prove the
integration tests ran.
"""

from __future__ import annotations

import os
import shutil

import pytest
from dummy_slurm import DummySlurm

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUMMY_QUEUES_DIR = os.path.join(REPO_DIR, "dummy_queues")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_scheduler(name: str, commands: list[str], probe: list[str] | None = None) -> None:
    """Skip (or, in CI, fail) unless ``commands`` are on PATH and ``probe`` succeeds.

    ``probe`` is a command that must exit 0 for the scheduler to count as up,
    e.g. ``["scontrol", "ping"]``.
    """
    missing = [c for c in commands if shutil.which(c) is None]
    reason = ""
    if missing:
        reason = f"{name} is not installed here ({', '.join(missing)} not on PATH)"
    elif probe is not None:
        from pypoolparty import commands as cmd

        try:
            completed = cmd.run(probe, timeout=30)
            if completed.returncode != 0:
                reason = f"{name} is installed but not up: {completed.describe()}"
        except (cmd.CommandTimedOut, cmd.CommandNotFound) as error:
            reason = f"{name} is installed but not up: {error}"
    if reason:
        start_script = f"local_clusters/{name}/start.sh"
        message = f"{reason}; start one with 'sudo bash {start_script}'"
        if in_ci():
            pytest.fail(f"CI needs a real {name}: {message}", pytrace=False)
        pytest.skip(message)


@pytest.fixture
def dummy_queues_dir() -> str:
    """Absolute path of the repository's ``dummy_queues`` directory."""
    return DUMMY_QUEUES_DIR


@pytest.fixture
def dummy_slurm(dummy_queues_dir, tmp_path, monkeypatch):
    state_dir = tmp_path / "dummy-queue"
    state_dir.mkdir()
    monkeypatch.setenv("PYPOOLPARTY_DUMMY_QUEUE_DIR", str(state_dir))
    slurm = DummySlurm(dummy_queues_dir, str(state_dir))
    yield slurm
    slurm.set_faults()  # a test's hanging scancel must not hang the cleanup
    slurm.cancel_everything()  # so that its runner goes idle and exits
