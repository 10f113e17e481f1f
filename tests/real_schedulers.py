"""The real schedulers' tests: where the repository is, and whether a scheduler is up.

Tests that need a real scheduler call :func:`require_scheduler`. Where the
scheduler is absent they are skipped with the reason, except in CI
(``CI=true``), where a missing scheduler is a failure: CI must prove the
integration tests ran.
"""

from __future__ import annotations

import os
import shutil

import pytest

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


COMMANDS = {
    "slurm": (["sbatch", "squeue", "scancel"], ["scontrol", "ping"]),
    "sge": (["qsub", "qstat", "qdel"], ["qstat", "-g", "c"]),
    "htcondor": (["condor_submit", "condor_q", "condor_rm"], ["condor_q", "-totals"]),
}
"""Per real scheduler: the commands a pool calls, and a probe that exits 0 when it is up."""


def require_scheduler(
    name: str, commands: list[str] | None = None, probe: list[str] | None = None
) -> None:
    """Skip (or, in CI, fail) unless ``commands`` are on PATH and ``probe`` succeeds.

    ``probe`` is a command that must exit 0 for the scheduler to count as up,
    e.g. ``["scontrol", "ping"]``. Without ``commands``, both come from
    :data:`COMMANDS`.
    """
    if commands is None:
        commands, probe = COMMANDS[name]
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
