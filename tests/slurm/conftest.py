"""Fixtures of the SLURM tests: a private dummy SLURM and a tiny stand-in worker."""

from __future__ import annotations

import sys

import pytest

from pypoolparty.commands import RetryPolicy
from pypoolparty.scheduler import WorkerCall

# Stands in for pypoolparty's worker in adapter tests: writes chunk_<i> into
# the session directory, holding the environment variables the job saw.
STAND_IN_WORKER = """
import json, os, sys
session_dir, how, value = sys.argv[1:4]
ichunk = int(value if how == "--ichunk" else os.environ[value])
if "--chunk-list" in sys.argv:
    with open(sys.argv[sys.argv.index("--chunk-list") + 1]) as file:
        ichunk = int(file.read().split()[ichunk - 1])
with open(os.path.join(session_dir, f"chunk_{ichunk}"), "w") as file:
    json.dump(dict(os.environ), file)
"""


@pytest.fixture
def stand_in_worker(tmp_path) -> WorkerCall:
    session_dir = tmp_path / "work"
    session_dir.mkdir()
    script = tmp_path / "stand_in_worker.py"
    script.write_text(STAND_IN_WORKER)
    return WorkerCall(
        python_path=sys.executable, script_path=str(script), session_dir=str(session_dir)
    )


@pytest.fixture
def fast_retries() -> RetryPolicy:
    return RetryPolicy(timeout=5.0, max_outage=60.0, first_backoff=0.05, max_backoff=0.5)
